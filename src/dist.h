/* Ranks (dist.c, the only file that includes mpi.h). */
#ifndef PARLSTM_DIST_H
#define PARLSTM_DIST_H

#include "common.h"

/* ---- dist.c: what the trainer and the checkpoints exchange between ranks.
 * Every call is collective (all ranks, same order) and returns at once with
 * one rank. Slices: rank r's is [offset[r], offset[r + 1]) of a float array. */
void pl_dist_sum(double *buf, size_t n);      /* element-wise sum over ranks, in place */
int pl_dist_local_ranks(void);                /* ranks on this host (1 without MPI) */
long pl_dist_min(long value);                 /* the smallest over ranks */
void pl_dist_allgather(float *buf, const size_t *offset /* (R + 1) */); /* in place */
/* rank r's `mine` (its slice's length) into all[offset[r] ...] on rank 0 */
void pl_dist_gather(const float *mine, float *all, const size_t *offset);

/* Outstanding point-to-point transfers of floats (MPI_Isend/Irecv): posted,
 * progressed while computing, waited for. At most max at a time. */
typedef struct pl_xfer pl_xfer;
pl_xfer *pl_xfer_create(int max);
void pl_xfer_free(pl_xfer *x);
void pl_xfer_send(pl_xfer *x, const float *buf, size_t n, int to, int tag);
void pl_xfer_recv(pl_xfer *x, float *buf, size_t n, int from, int tag);
int pl_xfer_progress(pl_xfer *x); /* lets them advance; 1 when all are done */
void pl_xfer_wait(pl_xfer *x);    /* all done; the set is empty again */

#endif
