/* The vector primitives of the avx512 kernel set: one vf holds 16 floats
 * (a __m512). Included by kernels_avx512.c before kernels_vec.h, the
 * kernels written once over these primitives. Every function carries the
 * set's target attributes (never -march): the file that includes this
 * runs it only after pl_cpu_has_avx512() said yes. */
#ifndef PARLSTM_VEC_AVX512_H
#define PARLSTM_VEC_AVX512_H

#include <immintrin.h>

#define VEC_TARGET __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")))
#define VEC_FN static inline __attribute__((always_inline)) VEC_TARGET
#define VEC_W 16         /* floats per vector */
#define VEC_FMA_CHAINS 12 /* independent FMA chains for the peak: 4 cycles x 2 ports + slack */

typedef __m512 vf;

VEC_FN vf vf_load(const float *p) { return _mm512_loadu_ps(p); }
VEC_FN void vf_store(float *p, vf x) { _mm512_storeu_ps(p, x); }
VEC_FN vf vf_set1(float x) { return _mm512_set1_ps(x); }
VEC_FN vf vf_zero(void) { return _mm512_setzero_ps(); }
VEC_FN vf vf_add(vf a, vf b) { return _mm512_add_ps(a, b); }
VEC_FN vf vf_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
VEC_FN vf vf_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
VEC_FN vf vf_div(vf a, vf b) { return _mm512_div_ps(a, b); }
VEC_FN vf vf_sqrt(vf a) { return _mm512_sqrt_ps(a); }
VEC_FN vf vf_min(vf a, vf b) { return _mm512_min_ps(a, b); }
VEC_FN vf vf_max(vf a, vf b) { return _mm512_max_ps(a, b); }
VEC_FN vf vf_abs(vf a) { return _mm512_abs_ps(a); }
/* a b + c and c - a b, one rounding each */
VEC_FN vf vf_fmadd(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
VEC_FN vf vf_fnmadd(vf a, vf b, vf c) { return _mm512_fnmadd_ps(a, b, c); }
/* to the nearest integer, ties to even */
VEC_FN vf vf_round(vf a)
{
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
/* p 2^n for integral n in [-126, 127] */
VEC_FN vf vf_ldexp(vf p, vf n) { return _mm512_scalef_ps(p, n); }
/* y with the sign bit of x or-ed in (y >= 0) */
VEC_FN vf vf_signof(vf y, vf x)
{
    __m512i sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(y), sign));
}
/* 1 / x: the 14-bit estimate and one Newton step (about 2^-28 relative
 * error, the same on every AVX-512 CPU), several times the throughput of a
 * division. */
VEC_FN vf vf_recip(vf x)
{
    __m512 r = _mm512_rcp14_ps(x);
    return _mm512_mul_ps(r, _mm512_fnmadd_ps(x, r, _mm512_set1_ps(2.0f)));
}
/* a / b as the set's cell computes it: a (1 / b) */
VEC_FN vf vf_quot(vf a, vf b) { return _mm512_mul_ps(a, vf_recip(b)); }
/* the sum of the lanes (any order) */
VEC_FN float vf_sum(vf a) { return _mm512_reduce_add_ps(a); }

/* dst[i * ldd + u] = src[u * lds + i] for a 16 x 16 block: two rounds of
 * in-lane unpacks, then two of 128-bit lane shuffles. */
VEC_FN void vf_transpose(const float *src, size_t lds, float *dst, size_t ldd)
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

#endif
