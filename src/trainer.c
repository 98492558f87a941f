/* One training step over the worker pool, evaluation, and the epoch order.
 *
 * A step is one pool run with these phases, separated by barriers:
 *   1. pack: the folded gate weights, panels split over workers;
 *   2. shards: this rank's rows of the batch are cut into contiguous shards
 *      (S = workers, or under --deterministic the fixed shards of the whole
 *      batch that this rank owns); each worker runs forward and backward on
 *      its shards, each shard into its own gradient buffer;
 *   3. reduce: the shard gradients are summed over parameter chunks split
 *      among the workers (in shard order; under --deterministic in a fixed
 *      binary tree over the batch's 16 shards), with each chunk's sum of
 *      squares;
 *   4. update: every worker sums the chunk norms in chunk order (so all see
 *      the same clipping factor), checks for NaN/Inf, and applies Adam to its
 *      chunks.
 * With R ranks (dist.c), between 3 and 4 the gradient crosses ranks: the
 * parameters are cut into R slices of whole chunks; every rank sends each
 * slice of its partial sums to the slice's owner as soon as that slice is
 * reduced in-process (point-to-point, overlapping the rest of the
 * reduction); each owner completes the sums of its slice (under
 * --deterministic: the same tree, whose subtrees the ranks sent), and its
 * chunk norms; one small all-reduce (the step's agreement) gives every rank
 * every chunk norm, every shard's loss, the stop flags and, every 100 steps,
 * a checksum of each rank's parameters; each rank runs Adam on its slice
 * only (its Adam moments cover only that slice) and an all-gather gives
 * every rank the whole updated parameters.
 * Nothing in the step allocates. */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "internal.h"
#include "testing.h"

extern void openblas_set_num_threads(int n);

#define NCHUNK PL_CHUNKS   /* fixed parameter chunks (norm and update) */
#define DET_SHARDS 16      /* shards per batch under --deterministic */
#define CHECK_EVERY 100    /* steps between checksums of the parameters across ranks */
/* Shards per worker otherwise: 1, one each; more, claimed by whichever
 * worker is free, balance a worker slowed by another tenant at the cost of
 * smaller products (bench/ab-variants -DSHARDS_PER_WORKER=2 measures it). */
#ifndef SHARDS_PER_WORKER
#define SHARDS_PER_WORKER 1
#endif


enum { JOB_GRAD, JOB_STEP, JOB_EVAL };

/* How a batch of n rows crosses the ranks (made again when n changes).
 * Leaves are what the ranks compute: under --deterministic the batch's S
 * fixed shards (rank p owns shards pl_split(S, p, R)), otherwise the ranks
 * themselves (rank p's rows pl_split(n, p, R), summed in-process). Blocks are
 * partial sums over contiguous leaves [lo, hi) that a rank sends: under
 * --deterministic the largest subtrees of the fixed summation tree inside
 * the rank's shards (pl_tree_blocks), otherwise one per rank that has rows. */
typedef struct {
    int n;               /* rows it was made for; 0: none yet */
    int L;               /* leaves */
    int S_local;         /* shards this rank computes */
    int leaf0;           /* --deterministic: this rank's first shard */
    long r0, r1;         /* otherwise: this rank's rows [r0, r1) */
    int nblk, my0, my1;  /* blocks, in leaf order; this rank's are [my0, my1) */
    int *blo, *bhi, *bsize, *brank; /* (max_blk) */
    float **slot;        /* (max_blk) this rank's slice of another rank's block */
    size_t slots_cap;    /* floats in rbuf */
    float *rbuf;         /* the slots */
} xplan;

struct pl_trainer {
    pl_config cfg;
    int T, W, threads, S_max, ncpu;
    double bytes;                 /* its buffers: workspaces, parameter-sized arrays */
    int cap;                      /* rows a workspace holds: a shard or an evaluation chunk */
    pl_train_opts o;
    pl_gemm_backend be;
    const pl_kernels *k;         /* the kernel set of be */
    size_t np;
    size_t my_len; /* this rank's slice of the parameters (its Adam moments) */
    float *params, *grad;         /* (np) each */
    float *m, *v;                 /* (soff[rank + 1] - soff[rank]) Adam moments of my slice */
    float **sgrad;                /* S_max shard gradients (np) */
    pl_ws **ws;                   /* one per worker */
    pl_packed *pk;
    pl_pool *pool;
    size_t chunk[NCHUNK + 1];     /* chunk c = [chunk[c], chunk[c+1]) */
    double *shard_loss;           /* (S_max) */
    int *shard_correct;           /* (S_max) */
    int *pinned;                  /* (W) */
    int *cpus;                    /* (ncpu) CPUs this process may use */
    long adam_t;
    long fault_step;              /* test hook (testing.h): -1 = never */
    int fault_group;
    double (*prof)[PL_NPHASE + 8]; /* (W) phase seconds; padded rows */
    long prof_steps;
    /* ranks */
    int R, rank;
    int *schunk;                  /* (R + 1) rank q's slice is chunks [schunk[q], schunk[q+1]) */
    size_t *soff;                 /* (R + 1) ... and parameters [soff[q], soff[q+1]) */
    int Lmax, max_blk;
    /* the step's agreement, summed over ranks (each slot has one writer):
     * [NCHUNK chunk sums of squares][Lmax leaf losses][Lmax leaf corrects]
     * [R stop flags][R parameter checksums + 1] */
    double *agree;
    size_t n_agree;
    xplan plan;
    pl_xfer *sends, *recvs;
    int *ready;                   /* (R) workers done with slice q's in-process sums */
    volatile sig_atomic_t *stop_flag;
    long diverge_step;            /* test hook (testing.h): -1 = never */
    struct {
        int kind, n, S, T; /* S: shards this rank computes in this step */
        long next_shard; /* the next shard to claim (when S > W) */
        long step;
        const pl_dataset *ds;
        const uint32_t *idx;
        float lr;
        int nonfinite, stop, differ;
        double loss, sq;
        long correct;
        int sent;        /* slices (in sending order) whose sends are posted */
        double crc;      /* checksum of the parameters + 1, or 0 */
        /* evaluation */
        int chunks;
        double *eval_loss;
        int *eval_correct;
        float *probs; /* (n, C) class probabilities (pl_trainer_predict), or NULL */
    } job;
};

void pl_train_opts_default(pl_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->batch = 100;
    o->hidden = 128;
    o->epochs = 1;
    o->lr = 0.01f;
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    o->eps = 1e-8f;
    o->clip = 1.0f;
    o->schedule = PL_SCHED_COSINE;
    o->init = PL_INIT_DEFAULT;
    o->seed = 1;
    o->gemm = PL_GEMM_AUTO;
}

/* Data parallelism first (it needs no synchronisation inside a step), but
 * keep shards of at least 16 rows so that the GEMMs stay efficient; the
 * remaining cores become OpenMP threads inside each worker, at most one per
 * gate panel (a thread owns whole panels). */
void pl_resolve_parallelism(const pl_config *cfg, int batch, int cpus, int *workers,
                            int *threads)
{
    const int panels = (cfg->hidden + PL_UNIT_BLOCK - 1) / PL_UNIT_BLOCK;
    const int by_rows = batch / 16 > 1 ? batch / 16 : 1; /* shards of 16 rows or more */
    if (cpus < 1)
        cpus = 1;
    if (*workers <= 0 && *threads <= 0) {
        /* every worker streams all the gate weights once per time step: when
         * they outgrow a core's L2 (PL_L2_WEIGHTS), threads, which each read
         * only their own gate panels, come first (two panels or more each) */
        double Hp = panels * PL_UNIT_BLOCK, bytes = 0;
        for (int l = 0; l < cfg->layers; l++)
            bytes += 4.0 * ((l ? Hp : cfg->input) + 1 + Hp) * 4 * Hp;
        int w, t;
        if (bytes <= PL_L2_WEIGHTS) {
            w = by_rows < cpus ? by_rows : cpus;
            t = cpus / w;
        } else {
            t = panels / 2 > 1 ? panels / 2 : 1;
            t = t < cpus ? t : cpus;
            w = cpus / t < by_rows ? cpus / t : by_rows;
            w = w < 1 ? 1 : w;
            t = cpus / w; /* what the workers leave */
        }
        *workers = w;
        *threads = t < 1 ? 1 : (t > panels ? panels : t);
    } else if (*workers <= 0) {
        int w = cpus / *threads;
        *workers = w < 1 ? 1 : (w > batch ? batch : w);
    } else if (*threads <= 0) {
        int t = cpus / *workers;
        *threads = t < 1 ? 1 : (t > panels ? panels : t);
    }
}

static void pin_self(const pl_trainer *tr, int slot)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(tr->cpus[slot % tr->ncpu], &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void create_buffers(void *ctx, int w);

static void pin_once(pl_trainer *tr, int w)
{
    if (!tr->o.pin || tr->pinned[w])
        return;
    tr->pinned[w] = 1;
    pin_self(tr, w * tr->threads);
#pragma omp parallel num_threads(tr->threads) if (tr->threads > 1)
    {
#ifdef _OPENMP
        pin_self(tr, w * tr->threads + omp_get_thread_num());
#endif
    }
}

static void free_plan(xplan *x)
{
    free(x->blo);
    free(x->bhi);
    free(x->bsize);
    free(x->brank);
    free(x->slot);
    pl_free(x->rbuf);
}

static void free_all(pl_trainer *tr)
{
    if (tr->pool)
        pl_pool_free(tr->pool);
    if (tr->ws)
        for (int w = 0; w < tr->W; w++)
            pl_ws_free(tr->ws[w]);
    if (tr->sgrad)
        for (int s = 0; s < tr->S_max; s++)
            pl_free(tr->sgrad[s]);
    pl_packed_free(tr->pk);
    pl_free(tr->params);
    pl_free(tr->grad);
    pl_free(tr->m);
    pl_free(tr->v);
    free(tr->sgrad);
    free(tr->ws);
    free(tr->shard_loss);
    free(tr->shard_correct);
    free(tr->pinned);
    free(tr->cpus);
    free(tr->prof);
    free(tr->schunk);
    free(tr->soff);
    free(tr->agree);
    free(tr->ready);
    free_plan(&tr->plan);
    pl_xfer_free(tr->sends);
    pl_xfer_free(tr->recvs);
    free(tr);
}

/* Adds the time since *t0 to worker w's phase ph and restarts the clock. */
static inline void lap(pl_trainer *tr, int w, pl_phase ph, double *t0)
{
    pl_lap(tr->prof ? tr->prof[w] : NULL, ph, t0);
}

/* The same for every worker (for what worker 0 does while the others sleep
 * in the pool). */
static void lap_all(pl_trainer *tr, pl_phase ph, double *t0)
{
    if (!tr->prof)
        return;
    double t = pl_seconds();
    for (int w = 0; w < tr->W; w++)
        tr->prof[w][ph] += t - *t0;
    *t0 = t;
}

/* A barrier; the time spent waiting counts as `wait` (PL_PH_WAIT, or
 * PL_PH_COMM when the others wait for worker 0's communication). */
static void barrier_as(pl_trainer *tr, int w, pl_phase ph, pl_phase wait, double *t0)
{
    lap(tr, w, ph, t0);
    pl_pool_barrier(tr->pool);
    lap(tr, w, wait, t0);
}

static void barrier(pl_trainer *tr, int w, pl_phase ph, double *t0)
{
    barrier_as(tr, w, ph, PL_PH_WAIT, t0);
}

void pl_trainer_profile(const pl_trainer *tr, double seconds[PL_NPHASE], long *steps)
{
    for (int ph = 0; ph < PL_NPHASE; ph++) {
        seconds[ph] = 0;
        for (int w = 0; tr->prof && w < tr->W; w++)
            seconds[ph] += tr->prof[w][ph] / tr->W;
    }
    *steps = tr->prof_steps;
}

void pl_trainer_profile_reset(pl_trainer *tr)
{
    if (tr->prof)
        memset(tr->prof, 0, sizeof *tr->prof * (size_t)tr->W);
    tr->prof_steps = 0;
}

/* ------------------------------------------- the fixed summation tree */

/* Under --deterministic the S shard gradients of a batch are summed in one
 * binary tree, whatever the ranks, workers and threads: node (lo, size),
 * size a power of two and lo a multiple of it, is the sum of shards
 * [lo, min(lo + size, S)): its left child plus its right child when the
 * right one holds any shard. The root is (0, pl_tree_root(S)). */
int pl_tree_root(int S)
{
    int P = 1;
    while (P < S)
        P *= 2;
    return P;
}

int pl_tree_blocks(int lo, int hi, int S, int *blo, int *bhi, int *bsize)
{
    const int P = pl_tree_root(S);
    int n = 0;
    while (lo < hi) {
        int size = 1;
        /* grow while the node stays aligned, inside [lo, hi), and its right
         * half holds a shard */
        while (2 * size <= P && lo % (2 * size) == 0 && lo + size < S &&
               (lo + 2 * size < S ? lo + 2 * size : S) <= hi)
            size *= 2;
        blo[n] = lo;
        bhi[n] = lo + size < S ? lo + size : S;
        bsize[n] = size;
        lo = bhi[n++];
    }
    return n;
}

float *pl_tree_node(float *const *p, const int *have, int lo, int size, int S, size_t n)
{
    int hi = lo + size < S ? lo + size : S;
    if (have[lo] == hi || size == 1)
        return p[lo];
    int half = size / 2;
    float *left = pl_tree_node(p, have, lo, half, S, n);
    if (lo + half < S) {
        const float *right = pl_tree_node(p, have, lo + half, half, S, n);
        for (size_t i = 0; i < n; i++)
            left[i] += right[i];
    }
    return left;
}

/* ------------------------------------------------------ the rank plan */

void pl_chunks(size_t np, size_t *chunk)
{
    for (int c = 0; c <= NCHUNK; c++)
        chunk[c] = c == NCHUNK ? np : (np * (size_t)c / NCHUNK) & ~(size_t)15;
}

void pl_rank_slices(const size_t *chunk, int R, int *schunk, size_t *soff)
{
    for (int q = 0; q <= R; q++) {
        long lo, hi;
        pl_split(NCHUNK, q < R ? q : R - 1, R, &lo, &hi);
        schunk[q] = (int)(q < R ? lo : hi);
        soff[q] = chunk[schunk[q]];
    }
}

static int make_plan(pl_trainer *tr, int n)
{
    xplan *x = &tr->plan;
    const int R = tr->R, r = tr->rank;
    const size_t my_len = tr->soff[r + 1] - tr->soff[r];
    x->nblk = x->my0 = x->my1 = 0;
    if (tr->o.deterministic) {
        x->L = n < DET_SHARDS ? n : DET_SHARDS;
        for (int q = 0; q < R; q++) {
            long lo, hi;
            pl_split(x->L, q, R, &lo, &hi);
            if (q == r) {
                x->leaf0 = (int)lo;
                x->S_local = (int)(hi - lo);
                x->my0 = x->nblk;
            }
            int k = pl_tree_blocks((int)lo, (int)hi, x->L, x->blo + x->nblk, x->bhi + x->nblk,
                                   x->bsize + x->nblk);
            for (int j = x->nblk; j < x->nblk + k; j++)
                x->brank[j] = q;
            x->nblk += k;
            if (q == r)
                x->my1 = x->nblk;
        }
    } else {
        x->L = R;
        x->leaf0 = 0;
        for (int q = 0; q < R; q++) {
            long lo, hi;
            pl_split(n, q, R, &lo, &hi);
            if (q == r) {
                x->r0 = lo;
                x->r1 = hi;
                x->S_local = (int)(hi - lo < tr->S_max ? hi - lo : tr->S_max);
                x->my0 = x->nblk;
            }
            if (hi > lo) {
                x->blo[x->nblk] = q;
                x->bhi[x->nblk] = q + 1;
                x->bsize[x->nblk] = 1;
                x->brank[x->nblk++] = q;
            }
            if (q == r)
                x->my1 = x->nblk;
        }
    }
    /* my slice of every other rank's block arrives into its own slot */
    size_t need = 0;
    for (int j = 0; j < x->nblk; j++)
        if (x->brank[j] != r)
            need += my_len;
    if (need > x->slots_cap) {
        pl_free(x->rbuf);
        x->slots_cap = 0;
        if (!(x->rbuf = pl_alloc_floats(need)))
            return -1;
        x->slots_cap = need;
    }
    size_t at = 0;
    for (int j = 0; j < x->nblk; j++) {
        x->slot[j] = NULL;
        if (x->brank[j] != r) {
            x->slot[j] = x->rbuf + at;
            at += my_len;
        }
    }
    x->n = n;
    return 0;
}

/* The arguments pl_trainer_create refuses before it allocates anything. */
static int check_args(const pl_config *cfg, int T, const pl_train_opts *o, int R, pl_error *err)
{
    if (pl_config_check(cfg, err))
        return -1;
    if (T < 1 || T > 65535) {
        pl_fail(err, PL_ERR_ARG, "time steps must be between 1 and 65535, got %d", T);
        return -1;
    }
    if (!(o->dropout >= 0 && o->dropout < 1)) {
        pl_fail(err, PL_ERR_ARG, "dropout must be at least 0 and below 1, got %g",
                (double)o->dropout);
        return -1;
    }
    if (o->batch < 1) {
        pl_fail(err, PL_ERR_ARG, "batch must be at least 1, got %d", o->batch);
        return -1;
    }
    if (!pl_gemm_available(o->gemm)) {
        pl_fail(err, PL_ERR_ARG, "the %s kernels need %s; this CPU cannot run them",
                pl_gemm_name(o->gemm), pl_gemm_requires(o->gemm));
        return -1;
    }
    if (R > 1 && !o->deterministic && o->batch < R) {
        pl_fail(err, PL_ERR_ARG, "batch %d is smaller than the %d ranks: every rank needs at "
                "least one row", o->batch, R);
        return -1;
    }
    return 0;
}

/* Workers and threads: asked for, or chosen for the shape and the CPUs
 * (pl_resolve_parallelism), within what the batch and the panels allow. */
static int choose_parallelism(pl_trainer *tr, pl_error *err)
{
    const int R = tr->R;
    /* the rows of a batch that each rank gets, and the CPUs: ranks on one
     * host that may all run on every CPU (not bound to their own) share them */
    const int rows = tr->o.batch / R > 0 ? tr->o.batch / R : 1;
    int cpus = pl_cpu_count();
    const int local = pl_dist_local_ranks();
    if (local > 1 && (long)cpus * local > sysconf(_SC_NPROCESSORS_ONLN))
        cpus = cpus / local > 0 ? cpus / local : 1;
    pl_resolve_parallelism(&tr->cfg, rows, cpus, &tr->W, &tr->threads);
    if (tr->W > rows && (R == 1 || !tr->o.deterministic)) {
        if (R == 1)
            pl_fail(err, PL_ERR_ARG,
                    "batch %d is smaller than workers %d: every worker needs at "
                    "least one row",
                    tr->o.batch, tr->W);
        else
            pl_fail(err, PL_ERR_ARG,
                    "batch %d over %d ranks leaves %d rows for a rank, fewer than its %d "
                    "workers: every worker needs at least one row",
                    tr->o.batch, R, rows, tr->W);
        return -1;
    }
    /* a thread owns whole gate panels: more threads than panels would idle
     * (the program warns when it asked for more) */
    const int panels = (tr->cfg.hidden + PL_UNIT_BLOCK - 1) / PL_UNIT_BLOCK;
    if (tr->threads > panels)
        tr->threads = panels;
    if (tr->W > 1024 || tr->threads > 1024) {
        pl_fail(err, PL_ERR_ARG, "at most 1024 workers and 1024 threads, got %d x %d",
                tr->W, tr->threads);
        return -1;
    }
    tr->o.workers = tr->W;
    tr->o.threads = tr->threads;
    return 0;
}

/* Shards, their rows, the parameter chunks and this rank's slice of them;
 * refuses what the machine's memory cannot hold. */
static int size_buffers(pl_trainer *tr, pl_error *err)
{
    const int R = tr->R;
    const int rows = tr->o.batch / R > 0 ? tr->o.batch / R : 1;
    const int det_shards = tr->o.batch < DET_SHARDS ? tr->o.batch : DET_SHARDS;
    /* shard buffers: the fixed shards this rank owns, or per worker */
    tr->S_max = tr->o.deterministic ? (det_shards + R - 1) / R
                : tr->W == 1 ? 1
                : (rows < tr->W * SHARDS_PER_WORKER ? tr->W : tr->W * SHARDS_PER_WORKER);
    if (tr->S_max < 1)
        tr->S_max = 1;
    tr->cap = tr->o.deterministic ? (tr->o.batch + det_shards - 1) / det_shards
                               : (rows + (tr->o.batch % R != 0) + tr->S_max - 1) / tr->S_max;
    if (tr->o.deterministic && tr->cap < 16)
        tr->cap = 16; /* evaluation chunks */
    tr->np = pl_param_count(&tr->cfg);
    if (R > 1 && tr->np > (size_t)INT32_MAX) {
        pl_fail(err, PL_ERR_TOO_LARGE, "%zu parameters: at most %d across ranks", tr->np,
                INT32_MAX);
        return -1;
    }
    pl_chunks(tr->np, tr->chunk);
    tr->schunk = calloc((size_t)R + 1, sizeof *tr->schunk);
    tr->soff = calloc((size_t)R + 1, sizeof *tr->soff);
    if (!tr->schunk || !tr->soff) {
        pl_fail(err, PL_ERR_NOMEM, "cannot allocate the trainer");
        return -1;
    }
    pl_rank_slices(tr->chunk, R, tr->schunk, tr->soff);
    tr->my_len = tr->soff[tr->rank + 1] - tr->soff[tr->rank];
    tr->Lmax = tr->o.deterministic ? DET_SHARDS : R;
    tr->max_blk = tr->o.deterministic ? DET_SHARDS : R;
    tr->n_agree = NCHUNK + 2 * (size_t)tr->Lmax + 2 * (size_t)R;
    /* refuse what cannot fit rather than be killed when the pages are touched:
     * six parameter-sized arrays and the shards' (of Adam's two moments, a rank
     * keeps its slice; with several ranks, the slices received: about one) */
    double need = tr->W * pl_ws_estimate(&tr->cfg, tr->T, tr->cap, tr->threads) +
                  ((double)(6 + tr->S_max + (R > 1)) * (double)tr->np -
                   2.0 * (double)(tr->np - tr->my_len)) * sizeof(float);
    tr->bytes = need;
    double have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (have > 0 && need > 0.9 * have) {
        pl_fail(err, PL_ERR_TOO_LARGE,
                "this model and batch need %.1f GiB of buffers for %d time steps, the machine "
                "has %.1f GiB (smaller --batch, --hidden or --layers)",
                need / 1073741824.0, tr->T, have / 1073741824.0);
        return -1;
    }

    return 0;
}

/* Every buffer of the trainer and its pool; each worker allocates its own
 * workspace and shard buffers (first touch). */
static int alloc_buffers(pl_trainer *tr, pl_error *err)
{
    const int R = tr->R;
    tr->params = pl_alloc_floats(tr->np);
    tr->grad = pl_alloc_floats(tr->np);
    tr->m = pl_alloc_floats(tr->my_len ? tr->my_len : 1);
    tr->v = pl_alloc_floats(tr->my_len ? tr->my_len : 1);
    tr->sgrad = calloc((size_t)tr->S_max, sizeof *tr->sgrad);
    tr->ws = calloc((size_t)tr->W, sizeof *tr->ws);
    tr->shard_loss = calloc((size_t)tr->S_max, sizeof *tr->shard_loss);
    tr->shard_correct = calloc((size_t)tr->S_max, sizeof *tr->shard_correct);
    tr->pinned = calloc((size_t)tr->W, sizeof *tr->pinned);
    tr->agree = calloc(tr->n_agree, sizeof *tr->agree);
    tr->ready = calloc((size_t)R, sizeof *tr->ready);
    xplan *x = &tr->plan;
    x->blo = calloc((size_t)tr->max_blk, sizeof *x->blo);
    x->bhi = calloc((size_t)tr->max_blk, sizeof *x->bhi);
    x->bsize = calloc((size_t)tr->max_blk, sizeof *x->bsize);
    x->brank = calloc((size_t)tr->max_blk, sizeof *x->brank);
    x->slot = calloc((size_t)tr->max_blk, sizeof *x->slot);
    tr->sends = pl_xfer_create(tr->max_blk * R);
    tr->recvs = pl_xfer_create(tr->max_blk);
    tr->pk = pl_packed_create(&tr->cfg, tr->be);
    if (tr->o.profile)
        tr->prof = calloc((size_t)tr->W, sizeof *tr->prof);
    int ok = tr->params && tr->grad && tr->m && tr->v && tr->sgrad && tr->ws &&
             tr->shard_loss && tr->shard_correct && tr->pinned && tr->pk && tr->agree &&
             tr->ready && x->blo && x->bhi && x->bsize && x->brank && x->slot && tr->sends &&
             tr->recvs && (!tr->o.profile || tr->prof);
    tr->ncpu = 0;
    if (ok && (tr->cpus = calloc(CPU_SETSIZE, sizeof *tr->cpus)) != NULL)
        tr->ncpu = pl_cpu_list(tr->cpus, CPU_SETSIZE);
    if (!ok || !tr->cpus) {
        pl_fail(err, PL_ERR_NOMEM,
                "cannot allocate buffers for %d workers (%zu parameters)",
                tr->W, tr->np);
        return -1;
    }
    if (tr->ncpu == 0)
        tr->cpus[tr->ncpu++] = 0;
    if (!(tr->pool = pl_pool_create(tr->W, err))) {
        return -1;
    }
    /* each worker allocates (and so first touches) its workspace and its
     * shards' gradient buffers itself: on a machine of several memory
     * nodes they live next to the core that uses them */
    tr->job.T = tr->T;
    pl_pool_run(tr->pool, create_buffers, tr);
    for (int w = 0; ok && w < tr->W; w++)
        ok = tr->ws[w] != NULL;
    for (int s = 0; ok && s < tr->S_max; s++)
        ok = tr->sgrad[s] != NULL;
    if (ok)
        ok = make_plan(tr, tr->o.batch) == 0;
    if (!ok) {
        pl_fail(err, PL_ERR_NOMEM, "cannot allocate buffers for %d workers (%zu parameters)",
                tr->W, tr->np);
        return -1;
    }
    for (int w = 0; tr->prof && w < tr->W; w++)
        pl_ws_set_profile(tr->ws[w], tr->prof[w]);
    if (tr->be == PL_GEMM_BLAS)
        openblas_set_num_threads(1); /* W x T threads, no more */
    return 0;
}

pl_trainer *pl_trainer_create(const pl_config *cfg, int T,
                              const pl_train_opts *o, pl_error *err)
{
    const int R = pl_dist_ranks();
    if (check_args(cfg, T, o, R, err))
        return NULL;
    pl_trainer *tr = calloc(1, sizeof *tr);
    if (!tr) {
        pl_fail(err, PL_ERR_NOMEM, "cannot allocate the trainer");
        return NULL;
    }
    tr->cfg = *cfg;
    tr->T = T;
    tr->o = *o;
    tr->fault_step = tr->diverge_step = -1;
    tr->be = pl_gemm_resolve(o->gemm);
    tr->k = pl_kernels_of(tr->be);
    tr->R = R;
    tr->rank = pl_dist_rank();
    tr->W = o->workers;
    tr->threads = o->threads;
    if (choose_parallelism(tr, err) || size_buffers(tr, err) || alloc_buffers(tr, err)) {
        free_all(tr);
        return NULL;
    }
    pl_model_init(cfg, tr->params, o->init, o->seed);
    return tr;
}

void pl_trainer_free(pl_trainer *tr)
{
    if (tr)
        free_all(tr);
}

void pl_trainer_set_fault(pl_trainer *tr, long step, int group)
{
    tr->fault_step = step;
    tr->fault_group = group < 0 ? 0 : group;
}

void pl_trainer_set_diverge(pl_trainer *tr, long step) { tr->diverge_step = step; }

float *pl_trainer_params(pl_trainer *tr) { return tr->params; }
const float *pl_trainer_grad(const pl_trainer *tr) { return tr->grad; }
const pl_config *pl_trainer_config(const pl_trainer *tr) { return &tr->cfg; }
int pl_trainer_workers(const pl_trainer *tr) { return tr->W; }
int pl_trainer_threads(const pl_trainer *tr) { return tr->threads; }
double pl_trainer_bytes(const pl_trainer *tr) { return tr->bytes; }
int pl_trainer_ranks(const pl_trainer *tr) { return tr->R; }

void pl_trainer_shard(const pl_trainer *tr, size_t *offset, size_t *count)
{
    *offset = tr->soff[tr->rank];
    *count = tr->soff[tr->rank + 1] - tr->soff[tr->rank];
}

/* z[0..C) := softmax(z), in double, shifted by the largest logit. */
static void softmax(float *z, int C)
{
    double top = z[0], sum = 0;
    for (int c = 1; c < C; c++)
        top = z[c] > top ? z[c] : top;
    double e[256];
    for (int c = 0; c < C; c++)
        sum += e[c] = exp((double)z[c] - top);
    for (int c = 0; c < C; c++)
        z[c] = (float)(e[c] / sum);
}

static void eval_part(pl_trainer *tr, int w)
{
    pl_ws *ws = tr->ws[w];
    for (int c = w; c < tr->job.chunks; c += tr->W) {
        long r0 = (long)c * tr->job.n / tr->job.chunks;
        long r1 = (long)(c + 1) * tr->job.n / tr->job.chunks;
        pl_ws_load_u8(ws, tr->job.ds, tr->job.idx + r0, (int)(r1 - r0));
        pl_ws_set_dropout(ws, 0, 0); /* evaluation: every unit */
        float *logits = tr->job.probs ? tr->job.probs + r0 * tr->cfg.classes : NULL;
        tr->job.eval_loss[c] = pl_lstm_forward(ws, tr->pk, tr->params,
                                               &tr->job.eval_correct[c], logits);
        for (long r = r0; logits && r < r1; r++)
            softmax(tr->job.probs + r * tr->cfg.classes, tr->cfg.classes);
    }
}

static void worker_run(pl_trainer *tr, int w);

/* Pool job of pl_trainer_create: worker w's workspace and the gradient
 * buffers of the shards it computes (shard w; under --deterministic, its
 * share of the fixed shards), allocated and zeroed by the worker itself. */
static void create_buffers(void *ctx, int w)
{
    pl_trainer *tr = ctx;
    pin_once(tr, w);
    tr->ws[w] = pl_ws_create(&tr->cfg, tr->job.T, tr->cap, tr->threads, tr->be);
    long s0, s1;
    pl_split(tr->S_max, w, tr->W, &s0, &s1);
    for (long s = s0; s < s1; s++)
        tr->sgrad[s] = pl_alloc_floats(tr->np);
}

/* Every worker computes with subnormals flushed (see cpu.c). */
static void worker(void *ctx, int w)
{
    pl_trainer *tr = ctx;
    unsigned long fp = pl_fp_fast_enter();
    worker_run(tr, w);
    pl_fp_fast_leave(fp);
}

/* Slices in the order this rank reduces them: the next ranks' first, its
 * own last, so that the slices others wait for leave early. */
static inline int slice_at(const pl_trainer *tr, int k)
{
    return (tr->rank + 1 + k) % tr->R;
}

/* The buffer that holds this rank's block j (--deterministic: the shard
 * buffer of its first shard, added into in place; otherwise the in-process
 * sum). */
static inline float *block_buf(const pl_trainer *tr, int j)
{
    return tr->o.deterministic ? tr->sgrad[tr->plan.blo[j] - tr->plan.leaf0] : tr->grad;
}

/* Worker 0: posts the sends of every slice, in order, that all workers
 * have reduced (all of them when all is set). */
static void post_sends(pl_trainer *tr, int all)
{
    const xplan *x = &tr->plan;
    while (tr->job.sent < tr->R - 1) {
        int q = slice_at(tr, tr->job.sent);
        if (!all && __atomic_load_n(&tr->ready[q], __ATOMIC_ACQUIRE) < tr->W)
            break;
        size_t off = tr->soff[q], len = tr->soff[q + 1] - off;
        for (int j = x->my0; len > 0 && j < x->my1; j++)
            pl_xfer_send(tr->sends, block_buf(tr, j) + off, len, q, x->blo[j]);
        tr->job.sent++;
    }
    pl_xfer_progress(tr->sends);
}

/* The in-process sums of chunks [c0, c1): this rank's blocks (under
 * --deterministic, subtrees of its shards) or the sum of its shards in shard
 * order. With one rank they are the whole gradient: into grad, with each
 * chunk's sum of squares. */
static void reduce_local(pl_trainer *tr, long c0, long c1)
{
    const xplan *x = &tr->plan;
    const int S = tr->job.S;
    for (long c = c0; c < c1; c++) {
        size_t a = tr->chunk[c], b = tr->chunk[c + 1];
        if (tr->o.deterministic) {
            float *p[DET_SHARDS];
            int have[DET_SHARDS] = {0};
            for (int k = 0; k < S; k++) {
                p[x->leaf0 + k] = tr->sgrad[k] + a;
                have[x->leaf0 + k] = x->leaf0 + k + 1;
            }
            for (int j = x->my0; j < x->my1; j++) {
                float *root = pl_tree_node(p, have, x->blo[j], x->bsize[j], x->L, b - a);
                if (tr->R == 1)
                    memcpy(tr->grad + a, root, sizeof(float) * (b - a));
            }
        } else if (S > 0) {
            memcpy(tr->grad + a, tr->sgrad[0] + a, sizeof(float) * (b - a));
            for (int k = 1; k < S; k++) {
                const float *src = tr->sgrad[k];
                for (size_t i = a; i < b; i++)
                    tr->grad[i] += src[i];
            }
        }
        if (tr->R == 1)
            tr->agree[c] = pl_sum_squares(tr->grad + a, b - a);
    }
}

/* The owner's sums of chunks [c0, c1) of its slice, from its own blocks and
 * the slices the others sent: under --deterministic the rest of the fixed
 * tree, otherwise its own sum plus the others' in rank order. */
static void reduce_slice(pl_trainer *tr, long c0, long c1)
{
    const xplan *x = &tr->plan;
    const size_t off = tr->soff[tr->rank];
    for (long c = c0; c < c1; c++) {
        size_t a = tr->chunk[c], b = tr->chunk[c + 1];
        if (tr->o.deterministic) {
            float *p[DET_SHARDS];
            int have[DET_SHARDS] = {0};
            for (int j = 0; j < x->nblk; j++) {
                p[x->blo[j]] = x->slot[j] ? x->slot[j] + (a - off) : block_buf(tr, j) + a;
                have[x->blo[j]] = x->bhi[j];
            }
            float *root = pl_tree_node(p, have, 0, pl_tree_root(x->L), x->L, b - a);
            memcpy(tr->grad + a, root, sizeof(float) * (b - a));
        } else {
            int first = x->my1 == x->my0; /* no rows here: the first other sum is copied */
            for (int j = 0; j < x->nblk; j++) {
                if (!x->slot[j])
                    continue;
                const float *src = x->slot[j] + (a - off);
                if (first)
                    memcpy(tr->grad + a, src, sizeof(float) * (b - a));
                else
                    for (size_t i = 0; i < b - a; i++)
                        tr->grad[a + i] += src[i];
                first = 0;
            }
        }
        tr->agree[c] = pl_sum_squares(tr->grad + a, b - a);
    }
}

/* Worker 0, every rank: the step's agreement. Fills this rank's slots (its
 * shards' losses, its stop flag, its checksum), sums the slots over the
 * ranks and derives what every rank then sees alike. */
static void agree(pl_trainer *tr)
{
    const xplan *x = &tr->plan;
    const int R = tr->R, L = tr->Lmax;
    double *loss = tr->agree + NCHUNK, *correct = loss + L, *stop = correct + L,
           *crc = stop + R;
    if (tr->o.deterministic) {
        for (int k = 0; k < tr->job.S; k++) {
            loss[x->leaf0 + k] = tr->shard_loss[k];
            correct[x->leaf0 + k] = tr->shard_correct[k];
        }
    } else {
        for (int k = 0; k < tr->job.S; k++) {
            loss[tr->rank] += tr->shard_loss[k];
            correct[tr->rank] += tr->shard_correct[k];
        }
    }
    stop[tr->rank] = tr->stop_flag ? *tr->stop_flag : 0;
    crc[tr->rank] = tr->job.crc;
    pl_dist_sum(tr->agree, tr->n_agree);
    tr->job.loss = tr->job.sq = 0;
    tr->job.correct = 0;
    for (int l = 0; l < x->L; l++) {
        tr->job.loss += loss[l];
        tr->job.correct += (long)correct[l];
    }
    for (int c = 0; c < NCHUNK; c++)
        tr->job.sq += tr->agree[c];
    tr->job.stop = 0;
    tr->job.differ = 0;
    for (int q = R - 1; q >= 0; q--) {
        if (stop[q] != 0)
            tr->job.stop = (int)stop[q];
        if (crc[q] != crc[0])
            tr->job.differ = q;
    }
    tr->job.nonfinite = !isfinite(tr->job.loss) || !isfinite(tr->job.sq);
}

static void run_shards(pl_trainer *tr, int w)
{
    const int W = tr->W;
    const xplan *x = &tr->plan;
    for (int k = 0;; k++) {
        /* one shard per worker (shard w); when there are more shards than
         * workers (--deterministic) they are claimed in order by whichever
         * worker is free, so that a worker slowed by another tenant takes
         * fewer. Every shard goes into its own buffer: the sums below do not
         * depend on who took it. */
        long s = tr->job.S == W ? (k == 0 ? w : W)
                                : __atomic_fetch_add(&tr->job.next_shard, 1, __ATOMIC_RELAXED);
        if (s >= tr->job.S)
            break;
        long r0, r1;
        if (tr->o.deterministic) {
            pl_split(tr->job.n, x->leaf0 + (int)s, x->L, &r0, &r1);
        } else {
            pl_split(x->r1 - x->r0, (int)s, tr->job.S, &r0, &r1);
            r0 += x->r0;
            r1 += x->r0;
        }
        pl_ws_load_u8(tr->ws[w], tr->job.ds, tr->job.idx + r0, (int)(r1 - r0));
        /* the step's masks: a function of (seed, step) and each row's item */
        pl_ws_set_dropout(tr->ws[w], tr->o.dropout,
                          tr->o.seed * 0x9E3779B97F4A7C15ull ^ (uint64_t)(tr->job.step + 1));
        tr->shard_loss[s] = pl_lstm_forward(tr->ws[w], tr->pk, tr->params,
                                            &tr->shard_correct[s], NULL);
        pl_lstm_backward(tr->ws[w], tr->pk, tr->params, (float)tr->job.n,
                         tr->sgrad[s]);
        /* the batch's first shard */
        if (s == 0 && x->leaf0 == 0 && (tr->o.deterministic || tr->rank == 0) &&
            tr->fault_step >= 0 && tr->job.step == tr->fault_step) {
            pl_group g[PL_MAX_GROUPS];
            int ng = pl_param_groups(&tr->cfg, g);
            tr->sgrad[s][g[tr->fault_group % ng].offset + 1] = NAN;
        }
    }
}

static void adam_chunks(pl_trainer *tr, long c0, long c1, float scale)
{
    const size_t off = tr->soff[tr->rank];
    const pl_adam_k ak = pl_adam_constants(tr->job.lr, tr->o.beta1, tr->o.beta2, tr->o.eps,
                                           tr->adam_t + 1, scale);
    for (long c = c0; c < c1; c++) {
        size_t a = tr->chunk[c], b = tr->chunk[c + 1];
        tr->k->adam(tr->params + a, tr->grad + a, tr->m + (a - off), tr->v + (a - off), b - a,
                    &ak);
    }
}

static void worker_run(pl_trainer *tr, int w)
{
    const int W = tr->W, R = tr->R;
    pin_once(tr, w);
    double t0 = tr->prof ? pl_seconds() : 0;
    pl_packed_update(tr->pk, tr->params, w, W);
    barrier(tr, w, PL_PH_PACK, &t0);
    if (tr->job.kind == JOB_EVAL) {
        eval_part(tr, w);
        return;
    }
    run_shards(tr, w);
    if (tr->prof)
        t0 = pl_seconds(); /* the shard phases were timed inside the workspace */
    pl_pool_barrier(tr->pool);
    lap(tr, w, PL_PH_WAIT, &t0);
    long c0, c1;
    double norm;
    if (R == 1) {
        pl_split(NCHUNK, w, W, &c0, &c1);
        reduce_local(tr, c0, c1);
        if (tr->job.kind == JOB_GRAD) {
            lap(tr, w, PL_PH_REDUCE, &t0);
            return;
        }
        barrier(tr, w, PL_PH_REDUCE, &t0);
        double loss = 0, sq = 0;
        for (int s = 0; s < tr->job.S; s++)
            loss += tr->shard_loss[s];
        for (int c = 0; c < NCHUNK; c++)
            sq += tr->agree[c];
        if (!isfinite(loss) || !isfinite(sq)) {
            if (w == 0)
                tr->job.nonfinite = 1;
            return;
        }
        norm = sqrt(sq);
    } else {
        /* the slices in sending order; each worker its share of each */
        for (int k = 0; k < R; k++) {
            int q = slice_at(tr, k);
            long n = tr->schunk[q + 1] - tr->schunk[q];
            pl_split(n, w, W, &c0, &c1);
            reduce_local(tr, tr->schunk[q] + c0, tr->schunk[q] + c1);
            if (q != tr->rank)
                __atomic_add_fetch(&tr->ready[q], 1, __ATOMIC_RELEASE);
            if (w == 0) {
                lap(tr, w, PL_PH_REDUCE, &t0);
                post_sends(tr, 0);
                lap(tr, w, PL_PH_COMM, &t0);
            }
        }
        barrier(tr, w, PL_PH_REDUCE, &t0);
        if (w == 0) {
            post_sends(tr, 1);
            pl_xfer_wait(tr->recvs);
        }
        barrier_as(tr, w, PL_PH_COMM, PL_PH_COMM, &t0);
        const int mine = tr->schunk[tr->rank + 1] - tr->schunk[tr->rank];
        pl_split(mine, w, W, &c0, &c1);
        c0 += tr->schunk[tr->rank];
        c1 += tr->schunk[tr->rank];
        reduce_slice(tr, c0, c1);
        barrier(tr, w, PL_PH_REDUCE, &t0);
        if (w == 0)
            agree(tr);
        barrier_as(tr, w, PL_PH_COMM, PL_PH_COMM, &t0);
        if (tr->job.kind == JOB_GRAD || tr->job.nonfinite || tr->job.differ)
            return;
        norm = sqrt(tr->job.sq);
    }
    float scale = tr->o.clip > 0 && norm > tr->o.clip ? (float)(tr->o.clip / norm) : 1.0f;
    if (R > 1) {
        pl_split(tr->schunk[tr->rank + 1] - tr->schunk[tr->rank], w, W, &c0, &c1);
        c0 += tr->schunk[tr->rank];
        c1 += tr->schunk[tr->rank];
    }
    adam_chunks(tr, c0, c1, scale);
    lap(tr, w, PL_PH_ADAM, &t0);
}

/* CRC32 of the parameters, as a double (exact). */
static double params_crc(const pl_trainer *tr)
{
    return (double)crc32_z(0L, (const unsigned char *)tr->params, tr->np * sizeof(float));
}

/* Where the first non-finite gradient entry is: its index, or np; with
 * several ranks, the smallest over the ranks' slices. */
static size_t first_nonfinite(const pl_trainer *tr)
{
    size_t a = tr->soff[tr->rank], b = tr->soff[tr->rank + 1], at = tr->np;
    for (size_t i = a; i < b; i++)
        if (!isfinite(tr->grad[i])) {
            at = i;
            break;
        }
    return (size_t)pl_dist_min((long)at);
}

static pl_status run_batch(pl_trainer *tr, int kind, const pl_dataset *ds,
                           const uint32_t *idx, int n, long step, float lr,
                           pl_step_stats *st, pl_error *err)
{
    if (n < 1 || n > tr->o.batch)
        return pl_fail(err, PL_ERR_ARG, "a step takes 1 to %d rows, got %d",
                       tr->o.batch, n);
    if (ds->T != tr->T || ds->D != tr->cfg.input)
        return pl_fail(err, PL_ERR_MISMATCH,
                       "data of %d x %d per item, the model expects %d x %d",
                       ds->T, ds->D, tr->T, tr->cfg.input);
    if (tr->R > 1 && !tr->o.deterministic && n < tr->R)
        return pl_fail(err, PL_ERR_ARG, "a step over %d ranks takes at least %d rows, got %d",
                       tr->R, tr->R, n);
    if (n != tr->plan.n && make_plan(tr, n))
        return pl_fail(err, PL_ERR_NOMEM, "cannot allocate for a batch of %d rows", n);
    double t0 = tr->prof ? pl_seconds() : 0;
    tr->job.kind = kind;
    tr->job.ds = ds;
    tr->job.idx = idx;
    tr->job.n = n;
    tr->job.S = tr->plan.S_local;
    tr->job.next_shard = 0;
    tr->job.lr = lr;
    tr->job.step = step;
    tr->job.nonfinite = tr->job.differ = tr->job.stop = 0;
    memset(tr->agree, 0, sizeof(double) * tr->n_agree);
    if (tr->R > 1) {
        const xplan *x = &tr->plan;
        const size_t my_len = tr->soff[tr->rank + 1] - tr->soff[tr->rank];
        if (tr->diverge_step >= 0 && step == tr->diverge_step)
            tr->params[tr->np / 2] = nextafterf(tr->params[tr->np / 2], INFINITY);
        tr->job.crc = kind == JOB_STEP && step % CHECK_EVERY == 0 ? params_crc(tr) + 1 : 0;
        /* receives first, so that the slices land where they belong */
        for (int j = 0; my_len > 0 && j < x->nblk; j++)
            if (x->slot[j])
                pl_xfer_recv(tr->recvs, x->slot[j], my_len, x->brank[j], x->blo[j]);
        memset(tr->ready, 0, sizeof(int) * (size_t)tr->R);
        tr->job.sent = 0;
        lap_all(tr, PL_PH_COMM, &t0);
    }
    pl_pool_run(tr->pool, worker, tr);
    if (tr->prof)
        t0 = pl_seconds();
    int ok = !tr->job.nonfinite && !tr->job.differ;
    if (tr->R > 1) {
        pl_xfer_wait(tr->sends);
        if (kind == JOB_GRAD)
            pl_dist_allgather(tr->grad, tr->soff);
        else if (ok)
            pl_dist_allgather(tr->params, tr->soff);
        lap_all(tr, PL_PH_COMM, &t0);
    }
    double loss = 0, sq = 0;
    long correct = 0;
    if (tr->R > 1) {
        loss = tr->job.loss;
        sq = tr->job.sq;
        correct = tr->job.correct;
    } else {
        for (int s = 0; s < tr->job.S; s++) {
            loss += tr->shard_loss[s];
            correct += tr->shard_correct[s];
        }
        for (int c = 0; c < NCHUNK; c++)
            sq += tr->agree[c];
        tr->job.stop = tr->stop_flag ? *tr->stop_flag : 0;
    }
    if (st) {
        st->loss = loss / n;
        st->correct = (int)correct;
        st->grad_norm = sqrt(sq);
        st->lr = lr;
        st->stop = tr->job.stop;
    }
    if (tr->job.differ) {
        const double *crc = tr->agree + NCHUNK + 2 * (size_t)tr->Lmax + tr->R;
        return pl_fail(err, PL_ERR_MISMATCH,
                       "the ranks' parameters differ before step %ld: rank %d's CRC32 is "
                       "%08lx, rank 0's %08lx; parameters left unchanged",
                       step + 1, tr->job.differ, (unsigned long)(crc[tr->job.differ] - 1),
                       (unsigned long)(crc[0] - 1));
    }
    if (!isfinite(loss) || !isfinite(sq)) {
        pl_group g[PL_MAX_GROUPS];
        int ng = pl_param_groups(&tr->cfg, g);
        const char *where = "the loss";
        size_t at = 0, i = first_nonfinite(tr);
        for (int k = 0; i < tr->np && k < ng; k++)
            if (i >= g[k].offset && i < g[k].offset + g[k].size) {
                where = g[k].name;
                at = i - g[k].offset;
            }
        if (strcmp(where, "the loss") == 0)
            return pl_fail(err, PL_ERR_NONFINITE,
                           "non-finite loss (%g); parameters left unchanged", loss / n);
        return pl_fail(err, PL_ERR_NONFINITE,
                       "non-finite gradient, first in %s[%zu] (loss %g); "
                       "parameters left unchanged",
                       where, at, loss / n);
    }
    if (kind == JOB_STEP)
        tr->adam_t++;
    tr->prof_steps++;
    return PL_OK;
}

pl_status pl_trainer_gradient(pl_trainer *tr, const pl_dataset *ds,
                              const uint32_t *idx, int n, pl_step_stats *st,
                              pl_error *err)
{
    return run_batch(tr, JOB_GRAD, ds, idx, n, -1, 0.0f, st, err);
}

pl_status pl_trainer_step(pl_trainer *tr, const pl_dataset *ds,
                          const uint32_t *idx, int n, long step, long total,
                          pl_step_stats *st, pl_error *err)
{
    float lr = pl_lr_at(tr->o.schedule, tr->o.lr, step, total);
    return run_batch(tr, JOB_STEP, ds, idx, n, step, lr, st, err);
}

void pl_trainer_watch_stop(pl_trainer *tr, volatile sig_atomic_t *flag) { tr->stop_flag = flag; }

pl_status pl_trainer_check_ranks(pl_trainer *tr, pl_error *err)
{
    double crc = params_crc(tr);
    if (!pl_dist_same((uint64_t)crc))
        return pl_fail(err, PL_ERR_MISMATCH,
                       "the ranks' parameters differ (rank %d's CRC32 is %08lx)", tr->rank,
                       (unsigned long)crc);
    return PL_OK;
}

void pl_trainer_set_state(pl_trainer *tr, const float *state, long adam_steps)
{
    size_t off, len;
    pl_trainer_shard(tr, &off, &len);
    memcpy(tr->params, state, sizeof(float) * tr->np);
    memcpy(tr->m, state + tr->np + off, sizeof(float) * len);
    memcpy(tr->v, state + 2 * tr->np + off, sizeof(float) * len);
    tr->adam_t = adam_steps;
}

void pl_trainer_gather_moments(pl_trainer *tr, float *m, float *v)
{
    pl_dist_gather(tr->m, m, tr->soff);
    pl_dist_gather(tr->v, v, tr->soff);
}

void pl_epoch_rng(uint64_t seed, long epoch, pl_rng *r)
{
    pl_rng_seed(r, seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(epoch + 1)));
}

void pl_epoch_order(uint64_t seed, long epoch, uint32_t *order, size_t n)
{
    pl_rng r;
    pl_epoch_rng(seed, epoch, &r);
    pl_rng_permutation(&r, order, n);
}

float *pl_trainer_moment1(pl_trainer *tr) { return tr->m; }
float *pl_trainer_moment2(pl_trainer *tr) { return tr->v; }
long pl_trainer_adam_steps(const pl_trainer *tr) { return tr->adam_t; }
void pl_trainer_set_adam_steps(pl_trainer *tr, long t) { tr->adam_t = t; }
const pl_train_opts *pl_trainer_opts(const pl_trainer *tr) { return &tr->o; }

/* The forward pass over the whole of ds, in chunks of the workspace's rows
 * split over the workers: summed loss and right answers into *loss and
 * *right, class probabilities into probs (n, C) when it is not NULL. */
static pl_status forward_all(pl_trainer *tr, const pl_dataset *ds, float *probs, double *loss,
                             long *right, pl_error *err)
{
    if (ds->n == 0)
        return pl_fail(err, PL_ERR_ARG, "nothing to evaluate: the set is empty");
    if (ds->T != tr->T || ds->D != tr->cfg.input)
        return pl_fail(err, PL_ERR_MISMATCH,
                       "data of %d x %d per item, the model expects %d x %d",
                       ds->T, ds->D, tr->T, tr->cfg.input);
    if (ds->n > (size_t)INT32_MAX)
        return pl_fail(err, PL_ERR_TOO_LARGE, "at most %d items per evaluation",
                       INT32_MAX);
    int n = (int)ds->n;
    int chunks = (n + tr->cap - 1) / tr->cap;
    uint32_t *idx = malloc(sizeof *idx * (size_t)n);
    double *el = calloc((size_t)chunks, sizeof *el);
    int *ec = calloc((size_t)chunks, sizeof *ec);
    if (!idx || !el || !ec) {
        free(idx);
        free(el);
        free(ec);
        return pl_fail(err, PL_ERR_NOMEM, "cannot allocate for evaluating %d items", n);
    }
    for (int i = 0; i < n; i++)
        idx[i] = (uint32_t)i;
    tr->job.kind = JOB_EVAL;
    tr->job.ds = ds;
    tr->job.idx = idx;
    tr->job.n = n;
    tr->job.chunks = chunks;
    tr->job.eval_loss = el;
    tr->job.eval_correct = ec;
    tr->job.probs = probs;
    pl_pool_run(tr->pool, worker, tr);
    tr->job.probs = NULL;
    *loss = 0;
    *right = 0;
    for (int c = 0; c < chunks; c++) {
        *loss += el[c];
        *right += ec[c];
    }
    free(idx);
    free(el);
    free(ec);
    return PL_OK;
}

pl_status pl_trainer_evaluate(pl_trainer *tr, const pl_dataset *ds,
                              double *accuracy, double *loss, pl_error *err)
{
    if (!ds->labels)
        return pl_fail(err, PL_ERR_ARG, "nothing to evaluate against: the set has no labels");
    double l;
    long right;
    pl_status rc = forward_all(tr, ds, NULL, &l, &right, err);
    if (rc)
        return rc;
    if (accuracy)
        *accuracy = (double)right / (double)ds->n;
    if (loss)
        *loss = l / (double)ds->n;
    return PL_OK;
}

pl_status pl_trainer_predict(pl_trainer *tr, const pl_dataset *ds, float *probs, pl_error *err)
{
    double l;
    long right;
    return forward_all(tr, ds, probs, &l, &right, err);
}
