/* AVX-512 kernels: the GEMM micro-kernel, the LSTM cell forward/backward
 * over 16-unit gate panels, the 16 x 16 transpose, Adam and the FMA
 * calibration loop: the avx512 kernel set (see kernels.c).
 *
 * Compiled for any x86-64 target: the functions carry target attributes and
 * are only called after pl_cpu_has_avx512() said yes; on other
 * architectures this file is empty. The plain-loop twins are pl_gemm_naive
 * (gemm.c), pl_cell_*_generic and pl_transpose16_generic (cell.c) and
 * pl_adam_generic (optim.c); the tests compare them.
 *
 * GEMM: the blocking driver is pl_gemm_blocked (gemm.c); a tile here is up
 * to MR rows by 64 columns (four vectors), whose 24 accumulators stay in
 * registers over a chunk of the inner dimension, each k loading four
 * vectors of B and broadcasting MR values of A. The inner loop is
 * specialised for A row-major (a_cs = 1) and A transposed (a_rs = 1) so
 * that a step costs one pointer increment. */
#if defined(__x86_64__)

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

#define PL_AVX512 \
    __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")))
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

/* r += A(MR_ rows, kb) B(kb, 16 NV_): the inner loop of a tile. MR_, NV_
 * and LAY are constants at every call site, so r lives in registers. */
static inline __attribute__((always_inline)) PL_AVX512 void
tile_loop(__m512 r[MR][NV], const float *a, size_t a_rs, size_t a_cs, const float *b,
          size_t ldb, int kb, __mmask16 last, const int MR_, const int NV_, const int LAY)
{
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
    }
}

/* One tile of MR_ rows by NV_ vectors over the blocks of a chunk. */
static inline __attribute__((always_inline)) PL_AVX512 void
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
    for (int blk = 0; blk < t->nb; blk++)
        tile_loop(r, t->a + blk * t->a_bs, t->a_rs, t->a_cs, t->b + blk * t->b_bs, t->ldb,
                  t->kb, last, MR_, NV_, LAY);
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

static PL_AVX512 void tile_any(const pl_tile *t)
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

static void pl_gemm_avx512(const pl_gemm_op *op)
{
    static const pl_gemm_isa isa = {.mr = MR, .kc = KC, .tile = tile_any};
    pl_gemm_blocked(&isa, op);
}

/* ------------------------------------------------------------ the cell */

/* e^x to about 1 ulp on [-87, 88]: range reduction by ln 2, a degree-5
 * minimax polynomial (the Cephes expf coefficients), scaling by 2^n. */
static inline __attribute__((always_inline)) PL_AVX512 __m512 exp16(__m512 x)
{
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)),
                      _mm512_set1_ps(88.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    __m512 rr = _mm512_mul_ps(r, r);
    p = _mm512_fmadd_ps(p, rr, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

/* 1 / x: the 14-bit estimate and one Newton step (about 2^-28 relative
 * error), several times the throughput of a division. */
static inline __attribute__((always_inline)) PL_AVX512 __m512 recip16(__m512 x)
{
    __m512 r = _mm512_rcp14_ps(x);
    return _mm512_mul_ps(r, _mm512_fnmadd_ps(x, r, _mm512_set1_ps(2.0f)));
}

static inline __attribute__((always_inline)) PL_AVX512 __m512 sigmoid16(__m512 x)
{
    __m512 one = _mm512_set1_ps(1.0f);
    return recip16(_mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

/* tanh(x) = sign(x) (1 - e) / (1 + e), e = exp(-2|x|). */
static inline __attribute__((always_inline)) PL_AVX512 __m512 tanh16(__m512 x)
{
    __m512 one = _mm512_set1_ps(1.0f);
    __m512 ax = _mm512_abs_ps(x);
    __m512 e = exp16(_mm512_mul_ps(ax, _mm512_set1_ps(-2.0f)));
    __m512 y = _mm512_mul_ps(_mm512_sub_ps(one, e), recip16(_mm512_add_ps(one, e)));
    /* copy the sign of x */
    __m512i sign = _mm512_and_si512(_mm512_castps_si512(x),
                                    _mm512_set1_epi32((int)0x80000000u));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(y), sign));
}

static PL_AVX512 void pl_cell_forward_avx512(const pl_cell_args *a)
{
    for (int p = a->p0; p < a->p1; p++) {
        float *g = a->g + p * a->g_ps;
        size_t u = (size_t)p * PL_UNIT_BLOCK;
        for (int b = 0; b < a->n; b++, g += PL_PANEL) {
            __m512 i = sigmoid16(_mm512_loadu_ps(g));
            __m512 f = sigmoid16(_mm512_loadu_ps(g + 16));
            __m512 gg = tanh16(_mm512_loadu_ps(g + 32));
            __m512 o = sigmoid16(_mm512_loadu_ps(g + 48));
            size_t off = (size_t)b * a->Hp + u;
            __m512 cp = a->c_prev ? _mm512_loadu_ps(a->c_prev + off) : _mm512_setzero_ps();
            __m512 c = _mm512_fmadd_ps(f, cp, _mm512_mul_ps(i, gg));
            __m512 tc = tanh16(c);
            _mm512_storeu_ps(g, i);
            _mm512_storeu_ps(g + 16, f);
            _mm512_storeu_ps(g + 32, gg);
            _mm512_storeu_ps(g + 48, o);
            _mm512_storeu_ps(a->c + off, c);
            _mm512_storeu_ps(a->tc + off, tc);
            __m512 h = _mm512_mul_ps(o, tc);
            _mm512_storeu_ps(a->h + (size_t)b * a->h_rs + u, h);
            if (a->h2)
                _mm512_storeu_ps(a->h2 + (size_t)b * a->h2_rs + u, h);
        }
    }
}

static PL_AVX512 void pl_cell_backward_avx512(const pl_cell_args *a)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int p = a->p0; p < a->p1; p++) {
        float *g = a->g + p * a->g_ps;
        size_t u = (size_t)p * PL_UNIT_BLOCK;
        for (int b = 0; b < a->n; b++, g += PL_PANEL) {
            size_t off = (size_t)b * a->Hp + u;
            __m512 i = _mm512_loadu_ps(g), f = _mm512_loadu_ps(g + 16);
            __m512 gg = _mm512_loadu_ps(g + 32), o = _mm512_loadu_ps(g + 48);
            __m512 tc = _mm512_loadu_ps(a->tc + off);
            __m512 dh = _mm512_loadu_ps(a->dh + off);
            __m512 cp = a->c_prev ? _mm512_loadu_ps(a->c_prev + off) : _mm512_setzero_ps();
            /* dc = dc_next + dh o (1 - tc^2) */
            __m512 dc = _mm512_fmadd_ps(_mm512_mul_ps(dh, o),
                                        _mm512_fnmadd_ps(tc, tc, one),
                                        _mm512_loadu_ps(a->dc + off));
            __m512 d_o = _mm512_mul_ps(_mm512_mul_ps(dh, tc),
                                       _mm512_mul_ps(o, _mm512_sub_ps(one, o)));
            __m512 d_i = _mm512_mul_ps(_mm512_mul_ps(dc, gg),
                                       _mm512_mul_ps(i, _mm512_sub_ps(one, i)));
            __m512 d_g = _mm512_mul_ps(_mm512_mul_ps(dc, i),
                                       _mm512_fnmadd_ps(gg, gg, one));
            __m512 d_f = _mm512_mul_ps(_mm512_mul_ps(dc, cp),
                                       _mm512_mul_ps(f, _mm512_sub_ps(one, f)));
            _mm512_storeu_ps(a->dc + off, _mm512_mul_ps(dc, f));
            _mm512_storeu_ps(g, d_i);
            _mm512_storeu_ps(g + 16, d_f);
            _mm512_storeu_ps(g + 32, d_g);
            _mm512_storeu_ps(g + 48, d_o);
        }
    }
}

/* -------------------------------------------------------- transpose */

/* dst[i * ldd + u] = src[u * lds + i] for a 16 x 16 block: two rounds of
 * in-lane unpacks, then two of 128-bit lane shuffles. */
static PL_AVX512 void pl_transpose16_avx512(const float *src, size_t lds, float *dst,
                                            size_t ldd)
{
    __m512 r[16], t[16], u[16];
    for (int i = 0; i < 16; i++)
        r[i] = _mm512_loadu_ps(src + (size_t)i * lds);
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 2]);
        __m512d c = _mm512_castps_pd(t[4 * i + 1]), d = _mm512_castps_pd(t[4 * i + 3]);
        u[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));     /* column 0 of each lane */
        u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)); /* column 1 */
        u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d)); /* column 2 */
        u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d)); /* column 3 */
    }
    for (int j = 0; j < 4; j++) {
        __m512 v = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);
        __m512 w = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
        __m512 v2 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xDD);
        __m512 w2 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xDD);
        _mm512_storeu_ps(dst + (size_t)j * ldd, _mm512_shuffle_f32x4(v, w, 0x88));
        _mm512_storeu_ps(dst + (size_t)(j + 8) * ldd, _mm512_shuffle_f32x4(v, w, 0xDD));
        _mm512_storeu_ps(dst + (size_t)(j + 4) * ldd, _mm512_shuffle_f32x4(v2, w2, 0x88));
        _mm512_storeu_ps(dst + (size_t)(j + 12) * ldd, _mm512_shuffle_f32x4(v2, w2, 0xDD));
    }
}

/* ------------------------------------------------------------- Adam */

/* The update of pl_adam (optim.c), 16 lanes at a time; every lane does the
 * same operations as the scalar loop, in the same order. */
static PL_AVX512 void pl_adam_avx512(float *params, const float *grad, float *m, float *v,
                                     size_t n, const pl_adam_k *k)
{
    const __m512 step = _mm512_set1_ps(k->step), b1 = _mm512_set1_ps(k->b1),
                 b2 = _mm512_set1_ps(k->b2), b1c = _mm512_set1_ps(k->b1c),
                 b2c = _mm512_set1_ps(k->b2c), rbc2 = _mm512_set1_ps(k->rbc2),
                 eps = _mm512_set1_ps(k->eps), scale = _mm512_set1_ps(k->scale);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 mk = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 g = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, grad + i), scale);
        __m512 mi = _mm512_add_ps(_mm512_mul_ps(b1, _mm512_maskz_loadu_ps(mk, m + i)),
                                  _mm512_mul_ps(b1c, g));
        __m512 vi = _mm512_add_ps(_mm512_mul_ps(b2, _mm512_maskz_loadu_ps(mk, v + i)),
                                  _mm512_mul_ps(_mm512_mul_ps(b2c, g), g));
        _mm512_mask_storeu_ps(m + i, mk, mi);
        _mm512_mask_storeu_ps(v + i, mk, vi);
        __m512 den = _mm512_add_ps(_mm512_mul_ps(_mm512_sqrt_ps(vi), rbc2), eps);
        __m512 upd = _mm512_div_ps(_mm512_mul_ps(step, mi), den);
        _mm512_mask_storeu_ps(params + i, mk,
                              _mm512_sub_ps(_mm512_maskz_loadu_ps(mk, params + i), upd));
    }
}

/* ------------------------------------------------- FMA peak calibration */

/* 12 independent chains of 16-wide FMAs: enough to cover the FMA latency
 * on two ports. Returns a value that depends on every chain, so nothing is
 * optimised away; *flops gets the operations done. */
static PL_AVX512 float pl_fma_loop_avx512(long iters, double *flops)
{
    __m512 a[12];
    const __m512 m = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-7f);
    for (int k = 0; k < 12; k++)
        a[k] = _mm512_set1_ps(1.0f + 0.001f * (float)k);
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 12
        for (int k = 0; k < 12; k++)
            a[k] = _mm512_fmadd_ps(a[k], m, c);
    __m512 s = a[0];
    for (int k = 1; k < 12; k++)
        s = _mm512_add_ps(s, a[k]);
    *flops = (double)iters * 12 * 16 * 2;
    return _mm512_reduce_add_ps(s);
}

const pl_kernels pl_kernels_avx512 = {
    .be = PL_GEMM_AVX512,
    .gemm = pl_gemm_avx512,
    .cell_forward = pl_cell_forward_avx512,
    .cell_backward = pl_cell_backward_avx512,
    .transpose16 = pl_transpose16_avx512,
    .adam = pl_adam_avx512,
    .fma_loop = pl_fma_loop_avx512,
    .gemm_kc = KC,
};

#endif
