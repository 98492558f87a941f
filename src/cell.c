/* The LSTM cell over one time step in plain C (libm): the reference for
 * the vector cells (kernels_vec.h, for every vector set) and
 * the cell of the portable sets; and the plain 16 x 16 transpose.
 * Gate panel p holds [i | f | g | o] for units 16p .. 16p + 15. */
#include <math.h>

#include "kernels.h"

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

void pl_cell_forward_generic(const pl_cell_args *a)
{
    for (int p = a->p0; p < a->p1; p++) {
        float *g = a->g + p * a->g_ps;
        size_t u0 = (size_t)p * PL_UNIT_BLOCK;
        for (int b = 0; b < a->n; b++, g += PL_PANEL)
            for (int l = 0; l < PL_UNIT_BLOCK; l++) {
                size_t off = (size_t)b * a->Hp + u0 + l;
                float i = sigmoidf(g[l]), f = sigmoidf(g[16 + l]);
                float gg = tanhf(g[32 + l]), o = sigmoidf(g[48 + l]);
                float cp = a->c_prev ? a->c_prev[off] : 0.0f;
                float c = f * cp + i * gg, tc = tanhf(c);
                g[l] = i;
                g[16 + l] = f;
                g[32 + l] = gg;
                g[48 + l] = o;
                a->c[off] = c;
                a->tc[off] = tc;
                a->h[(size_t)b * a->h_rs + u0 + l] = o * tc;
                if (a->h2)
                    a->h2[(size_t)b * a->h2_rs + u0 + l] = o * tc;
            }
    }
}

void pl_cell_backward_generic(const pl_cell_args *a)
{
    for (int p = a->p0; p < a->p1; p++) {
        float *g = a->g + p * a->g_ps;
        size_t u0 = (size_t)p * PL_UNIT_BLOCK;
        for (int b = 0; b < a->n; b++, g += PL_PANEL)
            for (int l = 0; l < PL_UNIT_BLOCK; l++) {
                size_t off = (size_t)b * a->Hp + u0 + l;
                float i = g[l], f = g[16 + l], gg = g[32 + l], o = g[48 + l];
                float tc = a->tc[off], dh = a->dh[off];
                float cp = a->c_prev ? a->c_prev[off] : 0.0f;
                float dc = a->dc[off] + dh * o * (1.0f - tc * tc);
                a->dc[off] = dc * f;
                g[l] = dc * gg * i * (1.0f - i);
                g[16 + l] = dc * cp * f * (1.0f - f);
                g[32 + l] = dc * i * (1.0f - gg * gg);
                g[48 + l] = dh * tc * o * (1.0f - o);
            }
    }
}

void pl_transpose16_generic(const float *src, size_t lds, float *dst, size_t ldd)
{
    for (int i = 0; i < 16; i++)
        for (int u = 0; u < 16; u++)
            dst[(size_t)i * ldd + u] = src[(size_t)u * lds + i];
}
