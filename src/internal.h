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

/* Every rank: this rank's slice of the Adam moments into m and v (n_params
 * each) on rank 0 (NULL elsewhere). */
void pl_trainer_gather_moments(pl_trainer *tr, float *m, float *v);

#endif
