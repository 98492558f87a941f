/* One training step over the worker pool, evaluation, and the epoch order.
 *
 * A step is one pool run with these phases, separated by barriers:
 *   1. pack: the folded gate weights, panels split over workers;
 *   2. shards: the batch is cut into S contiguous shards (S = workers, or a
 *      fixed count under --deterministic); each worker runs forward and
 *      backward on its shards, each shard into its own gradient buffer;
 *   3. reduce: the shard gradients are summed in shard order over parameter
 *      chunks split among the workers, with each chunk's sum of squares;
 *   4. update: every worker sums the chunk norms in chunk order (so all see
 *      the same clipping factor), checks for NaN/Inf, and applies Adam to its
 *      chunks.
 * Nothing in the step allocates. */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "internal.h"
#include "testing.h"

extern void openblas_set_num_threads(int n);

#define NCHUNK 256         /* fixed parameter chunks (norm and update) */
#define DET_SHARDS 16      /* shards per batch under --deterministic */
/* Shards per worker otherwise: 1, one each; more, claimed by whichever
 * worker is free, balance a worker slowed by another tenant at the cost of
 * smaller products (bench/ab-variants -DSHARDS_PER_WORKER=2 measures it). */
#ifndef SHARDS_PER_WORKER
#define SHARDS_PER_WORKER 1
#endif


enum { JOB_GRAD, JOB_STEP, JOB_EVAL };

struct pl_trainer {
    pl_config cfg;
    int T, W, threads, S_max, ncpu;
    double bytes;                 /* its buffers: workspaces, parameter-sized arrays */
    int cap;                      /* rows a workspace holds: a shard or an evaluation chunk */
    pl_train_opts o;
    pl_gemm_backend be;
    size_t np;
    float *params, *grad, *m, *v; /* (np) each */
    float **sgrad;                /* S_max shard gradients (np) */
    pl_ws **ws;                   /* one per worker */
    pl_packed *pk;
    pl_pool *pool;
    size_t chunk[NCHUNK + 1];     /* chunk c = [chunk[c], chunk[c+1]) */
    double chunk_sq[NCHUNK];
    double *shard_loss;           /* (S_max) */
    int *shard_correct;           /* (S_max) */
    int *pinned;                  /* (W) */
    int *cpus;                    /* (ncpu) CPUs this process may use */
    long adam_t;
    long fault_step;              /* test hook (testing.h): -1 = never */
    int fault_group;
    double (*prof)[PL_NPHASE + 8]; /* (W) phase seconds; padded rows */
    long prof_steps;
    struct {
        int kind, n, S, T;
        long next_shard; /* the next shard to claim (when S > W) */
        long step;
        const pl_dataset *ds;
        const uint32_t *idx;
        float lr;
        int nonfinite;
        double loss, norm;
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
    free(tr);
}

/* Adds the time since *t0 to worker w's phase ph and restarts the clock. */
static inline void lap(pl_trainer *tr, int w, pl_phase ph, double *t0)
{
    pl_lap(tr->prof ? tr->prof[w] : NULL, ph, t0);
}

static void barrier(pl_trainer *tr, int w, pl_phase ph, double *t0)
{
    lap(tr, w, ph, t0);
    pl_pool_barrier(tr->pool);
    lap(tr, w, PL_PH_WAIT, t0);
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

pl_trainer *pl_trainer_create(const pl_config *cfg, int T,
                              const pl_train_opts *o, pl_error *err)
{
    if (pl_config_check(cfg, err))
        return NULL;
    if (T < 1 || T > 65535) {
        pl_fail(err, PL_ERR_ARG, "time steps must be between 1 and 65535, got %d", T);
        return NULL;
    }
    if (!(o->dropout >= 0 && o->dropout < 1)) {
        pl_fail(err, PL_ERR_ARG, "dropout must be at least 0 and below 1, got %g",
                (double)o->dropout);
        return NULL;
    }
    if (o->batch < 1) {
        pl_fail(err, PL_ERR_ARG, "batch must be at least 1, got %d", o->batch);
        return NULL;
    }
    if (!pl_gemm_available(o->gemm)) {
        pl_fail(err, PL_ERR_ARG, "the %s GEMM backend needs a CPU with AVX-512",
                pl_gemm_name(o->gemm));
        return NULL;
    }
    pl_trainer *tr = calloc(1, sizeof *tr);
    if (!tr) {
        pl_fail(err, PL_ERR_NOMEM, "cannot allocate the trainer");
        return NULL;
    }
    tr->cfg = *cfg;
    tr->T = T;
    tr->o = *o;
    tr->fault_step = -1;
    tr->be = pl_gemm_resolve(o->gemm);
    tr->W = o->workers;
    tr->threads = o->threads;
    pl_resolve_parallelism(cfg, o->batch, pl_cpu_count(), &tr->W, &tr->threads);
    if (tr->W > o->batch) {
        pl_fail(err, PL_ERR_ARG,
                "batch %d is smaller than workers %d: every worker needs at "
                "least one row",
                o->batch, tr->W);
        free(tr);
        return NULL;
    }
    /* a thread owns whole gate panels: more threads than panels would idle
     * (the program warns when it asked for more) */
    const int panels = (cfg->hidden + PL_UNIT_BLOCK - 1) / PL_UNIT_BLOCK;
    if (tr->threads > panels)
        tr->threads = panels;
    if (tr->W > 1024 || tr->threads > 1024) {
        pl_fail(err, PL_ERR_ARG, "at most 1024 workers and 1024 threads, got %d x %d",
                tr->W, tr->threads);
        free(tr);
        return NULL;
    }
    tr->o.workers = tr->W;
    tr->o.threads = tr->threads;
    tr->S_max = o->deterministic ? (o->batch < DET_SHARDS ? o->batch : DET_SHARDS)
                : tr->W == 1 ? 1
                : (o->batch < tr->W * SHARDS_PER_WORKER ? tr->W : tr->W * SHARDS_PER_WORKER);
    tr->cap = (o->batch + tr->S_max - 1) / tr->S_max;
    if (o->deterministic && tr->cap < 16)
        tr->cap = 16; /* evaluation chunks */
    tr->np = pl_param_count(cfg);
    /* refuse what cannot fit rather than be killed when the pages are touched */
    double need = tr->W * pl_ws_estimate(cfg, T, tr->cap, tr->threads) +
                  (double)(6 + tr->S_max) * (double)tr->np * sizeof(float);
    tr->bytes = need;
    double have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (have > 0 && need > 0.9 * have) {
        pl_fail(err, PL_ERR_TOO_LARGE,
                "this model and batch need %.1f GiB of buffers for %d time steps, the machine "
                "has %.1f GiB (smaller --batch, --hidden or --layers)",
                need / 1073741824.0, T, have / 1073741824.0);
        free(tr);
        return NULL;
    }
    for (int c = 0; c <= NCHUNK; c++)
        tr->chunk[c] = c == NCHUNK ? tr->np : (tr->np * (size_t)c / NCHUNK) & ~(size_t)15;

    tr->params = pl_alloc_floats(tr->np);
    tr->grad = pl_alloc_floats(tr->np);
    tr->m = pl_alloc_floats(tr->np);
    tr->v = pl_alloc_floats(tr->np);
    tr->sgrad = calloc((size_t)tr->S_max, sizeof *tr->sgrad);
    tr->ws = calloc((size_t)tr->W, sizeof *tr->ws);
    tr->shard_loss = calloc((size_t)tr->S_max, sizeof *tr->shard_loss);
    tr->shard_correct = calloc((size_t)tr->S_max, sizeof *tr->shard_correct);
    tr->pinned = calloc((size_t)tr->W, sizeof *tr->pinned);
    tr->pk = pl_packed_create(cfg, tr->be);
    if (o->profile)
        tr->prof = calloc((size_t)tr->W, sizeof *tr->prof);
    int ok = tr->params && tr->grad && tr->m && tr->v && tr->sgrad && tr->ws &&
             tr->shard_loss && tr->shard_correct && tr->pinned && tr->pk &&
             (!o->profile || tr->prof);
    cpu_set_t set;
    tr->ncpu = 0;
    if (ok && (tr->cpus = calloc(CPU_SETSIZE, sizeof *tr->cpus)) != NULL &&
        sched_getaffinity(0, sizeof set, &set) == 0)
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &set))
                tr->cpus[tr->ncpu++] = c;
    if (!ok || !tr->cpus) {
        pl_fail(err, PL_ERR_NOMEM,
                "cannot allocate buffers for %d workers (%zu parameters)",
                tr->W, tr->np);
        free_all(tr);
        return NULL;
    }
    if (tr->ncpu == 0)
        tr->cpus[tr->ncpu++] = 0;
    if (!(tr->pool = pl_pool_create(tr->W, err))) {
        free_all(tr);
        return NULL;
    }
    /* each worker allocates (and so first touches) its workspace and its
     * shards' gradient buffers itself: on a machine of several memory
     * nodes they live next to the core that uses them */
    tr->job.T = T;
    pl_pool_run(tr->pool, create_buffers, tr);
    for (int w = 0; ok && w < tr->W; w++)
        ok = tr->ws[w] != NULL;
    for (int s = 0; ok && s < tr->S_max; s++)
        ok = tr->sgrad[s] != NULL;
    if (!ok) {
        pl_fail(err, PL_ERR_NOMEM, "cannot allocate buffers for %d workers (%zu parameters)",
                tr->W, tr->np);
        free_all(tr);
        return NULL;
    }
    for (int w = 0; tr->prof && w < tr->W; w++)
        pl_ws_set_profile(tr->ws[w], tr->prof[w]);
    if (tr->be == PL_GEMM_BLAS)
        openblas_set_num_threads(1); /* W x T threads, no more */
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

float *pl_trainer_params(pl_trainer *tr) { return tr->params; }
const float *pl_trainer_grad(const pl_trainer *tr) { return tr->grad; }
const pl_config *pl_trainer_config(const pl_trainer *tr) { return &tr->cfg; }
int pl_trainer_workers(const pl_trainer *tr) { return tr->W; }
int pl_trainer_threads(const pl_trainer *tr) { return tr->threads; }
double pl_trainer_bytes(const pl_trainer *tr) { return tr->bytes; }

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

static void worker_run(pl_trainer *tr, int w)
{
    const int W = tr->W;
    pin_once(tr, w);
    double t0 = tr->prof ? pl_seconds() : 0;
    pl_packed_update(tr->pk, tr->params, w, W);
    barrier(tr, w, PL_PH_PACK, &t0);
    if (tr->job.kind == JOB_EVAL) {
        eval_part(tr, w);
        return;
    }
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
        pl_split(tr->job.n, (int)s, tr->job.S, &r0, &r1);
        pl_ws_load_u8(tr->ws[w], tr->job.ds, tr->job.idx + r0, (int)(r1 - r0));
        /* the step's masks: a function of (seed, step) and each row's item */
        pl_ws_set_dropout(tr->ws[w], tr->o.dropout,
                          tr->o.seed * 0x9E3779B97F4A7C15ull ^ (uint64_t)(tr->job.step + 1));
        tr->shard_loss[s] = pl_lstm_forward(tr->ws[w], tr->pk, tr->params,
                                            &tr->shard_correct[s], NULL);
        pl_lstm_backward(tr->ws[w], tr->pk, tr->params, (float)tr->job.n,
                         tr->sgrad[s]);
        if (s == 0 && tr->fault_step >= 0 && tr->job.step == tr->fault_step) {
            pl_group g[PL_MAX_GROUPS];
            int ng = pl_param_groups(&tr->cfg, g);
            tr->sgrad[s][g[tr->fault_group % ng].offset + 1] = NAN;
        }
    }
    if (tr->prof)
        t0 = pl_seconds(); /* the shard phases were timed inside the workspace */
    pl_pool_barrier(tr->pool);
    lap(tr, w, PL_PH_WAIT, &t0);
    long c0, c1;
    pl_split(NCHUNK, w, W, &c0, &c1);
    for (long c = c0; c < c1; c++) {
        size_t a = tr->chunk[c], b = tr->chunk[c + 1];
        memcpy(tr->grad + a, tr->sgrad[0] + a, sizeof(float) * (b - a));
        for (int s = 1; s < tr->job.S; s++) {
            const float *src = tr->sgrad[s];
            for (size_t i = a; i < b; i++)
                tr->grad[i] += src[i];
        }
        tr->chunk_sq[c] = pl_sum_squares(tr->grad + a, b - a);
    }
    if (tr->job.kind == JOB_GRAD) {
        lap(tr, w, PL_PH_REDUCE, &t0);
        return;
    }
    barrier(tr, w, PL_PH_REDUCE, &t0);
    double loss = 0, sq = 0;
    for (int s = 0; s < tr->job.S; s++)
        loss += tr->shard_loss[s];
    for (int c = 0; c < NCHUNK; c++)
        sq += tr->chunk_sq[c];
    if (!isfinite(loss) || !isfinite(sq)) {
        if (w == 0)
            tr->job.nonfinite = 1;
        return;
    }
    double norm = sqrt(sq);
    float scale = tr->o.clip > 0 && norm > tr->o.clip ? (float)(tr->o.clip / norm) : 1.0f;
    for (long c = c0; c < c1; c++) {
        size_t a = tr->chunk[c], b = tr->chunk[c + 1];
        pl_adam(tr->params + a, tr->grad + a, tr->m + a, tr->v + a, b - a,
                tr->job.lr, tr->o.beta1, tr->o.beta2, tr->o.eps,
                tr->adam_t + 1, scale);
    }
    lap(tr, w, PL_PH_ADAM, &t0);
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
    tr->job.kind = kind;
    tr->job.ds = ds;
    tr->job.idx = idx;
    tr->job.n = n;
    tr->job.S = n < tr->S_max ? n : tr->S_max;
    tr->job.next_shard = 0;
    tr->job.lr = lr;
    tr->job.step = step;
    tr->job.nonfinite = 0;
    pl_pool_run(tr->pool, worker, tr);
    double loss = 0, sq = 0;
    int correct = 0;
    for (int s = 0; s < tr->job.S; s++) {
        loss += tr->shard_loss[s];
        correct += tr->shard_correct[s];
    }
    for (int c = 0; c < NCHUNK; c++)
        sq += tr->chunk_sq[c];
    if (st) {
        st->loss = loss / n;
        st->correct = correct;
        st->grad_norm = sqrt(sq);
        st->lr = lr;
    }
    if (!isfinite(loss) || !isfinite(sq)) {
        pl_group g[PL_MAX_GROUPS];
        int ng = pl_param_groups(&tr->cfg, g);
        const char *where = "the loss";
        size_t at = 0;
        for (size_t i = 0; i < tr->np; i++)
            if (!isfinite(tr->grad[i])) {
                for (int k = 0; k < ng; k++)
                    if (i >= g[k].offset && i < g[k].offset + g[k].size) {
                        where = g[k].name;
                        at = i - g[k].offset;
                    }
                break;
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
