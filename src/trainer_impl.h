/* The trainer's state, shared by the files that make it up (and by no
 * other): trainer.c builds it and answers the public API, step.c runs a
 * training step over the worker pool, evaluate.c the forward pass over a
 * data set; the summation tree and the parameter chunks are reduce.c's. */
#ifndef PARLSTM_TRAINER_IMPL_H
#define PARLSTM_TRAINER_IMPL_H

#include <signal.h>

#include "internal.h"

#define NCHUNK PL_CHUNKS   /* fixed parameter chunks (norm and update) */
#define DET_SHARDS 16      /* shards per batch under --deterministic */
#define CHECK_EVERY 100    /* steps between checksums of the parameters across ranks */
/* Shards per worker otherwise: 1, one each; more, claimed by whichever
 * worker is free, balance a worker slowed by another tenant at the cost of
 * smaller products (bench/ab-variants -DSHARDS_PER_WORKER=2 measures it). */
#ifndef SHARDS_PER_WORKER
#define SHARDS_PER_WORKER 1
#endif

enum { JOB_GRAD, JOB_STEP };

/* How a batch of n rows crosses the ranks (made again when n changes).
 * Leaves are what the ranks compute: under --deterministic the batch's S
 * fixed shards (rank p owns shards pl_split(S, p, R)), otherwise the ranks
 * themselves (rank p's rows pl_split(n, p, R), summed in-process). Blocks are
 * partial sums over contiguous leaves [lo, hi) that a rank sends: under
 * --deterministic the largest subtrees of the fixed summation tree inside
 * the rank's shards (pl_tree_blocks), otherwise one per rank that has rows. */
typedef struct {
    int n;               /* rows it was made for; 0: none yet */
    int leaves;          /* what the ranks compute (see above) */
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
    float **sgrad;                /* S_max shard gradients (np); with one shard and
                                   * no --deterministic, sgrad[0] is grad itself */
    pl_ws **ws;                   /* one per worker */
    pl_packed *pk;
    pl_pool *pool;
    size_t chunk[NCHUNK + 1];     /* chunk c = [chunk[c], chunk[c+1]) */
    double *shard_loss;           /* (S_max) */
    int *shard_correct;           /* (S_max) */
    int *pinned;                  /* (W) */
    uint32_t *bal, *bal_sorted;   /* (batch) a batch of several lengths, balanced
                                     (pl_balance_rows), and its scratch */
    int *bal_cnt;                 /* (T + 1) */
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
    int leaves_max, max_blk;
    /* the step's agreement, summed over ranks (each slot has one writer):
     * [NCHUNK chunk sums of squares][leaves_max leaf losses][leaves_max leaf corrects]
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
        int sent;        /* slices (in sending order) whose sends are posted */
        double crc;      /* checksum of the parameters + 1, or 0 */
        /* evaluation */
        int chunks;
        double *eval_loss;
        int *eval_correct;
        float *probs; /* (n, C) class probabilities (pl_trainer_predict), or NULL */
    } job;
};

/* step.c: ties worker w (and its OpenMP threads) to their CPUs once, when
 * --pin asks for it; the start of every pool run, a step's or an
 * evaluation's (pinning, worker w's share of the packed weights, a
 * barrier; t0: the profile's clock); the exchange plan of a batch of n rows
 * (made again when n changes; PL_ERR_NOMEM when memory runs out) and its
 * release; the pool job of a step; CRC32 of the parameters, as a double
 * (exact). */
void pl_step_pin_once(pl_trainer *tr, int w);
void pl_step_pack(pl_trainer *tr, int w, double *t0);
pl_status pl_step_plan(pl_trainer *tr, int n, pl_error *err);
void pl_step_plan_free(xplan *x);
void pl_step_worker(void *ctx, int w);
double pl_step_params_crc(const pl_trainer *tr);

#endif
