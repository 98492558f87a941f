/* The vector primitives of the neon kernel set: one vf holds 4 floats (a
 * float32x4_t). Included by kernels_neon.c before kernels_vec.h, the
 * kernels written once over these primitives. AArch64 always has NEON with
 * FMA, so nothing here needs a target attribute or a run-time check. */
#ifndef PARLSTM_VEC_NEON_H
#define PARLSTM_VEC_NEON_H

#include <arm_neon.h>

#define VEC_TARGET
#define VEC_FN static inline __attribute__((always_inline))
#define VEC_W 4           /* floats per vector */
#define VEC_FMA_CHAINS 16 /* a latency of 4 cycles on up to four FMA pipes (Neoverse V1) */

typedef float32x4_t vf;

VEC_FN vf vf_load(const float *p) { return vld1q_f32(p); }
VEC_FN void vf_store(float *p, vf x) { vst1q_f32(p, x); }
VEC_FN vf vf_set1(float x) { return vdupq_n_f32(x); }
VEC_FN vf vf_zero(void) { return vdupq_n_f32(0.0f); }
VEC_FN vf vf_add(vf a, vf b) { return vaddq_f32(a, b); }
VEC_FN vf vf_sub(vf a, vf b) { return vsubq_f32(a, b); }
VEC_FN vf vf_mul(vf a, vf b) { return vmulq_f32(a, b); }
VEC_FN vf vf_div(vf a, vf b) { return vdivq_f32(a, b); }
VEC_FN vf vf_sqrt(vf a) { return vsqrtq_f32(a); }
VEC_FN vf vf_min(vf a, vf b) { return vminq_f32(a, b); }
VEC_FN vf vf_max(vf a, vf b) { return vmaxq_f32(a, b); }
VEC_FN vf vf_abs(vf a) { return vabsq_f32(a); }
/* a b + c and c - a b, one rounding each */
VEC_FN vf vf_fmadd(vf a, vf b, vf c) { return vfmaq_f32(c, a, b); }
VEC_FN vf vf_fnmadd(vf a, vf b, vf c) { return vfmsq_f32(c, a, b); }
/* to the nearest integer, ties to even */
VEC_FN vf vf_round(vf a) { return vrndnq_f32(a); }
/* p 2^n for integral n in [-126, 127]: 2^n built in the exponent field */
VEC_FN vf vf_ldexp(vf p, vf n)
{
    int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    return vmulq_f32(p, vreinterpretq_f32_s32(e));
}
/* y with the sign bit of x or-ed in (y >= 0) */
VEC_FN vf vf_signof(vf y, vf x)
{
    const uint32x4_t sign = vdupq_n_u32(0x80000000u);
    return vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(y),
                                           vandq_u32(vreinterpretq_u32_f32(x), sign)));
}
/* Division, not the reciprocal estimate: correctly rounded, so every ARM
 * core gives the same bits. */
VEC_FN vf vf_recip(vf x) { return vdivq_f32(vdupq_n_f32(1.0f), x); }
VEC_FN vf vf_quot(vf a, vf b) { return vdivq_f32(a, b); }
/* the sum of the lanes (any order) */
VEC_FN float vf_sum(vf a) { return vaddvq_f32(a); }

/* dst[i * ldd + u] = src[u * lds + i] for a 4 x 4 block: 32-bit then
 * 64-bit transposes of row pairs. */
VEC_FN void vf_transpose(const float *src, size_t lds, float *dst, size_t ldd)
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

#endif
