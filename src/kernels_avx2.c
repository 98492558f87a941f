/* The avx2 kernel set (see kernels.c), for x86-64 CPUs without AVX-512
 * (AMD Zen 1-3, Intel Haswell to Comet Lake and the efficiency cores): its
 * GEMM micro-kernel here, the cell, transpose, Adam and FMA loop from
 * kernels_vec.h over the 8-lane primitives of vec_avx2.h. The GEMM follows
 * kernels_avx512.c with 16 vector registers instead of 32.
 *
 * Compiled for any x86-64 target: the functions carry target attributes
 * ("avx2,fma", never -march) and are only called after pl_cpu_has_avx2()
 * said yes; on other architectures this file is empty. The GEMM's plain
 * twin is pl_gemm_naive (gemm.c); the tests compare them.
 *
 * GEMM: the blocking driver is pl_gemm_blocked (gemm.c). A tile is up to
 * MR = 6 rows by one 64-column panel, computed as strips of 16 columns (two
 * vectors): 6 x 2 = 12 accumulators, two vectors of B and one broadcast of A
 * take 15 of the 16 registers. Per step k a strip loads 2 vectors of B,
 * broadcasts 6 values of A and does 12 FMAs, within the two loads a cycle
 * that feed two FMA ports. The strips of a tile reuse its rows of A from
 * L1; the B chunk (AVX2_KC x 64 floats, 28 KiB) stays in a 32 KiB L1 while every
 * row tile passes over it. */
#if defined(__x86_64__)

#include <immintrin.h>

#include "kernels.h"
#include "vec_avx2.h"

#define MR 6
#ifndef AVX2_KC /* overridable at build time, for bench/ab-variants */
#define AVX2_KC 112 /* B chunk of 112 x 64 floats: 28 KiB of a 32 KiB L1 */
#endif

enum { A_ROWS, A_COLS }; /* the layouts of A (see kernels_avx512.c) */

/* Lanes [0, n) of a vector, for partial vectors at the right edge. */
static inline __attribute__((always_inline)) VEC_TARGET __m256i lanes(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* One strip: C(MR_ rows, 8 NV_ columns) (+)= sum over blocks A B, the last
 * vector masked by `last` when the strip ends inside it (PART). MR_, NV_,
 * LAY and PART are constants at every call site, so r lives in registers. */
static inline __attribute__((always_inline)) VEC_TARGET void
strip(const pl_tile *t, int j0, __m256i last, const int MR_, const int NV_, const int LAY,
      const int PART)
{
    const size_t ldc = t->ldc;
    float *const c = t->c + j0;
    __m256 r[MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < MR_; i++)
#pragma GCC unroll 2
        for (int v = 0; v < NV_; v++) {
            const float *ci = c + i * ldc + 8 * v;
            if (!t->accumulate)
                r[i][v] = _mm256_setzero_ps();
            else if (PART && v == NV_ - 1)
                r[i][v] = _mm256_maskload_ps(ci, last);
            else
                r[i][v] = _mm256_loadu_ps(ci);
        }
    for (int blk = 0; blk < t->nb; blk++) {
        const float *a = t->a + blk * t->a_bs, *b = t->b + blk * t->b_bs + j0;
        const size_t a_rs = t->a_rs, a_cs = t->a_cs, ldb = t->ldb;
        const float *ap[MR];
#pragma GCC unroll 6
        for (int i = 0; i < MR_; i++)
            ap[i] = a + i * a_rs;
        /* Two steps of k a pass: half the loop's adds, compare and branch
         * (kb in a register, not read from t each pass). A core shared
         * with a busy SMT sibling has fewer issue slots to spare: there
         * the step's products ran 6-7% faster (bench/results/zen3-k-unroll.txt). */
        const int kb = t->kb;
#pragma GCC unroll 2
        for (int k = 0; k < kb; k++) {
            __m256 bv[2];
#pragma GCC unroll 2
            for (int v = 0; v < NV_; v++)
                bv[v] = PART && v == NV_ - 1 ? _mm256_maskload_ps(b + 8 * v, last)
                                             : _mm256_loadu_ps(b + 8 * v);
#pragma GCC unroll 6
            for (int i = 0; i < MR_; i++) {
                __m256 av = LAY == A_ROWS ? _mm256_broadcast_ss(ap[i] + k)
                                          : _mm256_broadcast_ss(a + k * a_cs + i);
#pragma GCC unroll 2
                for (int v = 0; v < NV_; v++)
                    r[i][v] = _mm256_fmadd_ps(av, bv[v], r[i][v]);
            }
            b += ldb;
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR_; i++)
#pragma GCC unroll 2
        for (int v = 0; v < NV_; v++) {
            float *ci = c + i * ldc + 8 * v;
            if (PART && v == NV_ - 1)
                _mm256_maskstore_ps(ci, last, r[i][v]);
            else
                _mm256_storeu_ps(ci, r[i][v]);
        }
}

/* The strips of a tile: whole 16-column strips, then the rest (1 or 2
 * vectors, the last one partial when cols is not a multiple of 8). */
static inline __attribute__((always_inline)) VEC_TARGET void
tile_rows(const pl_tile *t, const int MR_, const int LAY)
{
    const int cols = t->cols, whole = cols / 16 * 16, rest = cols - whole;
    for (int j0 = 0; j0 < whole; j0 += 16)
        strip(t, j0, _mm256_setzero_si256(), MR_, 2, LAY, 0);
    if (rest > 8)
        strip(t, whole, lanes(rest - 8), MR_, 2, LAY, 1);
    else if (rest > 0)
        strip(t, whole, lanes(rest), MR_, 1, LAY, 1);
}

#define TILE_LAY(mr)                                                          \
    do {                                                                      \
        if (t->a_cs == 1)                                                     \
            tile_rows(t, mr, A_ROWS);                                         \
        else                                                                  \
            tile_rows(t, mr, A_COLS);                                         \
    } while (0)

static VEC_TARGET void tile_any(const pl_tile *t)
{
    switch (t->mr) {
    case 1: TILE_LAY(1); break;
    case 2: TILE_LAY(2); break;
    case 3: TILE_LAY(3); break;
    case 4: TILE_LAY(4); break;
    case 5: TILE_LAY(5); break;
    default: TILE_LAY(6); break;
    }
}

#ifndef AVX2_PREFETCH_C /* overridable at build time, for bench/ab-variants */
#define AVX2_PREFETCH_C 1
#endif
static const pl_gemm_isa isa = {
    .mr = MR, .kc = AVX2_KC, .tile = tile_any, .prefetch_c = AVX2_PREFETCH_C};

static void pl_gemm_avx2(const pl_gemm_op *op) { pl_gemm_blocked(&isa, op); }

/* ------------------------------- the cell, transpose, Adam, FMA loop */

#include "kernels_vec.h"

const pl_kernels pl_kernels_avx2 = {
    .be = PL_GEMM_AVX2,
    .gemm = pl_gemm_avx2,
    VEC_KERNELS,
    .gemm_isa = &isa,
};

#endif
