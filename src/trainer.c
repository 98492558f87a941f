/* The trainer: its options and their defaults, the parallelism it chooses,
 * construction and release, and the public accessors. A step runs in
 * step.c, evaluation in evaluate.c; the state they share is declared in
 * trainer_impl.h. */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "testing.h"
#include "trainer_impl.h"

extern void openblas_set_num_threads(int n);

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

/* Gate weights (bytes as the products read them, all layers) above which
 * the automatic choice puts OpenMP threads before workers: on 2 cores of an
 * AMD EPYC (Zen 5, 1 MiB L2), 2x1 ran 13% faster than 1x2 at hidden 256
 * (1.2 MB in fp32), 11% at 384 (2.5 MB), 3% at 512 (4.4 MB), 1.5% at 768
 * (10 MB), 2% slower at 1024 (bench/results/parallelism-choice.txt). */
#define PL_WEIGHTS_THREADS_FIRST (4.0 * 1024.0 * 1024.0)

/* Data parallelism first (it needs no synchronisation inside a step), but
 * keep shards of at least 16 rows so that the GEMMs stay efficient; the
 * remaining cores become OpenMP threads inside each worker, at most one per
 * gate panel (a thread owns whole panels). weight_bytes: the bytes of one
 * gate weight as the products read it (4 in fp32, 2 in bf16). */
void pl_resolve_parallelism_bytes(const pl_config *cfg, int weight_bytes, int batch, int cpus,
                                  int *workers, int *threads)
{
    const int panels = (cfg->hidden + PL_UNIT_BLOCK - 1) / PL_UNIT_BLOCK;
    const int by_rows = batch / 16 > 1 ? batch / 16 : 1; /* shards of 16 rows or more */
    if (cpus < 1)
        cpus = 1;
    if (*workers <= 0 && *threads <= 0) {
        /* every worker streams all the gate weights once per time step: when
         * they are large (PL_WEIGHTS_THREADS_FIRST), threads, which each read
         * only their own gate panels, come first (two panels or more each) */
        double Hp = panels * PL_UNIT_BLOCK, bytes = 0;
        for (int l = 0; l < cfg->layers; l++)
            bytes += (double)weight_bytes * ((l ? Hp : cfg->input) + 1 + Hp) * 4 * Hp;
        int w, t;
        if (bytes <= PL_WEIGHTS_THREADS_FIRST) {
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

void pl_resolve_parallelism(const pl_config *cfg, int batch, int cpus, int *workers,
                            int *threads)
{
    pl_resolve_parallelism_bytes(cfg, 4, batch, cpus, workers, threads);
}

static void create_buffers(void *ctx, int w);

static void free_all(pl_trainer *tr)
{
    if (tr->pool)
        pl_pool_free(tr->pool);
    if (tr->ws)
        for (int w = 0; w < tr->W; w++)
            pl_ws_free(tr->ws[w]);
    if (tr->sgrad)
        for (int s = 0; s < tr->S_max; s++)
            if (tr->sgrad[s] != tr->grad)
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
    free(tr->bal);
    free(tr->bal_sorted);
    free(tr->bal_cnt);
    free(tr->cpus);
    free(tr->prof);
    free(tr->schunk);
    free(tr->soff);
    free(tr->agree);
    free(tr->ready);
    pl_step_plan_free(&tr->plan);
    pl_xfer_free(tr->sends);
    pl_xfer_free(tr->recvs);
    free(tr);
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

/* The arguments pl_trainer_create refuses before it allocates anything. */
static pl_status check_args(const pl_config *cfg, int T, const pl_train_opts *o, int R, pl_error *err)
{
    pl_status rc = pl_config_check(cfg, err);
    if (rc)
        return rc;
    if (T < 1 || T > 65535)
        return pl_fail(err, PL_ERR_ARG, "time steps must be between 1 and 65535, got %d", T);
    if (!(o->dropout >= 0 && o->dropout < 1))
        return pl_fail(err, PL_ERR_ARG, "dropout must be at least 0 and below 1, got %g",
                       (double)o->dropout);
    if (o->batch < 1)
        return pl_fail(err, PL_ERR_ARG, "batch must be at least 1, got %d", o->batch);
    if (o->warmup < 0)
        return pl_fail(err, PL_ERR_ARG, "warm-up steps must be at least 0, got %ld", o->warmup);
    if ((unsigned)o->lr_scaling > PL_LR_SCALE_SQRT || (unsigned)o->init > PL_INIT_LAST ||
        (unsigned)o->precision > PL_PRECISION_BF16 || (unsigned)o->optimizer > PL_OPT_RMSPROP)
        return pl_fail(err, PL_ERR_ARG,
                       "unknown rate scaling %d, init %d, precision %d or optimizer %d",
                       (int)o->lr_scaling, (int)o->init, (int)o->precision, (int)o->optimizer);
    /* the decay multiplies the parameters by 1 - rate x decay: above 0 */
    if (!(o->weight_decay >= 0 && (double)pl_lr_peak(o) * o->weight_decay < 1))
        return pl_fail(err, PL_ERR_ARG, "weight decay %g at a peak rate of %g: their product "
                       "must be at least 0 and below 1", (double)o->weight_decay,
                       (double)pl_lr_peak(o));
    if (!pl_gemm_available(o->gemm))
        return pl_fail(err, PL_ERR_ARG, "the %s kernels need %s; this CPU cannot run them",
                       pl_gemm_name(o->gemm), pl_gemm_requires(o->gemm));
    if (R > 1 && !o->deterministic && o->batch < R)
        return pl_fail(err, PL_ERR_ARG, "batch %d is smaller than the %d ranks: every rank needs at "
                       "least one row", o->batch, R);
    return PL_OK;
}

/* Workers and threads: asked for, or chosen for the shape and the CPUs
 * (pl_resolve_parallelism), within what the batch and the panels allow. */
static pl_status choose_parallelism(pl_trainer *tr, pl_error *err)
{
    const int R = tr->R;
    /* the rows of a batch that each rank gets, and the CPUs: ranks on one
     * host that may all run on every CPU (not bound to their own) share them */
    const int rows = tr->o.batch / R > 0 ? tr->o.batch / R : 1;
    int cpus = pl_cpu_count();
    const int local = pl_dist_local_ranks();
    if (local > 1 && (long)cpus * local > sysconf(_SC_NPROCESSORS_ONLN))
        cpus = cpus / local > 0 ? cpus / local : 1;
    pl_resolve_parallelism_bytes(&tr->cfg, tr->o.precision == PL_PRECISION_BF16 ? 2 : 4, rows,
                                 cpus, &tr->W, &tr->threads);
    if (tr->W > rows && R == 1)
        return pl_fail(err, PL_ERR_ARG,
                       "batch %d is smaller than workers %d: every worker needs at least one row",
                       tr->o.batch, tr->W);
    if (tr->W > rows && !tr->o.deterministic)
        return pl_fail(err, PL_ERR_ARG,
                       "batch %d over %d ranks leaves %d rows for a rank, fewer than its %d "
                       "workers: every worker needs at least one row",
                       tr->o.batch, R, rows, tr->W);
    /* a thread owns whole gate panels: more threads than panels would idle
     * (the program warns when it asked for more) */
    const int panels = (tr->cfg.hidden + PL_UNIT_BLOCK - 1) / PL_UNIT_BLOCK;
    if (tr->threads > panels)
        tr->threads = panels;
    if (tr->W > 1024 || tr->threads > 1024)
        return pl_fail(err, PL_ERR_ARG, "at most 1024 workers and 1024 threads, got %d x %d",
                       tr->W, tr->threads);
    tr->o.workers = tr->W;
    tr->o.threads = tr->threads;
    return PL_OK;
}

/* Whether the one shard's gradient buffer is grad itself: with one shard
 * a step and no --deterministic, the in-process sum is that shard's
 * gradient, and a copy of it (a pass over every parameter) is saved. */
static int shard_is_grad(const pl_trainer *tr) { return !tr->o.deterministic && tr->S_max == 1; }

/* Shards, their rows, the parameter chunks and this rank's slice of them;
 * refuses what the machine's memory cannot hold. */
static pl_status size_buffers(pl_trainer *tr, pl_error *err)
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
    if (R > 1 && tr->np > (size_t)INT32_MAX)
        return pl_fail(err, PL_ERR_TOO_LARGE, "%zu parameters: at most %d across ranks", tr->np,
                       INT32_MAX);
    pl_chunks(tr->np, tr->chunk);
    tr->schunk = calloc((size_t)R + 1, sizeof *tr->schunk);
    tr->soff = calloc((size_t)R + 1, sizeof *tr->soff);
    if (!tr->schunk || !tr->soff)
        return pl_fail(err, PL_ERR_NOMEM, "cannot allocate the trainer");
    pl_rank_slices(tr->chunk, R, tr->schunk, tr->soff);
    tr->my_len = tr->soff[tr->rank + 1] - tr->soff[tr->rank];
    tr->leaves_max = tr->o.deterministic ? DET_SHARDS : R;
    tr->max_blk = tr->o.deterministic ? DET_SHARDS : R;
    tr->n_agree = NCHUNK + 2 * (size_t)tr->leaves_max + 2 * (size_t)R;
    /* refuse what cannot fit rather than be killed when the pages are touched:
     * six parameter-sized arrays and the shards' (of Adam's two moments, a rank
     * keeps its slice; with several ranks, the slices received: about one;
     * with bf16, the packed weights' pairs: at most one; a lone shard's is
     * grad's) */
    const int pairs = tr->o.precision == PL_PRECISION_BF16;
    double need = tr->W * pl_ws_estimate(&tr->cfg, tr->T, tr->cap, tr->threads) +
                  ((double)(6 + tr->S_max - shard_is_grad(tr) + (R > 1) + pairs) *
                       (double)tr->np -
                   2.0 * (double)(tr->np - tr->my_len)) * sizeof(float);
    tr->bytes = need;
    double have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (have > 0 && need > 0.9 * have)
        return pl_fail(err, PL_ERR_TOO_LARGE,
                       "this model and batch need %.1f GiB of buffers for %d time steps, the machine "
                       "has %.1f GiB (smaller --batch, --hidden or --layers)",
                       need / 1073741824.0, tr->T, have / 1073741824.0);

    return PL_OK;
}

/* Every buffer of the trainer and its pool; each worker allocates its own
 * workspace and shard buffers (first touch). */
static pl_status alloc_buffers(pl_trainer *tr, pl_error *err)
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
    tr->bal = calloc((size_t)tr->o.batch, sizeof *tr->bal);
    tr->bal_sorted = calloc((size_t)tr->o.batch, sizeof *tr->bal_sorted);
    tr->bal_cnt = calloc((size_t)tr->T + 1, sizeof *tr->bal_cnt);
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
    if (tr->pk && pl_packed_set_precision(tr->pk, tr->o.precision, NULL)) {
        pl_packed_free(tr->pk);
        tr->pk = NULL;
    }
    if (tr->o.profile)
        tr->prof = calloc((size_t)tr->W, sizeof *tr->prof);
    int ok = tr->params && tr->grad && tr->m && tr->v && tr->sgrad && tr->ws &&
             tr->shard_loss && tr->shard_correct && tr->pinned && tr->bal && tr->bal_sorted &&
             tr->bal_cnt && tr->pk && tr->agree && tr->ready && x->blo && x->bhi && x->bsize &&
             x->brank && x->slot && tr->sends && tr->recvs && (!tr->o.profile || tr->prof);
    tr->ncpu = 0;
    if (ok && (tr->cpus = calloc(CPU_SETSIZE, sizeof *tr->cpus)) != NULL)
        tr->ncpu = pl_cpu_list(tr->cpus, CPU_SETSIZE);
    if (!ok || !tr->cpus)
        return pl_fail(err, PL_ERR_NOMEM,
                       "cannot allocate buffers for %d workers (%zu parameters)",
                       tr->W, tr->np);
    if (tr->ncpu == 0)
        tr->cpus[tr->ncpu++] = 0;
    if (!(tr->pool = pl_pool_create(tr->W, err)))
        return err->code;
    /* each worker allocates (and so first touches) its workspace and its
     * shards' gradient buffers itself: on a machine of several memory
     * nodes they live next to the core that uses them */
    tr->job.T = tr->T;
    pl_pool_run(tr->pool, create_buffers, tr);
    for (int w = 0; ok && w < tr->W; w++)
        ok = tr->ws[w] != NULL;
    for (int s = 0; ok && s < tr->S_max; s++)
        ok = tr->sgrad[s] != NULL;
    if (!ok)
        return pl_fail(err, PL_ERR_NOMEM, "cannot allocate buffers for %d workers (%zu parameters)",
                       tr->W, tr->np);
    pl_status rc = pl_step_plan(tr, tr->o.batch, err);
    if (rc)
        return rc;
    for (int w = 0; tr->prof && w < tr->W; w++)
        pl_ws_set_profile(tr->ws[w], tr->prof[w]);
    if (tr->be == PL_GEMM_BLAS)
        openblas_set_num_threads(1); /* W x T threads, no more */
    return PL_OK;
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
    pl_model_init_steps(cfg, tr->params, o->init, o->seed, T);
    return tr;
}

void pl_trainer_free(pl_trainer *tr)
{
    if (tr)
        free_all(tr);
}

/* Test hooks (testing.h): nothing without PL_TEST_HOOKS. */
void pl_trainer_set_fault(pl_trainer *tr, long step, int group)
{
#ifdef PL_TEST_HOOKS
    tr->fault_step = step;
    tr->fault_group = group < 0 ? 0 : group;
#else
    (void)tr, (void)step, (void)group;
#endif
}

void pl_trainer_set_diverge(pl_trainer *tr, long step)
{
#ifdef PL_TEST_HOOKS
    tr->diverge_step = step;
#else
    (void)tr, (void)step;
#endif
}

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

/* Pool job of pl_trainer_create: worker w's workspace and the gradient
 * buffers of the shards it computes (shard w; under --deterministic, its
 * share of the fixed shards), allocated and zeroed by the worker itself. */
static void create_buffers(void *ctx, int w)
{
    pl_trainer *tr = ctx;
    pl_step_pin_once(tr, w);
    tr->ws[w] = pl_ws_create(&tr->cfg, tr->job.T, tr->cap, tr->threads, tr->be);
    if (tr->ws[w])
        pl_ws_set_precision(tr->ws[w], tr->o.precision);
    long s0, s1;
    pl_split(tr->S_max, w, tr->W, &s0, &s1);
    for (long s = s0; s < s1; s++)
        tr->sgrad[s] = shard_is_grad(tr) ? tr->grad : pl_alloc_floats(tr->np);
}

void pl_trainer_watch_stop(pl_trainer *tr, volatile sig_atomic_t *flag) { tr->stop_flag = flag; }

pl_status pl_trainer_check_ranks(pl_trainer *tr, pl_error *err)
{
    double crc = pl_step_params_crc(tr);
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

float *pl_trainer_moment1(pl_trainer *tr) { return tr->m; }
float *pl_trainer_moment2(pl_trainer *tr) { return tr->v; }
long pl_trainer_adam_steps(const pl_trainer *tr) { return tr->adam_t; }
void pl_trainer_set_adam_steps(pl_trainer *tr, long t) { tr->adam_t = t; }
const pl_train_opts *pl_trainer_opts(const pl_trainer *tr) { return &tr->o; }
