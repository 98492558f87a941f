/* The bf16 GEMM on AVX512_BF16 (vdpbf16ps): the same products as
 * pl_gemm_bf16_soft (bf16.c; kernels.h states them), bit for bit.
 *
 * Compiled for any x86-64 target: the functions carry target attributes and
 * are only called after pl_cpu_has_avx512_bf16() said yes; elsewhere this
 * file is empty.
 *
 * The operands are converted as they are used: A once per call into pairs
 * (pair (i, p) holds bf16 A(i, 2p) in its low half and A(i, 2p + 1) in its
 * high half, the layout vdpbf16ps multiplies; by rows, or by columns when A
 * comes transposed, as the weight gradient's does), B one chunk of KCP pairs
 * of one 64-column panel at a time (bp[p * 64 + j], the same pairs down a
 * column), converted once and used by every row tile; or B as the caller
 * gave it in pairs already (pl_gemm_op.b16: the weights, paired once a
 * step instead of at every time step). A tile is up to MR
 * rows by 64 columns; its 24 accumulators stay in registers over the chunk,
 * each pair loading four vectors of B and broadcasting MR pairs of A: 32
 * multiply-adds an instruction where the fp32 kernel does 16. Each C
 * element is one chain over the pairs in order, whatever the tiles and
 * chunks (between chunks it waits in C, in fp32), so the bits depend on the
 * shape alone. */
#if defined(__x86_64__)

#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>

#include "kernels.h"

#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))
#define MR 6
#define NV 4
#define KCP 128 /* pairs of B per chunk: 128 x 64 x 4 bytes = 32 KiB of L1 */

typedef __m512bh bh512;

/* Row i of A, K values, then zeros up to a multiple of 32, into row. */
static void a_row(const pl_gemm_op *op, int i, int K, int K32, float *row)
{
    int k = 0;
    for (int blk = 0; blk < op->nb; blk++) {
        const float *a = op->a + (size_t)blk * op->a_bs + (size_t)i * op->a_rs;
        if (op->a_cs == 1) {
            memcpy(row + k, a, sizeof(float) * (size_t)op->kb);
            k += op->kb;
        } else {
            for (int kk = 0; kk < op->kb; kk++)
                row[k++] = a[(size_t)kk * op->a_cs];
        }
    }
    for (k = K; k < K32; k++)
        row[k] = 0.0f;
}

/* A as pairs: ap (M, P), P = ceil(K / 2), rows 64-byte aligned (ldp). */
static BF16_TARGET void pair_a(const pl_gemm_op *op, int K, float *row, uint32_t *ap,
                               size_t ldp)
{
    const int K32 = (K + 31) / 32 * 32;
    for (int i = 0; i < op->M; i++) {
        a_row(op, i, K, K32, row);
        for (int k = 0; k < K32; k += 32) {
            bh512 v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(row + k + 16), _mm512_loadu_ps(row + k));
            _mm512_store_si512((void *)(ap + (size_t)i * ldp + k / 2), (__m512i)v);
        }
    }
}

/* Columns [0, min(left, 16)) of two rows (r1 NULL: zeros) as bf16 pairs,
 * (bf16 r0[j], bf16 r1[j]) in lane j, zero past left. _mm512_cvtne2ps_pbh(hi,
 * lo) holds lo's 16 values, then hi's: the permutation interleaves them. */
static const short INTERLEAVE[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                     8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};

static inline __attribute__((always_inline)) BF16_TARGET __m512i
pair16(const float *r0, const float *r1, int left)
{
    const __mmask16 m = (__mmask16)(left >= 16 ? 0xffff : (1u << left) - 1);
    const __m512 lo = _mm512_maskz_loadu_ps(m, r0);
    const __m512 hi = r1 ? _mm512_maskz_loadu_ps(m, r1) : _mm512_setzero_ps();
    return _mm512_permutexvar_epi16(_mm512_loadu_si512(INTERLEAVE),
                                    (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
}

/* A transposed (a_rs = 1, one block) as pairs down its columns: ap[p *
 * ldm + i] = (bf16 A(i, 2p), bf16 A(i, 2p + 1)), ldm a multiple of 16: the
 * rows k of the memory, two at a time, interleaved as pair_b does B's. */
static BF16_TARGET void pair_a_cols(const pl_gemm_op *op, int K, uint32_t *ap, size_t ldm)
{
    for (int k = 0; k < K; k += 2) {
        const float *r0 = op->a + (size_t)k * op->a_cs;
        const float *r1 = k + 1 < K ? r0 + op->a_cs : NULL;
        for (int i = 0; i < op->M; i += 16)
            _mm512_store_si512((void *)(ap + (size_t)(k / 2) * ldm + i),
                               pair16(r0 + i, r1 ? r1 + i : NULL, op->M - i));
    }
}

/* Row k of B in panel jp (NULL past K). */
static inline const float *b_row(const pl_gemm_op *op, int k, int K, int jp)
{
    if (k >= K)
        return NULL;
    return op->b + (size_t)(k / op->kb) * op->b_bs + (size_t)(k % op->kb) * op->ldb +
           (size_t)jp * (op->b_ps ? op->b_ps : 64);
}

/* Pairs [p0, p0 + np) of panel jp's `cols` columns: bp[(p - p0) * 64 + j];
 * columns past cols are zero. */
static BF16_TARGET void pair_b(const pl_gemm_op *op, int K, int p0, int np, int jp, int cols,
                               uint32_t *bp)
{
    const int nv = (cols + 15) / 16;
    for (int p = 0; p < np; p++) {
        const float *r0 = b_row(op, 2 * (p0 + p), K, jp), *r1 = b_row(op, 2 * (p0 + p) + 1, K, jp);
        for (int v = 0; v < NV; v++)
            _mm512_store_si512((void *)(bp + (size_t)p * 64 + 16 * v),
                               v < nv ? pair16(r0 + 16 * v, r1 ? r1 + 16 * v : NULL, cols - 16 * v)
                                      : _mm512_setzero_si512());
    }
}

/* C(MR_ rows, 16 NV_ columns) (+)= the pairs' products over np pairs; A's
 * pair (i, p) at ap[i si + p sp], B's pair p at bp + 64 p. */
static inline __attribute__((always_inline)) BF16_TARGET void
tile(const uint32_t *ap, size_t si, size_t sp, const uint32_t *bp, int np, float *c, size_t ldc,
     int load_c, __mmask16 last, const int MR_, const int NV_)
{
    __m512 r[MR][NV];
#pragma GCC unroll 6
    for (int i = 0; i < MR_; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV_; v++)
            r[i][v] = load_c ? _mm512_maskz_loadu_ps(v == NV_ - 1 ? last : 0xffff,
                                                     c + i * ldc + 16 * v)
                             : _mm512_setzero_ps();
#pragma GCC unroll 1
    for (int p = 0; p < np; p++) {
        __m512i bv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV_; v++)
            bv[v] = _mm512_loadu_si512((const void *)(bp + (size_t)p * 64 + 16 * v));
#pragma GCC unroll 6
        for (int i = 0; i < MR_; i++) {
            __m512i av = _mm512_set1_epi32((int)ap[(size_t)i * si + (size_t)p * sp]);
#pragma GCC unroll 4
            for (int v = 0; v < NV_; v++)
                r[i][v] = _mm512_dpbf16_ps(r[i][v], (bh512)av, (bh512)bv[v]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR_; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV_; v++)
            _mm512_mask_storeu_ps(c + i * ldc + 16 * v, v == NV_ - 1 ? last : 0xffff, r[i][v]);
}

#define TILE_NV(mr)                                                                      \
    switch (nv) {                                                                        \
    case 1: tile(ap, si, sp, bp, np, c, ldc, load_c, last, mr, 1); break;                \
    case 2: tile(ap, si, sp, bp, np, c, ldc, load_c, last, mr, 2); break;                \
    case 3: tile(ap, si, sp, bp, np, c, ldc, load_c, last, mr, 3); break;                \
    default: tile(ap, si, sp, bp, np, c, ldc, load_c, last, mr, 4); break;               \
    }

static BF16_TARGET void tile_any(const uint32_t *ap, size_t si, size_t sp, const uint32_t *bp,
                                 int np, float *c, size_t ldc, int load_c, int mr, int cols)
{
    const int nv = (cols + 15) / 16;
    const __mmask16 last = (__mmask16)(cols % 16 ? (1u << (cols % 16)) - 1 : 0xffff);
    switch (mr) {
    case 1: TILE_NV(1); break;
    case 2: TILE_NV(2); break;
    case 3: TILE_NV(3); break;
    case 4: TILE_NV(4); break;
    case 5: TILE_NV(5); break;
    default: TILE_NV(6); break;
    }
}

/* The bf16 peak: 12 independent chains of vdpbf16ps (its latency covered
 * on two pipes), 64 operations each (16 lanes x 2 products x 2). */
BF16_TARGET float pl_bf16_dot_loop(long iters, double *flops)
{
    enum { CHAINS = 12 };
    __m512 a[CHAINS];
    const __m512bh x = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(-1e-3f));
    for (int k = 0; k < CHAINS; k++)
        a[k] = _mm512_set1_ps(1.0f + 0.001f * (float)k);
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 12
        for (int k = 0; k < CHAINS; k++)
            a[k] = _mm512_dpbf16_ps(a[k], x, x);
    for (int k = 1; k < CHAINS; k++)
        a[0] = _mm512_add_ps(a[0], a[k]);
    *flops = (double)iters * CHAINS * 64;
    return _mm512_reduce_add_ps(a[0]);
}

BF16_TARGET void pl_gemm_bf16_avx512(const pl_gemm_op *op)
{
    const int M = op->M, N = op->N, K = op->nb * op->kb, P = (K + 1) / 2;
    /* A's pairs by rows (ap[i * ldp + p]) or, for A transposed in one
     * block, by columns (ap[p * ldm + i]): the tile reads ap[i si + p sp] */
    const int by_cols = op->a_rs == 1 && op->nb == 1;
    const size_t ldp = (size_t)(P + 15) / 16 * 16, ldm = (size_t)(M + 15) / 16 * 16;
    const size_t si = by_cols ? 1 : ldp, sp = by_cols ? ldm : 1;
    const size_t c_ps = op->c_ps ? op->c_ps : 64;
    uint32_t *ap = pl_thread_scratch(0, sizeof(uint32_t) * (by_cols ? ldm * (size_t)P
                                                                    : ldp * (size_t)M));
    float *row = pl_thread_scratch(1, sizeof(float) * (size_t)(K + 31) / 32 * 32);
    uint32_t *bp = pl_thread_scratch(2, sizeof(uint32_t) * KCP * 64);
    if (!ap || !row || !bp)
        abort(); /* the operands' copies: nothing sensible remains */
    if (by_cols)
        pair_a_cols(op, K, ap, ldm);
    else
        pair_a(op, K, row, ap, ldp);
    const int ntile = (M + MR - 1) / MR, base = M / ntile, extra = M % ntile;
    const int npanel = (N + 63) / 64;
    for (int jp = 0; jp < npanel; jp++) {
        const int cols = N - 64 * jp < 64 ? N - 64 * jp : 64;
        for (int p0 = 0; p0 < P; p0 += KCP) {
            const int np = P - p0 < KCP ? P - p0 : KCP;
            const uint32_t *bc = bp;
            if (op->b16)
                bc = op->b16 + (size_t)jp * op->b16_ps + (size_t)p0 * 64;
            else
                pair_b(op, K, p0, np, jp, cols, bp);
            /* the rows of B the next chunk reads (converts), fetched while
             * the tiles compute (each tile its share) */
            const int next_jp = p0 + KCP < P ? jp : jp + 1, next_p0 = p0 + KCP < P ? p0 + KCP : 0;
            const int next_np = next_jp < npanel ? (P - next_p0 < KCP ? P - next_p0 : KCP) : 0;
            const int next_rows = op->b16 ? next_np : 2 * next_np;
            for (int ti = 0, i0 = 0; ti < ntile; ti++) {
                for (int r = next_rows * ti / ntile; r < next_rows * (ti + 1) / ntile; r++) {
                    const void *next =
                        op->b16 ? (const void *)(op->b16 + (size_t)next_jp * op->b16_ps +
                                                 (size_t)(next_p0 + r) * 64)
                                : (const void *)b_row(op, 2 * next_p0 + r, K, next_jp);
                    for (int v = 0; next && v < 4; v++)
                        __builtin_prefetch((const char *)next + 64 * v, 0, 3);
                }
                const int mr = base + (ti < extra);
                tile_any(ap + (size_t)i0 * si + (size_t)p0 * sp, si, sp, bc, np,
                         op->c + (size_t)i0 * op->ldc + (size_t)jp * c_ps, op->ldc,
                         op->accumulate || p0 > 0, mr, cols);
                i0 += mr;
            }
        }
    }
}

#endif
