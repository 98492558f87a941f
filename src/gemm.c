/* The GEMM wrapper: one operation (pl_gemm_op, see parlstm.h), three
 * backends: plain loops (the reference), cblas_sgemm, and our AVX-512
 * micro-kernels (kernels_avx512.c). Plus CPU facts and OpenBLAS's view of
 * the CPU. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "internal.h"

/* OpenBLAS extensions, declared here so that cblas.h variants without
 * them still compile. */
extern char *openblas_get_corename(void);

const char *pl_gemm_name(pl_gemm_backend be)
{
    switch (be) {
    case PL_GEMM_AUTO: return "auto";
    case PL_GEMM_NAIVE: return "naive";
    case PL_GEMM_BLAS: return "blas";
    case PL_GEMM_AVX512: return "avx512";
    }
    return "?";
}

int pl_gemm_available(pl_gemm_backend be)
{
    switch (be) {
    case PL_GEMM_AUTO:
    case PL_GEMM_NAIVE:
    case PL_GEMM_BLAS: return 1;
    case PL_GEMM_AVX512: return pl_cpu_has_avx512();
    }
    return 0;
}

pl_gemm_backend pl_gemm_resolve(pl_gemm_backend be)
{
    if (be != PL_GEMM_AUTO)
        return be;
    return pl_cpu_has_avx512() ? PL_GEMM_AVX512 : PL_GEMM_BLAS;
}

const char *pl_blas_corename(void)
{
    const char *s = openblas_get_corename();
    return s ? s : "unknown";
}

const char *pl_blas_better_coretype(void)
{
    const char *set = getenv("OPENBLAS_CORETYPE");
    if (set && *set)
        return NULL;
    const char *core = pl_blas_corename();
    /* The generic fallbacks OpenBLAS picks for CPUs it does not know. */
    static const char *weak[] = {"Prescott", "Core2", "Penryn", "Dunnington",
                                 "Nehalem", "Atom", "Katmai", "Coppermine",
                                 "Northwood", "Banias", "Sandybridge"};
    int is_weak = 0;
    for (size_t i = 0; i < sizeof weak / sizeof *weak; i++)
        if (strcasecmp(core, weak[i]) == 0)
            is_weak = 1;
    if (!is_weak)
        return NULL;
    if (pl_cpu_has_avx512())
        return "SkylakeX";
    if (pl_cpu_has_avx2())
        return "Haswell";
    return NULL;
}

/* Offset of column j in a row of a panelled operand (see pl_gemm_op). */
static inline size_t col(int j, size_t ps)
{
    return (size_t)(j / 64) * (ps ? ps : 64) + (size_t)(j % 64);
}

void pl_gemm_naive(const pl_gemm_op *op)
{
    for (int i = 0; i < op->M; i++)
        for (int j = 0; j < op->N; j++) {
            float *cij = op->c + i * op->ldc + col(j, op->c_ps);
            float acc = op->accumulate ? *cij : 0.0f;
            for (int blk = 0; blk < op->nb; blk++) {
                const float *a = op->a + blk * op->a_bs + i * op->a_rs;
                const float *b = op->b + blk * op->b_bs + col(j, op->b_ps);
                for (int k = 0; k < op->kb; k++)
                    acc += a[k * op->a_cs] * b[k * op->ldb];
            }
            *cij = acc;
        }
}

/* cblas_sgemm per block, and per 64-column panel when B or C is panelled. */
void pl_gemm_blas(const pl_gemm_op *op)
{
    /* A_blk is (M, kb) with row stride a_rs, or its transpose stored (kb, M)
     * with row stride a_cs. */
    int trans = op->a_cs != 1 || (op->a_rs == 1 && op->M > 1 && op->kb == 1);
    int lda = (int)(trans ? op->a_cs : op->a_rs);
    if (lda < (trans ? op->M : op->kb))
        lda = trans ? op->M : op->kb; /* degenerate 1-wide cases */
    const int panelled = op->b_ps || op->c_ps;
    const int width = panelled ? 64 : op->N;
    for (int j0 = 0; j0 < op->N; j0 += width) {
        int nj = op->N - j0 < width ? op->N - j0 : width;
        for (int blk = 0; blk < op->nb; blk++) {
            float beta = (blk == 0 && !op->accumulate) ? 0.0f : 1.0f;
            cblas_sgemm(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, CblasNoTrans,
                        op->M, nj, op->kb, 1.0f, op->a + blk * op->a_bs, lda,
                        op->b + blk * op->b_bs + col(j0, op->b_ps), (int)op->ldb, beta,
                        op->c + col(j0, op->c_ps), (int)op->ldc);
        }
    }
}

void pl_gemm(pl_gemm_backend be, const pl_gemm_op *op)
{
    if (op->M <= 0 || op->N <= 0)
        return;
    if (op->nb <= 0 || op->kb <= 0) {
        if (!op->accumulate)
            for (int i = 0; i < op->M; i++)
                for (int j = 0; j < op->N; j += 64)
                    memset(op->c + i * op->ldc + col(j, op->c_ps), 0,
                           sizeof(float) * (size_t)(op->N - j < 64 ? op->N - j : 64));
        return;
    }
    switch (pl_gemm_resolve(be)) {
    case PL_GEMM_AVX512: pl_gemm_avx512(op); break;
    case PL_GEMM_BLAS: pl_gemm_blas(op); break;
    default: pl_gemm_naive(op); break;
    }
}

float pl_dot(const float *a, const float *b, size_t n)
{
    float acc[16] = {0};
    size_t k = 0;
    for (; k + 16 <= n; k += 16)
        for (int l = 0; l < 16; l++)
            acc[l] += a[k + l] * b[k + l];
    for (; k < n; k++)
        acc[0] += a[k] * b[k];
    float s = 0;
    for (int l = 0; l < 16; l++)
        s += acc[l];
    return s;
}

/* ---------------------------------------------------- FMA peak, measured */

static float fma_loop(long iters, double *flops)
{
    if (pl_cpu_has_avx512())
        return pl_fma_loop_avx512(iters, flops);
    if (pl_cpu_has_avx2())
        return pl_fma_loop_avx2(iters, flops);
    /* scalar: 8 chains */
    float a[8];
    for (int k = 0; k < 8; k++)
        a[k] = 1.0f + 0.001f * (float)k;
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < 8; k++)
            a[k] = a[k] * 0.9999999f + 1e-7f;
    *flops = (double)iters * 8 * 2;
    return a[0] + a[7];
}

/* Threads wait for one "go" so that they run at the same time. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int go; /* 1 run, -1 abort */
} peak_gate;

typedef struct {
    long iters;
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
    a->sink = fma_loop(a->iters, &a->flops);
    a->t1 = pl_seconds();
    return NULL;
}

double pl_fma_peak_gflops(int threads, double seconds)
{
    if (threads < 1)
        threads = 1;
    /* size the loop from a short single-thread probe */
    double flops, t = pl_seconds();
    volatile float sink = fma_loop(200000, &flops);
    (void)sink;
    double rate = flops / (pl_seconds() - t + 1e-9);
    long iters = (long)(seconds * rate / (flops / 200000)) + 1;
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
        args[i].gate = &gate;
    }
    for (; made < threads; made++)
        if (pthread_create(&tid[made], NULL, peak_thread, &args[made]) != 0)
            break;
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
