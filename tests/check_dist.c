/* Ranks. Always: the fixed summation tree of --deterministic gives the same
 * bits from any split of the shards over ranks, one rank costs nothing, and
 * processes that would each train alone are refused. With MPI built in
 * (configure --with-mpi): jobs under mpirun on loopback only, each bounded
 * in time: 2 and 3 ranks equal one process bit for bit under
 * --deterministic, every rank holds the same parameters in the default
 * mode and a divergence is caught, one result line, a rank that cannot read
 * its data or reads other data ends the job naming itself, bad input gives
 * one process's message once, a rank killed by SIGKILL ends the job and the
 * checkpoint resumes with other ranks bit for bit, SIGTERM and SIGUSR1 to
 * mpirun stop every rank at the same step with one checkpoint, and the bench
 * reports the ranks and the communication. Without MPI these say SKIP. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

/* the last run of a program */
static tu_result res;

/* ------------------------------------------------- the summation tree */

/* float sums depend on the order: leaves of very different magnitudes */
static void fill_leaves(float *x, size_t n, uint64_t seed)
{
    pl_rng r;
    pl_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((pl_rng_uniform(&r) - 0.5) * pow(10.0, (double)pl_rng_below(&r, 8)));
}

START_TEST(test_tree_any_ranks)
{
    enum { N = 64 };
    float leaves[16][N], work[16][N], ref[N], seq[N];
    int checked = 0, order_matters = 0;
    for (int S = 1; S <= 16; S++) {
        for (int s = 0; s < S; s++)
            fill_leaves(leaves[s], N, 100 * (uint64_t)S + (uint64_t)s);
        /* one rank: the root from the leaves */
        float *p[16];
        int have[16] = {0};
        memcpy(work, leaves, sizeof work);
        for (int s = 0; s < S; s++) {
            p[s] = work[s];
            have[s] = s + 1;
        }
        memcpy(ref, pl_tree_node(p, have, 0, pl_tree_root(S), S, N), sizeof ref);
        memcpy(seq, leaves[0], sizeof seq);
        for (int s = 1; s < S; s++)
            for (int i = 0; i < N; i++)
                seq[i] += leaves[s][i];
        order_matters |= memcmp(seq, ref, sizeof ref) != 0;
        for (int R = 1; R <= 20; R++) {
            /* every rank sums its shards into its largest subtrees ... */
            int blo[32], bhi[32], bsize[32], nb = 0;
            memcpy(work, leaves, sizeof work);
            for (int q = 0; q < R; q++) {
                long lo, hi;
                pl_split(S, q, R, &lo, &hi);
                int k = pl_tree_blocks((int)lo, (int)hi, S, blo + nb, bhi + nb, bsize + nb);
                ck_assert_int_le(k, 8);
                int mine[16] = {0};
                for (long s = lo; s < hi; s++)
                    mine[s] = (int)s + 1;
                for (int j = nb; j < nb + k; j++) {
                    ck_assert_int_eq(blo[j], j == nb ? lo : bhi[j - 1]); /* a partition */
                    pl_tree_node(p, mine, blo[j], bsize[j], S, N);
                }
                ck_assert_int_eq(k > 0 ? bhi[nb + k - 1] : (int)lo, hi); /* and no more */
                nb += k;
            }
            ck_assert_int_eq(nb > 0 ? bhi[nb - 1] : 0, S);
            /* ... and the owner completes the tree from them */
            int blocks[16] = {0};
            for (int j = 0; j < nb; j++)
                blocks[blo[j]] = bhi[j];
            float *root = pl_tree_node(p, blocks, 0, pl_tree_root(S), S, N);
            ck_assert_msg(memcmp(root, ref, sizeof ref) == 0,
                          "%d shards over %d ranks: not the one-rank sum", S, R);
            checked++;
        }
    }
    ck_assert(order_matters); /* the data can tell orders apart */
    printf("summation tree: %d splits of 1..16 shards over 1..20 ranks, bitwise the one-rank "
           "sum\n", checked);
}
END_TEST

START_TEST(test_one_rank)
{
    ck_assert_int_eq(pl_dist_ranks(), 1);
    ck_assert_int_eq(pl_dist_rank(), 0);
    int who = 7;
    ck_assert_int_eq(pl_dist_agree(5, &who), 5);
    ck_assert_int_eq(who, 0);
    ck_assert(pl_dist_same(42));
    pl_config cfg = {6, 20, 3, 1};
    pl_train_opts o;
    pl_train_opts_default(&o);
    o.batch = 10;
    o.workers = 2;
    o.threads = 1;
    pl_error err = {0};
    pl_trainer *tr = pl_trainer_create(&cfg, 5, &o, &err);
    ck_assert_msg(tr != NULL, "%s", err.msg);
    size_t off = 1, count = 0;
    pl_trainer_shard(tr, &off, &count);
    ck_assert_uint_eq(off, 0);
    ck_assert_uint_eq(count, pl_param_count(&cfg));
    ck_assert_int_eq(pl_trainer_ranks(tr), 1);
    ck_assert_int_eq(pl_trainer_check_ranks(tr, &err), PL_OK);
    pl_trainer_free(tr);
}
END_TEST

/* Processes that would each train alone and print their own result. */
START_TEST(test_refuses_lone_processes)
{
    const char *dir = tu_dir;
    const char *args[] = {"train", "--data", dir, "--steps", "1", NULL};
    const char *mpi[] = {"OMPI_COMM_WORLD_SIZE=3", "PARLSTM_MPI=0", NULL};
    const char *srun[] = {"SLURM_STEP_NUM_TASKS=4", "SLURM_PROCID=2", "PARLSTM_MPI=0", NULL};
    const char *const *envs[] = {mpi, srun};
    const char *want[] = {"started as one of 3 MPI processes", "started by srun as one of 4 tasks"};
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(tu_run_env(&res, args, envs[k]), 1);
        ck_assert_msg(strstr(res.err, want[k]) != NULL, "%s", res.err);
        ck_assert_ptr_null(strstr(res.out, "result:"));
    }
}
END_TEST

/* SIGUSR1, which mpirun forwards to every rank without killing them, stops
 * one process too: after the step, with a checkpoint, exit 143. */
START_TEST(test_sigusr1_stops_like_sigterm)
{
    const char *dir = tu_dir;
    tu_make_dataset(dir, 200, 20, 6, 5, 3, 55);
    char ck[4096], log[4096];
    snprintf(ck, sizeof ck, "%s/ck", dir);
    snprintf(log, sizeof log, "%s/log.csv", dir);
    const char *args[] = {"train", "--data", dir, "--val", "0", "--batch", "10", "--steps",
                          "100000000", "--hidden", "16", "--checkpoint", ck,
                          "--checkpoint-every", "1000000", "--log", log, "--log-every", "1",
                          "--quiet", NULL};
    tu_job j;
    tu_start(&j, NULL, args, NULL);
    /* once it trains (its first log row: the handlers are in place) */
    tu_signal_when(&j, SIGUSR1, log, "\ntrain,");
    int st = tu_finish(&j, &res, 30);
    ck_assert_msg(st == 143, "exit %d: %s", st, res.err);
    ck_assert_msg(strstr(res.err, "terminated after step") != NULL, "%s", res.err);
    pl_ckpt_meta meta;
    float *state = NULL;
    pl_error e;
    ck_assert_int_eq(pl_checkpoint_load(ck, &meta, &state, &e), PL_OK);
    ck_assert(meta.step > 0);
    pl_free(state);
}
END_TEST

/* ------------------------------------------------------- MPI jobs */

static const char *bin_path; /* $PARLSTM_BIN, the program the ranks run */
#define PARLSTM_BIN_ARG bin_path

/* mpirun, or NULL (and a SKIP line) when this build cannot start jobs. */
static const char *mpirun(const char *what)
{
    const char *m = getenv("PARLSTM_MPIRUN");
    bin_path = getenv("PARLSTM_BIN");
    if (!pl_dist_built() || !m || !*m || !bin_path) {
        tu_skip(what, pl_dist_built() ? "no mpirun found by configure (an MPI job)"
                                      : "built without MPI (./configure --with-mpi): an MPI job");
        return NULL;
    }
    return m;
}

/* mpirun's options: oversubscribed (2 cores), loopback only, shared memory
 * and TCP, one thread per rank unless said */
#define MPI_OPTS                                                                           \
    "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "--mca", "pml", "ob1",  \
        "--mca", "btl", "self,vader,tcp", "--mca", "btl_tcp_if_include", "lo", "--mca",    \
        "oob_tcp_if_include", "lo"

/* Starts `mpirun MPI_OPTS args...` (args NULL-terminated) with env. */
static void job_start(tu_job *j, const char *const *args, const char *const *env)
{
    const char *all[64] = {MPI_OPTS};
    int k = 0;
    while (all[k])
        k++;
    for (int i = 0; args[i] && k < 63; i++)
        all[k++] = args[i];
    all[k] = NULL;
    tu_start(j, getenv("PARLSTM_MPIRUN"), all, env);
}

/* Runs the job for at most 120 s (a job that hangs fails the test); its
 * exit status, its output in res. */
static int job_run(const char *const *args, const char *const *env)
{
    tu_job j;
    job_start(&j, args, env);
    return tu_finish(&j, &res, 120);
}

static int count(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

/* A small job: 300 images of 8x6, 4 classes, hidden 16, batch 20. */
#define SMALL "--val", "50", "--batch", "20", "--hidden", "16", "--quiet", "--threads", "1"

START_TEST(test_mpi_deterministic_equals_one_process)
{
    if (!mpirun("test_mpi_deterministic_equals_one_process"))
        return;
    const char *dir = tu_dir;
    tu_make_dataset(dir, 300, 60, 8, 6, 4, 81);
    const char *ref = strdup(tu_path(dir, "ref.bin"));
    const char *one[] = {"train", "--data", dir, SMALL, "--steps", "24", "--deterministic",
                         "--workers", "2", "--save", ref, NULL};
    ck_assert_int_eq(tu_run_args(&res, one), 0);
    ck_assert_ptr_nonnull(strstr(res.out, "ranks=1 workers=2"));
    const struct {
        const char *np, *workers;
    } runs[] = {{"2", "1"}, {"3", "1"}, {"2", "2"}, {"4", "1"}};
    for (size_t k = 0; k < sizeof runs / sizeof *runs; k++) {
        const char *model = tu_path(dir, "ranks.bin");
        const char *args[] = {"-np", runs[k].np, PARLSTM_BIN_ARG, "train", "--data", dir, SMALL,
                              "--steps", "24", "--deterministic", "--workers", runs[k].workers,
                              "--save", model, NULL};
        int st = job_run(args, NULL);
        ck_assert_msg(st == 0, "-np %s: exit %d: %s", runs[k].np, st, res.err);
        char want[64];
        snprintf(want, sizeof want, "ranks=%s workers=%s", runs[k].np, runs[k].workers);
        ck_assert_msg(count(res.out, "result:") == 1, "%d result lines: %s", count(res.out, "result:"),
                      res.out);
        ck_assert_msg(strstr(res.out, want) != NULL, "%s", res.out);
        ck_assert_msg(tu_same_file(ref, model),
                      "--deterministic: %s ranks x %s worker differ from one process x 2 workers",
                      runs[k].np, runs[k].workers);
        printf("--deterministic, mpirun -np %s x %s worker: bitwise one process x 2 workers\n",
               runs[k].np, runs[k].workers);
    }
    free((void *)ref);
}
END_TEST

START_TEST(test_mpi_default_mode_same_parameters)
{
    if (!mpirun("test_mpi_default_mode_same_parameters"))
        return;
    if (!tu_hooks("ranks dump and diverge"))
        return;
    const char *dir = tu_dir;
    tu_make_dataset(dir, 300, 60, 8, 6, 4, 82);
    char dump[4096], env_dump[4200];
    snprintf(dump, sizeof dump, "%s/dump", dir);
    ck_assert_int_eq(mkdir(dump, 0700), 0);
    snprintf(env_dump, sizeof env_dump, "PARLSTM_TEST_DUMP_PARAMS=%s", dump);
    const char *env[] = {env_dump, NULL};
    const char *args[] = {"-np", "3", PARLSTM_BIN_ARG, "train", "--data", dir, SMALL, "--steps",
                          "30", "--workers", "2", NULL};
    int st = job_run(args, env);
    ck_assert_msg(st == 0, "exit %d: %s", st, res.err);
    ck_assert_int_eq(count(res.out, "result:"), 1);
    char r0[4200], r[4200];
    snprintf(r0, sizeof r0, "%s/rank0.bin", dump);
    for (int q = 1; q < 3; q++) {
        snprintf(r, sizeof r, "%s/rank%d.bin", dump, q);
        ck_assert_msg(tu_same_file(r0, r), "rank %d's parameters differ from rank 0's", q);
    }
    printf("default mode, 3 ranks x 2 workers: every rank's parameters bitwise the same\n");
    /* a parameter changed on rank 1 before step 101 (a checksum step): caught */
    const char *diverge[] = {"PARLSTM_TEST_DIVERGE=1,100", NULL};
    const char *longer[] = {"-np", "3", PARLSTM_BIN_ARG, "train", "--data", dir, SMALL, "--steps",
                            "120", NULL};
    st = job_run(longer, diverge);
    ck_assert_msg(st == 1, "exit %d: %s", st, res.err);
    ck_assert_ptr_nonnull(strstr(res.err, "step 101: the ranks' parameters differ before step "
                                           "101: rank 1's CRC32"));
    ck_assert_ptr_null(strstr(res.out, "result:"));
}
END_TEST

/* MPMD: rank 0 and rank 1 given different --data */
START_TEST(test_mpi_rank_data_failures)
{
    if (!mpirun("test_mpi_rank_data_failures"))
        return;
    const char *dir = tu_dir;
    const char *other = tu_subdir("other");
    tu_make_dataset(dir, 300, 60, 8, 6, 4, 83);
    tu_make_dataset(other, 300, 60, 8, 6, 4, 84);
    const char *missing = tu_path(dir, "no-such-dir");
    const char *bad[] = {"-np", "1", PARLSTM_BIN_ARG, "train", "--data", dir, SMALL, "--steps",
                         "5", ":", "-np", "1", PARLSTM_BIN_ARG, "train", "--data", missing,
                         SMALL, "--steps", "5", NULL};
    int st = job_run(bad, NULL);
    ck_assert_msg(st == 1, "exit %d: %s", st, res.err);
    ck_assert_msg(strstr(res.err, "rank 1 of 2: parlstm train: no data directory") != NULL,
                  "%s", res.err);
    ck_assert_ptr_nonnull(strstr(res.err, "parlstm train: rank 1 of 2 failed (see its message)"));
    ck_assert_ptr_null(strstr(res.out, "result:"));
    const char *differ[] = {"-np", "1", PARLSTM_BIN_ARG, "train", "--data", dir, SMALL, "--steps",
                            "5", ":", "-np", "1", PARLSTM_BIN_ARG, "train", "--data", other,
                            SMALL, "--steps", "5", NULL};
    st = job_run(differ, NULL);
    ck_assert_msg(st == 1, "exit %d: %s", st, res.err);
    ck_assert_ptr_nonnull(strstr(res.err, "the ranks read different training data"));
}
END_TEST

/* A bad input file: the one-process message, once, from a job of 3. */
START_TEST(test_mpi_bad_input_one_message)
{
    if (!mpirun("test_mpi_bad_input_one_message"))
        return;
    const char *dir = tu_dir;
    tu_make_dataset(dir, 300, 60, 8, 6, 4, 85);
    const char *images = tu_path(dir, "train-images-idx3-ubyte");
    size_t len;
    unsigned char *b = tu_read_all(images, &len);
    b[3] ^= 0x01; /* bad magic */
    tu_write(images, b, len);
    free(b);
    const char *one[] = {"train", "--data", dir, SMALL, "--steps", "5", NULL};
    ck_assert_int_eq(tu_run_args(&res, one), 1);
    char alone[4096];
    snprintf(alone, sizeof alone, "%.4000s", res.err);
    *strchr(alone, '\n') = '\0'; /* its first line */
    ck_assert_msg(strstr(alone, "train-images-idx3-ubyte: expected 3 dimensions") != NULL, "%s",
                  alone);
    const char *args[] = {"-np", "3", PARLSTM_BIN_ARG, "train", "--data", dir, SMALL, "--steps",
                          "5", NULL};
    ck_assert_int_eq(job_run(args, NULL), 1);
    printf("one process and 3 ranks: %s\n", alone);
    ck_assert_msg(count(res.err, alone) == 1, "'%s' not once in: %s", alone, res.err);
}
END_TEST

/* The process of a rank of the job that mpirun_pid runs, or 0. */
static int rank_pid(int mpirun_pid, int rank)
{
    int kids[64], n = tu_children(mpirun_pid, kids, 64);
    char want[64];
    snprintf(want, sizeof want, "OMPI_COMM_WORLD_RANK=%d", rank);
    for (int i = 0; i < n; i++) {
        char path[64], env[1 << 16];
        snprintf(path, sizeof path, "/proc/%d/environ", kids[i]);
        int fd = open(path, O_RDONLY);
        ssize_t len = 0, got;
        while (fd >= 0 && (got = read(fd, env + len, sizeof env - 1 - (size_t)len)) > 0)
            len += got;
        if (fd >= 0)
            close(fd);
        env[len] = '\0';
        for (ssize_t at = 0; at < len; at += (ssize_t)strlen(env + at) + 1)
            if (strcmp(env + at, want) == 0)
                return kids[i];
    }
    return 0;
}

/* The step a checkpoint holds (loaded in this process: one rank). */
static long ckpt_step(const char *path)
{
    pl_ckpt_meta meta;
    float *state = NULL;
    pl_error e;
    ck_assert_msg(pl_checkpoint_load(path, &meta, &state, &e) == PL_OK, "%s", e.msg);
    pl_free(state);
    return meta.step;
}

/* Trains 300 steps under --deterministic with a checkpoint every step that
 * takes 15 ms to write, stops the job after ~1.5 s by `how` ("kill": SIGKILL
 * to rank 1; "rank": sig to rank 1 alone; else sig to mpirun), checks how it
 * ended, resumes the checkpoint with another number of ranks, and compares
 * with one process. */
static void stop_and_resume(const char *how, int sig)
{
    if (!tu_hooks("an MPI job stopped during slowed checkpoint writes"))
        return;
    const char *dir = tu_dir;
    tu_make_dataset(dir, 300, 60, 8, 6, 4, 86);
    const char *ref = strdup(tu_path(dir, "ref.bin")), *res_bin = strdup(tu_path(dir, "res.bin")),
               *ck = strdup(tu_path(dir, "ck"));
    const char *one[] = {"train", "--data", dir, SMALL, "--steps", "300", "--deterministic",
                         "--save", ref, NULL};
    ck_assert_int_eq(tu_run_args(&res, one), 0);
    const char *slow[] = {"PARLSTM_TEST_SLOW_WRITE_MS=15", NULL};
    const char *first[] = {"-np", "3", PARLSTM_BIN_ARG, "train", "--data", dir, SMALL, "--steps",
                           "300", "--deterministic", "--checkpoint", ck, "--checkpoint-every",
                           "1", "--save", res_bin, NULL};
    tu_job j;
    job_start(&j, first, slow);
    int victim = 0;
    for (int waited = 0; waited < 200 && (access(ck, F_OK) != 0 || waited < 30); waited++) {
        tu_sleep_ms(50); /* a first checkpoint, and 1.5 s */
        if (!victim)
            victim = rank_pid(j.pid, 1);
    }
    ck_assert_msg(access(ck, F_OK) == 0, "no checkpoint after 10 s");
    if (strcmp(how, "kill") == 0 || strcmp(how, "rank") == 0) {
        ck_assert_msg(victim > 0, "rank 1 not found among mpirun's children");
        kill(victim, sig);
    } else {
        kill(j.pid, sig);
    }
    int st = tu_finish(&j, &res, 30);
    long at = ckpt_step(ck);
    printf("%s: mpirun exit %d, checkpoint at step %ld of 300\n", how, st, at);
    ck_assert_msg(at > 0 && at < 300, "checkpoint at step %ld", at);
    ck_assert_int_eq(access(res_bin, F_OK), -1); /* no model from the stopped job */
    ck_assert_ptr_null(strstr(res.out, "result:"));
    if (strcmp(how, "kill") == 0) {
        ck_assert_msg(st != 0, "a killed rank, and the job exit 0: %s", res.err);
        ck_assert_msg(strstr(res.err, "rank 1") != NULL, "the rank is not named: %s", res.err);
    } else {
        /* one rank's signal stops all (they agree at each step); mpirun forwards
         * SIGUSR1 to the ranks and exits with theirs; SIGTERM it turns into
         * SIGTERM for every rank a second later, and exits 1 */
        ck_assert_msg(st == (sig == SIGUSR1 || strcmp(how, "rank") == 0 ? 143 : 1),
                      "exit %d: %s", st, res.err);
        ck_assert_msg(count(res.err, "terminated after step") == 1, "%s", res.err);
        char said[64];
        snprintf(said, sizeof said, "terminated after step %ld of 300", at);
        ck_assert_msg(strstr(res.err, said) != NULL, "checkpoint at %ld: %s", at, res.err);
    }
    /* resumed with 2 ranks: the one-process weights */
    const char *resume[] = {"-np", "2", PARLSTM_BIN_ARG, "train", "--data", dir, "--quiet",
                            "--threads", "1", "--resume", ck, "--checkpoint", ck, "--save", res_bin,
                            NULL};
    st = job_run(resume, NULL);
    ck_assert_msg(st == 0, "resume: exit %d: %s", st, res.err);
    ck_assert_msg(tu_same_file(ref, res_bin), "resumed with 2 ranks: differs from one process");
    printf("%s: resumed with 2 ranks, bitwise one process\n", how);
    free((void *)ref);
    free((void *)res_bin);
    free((void *)ck);
}

START_TEST(test_mpi_killed_rank_resume_other_ranks)
{
    if (mpirun("test_mpi_killed_rank_resume_other_ranks"))
        stop_and_resume("kill", SIGKILL);
}
END_TEST

START_TEST(test_mpi_sigterm_to_one_rank)
{
    if (mpirun("test_mpi_sigterm_to_one_rank"))
        stop_and_resume("rank", SIGTERM);
}
END_TEST

START_TEST(test_mpi_sigterm_to_mpirun)
{
    if (mpirun("test_mpi_sigterm_to_mpirun"))
        stop_and_resume("SIGTERM to mpirun", SIGTERM);
}
END_TEST

START_TEST(test_mpi_sigusr1_to_mpirun)
{
    if (mpirun("test_mpi_sigusr1_to_mpirun"))
        stop_and_resume("SIGUSR1 to mpirun", SIGUSR1);
}
END_TEST

START_TEST(test_mpi_bench)
{
    if (!mpirun("test_mpi_bench"))
        return;
    const char *args[] = {"-np", "2", PARLSTM_BIN_ARG, "bench", "--synthetic", "--grid", "1x1",
                          "--rounds", "1", "--steps", "4", "--warmup", "1", "--hidden", "16",
                          "--profile", NULL};
    int st = job_run(args, NULL);
    ck_assert_msg(st == 0, "exit %d: %s", st, res.err);
    ck_assert_msg(strstr(res.out, "ranks: 2 (MPI)") != NULL, "%s", res.out);
    ck_assert_msg(strstr(res.out, "\ncommunication ") != NULL, "%s", res.out);
    ck_assert_int_eq(count(res.out, "strong scaling ("), 1);
}
END_TEST

Suite *dist_suite(void)
{
    Suite *s = suite_create("dist");
    TCase *tc = tu_tcase_with_dir("ranks");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_tree_any_ranks);
    tcase_add_test(tc, test_one_rank);
    tcase_add_test(tc, test_refuses_lone_processes);
    tcase_add_test(tc, test_sigusr1_stops_like_sigterm);
    suite_add_tcase(s, tc);
    TCase *jobs = tu_tcase_with_dir("mpi-jobs");
    tcase_set_timeout(jobs, 300);
    tcase_add_test(jobs, test_mpi_deterministic_equals_one_process);
    tcase_add_test(jobs, test_mpi_default_mode_same_parameters);
    tcase_add_test(jobs, test_mpi_rank_data_failures);
    tcase_add_test(jobs, test_mpi_bad_input_one_message);
    tcase_add_test(jobs, test_mpi_killed_rank_resume_other_ranks);
    tcase_add_test(jobs, test_mpi_sigterm_to_one_rank);
    tcase_add_test(jobs, test_mpi_sigterm_to_mpirun);
    tcase_add_test(jobs, test_mpi_sigusr1_to_mpirun);
    tcase_add_test(jobs, test_mpi_bench);
    suite_add_tcase(s, jobs);
    return s;
}
