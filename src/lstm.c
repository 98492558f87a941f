/* Forward and backward of the model over one shard of rows, on a workspace
 * the caller owns (nothing here allocates after pl_ws_create).
 *
 * The input projection has no nonlinearity, so it folds into the gates:
 *   gates_t = (x_t W_in + b_in) W_x + h_{t-1} W_h + b
 *           = x_t (W_in W_x) + h_{t-1} W_h + (b_in W_x + b).
 * Each step therefore multiplies [x_t, 1, h_{t-1}] (K1 = D + 1 + Hp wide) by
 * one packed matrix Wf = [W_in W_x ; b_in W_x + b ; W_h], built once per
 * training step (pl_packed_update). W_in and b_in lie next to each other in
 * the parameter buffer, so [W_in ; b_in] is one (D + 1, H) matrix and
 * [W_in ; b_in] W_x is one GEMM. Backward computes
 *   dWf = sum_t [x_t, 1, h_{t-1}]^T dG_t     (one GEMM over all steps)
 * whose rows give [P ; s] = sum_t [x_t, 1]^T dG_t (s = db) and dW_h, and
 * then exactly: dW_x = [W_in ; b_in]^T [P ; s] and
 * [dW_in ; db_in] = [P ; s] W_x^T, two more GEMMs. For MNIST (D = 28,
 * H = 128) this cuts a step's multiply-adds by 44% against the unfolded
 * computation; the gradients are the same functions of the parameters (the
 * finite-difference test checks).
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

/* Rows of [x_t, 1, h_{t-1}] per chunk of the weight-gradient GEMM: a
 * kernel benchmark of the batch-100 shape (5.7 MiB of gate gradients, more
 * than L2) gave 4.67 ms unchunked, 4.33 ms at 400 rows, 4.16 ms at 200. */
#ifndef WGRAD_ROWS
#define WGRAD_ROWS 200
#endif

#ifndef _OPENMP
static int omp_get_thread_num(void) { return 0; }
static int omp_get_num_threads(void) { return 1; }
#endif

struct pl_packed {
    pl_config cfg;
    int D, H, Hp, K1, np, nq;
    pl_gemm_backend be;
    float *wf;  /* (np, K1, 64)   folded gate weights, panel-major:
                                  rows [W_in W_x (D) ; bias (1) ; W_h (Hp)] */
    float *wht; /* (nq, 4Hp, 64)  W_h transposed: rows = internal gate columns,
                                  cols = units, panels of 64 units */
    float *wxt; /* (4Hp, H)       W_x transposed, rows = internal gate columns */
    float *wot; /* (C, Hp)        W_out transposed, padded units zero */
};

struct pl_ws {
    pl_config cfg;
    int T, cap, threads, n;
    int D, H, Hp, K1, C, np, nq;
    pl_gemm_backend be;
    uint8_t *labels; /* (n) */
    float *xh;       /* (T + 1, n, K1): slot t = [x_t, 1, h_{t-1}]; slot T holds h_T */
    float *gates;    /* (np, T, n, 64): activations, then gate gradients */
    float *c, *tc;   /* (T, n, Hp) */
    float *dh, *dc;  /* (n, Hp) */
    float *prob;     /* (n, C) softmax */
    float *dlog;     /* (n, C) */
    float *dwf;      /* (np, K1, 64): rows [P (D) ; s (1) ; dW_h (Hp)] */
    double *prof;    /* [PL_NPHASE] seconds, or NULL: profiling off */
};

const char *pl_phase_name(pl_phase p)
{
    static const char *names[PL_NPHASE] = {
        "pack weights", "load batch",  "forward GEMM",  "forward cell",
        "output layer", "backward cell", "recurrent GEMM", "weight-gradient GEMM",
        "unfold gradients", "reduction", "Adam",      "barrier wait"};
    return p < PL_NPHASE ? names[p] : "?";
}

void pl_ws_set_profile(pl_ws *ws, double *seconds) { ws->prof = seconds; }

/* Adds the time since *t0 to phase ph (when profiling, on thread 0 only)
 * and restarts the clock. */
static inline void lap(const pl_ws *ws, int tid, pl_phase ph, double *t0)
{
    if (ws->prof && tid == 0) {
        double t = pl_seconds();
        ws->prof[ph] += t - *t0;
        *t0 = t;
    }
}

static void shape(const pl_config *cfg, int *Hp, int *K1, int *np, int *nq)
{
    *Hp = (int)pl_round_up((size_t)cfg->hidden, PL_UNIT_BLOCK);
    *K1 = cfg->input + 1 + *Hp;
    *np = *Hp / PL_UNIT_BLOCK;
    *nq = (*Hp + PL_PANEL - 1) / PL_PANEL;
}

pl_packed *pl_packed_create(const pl_config *cfg, pl_gemm_backend be)
{
    if (cfg->layers != 1)
        return NULL; /* stacked layers: not built yet (the layers issue) */
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
    pk->wxt = pl_alloc_floats((size_t)4 * pk->Hp * pk->H);
    pk->wot = pl_alloc_floats((size_t)cfg->classes * pk->Hp);
    if (!pk->wf || !pk->wht || !pk->wxt || !pk->wot) {
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
    pl_free(pk->wxt);
    pl_free(pk->wot);
    free(pk);
}

/* Units of gate panel p that exist (the rest are padding). */
static inline int panel_units(int H, int p)
{
    int u0 = p * PL_UNIT_BLOCK;
    return H - u0 < PL_UNIT_BLOCK ? H - u0 : PL_UNIT_BLOCK;
}

static void pack_wf_panel(pl_packed *pk, const pl_tensors *t, int p)
{
    const int D = pk->D, H = pk->H, K1 = pk->K1, H4 = 4 * H;
    float *dst = pk->wf + (size_t)p * K1 * PL_PANEL;
    const int u0 = p * PL_UNIT_BLOCK, nl = panel_units(H, p);
    memset(dst, 0, sizeof(float) * (size_t)K1 * PL_PANEL);
    for (int gate = 0; gate < 4; gate++) {
        size_t col0 = (size_t)gate * H + u0;
        /* rows 0..D: [W_in ; b_in] (D + 1, H) x W_x[:, this gate's units] */
        pl_gemm_op op = {.M = D + 1, .N = nl, .nb = 1, .kb = H,
                         .a = t->w_in, .a_rs = (size_t)H, .a_cs = 1,
                         .b = t->w[0] + col0, .ldb = (size_t)H4,
                         .c = dst + gate * PL_UNIT_BLOCK, .ldc = PL_PANEL};
        pl_gemm(pk->be, &op);
        float *bias = dst + (size_t)D * PL_PANEL + gate * PL_UNIT_BLOCK;
        for (int l = 0; l < nl; l++)
            bias[l] += t->b[0][col0 + l];
        /* rows D + 1 + h: W_h */
        for (int h = 0; h < H; h++)
            memcpy(dst + (size_t)(D + 1 + h) * PL_PANEL + gate * PL_UNIT_BLOCK,
                   t->w[0] + (size_t)(H + h) * H4 + col0, sizeof(float) * (size_t)nl);
    }
}

/* Rows 64p .. 64p + 63 (gate panel p) of a transposed gate matrix: from
 * src (H, 4H) with row stride 4H into dst rows of stride ld, column j0 on. */
static void transpose_panel(const float *src, int H, int p, float *dst, size_t ld,
                            int j0, int j1)
{
    const int nl = panel_units(H, p);
    for (int gate = 0; gate < 4; gate++)
        for (int j = j0; j < j1; j++) {
            const float *row = src + (size_t)j * 4 * H + (size_t)gate * H + p * PL_UNIT_BLOCK;
            float *out = dst + (size_t)(p * PL_PANEL + gate * PL_UNIT_BLOCK) * ld + (j - j0);
            for (int l = 0; l < nl; l++)
                out[(size_t)l * ld] = row[l];
        }
}

void pl_packed_update(pl_packed *pk, const float *params, int part, int parts)
{
    pl_tensors t;
    long lo, hi;
    pl_tensors_bind(&pk->cfg, (float *)params, &t);
    const int np = pk->np, H = pk->H, rows = 4 * pk->Hp;
    const float *wh = t.w[0] + (size_t)H * 4 * H;
    /* tasks: np Wf panels, np blocks of W_x^T, nq panels of W_h^T, W_out^T */
    pl_split(2L * np + pk->nq + 1, part, parts, &lo, &hi);
    for (long task = lo; task < hi; task++) {
        if (task == 2L * np + pk->nq) {
            const int C = pk->cfg.classes;
            for (int c = 0; c < C; c++)
                for (int u = 0; u < H; u++)
                    pk->wot[(size_t)c * pk->Hp + u] = t.w_out[(size_t)u * C + c];
        } else if (task < np) {
            pack_wf_panel(pk, &t, (int)task);
        } else if (task < 2 * np) {
            int p = (int)(task - np);
            memset(pk->wxt + (size_t)p * PL_PANEL * H, 0, sizeof(float) * PL_PANEL * H);
            transpose_panel(t.w[0], H, p, pk->wxt, (size_t)H, 0, H);
        } else {
            int q = (int)(task - 2 * np);
            float *dst = pk->wht + (size_t)q * rows * PL_PANEL;
            int j1 = H < (q + 1) * PL_PANEL ? H : (q + 1) * PL_PANEL;
            memset(dst, 0, sizeof(float) * (size_t)rows * PL_PANEL);
            for (int p = 0; p < np; p++)
                transpose_panel(wh, H, p, dst, PL_PANEL, q * PL_PANEL, j1);
        }
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
    if (!ws->labels || !ws->xh || !ws->gates || !ws->c || !ws->tc || !ws->dh ||
        !ws->dc || !ws->prob || !ws->dlog || !ws->dwf) {
        pl_ws_free(ws);
        return NULL;
    }
    return ws;
}

void pl_ws_free(pl_ws *ws)
{
    if (!ws)
        return;
    void *bufs[] = {ws->labels, ws->xh,   ws->gates, ws->c,  ws->tc,
                    ws->dh,     ws->dc,   ws->prob,  ws->dlog, ws->dwf};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        pl_free(bufs[i]);
    free(ws);
}

double pl_ws_estimate(const pl_config *cfg, int T, int cap)
{
    int Hp, K1, np, nq;
    shape(cfg, &Hp, &K1, &np, &nq);
    double n = cap, t = T;
    double floats = (t + 1) * n * K1 + t * n * 4 * Hp + 2 * t * n * Hp + 2 * n * Hp +
                    2 * n * cfg->classes + (double)np * K1 * PL_PANEL;
    return floats * sizeof(float) + n;
}

size_t pl_ws_bytes(const pl_ws *ws)
{
    return (size_t)pl_ws_estimate(&ws->cfg, ws->T, ws->cap);
}

/* The constant 1 of every slot, and the zero initial state in slot 0. */
static void load_constants(pl_ws *ws)
{
    const int n = ws->n, K1 = ws->K1, D = ws->D, Hp = ws->Hp;
    for (int t = 0; t < ws->T; t++)
        for (int b = 0; b < n; b++) {
            float *row = ws->xh + ((size_t)t * n + b) * K1;
            row[D] = 1.0f;
            if (t == 0)
                memset(row + D + 1, 0, sizeof(float) * (size_t)Hp);
        }
}

void pl_ws_load_u8(pl_ws *ws, const pl_dataset *ds, const uint32_t *idx, int n)
{
    const int T = ws->T, D = ws->D, K1 = ws->K1;
    double t0 = ws->prof ? pl_seconds() : 0;
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
    lap(ws, 0, PL_PH_LOAD, &t0);
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

    double t0 = ws->prof ? pl_seconds() : 0;
#pragma omp parallel num_threads(ws->threads) if (ws->threads > 1)
    {
        const unsigned long fp = pl_fp_fast_enter();
        const int tid = omp_get_thread_num();
        double tt = t0;
        long p0, p1;
        pl_split(np, tid, omp_get_num_threads(), &p0, &p1);
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
            lap(ws, tid, PL_PH_FWD_GEMM, &tt);
            pl_cell_args ca = {
                .n = n, .p0 = (int)p0, .p1 = (int)p1, .Hp = Hp,
                .g = ws->gates + (size_t)t * n * PL_PANEL, .g_ps = g_ps,
                .c = ws->c + (size_t)t * n * Hp, .tc = ws->tc + (size_t)t * n * Hp,
                .c_prev = t > 0 ? ws->c + (size_t)(t - 1) * n * Hp : NULL,
                .h = ws->xh + (size_t)(t + 1) * n * K1 + D + 1, .h_rs = (size_t)K1};
            cell_forward(ws->be, &ca);
#pragma omp barrier
            lap(ws, tid, PL_PH_FWD_CELL, &tt);
        }
        pl_fp_fast_leave(fp);
    }
    t0 = ws->prof ? pl_seconds() : 0;

    /* Output layer and softmax cross-entropy on h_T: logits into prob. */
    pl_tensors tp;
    pl_tensors_bind(&ws->cfg, (float *)params, &tp);
    const float *hT = ws->xh + (size_t)T * n * K1 + D + 1;
    pl_gemm_op op = {.M = n, .N = C, .nb = 1, .kb = H, .a = hT, .a_rs = (size_t)K1, .a_cs = 1,
                     .b = tp.w_out, .ldb = (size_t)C, .c = ws->prob, .ldc = (size_t)C};
    pl_gemm(ws->be, &op);
    double loss = 0;
    int right = 0;
    for (int b = 0; b < n; b++) {
        float *z = ws->prob + (size_t)b * C;
        int best = 0;
        for (int c = 0; c < C; c++) {
            z[c] += tp.b_out[c];
            if (z[c] > z[best])
                best = c;
        }
        if (logits)
            memcpy(logits + (size_t)b * C, z, sizeof(float) * (size_t)C);
        const float top = z[best], mine = z[ws->labels[b]];
        double sum = 0;
        for (int c = 0; c < C; c++) {
            z[c] = expf(z[c] - top);
            sum += z[c];
        }
        for (int c = 0; c < C; c++)
            z[c] = (float)(z[c] / sum);
        loss += log(sum) + top - mine;
        right += best == ws->labels[b];
    }
    if (correct)
        *correct = right;
    lap(ws, 0, PL_PH_OUTPUT, &t0);
    return loss;
}

/* dW_h and db from dWf's panels [p0, p1) into the canonical layout. */
static void scatter_panels(const pl_ws *ws, float *grad_wh, float *grad_b, long p0,
                           long p1)
{
    const int D = ws->D, H = ws->H, K1 = ws->K1, H4 = 4 * H;
    for (long p = p0; p < p1; p++) {
        const float *src = ws->dwf + (size_t)p * K1 * PL_PANEL;
        const int nl = panel_units(H, (int)p);
        for (int gate = 0; gate < 4; gate++) {
            size_t col0 = (size_t)gate * H + (size_t)p * PL_UNIT_BLOCK;
            const float *g = src + gate * PL_UNIT_BLOCK;
            memcpy(grad_b + col0, g + (size_t)D * PL_PANEL, sizeof(float) * (size_t)nl);
            for (int h = 0; h < H; h++)
                memcpy(grad_wh + (size_t)h * H4 + col0, g + (size_t)(D + 1 + h) * PL_PANEL,
                       sizeof(float) * (size_t)nl);
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
    double t0 = ws->prof ? pl_seconds() : 0;

    /* Output layer. */
    const float inv = 1.0f / norm;
    for (int b = 0; b < n; b++)
        for (int c = 0; c < C; c++)
            ws->dlog[(size_t)b * C + c] =
                (ws->prob[(size_t)b * C + c] - (c == ws->labels[b] ? 1.0f : 0.0f)) * inv;
    const float *hT = ws->xh + (size_t)T * n * K1 + D + 1;
    /* dW_out = h_T^T dlogits; dh_T = dlogits W_out^T (padded units get 0) */
    pl_gemm_op gw = {.M = H, .N = C, .nb = 1, .kb = n, .a = hT, .a_rs = 1, .a_cs = (size_t)K1,
                     .b = ws->dlog, .ldb = (size_t)C, .c = tg.w_out, .ldc = (size_t)C};
    pl_gemm(ws->be, &gw);
    pl_gemm_op gh = {.M = n, .N = Hp, .nb = 1, .kb = C, .a = ws->dlog, .a_rs = (size_t)C,
                     .a_cs = 1, .b = pk->wot, .ldb = (size_t)Hp, .c = ws->dh, .ldc = (size_t)Hp};
    pl_gemm(ws->be, &gh);
    for (int c = 0; c < C; c++)
        tg.b_out[c] = 0;
    for (int b = 0; b < n; b++)
        for (int c = 0; c < C; c++)
            tg.b_out[c] += ws->dlog[(size_t)b * C + c];
    memset(ws->dc, 0, sizeof(float) * (size_t)n * Hp);
    lap(ws, 0, PL_PH_OUTPUT, &t0);

    float *grad_wx = tg.w[0], *grad_wh = tg.w[0] + (size_t)H * H4;
#pragma omp parallel num_threads(ws->threads) if (ws->threads > 1)
    {
        const unsigned long fp = pl_fp_fast_enter();
        const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
        double tt = t0;
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
            lap(ws, tid, PL_PH_BWD_CELL, &tt);
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
            lap(ws, tid, PL_PH_BWD_GEMM, &tt);
        }
        /* dWf[p] = sum_t xh_t^T dG_t[p]: one GEMM over all steps, taken in
         * chunks of about WGRAD_ROWS rows so that a chunk of xh stays in L2
         * while every panel of this thread passes over it. */
        const long rows = (long)T * n;
        const long chunk = n * (WGRAD_ROWS / n > 0 ? WGRAD_ROWS / n : 1);
        for (long r0 = 0; r0 < rows; r0 += chunk)
            for (long p = p0; p < p1; p++) {
                pl_gemm_op op = {
                    .M = K1, .N = PL_PANEL, .nb = 1,
                    .kb = (int)(rows - r0 < chunk ? rows - r0 : chunk),
                    .a = ws->xh + (size_t)r0 * K1, .a_rs = 1, .a_cs = (size_t)K1,
                    .b = ws->gates + p * g_ps + (size_t)r0 * PL_PANEL, .ldb = PL_PANEL,
                    .c = ws->dwf + (size_t)p * K1 * PL_PANEL, .ldc = PL_PANEL,
                    .accumulate = r0 > 0};
                pl_gemm(ws->be, &op);
            }
        lap(ws, tid, PL_PH_WGRAD, &tt);
        scatter_panels(ws, grad_wh, tg.b[0], p0, p1);
        /* dW_x[:, panel cols] = [W_in ; b_in]^T [P ; s][:, panel cols] */
        for (long p = p0; p < p1; p++)
            for (int gate = 0; gate < 4; gate++) {
                pl_gemm_op op = {
                    .M = H, .N = panel_units(H, (int)p), .nb = 1, .kb = D + 1,
                    .a = tp.w_in, .a_rs = 1, .a_cs = (size_t)H,
                    .b = ws->dwf + (size_t)p * K1 * PL_PANEL + gate * PL_UNIT_BLOCK,
                    .ldb = PL_PANEL,
                    .c = grad_wx + (size_t)gate * H + (size_t)p * PL_UNIT_BLOCK,
                    .ldc = (size_t)H4};
                pl_gemm(ws->be, &op);
            }
#pragma omp barrier
        /* [dW_in ; db_in][:, h0:h1] = [P ; s] W_x^T[:, h0:h1]; [dW_in ; db_in]
         * is one (D + 1, H) block of the gradient, like [W_in ; b_in] */
        long h0, h1;
        pl_split((H + 15) / 16, tid, nt, &h0, &h1);
        h0 *= 16;
        h1 = h1 * 16 < H ? h1 * 16 : H;
        if (h1 > h0) {
            pl_gemm_op op = {
                .M = D + 1, .N = (int)(h1 - h0), .nb = np, .kb = PL_PANEL,
                .a = ws->dwf, .a_rs = PL_PANEL, .a_cs = 1, .a_bs = (size_t)K1 * PL_PANEL,
                .b = pk->wxt + h0, .ldb = (size_t)H, .b_bs = (size_t)PL_PANEL * H,
                .c = tg.w_in + h0, .ldc = (size_t)H};
            pl_gemm(ws->be, &op);
        }
#pragma omp barrier
        lap(ws, tid, PL_PH_UNFOLD, &tt);
        pl_fp_fast_leave(fp);
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
