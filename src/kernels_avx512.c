/* The avx512 kernel set (see kernels.c): its GEMM micro-kernel here, the
 * cell, transpose, Adam and FMA loop from kernels_vec.h over the 16-lane
 * primitives of vec_avx512.h.
 *
 * Compiled for any x86-64 target: the functions carry target attributes and
 * are only called after pl_cpu_has_avx512() said yes; on other
 * architectures this file is empty. The GEMM's plain-loop twin is
 * pl_gemm_naive (gemm.c); the tests compare them.
 *
 * GEMM: the blocking driver is pl_gemm_blocked (gemm.c); a tile here is up
 * to MR rows by 64 columns (four vectors), whose 24 accumulators stay in
 * registers over a chunk of the inner dimension, each k loading four
 * vectors of B and broadcasting MR values of A. The inner loop is
 * specialised for A row-major (a_cs = 1) and A transposed (a_rs = 1) so
 * that a step costs one pointer increment; every other step it prefetches
 * one line of what the driver handed the tile (pl_tile.pf, pf2). */
#if defined(__x86_64__)

#include <immintrin.h>

#include "kernels.h"
#include "vec_avx512.h"

#define MR 6
#define NV 4
/* Blocking (overridable at build time, for bench/ab-variants; A_L2 is in
 * gemm.c): */
#ifndef KC
#define KC 128        /* B chunk of 128 x 64 floats: 32 KiB of the 48 KiB L1 */
#endif

/* Layouts of A the inner loop is specialised for (pl_gemm_op promises one
 * of them). */
enum { A_ROWS, A_COLS };

/* Lines the tile prefetches: n from p, then n2 from p2. */
typedef struct {
    const char *p, *p2;
    int n, n2;
} pf_runs;

/* r += A(MR_ rows, kb) B(kb, 16 NV_): the inner loop of a tile. MR_, NV_
 * and LAY are constants at every call site, so r lives in registers. */
static inline __attribute__((always_inline)) VEC_TARGET void
tile_loop(__m512 r[MR][NV], const float *a, size_t a_rs, size_t a_cs, const float *b,
          size_t ldb, int kb, __mmask16 last, pf_runs *q, const int MR_, const int NV_,
          const int LAY)
{
    const char *pf = q->p;
    int npf = q->n;
    const float *ap[MR];
#pragma GCC unroll 6
    for (int i = 0; i < MR_; i++)
        ap[i] = a + i * a_rs;
#pragma GCC unroll 1
    for (int k = 0; k < kb; k++) {
        __m512 bv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV_; v++)
            bv[v] = v == NV_ - 1 ? _mm512_maskz_loadu_ps(last, b + 16 * v)
                                 : _mm512_loadu_ps(b + 16 * v);
#pragma GCC unroll 6
        for (int i = 0; i < MR_; i++) {
            __m512 av = LAY == A_ROWS ? _mm512_set1_ps(ap[i][k]) : _mm512_set1_ps(a[k * a_cs + i]);
#pragma GCC unroll 4
            for (int v = 0; v < NV_; v++)
                r[i][v] = _mm512_fmadd_ps(av, bv[v], r[i][v]);
        }
        b += ldb;
        if (npf > 0 && (k & 1)) {
            _mm_prefetch(pf, _MM_HINT_T0);
            pf += 64;
            if (--npf == 0) { /* the second run next */
                pf = q->p2;
                npf = q->n2;
                q->n2 = 0;
            }
        }
    }
    q->p = pf;
    q->n = npf;
}

/* One tile of MR_ rows by NV_ vectors over the blocks of a chunk. */
static inline __attribute__((always_inline)) VEC_TARGET void
tile(const pl_tile *t, __mmask16 last, const int MR_, const int NV_, const int LAY)
{
    const size_t ldc = t->ldc;
    float *const c = t->c;
    __m512 r[MR][NV];
#pragma GCC unroll 6
    for (int i = 0; i < MR_; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV_; v++) {
            __mmask16 m = v == NV_ - 1 ? last : 0xffff;
            r[i][v] = t->accumulate ? _mm512_maskz_loadu_ps(m, c + i * ldc + 16 * v)
                                    : _mm512_setzero_ps();
        }
    pf_runs q = {t->pf, t->pf2, t->npf, t->npf2};
    if (q.n == 0) {
        q = (pf_runs){q.p2, NULL, q.n2, 0};
    }
    for (int blk = 0; blk < t->nb; blk++)
        tile_loop(r, t->a + blk * t->a_bs, t->a_rs, t->a_cs, t->b + blk * t->b_bs, t->ldb,
                  t->kb, last, &q, MR_, NV_, LAY);
    for (; q.n > 0; q.n--, q.p += 64) /* what the k loop had no room for */
        _mm_prefetch(q.p, _MM_HINT_T0);
    for (; q.n2 > 0; q.n2--, q.p2 += 64)
        _mm_prefetch(q.p2, _MM_HINT_T0);
#pragma GCC unroll 6
    for (int i = 0; i < MR_; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV_; v++) {
            if (v == NV_ - 1)
                _mm512_mask_storeu_ps(c + i * ldc + 16 * v, last, r[i][v]);
            else
                _mm512_storeu_ps(c + i * ldc + 16 * v, r[i][v]);
        }
}

#define TILE_LAY(mr, nv)                                                      \
    do {                                                                      \
        if (t->a_cs == 1)                                                     \
            tile(t, last, mr, nv, A_ROWS);                                    \
        else                                                                  \
            tile(t, last, mr, nv, A_COLS);                                    \
    } while (0)

#define TILE_NV(mr)                                                           \
    switch (nv) {                                                             \
    case 1: TILE_LAY(mr, 1); break;                                           \
    case 2: TILE_LAY(mr, 2); break;                                           \
    case 3: TILE_LAY(mr, 3); break;                                           \
    default: TILE_LAY(mr, 4); break;                                          \
    }

static VEC_TARGET void tile_any(const pl_tile *t)
{
    const int nv = (t->cols + 15) / 16;
    const __mmask16 last = (__mmask16)(t->cols % 16 ? (1u << (t->cols % 16)) - 1 : 0xffff);
    switch (t->mr) {
    case 1: TILE_NV(1); break;
    case 2: TILE_NV(2); break;
    case 3: TILE_NV(3); break;
    case 4: TILE_NV(4); break;
    case 5: TILE_NV(5); break;
    default: TILE_NV(6); break;
    }
}

#ifndef ONE_CHUNK /* overridable at build time, for bench/ab-variants */
#define ONE_CHUNK 1
#endif
#ifndef LONG_BLOCKS
#define LONG_BLOCKS 1
#endif
static const pl_gemm_isa isa = {.mr = MR, .kc = KC, .tile = tile_any, .prefetch_c = 1,
                                .spread = 1, .one_chunk = ONE_CHUNK, .long_blocks = LONG_BLOCKS};

static void pl_gemm_avx512(const pl_gemm_op *op) { pl_gemm_blocked(&isa, op); }

/* ------------------------------- the cell, transpose, Adam, FMA loop */

#define CELL_AHEAD_BACK 8 /* the backward cell's prefetch distance (kernels_vec.h) */
#include "kernels_vec.h"

const pl_kernels pl_kernels_avx512 = {
    .be = PL_GEMM_AVX512,
    .gemm = pl_gemm_avx512,
    VEC_KERNELS,
    .gemm_isa = &isa,
};

#endif
