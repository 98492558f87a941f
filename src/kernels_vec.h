/* The kernels of a vector set written once: the LSTM cell forward and
 * backward over 16-unit gate panels, e^x, sigmoid and tanh, the 16 x 16
 * transpose, Adam and the FMA calibration loop, over the primitives of one
 * of vec_avx512.h, vec_avx2.h or vec_neon.h (included first: vf holds
 * VEC_W floats, VEC_FN marks an inline function for the set's target).
 * kernels_<set>.c includes this once, after its GEMM micro-kernel, and
 * fills its table with VEC_KERNELS. The plain twins are pl_cell_*_generic
 * and pl_transpose16_generic (cell.c) and pl_adam_generic (optim.c); the
 * tests compare every set with them. */
#ifndef PARLSTM_KERNELS_VEC_H
#define PARLSTM_KERNELS_VEC_H

#include "kernels.h"

#if PL_UNIT_BLOCK % VEC_W != 0
#error "a gate panel's 16 units must be whole vectors"
#endif

/* The cell's exponentials run several vectors at once: a row's 16 units
 * of four gates (4 x 16 / VEC_W vectors), with the tanh(c) of the row
 * before (cell_tail), go through each step of e^x together before the
 * next step, so that their chains overlap; a chain alone leaves the FP
 * pipes waiting on its latency (bench/cell-cost, avx2 forward cell on Zen
 * 3: 20% faster with the gates together, 5-6% more with the row before's
 * tanh(c) among them). Every lane gets the same operations in the same
 * order as one vector at a time: the same bits. */
#define CELL_NV (PL_UNIT_BLOCK / VEC_W) /* vectors per gate of a panel row */

/* x[j] = e^x[j], j < n <= 5 CELL_NV (a row's gates and the row before's
 * tanh(c)), to about 1 ulp on [-87, 88]: range reduction by ln 2, a
 * degree-5 minimax polynomial (the Cephes expf coefficients), scaling by
 * 2^k. */
VEC_FN void vec_exp_n(vf *x, const int n)
{
    static const float poly[] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                 4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
    vf k[5 * CELL_NV], r[5 * CELL_NV], p[5 * CELL_NV];
#pragma GCC unroll 20
    for (int j = 0; j < n; j++) {
        x[j] = vf_min(vf_max(x[j], vf_set1(-87.0f)), vf_set1(88.0f));
        k[j] = vf_round(vf_mul(x[j], vf_set1(1.44269504088896341f)));
    }
#pragma GCC unroll 20
    for (int j = 0; j < n; j++) {
        r[j] = vf_fnmadd(k[j], vf_set1(0.693359375f), x[j]);
        r[j] = vf_fnmadd(k[j], vf_set1(-2.12194440e-4f), r[j]);
        p[j] = vf_set1(poly[0]);
    }
#pragma GCC unroll 5
    for (int d = 1; d < 6; d++)
#pragma GCC unroll 20
        for (int j = 0; j < n; j++)
            p[j] = vf_fmadd(p[j], r[j], vf_set1(poly[d]));
#pragma GCC unroll 20
    for (int j = 0; j < n; j++)
        x[j] = vf_ldexp(vf_fmadd(p[j], vf_mul(r[j], r[j]), vf_add(r[j], vf_set1(1.0f))), k[j]);
}

/* sigmoid(x) = 1 / (1 + e), e = e^-x */
VEC_FN vf sigmoid_arg(vf x) { return vf_sub(vf_zero(), x); }
VEC_FN vf sigmoid_of(vf e) { return vf_recip(vf_add(vf_set1(1.0f), e)); }

/* tanh(x) = sign(x) (1 - e) / (1 + e), e = e^-2|x| */
VEC_FN vf tanh_arg(vf x) { return vf_mul(vf_abs(x), vf_set1(-2.0f)); }
VEC_FN vf tanh_of(vf e, vf x)
{
    const vf one = vf_set1(1.0f);
    return vf_signof(vf_quot(vf_sub(one, e), vf_add(one, e)), x);
}

/* A row of a panel whose c is known and whose tanh(c), tc and h are still
 * to come: the forward cell finishes it inside the next row's exponentials
 * (one chain of e^x over 5 x 16 units instead of 4 x 16, then 16 alone,
 * whose latency the pipes waited on), or alone at the panel's end. */
typedef struct {
    vf c[CELL_NV], o[CELL_NV]; /* the row's c and output gate */
    size_t off, h_off, h2_off; /* its units in c and tc, h and h2 */
    int live;                  /* 0: no row waiting (c holds zeros) */
} cell_tail;

/* The waiting row's tc = tanh(c) from e = e^-2|c|, and h = o tc. */
VEC_FN void cell_tail_finish(const pl_cell_args *a, cell_tail *t, const vf *e)
{
#pragma GCC unroll 4
    for (int v = 0; v < CELL_NV; v++) {
        vf tc = tanh_of(e[v], t->c[v]);
        vf_store(a->tc + t->off + VEC_W * v, tc);
        vf h = vf_mul(t->o[v], tc);
        vf_store(a->h + t->h_off + VEC_W * v, h);
        if (a->h2)
            vf_store(a->h2 + t->h2_off + VEC_W * v, h);
    }
    t->live = 0;
}

/* The waiting row, alone (the panel's last). */
VEC_FN void cell_tail_flush(const pl_cell_args *a, cell_tail *t)
{
    vf e[CELL_NV];
#pragma GCC unroll 4
    for (int v = 0; v < CELL_NV; v++)
        e[v] = tanh_arg(t->c[v]);
    vec_exp_n(e, CELL_NV);
    cell_tail_finish(a, t, e);
}

/* One row of a panel: the gates g[0, 16, 32, 48] in, their activations
 * out, c of its 16 units (at offset off) out; the row before it (t)
 * finished in the same exponentials, and this one left waiting in t for
 * its tc and h (at offsets off, h_off, h2_off). Every lane gets the
 * operations of a row computed alone: the same bits. */
VEC_FN void cell_forward_row(const pl_cell_args *a, float *g, size_t off, size_t h_off,
                             size_t h2_off, cell_tail *t)
{
    vf x[4 * CELL_NV], e[5 * CELL_NV]; /* gate q's vector v at q CELL_NV + v */
    const int G = 2;                    /* [i f g o]: tanh's gate */
#pragma GCC unroll 16
    for (int j = 0; j < 4 * CELL_NV; j++) {
        x[j] = vf_load(g + 16 * (j / CELL_NV) + VEC_W * (j % CELL_NV));
        e[j] = j / CELL_NV == G ? tanh_arg(x[j]) : sigmoid_arg(x[j]);
    }
#pragma GCC unroll 4
    for (int v = 0; v < CELL_NV; v++)
        e[4 * CELL_NV + v] = tanh_arg(t->c[v]);
    vec_exp_n(e, 5 * CELL_NV);
    if (t->live)
        cell_tail_finish(a, t, e + 4 * CELL_NV);
#pragma GCC unroll 16
    for (int j = 0; j < 4 * CELL_NV; j++) {
        x[j] = j / CELL_NV == G ? tanh_of(e[j], x[j]) : sigmoid_of(e[j]);
        vf_store(g + 16 * (j / CELL_NV) + VEC_W * (j % CELL_NV), x[j]);
    }
#pragma GCC unroll 4
    for (int v = 0; v < CELL_NV; v++) {
        vf cp = a->c_prev ? vf_load(a->c_prev + off + VEC_W * v) : vf_zero();
        t->c[v] = vf_fmadd(x[CELL_NV + v], cp, vf_mul(x[v], x[G * CELL_NV + v]));
        vf_store(a->c + off + VEC_W * v, t->c[v]);
        t->o[v] = x[3 * CELL_NV + v];
    }
    t->off = off;
    t->h_off = h_off;
    t->h2_off = h2_off;
    t->live = 1;
}

/* The cells prefetch the row CELL_AHEAD rows on: its gates (4 lines) and
 * its lines of each state array (c, tc, h; in backward dc, tc, dh): a line
 * a row (h two: prefetch_units), which a training step reaches from beyond
 * L2 (every step's states are kept for the backward pass) and where the
 * hardware's prefetchers left the cells waiting. The backward cell, whose
 * gates were written all the steps ago, also reaches into the next panel;
 * the forward cell's were just written by the products, and it stays in
 * its panel. avx2 on Zen 3, hidden 256, in a step: backward cell 38% and
 * forward 12% faster; the backward cell within its panel only, 20%
 * (bench/results/zen3-cells.txt). */
#define CELL_AHEAD 4
/* The backward cell's distance, where a set's rows are short enough to
 * want more (avx512, a vector a row: 8 on Zen 5, where the backward cell
 * ran 0.93-0.95x the time at T=784 and hidden 128, 15 of 15 pairs; the
 * forward cell gained nothing past 4: bench/results/zen5-avx512-tries.txt) */
#ifndef CELL_AHEAD_BACK
#define CELL_AHEAD_BACK CELL_AHEAD
#endif

VEC_FN void prefetch_gates(const float *g)
{
    for (int q = 0; q < 4; q++)
        __builtin_prefetch(g + 16 * q, 1, 3);
}

/* 16 units of h in the next step's rows of [x, 1, h], whose row length
 * and offset rarely make them start a line: both lines they may span
 * (pixel by pixel MNIST: the forward cell 0.62x the time with the second
 * line prefetched too; bench/results/zen3-cells.txt). */
VEC_FN void prefetch_units(const float *h)
{
    __builtin_prefetch(h, 1, 3);
    __builtin_prefetch(h + PL_UNIT_BLOCK - 1, 1, 3);
}

static VEC_TARGET void vec_cell_forward(const pl_cell_args *a)
{
    for (int p = a->p0; p < a->p1; p++) {
        cell_tail t = {.live = 0};
        float *g = a->g + p * a->g_ps;
        size_t u = (size_t)p * PL_UNIT_BLOCK;
        for (int b = 0; b < a->n; b++, g += PL_PANEL) {
            if (b + CELL_AHEAD < a->n) {
                const size_t ahead = (size_t)(b + CELL_AHEAD);
                prefetch_gates(g + CELL_AHEAD * PL_PANEL);
                __builtin_prefetch(a->c + ahead * a->Hp + u, 1, 3);
                __builtin_prefetch(a->tc + ahead * a->Hp + u, 1, 3);
                if (a->c_prev)
                    __builtin_prefetch(a->c_prev + ahead * a->Hp + u, 0, 3);
                prefetch_units(a->h + ahead * a->h_rs + u);
                if (a->h2)
                    prefetch_units(a->h2 + ahead * a->h2_rs + u);
            }
            cell_forward_row(a, g, (size_t)b * a->Hp + u, (size_t)b * a->h_rs + u,
                             (size_t)b * a->h2_rs + u, &t);
        }
        if (t.live)
            cell_tail_flush(a, &t);
    }
}

/* One vector of units of one row: activations in g, gate gradients out;
 * dc_t in, dc_{t-1} out. */
VEC_FN void cell_backward_units(const pl_cell_args *a, float *g, size_t off)
{
    const vf one = vf_set1(1.0f);
    vf i = vf_load(g), f = vf_load(g + 16), gg = vf_load(g + 32), o = vf_load(g + 48);
    vf tc = vf_load(a->tc + off), dh = vf_load(a->dh + off);
    vf cp = a->c_prev ? vf_load(a->c_prev + off) : vf_zero();
    /* dc = dc_next + dh o (1 - tc^2) */
    vf dc = vf_fmadd(vf_mul(dh, o), vf_fnmadd(tc, tc, one), vf_load(a->dc + off));
    vf d_o = vf_mul(vf_mul(dh, tc), vf_mul(o, vf_sub(one, o)));
    vf d_i = vf_mul(vf_mul(dc, gg), vf_mul(i, vf_sub(one, i)));
    vf d_g = vf_mul(vf_mul(dc, i), vf_fnmadd(gg, gg, one));
    vf d_f = vf_mul(vf_mul(dc, cp), vf_mul(f, vf_sub(one, f)));
    vf_store(a->dc + off, vf_mul(dc, f));
    vf_store(g, d_i);
    vf_store(g + 16, d_f);
    vf_store(g + 32, d_g);
    vf_store(g + 48, d_o);
}

/* Row b + CELL_AHEAD_BACK of panel p, or of the next panel when p has
 * fewer rows: 0 with its panel and row, or -1 past the last panel. */
VEC_FN int ahead_of(const pl_cell_args *a, int p, int b, int *pa, int *ba)
{
    *pa = p;
    *ba = b + CELL_AHEAD_BACK;
    if (*ba >= a->n) {
        *pa = p + 1;
        *ba -= a->n;
    }
    return *pa < a->p1 && *ba < a->n ? 0 : -1;
}

static VEC_TARGET void vec_cell_backward(const pl_cell_args *a)
{
    for (int p = a->p0; p < a->p1; p++) {
        float *g = a->g + p * a->g_ps;
        size_t u = (size_t)p * PL_UNIT_BLOCK;
        for (int b = 0; b < a->n; b++, g += PL_PANEL) {
            int pa, ba;
            if (ahead_of(a, p, b, &pa, &ba) == 0) {
                const size_t ahead = (size_t)ba * a->Hp + (size_t)pa * PL_UNIT_BLOCK;
                prefetch_gates(a->g + pa * a->g_ps + (size_t)ba * PL_PANEL);
                __builtin_prefetch(a->dc + ahead, 1, 3);
                __builtin_prefetch(a->tc + ahead, 0, 3);
                __builtin_prefetch(a->dh + ahead, 0, 3);
                if (a->c_prev)
                    __builtin_prefetch(a->c_prev + ahead, 0, 3);
            }
            for (int v = 0; v < PL_UNIT_BLOCK; v += VEC_W)
                cell_backward_units(a, g + v, (size_t)b * a->Hp + u + v);
        }
    }
}

/* dst[i * ldd + u] = src[u * lds + i] for i, u < 16, in VEC_W x VEC_W
 * blocks. */
static VEC_TARGET void vec_transpose16(const float *src, size_t lds, float *dst, size_t ldd)
{
    for (int bi = 0; bi < 16; bi += VEC_W)
        for (int bu = 0; bu < 16; bu += VEC_W)
            vf_transpose(src + (size_t)bu * lds + bi, lds, dst + (size_t)bi * ldd + bu, ldd);
}

/* The update of pl_adam_generic (optim.c), VEC_W lanes at a time, then the
 * scalar loop itself for the tail: every lane does the same operations in
 * the same order, with no FMA (the build uses -ffp-contract=off): the same
 * bits. */
static VEC_TARGET void vec_adam(float *params, const float *grad, float *m, float *v, size_t n,
                                const pl_adam_k *k)
{
    const vf step = vf_set1(k->step), b1 = vf_set1(k->b1), b2 = vf_set1(k->b2),
             b1c = vf_set1(k->b1c), b2c = vf_set1(k->b2c), rbc2 = vf_set1(k->rbc2),
             eps = vf_set1(k->eps), scale = vf_set1(k->scale), keep = vf_set1(k->keep);
    size_t i = 0;
    for (; i + VEC_W <= n; i += VEC_W) {
        vf g = vf_mul(vf_load(grad + i), scale);
        vf mi = vf_add(vf_mul(b1, vf_load(m + i)), vf_mul(b1c, g));
        vf vi = vf_add(vf_mul(b2, vf_load(v + i)), vf_mul(vf_mul(b2c, g), g));
        vf_store(m + i, mi);
        vf_store(v + i, vi);
        vf den = vf_add(vf_mul(vf_sqrt(vi), rbc2), eps);
        vf upd = vf_div(vf_mul(step, mi), den);
        vf_store(params + i, vf_sub(vf_mul(vf_load(params + i), keep), upd));
    }
    if (i < n)
        pl_adam_generic(params + i, grad + i, m + i, v + i, n - i, k);
}

/* VEC_FMA_CHAINS independent chains of FMAs, enough to cover the FMA
 * latency on every pipe. Returns a value that depends on every chain, so
 * nothing is optimised away; *flops gets the operations done. */
static VEC_TARGET float vec_fma_loop(long iters, double *flops)
{
    vf a[VEC_FMA_CHAINS];
    const vf m = vf_set1(0.9999999f), c = vf_set1(1e-7f);
    for (int k = 0; k < VEC_FMA_CHAINS; k++)
        a[k] = vf_set1(1.0f + 0.001f * (float)k);
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 16
        for (int k = 0; k < VEC_FMA_CHAINS; k++)
            a[k] = vf_fmadd(a[k], m, c);
    for (int k = 1; k < VEC_FMA_CHAINS; k++)
        a[0] = vf_add(a[0], a[k]);
    *flops = (double)iters * VEC_FMA_CHAINS * VEC_W * 2;
    return vf_sum(a[0]);
}

/* The table entries of the kernels above (a set adds .be, .gemm and
 * .gemm_isa). */
#define VEC_KERNELS                                                             \
    .cell_forward = vec_cell_forward, .cell_backward = vec_cell_backward,      \
    .transpose16 = vec_transpose16, .adam = vec_adam, .fma_loop = vec_fma_loop

#endif
