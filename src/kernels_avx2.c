/* AVX2 + FMA kernels: the avx2 kernel set (see kernels.c), for x86-64 CPUs
 * without AVX-512 (AMD Zen 1-3, Intel Haswell to Comet Lake and the
 * efficiency cores): the GEMM micro-kernel, the LSTM cell forward/backward
 * over 16-unit gate panels, the 16 x 16 transpose, Adam and the FMA
 * calibration loop. Same ideas as kernels_avx512.c with 8-lane vectors and
 * 16 vector registers instead of 32.
 *
 * Compiled for any x86-64 target: the functions carry target attributes
 * ("avx2,fma", never -march) and are only called after pl_cpu_has_avx2()
 * said yes; on other architectures this file is empty. The plain twins
 * are the same as the AVX-512 kernels' and the tests compare them.
 *
 * GEMM: the blocking driver is pl_gemm_blocked (gemm.c). A tile is up to
 * MR = 6 rows by one 64-column panel, computed as strips of 16 columns (two
 * vectors): 6 x 2 = 12 accumulators, two vectors of B and one broadcast of A
 * take 15 of the 16 registers. Per step k a strip loads 2 vectors of B,
 * broadcasts 6 values of A and does 12 FMAs, within the two loads a cycle
 * that feed two FMA ports. The strips of a tile reuse its rows of A from
 * L1; the B chunk (AVX2_KC x 64 floats, 24 KiB) stays in a 32 KiB L1 while every
 * row tile passes over it. */
#if defined(__x86_64__)

#include <immintrin.h>

#include "kernels.h"

#define PL_AVX2 __attribute__((target("avx2,fma")))
#define MR 6
#ifndef AVX2_KC /* overridable at build time, for bench/ab-variants */
#define AVX2_KC 96 /* B chunk of 96 x 64 floats: 24 KiB of a 32 KiB L1 */
#endif

enum { A_ROWS, A_COLS }; /* the layouts of A (see kernels_avx512.c) */

/* Lanes [0, n) of a vector, for partial vectors at the right edge. */
static inline __attribute__((always_inline)) PL_AVX2 __m256i lanes(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* One strip: C(MR_ rows, 8 NV_ columns) (+)= sum over blocks A B, the last
 * vector masked by `last` when the strip ends inside it (PART). MR_, NV_,
 * LAY and PART are constants at every call site, so r lives in registers. */
static inline __attribute__((always_inline)) PL_AVX2 void
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
#pragma GCC unroll 1
        for (int k = 0; k < t->kb; k++) {
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
static inline __attribute__((always_inline)) PL_AVX2 void
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

static PL_AVX2 void tile_any(const pl_tile *t)
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

static void pl_gemm_avx2(const pl_gemm_op *op)
{
    static const pl_gemm_isa isa = {.mr = MR, .kc = AVX2_KC, .tile = tile_any};
    pl_gemm_blocked(&isa, op);
}

/* ------------------------------------------------------------ the cell */

/* e^x to about 1 ulp on [-87, 88], as exp16 in kernels_avx512.c: range
 * reduction by ln 2, the Cephes expf polynomial, then 2^n built in the
 * exponent field (n is in [-126, 127] after the clamp: a normal number). */
static inline __attribute__((always_inline)) PL_AVX2 __m256 exp8(__m256 x)
{
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    __m256 rr = _mm256_mul_ps(r, r);
    p = _mm256_fmadd_ps(p, rr, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)),
                                  23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* Division, not the reciprocal estimate (vrcpps): its 12-bit tables differ
 * between Intel and AMD, a correctly rounded division does not, so every
 * CPU that runs these kernels gives the same bits. */
static inline __attribute__((always_inline)) PL_AVX2 __m256 sigmoid8(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

/* tanh(x) = sign(x) (1 - e) / (1 + e), e = exp(-2|x|). */
static inline __attribute__((always_inline)) PL_AVX2 __m256 tanh8(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    __m256 ax = _mm256_andnot_ps(sign, x);
    __m256 e = exp8(_mm256_mul_ps(ax, _mm256_set1_ps(-2.0f)));
    __m256 y = _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e));
    return _mm256_or_ps(y, _mm256_and_ps(x, sign));
}

/* A 16-unit gate block is two vectors: h = 0 and 8 below. */
static PL_AVX2 void pl_cell_forward_avx2(const pl_cell_args *a)
{
    for (int p = a->p0; p < a->p1; p++) {
        float *g = a->g + p * a->g_ps;
        size_t u = (size_t)p * PL_UNIT_BLOCK;
        for (int b = 0; b < a->n; b++, g += PL_PANEL)
            for (int h = 0; h < 16; h += 8) {
                __m256 i = sigmoid8(_mm256_loadu_ps(g + h));
                __m256 f = sigmoid8(_mm256_loadu_ps(g + 16 + h));
                __m256 gg = tanh8(_mm256_loadu_ps(g + 32 + h));
                __m256 o = sigmoid8(_mm256_loadu_ps(g + 48 + h));
                size_t off = (size_t)b * a->Hp + u + h;
                __m256 cp = a->c_prev ? _mm256_loadu_ps(a->c_prev + off) : _mm256_setzero_ps();
                __m256 c = _mm256_fmadd_ps(f, cp, _mm256_mul_ps(i, gg));
                __m256 tc = tanh8(c);
                _mm256_storeu_ps(g + h, i);
                _mm256_storeu_ps(g + 16 + h, f);
                _mm256_storeu_ps(g + 32 + h, gg);
                _mm256_storeu_ps(g + 48 + h, o);
                _mm256_storeu_ps(a->c + off, c);
                _mm256_storeu_ps(a->tc + off, tc);
                __m256 hv = _mm256_mul_ps(o, tc);
                _mm256_storeu_ps(a->h + (size_t)b * a->h_rs + u + h, hv);
                if (a->h2)
                    _mm256_storeu_ps(a->h2 + (size_t)b * a->h2_rs + u + h, hv);
            }
    }
}

static PL_AVX2 void pl_cell_backward_avx2(const pl_cell_args *a)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    for (int p = a->p0; p < a->p1; p++) {
        float *g = a->g + p * a->g_ps;
        size_t u = (size_t)p * PL_UNIT_BLOCK;
        for (int b = 0; b < a->n; b++, g += PL_PANEL)
            for (int h = 0; h < 16; h += 8) {
                size_t off = (size_t)b * a->Hp + u + h;
                __m256 i = _mm256_loadu_ps(g + h), f = _mm256_loadu_ps(g + 16 + h);
                __m256 gg = _mm256_loadu_ps(g + 32 + h), o = _mm256_loadu_ps(g + 48 + h);
                __m256 tc = _mm256_loadu_ps(a->tc + off);
                __m256 dh = _mm256_loadu_ps(a->dh + off);
                __m256 cp = a->c_prev ? _mm256_loadu_ps(a->c_prev + off) : _mm256_setzero_ps();
                /* dc = dc_next + dh o (1 - tc^2) */
                __m256 dc = _mm256_fmadd_ps(_mm256_mul_ps(dh, o), _mm256_fnmadd_ps(tc, tc, one),
                                            _mm256_loadu_ps(a->dc + off));
                __m256 d_o = _mm256_mul_ps(_mm256_mul_ps(dh, tc),
                                           _mm256_mul_ps(o, _mm256_sub_ps(one, o)));
                __m256 d_i = _mm256_mul_ps(_mm256_mul_ps(dc, gg),
                                           _mm256_mul_ps(i, _mm256_sub_ps(one, i)));
                __m256 d_g = _mm256_mul_ps(_mm256_mul_ps(dc, i), _mm256_fnmadd_ps(gg, gg, one));
                __m256 d_f = _mm256_mul_ps(_mm256_mul_ps(dc, cp),
                                           _mm256_mul_ps(f, _mm256_sub_ps(one, f)));
                _mm256_storeu_ps(a->dc + off, _mm256_mul_ps(dc, f));
                _mm256_storeu_ps(g + h, d_i);
                _mm256_storeu_ps(g + 16 + h, d_f);
                _mm256_storeu_ps(g + 32 + h, d_g);
                _mm256_storeu_ps(g + 48 + h, d_o);
            }
    }
}

/* -------------------------------------------------------- transpose */

/* An 8 x 8 block: dst[i * ldd + u] = src[u * lds + i]. In-lane unpacks and
 * shuffles transpose the 4 x 4 quarters, 128-bit permutes swap them. */
static inline __attribute__((always_inline)) PL_AVX2 void transpose8(const float *src, size_t lds,
                                                                      float *dst, size_t ldd)
{
    __m256 r[8], t[8], u[8];
    for (int i = 0; i < 8; i++)
        r[i] = _mm256_loadu_ps(src + (size_t)i * lds);
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) {
        u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);     /* column 0 */
        u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE); /* column 1 */
        u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int j = 0; j < 4; j++) {
        _mm256_storeu_ps(dst + (size_t)j * ldd, _mm256_permute2f128_ps(u[j], u[4 + j], 0x20));
        _mm256_storeu_ps(dst + (size_t)(j + 4) * ldd,
                         _mm256_permute2f128_ps(u[j], u[4 + j], 0x31));
    }
}

static PL_AVX2 void pl_transpose16_avx2(const float *src, size_t lds, float *dst,
                                        size_t ldd)
{
    for (int bi = 0; bi < 16; bi += 8)
        for (int bu = 0; bu < 16; bu += 8)
            transpose8(src + (size_t)bu * lds + bi, lds, dst + (size_t)bi * ldd + bu, ldd);
}

/* ------------------------------------------------------------- Adam */

/* The update of pl_adam_generic (optim.c), 8 lanes at a time; every lane
 * does the same operations as the scalar loop, in the same order, with no
 * FMA: the same bits. */
static PL_AVX2 void pl_adam_avx2(float *params, const float *grad, float *m, float *v,
                                 size_t n, const pl_adam_k *k)
{
    const __m256 step = _mm256_set1_ps(k->step), b1 = _mm256_set1_ps(k->b1),
                 b2 = _mm256_set1_ps(k->b2), b1c = _mm256_set1_ps(k->b1c),
                 b2c = _mm256_set1_ps(k->b2c), rbc2 = _mm256_set1_ps(k->rbc2),
                 eps = _mm256_set1_ps(k->eps), scale = _mm256_set1_ps(k->scale);
    const __m256i all = _mm256_set1_epi32(-1);
    for (size_t i = 0; i < n; i += 8) {
        const __m256i mk = n - i >= 8 ? all : lanes((int)(n - i));
        __m256 g = _mm256_mul_ps(_mm256_maskload_ps(grad + i, mk), scale);
        __m256 mi = _mm256_add_ps(_mm256_mul_ps(b1, _mm256_maskload_ps(m + i, mk)),
                                  _mm256_mul_ps(b1c, g));
        __m256 vi = _mm256_add_ps(_mm256_mul_ps(b2, _mm256_maskload_ps(v + i, mk)),
                                  _mm256_mul_ps(_mm256_mul_ps(b2c, g), g));
        _mm256_maskstore_ps(m + i, mk, mi);
        _mm256_maskstore_ps(v + i, mk, vi);
        __m256 den = _mm256_add_ps(_mm256_mul_ps(_mm256_sqrt_ps(vi), rbc2), eps);
        __m256 upd = _mm256_div_ps(_mm256_mul_ps(step, mi), den);
        _mm256_maskstore_ps(params + i, mk,
                            _mm256_sub_ps(_mm256_maskload_ps(params + i, mk), upd));
    }
}

/* ------------------------------------------------- FMA peak calibration */

/* 12 independent chains of 8-wide FMAs (see pl_fma_loop_avx512). */
static PL_AVX2 float pl_fma_loop_avx2(long iters, double *flops)
{
    __m256 a[12];
    const __m256 m = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
    for (int k = 0; k < 12; k++)
        a[k] = _mm256_set1_ps(1.0f + 0.001f * (float)k);
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 12
        for (int k = 0; k < 12; k++)
            a[k] = _mm256_fmadd_ps(a[k], m, c);
    float out[8], r = 0;
    for (int k = 1; k < 12; k++)
        a[0] = _mm256_add_ps(a[0], a[k]);
    _mm256_storeu_ps(out, a[0]);
    for (int k = 0; k < 8; k++)
        r += out[k];
    *flops = (double)iters * 12 * 8 * 2;
    return r;
}

const pl_kernels pl_kernels_avx2 = {
    .be = PL_GEMM_AVX2,
    .gemm = pl_gemm_avx2,
    .cell_forward = pl_cell_forward_avx2,
    .cell_backward = pl_cell_backward_avx2,
    .transpose16 = pl_transpose16_avx2,
    .adam = pl_adam_avx2,
    .fma_loop = pl_fma_loop_avx2,
    .gemm_kc = AVX2_KC,
};

#endif
