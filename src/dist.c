/* The ranks: one process, or an MPI job. The only file that includes mpi.h.
 *
 * Until pl_dist_init joins an MPI job (the program calls it when an MPI
 * launcher started it), and always without MPI built in, there is one rank
 * and every function below returns at once: the trainer calls them the same
 * way with one rank or many, and one rank pays nothing. With MPI, the job
 * is MPI_COMM_WORLD and every call is made from the thread that called
 * pl_dist_init (MPI_THREAD_FUNNELED): the trainer's worker 0, which is the
 * thread that drives the trainer.
 *
 * Errors inside MPI (a peer that vanished, a broken link) keep MPI's
 * default handler, MPI_ERRORS_ARE_FATAL: the job ends with MPI's message,
 * it never hangs on an error it could see. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"

#ifdef HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_ranks = 1, g_local = 1; /* g_local: ranks on this host */
#ifdef HAVE_MPI
static int g_mpi = 0; /* MPI_Init was called by us */
static int *g_counts, *g_displs; /* (R) scratch for the v-collectives */
#endif

int pl_dist_built(void)
{
#ifdef HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

const char *pl_dist_library(void)
{
#ifdef HAVE_MPI
    static char name[MPI_MAX_LIBRARY_VERSION_STRING];
    if (!name[0]) {
        int len = 0;
        MPI_Get_library_version(name, &len);
        /* "Open MPI v4.1.4, package: ..., ident: ...": the first part */
        name[strcspn(name, ",\n")] = '\0';
    }
    return name;
#else
    return "none";
#endif
}

pl_status pl_dist_init(int *argc, char ***argv, pl_error *err)
{
#ifdef HAVE_MPI
    int provided = 0, inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return pl_fail(err, PL_ERR_IO, "MPI_Init_thread failed");
        g_mpi = 1;
    } else {
        MPI_Query_thread(&provided);
    }
    if (provided < MPI_THREAD_FUNNELED)
        return pl_fail(err, PL_ERR_ARG, "the MPI library gives no MPI_THREAD_FUNNELED support");
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_ranks);
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) ==
        MPI_SUCCESS) {
        MPI_Comm_size(node, &g_local);
        MPI_Comm_free(&node);
    }
    g_counts = calloc((size_t)g_ranks, sizeof *g_counts);
    g_displs = calloc((size_t)g_ranks, sizeof *g_displs);
    if (!g_counts || !g_displs)
        return pl_fail(err, PL_ERR_NOMEM, "cannot allocate for %d ranks", g_ranks);
    return PL_OK;
#else
    (void)argc;
    (void)argv;
    return pl_fail(err, PL_ERR_ARG, "this build has no MPI (./configure --with-mpi)");
#endif
}

void pl_dist_finalize(void)
{
#ifdef HAVE_MPI
    if (g_mpi) {
        int done = 0;
        MPI_Finalized(&done);
        if (!done)
            MPI_Finalize();
        g_mpi = 0;
    }
    free(g_counts);
    free(g_displs);
    g_counts = g_displs = NULL;
#endif
    g_rank = 0;
    g_ranks = g_local = 1;
}

int pl_dist_rank(void) { return g_rank; }
int pl_dist_local_ranks(void) { return g_local; }
int pl_dist_ranks(void) { return g_ranks; }

void pl_dist_abort(int status)
{
#ifdef HAVE_MPI
    if (g_ranks > 1) {
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, status);
    }
#endif
    exit(status);
}

int pl_dist_agree(int value, int *rank)
{
    if (rank)
        *rank = 0;
#ifdef HAVE_MPI
    if (g_ranks > 1) {
        /* MAXLOC: the largest value, and the lowest rank among those with it */
        struct {
            int value, rank;
        } in = {value, g_rank}, out;
        MPI_Allreduce(&in, &out, 1, MPI_2INT, MPI_MAXLOC, MPI_COMM_WORLD);
        if (rank)
            *rank = out.rank;
        return out.value;
    }
#endif
    return value;
}

int pl_dist_same(uint64_t value)
{
#ifdef HAVE_MPI
    if (g_ranks > 1) {
        /* max(v) and max(~v) = ~min(v): one reduction gives both ends */
        uint64_t in[2] = {value, ~value}, out[2];
        MPI_Allreduce(in, out, 2, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
        return out[0] == ~out[1];
    }
#endif
    (void)value;
    return 1;
}

/* MPI counts are ints: chunks of at most 1 GiB for byte transfers. */
#define BYTE_CHUNK ((size_t)1 << 30)

void pl_dist_bcast(void *buf, size_t bytes)
{
#ifdef HAVE_MPI
    if (g_ranks > 1)
        for (size_t at = 0; at < bytes; at += BYTE_CHUNK) {
            size_t n = bytes - at < BYTE_CHUNK ? bytes - at : BYTE_CHUNK;
            MPI_Bcast((char *)buf + at, (int)n, MPI_BYTE, 0, MPI_COMM_WORLD);
        }
#else
    (void)buf;
    (void)bytes;
#endif
}

void pl_dist_sum(double *buf, size_t n)
{
#ifdef HAVE_MPI
    if (g_ranks > 1)
        MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
#else
    (void)buf;
    (void)n;
#endif
}

long pl_dist_min(long value)
{
#ifdef HAVE_MPI
    if (g_ranks > 1) {
        long out;
        MPI_Allreduce(&value, &out, 1, MPI_LONG, MPI_MIN, MPI_COMM_WORLD);
        return out;
    }
#endif
    return value;
}

#ifdef HAVE_MPI
/* counts and displacements of the slices [offset[r], offset[r + 1]) */
static void slices(const size_t *offset)
{
    for (int r = 0; r < g_ranks; r++) {
        g_displs[r] = (int)offset[r];
        g_counts[r] = (int)(offset[r + 1] - offset[r]);
    }
}
#endif

void pl_dist_allgather(float *buf, const size_t *offset)
{
#ifdef HAVE_MPI
    if (g_ranks > 1) {
        slices(offset);
        MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, g_counts, g_displs, MPI_FLOAT,
                       MPI_COMM_WORLD);
    }
#else
    (void)buf;
    (void)offset;
#endif
}

void pl_dist_gather(const float *mine, float *all, const size_t *offset)
{
#ifdef HAVE_MPI
    if (g_ranks > 1) {
        slices(offset);
        MPI_Gatherv(mine, g_counts[g_rank], MPI_FLOAT, all, g_counts, g_displs, MPI_FLOAT, 0,
                    MPI_COMM_WORLD);
        return;
    }
#endif
    if (all != mine)
        memcpy(all, mine, sizeof(float) * (offset[1] - offset[0]));
}

/* ------------------------------------------------------ point to point */

struct pl_xfer {
    int n, max;
#ifdef HAVE_MPI
    MPI_Request *req;
#endif
};

pl_xfer *pl_xfer_create(int max)
{
    pl_xfer *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->max = max;
#ifdef HAVE_MPI
    if (!(x->req = calloc((size_t)(max > 0 ? max : 1), sizeof *x->req))) {
        free(x);
        return NULL;
    }
#endif
    return x;
}

void pl_xfer_free(pl_xfer *x)
{
    if (!x)
        return;
#ifdef HAVE_MPI
    free(x->req);
#endif
    free(x);
}

#ifdef HAVE_MPI
/* The next request of x: more than planned is a bug in the caller. */
static MPI_Request *next_req(pl_xfer *x)
{
    if (x->n >= x->max) {
        fprintf(stderr, "parlstm: internal error: more than %d transfers at a time\n", x->max);
        abort();
    }
    return &x->req[x->n++];
}
#endif

void pl_xfer_send(pl_xfer *x, const float *buf, size_t n, int to, int tag)
{
#ifdef HAVE_MPI
    MPI_Isend(buf, (int)n, MPI_FLOAT, to, tag, MPI_COMM_WORLD, next_req(x));
#else
    (void)x;
    (void)buf;
    (void)n;
    (void)to;
    (void)tag;
#endif
}

void pl_xfer_recv(pl_xfer *x, float *buf, size_t n, int from, int tag)
{
#ifdef HAVE_MPI
    MPI_Irecv(buf, (int)n, MPI_FLOAT, from, tag, MPI_COMM_WORLD, next_req(x));
#else
    (void)x;
    (void)buf;
    (void)n;
    (void)from;
    (void)tag;
#endif
}

int pl_xfer_progress(pl_xfer *x)
{
#ifdef HAVE_MPI
    int done = 1;
    if (x->n > 0)
        MPI_Testall(x->n, x->req, &done, MPI_STATUSES_IGNORE);
    return done;
#else
    (void)x;
    return 1;
#endif
}

void pl_xfer_wait(pl_xfer *x)
{
#ifdef HAVE_MPI
    if (x->n > 0)
        MPI_Waitall(x->n, x->req, MPI_STATUSES_IGNORE);
#endif
    x->n = 0;
}
