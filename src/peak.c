/* The FMA peak of this CPU, measured: each kernel set's calibration loop
 * (independent chains of its vector width) on several threads at once.
 * The benchmark's %peak divides by it; nothing in training calls it. */
#include <pthread.h>
#include <stdlib.h>

#include "kernels.h"
#include "tools.h"

/* 8 independent scalar chains: the peak of a CPU without vector FMAs of
 * ours. */
float pl_fma_loop_scalar(long iters, double *flops)
{
    float a[8];
    for (int k = 0; k < 8; k++)
        a[k] = 1.0f + 0.001f * (float)k;
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < 8; k++)
            a[k] = a[k] * 0.9999999f + 1e-7f;
    *flops = (double)iters * 8 * 2;
    return a[0] + a[7];
}

typedef float (*fma_loop_fn)(long iters, double *flops);

/* GFLOP/s of `iters` iterations of loop on this thread; the operations of
 * one iteration into *per_iter. */
static double loop_rate(fma_loop_fn loop, long iters, double *per_iter)
{
    double flops, t = pl_seconds();
    volatile float sink = loop(iters, &flops);
    (void)sink;
    *per_iter = flops / (double)iters;
    return flops / (pl_seconds() - t + 1e-9) / 1e9;
}

/* Threads wait for one "go" so that they run at the same time. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int go; /* 1 run, -1 abort */
} peak_gate;

typedef struct {
    long iters;
    fma_loop_fn loop;
    peak_gate *gate;
    double flops, t0, t1;
    volatile float sink;
} peak_arg;

static void *peak_thread(void *p)
{
    peak_arg *a = p;
    pthread_mutex_lock(&a->gate->mu);
    while (a->gate->go == 0)
        pthread_cond_wait(&a->gate->cv, &a->gate->mu);
    int go = a->gate->go;
    pthread_mutex_unlock(&a->gate->mu);
    if (go < 0)
        return NULL;
    a->t0 = pl_seconds();
    a->sink = a->loop(a->iters, &a->flops);
    a->t1 = pl_seconds();
    return NULL;
}

double pl_fma_peak_gflops(int threads, double seconds)
{
    return pl_fma_peak_gflops_of(PL_GEMM_AUTO, threads, seconds);
}

double pl_fma_peak_gflops_of(pl_gemm_backend be, int threads, double seconds)
{
    return pl_peak_gflops(be, PL_PRECISION_FP32, threads, seconds);
}

double pl_peak_gflops(pl_gemm_backend be, pl_precision precision, int threads, double seconds)
{
    const pl_kernels *k = pl_kernels_of(be);
    if (!k)
        return 0;
    if (!k->fma_loop) /* not our GEMM: the widest this CPU has */
        k = pl_kernels_of(PL_GEMM_AUTO);
    fma_loop_fn fma_loop = k->fma_loop ? k->fma_loop : pl_fma_loop_scalar;
#if defined(__x86_64__)
    if (precision == PL_PRECISION_BF16 && k->gemm_bf16 == pl_gemm_bf16_avx512)
        fma_loop = pl_bf16_dot_loop;
#else
    (void)precision;
#endif
    if (threads < 1)
        threads = 1;
    /* size the loop from a short single-thread probe */
    double per_iter;
    const double rate = loop_rate(fma_loop, 200000, &per_iter);
    long iters = (long)(seconds * rate * 1e9 / per_iter) + 1;
    peak_arg *args = calloc((size_t)threads, sizeof *args);
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    if (!args || !tid) {
        free(args);
        free(tid);
        return 0;
    }
    peak_gate gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    int made = 1;
    for (int i = 0; i < threads; i++) {
        args[i].iters = iters;
        args[i].loop = fma_loop;
        args[i].gate = &gate;
    }
    /* the calibration threads may use every CPU, even when their creator
     * was pinned to one (--pin) */
    pthread_attr_t attr;
    int have_attr = pthread_attr_init(&attr) == 0 && pl_cpu_thread_attr(&attr) == 0;
    for (; made < threads; made++)
        if (pthread_create(&tid[made], have_attr ? &attr : NULL, peak_thread, &args[made]) != 0)
            break;
    if (have_attr)
        pthread_attr_destroy(&attr);
    pthread_mutex_lock(&gate.mu);
    gate.go = made == threads ? 1 : -1;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
    double gflops = 0;
    if (made == threads)
        peak_thread(&args[0]);
    for (int i = 1; i < made; i++)
        pthread_join(tid[i], NULL);
    if (made == threads) {
        double t0 = args[0].t0, t1 = args[0].t1, total = 0;
        for (int i = 0; i < threads; i++) {
            t0 = args[i].t0 < t0 ? args[i].t0 : t0;
            t1 = args[i].t1 > t1 ? args[i].t1 : t1;
            total += args[i].flops;
        }
        gflops = total / (t1 - t0) / 1e9;
    }
    free(args);
    free(tid);
    return gflops;
}

/* ------------------------------------------ the GEMM's ceiling in L1 */

enum { L1_ROWS = 24, L1_COLS = 32 };

/* GFLOP/s of `calls` calls of op */
static double gemm_rate(const pl_kernels *k, const pl_gemm_op *op, long calls)
{
    double t = pl_seconds();
    for (long i = 0; i < calls; i++)
        pl_gemm_with(k, op);
    return 2.0 * op->M * op->N * op->kb * (double)calls / (pl_seconds() - t + 1e-12) / 1e9;
}

double pl_l1_ceiling(pl_gemm_backend be, int pairs, double *q1, double *q3)
{
    const pl_kernels *k = pl_kernels_of(be);
    int kc;
    long a_limit;
    pl_gemm_blocking(be, &kc, &a_limit);
    if (!k || !k->fma_loop || kc <= 0 || pairs < 1)
        return 0;
    /* A (L1_ROWS, kc), B (kc, L1_COLS), C (L1_ROWS, L1_COLS), in a row */
    const size_t n = (size_t)(L1_ROWS + L1_COLS) * kc + L1_ROWS * L1_COLS;
    float *buf = pl_alloc_floats(n);
    double *ratio = malloc(sizeof(double) * (size_t)pairs);
    if (!buf || !ratio) {
        pl_free(buf);
        free(ratio);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        buf[i] = 1e-3f * (float)(i % 7);
    const pl_gemm_op op = {.M = L1_ROWS, .N = L1_COLS, .nb = 1, .kb = kc, .a = buf,
                           .a_rs = (size_t)kc, .a_cs = 1, .b = buf + (size_t)L1_ROWS * kc,
                           .ldb = L1_COLS, .c = buf + (size_t)(L1_ROWS + L1_COLS) * kc,
                           .ldc = L1_COLS, .accumulate = 1};
    /* both sides sized from a first try: 0.2 ms of calls, 0.1 ms of loop */
    double per_iter;
    const double g = gemm_rate(k, &op, 20), f = loop_rate(k->fma_loop, 20000, &per_iter);
    const long calls = 1 + (long)(0.2e-3 * g * 1e9 / (2.0 * L1_ROWS * L1_COLS * kc));
    const long iters = 1 + (long)(0.1e-3 * f * 1e9 / per_iter);
    for (int p = 0; p < pairs; p++) {
        const double fp = loop_rate(k->fma_loop, iters, &per_iter);
        ratio[p] = gemm_rate(k, &op, calls) / fp;
    }
    const double med = pl_median_sorted(ratio, pairs, NULL, NULL);
    if (q1)
        *q1 = ratio[pairs / 4];
    if (q3)
        *q3 = ratio[3 * pairs / 4];
    pl_free(buf);
    free(ratio);
    return med;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double pl_median_sorted(double *v, int n, double *lo, double *hi)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    if (lo)
        *lo = v[0];
    if (hi)
        *hi = v[n - 1];
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
