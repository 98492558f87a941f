/* The persistent worker pool: threads created once, woken for each run by
 * a condition variable (no spinning), with a barrier for the phases inside
 * a run. The calling thread is worker 0. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct pl_pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t start, done;
    unsigned long generation;
    int pending, stop;
    pl_pool_fn fn;
    void *ctx;
    pthread_barrier_t barrier;
};

typedef struct {
    pl_pool *pool;
    int worker;
} worker_arg;

static void *worker_main(void *p)
{
    worker_arg *wa = p;
    pl_pool *pool = wa->pool;
    int w = wa->worker;
    free(wa);
    /* Runs start only after pl_pool_create returns, at generation 1: a
     * worker that starts late must still see the first one. */
    unsigned long seen = 0;
    pthread_mutex_lock(&pool->mu);
    for (;;) {
        while (pool->generation == seen && !pool->stop)
            pthread_cond_wait(&pool->start, &pool->mu);
        if (pool->stop)
            break;
        seen = pool->generation;
        pl_pool_fn fn = pool->fn;
        void *ctx = pool->ctx;
        pthread_mutex_unlock(&pool->mu);
        fn(ctx, w);
        pthread_mutex_lock(&pool->mu);
        if (--pool->pending == 0)
            pthread_cond_signal(&pool->done);
    }
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}

pl_pool *pl_pool_create(int n, pl_error *err)
{
    if (n < 1) {
        pl_fail(err, PL_ERR_ARG, "a pool needs at least one worker, got %d", n);
        return NULL;
    }
    pl_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->threads = calloc((size_t)n, sizeof *p->threads))) {
        free(p);
        pl_fail(err, PL_ERR_NOMEM, "cannot allocate a pool of %d workers", n);
        return NULL;
    }
    p->n = 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start, NULL);
    pthread_cond_init(&p->done, NULL);
    pthread_barrier_init(&p->barrier, NULL, (unsigned)n);
    for (int w = 1; w < n; w++) {
        worker_arg *wa = malloc(sizeof *wa);
        int rc = wa ? 0 : -1;
        if (wa) {
            wa->pool = p;
            wa->worker = w;
            rc = pthread_create(&p->threads[w], NULL, worker_main, wa);
        }
        if (rc != 0) {
            free(wa);
            pl_fail(err, PL_ERR_THREAD,
                    "cannot create worker thread %d of %d: %s", w, n,
                    rc > 0 ? strerror(rc) : "out of memory");
            pl_pool_free(p); /* joins the p->n - 1 threads made so far */
            return NULL;
        }
        p->n = w + 1;
    }
    return p;
}

void pl_pool_free(pl_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    for (int w = 1; w < p->n; w++)
        pthread_join(p->threads[w], NULL);
    pthread_barrier_destroy(&p->barrier);
    pthread_cond_destroy(&p->start);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}

int pl_pool_size(const pl_pool *p) { return p->n; }

void pl_pool_run(pl_pool *p, pl_pool_fn fn, void *ctx)
{
    if (p->n > 1) {
        pthread_mutex_lock(&p->mu);
        p->fn = fn;
        p->ctx = ctx;
        p->pending = p->n - 1;
        p->generation++;
        pthread_cond_broadcast(&p->start);
        pthread_mutex_unlock(&p->mu);
    }
    fn(ctx, 0);
    if (p->n > 1) {
        pthread_mutex_lock(&p->mu);
        while (p->pending > 0)
            pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}

void pl_pool_barrier(pl_pool *p)
{
    if (p->n > 1)
        pthread_barrier_wait(&p->barrier);
}
