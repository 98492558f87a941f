/* Forward and backward of the model over one shard of rows, on a workspace
 * the caller owns (nothing here allocates after pl_ws_create). The step is
 * a chain of pieces, each a forward/backward pair:
 *
 *   fold          pack_panel (layer 0)      unfold_panel, unfold_input
 *   LSTM layer l  layer_forward             layer_backward
 *   output        output_forward            output_backward
 *
 * The fold. The input projection has no nonlinearity, so it folds into the
 * first layer's gates:
 *   gates_t = (x_t W_in + b_in) W_x + h_{t-1} W_h + b
 *           = x_t (W_in W_x) + h_{t-1} W_h + (b_in W_x + b).
 * Each step of layer 0 therefore multiplies [x_t, 1, h_{t-1}] (K = D + 1 +
 * Hp wide) by one matrix Wf = [W_in W_x ; b_in W_x + b ; W_h], built once
 * per training step (pl_packed_update). W_in and b_in lie next to each other
 * in the parameter buffer, so [W_in ; b_in] is one (D + 1, H) matrix.
 * Backward computes dWf = sum_t [x_t, 1, h_{t-1}]^T dG_t (one GEMM over all
 * steps), whose rows give [P ; s] = sum_t [x_t, 1]^T dG_t (s = db) and
 * dW_h, and then exactly dW_x = [W_in ; b_in]^T [P ; s] and
 * [dW_in ; db_in] = [P ; s] W_x^T. For MNIST (D = 28, H = 128) this cuts a
 * step's multiply-adds by 44%; the gradients are the same functions of the
 * parameters (the finite-difference and PyTorch tests check).
 *
 * Layers l > 0 read layer l - 1's h_t: the same step with K = Hp + 1 + Hp,
 * rows [W_x ; b ; W_h], no fold. Backward runs the layers top down; each
 * layer's gradient wrt its input, dG W_x^T over all steps at once, is the
 * gradient from above for the layer below.
 *
 * Internal layout: hidden units are padded to Hp (a multiple of 16; padded
 * units have zero weights and stay exactly zero) and gate columns are
 * interleaved in panels of 64: panel p = [i | f | g | o] of units 16p..16p+15,
 * so each OpenMP thread owns whole panels = whole units and the cell needs no
 * data from other threads: one barrier per time step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "internal.h"

/* Rows of [in_t, 1, h_{t-1}] per chunk of the weight-gradient GEMM. */
#ifndef WGRAD_ROWS
#define WGRAD_ROWS 256
#endif

#ifndef _OPENMP
static int omp_get_thread_num(void) { return 0; }
static int omp_get_num_threads(void) { return 1; }
#endif

struct pl_packed {
    pl_config cfg;
    int D, H, Hp, L, np, nq;
    int K[PL_MAX_LAYERS];        /* rows of wf[l]: D + 1 + Hp (l = 0), 2Hp + 1 */
    pl_gemm_backend be;
    float *wf[PL_MAX_LAYERS];    /* (np, K_l, 64) gate weights, panel-major: rows
                                    [W_in W_x (D) ; bias (1) ; W_h (Hp)] (l = 0),
                                    [W_x (Hp) ; bias (1) ; W_h (Hp)] (l > 0) */
    float *wht[PL_MAX_LAYERS];   /* (nq, 4Hp, 64) W_h transposed: rows = internal
                                    gate columns, 64 units per panel */
    float *wxt[PL_MAX_LAYERS];   /* (nq, 4Hp, 64) W_x transposed, likewise */
    float *wx0;                  /* (np, H, 64)   layer 0's W_x in gate panels */
    float *wot;                  /* (C, Hp)       W_out transposed, padded units zero */
};

struct pl_ws {
    pl_config cfg;
    int T, cap, threads, n;
    int D, H, Hp, L, C, np, nq, Kmax;
    int K[PL_MAX_LAYERS];
    pl_gemm_backend be;
    uint8_t *labels;             /* (n) */
    float *xh[PL_MAX_LAYERS];    /* (T + 1, n, K_l): slot t = [in_t, 1, h_{t-1}];
                                    slot T holds h_T */
    float *gates[PL_MAX_LAYERS]; /* (np, T, n, 64): activations, then gate gradients */
    float *c[PL_MAX_LAYERS];     /* (T, n, Hp) cell state */
    float *tc[PL_MAX_LAYERS];    /* (T, n, Hp) tanh of it */
    float *dH;                   /* (T, n, Hp) gradient wrt h_t of the layer in backward */
    float *dc;                   /* (n, Hp) */
    float *prob, *dlog;          /* (n, C) softmax, its gradient */
    float *dwf;                  /* (np, K_l, 64): rows [P (D) ; s (1) ; dW_h (Hp)] */
    float *scratch;              /* (threads, H, 64): a panel of dW_x (layer 0) */
    double *prof;                /* [PL_NPHASE] seconds, or NULL: profiling off */
};

const char *pl_phase_name(pl_phase p)
{
    static const char *names[PL_NPHASE] = {
        "pack weights",     "load batch",    "forward GEMM",         "forward cell",
        "output layer",     "backward cell", "recurrent GEMM",       "layer-input GEMM",
        "weight-gradient GEMM", "unfold gradients", "reduction", "Adam", "barrier wait"};
    return p < PL_NPHASE ? names[p] : "?";
}

void pl_ws_set_profile(pl_ws *ws, double *seconds) { ws->prof = seconds; }

/* --------------------------------------------------------------- shapes */

static void shape(const pl_config *cfg, int *Hp, int *np, int *nq, int K[PL_MAX_LAYERS])
{
    *Hp = (int)pl_round_up((size_t)cfg->hidden, PL_UNIT_BLOCK);
    *np = *Hp / PL_UNIT_BLOCK;
    *nq = (*Hp + PL_PANEL - 1) / PL_PANEL;
    for (int l = 0; l < PL_MAX_LAYERS; l++)
        K[l] = (l == 0 ? cfg->input : *Hp) + 1 + *Hp;
}

/* Units of gate panel p that exist (the rest are padding). */
static inline int panel_units(int H, int p)
{
    int u0 = p * PL_UNIT_BLOCK;
    return H - u0 < PL_UNIT_BLOCK ? H - u0 : PL_UNIT_BLOCK;
}

/* Gate panels [p0, p1) of thread tid of nt: whole 64-unit panels (4 gate
 * panels) when there are enough for every thread, so that the recurrent
 * and layer-input products are one GEMM each; single gate panels otherwise. */
static void own_panels(int np, int tid, int nt, long *p0, long *p1)
{
    int nq = (np + 3) / 4;
    if (nq >= nt) {
        pl_split(nq, tid, nt, p0, p1);
        *p0 *= 4;
        *p1 = *p1 * 4 < np ? *p1 * 4 : np;
    } else {
        pl_split(np, tid, nt, p0, p1);
    }
}

/* ------------------------------------------------------ packed weights */

pl_packed *pl_packed_create(const pl_config *cfg, pl_gemm_backend be)
{
    pl_packed *pk = calloc(1, sizeof *pk);
    if (!pk)
        return NULL;
    pk->cfg = *cfg;
    pk->D = cfg->input;
    pk->H = cfg->hidden;
    pk->L = cfg->layers;
    shape(cfg, &pk->Hp, &pk->np, &pk->nq, pk->K);
    pk->be = pl_gemm_resolve(be);
    int ok = 1;
    for (int l = 0; l < pk->L; l++) {
        pk->wf[l] = pl_alloc_floats((size_t)pk->np * pk->K[l] * PL_PANEL);
        pk->wht[l] = pl_alloc_floats((size_t)pk->nq * 4 * pk->Hp * PL_PANEL);
        pk->wxt[l] = pl_alloc_floats((size_t)pk->nq * 4 * pk->Hp * PL_PANEL);
        ok = ok && pk->wf[l] && pk->wht[l] && pk->wxt[l];
    }
    pk->wx0 = pl_alloc_floats((size_t)pk->np * pk->H * PL_PANEL);
    pk->wot = pl_alloc_floats((size_t)cfg->classes * pk->Hp);
    if (!ok || !pk->wx0 || !pk->wot) {
        pl_packed_free(pk);
        return NULL;
    }
    return pk;
}

void pl_packed_free(pl_packed *pk)
{
    if (!pk)
        return;
    for (int l = 0; l < PL_MAX_LAYERS; l++) {
        pl_free(pk->wf[l]);
        pl_free(pk->wht[l]);
        pl_free(pk->wxt[l]);
    }
    pl_free(pk->wx0);
    pl_free(pk->wot);
    free(pk);
}

/* Rows [r0, r1) of w (rows of 4H canonical columns [i | f | g | o]) into
 * gate panel p: dst row r - r0 at dst + (r - r0) * 64; padded units stay 0. */
static void rows_to_panel(const float *w, int H, int p, int r0, int r1, float *dst)
{
    const int nl = panel_units(H, p);
    for (int r = r0; r < r1; r++)
        for (int gate = 0; gate < 4; gate++)
            memcpy(dst + (size_t)(r - r0) * PL_PANEL + gate * PL_UNIT_BLOCK,
                   w + (size_t)r * 4 * H + (size_t)gate * H + (size_t)p * PL_UNIT_BLOCK,
                   sizeof(float) * (size_t)nl);
}

/* Gate panel p of layer l's Wf (and, for layer 0, the fold). */
static void pack_panel(pl_packed *pk, const pl_tensors *t, int l, int p)
{
    const int D = pk->D, H = pk->H, K = pk->K[l], in = K - 1 - pk->Hp;
    float *dst = pk->wf[l] + (size_t)p * K * PL_PANEL;
    memset(dst, 0, sizeof(float) * (size_t)K * PL_PANEL);
    if (l == 0) {
        /* rows 0..D: [W_in ; b_in] (D + 1, H) x W_x[:, panel p] (H, 64) */
        float *wx = pk->wx0 + (size_t)p * H * PL_PANEL;
        memset(wx, 0, sizeof(float) * (size_t)H * PL_PANEL);
        rows_to_panel(t->w[0], H, p, 0, H, wx);
        pl_gemm_op op = {.M = D + 1, .N = PL_PANEL, .nb = 1, .kb = H, .a = t->w_in,
                         .a_rs = (size_t)H, .a_cs = 1, .b = wx, .ldb = PL_PANEL,
                         .c = dst, .ldc = PL_PANEL};
        pl_gemm(pk->be, &op);
    } else {
        rows_to_panel(t->w[l], H, p, 0, H, dst);
    }
    /* the bias row adds b (for layer 0 to b_in W_x) */
    float bias[PL_PANEL] = {0};
    rows_to_panel(t->b[l], H, p, 0, 1, bias);
    for (int j = 0; j < PL_PANEL; j++)
        dst[(size_t)in * PL_PANEL + j] += bias[j];
    rows_to_panel(t->w[l], H, p, H, 2 * H, dst + (size_t)(in + 1) * PL_PANEL);
}

/* Panel q (units 64q .. 64q + 63) of the transpose of w's rows [r0, r0 + H)
 * (one of W_x, W_h: (H, 4H) canonical) into dst (4Hp, 64): dst[r][u - 64q]
 * = w[r0 + u][col(r)] for internal gate column r. In 16 x 16 blocks. */
static void transpose_panel(const float *w, int H, int Hp, int r0, int q, float *dst)
{
    memset(dst, 0, sizeof(float) * (size_t)4 * Hp * PL_PANEL);
    const int u_end = H < (q + 1) * PL_PANEL ? H : (q + 1) * PL_PANEL;
    for (int p = 0; p < Hp / PL_UNIT_BLOCK; p++) {
        const int nl = panel_units(H, p);
        for (int gate = 0; gate < 4; gate++)
            for (int ub = q * PL_PANEL; ub < u_end; ub += 16) {
                const int ue = ub + 16 < u_end ? ub + 16 : u_end;
                for (int u = ub; u < ue; u++) {
                    const float *src = w + (size_t)(r0 + u) * 4 * H + (size_t)gate * H +
                                       (size_t)p * PL_UNIT_BLOCK;
                    float *out = dst + (size_t)(p * PL_PANEL + gate * PL_UNIT_BLOCK) * PL_PANEL +
                                 (u - q * PL_PANEL);
                    for (int i = 0; i < nl; i++)
                        out[(size_t)i * PL_PANEL] = src[i];
                }
            }
    }
}

void pl_packed_update(pl_packed *pk, const float *params, int part, int parts)
{
    pl_tensors t;
    long lo, hi;
    pl_tensors_bind(&pk->cfg, (float *)params, &t);
    const int np = pk->np, nq = pk->nq, H = pk->H, per_layer = np + nq;
    /* tasks: per layer, np panels of Wf and nq panels of W_x^T, W_h^T; W_out^T */
    pl_split((long)pk->L * per_layer + 1, part, parts, &lo, &hi);
    for (long task = lo; task < hi; task++) {
        int l = (int)(task / per_layer), k = (int)(task % per_layer);
        if (l == pk->L) {
            const int C = pk->cfg.classes;
            for (int c = 0; c < C; c++)
                for (int u = 0; u < H; u++)
                    pk->wot[(size_t)c * pk->Hp + u] = t.w_out[(size_t)u * C + c];
        } else if (k < np) {
            pack_panel(pk, &t, l, k);
        } else {
            const size_t ps = (size_t)4 * pk->Hp * PL_PANEL;
            transpose_panel(t.w[l], H, pk->Hp, 0, k - np, pk->wxt[l] + (size_t)(k - np) * ps);
            transpose_panel(t.w[l], H, pk->Hp, H, k - np, pk->wht[l] + (size_t)(k - np) * ps);
        }
    }
}

/* ------------------------------------------------------------ workspace */

/* The workspace's buffers and their sizes in floats: the one table that
 * pl_ws_create allocates from and pl_ws_estimate sums. */
typedef struct {
    float **ptr;
    size_t n;
} ws_buf;

static int ws_table(pl_ws *ws, ws_buf *b)
{
    const size_t n = (size_t)ws->cap, T = (size_t)ws->T, Hp = (size_t)ws->Hp;
    int k = 0;
    for (int l = 0; l < ws->L; l++) {
        b[k++] = (ws_buf){&ws->xh[l], (T + 1) * n * (size_t)ws->K[l]};
        b[k++] = (ws_buf){&ws->gates[l], T * n * 4 * Hp};
        b[k++] = (ws_buf){&ws->c[l], T * n * Hp};
        b[k++] = (ws_buf){&ws->tc[l], T * n * Hp};
    }
    b[k++] = (ws_buf){&ws->dH, T * n * Hp};
    b[k++] = (ws_buf){&ws->dc, n * Hp};
    b[k++] = (ws_buf){&ws->prob, n * (size_t)ws->C};
    b[k++] = (ws_buf){&ws->dlog, n * (size_t)ws->C};
    b[k++] = (ws_buf){&ws->dwf, (size_t)ws->np * (size_t)ws->Kmax * PL_PANEL};
    b[k++] = (ws_buf){&ws->scratch, (size_t)ws->threads * (size_t)ws->H * PL_PANEL};
    return k;
}

#define WS_MAX_BUFS (4 * PL_MAX_LAYERS + 6)

/* The shape fields of a workspace (no buffers). */
static void ws_shape(pl_ws *ws, const pl_config *cfg, int T, int cap, int threads)
{
    ws->cfg = *cfg;
    ws->T = T;
    ws->cap = cap;
    ws->threads = threads < 1 ? 1 : threads;
    ws->D = cfg->input;
    ws->H = cfg->hidden;
    ws->L = cfg->layers;
    ws->C = cfg->classes;
    shape(cfg, &ws->Hp, &ws->np, &ws->nq, ws->K);
    ws->Kmax = ws->K[0] > ws->K[1] || ws->L == 1 ? ws->K[0] : ws->K[1];
}

double pl_ws_estimate(const pl_config *cfg, int T, int cap, int threads)
{
    pl_ws ws = {0};
    ws_buf b[WS_MAX_BUFS];
    ws_shape(&ws, cfg, T, cap, threads);
    double floats = 0;
    for (int i = 0, k = ws_table(&ws, b); i < k; i++)
        floats += (double)b[i].n;
    return floats * sizeof(float) + cap;
}

pl_ws *pl_ws_create(const pl_config *cfg, int T, int cap, int threads,
                    pl_gemm_backend be)
{
    if (T < 1 || cap < 1 || cfg->layers < 1 || cfg->layers > PL_MAX_LAYERS)
        return NULL;
    pl_ws *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    ws_shape(ws, cfg, T, cap, threads);
    ws->be = pl_gemm_resolve(be);
    ws_buf b[WS_MAX_BUFS];
    int ok = (ws->labels = pl_alloc_aligned((size_t)cap)) != NULL;
    for (int i = 0, k = ws_table(ws, b); ok && i < k; i++)
        ok = (*b[i].ptr = pl_alloc_floats(b[i].n)) != NULL;
    if (!ok) {
        pl_ws_free(ws);
        return NULL;
    }
    return ws;
}

void pl_ws_free(pl_ws *ws)
{
    if (!ws)
        return;
    ws_buf b[WS_MAX_BUFS];
    for (int i = 0, k = ws_table(ws, b); i < k; i++)
        pl_free(*b[i].ptr);
    pl_free(ws->labels);
    free(ws);
}

size_t pl_ws_bytes(const pl_ws *ws)
{
    return (size_t)pl_ws_estimate(&ws->cfg, ws->T, ws->cap, ws->threads);
}

/* The constant 1 of every slot of every layer, and the zero initial state
 * in slot 0. */
static void load_constants(pl_ws *ws)
{
    const int n = ws->n, Hp = ws->Hp;
    for (int l = 0; l < ws->L; l++) {
        const int K = ws->K[l], in = K - 1 - Hp;
        for (int t = 0; t < ws->T; t++)
            for (int b = 0; b < n; b++) {
                float *row = ws->xh[l] + ((size_t)t * n + b) * K;
                row[in] = 1.0f;
                if (t == 0)
                    memset(row + in + 1, 0, sizeof(float) * (size_t)Hp);
            }
    }
}

void pl_ws_load_u8(pl_ws *ws, const pl_dataset *ds, const uint32_t *idx, int n)
{
    const int T = ws->T, D = ws->D, K = ws->K[0];
    double t0 = ws->prof ? pl_seconds() : 0;
    ws->n = n;
    for (int b = 0; b < n; b++) {
        const uint8_t *img = ds->images + (size_t)idx[b] * T * D;
        ws->labels[b] = ds->labels[idx[b]];
        for (int t = 0; t < T; t++) {
            float *row = ws->xh[0] + ((size_t)t * n + b) * K;
            for (int d = 0; d < D; d++)
                row[d] = (float)img[t * D + d] * (1.0f / 255.0f);
        }
    }
    load_constants(ws);
    pl_lap(ws->prof, PL_PH_LOAD, &t0);
}

void pl_ws_load_f32(pl_ws *ws, const float *x, const uint8_t *labels, int n)
{
    const int T = ws->T, D = ws->D, K = ws->K[0];
    ws->n = n;
    for (int b = 0; b < n; b++) {
        ws->labels[b] = labels[b];
        for (int t = 0; t < T; t++)
            memcpy(ws->xh[0] + ((size_t)t * n + b) * K, x + ((size_t)b * T + t) * D,
                   sizeof(float) * (size_t)D);
    }
    load_constants(ws);
}

/* ---------------------------------------------------------- LSTM layer */

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

/* Layer l over all steps, this thread's gate panels: gates_t = [in_t, 1,
 * h_{t-1}] Wf, then the cell, which writes h_t into slot t + 1 and into the
 * next layer's input. Called inside the parallel region. */
static void layer_forward(pl_ws *ws, const pl_packed *pk, int l, int tid, int nt,
                          double *tt)
{
    const int n = ws->n, T = ws->T, K = ws->K[l], Hp = ws->Hp, in = K - 1 - Hp;
    const size_t g_ps = (size_t)T * n * PL_PANEL;
    double *prof = tid == 0 ? ws->prof : NULL;
    long p0, p1;
    own_panels(ws->np, tid, nt, &p0, &p1);
    for (int t = 0; t < T; t++) {
        pl_gemm_op op = {
            .M = n, .N = (int)(p1 - p0) * PL_PANEL, .nb = 1, .kb = K,
            .a = ws->xh[l] + (size_t)t * n * K, .a_rs = (size_t)K, .a_cs = 1,
            .b = pk->wf[l] + (size_t)p0 * K * PL_PANEL, .ldb = PL_PANEL,
            .b_ps = (size_t)K * PL_PANEL,
            .c = ws->gates[l] + p0 * g_ps + (size_t)t * n * PL_PANEL, .ldc = PL_PANEL,
            .c_ps = g_ps};
        pl_gemm(ws->be, &op);
        pl_lap(prof, PL_PH_FWD_GEMM, tt);
        const int up = l + 1 < ws->L;
        pl_cell_args ca = {
            .n = n, .p0 = (int)p0, .p1 = (int)p1, .Hp = Hp,
            .g = ws->gates[l] + (size_t)t * n * PL_PANEL, .g_ps = g_ps,
            .c = ws->c[l] + (size_t)t * n * Hp, .tc = ws->tc[l] + (size_t)t * n * Hp,
            .c_prev = t > 0 ? ws->c[l] + (size_t)(t - 1) * n * Hp : NULL,
            .h = ws->xh[l] + (size_t)(t + 1) * n * K + in + 1, .h_rs = (size_t)K,
            .h2 = up ? ws->xh[l + 1] + (size_t)t * n * ws->K[l + 1] : NULL,
            .h2_rs = up ? (size_t)ws->K[l + 1] : 0};
        cell_forward(ws->be, &ca);
#pragma omp barrier
        pl_lap(prof, PL_PH_FWD_CELL, tt);
    }
}

/* C[:, units [u0, u1)] (+)= A W^T for a transposed gate matrix wt (nq, 4Hp,
 * 64) (W_h^T or W_x^T): A = `rows` rows of gate gradients in np panels of
 * 64 columns, a_ps apart (row stride 64); C with row stride ldc. One GEMM
 * when u0 starts a 64-unit panel, else one per panel piece. */
static void times_transposed(const pl_ws *ws, const float *wt, const float *a, size_t a_ps,
                             int rows, float *c, size_t ldc, int u0, int u1, int accumulate)
{
    const size_t ps = (size_t)4 * ws->Hp * PL_PANEL;
    for (int j0 = u0; j0 < u1;) {
        int q = j0 / PL_PANEL;
        int j1 = j0 % PL_PANEL == 0 ? u1 : ((q + 1) * PL_PANEL < u1 ? (q + 1) * PL_PANEL : u1);
        pl_gemm_op op = {.M = rows, .N = j1 - j0, .nb = ws->np, .kb = PL_PANEL,
                         .a = a, .a_rs = PL_PANEL, .a_cs = 1, .a_bs = a_ps,
                         .b = wt + (size_t)q * ps + (size_t)(j0 % PL_PANEL), .ldb = PL_PANEL,
                         .b_bs = (size_t)PL_PANEL * PL_PANEL, .b_ps = ps,
                         .c = c + j0, .ldc = ldc, .accumulate = accumulate};
        pl_gemm(ws->be, &op);
        j0 = j1;
    }
}

/* dWf[panels p0..p1) = sum_t [in_t, 1, h_{t-1}]^T dG_t: one GEMM over all
 * steps, in chunks of rows. */
static void weight_gradient(pl_ws *ws, int l, long p0, long p1)
{
    const int n = ws->n, K = ws->K[l];
    const size_t g_ps = (size_t)ws->T * n * PL_PANEL;
    const long rows = (long)ws->T * n;
    for (long r0 = 0; r0 < rows; r0 += WGRAD_ROWS) {
        pl_gemm_op op = {
            .M = K, .N = (int)(p1 - p0) * PL_PANEL, .nb = 1,
            .kb = (int)(rows - r0 < WGRAD_ROWS ? rows - r0 : WGRAD_ROWS),
            .a = ws->xh[l] + (size_t)r0 * K, .a_rs = 1, .a_cs = (size_t)K,
            .b = ws->gates[l] + p0 * g_ps + (size_t)r0 * PL_PANEL, .ldb = PL_PANEL,
            .b_ps = g_ps,
            .c = ws->dwf + (size_t)p0 * K * PL_PANEL, .ldc = PL_PANEL,
            .c_ps = (size_t)K * PL_PANEL, .accumulate = r0 > 0};
        pl_gemm(ws->be, &op);
    }
}

/* dWf's panels [p0, p1) into the canonical gradient of layer l: rows
 * [first, first + count) of dwf go to rows [to, to + count) of w. */
static void panels_to_rows(const pl_ws *ws, int l, long p0, long p1, int first, int count,
                           float *w, int to)
{
    const int H = ws->H, K = ws->K[l];
    for (long p = p0; p < p1; p++) {
        const float *src = ws->dwf + (size_t)p * K * PL_PANEL;
        const int nl = panel_units(H, (int)p);
        for (int r = 0; r < count; r++)
            for (int gate = 0; gate < 4; gate++)
                memcpy(w + (size_t)(to + r) * 4 * H + (size_t)gate * H + (size_t)p * PL_UNIT_BLOCK,
                       src + (size_t)(first + r) * PL_PANEL + gate * PL_UNIT_BLOCK,
                       sizeof(float) * (size_t)nl);
    }
}

/* Backward of the fold for this thread's panels: dW_x[:, panel] = [W_in ;
 * b_in]^T [P ; s][:, panel], through a (H, 64) scratch panel. */
static void unfold_panels(pl_ws *ws, const pl_tensors *tp, float *grad_wx, long p0, long p1,
                          int tid)
{
    const int D = ws->D, H = ws->H, K = ws->K[0];
    float *sc = ws->scratch + (size_t)tid * H * PL_PANEL;
    for (long p = p0; p < p1; p++) {
        pl_gemm_op op = {.M = H, .N = PL_PANEL, .nb = 1, .kb = D + 1, .a = tp->w_in,
                         .a_rs = 1, .a_cs = (size_t)H,
                         .b = ws->dwf + (size_t)p * K * PL_PANEL, .ldb = PL_PANEL,
                         .c = sc, .ldc = PL_PANEL};
        pl_gemm(ws->be, &op);
        const int nl = panel_units(H, (int)p);
        for (int h = 0; h < H; h++)
            for (int gate = 0; gate < 4; gate++)
                memcpy(grad_wx + (size_t)h * 4 * H + (size_t)gate * H + (size_t)p * PL_UNIT_BLOCK,
                       sc + (size_t)h * PL_PANEL + gate * PL_UNIT_BLOCK, sizeof(float) * (size_t)nl);
    }
}

/* Backward of layer l, this thread's panels. On entry dH holds, for the top
 * layer, the output's gradient at step T - 1, for the others the gradient
 * from the layer above at every step; on return, for l > 0, the gradient
 * wrt layer l - 1's h_t at every step. Called inside the parallel region. */
static void layer_backward(pl_ws *ws, const pl_packed *pk, const pl_tensors *tp,
                           const pl_tensors *tg, int l, int tid, int nt, double *tt)
{
    const int n = ws->n, T = ws->T, Hp = ws->Hp, H = ws->H, K = ws->K[l];
    const size_t g_ps = (size_t)T * n * PL_PANEL, step = (size_t)n * Hp;
    double *prof = tid == 0 ? ws->prof : NULL;
    long p0, p1;
    own_panels(ws->np, tid, nt, &p0, &p1);
    const int u0 = (int)p0 * PL_UNIT_BLOCK, u1 = (int)p1 * PL_UNIT_BLOCK;
    for (int b = 0; b < n && u1 > u0; b++)
        memset(ws->dc + (size_t)b * Hp + u0, 0, sizeof(float) * (size_t)(u1 - u0));
    for (int t = T - 1; t >= 0; t--) {
        pl_cell_args ca = {
            .n = n, .p0 = (int)p0, .p1 = (int)p1, .Hp = Hp,
            .g = ws->gates[l] + (size_t)t * n * PL_PANEL, .g_ps = g_ps,
            .tc = ws->tc[l] + (size_t)t * n * Hp,
            .c_prev = t > 0 ? ws->c[l] + (size_t)(t - 1) * n * Hp : NULL,
            .dh = ws->dH + (size_t)t * step, .dc = ws->dc};
        cell_backward(ws->be, &ca);
#pragma omp barrier
        pl_lap(prof, PL_PH_BWD_CELL, tt);
        if (t == 0)
            break;
        /* dH_{t-1}[:, own units] (+)= dG_t W_h^T; the top layer has nothing
         * from above, so it assigns */
        times_transposed(ws, pk->wht[l], ws->gates[l] + (size_t)t * n * PL_PANEL, g_ps, n,
                         ws->dH + (size_t)(t - 1) * step, (size_t)Hp, u0, u1, l + 1 < ws->L);
        pl_lap(prof, PL_PH_BWD_GEMM, tt);
    }
    /* every panel of every dG_t is done (the barrier of step 0): the
     * gradient wrt this layer's input, for the layer below */
    if (l > 0) {
        times_transposed(ws, pk->wxt[l], ws->gates[l], g_ps, T * n, ws->dH, (size_t)Hp, u0,
                         u1, 0);
        pl_lap(prof, PL_PH_DIN_GEMM, tt);
    }
    weight_gradient(ws, l, p0, p1);
    pl_lap(prof, PL_PH_WGRAD, tt);
    float *gw = tg->w[l];
    panels_to_rows(ws, l, p0, p1, K - 1 - Hp, 1, tg->b[l], 0); /* db */
    panels_to_rows(ws, l, p0, p1, K - Hp, H, gw, H);          /* dW_h */
    if (l > 0) {
        panels_to_rows(ws, l, p0, p1, 0, H, gw, 0); /* dW_x */
    } else {
        unfold_panels(ws, tp, gw, p0, p1, tid);
#pragma omp barrier
        /* [dW_in ; db_in][:, own units] = [P ; s] W_x^T: one (D + 1, H) block */
        times_transposed(ws, pk->wxt[0], ws->dwf, (size_t)K * PL_PANEL, ws->D + 1, tg->w_in,
                         (size_t)H, u0, u1 < H ? u1 : H, 0);
    }
    /* dwf and dH are shared by the layers: finish this one first */
#pragma omp barrier
    pl_lap(prof, PL_PH_UNFOLD, tt);
}

/* --------------------------------------------------------------- output */

/* Output layer and softmax cross-entropy on the last layer's h_T: logits
 * into prob, then the softmax. Returns the summed loss. */
static double output_forward(pl_ws *ws, const pl_tensors *tp, int *correct, float *logits)
{
    const int n = ws->n, C = ws->C, K = ws->K[ws->L - 1], in = K - 1 - ws->Hp;
    const float *hT = ws->xh[ws->L - 1] + (size_t)ws->T * n * K + in + 1;
    pl_gemm_op op = {.M = n, .N = C, .nb = 1, .kb = ws->H, .a = hT, .a_rs = (size_t)K,
                     .a_cs = 1, .b = tp->w_out, .ldb = (size_t)C, .c = ws->prob,
                     .ldc = (size_t)C};
    pl_gemm(ws->be, &op);
    double loss = 0;
    int right = 0;
    for (int b = 0; b < n; b++) {
        float *z = ws->prob + (size_t)b * C;
        int best = 0;
        for (int c = 0; c < C; c++) {
            z[c] += tp->b_out[c];
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
    return loss;
}

/* dlogits = (softmax - onehot) / norm; dW_out, db_out; the top layer's
 * dH at step T - 1 = dlogits W_out^T (padded units get 0). */
static void output_backward(pl_ws *ws, const pl_packed *pk, const pl_tensors *tg, float norm)
{
    const int n = ws->n, C = ws->C, Hp = ws->Hp, K = ws->K[ws->L - 1], in = K - 1 - Hp;
    const float inv = 1.0f / norm;
    for (int b = 0; b < n; b++)
        for (int c = 0; c < C; c++)
            ws->dlog[(size_t)b * C + c] =
                (ws->prob[(size_t)b * C + c] - (c == ws->labels[b] ? 1.0f : 0.0f)) * inv;
    const float *hT = ws->xh[ws->L - 1] + (size_t)ws->T * n * K + in + 1;
    pl_gemm_op gw = {.M = ws->H, .N = C, .nb = 1, .kb = n, .a = hT, .a_rs = 1,
                     .a_cs = (size_t)K, .b = ws->dlog, .ldb = (size_t)C, .c = tg->w_out,
                     .ldc = (size_t)C};
    pl_gemm(ws->be, &gw);
    pl_gemm_op gh = {.M = n, .N = Hp, .nb = 1, .kb = C, .a = ws->dlog, .a_rs = (size_t)C,
                     .a_cs = 1, .b = pk->wot, .ldb = (size_t)Hp,
                     .c = ws->dH + (size_t)(ws->T - 1) * n * Hp, .ldc = (size_t)Hp};
    pl_gemm(ws->be, &gh);
    for (int c = 0; c < C; c++)
        tg->b_out[c] = 0;
    for (int b = 0; b < n; b++)
        for (int c = 0; c < C; c++)
            tg->b_out[c] += ws->dlog[(size_t)b * C + c];
}

/* ---------------------------------------------------------------- model */

double pl_lstm_forward(pl_ws *ws, const pl_packed *pk, const float *params,
                       int *correct, float *logits)
{
    double t0 = ws->prof ? pl_seconds() : 0;
#pragma omp parallel num_threads(ws->threads) if (ws->threads > 1)
    {
        const unsigned long fp = pl_fp_fast_enter();
        double tt = t0;
        for (int l = 0; l < ws->L; l++)
            layer_forward(ws, pk, l, omp_get_thread_num(), omp_get_num_threads(), &tt);
        pl_fp_fast_leave(fp);
    }
    t0 = ws->prof ? pl_seconds() : 0;
    pl_tensors tp;
    pl_tensors_bind(&ws->cfg, (float *)params, &tp);
    double loss = output_forward(ws, &tp, correct, logits);
    pl_lap(ws->prof, PL_PH_OUTPUT, &t0);
    return loss;
}

void pl_lstm_backward(pl_ws *ws, const pl_packed *pk, const float *params,
                      float norm, float *grad)
{
    pl_tensors tp, tg;
    pl_tensors_bind(&ws->cfg, (float *)params, &tp);
    pl_tensors_bind(&ws->cfg, grad, &tg);
    double t0 = ws->prof ? pl_seconds() : 0;
    output_backward(ws, pk, &tg, norm);
    pl_lap(ws->prof, PL_PH_OUTPUT, &t0);
#pragma omp parallel num_threads(ws->threads) if (ws->threads > 1)
    {
        const unsigned long fp = pl_fp_fast_enter();
        double tt = t0;
        for (int l = ws->L - 1; l >= 0; l--)
            layer_backward(ws, pk, &tp, &tg, l, omp_get_thread_num(), omp_get_num_threads(),
                           &tt);
        pl_fp_fast_leave(fp);
    }
}

/* -------------------------------------------------------------- FLOPs */

double pl_step_flops_executed(const pl_config *cfg, int T, int batch)
{
    int Hp, np, nq, K[PL_MAX_LAYERS];
    shape(cfg, &Hp, &np, &nq, K);
    double B = batch, D = cfg->input, H = cfg->hidden, C = cfg->classes;
    double total = 2.0 * D * H * 4 * H * 3 + 2.0 * B * H * C * 3; /* fold, output */
    for (int l = 0; l < cfg->layers; l++) {
        total += 2.0 * T * B * K[l] * 4 * Hp * 2;      /* forward, weight gradient */
        total += 2.0 * (T - 1) * B * 4 * Hp * Hp;      /* backward recurrence */
        if (l > 0)
            total += 2.0 * T * B * 4 * Hp * Hp;        /* gradient wrt the layer input */
    }
    return total;
}

double pl_step_flops_model(const pl_config *cfg, int T, int batch)
{
    double B = batch, D = cfg->input, H = cfg->hidden, C = cfg->classes;
    double proj = 2.0 * T * B * D * H * 2;                   /* x W_in and dW_in */
    double gates = 2.0 * T * B * 2 * H * 4 * H * 3;          /* forward, d[x,h], dW */
    double out = 2.0 * B * H * C * 3;
    return proj + gates * cfg->layers + out;
}
