/* NEON kernels: the neon kernel set (see kernels.c), for 64-bit ARM
 * (AWS Graviton, Ampere Altra, NVIDIA Grace, ...): the GEMM micro-kernel,
 * the LSTM cell forward/backward over 16-unit gate panels, the 16 x 16
 * transpose, Adam and the FMA calibration loop. AArch64 always has NEON
 * (Advanced SIMD with FMA), so no run-time check is needed; on other
 * architectures this file is empty. The plain twins are the same as the
 * x86 kernels' and the tests compare them.
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

static void pl_gemm_neon(const pl_gemm_op *op)
{
    static const pl_gemm_isa isa = {.mr = MR, .kc = KC, .tile = tile_any};
    pl_gemm_blocked(&isa, op);
}

/* ------------------------------------------------------------ the cell */

/* e^x on [-87, 88] as exp16 in kernels_avx512.c: range reduction by ln 2,
 * the Cephes expf polynomial, 2^n built in the exponent field. */
static inline __attribute__((always_inline)) float32x4_t exp4(float32x4_t x)
{
    x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.0f)), vdupq_n_f32(88.0f));
    float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
    int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    return vmulq_f32(p, vreinterpretq_f32_s32(e));
}

/* Division, not the reciprocal estimate: correctly rounded, so every ARM
 * core gives the same bits. */
static inline __attribute__((always_inline)) float32x4_t sigmoid4(float32x4_t x)
{
    const float32x4_t one = vdupq_n_f32(1.0f);
    return vdivq_f32(one, vaddq_f32(one, exp4(vnegq_f32(x))));
}

/* tanh(x) = sign(x) (1 - e) / (1 + e), e = exp(-2|x|). */
static inline __attribute__((always_inline)) float32x4_t tanh4(float32x4_t x)
{
    const float32x4_t one = vdupq_n_f32(1.0f);
    float32x4_t e = exp4(vmulq_f32(vabsq_f32(x), vdupq_n_f32(-2.0f)));
    float32x4_t y = vdivq_f32(vsubq_f32(one, e), vaddq_f32(one, e));
    const uint32x4_t sign = vdupq_n_u32(0x80000000u);
    return vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(y),
                                           vandq_u32(vreinterpretq_u32_f32(x), sign)));
}

/* A 16-unit gate block is four vectors: h = 0, 4, 8, 12 below. */
static void pl_cell_forward_neon(const pl_cell_args *a)
{
    for (int p = a->p0; p < a->p1; p++) {
        float *g = a->g + p * a->g_ps;
        size_t u = (size_t)p * PL_UNIT_BLOCK;
        for (int b = 0; b < a->n; b++, g += PL_PANEL)
            for (int h = 0; h < 16; h += 4) {
                float32x4_t i = sigmoid4(vld1q_f32(g + h));
                float32x4_t f = sigmoid4(vld1q_f32(g + 16 + h));
                float32x4_t gg = tanh4(vld1q_f32(g + 32 + h));
                float32x4_t o = sigmoid4(vld1q_f32(g + 48 + h));
                size_t off = (size_t)b * a->Hp + u + h;
                float32x4_t cp = a->c_prev ? vld1q_f32(a->c_prev + off) : vdupq_n_f32(0.0f);
                float32x4_t c = vfmaq_f32(vmulq_f32(i, gg), f, cp);
                float32x4_t tc = tanh4(c);
                vst1q_f32(g + h, i);
                vst1q_f32(g + 16 + h, f);
                vst1q_f32(g + 32 + h, gg);
                vst1q_f32(g + 48 + h, o);
                vst1q_f32(a->c + off, c);
                vst1q_f32(a->tc + off, tc);
                float32x4_t hv = vmulq_f32(o, tc);
                vst1q_f32(a->h + (size_t)b * a->h_rs + u + h, hv);
                if (a->h2)
                    vst1q_f32(a->h2 + (size_t)b * a->h2_rs + u + h, hv);
            }
    }
}

static void pl_cell_backward_neon(const pl_cell_args *a)
{
    const float32x4_t one = vdupq_n_f32(1.0f);
    for (int p = a->p0; p < a->p1; p++) {
        float *g = a->g + p * a->g_ps;
        size_t u = (size_t)p * PL_UNIT_BLOCK;
        for (int b = 0; b < a->n; b++, g += PL_PANEL)
            for (int h = 0; h < 16; h += 4) {
                size_t off = (size_t)b * a->Hp + u + h;
                float32x4_t i = vld1q_f32(g + h), f = vld1q_f32(g + 16 + h);
                float32x4_t gg = vld1q_f32(g + 32 + h), o = vld1q_f32(g + 48 + h);
                float32x4_t tc = vld1q_f32(a->tc + off), dh = vld1q_f32(a->dh + off);
                float32x4_t cp = a->c_prev ? vld1q_f32(a->c_prev + off) : vdupq_n_f32(0.0f);
                /* dc = dc_next + dh o (1 - tc^2) */
                float32x4_t dc = vfmaq_f32(vld1q_f32(a->dc + off), vmulq_f32(dh, o),
                                           vfmsq_f32(one, tc, tc));
                float32x4_t d_o = vmulq_f32(vmulq_f32(dh, tc), vmulq_f32(o, vsubq_f32(one, o)));
                float32x4_t d_i = vmulq_f32(vmulq_f32(dc, gg), vmulq_f32(i, vsubq_f32(one, i)));
                float32x4_t d_g = vmulq_f32(vmulq_f32(dc, i), vfmsq_f32(one, gg, gg));
                float32x4_t d_f = vmulq_f32(vmulq_f32(dc, cp), vmulq_f32(f, vsubq_f32(one, f)));
                vst1q_f32(a->dc + off, vmulq_f32(dc, f));
                vst1q_f32(g + h, d_i);
                vst1q_f32(g + 16 + h, d_f);
                vst1q_f32(g + 32 + h, d_g);
                vst1q_f32(g + 48 + h, d_o);
            }
    }
}

/* -------------------------------------------------------- transpose */

/* A 4 x 4 block: 32-bit then 64-bit transposes of row pairs. */
static inline __attribute__((always_inline)) void transpose4(const float *src, size_t lds,
                                                             float *dst, size_t ldd)
{
    float32x4_t r0 = vld1q_f32(src), r1 = vld1q_f32(src + lds);
    float32x4_t r2 = vld1q_f32(src + 2 * lds), r3 = vld1q_f32(src + 3 * lds);
    float64x2_t t0 = vreinterpretq_f64_f32(vtrn1q_f32(r0, r1)); /* r0[0] r1[0] r0[2] r1[2] */
    float64x2_t t1 = vreinterpretq_f64_f32(vtrn2q_f32(r0, r1)); /* r0[1] r1[1] r0[3] r1[3] */
    float64x2_t t2 = vreinterpretq_f64_f32(vtrn1q_f32(r2, r3));
    float64x2_t t3 = vreinterpretq_f64_f32(vtrn2q_f32(r2, r3));
    vst1q_f32(dst, vreinterpretq_f32_f64(vtrn1q_f64(t0, t2)));
    vst1q_f32(dst + ldd, vreinterpretq_f32_f64(vtrn1q_f64(t1, t3)));
    vst1q_f32(dst + 2 * ldd, vreinterpretq_f32_f64(vtrn2q_f64(t0, t2)));
    vst1q_f32(dst + 3 * ldd, vreinterpretq_f32_f64(vtrn2q_f64(t1, t3)));
}

static void pl_transpose16_neon(const float *src, size_t lds, float *dst, size_t ldd)
{
    for (int bi = 0; bi < 16; bi += 4)
        for (int bu = 0; bu < 16; bu += 4)
            transpose4(src + (size_t)bu * lds + bi, lds, dst + (size_t)bi * ldd + bu, ldd);
}

/* ------------------------------------------------------------- Adam */

/* The update of pl_adam_generic (optim.c), 4 lanes at a time, then the
 * scalar loop's own operations for the tail: every lane does the same
 * operations in the same order, with no FMA (vmulq and vaddq, and the build
 * uses -ffp-contract=off): the same bits. */
static void pl_adam_neon(float *params, const float *grad, float *m, float *v, size_t n,
                         const pl_adam_k *k)
{
    const float32x4_t step = vdupq_n_f32(k->step), b1 = vdupq_n_f32(k->b1),
                      b2 = vdupq_n_f32(k->b2), b1c = vdupq_n_f32(k->b1c),
                      b2c = vdupq_n_f32(k->b2c), rbc2 = vdupq_n_f32(k->rbc2),
                      eps = vdupq_n_f32(k->eps), scale = vdupq_n_f32(k->scale);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t g = vmulq_f32(vld1q_f32(grad + i), scale);
        float32x4_t mi = vaddq_f32(vmulq_f32(b1, vld1q_f32(m + i)), vmulq_f32(b1c, g));
        float32x4_t vi =
            vaddq_f32(vmulq_f32(b2, vld1q_f32(v + i)), vmulq_f32(vmulq_f32(b2c, g), g));
        vst1q_f32(m + i, mi);
        vst1q_f32(v + i, vi);
        float32x4_t den = vaddq_f32(vmulq_f32(vsqrtq_f32(vi), rbc2), eps);
        float32x4_t upd = vdivq_f32(vmulq_f32(step, mi), den);
        vst1q_f32(params + i, vsubq_f32(vld1q_f32(params + i), upd));
    }
    if (i < n)
        pl_adam_generic(params + i, grad + i, m + i, v + i, n - i, k);
}

/* ------------------------------------------------- FMA peak calibration */

/* 16 independent chains of 4-wide FMAs: enough to cover a latency of 4
 * cycles on up to four FMA pipes (Neoverse V1). */
static float pl_fma_loop_neon(long iters, double *flops)
{
    float32x4_t a[16];
    const float32x4_t m = vdupq_n_f32(0.9999999f), c = vdupq_n_f32(1e-7f);
    for (int k = 0; k < 16; k++)
        a[k] = vdupq_n_f32(1.0f + 0.001f * (float)k);
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 16
        for (int k = 0; k < 16; k++)
            a[k] = vfmaq_f32(c, a[k], m);
    for (int k = 1; k < 16; k++)
        a[0] = vaddq_f32(a[0], a[k]);
    *flops = (double)iters * 16 * 4 * 2;
    return vaddvq_f32(a[0]);
}

const pl_kernels pl_kernels_neon = {
    .be = PL_GEMM_NEON,
    .gemm = pl_gemm_neon,
    .cell_forward = pl_cell_forward_neon,
    .cell_backward = pl_cell_backward_neon,
    .transpose16 = pl_transpose16_neon,
    .adam = pl_adam_neon,
    .fma_loop = pl_fma_loop_neon,
    .gemm_kc = KC,
};

#endif
