/* One training step over the worker pool: one engine for one rank or R
 * ranks (dist.c); with one rank the phases that cross ranks do nothing.
 * The parameters are cut into R slices of whole chunks (one slice with one
 * rank); rank q owns slice q and its Adam moments. A step is one pool run
 * (worker_run) with these phases, barriers between them:
 *   1. pack: the folded gate weights, panels split over workers;
 *   2. shards: this rank's rows of the batch are cut into contiguous shards
 *      (S = workers, or under --deterministic the fixed shards of the whole
 *      batch that this rank owns); each worker runs forward and backward on
 *      its shards, each shard into its own gradient buffer;
 *   3. reduce and send: the shard gradients are summed over chunks split
 *      among the workers (in shard order; under --deterministic in a fixed
 *      binary tree over the batch's 16 shards), slice by slice; each slice
 *      goes to its owner as soon as it is summed (point-to-point,
 *      overlapping the rest of the reduction);
 *   4. exchange: the other ranks' parts of this rank's slice arrive;
 *   5. slice: the owner completes its slice's sums (under --deterministic
 *      the same tree, whose subtrees the ranks sent) and each chunk's sum
 *      of squares;
 *   6. agree: one small all-reduce gives every rank every chunk norm,
 *      every leaf's loss, the stop flags and, every 100 steps, a checksum
 *      of each rank's parameters; every worker derives the totals from
 *      them (totals_of), the same bits everywhere;
 *   7. update: clipping by the total norm, NaN/Inf checks, Adam on each
 *      worker's chunks of this rank's slice.
 * After the pool an all-gather gives every rank the whole updated
 * parameters (run_batch).
 * Nothing in the step allocates. */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "testing.h"
#include "trainer_impl.h"

void pl_step_plan_free(xplan *x)
{
    free(x->blo);
    free(x->bhi);
    free(x->bsize);
    free(x->brank);
    free(x->slot);
    pl_free(x->rbuf);
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

pl_status pl_step_plan(pl_trainer *tr, int n, pl_error *err)
{
    xplan *x = &tr->plan;
    const int R = tr->R, r = tr->rank;
    const size_t my_len = tr->soff[r + 1] - tr->soff[r];
    x->nblk = x->my0 = x->my1 = 0;
    if (tr->o.deterministic) {
        x->leaves = n < DET_SHARDS ? n : DET_SHARDS;
        for (int q = 0; q < R; q++) {
            long lo, hi;
            pl_split(x->leaves, q, R, &lo, &hi);
            if (q == r) {
                x->leaf0 = (int)lo;
                x->S_local = (int)(hi - lo);
                x->my0 = x->nblk;
            }
            int k = pl_tree_blocks((int)lo, (int)hi, x->leaves, x->blo + x->nblk, x->bhi + x->nblk,
                                   x->bsize + x->nblk);
            for (int j = x->nblk; j < x->nblk + k; j++)
                x->brank[j] = q;
            x->nblk += k;
            if (q == r)
                x->my1 = x->nblk;
        }
    } else {
        x->leaves = R;
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
            return pl_fail(err, PL_ERR_NOMEM, "cannot allocate for a batch of %d rows", n);
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
    return PL_OK;
}

static void worker_run(pl_trainer *tr, int w);

static void pin_self(const pl_trainer *tr, int slot)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(tr->cpus[slot % tr->ncpu], &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

void pl_step_pin_once(pl_trainer *tr, int w)
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

/* Every run of the pool starts here: worker w pinned (once, with --pin) and
 * its share of the packed weights prepared (and, with bf16, of their bf16
 * pairs after them), then the barrier after which every worker may read
 * all of them. */
void pl_step_pack(pl_trainer *tr, int w, double *t0)
{
    pl_step_pin_once(tr, w);
    pl_packed_update(tr->pk, tr->params, w, tr->W);
    barrier(tr, w, PL_PH_PACK, t0);
    if (tr->o.precision == PL_PRECISION_BF16) { /* the bf16 pairs of the packed weights */
        pl_packed_pair(tr->pk, w, tr->W);
        barrier(tr, w, PL_PH_PACK, t0);
    }
}

/* Every worker computes with subnormals flushed (see cpu.c). */
void pl_step_worker(void *ctx, int w)
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
 * --deterministic, subtrees of its shards, in place in their first shard's
 * buffer) or the sum of its shards in shard order, into grad. */
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
            for (int j = x->my0; j < x->my1; j++)
                pl_tree_node(p, have, x->blo[j], x->bsize[j], x->leaves, b - a);
        } else if (S > 0) {
            if (tr->sgrad[0] != tr->grad) /* one shard: already there */
                memcpy(tr->grad + a, tr->sgrad[0] + a, sizeof(float) * (b - a));
            for (int k = 1; k < S; k++) {
                const float *src = tr->sgrad[k];
                for (size_t i = a; i < b; i++)
                    tr->grad[i] += src[i];
            }
        }
    }
}

/* The owner's sums of chunks [c0, c1) of its slice, from its own blocks and
 * the slices the others sent (none with one rank): under --deterministic
 * the rest of the fixed tree, otherwise its own sum plus the others' in
 * rank order; into grad, with each chunk's sum of squares. */
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
            float *root = pl_tree_node(p, have, 0, pl_tree_root(x->leaves), x->leaves, b - a);
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

/* The step's agreement, tr->agree cut into its slots. Each slot has one
 * writer; with several ranks pl_dist_sum adds the ranks' copies. */
typedef struct {
    double *sq;      /* (NCHUNK) each parameter chunk's sum of squares */
    double *loss;    /* (leaves_max) each leaf's summed loss */
    double *correct; /* (leaves_max) each leaf's right answers */
    double *stop;    /* (R) each rank's stop flag */
    double *crc;     /* (R) each rank's parameter checksum + 1, or 0 */
} agreement;

static agreement slots_of(const pl_trainer *tr)
{
    agreement a = {.sq = tr->agree};
    a.loss = a.sq + NCHUNK;
    a.correct = a.loss + tr->leaves_max;
    a.stop = a.correct + tr->leaves_max;
    a.crc = a.stop + tr->R;
    return a;
}

/* This rank's leaves (its shards under --deterministic, else the rank
 * itself), its stop flag and its checksum, into the slots. */
static void post_leaves(pl_trainer *tr)
{
    const agreement a = slots_of(tr);
    const xplan *x = &tr->plan;
    for (int k = 0; k < tr->job.S; k++) {
        const int leaf = tr->o.deterministic ? x->leaf0 + k : tr->rank;
        a.loss[leaf] += tr->shard_loss[k];
        a.correct[leaf] += tr->shard_correct[k];
    }
    a.stop[tr->rank] = tr->stop_flag ? *tr->stop_flag : 0;
    a.crc[tr->rank] = tr->job.crc;
}

/* What a step adds up to, from the slots (every chunk and leaf filled). */
typedef struct {
    double loss, sq;
    long correct;
    int stop;      /* a rank's stop flag (the last rank's that has one) */
    int differ;    /* the last rank whose checksum differs from rank 0's, or 0 */
    int nonfinite; /* the loss or the gradient's norm is not finite */
} step_totals;

/* The one place where a step's totals are summed: leaves and chunks in
 * order, so that every worker and every rank gets the same bits. */
static step_totals totals_of(const pl_trainer *tr)
{
    const agreement a = slots_of(tr);
    step_totals t = {0};
    for (int l = 0; l < tr->plan.leaves; l++) {
        t.loss += a.loss[l];
        t.correct += (long)a.correct[l];
    }
    for (int c = 0; c < NCHUNK; c++)
        t.sq += a.sq[c];
    for (int q = tr->R - 1; q >= 0; q--) {
        if (a.stop[q] != 0)
            t.stop = (int)a.stop[q];
        if (a.crc[q] != a.crc[0])
            t.differ = q;
    }
    t.nonfinite = !isfinite(t.loss) || !isfinite(t.sq);
    return t;
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
            pl_split(tr->job.n, x->leaf0 + (int)s, x->leaves, &r0, &r1);
        } else {
            pl_split(x->r1 - x->r0, (int)s, tr->job.S, &r0, &r1);
            r0 += x->r0;
            r1 += x->r0;
        }
        pl_ws_load(tr->ws[w], tr->job.ds, tr->job.idx + r0, (int)(r1 - r0));
        /* the step's masks: a function of (seed, step) and each row's item */
        pl_ws_set_dropout(tr->ws[w], tr->o.dropout,
                          tr->o.seed * 0x9E3779B97F4A7C15ull ^ (uint64_t)(tr->job.step + 1));
        tr->shard_loss[s] = pl_lstm_forward(tr->ws[w], tr->pk, tr->params,
                                            &tr->shard_correct[s], NULL);
        pl_lstm_backward(tr->ws[w], tr->pk, tr->params, (float)tr->job.n,
                         tr->sgrad[s]);
#ifdef PL_TEST_HOOKS /* a NaN into the batch's first shard (testing.h) */
        if (s == 0 && x->leaf0 == 0 && (tr->o.deterministic || tr->rank == 0) &&
            tr->fault_step >= 0 && tr->job.step == tr->fault_step) {
            pl_group g[PL_MAX_GROUPS];
            int ng = pl_param_groups(&tr->cfg, g);
            tr->sgrad[s][g[tr->fault_group % ng].offset + 1] = NAN;
        }
#endif
    }
}

static void adam_chunks(pl_trainer *tr, long c0, long c1, float scale)
{
    const size_t off = tr->soff[tr->rank];
    const pl_adam_k ak =
        tr->o.optimizer == PL_OPT_RMSPROP
            ? pl_rmsprop_constants(tr->job.lr, PL_RMSPROP_ALPHA, tr->o.eps, scale,
                                   tr->o.weight_decay)
            : pl_adam_constants(tr->job.lr, tr->o.beta1, tr->o.beta2, tr->o.eps,
                                tr->adam_t + 1, scale, tr->o.weight_decay);
    for (long c = c0; c < c1; c++) {
        size_t a = tr->chunk[c], b = tr->chunk[c + 1];
        tr->k->adam(tr->params + a, tr->grad + a, tr->m + (a - off), tr->v + (a - off), b - a,
                    &ak);
    }
}

/* Worker w's share [c0, c1) of this rank's slice of the chunks (with one
 * rank, of all of them). */
static void my_chunks(const pl_trainer *tr, int w, long *c0, long *c1)
{
    const int first = tr->schunk[tr->rank];
    pl_split(tr->schunk[tr->rank + 1] - first, w, tr->W, c0, c1);
    *c0 += first;
    *c1 += first;
}

/* Phase 3: the in-process sums, slice by slice in sending order, each
 * worker its share of each; worker 0 sends every slice that all workers
 * have finished to its owner. With one rank: one slice, nothing sent. */
static void reduce_and_send(pl_trainer *tr, int w, double *t0)
{
    for (int k = 0; k < tr->R; k++) {
        const int q = slice_at(tr, k);
        long c0, c1;
        pl_split(tr->schunk[q + 1] - tr->schunk[q], w, tr->W, &c0, &c1);
        reduce_local(tr, tr->schunk[q] + c0, tr->schunk[q] + c1);
        if (q != tr->rank)
            __atomic_add_fetch(&tr->ready[q], 1, __ATOMIC_RELEASE);
        if (w == 0 && tr->R > 1) {
            lap(tr, w, PL_PH_REDUCE, t0);
            post_sends(tr, 0);
            lap(tr, w, PL_PH_COMM, t0);
        }
    }
}

/* Phase 4: the other ranks' parts of this rank's slice received (worker 0
 * finishes the sends and waits; the others wait at the barriers). Nothing
 * to wait for with one rank: a worker's chunks in phase 5 are the ones it
 * summed in phase 3. */
static void exchange(pl_trainer *tr, int w, double *t0)
{
    if (tr->R == 1)
        return;
    barrier(tr, w, PL_PH_REDUCE, t0);
    if (w == 0) {
        post_sends(tr, 1);
        pl_xfer_wait(tr->recvs);
    }
    barrier_as(tr, w, PL_PH_COMM, PL_PH_COMM, t0);
}

/* Phase 6: the step's agreement. Worker 0 posts this rank's leaves (their
 * slots are not the chunk sums the others write); after the barrier every
 * slot is filled, and worker 0 sums them over the ranks (nothing to do
 * with one rank; a second barrier shows the sums to every worker). */
static void agree(pl_trainer *tr, int w, double *t0)
{
    if (w == 0)
        post_leaves(tr);
    barrier(tr, w, PL_PH_REDUCE, t0);
    if (tr->R == 1)
        return;
    if (w == 0)
        pl_dist_sum(tr->agree, tr->n_agree);
    barrier_as(tr, w, PL_PH_COMM, PL_PH_COMM, t0);
}

/* Phase 7: clipping by the agreed norm and Adam on worker w's chunks of
 * this rank's slice. */
static void update(pl_trainer *tr, int w, const step_totals *t, double *t0)
{
    const double norm = sqrt(t->sq);
    const float scale =
        tr->o.clip > 0 && norm > tr->o.clip ? (float)(tr->o.clip / norm) : 1.0f;
    long c0, c1;
    my_chunks(tr, w, &c0, &c1);
    adam_chunks(tr, c0, c1, scale);
    lap(tr, w, PL_PH_ADAM, t0);
}

/* One step on worker w: one engine for one rank or several (the exchange
 * phases do nothing with one rank), barriers between the phases. */
static void worker_run(pl_trainer *tr, int w)
{
    double t0 = tr->prof ? pl_seconds() : 0;
    pl_step_pack(tr, w, &t0); /* 1. pack the gate weights */
    run_shards(tr, w);        /* 2. forward and backward of the shards */
    if (tr->prof)
        t0 = pl_seconds(); /* the shard phases were timed inside the workspace */
    pl_pool_barrier(tr->pool);
    lap(tr, w, PL_PH_WAIT, &t0);
    reduce_and_send(tr, w, &t0); /* 3. in-process sums, slices sent */
    exchange(tr, w, &t0);        /* 4. the other ranks' parts received */
    long c0, c1;
    my_chunks(tr, w, &c0, &c1);
    reduce_slice(tr, c0, c1); /* 5. this rank's slice complete */
    agree(tr, w, &t0);        /* 6. norms, losses, flags over the ranks */
    const step_totals t = totals_of(tr); /* every worker: the same bits */
    if (tr->job.kind == JOB_STEP && !t.nonfinite && !t.differ)
        update(tr, w, &t, &t0); /* 7. clip and Adam */
}

/* CRC32 of the parameters, as a double (exact). */
double pl_step_params_crc(const pl_trainer *tr)
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

/* A batch's arguments, against the trainer's shape and ranks. */
static pl_status check_batch(pl_trainer *tr, const pl_dataset *ds, int n, pl_error *err)
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
    return n != tr->plan.n ? pl_step_plan(tr, n, err) : PL_OK;
}

/* With several ranks, before the pool runs: the checksum every
 * CHECK_EVERY steps, and the receives of this rank's slices posted first,
 * so that they land where they belong. */
static void open_exchange(pl_trainer *tr, int kind, long step)
{
    const xplan *x = &tr->plan;
    const size_t my_len = tr->soff[tr->rank + 1] - tr->soff[tr->rank];
#ifdef PL_TEST_HOOKS /* a rank that drifts (testing.h) */
    if (tr->diverge_step >= 0 && step == tr->diverge_step)
        tr->params[tr->np / 2] = nextafterf(tr->params[tr->np / 2], INFINITY);
#endif
    tr->job.crc = kind == JOB_STEP && step % CHECK_EVERY == 0 ? pl_step_params_crc(tr) + 1 : 0;
    for (int j = 0; my_len > 0 && j < x->nblk; j++)
        if (x->slot[j])
            pl_xfer_recv(tr->recvs, x->slot[j], my_len, x->brank[j], x->blo[j]);
    memset(tr->ready, 0, sizeof(int) * (size_t)tr->R);
    tr->job.sent = 0;
}

/* After the pool, with several ranks: the sends finished, and every rank
 * given the whole gradient (JOB_GRAD) or the updated parameters. */
static void close_exchange(pl_trainer *tr, int kind, int updated)
{
    pl_xfer_wait(tr->sends);
    if (kind == JOB_GRAD)
        pl_dist_allgather(tr->grad, tr->soff);
    else if (updated)
        pl_dist_allgather(tr->params, tr->soff);
}

/* Why a step changed nothing: the ranks' parameters differ, or the loss
 * or a gradient entry (named by its group) is not finite. */
static pl_status step_failed(const pl_trainer *tr, const step_totals *t, long step, int n,
                             pl_error *err)
{
    if (t->differ) {
        const double *crc = slots_of(tr).crc;
        return pl_fail(err, PL_ERR_MISMATCH,
                       "the ranks' parameters differ before step %ld: rank %d's CRC32 is "
                       "%08lx, rank 0's %08lx; parameters left unchanged",
                       step + 1, t->differ, (unsigned long)(crc[t->differ] - 1),
                       (unsigned long)(crc[0] - 1));
    }
    const size_t i = first_nonfinite(tr); /* every rank calls it: a collective */
    pl_group g[PL_MAX_GROUPS];
    const int ng = pl_param_groups(&tr->cfg, g);
    for (int k = 0; i < tr->np && k < ng; k++)
        if (i >= g[k].offset && i < g[k].offset + g[k].size)
            return pl_fail(err, PL_ERR_NONFINITE,
                           "non-finite gradient, first in %s[%zu] (loss %g); "
                           "parameters left unchanged",
                           g[k].name, i - g[k].offset, t->loss / n);
    return pl_fail(err, PL_ERR_NONFINITE, "non-finite loss (%g); parameters left unchanged",
                   t->loss / n);
}

static pl_status run_batch(pl_trainer *tr, int kind, const pl_dataset *ds,
                           const uint32_t *idx, int n, long step, float lr,
                           pl_step_stats *st, pl_error *err)
{
    pl_status rc = check_batch(tr, ds, n, err);
    if (rc)
        return rc;
    double t0 = tr->prof ? pl_seconds() : 0;
    if (ds->lengths) { /* shards of about the same cost */
        pl_balance_rows(idx, n, ds->lengths, ds->T, tr->bal, tr->bal_sorted, tr->bal_cnt);
        idx = tr->bal;
    }
    tr->job.kind = kind;
    tr->job.ds = ds;
    tr->job.idx = idx;
    tr->job.n = n;
    tr->job.S = tr->plan.S_local;
    tr->job.next_shard = 0;
    tr->job.lr = lr;
    tr->job.step = step;
    memset(tr->agree, 0, sizeof(double) * tr->n_agree);
    if (tr->R > 1) {
        open_exchange(tr, kind, step);
        lap_all(tr, PL_PH_COMM, &t0);
    }
    pl_pool_run(tr->pool, pl_step_worker, tr);
    if (tr->prof)
        t0 = pl_seconds();
    const step_totals t = totals_of(tr);
    if (tr->R > 1) {
        close_exchange(tr, kind, !t.nonfinite && !t.differ);
        lap_all(tr, PL_PH_COMM, &t0);
    }
    if (st) {
        st->loss = t.loss / n;
        st->correct = (int)t.correct;
        st->grad_norm = sqrt(t.sq);
        st->lr = lr;
        st->stop = t.stop;
    }
    if (t.differ || t.nonfinite)
        return step_failed(tr, &t, step, n, err);
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
    const pl_lr_plan plan = pl_lr_plan_of(&tr->o, total);
    float lr = pl_lr_at(&plan, step);
    return run_batch(tr, JOB_STEP, ds, idx, n, step, lr, st, err);
}
