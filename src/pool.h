/* The persistent worker pool and its barrier (pool.c). */
#ifndef PARLSTM_POOL_H
#define PARLSTM_POOL_H

#include "common.h"

typedef struct pl_pool pl_pool;
typedef void (*pl_pool_fn)(void *ctx, int worker);

/* n workers: the calling thread is worker 0, n - 1 threads are created
 * once and wait on a condition variable between runs. */
pl_pool *pl_pool_create(int n, pl_error *err);
void pl_pool_free(pl_pool *p);
int pl_pool_size(const pl_pool *p);
/* Runs fn(ctx, w) on every worker w and returns when all are done. */
void pl_pool_run(pl_pool *p, pl_pool_fn fn, void *ctx);
/* A barrier among the workers of a run (call from inside fn). */
void pl_pool_barrier(pl_pool *p);

#endif
