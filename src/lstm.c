/* Forward and backward of the model over one shard of rows, on a workspace
 * the caller owns (nothing here allocates after pl_ws_create).
 *
 * The input projection has no nonlinearity, so it folds into the gates:
 *   gates_t = (x_t W_in + b_in) W_x + h_{t-1} W_h + b
 *           = x_t (W_in W_x) + h_{t-1} W_h + (b_in W_x + b).
 * Each step therefore multiplies [x_t, h_{t-1}, 1] (K1 = D + Hp + 1 wide) by
 * one packed matrix Wf = [W_in W_x ; W_h ; b_in W_x + b], built once per
 * training step (pl_packed_update). Backward computes
 *   dWf = sum_t [x_t, h_{t-1}, 1]^T dG_t     (one GEMM over all steps)
 * whose rows give P = sum_t x_t^T dG_t, dW_h and s = sum of dG (= db), and
 * then exactly: dW_x = W_in^T P + b_in s^T, dW_in = P W_x^T,
 * db_in = W_x s. For MNIST (D = 28, H = 128) this cuts a step's
 * multiply-adds by 44% against the unfolded computation; the gradients are
 * the same functions of the parameters (the finite-difference test checks).
 *
 * Internal layout: hidden units are padded to Hp (a multiple of 16; padded
 * units have zero weights and stay exactly zero) and gate columns are
 * interleaved in panels of 64: panel p = [i | f | g | o] of units 16p..16p+15,
 * so each OpenMP thread owns whole panels = whole units and the cell needs no
 * data from other threads. One barrier per time step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "internal.h"

#ifndef _OPENMP
static int omp_get_thread_num(void) { return 0; }
static int omp_get_num_threads(void) { return 1; }
#endif

struct pl_packed {
    pl_config cfg;
    int D, H, Hp, K1, np, nq;
    pl_gemm_backend be;
    float *wf;  /* (np, K1, 64)   folded gate weights, panel-major */
    float *wht; /* (nq, 4Hp, 64)  W_h transposed: rows = internal gate columns,
                                  cols = units, panels of 64 units */
};

struct pl_ws {
    pl_config cfg;
    int T, cap, threads, n;
    int D, H, Hp, K1, C, np, nq;
    pl_gemm_backend be;
    uint8_t *labels; /* (n) */
    float *xh;       /* (T + 1, n, K1): slot t = [x_t, h_{t-1}, 1]; slot T holds h_T */
    float *gates;    /* (np, T, n, 64): activations, then gate gradients */
    float *c, *tc;   /* (T, n, Hp) */
    float *dh, *dc;  /* (n, Hp) */
    float *prob;     /* (n, C) softmax */
    float *dlog;     /* (n, C) */
    float *dwf;      /* (np, K1, 64) */
    float *pg;       /* (D, 4H) P = sum_t x_t^T dG_t, canonical columns */
    float *sg;       /* (4H)    s = sum of dG, canonical columns */
};

/* Canonical column (gate * H + unit) of internal gate column k, or -1 for
 * a padded unit. */
static inline long canon_col(int k, int H)
{
    int p = k / PL_PANEL, gate = (k % PL_PANEL) / PL_UNIT_BLOCK;
    int u = p * PL_UNIT_BLOCK + k % PL_UNIT_BLOCK;
    return u < H ? (long)gate * H + u : -1;
}

static void shape(const pl_config *cfg, int *Hp, int *K1, int *np, int *nq)
{
    *Hp = (int)pl_round_up((size_t)cfg->hidden, PL_UNIT_BLOCK);
    *K1 = cfg->input + *Hp + 1;
    *np = *Hp / PL_UNIT_BLOCK;
    *nq = (*Hp + PL_PANEL - 1) / PL_PANEL;
}

pl_packed *pl_packed_create(const pl_config *cfg, pl_gemm_backend be)
{
    pl_packed *pk = calloc(1, sizeof *pk);
    if (!pk)
        return NULL;
    pk->cfg = *cfg;
    pk->D = cfg->input;
    pk->H = cfg->hidden;
    shape(cfg, &pk->Hp, &pk->K1, &pk->np, &pk->nq);
    pk->be = pl_gemm_resolve(be);
    pk->wf = pl_alloc_floats((size_t)pk->np * pk->K1 * PL_PANEL);
    pk->wht = pl_alloc_floats((size_t)pk->nq * 4 * pk->Hp * PL_PANEL);
    if (!pk->wf || !pk->wht) {
        pl_packed_free(pk);
        return NULL;
    }
    return pk;
}

void pl_packed_free(pl_packed *pk)
{
    if (!pk)
        return;
    pl_free(pk->wf);
    pl_free(pk->wht);
    free(pk);
}

static void pack_wf_panel(pl_packed *pk, const pl_tensors *t, int p)
{
    const int D = pk->D, H = pk->H, K1 = pk->K1, H4 = 4 * H;
    float *dst = pk->wf + (size_t)p * K1 * PL_PANEL;
    int u0 = p * PL_UNIT_BLOCK;
    int nl = H - u0 < PL_UNIT_BLOCK ? H - u0 : PL_UNIT_BLOCK;
    memset(dst, 0, sizeof(float) * (size_t)K1 * PL_PANEL);
    for (int gate = 0; gate < 4; gate++) {
        const float *wx = t->w + (size_t)gate * H + u0; /* row h at + h * 4H */
        /* rows d < D: (W_in W_x)[d][cols] */
        for (int d = 0; d < D; d++) {
            float *row = dst + (size_t)d * PL_PANEL + gate * PL_UNIT_BLOCK;
            for (int h = 0; h < H; h++) {
                float a = t->w_in[(size_t)d * H + h];
                const float *src = wx + (size_t)h * H4;
                for (int l = 0; l < nl; l++)
                    row[l] += a * src[l];
            }
        }
        /* rows D + h: W_h */
        for (int h = 0; h < H; h++) {
            float *row = dst + (size_t)(D + h) * PL_PANEL + gate * PL_UNIT_BLOCK;
            const float *src = t->w + (size_t)(H + h) * H4 + (size_t)gate * H + u0;
            memcpy(row, src, sizeof(float) * (size_t)nl);
        }
        /* the last row: b_in W_x + b */
        float *row = dst + (size_t)(K1 - 1) * PL_PANEL + gate * PL_UNIT_BLOCK;
        for (int l = 0; l < nl; l++)
            row[l] = t->b[(size_t)gate * H + u0 + l];
        for (int h = 0; h < H; h++) {
            float a = t->b_in[h];
            const float *src = wx + (size_t)h * H4;
            for (int l = 0; l < nl; l++)
                row[l] += a * src[l];
        }
    }
}

static void pack_wht_panel(pl_packed *pk, const pl_tensors *t, int q)
{
    const int H = pk->H, H4 = 4 * H, rows = 4 * pk->Hp;
    float *dst = pk->wht + (size_t)q * rows * PL_PANEL;
    memset(dst, 0, sizeof(float) * (size_t)rows * PL_PANEL);
    for (int k = 0; k < rows; k++) {
        long col = canon_col(k, H);
        if (col < 0)
            continue;
        for (int j = 0; j < PL_PANEL; j++) {
            int u = q * PL_PANEL + j;
            if (u < H)
                dst[(size_t)k * PL_PANEL + j] = t->w[(size_t)(H + u) * H4 + col];
        }
    }
}

void pl_packed_update(pl_packed *pk, const float *params, int part, int parts)
{
    pl_tensors t;
    long lo, hi;
    pl_tensors_bind(&pk->cfg, (float *)params, &t);
    pl_split(pk->np + pk->nq, part, parts, &lo, &hi);
    for (long task = lo; task < hi; task++) {
        if (task < pk->np)
            pack_wf_panel(pk, &t, (int)task);
        else
            pack_wht_panel(pk, &t, (int)(task - pk->np));
    }
}

pl_ws *pl_ws_create(const pl_config *cfg, int T, int cap, int threads,
                    pl_gemm_backend be)
{
    if (T < 1 || cap < 1)
        return NULL;
    pl_ws *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    ws->cfg = *cfg;
    ws->T = T;
    ws->cap = cap;
    ws->threads = threads < 1 ? 1 : threads;
    ws->D = cfg->input;
    ws->H = cfg->hidden;
    ws->C = cfg->classes;
    shape(cfg, &ws->Hp, &ws->K1, &ws->np, &ws->nq);
    ws->be = pl_gemm_resolve(be);
    size_t n = (size_t)cap, Tz = (size_t)T;
    ws->labels = pl_alloc_aligned(n);
    ws->xh = pl_alloc_floats((Tz + 1) * n * ws->K1);
    ws->gates = pl_alloc_floats(Tz * n * 4 * ws->Hp);
    ws->c = pl_alloc_floats(Tz * n * ws->Hp);
    ws->tc = pl_alloc_floats(Tz * n * ws->Hp);
    ws->dh = pl_alloc_floats(n * ws->Hp);
    ws->dc = pl_alloc_floats(n * ws->Hp);
    ws->prob = pl_alloc_floats(n * ws->C);
    ws->dlog = pl_alloc_floats(n * ws->C);
    ws->dwf = pl_alloc_floats((size_t)ws->np * ws->K1 * PL_PANEL);
    ws->pg = pl_alloc_floats((size_t)ws->D * 4 * ws->H);
    ws->sg = pl_alloc_floats((size_t)4 * ws->H);
    if (!ws->labels || !ws->xh || !ws->gates || !ws->c || !ws->tc || !ws->dh ||
        !ws->dc || !ws->prob || !ws->dlog || !ws->dwf || !ws->pg || !ws->sg) {
        pl_ws_free(ws);
        return NULL;
    }
    return ws;
}

void pl_ws_free(pl_ws *ws)
{
    if (!ws)
        return;
    void *bufs[] = {ws->labels, ws->xh,   ws->gates, ws->c,  ws->tc, ws->dh,
                    ws->dc,     ws->prob, ws->dlog,  ws->dwf, ws->pg, ws->sg};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        pl_free(bufs[i]);
    free(ws);
}

size_t pl_ws_bytes(const pl_ws *ws)
{
    size_t n = (size_t)ws->cap, T = (size_t)ws->T;
    size_t floats = (T + 1) * n * ws->K1 + T * n * 4 * ws->Hp +
                    2 * T * n * ws->Hp + 2 * n * ws->Hp + 2 * n * ws->C +
                    (size_t)ws->np * ws->K1 * PL_PANEL + (size_t)ws->D * 4 * ws->H +
                    4 * (size_t)ws->H;
    return floats * sizeof(float) + n;
}

/* Zero initial state and the constant 1 of every row of slot 0, and the
 * constant of the later slots. */
static void load_constants(pl_ws *ws)
{
    const int n = ws->n, K1 = ws->K1, D = ws->D, Hp = ws->Hp;
    for (int t = 0; t < ws->T; t++)
        for (int b = 0; b < n; b++) {
            float *row = ws->xh + ((size_t)t * n + b) * K1;
            if (t == 0)
                memset(row + D, 0, sizeof(float) * (size_t)Hp);
            row[K1 - 1] = 1.0f;
        }
}

void pl_ws_load_u8(pl_ws *ws, const pl_dataset *ds, const uint32_t *idx, int n)
{
    const int T = ws->T, D = ws->D, K1 = ws->K1;
    ws->n = n;
    for (int b = 0; b < n; b++) {
        const uint8_t *img = ds->images + (size_t)idx[b] * T * D;
        ws->labels[b] = ds->labels[idx[b]];
        for (int t = 0; t < T; t++) {
            float *row = ws->xh + ((size_t)t * n + b) * K1;
            for (int d = 0; d < D; d++)
                row[d] = (float)img[t * D + d] * (1.0f / 255.0f);
        }
    }
    load_constants(ws);
}

void pl_ws_load_f32(pl_ws *ws, const float *x, const uint8_t *labels, int n)
{
    const int T = ws->T, D = ws->D, K1 = ws->K1;
    ws->n = n;
    for (int b = 0; b < n; b++) {
        ws->labels[b] = labels[b];
        for (int t = 0; t < T; t++)
            memcpy(ws->xh + ((size_t)t * n + b) * K1,
                   x + ((size_t)b * T + t) * D, sizeof(float) * (size_t)D);
    }
    load_constants(ws);
}

static void cell_forward(pl_gemm_backend be, const pl_cell_args *a)
{
    if (be == PL_GEMM_AVX512)
        pl_cell_forward_avx512(a);
    else
        pl_cell_forward_generic(a);
}

static void cell_backward(pl_gemm_backend be, const pl_cell_args *a)
{
    if (be == PL_GEMM_AVX512)
        pl_cell_backward_avx512(a);
    else
        pl_cell_backward_generic(a);
}

double pl_lstm_forward(pl_ws *ws, const pl_packed *pk, const float *params,
                       int *correct, float *logits)
{
    const int n = ws->n, T = ws->T, K1 = ws->K1, Hp = ws->Hp, D = ws->D;
    const int H = ws->H, C = ws->C, np = ws->np;
    const size_t g_ps = (size_t)T * n * PL_PANEL; /* panel stride in gates */

#pragma omp parallel num_threads(ws->threads) if (ws->threads > 1)
    {
        long p0, p1;
        pl_split(np, omp_get_thread_num(), omp_get_num_threads(), &p0, &p1);
        for (int t = 0; t < T; t++) {
            const float *xh_t = ws->xh + (size_t)t * n * K1;
            for (long p = p0; p < p1; p++) {
                pl_gemm_op op = {
                    .M = n, .N = PL_PANEL, .nb = 1, .kb = K1,
                    .a = xh_t, .a_rs = (size_t)K1, .a_cs = 1,
                    .b = pk->wf + (size_t)p * K1 * PL_PANEL, .ldb = PL_PANEL,
                    .c = ws->gates + p * g_ps + (size_t)t * n * PL_PANEL,
                    .ldc = PL_PANEL, .accumulate = 0};
                pl_gemm(ws->be, &op);
            }
            pl_cell_args ca = {
                .n = n, .p0 = (int)p0, .p1 = (int)p1, .Hp = Hp,
                .g = ws->gates + (size_t)t * n * PL_PANEL, .g_ps = g_ps,
                .c = ws->c + (size_t)t * n * Hp, .tc = ws->tc + (size_t)t * n * Hp,
                .c_prev = t > 0 ? ws->c + (size_t)(t - 1) * n * Hp : NULL,
                .h = ws->xh + (size_t)(t + 1) * n * K1 + D, .h_rs = (size_t)K1};
            cell_forward(ws->be, &ca);
#pragma omp barrier
        }
    }

    /* Output layer and softmax cross-entropy on h_T. */
    pl_tensors tp;
    pl_tensors_bind(&ws->cfg, (float *)params, &tp);
    double loss = 0;
    int right = 0;
    float z[256];
    for (int b = 0; b < n; b++) {
        const float *h = ws->xh + ((size_t)T * n + b) * K1 + D;
        for (int c = 0; c < C; c++)
            z[c] = tp.b_out[c];
        for (int u = 0; u < H; u++) {
            const float *wrow = tp.w_out + (size_t)u * C;
            for (int c = 0; c < C; c++)
                z[c] += h[u] * wrow[c];
        }
        int best = 0;
        for (int c = 1; c < C; c++)
            if (z[c] > z[best])
                best = c;
        double sum = 0;
        float *pr = ws->prob + (size_t)b * C;
        for (int c = 0; c < C; c++) {
            pr[c] = expf(z[c] - z[best]);
            sum += pr[c];
        }
        for (int c = 0; c < C; c++)
            pr[c] = (float)(pr[c] / sum);
        loss += log(sum) + z[best] - z[ws->labels[b]];
        right += best == ws->labels[b];
        if (logits)
            memcpy(logits + (size_t)b * C, z, sizeof(float) * (size_t)C);
    }
    if (correct)
        *correct = right;
    return loss;
}

/* Gradients of the canonical parameters from dWf (see the top comment). */
static void scatter_panels(pl_ws *ws, float *grad_wh, float *grad_b, long p0,
                           long p1)
{
    const int D = ws->D, H = ws->H, K1 = ws->K1, H4 = 4 * H;
    for (long p = p0; p < p1; p++) {
        const float *src = ws->dwf + (size_t)p * K1 * PL_PANEL;
        for (int j = 0; j < PL_PANEL; j++) {
            long col = canon_col((int)p * PL_PANEL + j, H);
            if (col < 0)
                continue;
            for (int d = 0; d < D; d++)
                ws->pg[(size_t)d * H4 + col] = src[(size_t)d * PL_PANEL + j];
            for (int h = 0; h < H; h++)
                grad_wh[(size_t)h * H4 + col] = src[(size_t)(D + h) * PL_PANEL + j];
            ws->sg[col] = grad_b[col] = src[(size_t)(K1 - 1) * PL_PANEL + j];
        }
    }
}

void pl_lstm_backward(pl_ws *ws, const pl_packed *pk, const float *params,
                      float norm, float *grad)
{
    const int n = ws->n, T = ws->T, K1 = ws->K1, Hp = ws->Hp, D = ws->D;
    const int H = ws->H, C = ws->C, np = ws->np, H4 = 4 * H;
    const size_t g_ps = (size_t)T * n * PL_PANEL;
    pl_tensors tp, tg;
    pl_tensors_bind(&ws->cfg, (float *)params, &tp);
    pl_tensors_bind(&ws->cfg, grad, &tg);

    /* Output layer. */
    const float inv = 1.0f / norm;
    for (int b = 0; b < n; b++)
        for (int c = 0; c < C; c++)
            ws->dlog[(size_t)b * C + c] =
                (ws->prob[(size_t)b * C + c] - (c == ws->labels[b] ? 1.0f : 0.0f)) * inv;
    memset(tg.w_out, 0, sizeof(float) * (size_t)H * C);
    memset(tg.b_out, 0, sizeof(float) * (size_t)C);
    for (int b = 0; b < n; b++) {
        const float *h = ws->xh + ((size_t)T * n + b) * K1 + D;
        const float *dl = ws->dlog + (size_t)b * C;
        float *dh = ws->dh + (size_t)b * Hp;
        for (int u = 0; u < H; u++) {
            float *gw = tg.w_out + (size_t)u * C;
            const float *w = tp.w_out + (size_t)u * C;
            float acc = 0;
            for (int c = 0; c < C; c++) {
                gw[c] += h[u] * dl[c];
                acc += dl[c] * w[c];
            }
            dh[u] = acc;
        }
        for (int u = H; u < Hp; u++)
            dh[u] = 0;
        for (int c = 0; c < C; c++)
            tg.b_out[c] += dl[c];
    }
    memset(ws->dc, 0, sizeof(float) * (size_t)n * Hp);

    float *grad_wx = tg.w, *grad_wh = tg.w + (size_t)H * H4;
#pragma omp parallel num_threads(ws->threads) if (ws->threads > 1)
    {
        const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
        long p0, p1;
        pl_split(np, tid, nt, &p0, &p1);
        const int u0 = (int)p0 * PL_UNIT_BLOCK, u1 = (int)p1 * PL_UNIT_BLOCK;
        for (int t = T - 1; t >= 0; t--) {
            pl_cell_args ca = {
                .n = n, .p0 = (int)p0, .p1 = (int)p1, .Hp = Hp,
                .g = ws->gates + (size_t)t * n * PL_PANEL, .g_ps = g_ps,
                .tc = ws->tc + (size_t)t * n * Hp,
                .c_prev = t > 0 ? ws->c + (size_t)(t - 1) * n * Hp : NULL,
                .dh = ws->dh, .dc = ws->dc};
            cell_backward(ws->be, &ca);
#pragma omp barrier
            if (t == 0)
                break;
            /* dh_{t-1}[:, u0:u1] = dG_t W_h^T over this thread's units */
            for (int q = u0 / PL_PANEL; q * PL_PANEL < u1; q++) {
                int c0 = q * PL_PANEL > u0 ? q * PL_PANEL : u0;
                int c1 = (q + 1) * PL_PANEL < u1 ? (q + 1) * PL_PANEL : u1;
                pl_gemm_op op = {
                    .M = n, .N = c1 - c0, .nb = np, .kb = PL_PANEL,
                    .a = ws->gates + (size_t)t * n * PL_PANEL, .a_rs = PL_PANEL,
                    .a_cs = 1, .a_bs = g_ps,
                    .b = pk->wht + (size_t)q * 4 * Hp * PL_PANEL + (c0 - q * PL_PANEL),
                    .ldb = PL_PANEL, .b_bs = (size_t)PL_PANEL * PL_PANEL,
                    .c = ws->dh + c0, .ldc = (size_t)Hp, .accumulate = 0};
                pl_gemm(ws->be, &op);
            }
        }
        /* dWf[p] = sum_t xh_t^T dG_t[p]: one GEMM over all steps. */
        for (long p = p0; p < p1; p++) {
            pl_gemm_op op = {
                .M = K1, .N = PL_PANEL, .nb = 1, .kb = T * n,
                .a = ws->xh, .a_rs = 1, .a_cs = (size_t)K1,
                .b = ws->gates + p * g_ps, .ldb = PL_PANEL,
                .c = ws->dwf + (size_t)p * K1 * PL_PANEL, .ldc = PL_PANEL,
                .accumulate = 0};
            pl_gemm(ws->be, &op);
        }
        scatter_panels(ws, grad_wh, tg.b, p0, p1);
#pragma omp barrier
        /* dW_x[h] = sum_d W_in[d][h] P[d] + b_in[h] s */
        long lo, hi;
        pl_split(H, tid, nt, &lo, &hi);
        for (long h = lo; h < hi; h++) {
            float *row = grad_wx + (size_t)h * H4;
            float bh = tp.b_in[h];
            for (int j = 0; j < H4; j++)
                row[j] = bh * ws->sg[j];
            for (int d = 0; d < D; d++) {
                float a = tp.w_in[(size_t)d * H + h];
                const float *pr = ws->pg + (size_t)d * H4;
                for (int j = 0; j < H4; j++)
                    row[j] += a * pr[j];
            }
            /* db_in[h] = W_x[h] . s */
            tg.b_in[h] = pl_dot(tp.w + (size_t)h * H4, ws->sg, (size_t)H4);
            /* dW_in[d][h] = P[d] . W_x[h] */
            for (int d = 0; d < D; d++)
                tg.w_in[(size_t)d * H + h] =
                    pl_dot(ws->pg + (size_t)d * H4, tp.w + (size_t)h * H4, (size_t)H4);
        }
    }
}

double pl_step_flops_executed(const pl_config *cfg, int T, int batch)
{
    int Hp, K1, np, nq;
    shape(cfg, &Hp, &K1, &np, &nq);
    double B = batch, D = cfg->input, H = cfg->hidden, C = cfg->classes;
    double gates = 2.0 * T * B * K1 * 4 * Hp;        /* forward */
    double dh = 2.0 * (T - 1) * B * 4 * Hp * Hp;      /* backward recurrence */
    double dw = 2.0 * T * B * K1 * 4 * Hp;           /* weight gradient */
    double fold = 2.0 * D * H * 4 * H * 3;           /* pack + dW_x + dW_in */
    double out = 2.0 * B * H * C * 3;
    return gates + dh + dw + fold + out;
}

double pl_step_flops_model(const pl_config *cfg, int T, int batch)
{
    double B = batch, D = cfg->input, H = cfg->hidden, C = cfg->classes;
    double proj = 2.0 * T * B * D * H * 2;           /* x W_in and dW_in */
    double gates = 2.0 * T * B * 2 * H * 4 * H * 3;  /* forward, d[x,h], dW */
    double out = 2.0 * B * H * C * 3;
    return proj + gates + out;
}
