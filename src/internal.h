/* Everything libparlstm shares inside itself and with its tests (not part
 * of the public API), one header per subsystem; a file includes the ones
 * it needs, or this one for all of them. */
#ifndef PARLSTM_INTERNAL_H
#define PARLSTM_INTERNAL_H

#include "common.h"
#include "dist.h"
#include "files.h"
#include "kernels.h"
#include "lstm.h"
#include "optim.h"
#include "pool.h"
#include "reduce.h"
#include "tools.h"

/* The epoch generator state that pl_epoch_order uses. */
void pl_epoch_rng(uint64_t seed, long epoch, pl_rng *r);

/* A batch of sequences of several lengths, idx[0..n), into out in an
 * order whose contiguous blocks (the shards, however many) each get
 * lengths spread like the whole batch's, so that the shards cost about the
 * same: sorted longest first (stable), then taken in the bit-reversed
 * order of their ranks (a block of k rows holds about every (n / k)-th).
 * A function of the batch alone: every count of ranks and workers sees the
 * same order. sorted: n, cnt: T + 1 of scratch; lengths 1..T. */
void pl_balance_rows(const uint32_t *idx, int n, const int32_t *lengths, int T, uint32_t *out,
                     uint32_t *sorted, int *cnt);

/* Every rank: this rank's slice of the Adam moments into m and v (n_params
 * each) on rank 0 (NULL elsewhere). */
void pl_trainer_gather_moments(pl_trainer *tr, float *m, float *v);

#endif
