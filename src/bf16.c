/* bf16: the rounding, the exact software GEMM that defines the products
 * (kernels.h states the definition), and the threads' scratch buffers the
 * bf16 GEMMs convert their operands into.
 *
 * The software path runs on every CPU: the tests compare the AVX512_BF16
 * kernel (kernels_bf16.c) with it bit for bit, and a CPU without the
 * instructions trains in bf16 through it (slowly: it is a reference, not a
 * fast kernel). Each step s + a b is computed in double and rounded once to
 * float: a b is exact (two 8-bit significands), and the double sum is
 * either exact or the smaller term lies below 2^-36 of the larger, where
 * rounding to float gives the larger whatever the double did; so the step
 * equals the fused s + a b of the instruction. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

uint16_t pl_bf16_round(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: its sign and top payload, quiet */
        return (uint16_t)((u >> 16) | 0x40u);
    if ((u & 0x7f800000u) == 0) /* zero or subnormal: zero of its sign */
        u &= 0x80000000u;
    u += 0x7fffu + ((u >> 16) & 1u); /* to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

float pl_bf16_float(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* A subnormal as zero of its sign (the instruction's DAZ and FTZ). */
static inline float flush(float x)
{
    return fabsf(x) < FLT_MIN ? copysignf(0.0f, x) : x;
}

static inline float rounded(float x) { return pl_bf16_float(pl_bf16_round(x)); }

void pl_bf16_pairs(const float *panel, int rows, uint32_t *out)
{
    for (int k = 0; k < rows; k += 2)
        for (int j = 0; j < 64; j++) {
            uint32_t lo = pl_bf16_round(panel[(size_t)k * 64 + j]);
            uint32_t hi = k + 1 < rows ? pl_bf16_round(panel[(size_t)(k + 1) * 64 + j]) : 0;
            out[(size_t)k / 2 * 64 + j] = lo | hi << 16;
        }
}

/* ------------------------------------------------------ thread scratch */

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

typedef struct {
    void *p[4];
    size_t bytes[4];
} scratch_set;

static void scratch_free(void *v)
{
    scratch_set *s = v;
    for (int i = 0; i < 4; i++)
        free(s->p[i]);
    free(s);
}

static void scratch_key_create(void) { pthread_key_create(&scratch_key, scratch_free); }

void *pl_thread_scratch(int slot, size_t bytes)
{
    pthread_once(&scratch_once, scratch_key_create);
    scratch_set *s = pthread_getspecific(scratch_key);
    if (!s) {
        if (!(s = calloc(1, sizeof *s)) || pthread_setspecific(scratch_key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    if (s->bytes[slot] < bytes) {
        free(s->p[slot]);
        s->bytes[slot] = 0;
        s->p[slot] = pl_alloc_aligned(bytes);
        if (!s->p[slot])
            return NULL;
        s->bytes[slot] = bytes;
    }
    return s->p[slot];
}

/* ------------------------------------------------------- software GEMM */

/* A(i, k) and B(k, j) of op, k over the blocks laid end to end. */
static inline float a_at(const pl_gemm_op *op, int i, int k)
{
    return op->a[(size_t)(k / op->kb) * op->a_bs + (size_t)i * op->a_rs +
                 (size_t)(k % op->kb) * op->a_cs];
}

static inline size_t col_of(int j, size_t ps)
{
    return (size_t)(j / 64) * (ps ? ps : 64) + (size_t)(j % 64);
}

/* Row i of A rounded, (Kp) with a zero after an odd K; B rounded, (Kp, N). */
static void round_operands(const pl_gemm_op *op, int K, int Kp, float *ar, float *br)
{
    for (int i = 0; i < op->M; i++) {
        for (int k = 0; k < K; k++)
            ar[(size_t)i * Kp + k] = rounded(a_at(op, i, k));
        if (Kp > K)
            ar[(size_t)i * Kp + K] = 0.0f;
    }
    for (int k = 0; k < Kp; k++) {
        const float *row = k < K ? op->b + (size_t)(k / op->kb) * op->b_bs +
                                       (size_t)(k % op->kb) * op->ldb
                                 : NULL;
        for (int j = 0; j < op->N; j++)
            br[(size_t)k * op->N + j] = row ? rounded(row[col_of(j, op->b_ps)]) : 0.0f;
    }
}

void pl_gemm_bf16_soft(const pl_gemm_op *op)
{
    const int M = op->M, N = op->N, K = op->nb * op->kb, Kp = K + (K & 1);
    float *ar = pl_thread_scratch(0, sizeof(float) * (size_t)M * Kp);
    float *br = pl_thread_scratch(1, sizeof(float) * (size_t)Kp * N);
    float *acc = pl_thread_scratch(2, sizeof(float) * (size_t)N);
    if (!ar || !br || !acc)
        abort(); /* a few rows of the operands: nothing sensible remains */
    round_operands(op, K, Kp, ar, br);
    for (int i = 0; i < M; i++) {
        float *c = op->c + (size_t)i * op->ldc;
        for (int j = 0; j < N; j++)
            acc[j] = op->accumulate ? flush(c[col_of(j, op->c_ps)]) : 0.0f;
        for (int k = 0; k < Kp; k += 2) {
            const double a1 = ar[(size_t)i * Kp + k + 1], a0 = ar[(size_t)i * Kp + k];
            const float *b0 = br + (size_t)k * N, *b1 = b0 + N;
            for (int j = 0; j < N; j++) {
                float s = flush((float)((double)acc[j] + a1 * (double)b1[j]));
                acc[j] = flush((float)((double)s + a0 * (double)b0[j]));
            }
        }
        for (int j = 0; j < N; j++)
            c[col_of(j, op->c_ps)] = acc[j];
    }
}
