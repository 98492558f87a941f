/* Several ranks, one voice.
 *
 * cli_ranks_start decides whether this process is one rank of an MPI job:
 * it joins the job when an MPI launcher started it (mpirun/mpiexec set
 * OMPI_COMM_WORLD_SIZE or PMIX_RANK, srun --mpi=pmix or pmi2 set PMIX_RANK
 * or PMI_RANK), or when PARLSTM_MPI=1; PARLSTM_MPI=0 never joins. It
 * refuses a process that would train alone while a launcher started
 * several (a build without MPI under mpirun, srun without MPI wire-up).
 *
 * Rank 0 prints what one process prints; the other ranks' stdout goes to
 * /dev/null and their stderr into a memory file.
 * At an agreement point, a rank that failed when rank 0 did not (its copy of
 * the data unreadable, its memory short) writes out what it said, each line
 * naming the rank, and every rank leaves with the same exit status: a job
 * prints one result line, and a failure once, where it happened.
 * PARLSTM_RANK_LOGS=all lets every rank print everything (for debugging: a
 * rank that crashes loses what it had captured). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli.h"

static int saved_err = -1; /* the real stderr of a capturing rank */
static int capture = -1;   /* the memory file that is its stderr now */

/* A positive integer from the environment, or 0. */
static long env_count(const char *name)
{
    const char *v = getenv(name);
    char *end;
    long n = v ? strtol(v, &end, 10) : 0;
    return v && *v && *end == '\0' && n > 0 ? n : 0;
}

/* The processes an MPI launcher says the job has (1 when it says only
 * that there is a job), or 0 when no launcher started this process. */
static long launcher_size(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", NULL};
    for (int i = 0; vars[i]; i++)
        if (env_count(vars[i]))
            return env_count(vars[i]);
    return getenv("PMIX_RANK") || getenv("PMI_RANK") ? 1 : 0;
}

static void capture_output(void);

int cli_ranks_start(int *argc, char ***argv)
{
    const char *force = getenv("PARLSTM_MPI");
    long said = launcher_size(), tasks = env_count("SLURM_STEP_NUM_TASKS");
    int join = force && strcmp(force, "0") == 0 ? 0
               : force && strcmp(force, "1") == 0 ? 1
                                                  : said > 0;
    const char *why = NULL;
    if (join && !pl_dist_built())
        join = 0;
    if (!join && said > 1)
        why = pl_dist_built() ? "PARLSTM_MPI=0 says not to join the MPI job"
                              : "this parlstm was built without MPI (./configure --with-mpi)";
    if (why) {
        fprintf(stderr, "parlstm: started as one of %ld MPI processes, but %s: each would train "
                "alone\n", said, why);
        return 1;
    }
    if (!join && said == 0 && tasks > 1 && getenv("SLURM_PROCID")) {
        fprintf(stderr, "parlstm: started by srun as one of %ld tasks %s: each would train "
                "alone\n", tasks, pl_dist_built() ? "without MPI wire-up (srun --mpi=pmix, or "
                "pmi2)" : "but built without MPI (./configure --with-mpi)");
        return 1;
    }
    if (!join)
        return 0;
    cli_fix_openblas(); /* its re-execution must come before MPI starts */
    cli_no_reexec = 1;
    pl_error err = {0};
    if (pl_dist_init(argc, argv, &err)) {
        fprintf(stderr, "parlstm: %s\n", err.msg);
        return 1;
    }
    capture_output();
    return 0;
}

static void capture_output(void)
{
    const char *logs = getenv("PARLSTM_RANK_LOGS");
    if (pl_dist_ranks() == 1 || pl_dist_rank() == 0 || (logs && strcmp(logs, "all") == 0))
        return;
    fflush(stdout);
    fflush(stderr);
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) {
        dup2(null, STDOUT_FILENO);
        close(null);
    }
    capture = memfd_create("parlstm-rank-stderr", 0);
    if (capture < 0) {
        char path[] = "/tmp/parlstm-rank-XXXXXX";
        if ((capture = mkstemp(path)) >= 0)
            unlink(path);
    }
    if (capture >= 0 && (saved_err = dup(STDERR_FILENO)) >= 0)
        dup2(capture, STDERR_FILENO);
}

/* Writes what this rank said since the last time, each line prefixed and
 * written whole (other ranks write to the same terminal). */
static void show_captured(void)
{
    if (capture < 0 || saved_err < 0)
        return;
    fflush(stderr);
    off_t end = lseek(capture, 0, SEEK_CUR);
    char *text = malloc((size_t)end + 1);
    if (text && pread(capture, text, (size_t)end, 0) == end) {
        text[end] = '\0';
        char line[4096];
        for (char *p = text, *nl; *p; p = nl ? nl + 1 : p + strlen(p)) {
            nl = strchr(p, '\n');
            int n = snprintf(line, sizeof line, "rank %d of %d: %.*s\n", pl_dist_rank(),
                             pl_dist_ranks(), (int)(nl ? nl - p : (long)strlen(p)), p);
            if (write(saved_err, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1) < 0)
                break;
        }
    }
    free(text);
    if (ftruncate(capture, 0) == 0)
        lseek(capture, 0, SEEK_SET);
}

int cli_agree(const char *cmd, int rc)
{
    if (pl_dist_ranks() == 1)
        return rc;
    int first, agreed = pl_dist_agree(rc, &first), rc0 = rc;
    if (agreed == 0)
        return 0;
    pl_dist_bcast(&rc0, sizeof rc0);
    if (rc0 == 0) {
        /* rank 0 was fine: the ranks that failed say why, then rank 0 */
        if (rc != 0)
            show_captured();
        pl_dist_agree(0, NULL);
        if (pl_dist_rank() == 0)
            fprintf(stderr, "parlstm %s: rank %d of %d failed (see its message); every rank "
                    "stops\n", cmd, first, pl_dist_ranks());
    }
    return agreed;
}

int cli_fail_alone(int rc)
{
    if (pl_dist_ranks() == 1)
        return rc;
    show_captured();
    pl_dist_abort(rc);
}
