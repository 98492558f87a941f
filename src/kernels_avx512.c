/* AVX-512 kernels: the GEMM micro-kernel and its blocking driver, and the
 * LSTM cell forward/backward over 16-unit gate panels.
 *
 * Compiled for any x86-64 target: the functions carry target attributes and
 * are only called after pl_cpu_has_avx512() said yes. The plain-loop twins
 * are pl_gemm_naive (gemm.c) and pl_cell_*_generic (cell.c); the tests
 * compare them.
 *
 * GEMM: C is cut into tiles of up to MR rows by NR = 64 columns (four
 * vectors); a tile's 24 accumulators stay in registers over the whole inner
 * loop, each k loading four vectors of B and broadcasting MR values of A.
 * The inner dimension is cut into chunks whose B block (KC x 64 floats)
 * stays in L1 while every row tile of C passes over it. */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#if defined(__x86_64__) || defined(__i386__)

#define PL_AVX512 \
    __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")))
#define MR 6
#define NV 4
#define KC 160       /* B chunk of 160 x 64 floats: 40 KiB of the 48 KiB L1 */
#define KC_T 160      /* with A transposed every k touches a new A line: smaller */

typedef struct {
    const float *a;
    size_t a_rs, a_cs, a_bs;
    int nb, kb;
    const float *b;
    size_t ldb, b_bs;
    float *c;
    size_t ldc;
    int accumulate;
    __mmask16 last; /* mask of the last vector's lanes */
} tile_args;

/* One tile of MR_ rows by NV_ vectors; MR_ and NV_ are constants at every
 * call site so the accumulator array lives in registers. */
static inline __attribute__((always_inline)) PL_AVX512 void
tile(const tile_args *t, const int MR_, const int NV_)
{
    __m512 r[MR][NV];
#pragma GCC unroll 6
    for (int i = 0; i < MR_; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV_; v++) {
            __mmask16 m = v == NV_ - 1 ? t->last : 0xffff;
            r[i][v] = t->accumulate
                          ? _mm512_maskz_loadu_ps(m, t->c + i * t->ldc + 16 * v)
                          : _mm512_setzero_ps();
        }
    for (int blk = 0; blk < t->nb; blk++) {
        const float *a = t->a + blk * t->a_bs;
        const float *b = t->b + blk * t->b_bs;
        for (int k = 0; k < t->kb; k++) {
            __m512 bv[NV];
#pragma GCC unroll 4
            for (int v = 0; v < NV_; v++)
                bv[v] = v == NV_ - 1 ? _mm512_maskz_loadu_ps(t->last, b + 16 * v)
                                     : _mm512_loadu_ps(b + 16 * v);
            const float *ak = a + k * t->a_cs;
#pragma GCC unroll 6
            for (int i = 0; i < MR_; i++) {
                __m512 av = _mm512_set1_ps(ak[i * t->a_rs]);
#pragma GCC unroll 4
                for (int v = 0; v < NV_; v++)
                    r[i][v] = _mm512_fmadd_ps(av, bv[v], r[i][v]);
            }
            b += t->ldb;
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR_; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV_; v++) {
            if (v == NV_ - 1)
                _mm512_mask_storeu_ps(t->c + i * t->ldc + 16 * v, t->last, r[i][v]);
            else
                _mm512_storeu_ps(t->c + i * t->ldc + 16 * v, r[i][v]);
        }
}

#define TILE_NV(mr)                                                           \
    switch (nv) {                                                             \
    case 1: tile(t, mr, 1); break;                                            \
    case 2: tile(t, mr, 2); break;                                            \
    case 3: tile(t, mr, 3); break;                                            \
    default: tile(t, mr, 4); break;                                           \
    }

static PL_AVX512 void tile_any(const tile_args *t, int mr, int nv)
{
    switch (mr) {
    case 1: TILE_NV(1); break;
    case 2: TILE_NV(2); break;
    case 3: TILE_NV(3); break;
    case 4: TILE_NV(4); break;
    case 5: TILE_NV(5); break;
    default: TILE_NV(6); break;
    }
}

PL_AVX512 void pl_gemm_avx512(const pl_gemm_op *op)
{
    const int M = op->M;
    /* Row tiles of balanced height: ntile tiles of `base` or `base + 1`. */
    const int ntile = (M + MR - 1) / MR;
    const int base = M / ntile, extra = M % ntile;
    /* Inner-dimension chunks: whole blocks when blocks are short, else
     * balanced pieces of one block. */
    const int kc = KC;
    int chunk_blocks = 1, nchunk, piece = op->kb;
    if (op->nb > 1) {
        chunk_blocks = op->kb >= kc ? 1 : kc / op->kb;
        nchunk = (op->nb + chunk_blocks - 1) / chunk_blocks;
    } else {
        nchunk = (op->kb + kc - 1) / kc;
        piece = (op->kb + nchunk - 1) / nchunk;
    }
    for (int j0 = 0; j0 < op->N; j0 += 16 * NV) {
        int cols = op->N - j0 < 16 * NV ? op->N - j0 : 16 * NV;
        int nv = (cols + 15) / 16;
        __mmask16 last = (__mmask16)(cols % 16 ? (1u << (cols % 16)) - 1 : 0xffff);
        for (int ch = 0; ch < nchunk; ch++) {
            tile_args t;
            t.a_rs = op->a_rs;
            t.a_cs = op->a_cs;
            t.a_bs = op->a_bs;
            t.ldb = op->ldb;
            t.b_bs = op->b_bs;
            t.ldc = op->ldc;
            t.last = last;
            t.accumulate = op->accumulate || ch > 0;
            size_t a_off, b_off;
            if (op->nb > 1) {
                int b0 = ch * chunk_blocks;
                t.nb = op->nb - b0 < chunk_blocks ? op->nb - b0 : chunk_blocks;
                t.kb = op->kb;
                a_off = (size_t)b0 * op->a_bs;
                b_off = (size_t)b0 * op->b_bs;
            } else {
                int k0 = ch * piece;
                t.nb = 1;
                t.kb = op->kb - k0 < piece ? op->kb - k0 : piece;
                a_off = (size_t)k0 * op->a_cs;
                b_off = (size_t)k0 * op->ldb;
            }
            int i0 = 0;
            for (int ti = 0; ti < ntile; ti++) {
                int mr = base + (ti < extra);
                t.a = op->a + a_off + (size_t)i0 * op->a_rs;
                t.b = op->b + b_off + j0;
                t.c = op->c + (size_t)i0 * op->ldc + j0;
                tile_any(&t, mr, nv);
                i0 += mr;
            }
        }
    }
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

PL_AVX512 void pl_cell_forward_avx512(const pl_cell_args *a)
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
            _mm512_storeu_ps(a->h + (size_t)b * a->h_rs + u, _mm512_mul_ps(o, tc));
        }
    }
}

PL_AVX512 void pl_cell_backward_avx512(const pl_cell_args *a)
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

/* ------------------------------------------------------------- Adam */

/* The update of pl_adam (optim.c), 16 lanes at a time; every lane does the
 * same operations as the scalar loop, in the same order. */
PL_AVX512 void pl_adam_avx512(float *params, const float *grad, float *m, float *v, size_t n,
                              const pl_adam_k *k)
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
PL_AVX512 float pl_fma_loop_avx512(long iters, double *flops)
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

__attribute__((target("avx2,fma"))) float pl_fma_loop_avx2(long iters, double *flops)
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

#else /* not x86: never called (pl_cpu_has_avx512 is false) */

void pl_gemm_avx512(const pl_gemm_op *op) { pl_gemm_naive(op); }
void pl_cell_forward_avx512(const pl_cell_args *a) { pl_cell_forward_generic(a); }
void pl_cell_backward_avx512(const pl_cell_args *a) { pl_cell_backward_generic(a); }
float pl_fma_loop_avx512(long iters, double *flops) { *flops = 0; return 0; }
void pl_adam_avx512(float *params, const float *grad, float *m, float *v, size_t n,
                    const pl_adam_k *k) { abort(); }
float pl_fma_loop_avx2(long iters, double *flops) { *flops = 0; return 0; }

#endif
