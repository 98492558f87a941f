/* The vector primitives of the avx2 kernel set: one vf holds 8 floats (a
 * __m256). Included by kernels_avx2.c before kernels_vec.h, the kernels
 * written once over these primitives. Every function carries the set's
 * target attributes ("avx2,fma", never -march): the file that includes
 * this runs it only after pl_cpu_has_avx2() said yes. */
#ifndef PARLSTM_VEC_AVX2_H
#define PARLSTM_VEC_AVX2_H

#include <immintrin.h>

#define VEC_TARGET __attribute__((target("avx2,fma")))
#define VEC_FN static inline __attribute__((always_inline)) VEC_TARGET
#define VEC_W 8           /* floats per vector */
#define VEC_FMA_CHAINS 12 /* independent FMA chains for the peak: 4 cycles x 2 ports + slack */

typedef __m256 vf;

VEC_FN vf vf_load(const float *p) { return _mm256_loadu_ps(p); }
VEC_FN void vf_store(float *p, vf x) { _mm256_storeu_ps(p, x); }
VEC_FN vf vf_set1(float x) { return _mm256_set1_ps(x); }
VEC_FN vf vf_zero(void) { return _mm256_setzero_ps(); }
VEC_FN vf vf_add(vf a, vf b) { return _mm256_add_ps(a, b); }
VEC_FN vf vf_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
VEC_FN vf vf_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
VEC_FN vf vf_div(vf a, vf b) { return _mm256_div_ps(a, b); }
VEC_FN vf vf_sqrt(vf a) { return _mm256_sqrt_ps(a); }
VEC_FN vf vf_min(vf a, vf b) { return _mm256_min_ps(a, b); }
VEC_FN vf vf_max(vf a, vf b) { return _mm256_max_ps(a, b); }
VEC_FN vf vf_abs(vf a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
/* a b + c and c - a b, one rounding each */
VEC_FN vf vf_fmadd(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
VEC_FN vf vf_fnmadd(vf a, vf b, vf c) { return _mm256_fnmadd_ps(a, b, c); }
/* to the nearest integer, ties to even */
VEC_FN vf vf_round(vf a)
{
    return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
/* p 2^n for integral n in [-126, 127]: 2^n built in the exponent field (a
 * normal number) */
VEC_FN vf vf_ldexp(vf p, vf n)
{
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)),
                                  23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}
/* y with the sign bit of x or-ed in (y >= 0) */
VEC_FN vf vf_signof(vf y, vf x) { return _mm256_or_ps(y, _mm256_and_ps(x, _mm256_set1_ps(-0.0f))); }
/* Division, not the reciprocal estimate (vrcpps): its 12-bit tables differ
 * between Intel and AMD, a correctly rounded division does not, so every
 * CPU that runs this set gives the same bits. */
VEC_FN vf vf_recip(vf x) { return _mm256_div_ps(_mm256_set1_ps(1.0f), x); }
VEC_FN vf vf_quot(vf a, vf b) { return _mm256_div_ps(a, b); }
/* the sum of the lanes (any order) */
VEC_FN float vf_sum(vf a)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* dst[i * ldd + u] = src[u * lds + i] for an 8 x 8 block. In-lane unpacks
 * and shuffles transpose the 4 x 4 quarters, 128-bit permutes swap them. */
VEC_FN void vf_transpose(const float *src, size_t lds, float *dst, size_t ldd)
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

#endif
