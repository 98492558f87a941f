/* The neon kernel set (see kernels.c), for 64-bit ARM (AWS Graviton,
 * Ampere Altra, NVIDIA Grace, ...): its GEMM micro-kernel here, the cell,
 * transpose, Adam and FMA loop from kernels_vec.h over the 4-lane
 * primitives of vec_neon.h. AArch64 always has NEON (Advanced SIMD with
 * FMA), so no run-time check is needed; on other architectures this file
 * is empty. The GEMM's plain twin is pl_gemm_naive (gemm.c); the tests
 * compare them.
 *
 * These kernels are tested for correctness under qemu-aarch64; their speed
 * has not been measured on ARM hardware (see README).
 *
 * GEMM: the blocking driver is pl_gemm_blocked (gemm.c). A tile is up to
 * MR = 6 rows by one 64-column panel, computed as strips of 16 columns (four
 * 4-lane vectors): 6 x 4 = 24 accumulators, four vectors of B and one of A
 * take 29 of the 32 registers. Columns beyond the last whole vector (N not
 * a multiple of 4: only the output layer) are done with scalar FMAs. */
#if defined(__aarch64__)

#include <arm_neon.h>
#include <math.h>

#include "kernels.h"
#include "vec_neon.h"

#define MR 6
#define KC 128 /* B chunk of 128 x 64 floats: 32 KiB (Neoverse N1/V1: 64 KiB L1) */

enum { A_ROWS, A_COLS }; /* the layouts of A (see kernels_avx512.c) */

/* One strip: C(MR_ rows, 4 NV_ columns from j0) (+)= sum over blocks A B.
 * MR_, NV_ and LAY are constants at every call site. */
static inline __attribute__((always_inline)) void strip(const pl_tile *t, int j0, const int MR_,
                                                        const int NV_, const int LAY)
{
    const size_t ldc = t->ldc;
    float *const c = t->c + j0;
    float32x4_t r[MR][4];
#pragma GCC unroll 6
    for (int i = 0; i < MR_; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV_; v++)
            r[i][v] = t->accumulate ? vld1q_f32(c + i * ldc + 4 * v) : vdupq_n_f32(0.0f);
    for (int blk = 0; blk < t->nb; blk++) {
        const float *a = t->a + blk * t->a_bs, *b = t->b + blk * t->b_bs + j0;
        const size_t a_rs = t->a_rs, a_cs = t->a_cs, ldb = t->ldb;
        const float *ap[MR];
#pragma GCC unroll 6
        for (int i = 0; i < MR_; i++)
            ap[i] = a + i * a_rs;
#pragma GCC unroll 1
        for (int k = 0; k < t->kb; k++) {
            float32x4_t bv[4];
#pragma GCC unroll 4
            for (int v = 0; v < NV_; v++)
                bv[v] = vld1q_f32(b + 4 * v);
#pragma GCC unroll 6
            for (int i = 0; i < MR_; i++) {
                const float av = LAY == A_ROWS ? ap[i][k] : a[k * a_cs + i];
#pragma GCC unroll 4
                for (int v = 0; v < NV_; v++)
                    r[i][v] = vfmaq_n_f32(r[i][v], bv[v], av);
            }
            b += ldb;
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR_; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV_; v++)
            vst1q_f32(c + i * ldc + 4 * v, r[i][v]);
}

/* Columns [j0, cols) one at a time (fewer than 4). */
static void columns(const pl_tile *t, int j0)
{
    for (int i = 0; i < t->mr; i++)
        for (int j = j0; j < t->cols; j++) {
            float *cij = t->c + i * t->ldc + j;
            float acc = t->accumulate ? *cij : 0.0f;
            for (int blk = 0; blk < t->nb; blk++) {
                const float *a = t->a + blk * t->a_bs + i * t->a_rs;
                const float *b = t->b + blk * t->b_bs + j;
                for (int k = 0; k < t->kb; k++)
                    acc = fmaf(a[k * t->a_cs], b[k * t->ldb], acc);
            }
            *cij = acc;
        }
}

static inline __attribute__((always_inline)) void strips(const pl_tile *t, const int MR_,
                                                         const int LAY)
{
    const int whole = t->cols / 16 * 16, vecs = (t->cols - whole) / 4;
    for (int j0 = 0; j0 < whole; j0 += 16)
        strip(t, j0, MR_, 4, LAY);
    switch (vecs) {
    case 3: strip(t, whole, MR_, 3, LAY); break;
    case 2: strip(t, whole, MR_, 2, LAY); break;
    case 1: strip(t, whole, MR_, 1, LAY); break;
    default: break;
    }
    if (whole + 4 * vecs < t->cols)
        columns(t, whole + 4 * vecs);
}

static inline __attribute__((always_inline)) void tile_rows(const pl_tile *t, const int MR_)
{
    if (t->a_cs == 1)
        strips(t, MR_, A_ROWS);
    else
        strips(t, MR_, A_COLS);
}

static void tile_any(const pl_tile *t)
{
    switch (t->mr) {
    case 1: tile_rows(t, 1); break;
    case 2: tile_rows(t, 2); break;
    case 3: tile_rows(t, 3); break;
    case 4: tile_rows(t, 4); break;
    case 5: tile_rows(t, 5); break;
    default: tile_rows(t, 6); break;
    }
}

static const pl_gemm_isa isa = {.mr = MR, .kc = KC, .tile = tile_any};

static void pl_gemm_neon(const pl_gemm_op *op) { pl_gemm_blocked(&isa, op); }

/* ------------------------------- the cell, transpose, Adam, FMA loop */

#include "kernels_vec.h"

const pl_kernels pl_kernels_neon = {
    .be = PL_GEMM_NEON,
    .gemm = pl_gemm_neon,
    VEC_KERNELS,
    .gemm_isa = &isa,
};

#endif
