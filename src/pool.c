/* The persistent worker pool: threads created once, woken for each run by
 * a condition variable, with a barrier for the phases inside a run. The
 * calling thread is worker 0.
 *
 * Every wait (a worker for the next run, the caller for the end of one, a
 * thread at a barrier) first watches its condition for a short while
 * (SPIN_US) before it sleeps on the condition variable: the steps of a
 * training run follow each other closely, and waking a sleeping thread
 * costs tens of microseconds on a virtual machine, five times a step. An
 * idle pool sleeps. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "pool.h"

#ifndef SPIN_US
#define SPIN_US 50.0 /* microseconds a waiting thread watches before it sleeps */
#endif

struct pl_pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t start, done, phase_cv;
    unsigned long generation; /* runs started (atomic; written under mu) */
    int pending;              /* workers still in this run (atomic) */
    int stop;
    pl_pool_fn fn;
    void *ctx;
    unsigned arrived;         /* at the current barrier (atomic) */
    unsigned long phase;      /* barriers passed (atomic; advanced under mu) */
};

typedef struct {
    pl_pool *pool;
    int worker;
} worker_arg;

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#endif
}

/* The clock of a spin: 1 once SPIN_US have passed since turn 0 (read every
 * 64 turns, since reading it costs more than a turn). */
static int spin_over(int turn, double *t0)
{
    if (turn & 63)
        return 0;
    double t = pl_seconds();
    if (turn == 0)
        *t0 = t;
    return (t - *t0) * 1e6 > SPIN_US;
}

/* Watches *word (atomically) for up to SPIN_US while it equals `old`;
 * returns 1 once it differs, 0 when the time is up. */
static int spin_ulong(const unsigned long *word, unsigned long old)
{
    double t0 = 0;
    for (int i = 0; !spin_over(i, &t0); i++) {
        if (__atomic_load_n(word, __ATOMIC_ACQUIRE) != old)
            return 1;
        relax();
    }
    return 0;
}

/* The same until *word is 0. */
static int spin_zero(const int *word)
{
    double t0 = 0;
    for (int i = 0; !spin_over(i, &t0); i++) {
        if (__atomic_load_n(word, __ATOMIC_ACQUIRE) == 0)
            return 1;
        relax();
    }
    return 0;
}

static void *worker_main(void *p)
{
    worker_arg *wa = p;
    pl_pool *pool = wa->pool;
    int w = wa->worker;
    free(wa);
    /* Runs start only after pl_pool_create returns, at generation 1: a
     * worker that starts late must still see the first one. */
    unsigned long seen = 0;
    for (;;) {
        if (!spin_ulong(&pool->generation, seen)) {
            pthread_mutex_lock(&pool->mu);
            while (__atomic_load_n(&pool->generation, __ATOMIC_ACQUIRE) == seen && !pool->stop)
                pthread_cond_wait(&pool->start, &pool->mu);
            pthread_mutex_unlock(&pool->mu);
        }
        pthread_mutex_lock(&pool->mu);
        int stop = pool->stop;
        seen = __atomic_load_n(&pool->generation, __ATOMIC_ACQUIRE);
        pl_pool_fn fn = pool->fn;
        void *ctx = pool->ctx;
        pthread_mutex_unlock(&pool->mu);
        if (stop)
            break;
        fn(ctx, w);
        if (__atomic_sub_fetch(&pool->pending, 1, __ATOMIC_ACQ_REL) == 0) {
            pthread_mutex_lock(&pool->mu);
            pthread_cond_signal(&pool->done);
            pthread_mutex_unlock(&pool->mu);
        }
    }
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
    pthread_cond_init(&p->phase_cv, NULL);
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
    __atomic_add_fetch(&p->generation, 1, __ATOMIC_RELEASE); /* wakes the spinners too */
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    for (int w = 1; w < p->n; w++)
        pthread_join(p->threads[w], NULL);
    pthread_cond_destroy(&p->start);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->phase_cv);
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
        __atomic_store_n(&p->pending, p->n - 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&p->generation, 1, __ATOMIC_RELEASE);
        pthread_cond_broadcast(&p->start);
        pthread_mutex_unlock(&p->mu);
    }
    fn(ctx, 0);
    if (p->n > 1 && !spin_zero(&p->pending)) {
        pthread_mutex_lock(&p->mu);
        while (__atomic_load_n(&p->pending, __ATOMIC_ACQUIRE) > 0)
            pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}

void pl_pool_barrier(pl_pool *p)
{
    if (p->n == 1)
        return;
    unsigned long phase = __atomic_load_n(&p->phase, __ATOMIC_ACQUIRE);
    if (__atomic_add_fetch(&p->arrived, 1, __ATOMIC_ACQ_REL) == (unsigned)p->n) {
        /* the last one in: reset the count, then open the barrier */
        __atomic_store_n(&p->arrived, 0, __ATOMIC_RELAXED);
        pthread_mutex_lock(&p->mu);
        __atomic_add_fetch(&p->phase, 1, __ATOMIC_RELEASE);
        pthread_cond_broadcast(&p->phase_cv);
        pthread_mutex_unlock(&p->mu);
        return;
    }
    if (spin_ulong(&p->phase, phase))
        return;
    pthread_mutex_lock(&p->mu);
    while (__atomic_load_n(&p->phase, __ATOMIC_ACQUIRE) == phase)
        pthread_cond_wait(&p->phase_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
