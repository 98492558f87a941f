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

#include "lstm.h"
#include "tools.h"

#ifndef _OPENMP
static int omp_get_thread_num(void) { return 0; }
static int omp_get_num_threads(void) { return 1; }
#endif

struct pl_packed {
    pl_config cfg;
    int D, H, Hp, L, npanel, nq;
    int K[PL_MAX_LAYERS];        /* rows of wf[l]: D + 1 + Hp (l = 0), 2Hp + 1 */
    const pl_kernels *k;         /* the kernel set */
    int bf16;                    /* the gate products on bf16 operands */
    float *wf[PL_MAX_LAYERS];    /* (npanel, K_l, 64) gate weights, panel-major: rows
                                    [W_in W_x (D) ; bias (1) ; W_h (Hp)] (l = 0),
                                    [W_x (Hp) ; bias (1) ; W_h (Hp)] (l > 0) */
    float *wht[PL_MAX_LAYERS];   /* (nq, 4Hp, 64) W_h transposed: rows = internal
                                    gate columns, 64 units per panel */
    float *wxt[PL_MAX_LAYERS];   /* (nq, 4Hp, 64) W_x transposed, likewise */
    /* With bf16 (pl_packed_set_precision): wf and wht rounded to bf16, in
     * pairs of rows (pl_gemm_op.b16), made by pl_packed_pair */
    uint32_t *wf16[PL_MAX_LAYERS];  /* (npanel, ceil(K_l / 2), 64) */
    uint32_t *wht16[PL_MAX_LAYERS]; /* (nq, 2Hp, 64) */
    float *fold0;                /* (D + 1, 4H)   [W_in ; b_in] W_x + [0 ; b], canonical */
    float *wot;                  /* (C, Hp)       W_out transposed, padded units zero */
};

struct pl_ws {
    pl_config cfg;
    int T, cap, threads, n;
    int D, H, Hp, L, C, npanel, nq, Kmax;
    int K[PL_MAX_LAYERS];
    const pl_kernels *k;         /* the kernel set */
    int kc;                      /* its GEMM's B chunk, rows (0: BLAS or the plain loops) */
    int bf16;                    /* the gate products on bf16 operands */
    uint8_t *labels;             /* (n) */
    uint32_t *ids;               /* (n) each row's item in the data set: its dropout masks */
    /* Variable lengths (packed, as PyTorch's PackedSequence): the loaded
     * rows are ordered by length, longest first, so that step t's products
     * cover rows 0..nrun[t] - 1 only. Slot t of xh (and step t of gates, c,
     * tc, dH) starts at row off[t] and holds m_t = n (t = 0) or nrun[t - 1]
     * rows: the rows that ended at step t - 1 keep their last h_{t-1} there
     * (the output reads it) and get zero gate gradients at step t, so one
     * weight-gradient GEMM can run over every slot at once. With one length
     * for all rows off[t] = t n, the layout of fixed-length sequences. */
    int Te;                      /* steps of the longest loaded row (<= T) */
    int varlen;                  /* the loaded rows' lengths differ */
    int32_t *len_in;             /* (cap) the caller's rows' lengths, its order */
    int32_t *len;                /* (cap) the loaded rows' lengths, longest first */
    uint32_t *pos;               /* (cap) loaded row b is the caller's row pos[b] */
    int *nrun;                   /* (T) rows running at step t: len > t */
    size_t *off;                 /* (T + 2) first row of slot t */
    int *cnt;                    /* (T + 1) the counting sort's buckets */
    float drop;                  /* dropout between layers (0: off) */
    uint64_t drop_key;           /* the step's masks (pl_ws_set_dropout) */
    float *xh[PL_MAX_LAYERS];    /* (T + 1, n, K_l) at most: slot t = [in_t, 1, h_{t-1}]
                                    at rows off[t]; slot Te holds h_Te */
    float *gates[PL_MAX_LAYERS]; /* (npanel, T, n, 64) at most: activations, then gate
                                    gradients; step t at rows off[t] of each panel */
    float *c[PL_MAX_LAYERS];     /* (T, n, Hp) at most: cell state, step t at off[t] */
    float *tc[PL_MAX_LAYERS];    /* the same shape: tanh of it */
    float *dH;                   /* the same shape: gradient wrt h_t of the layer in
                                    backward */
    float *dc;                   /* (n, Hp) */
    float *prob, *dlog;          /* (n, C) softmax, its gradient */
    float *dwf;                  /* (npanel, K_l, 64): rows [P (D) ; s (1) ; dW_h (Hp)] */
    float *scratch;              /* (threads, 16, 4Hp): 16 rows of dW_x (layer 0) */
    double *prof;                /* [PL_NPHASE] seconds, or NULL: profiling off */
};

const char *pl_phase_name(pl_phase p)
{
    static const char *names[PL_NPHASE] = {
        "pack weights",     "load batch",    "forward GEMM",         "forward cell",
        "output layer",     "backward cell", "recurrent GEMM",       "layer-input GEMM",
        "weight-gradient GEMM", "unfold gradients", "reduction", "Adam", "barrier wait", "communication"};
    return p < PL_NPHASE ? names[p] : "?";
}

void pl_ws_set_profile(pl_ws *ws, double *seconds) { ws->prof = seconds; }
void pl_ws_set_precision(pl_ws *ws, pl_precision p) { ws->bf16 = p == PL_PRECISION_BF16; }

/* --------------------------------------------------------------- shapes */

static void shape(const pl_config *cfg, int *Hp, int *npanel, int *nq, int K[PL_MAX_LAYERS])
{
    *Hp = (int)pl_round_up((size_t)cfg->hidden, PL_UNIT_BLOCK);
    *npanel = *Hp / PL_UNIT_BLOCK;
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
static void own_panels(int npanel, int tid, int nt, long *p0, long *p1)
{
    int nq = (npanel + 3) / 4;
    if (nq >= nt) {
        pl_split(nq, tid, nt, p0, p1);
        *p0 *= 4;
        *p1 = *p1 * 4 < npanel ? *p1 * 4 : npanel;
    } else {
        pl_split(npanel, tid, nt, p0, p1);
    }
}

/* ------------------------------------------------------ packed weights */

pl_packed *pl_packed_create(const pl_config *cfg, pl_gemm_backend be)
{
    const pl_kernels *set = pl_kernels_of(be);
    pl_packed *pk = set ? calloc(1, sizeof *pk) : NULL;
    if (!pk)
        return NULL;
    pk->cfg = *cfg;
    pk->D = cfg->input;
    pk->H = cfg->hidden;
    pk->L = cfg->layers;
    shape(cfg, &pk->Hp, &pk->npanel, &pk->nq, pk->K);
    pk->k = set;
    int ok = 1;
    for (int l = 0; l < pk->L; l++) {
        pk->wf[l] = pl_alloc_floats((size_t)pk->npanel * pk->K[l] * PL_PANEL);
        pk->wht[l] = pl_alloc_floats((size_t)pk->nq * 4 * pk->Hp * PL_PANEL);
        pk->wxt[l] = pl_alloc_floats((size_t)pk->nq * 4 * pk->Hp * PL_PANEL);
        ok = ok && pk->wf[l] && pk->wht[l] && pk->wxt[l];
    }
    pk->fold0 = pl_alloc_floats((size_t)(pk->D + 1) * 4 * pk->H);
    pk->wot = pl_alloc_floats((size_t)cfg->classes * pk->Hp);
    if (!ok || !pk->fold0 || !pk->wot) {
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
        free(pk->wf16[l]);
        free(pk->wht16[l]);
    }
    pl_free(pk->fold0);
    pl_free(pk->wot);
    free(pk);
}

/* Rows [0, rows) of a canonical matrix w (row stride ldw; columns [i | f |
 * g | o] of H each) into gate panels [pa, pb): row r of panel p at dst + p *
 * dps + r * 64. Row by row, so that w is read in order. */
static void canon_to_panels(const float *w, size_t ldw, int H, int pa, int pb, int rows,
                            float *dst, size_t dps)
{
    for (int r = 0; r < rows; r++)
        for (int gate = 0; gate < 4; gate++)
            for (int p = pa; p < pb; p++)
                memcpy(dst + (size_t)p * dps + (size_t)r * PL_PANEL + gate * PL_UNIT_BLOCK,
                       w + (size_t)r * ldw + (size_t)gate * H + (size_t)p * PL_UNIT_BLOCK,
                       sizeof(float) * (size_t)panel_units(H, p));
}

/* The inverse: panels [pa, pb) (row r of panel p at src + p * sps + r * lds)
 * into rows [0, rows) of canonical w; written in order. */
static void panels_to_canon(const float *src, size_t sps, size_t lds, int H, int pa, int pb,
                            int rows, float *w, size_t ldw)
{
    for (int r = 0; r < rows; r++)
        for (int gate = 0; gate < 4; gate++)
            for (int p = pa; p < pb; p++)
                memcpy(w + (size_t)r * ldw + (size_t)gate * H + (size_t)p * PL_UNIT_BLOCK,
                       src + (size_t)p * sps + (size_t)r * lds + gate * PL_UNIT_BLOCK,
                       sizeof(float) * (size_t)panel_units(H, p));
}

/* Panel q (units 64q .. 64q + 63) of the transpose of w's rows [r0, r0 + H)
 * (W_x or W_h: (H, 4H) canonical) into dst (4Hp, 64): dst[r][u - 64q] =
 * w[r0 + u][col(r)] for internal gate column r; 16 x 16 blocks through a
 * local copy, so that every line read or written is used whole. Zeroed
 * first where the units do not fill the panels (the blocks write every
 * entry when H is a multiple of 64). */
static void transpose_panel(const pl_kernels *k, const float *w, int H, int Hp, int r0, int q,
                            float *dst)
{
    if (H % PL_PANEL != 0)
        memset(dst, 0, sizeof(float) * (size_t)4 * Hp * PL_PANEL);
    const int u_end = H < (q + 1) * PL_PANEL ? H : (q + 1) * PL_PANEL;
    for (int ub = q * PL_PANEL; ub < u_end; ub += PL_UNIT_BLOCK) {
        const int nu = u_end - ub < PL_UNIT_BLOCK ? u_end - ub : PL_UNIT_BLOCK;
        for (int p = 0; p < Hp / PL_UNIT_BLOCK; p++) {
            const int nl = panel_units(H, p);
            for (int gate = 0; gate < 4; gate++) {
                const float *src = w + (size_t)(r0 + ub) * 4 * H + (size_t)gate * H +
                                   (size_t)p * PL_UNIT_BLOCK;
                float *out = dst + (size_t)(p * PL_PANEL + gate * PL_UNIT_BLOCK) * PL_PANEL +
                             (ub - q * PL_PANEL);
                if (nl == PL_UNIT_BLOCK && nu == PL_UNIT_BLOCK)
                    k->transpose16(src, (size_t)4 * H, out, PL_PANEL);
                else
                    for (int i = 0; i < nl; i++)
                        for (int u = 0; u < nu; u++)
                            out[(size_t)i * PL_PANEL + u] = src[(size_t)u * 4 * H + i];
            }
        }
    }
}

/* Layer 0's fold for gate panels [pa, pb): rows 0..D of Wf = [W_in ; b_in]
 * W_x (through the canonical scratch fold0), plus b on the bias row. */
static void pack_fold(pl_packed *pk, const pl_tensors *t, int pa, int pb)
{
    const int D = pk->D, H = pk->H, K = pk->K[0];
    const int u0 = pa * PL_UNIT_BLOCK, u1 = pb * PL_UNIT_BLOCK < H ? pb * PL_UNIT_BLOCK : H;
    for (int gate = 0; gate < 4; gate++) {
        pl_gemm_op op = {.M = D + 1, .N = u1 - u0, .nb = 1, .kb = H, .a = t->w_in,
                         .a_rs = (size_t)H, .a_cs = 1, .b = t->w[0] + (size_t)gate * H + u0,
                         .ldb = (size_t)4 * H, .c = pk->fold0 + (size_t)gate * H + u0,
                         .ldc = (size_t)4 * H};
        pl_gemm_with(pk->k, &op);
        for (int u = u0; u < u1; u++)
            pk->fold0[(size_t)D * 4 * H + (size_t)gate * H + u] += t->b[0][(size_t)gate * H + u];
    }
    canon_to_panels(pk->fold0, (size_t)4 * H, H, pa, pb, D + 1, pk->wf[0],
                    (size_t)K * PL_PANEL);
}

/* Canonical rows [r0, r1) of layer l's (2H, 4H) kernel (and, with r0 = 0,
 * its bias) into Wf: layer 0 takes only the W_h rows (its W_x goes through
 * the fold). */
static void pack_rows(pl_packed *pk, const pl_tensors *t, int l, int r0, int r1)
{
    const int H = pk->H, K = pk->K[l], in = K - 1 - pk->Hp;
    const size_t dps = (size_t)K * PL_PANEL;
    if (l == 0 && r0 < H)
        r0 = H;
    if (r0 == 0 && l > 0)
        canon_to_panels(t->b[l], (size_t)4 * H, H, 0, pk->npanel, 1,
                        pk->wf[l] + (size_t)in * PL_PANEL, dps);
    for (int r = r0; r < r1; r++) {
        int to = r < H ? r : in + 1 + (r - H);
        canon_to_panels(t->w[l] + (size_t)r * 4 * H, (size_t)4 * H, H, 0, pk->npanel, 1,
                        pk->wf[l] + (size_t)to * PL_PANEL, dps);
    }
}

/* Tasks of a packing step, in order: per layer, row bands of the kernel
 * (ROWS_PER_TASK rows each) and nq panels of W_x^T and W_h^T; layer 0's
 * fold in nq bands of 4 gate panels; W_out^T. */
#define ROWS_PER_TASK 64

void pl_packed_update(pl_packed *pk, const float *params, int part, int parts)
{
    pl_tensors t;
    long lo, hi;
    pl_tensors_bind(&pk->cfg, (float *)params, &t);
    const int H = pk->H, nq = pk->nq, bands = (2 * H + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
    const int per_layer = bands + nq;
    const size_t ps = (size_t)4 * pk->Hp * PL_PANEL;
    pl_split((long)pk->L * per_layer + nq + 1, part, parts, &lo, &hi);
    for (long task = lo; task < hi; task++) {
        int l = (int)(task / per_layer), k = (int)(task % per_layer);
        if (l < pk->L && k < bands) {
            int r0 = k * ROWS_PER_TASK;
            pack_rows(pk, &t, l, r0, r0 + ROWS_PER_TASK < 2 * H ? r0 + ROWS_PER_TASK : 2 * H);
        } else if (l < pk->L) {
            int q = k - bands;
            transpose_panel(pk->k, t.w[l], H, pk->Hp, 0, q, pk->wxt[l] + (size_t)q * ps);
            transpose_panel(pk->k, t.w[l], H, pk->Hp, H, q, pk->wht[l] + (size_t)q * ps);
        } else if (k < nq) {
            pack_fold(pk, &t, 4 * k, 4 * k + 4 < pk->npanel ? 4 * k + 4 : pk->npanel);
        } else {
            const int C = pk->cfg.classes;
            for (int c = 0; c < C; c++)
                for (int u = 0; u < H; u++)
                    pk->wot[(size_t)c * pk->Hp + u] = t.w_out[(size_t)u * C + c];
        }
    }
}

/* Pairs of a layer's rows: ceil(K / 2) for wf, 2Hp for wht. */
static size_t wf16_panel(const pl_packed *pk, int l) { return (size_t)(pk->K[l] + 1) / 2 * PL_PANEL; }
static size_t wht16_panel(const pl_packed *pk) { return (size_t)2 * pk->Hp * PL_PANEL; }

pl_status pl_packed_set_precision(pl_packed *pk, pl_precision p, pl_error *err)
{
    pk->bf16 = p == PL_PRECISION_BF16;
    for (int l = 0; pk->bf16 && l < pk->L; l++) {
        if (!pk->wf16[l]) /* + 64: the kernels may read one pair row past the end */
            pk->wf16[l] = pl_alloc_aligned(4 * (pk->npanel * wf16_panel(pk, l) + PL_PANEL));
        if (!pk->wht16[l])
            pk->wht16[l] = pl_alloc_aligned(4 * (pk->nq * wht16_panel(pk) + PL_PANEL));
        if (!pk->wf16[l] || !pk->wht16[l])
            return pl_fail(err, PL_ERR_NOMEM, "cannot allocate the bf16 copy of the weights");
    }
    return PL_OK;
}

void pl_packed_pair(pl_packed *pk, int part, int parts)
{
    if (!pk->bf16)
        return;
    const int per_layer = pk->npanel + pk->nq;
    const size_t ps = (size_t)4 * pk->Hp * PL_PANEL;
    long lo, hi;
    pl_split((long)pk->L * per_layer, part, parts, &lo, &hi);
    for (long task = lo; task < hi; task++) {
        const int l = (int)(task / per_layer), k = (int)(task % per_layer);
        if (k < pk->npanel)
            pl_bf16_pairs(pk->wf[l] + (size_t)k * pk->K[l] * PL_PANEL, pk->K[l],
                          pk->wf16[l] + (size_t)k * wf16_panel(pk, l));
        else
            pl_bf16_pairs(pk->wht[l] + (size_t)(k - pk->npanel) * ps, 4 * pk->Hp,
                          pk->wht16[l] + (size_t)(k - pk->npanel) * wht16_panel(pk));
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
    b[k++] = (ws_buf){&ws->dwf, (size_t)ws->npanel * (size_t)ws->Kmax * PL_PANEL};
    b[k++] = (ws_buf){&ws->scratch, (size_t)ws->threads * PL_UNIT_BLOCK * 4 * Hp};
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
    shape(cfg, &ws->Hp, &ws->npanel, &ws->nq, ws->K);
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
    return floats * sizeof(float) + cap * (1.0 + 4.0 * sizeof(uint32_t)) +
           (T + 1.0) * (2 * sizeof(int) + sizeof(size_t)) + sizeof(size_t);
}

pl_ws *pl_ws_create(const pl_config *cfg, int T, int cap, int threads,
                    pl_gemm_backend be)
{
    const pl_kernels *set = pl_kernels_of(be);
    if (T < 1 || cap < 1 || cfg->layers < 1 || cfg->layers > PL_MAX_LAYERS || !set)
        return NULL;
    pl_ws *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    ws_shape(ws, cfg, T, cap, threads);
    ws->k = set;
    long a_limit;
    pl_gemm_blocking(be, &ws->kc, &a_limit);
    ws_buf b[WS_MAX_BUFS];
    const size_t rows = (size_t)cap, steps = (size_t)T;
    int ok = (ws->labels = pl_alloc_aligned(rows)) != NULL &&
             (ws->ids = pl_alloc_aligned(sizeof *ws->ids * rows)) != NULL &&
             (ws->len_in = pl_alloc_aligned(sizeof *ws->len_in * rows)) != NULL &&
             (ws->len = pl_alloc_aligned(sizeof *ws->len * rows)) != NULL &&
             (ws->pos = pl_alloc_aligned(sizeof *ws->pos * rows)) != NULL &&
             (ws->nrun = pl_alloc_aligned(sizeof *ws->nrun * steps)) != NULL &&
             (ws->off = pl_alloc_aligned(sizeof *ws->off * (steps + 2))) != NULL &&
             (ws->cnt = pl_alloc_aligned(sizeof *ws->cnt * (steps + 1))) != NULL;
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
    pl_free(ws->ids);
    pl_free(ws->len_in);
    pl_free(ws->len);
    pl_free(ws->pos);
    pl_free(ws->nrun);
    pl_free(ws->off);
    pl_free(ws->cnt);
    free(ws);
}

size_t pl_ws_bytes(const pl_ws *ws)
{
    return (size_t)pl_ws_estimate(&ws->cfg, ws->T, ws->cap, ws->threads);
}

/* Rows of slot t (see pl_ws): the rows running at step t - 1. */
static inline int slot_rows(const pl_ws *ws, int t) { return t == 0 ? ws->n : ws->nrun[t - 1]; }

/* Orders the n rows by length, longest first, from len_in into pos and len
 * (stable: rows of one length keep the caller's order, so sets of one
 * length load as they always did); then the rows running at each step and
 * the slots' first rows. O(n + T). */
static void plan_rows(pl_ws *ws, int n)
{
    pl_order_by_length(NULL, ws->len_in, n, ws->T, ws->pos, ws->cnt);
    for (int k = 0; k < n; k++)
        ws->len[k] = ws->len_in[ws->pos[k]];
    ws->n = n;
    ws->Te = n ? ws->len[0] : 0;
    ws->varlen = n && ws->len[n - 1] != ws->len[0];
    for (int t = 0, b = n; t < ws->Te; t++) {
        while (b > 0 && ws->len[b - 1] <= t)
            b--;
        ws->nrun[t] = b;
    }
    ws->off[0] = 0;
    for (int t = 0; t <= ws->Te; t++)
        ws->off[t + 1] = ws->off[t] + (size_t)slot_rows(ws, t);
}

/* A row's length as the workspace takes it: 1..T. */
static int32_t clamp_length(long len, int T) { return len < 1 ? 1 : len > T ? T : (int32_t)len; }

/* The constant 1 of every slot of every layer, the zero initial state in
 * slot 0, and a zero input for the rows that ended before the slot's step
 * (their gate gradients are zero there; the input must be finite). */
static void load_constants(pl_ws *ws)
{
    const int Hp = ws->Hp;
    for (int l = 0; l < ws->L; l++) {
        const int K = ws->K[l], in = K - 1 - Hp;
        for (int t = 0; t < ws->Te; t++)
            for (int b = 0; b < slot_rows(ws, t); b++) {
                float *row = ws->xh[l] + (ws->off[t] + (size_t)b) * K;
                row[in] = 1.0f;
                if (t == 0)
                    memset(row + in + 1, 0, sizeof(float) * (size_t)Hp);
                if (b >= ws->nrun[t])
                    memset(row, 0, sizeof(float) * (size_t)in);
            }
    }
}

/* Item i's step t into row (D floats): an image row scaled to [0, 1], or
 * the values as they are. */
static void load_step(const pl_dataset *ds, size_t i, int t, float *row)
{
    const int D = ds->D;
    const size_t at = (i * (size_t)ds->T + (size_t)t) * (size_t)D;
    if (ds->values) {
        memcpy(row, ds->values + at, sizeof(float) * (size_t)D);
        return;
    }
    for (int d = 0; d < D; d++)
        row[d] = (float)ds->images[at + d] * (1.0f / 255.0f);
}

void pl_ws_load(pl_ws *ws, const pl_dataset *ds, const uint32_t *idx, int n)
{
    const int K = ws->K[0];
    double t0 = ws->prof ? pl_seconds() : 0;
    for (int b = 0; b < n; b++)
        ws->len_in[b] = clamp_length(ds->lengths ? ds->lengths[idx[b]] : ds->T, ws->T);
    plan_rows(ws, n);
    for (int b = 0; b < n; b++) {
        const uint32_t i = idx[ws->pos[b]];
        ws->labels[b] = ds->labels ? ds->labels[i] : 0; /* none: predictions only */
        ws->ids[b] = i;
        for (int t = 0; t < ws->len[b]; t++)
            load_step(ds, i, t, ws->xh[0] + (ws->off[t] + (size_t)b) * K);
    }
    load_constants(ws);
    pl_lap(ws->prof, PL_PH_LOAD, &t0);
}

void pl_ws_load_f32(pl_ws *ws, const float *x, const uint8_t *labels, int n)
{
    pl_ws_load_f32_lengths(ws, x, labels, NULL, n);
}

void pl_ws_load_f32_lengths(pl_ws *ws, const float *x, const uint8_t *labels,
                            const int32_t *lengths, int n)
{
    const int T = ws->T, D = ws->D, K = ws->K[0];
    for (int b = 0; b < n; b++)
        ws->len_in[b] = clamp_length(lengths ? lengths[b] : T, T);
    plan_rows(ws, n);
    for (int b = 0; b < n; b++) {
        const uint32_t src = ws->pos[b];
        ws->labels[b] = labels[src];
        ws->ids[b] = src;
        for (int t = 0; t < ws->len[b]; t++)
            memcpy(ws->xh[0] + (ws->off[t] + (size_t)b) * K, x + ((size_t)src * T + t) * D,
                   sizeof(float) * (size_t)D);
    }
    load_constants(ws);
}

/* -------------------------------------------------------------- dropout */

void pl_ws_set_dropout(pl_ws *ws, float p, uint64_t key)
{
    ws->drop = p;
    ws->drop_key = key;
}

/* Inverted dropout between layer l and l + 1 at step t: x[b][u] for the
 * rows running at t (stride ld) and units [u0, u1) times 0 or 1 / (1 - p),
 * the mask a hash of (the step's key, the boundary, t, the row's item, u):
 * the same for any sharding, order of rows and thread split, and again in
 * backward. */
static void dropout_mask(const pl_ws *ws, int l, int t, float *x, size_t ld, int u0, int u1)
{
    const uint32_t cut = pl_dropout_cut(ws->drop);
    const float keep = 1.0f / (1.0f - ws->drop);
    for (int b = 0; b < ws->nrun[t]; b++) {
        float *row = x + (size_t)b * ld;
        for (int u = u0; u < u1; u++)
            row[u] *= pl_dropout_hash(ws->drop_key, l, t, ws->ids[b], u) >= cut ? keep : 0.0f;
    }
}

/* Rows between one panel and the next in gates: every loaded step. */
static size_t panel_stride(const pl_ws *ws) { return ws->off[ws->Te] * PL_PANEL; }

/* ---------------------------------------------------------- LSTM layer */

/* Layer l over all steps, this thread's gate panels: gates_t = [in_t, 1,
 * h_{t-1}] Wf, then the cell, which writes h_t into slot t + 1 and into the
 * next layer's input. Called inside the parallel region. */
static void layer_forward(pl_ws *ws, const pl_packed *pk, int l, int tid, int nt,
                          double *tt)
{
    const int K = ws->K[l], Hp = ws->Hp, in = K - 1 - Hp;
    const size_t g_ps = panel_stride(ws), *off = ws->off;
    double *prof = tid == 0 ? ws->prof : NULL;
    long p0, p1;
    own_panels(ws->npanel, tid, nt, &p0, &p1);
    for (int t = 0; t < ws->Te; t++) {
        const int n = ws->nrun[t]; /* the rows still running */
        pl_gemm_op op = {
            .M = n, .N = (int)(p1 - p0) * PL_PANEL, .nb = 1, .kb = K,
            .a = ws->xh[l] + off[t] * K, .a_rs = (size_t)K, .a_cs = 1,
            .b = pk->wf[l] + (size_t)p0 * K * PL_PANEL, .ldb = PL_PANEL,
            .b_ps = (size_t)K * PL_PANEL,
            .c = ws->gates[l] + p0 * g_ps + off[t] * PL_PANEL, .ldc = PL_PANEL,
            .c_ps = g_ps, .bf16 = ws->bf16,
            .b16 = ws->bf16 && pk->bf16 ? pk->wf16[l] + (size_t)p0 * wf16_panel(pk, l) : NULL,
            .b16_ps = wf16_panel(pk, l)};
        pl_gemm_with(ws->k, &op);
        pl_lap(prof, PL_PH_FWD_GEMM, tt);
        const int up = l + 1 < ws->L;
        pl_cell_args ca = {
            .n = n, .p0 = (int)p0, .p1 = (int)p1, .Hp = Hp,
            .g = ws->gates[l] + off[t] * PL_PANEL, .g_ps = g_ps,
            .c = ws->c[l] + off[t] * Hp, .tc = ws->tc[l] + off[t] * Hp,
            .c_prev = t > 0 ? ws->c[l] + off[t - 1] * Hp : NULL,
            .h = ws->xh[l] + off[t + 1] * K + in + 1, .h_rs = (size_t)K,
            .h2 = up ? ws->xh[l + 1] + off[t] * ws->K[l + 1] : NULL,
            .h2_rs = up ? (size_t)ws->K[l + 1] : 0};
        ws->k->cell_forward(&ca);
        if (up && ws->drop > 0) /* what the next layer reads, own units */
            dropout_mask(ws, l, t, ca.h2, ca.h2_rs, (int)p0 * PL_UNIT_BLOCK,
                         (int)p1 * PL_UNIT_BLOCK);
#pragma omp barrier
        pl_lap(prof, PL_PH_FWD_CELL, tt);
    }
}

/* C[:, units [u0, u1)] (+)= A W^T for a transposed gate matrix wt (nq, 4Hp,
 * 64) (W_h^T or W_x^T): A = `rows` rows of gate gradients in npanel panels of
 * 64 columns, a_ps apart (row stride 64); C with row stride ldc. One GEMM
 * when u0 starts a 64-unit panel, else one per panel piece. */
static void times_transposed(const pl_ws *ws, const float *wt, const uint32_t *wt16,
                             const float *a, size_t a_ps, int rows, float *c, size_t ldc, int u0,
                             int u1, int accumulate, int bf16, const pl_warm *warm)
{
    const size_t ps = (size_t)4 * ws->Hp * PL_PANEL;
    for (int j0 = u0; j0 < u1;) {
        int q = j0 / PL_PANEL;
        int j1 = j0 % PL_PANEL == 0 ? u1 : ((q + 1) * PL_PANEL < u1 ? (q + 1) * PL_PANEL : u1);
        pl_gemm_op op = {.M = rows, .N = j1 - j0, .nb = ws->npanel, .kb = PL_PANEL,
                         .a = a, .a_rs = PL_PANEL, .a_cs = 1, .a_bs = a_ps,
                         .b = wt + (size_t)q * ps + (size_t)(j0 % PL_PANEL), .ldb = PL_PANEL,
                         .b_bs = (size_t)PL_PANEL * PL_PANEL, .b_ps = ps,
                         .c = c + j0, .ldc = ldc, .accumulate = accumulate, .bf16 = bf16,
                         .b16 = bf16 && wt16 ? wt16 + (size_t)q * ps / 2 + (size_t)(j0 % PL_PANEL)
                                             : NULL,
                         .b16_ps = ps / 2, .warm = j0 == u0 ? warm : NULL};
        pl_gemm_with(ws->k, &op);
        j0 = j1;
    }
}

int pl_wgrad_rows(int kc, int bf16) { return kc > 0 && !bf16 ? 2 * kc : WGRAD_ROWS; }

/* dWf[panels p0..p1) (+)= [in, 1, h]^T dG over rows [r0, r1) of all steps
 * (row off[t] + b is step t's row b), pl_wgrad_rows rows a call: with
 * avx2 on a 32 KiB L1, two 112-row chunks a call instead of 256 rows in
 * three, 25 passes over dWf instead of 33 at T=28: the product 0.96-0.99x
 * the time beside the other two of the same runs, hidden 256-1024 (Zen 3;
 * same bits; bench/results/zen3-wgrad-rows.txt). */
static void weight_gradient(pl_ws *ws, int l, long p0, long p1, long r0, long r1, int accumulate)
{
    const int K = ws->K[l], per_call = pl_wgrad_rows(ws->kc, ws->bf16);
    const size_t g_ps = panel_stride(ws);
    for (long r = r0; r < r1; r += per_call) {
        pl_gemm_op op = {
            .M = K, .N = (int)(p1 - p0) * PL_PANEL, .nb = 1,
            .kb = (int)(r1 - r < per_call ? r1 - r : per_call),
            .a = ws->xh[l] + (size_t)r * K, .a_rs = 1, .a_cs = (size_t)K,
            .b = ws->gates[l] + p0 * g_ps + (size_t)r * PL_PANEL, .ldb = PL_PANEL,
            .b_ps = g_ps,
            .c = ws->dwf + (size_t)p0 * K * PL_PANEL, .ldc = PL_PANEL,
            .c_ps = (size_t)K * PL_PANEL, .accumulate = accumulate || r > r0,
            .bf16 = ws->bf16};
        pl_gemm_with(ws->k, &op);
    }
}

/* Whether layer l's weight gradient is summed step by step inside the
 * backward loop, while each step's gate gradients are still in cache: when
 * the layer's dWf fits a core's L2 with room to spare (small models);
 * otherwise (its traffic would dominate) after the loop, over all steps at
 * once. A function of the shape alone, so that the sums' order, and the
 * bits, do not depend on the threads. */
int pl_wgrad_in_loop(int K, int Hp) { return 4.0 * K * 4 * Hp <= PL_L2_WEIGHTS / 2; }

static int wgrad_in_loop(const pl_ws *ws, int l) { return pl_wgrad_in_loop(ws->K[l], ws->Hp); }

/* Layer l's gradient from dWf (all panels done) into the canonical layout,
 * canonical rows [r0, r1) of the layer's (2H, 4H) kernel, and its bias
 * with r0 = 0. Layer 0's W_x rows come from the fold: dW_x = [W_in ;
 * b_in]^T [P ; s], 16 rows at a time through the thread's scratch. */
static void grad_rows(pl_ws *ws, const pl_tensors *tp, const pl_tensors *tg, int l, int r0,
                      int r1, int tid)
{
    const int H = ws->H, K = ws->K[l], in = K - 1 - ws->Hp, npanel = ws->npanel;
    const size_t sps = (size_t)K * PL_PANEL, ld = (size_t)4 * H;
    float *gw = tg->w[l];
    if (r0 == 0)
        panels_to_canon(ws->dwf + (size_t)in * PL_PANEL, sps, PL_PANEL, H, 0, npanel, 1, tg->b[l], ld);
    for (int r = r0; r < r1;) {
        if (r >= H || l > 0) { /* dW_h, or dW_x of an upper layer: copied */
            int from = r < H ? r : in + 1 + (r - H);
            panels_to_canon(ws->dwf + (size_t)from * PL_PANEL, sps, PL_PANEL, H, 0, npanel, 1,
                            gw + (size_t)r * ld, ld);
            r++;
            continue;
        }
        const int rows = r1 - r < PL_UNIT_BLOCK ? r1 - r : PL_UNIT_BLOCK;
        const int top = H - r < rows ? H - r : rows;
        float *sc = ws->scratch + (size_t)tid * PL_UNIT_BLOCK * 4 * ws->Hp;
        pl_gemm_op op = {.M = top, .N = 4 * ws->Hp, .nb = 1, .kb = ws->D + 1,
                         .a = tp->w_in + r, .a_rs = 1, .a_cs = (size_t)H, .b = ws->dwf,
                         .ldb = PL_PANEL, .b_ps = sps, .c = sc, .ldc = (size_t)4 * ws->Hp};
        pl_gemm_with(ws->k, &op);
        panels_to_canon(sc, PL_PANEL, (size_t)4 * ws->Hp, H, 0, npanel, top, gw + (size_t)r * ld, ld);
        r += top;
    }
}

/* What the backward cell and weight gradient of step t read from the
 * forward pass (this thread's panels p0..p1, units u0..u1): its gates, tanh
 * and previous cell state, and with the weight gradient in the loop the
 * step's rows of [x, 1, h]. At long sequences they come from memory, so the
 * recurrent product before them prefetches them (pl_gemm_op.warm): at T =
 * 784 the backward cell 0.40x the time, the weight gradient 0.88x, that
 * product 1.10x, the step 0.94x (bench/results/warm-backward.txt). None
 * when they fill more than half of L2: the product's own operands would
 * be pushed out (hidden 1024: the step 1.014x); max_bytes, half of L2. */
static pl_warm step_inputs(const pl_ws *ws, int l, int t, long p0, long p1, int u0, int u1,
                           int in_loop, size_t max_bytes)
{
    const int n = ws->nrun[t], Hp = ws->Hp;
    const size_t *off = ws->off, row = sizeof(float) * Hp, own = sizeof(float) * (u1 - u0);
    /* rows of own units; when they are all the units, one piece */
    const size_t piece = own == row ? n * row : own;
    const int pieces = own == row ? 1 : n;
    pl_warm w = {.n = 0};
    w.s[w.n++] = (pl_span){ws->gates[l] + p0 * panel_stride(ws) + off[t] * PL_PANEL,
                           sizeof(float) * PL_PANEL * n, sizeof(float) * panel_stride(ws),
                           (int)(p1 - p0)};
    w.s[w.n++] = (pl_span){ws->tc[l] + off[t] * Hp + u0, piece, row, pieces};
    if (t > 0)
        w.s[w.n++] = (pl_span){ws->c[l] + off[t - 1] * Hp + u0, piece, row, pieces};
    if (in_loop)
        w.s[w.n++] = (pl_span){ws->xh[l] + off[t] * ws->K[l], sizeof(float) * ws->K[l] * n, 0, 1};
    double bytes = 0;
    for (int s = 0; s < w.n; s++)
        bytes += (double)w.s[s].bytes * w.s[s].count;
    if (bytes > (double)max_bytes)
        w.n = 0;
    return w;
}

/* Backward of layer l, this thread's panels. On entry dH holds, for the top
 * layer, the output's gradient at step T - 1, for the others the gradient
 * from the layer above at every step; on return, for l > 0, the gradient
 * wrt layer l - 1's h_t at every step. Called inside the parallel region. */
static void layer_backward(pl_ws *ws, const pl_packed *pk, const pl_tensors *tp,
                           const pl_tensors *tg, int l, int tid, int nt, double *tt)
{
    const int T = ws->Te, Hp = ws->Hp, H = ws->H, K = ws->K[l];
    const size_t g_ps = panel_stride(ws), *off = ws->off;
    double *prof = tid == 0 ? ws->prof : NULL;
    long p0, p1;
    own_panels(ws->npanel, tid, nt, &p0, &p1);
    const int u0 = (int)p0 * PL_UNIT_BLOCK, u1 = (int)p1 * PL_UNIT_BLOCK;
    for (int b = 0; b < ws->n && u1 > u0; b++)
        memset(ws->dc + (size_t)b * Hp + u0, 0, sizeof(float) * (size_t)(u1 - u0));
    const int in_loop = wgrad_in_loop(ws, l);
    const size_t warm_max = pl_gemm_a_limit(pl_cpu_cache_sizes().l2); /* step_inputs */
    for (int t = T - 1; t >= 0; t--) {
        const int n = ws->nrun[t];
        for (long p = p0; p < p1; p++) /* rows that ended at t - 1: no gradient */
            memset(ws->gates[l] + p * g_ps + (off[t] + (size_t)n) * PL_PANEL, 0,
                   sizeof(float) * PL_PANEL * (off[t + 1] - off[t] - (size_t)n));
        pl_cell_args ca = {
            .n = n, .p0 = (int)p0, .p1 = (int)p1, .Hp = Hp,
            .g = ws->gates[l] + off[t] * PL_PANEL, .g_ps = g_ps,
            .tc = ws->tc[l] + off[t] * Hp,
            .c_prev = t > 0 ? ws->c[l] + off[t - 1] * Hp : NULL,
            .dh = ws->dH + off[t] * Hp, .dc = ws->dc};
        ws->k->cell_backward(&ca);
        if (in_loop) { /* this step's own panels, while they are in cache */
            pl_lap(prof, PL_PH_BWD_CELL, tt);
            weight_gradient(ws, l, p0, p1, (long)off[t], (long)off[t] + n, t < T - 1);
            pl_lap(prof, PL_PH_WGRAD, tt);
        }
#pragma omp barrier
        pl_lap(prof, PL_PH_BWD_CELL, tt);
        if (t == 0)
            break;
        const pl_warm wm = step_inputs(ws, l, t - 1, p0, p1, u0, u1, in_loop, warm_max);
        /* dH_{t-1}[running rows, own units] (+)= dG_t W_h^T; the top layer
         * has nothing from above, so it assigns (the rows that end at t - 1
         * hold the output's gradient) */
        times_transposed(ws, pk->wht[l], pk->bf16 ? pk->wht16[l] : NULL,
                         ws->gates[l] + off[t] * PL_PANEL, g_ps, n,
                         ws->dH + off[t - 1] * Hp, (size_t)Hp, u0, u1, l + 1 < ws->L, ws->bf16,
                         &wm);
        pl_lap(prof, PL_PH_BWD_GEMM, tt);
    }
    /* every panel of every dG_t is done (the barrier of step 0): the
     * gradient wrt this layer's input, for the layer below */
    if (l > 0) {
        times_transposed(ws, pk->wxt[l], NULL, ws->gates[l], g_ps, (int)off[T], ws->dH, (size_t)Hp,
                         u0, u1, 0, ws->bf16, NULL);
        for (int t = 0; t < T && ws->drop > 0; t++) /* the forward pass's mask, own units */
            dropout_mask(ws, l - 1, t, ws->dH + off[t] * Hp, (size_t)Hp, u0, u1);
        pl_lap(prof, PL_PH_DIN_GEMM, tt);
    }
    if (!in_loop) {
        weight_gradient(ws, l, p0, p1, 0, (long)off[T], 0);
        pl_lap(prof, PL_PH_WGRAD, tt);
    }
#pragma omp barrier
    /* every panel of dWf is done: each thread writes a band of rows of the
     * canonical gradient */
    long r0, r1;
    pl_split((2 * H + PL_UNIT_BLOCK - 1) / PL_UNIT_BLOCK, tid, nt, &r0, &r1);
    grad_rows(ws, tp, tg, l, (int)r0 * PL_UNIT_BLOCK,
              (int)(r1 * PL_UNIT_BLOCK < 2 * H ? r1 * PL_UNIT_BLOCK : 2 * H), tid);
    if (l == 0) /* [dW_in ; db_in][:, own units] = [P ; s] W_x^T: one (D + 1, H) block */
        times_transposed(ws, pk->wxt[0], NULL, ws->dwf, (size_t)K * PL_PANEL, ws->D + 1, tg->w_in,
                         (size_t)H, u0, u1 < H ? u1 : H, 0, 0, NULL); /* unfolding: fp32 */
    /* dwf and dH are shared by the layers: finish this one first */
#pragma omp barrier
    pl_lap(prof, PL_PH_UNFOLD, tt);
}

/* --------------------------------------------------------------- output */

/* Each row's last h (the top layer's, at its own last step): rows of
 * stride *rs. One length: where the last slot holds them; else gathered
 * into dc (free outside layer_backward). */
static const float *last_h(pl_ws *ws, size_t *rs)
{
    const int K = ws->K[ws->L - 1], in = K - 1 - ws->Hp;
    const float *top = ws->xh[ws->L - 1] + in + 1;
    *rs = (size_t)K;
    if (!ws->varlen)
        return top + ws->off[ws->Te] * K;
    for (int b = 0; b < ws->n; b++)
        memcpy(ws->dc + (size_t)b * ws->Hp, top + (ws->off[ws->len[b]] + (size_t)b) * K,
               sizeof(float) * (size_t)ws->Hp);
    *rs = (size_t)ws->Hp;
    return ws->dc;
}

/* Output layer and softmax cross-entropy on each row's last h: logits
 * into prob, then the softmax. Returns the summed loss; logits in the
 * caller's order of rows. */
static double output_forward(pl_ws *ws, const pl_tensors *tp, int *correct, float *logits)
{
    const int n = ws->n, C = ws->C;
    size_t rs;
    const float *hT = last_h(ws, &rs);
    pl_gemm_op op = {.M = n, .N = C, .nb = 1, .kb = ws->H, .a = hT, .a_rs = rs,
                     .a_cs = 1, .b = tp->w_out, .ldb = (size_t)C, .c = ws->prob,
                     .ldc = (size_t)C};
    pl_gemm_with(ws->k, &op);
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
            memcpy(logits + (size_t)ws->pos[b] * C, z, sizeof(float) * (size_t)C);
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
 * dH at each row's last step = dlogits W_out^T (padded units get 0). */
static void output_backward(pl_ws *ws, const pl_packed *pk, const pl_tensors *tg, float norm)
{
    const int n = ws->n, C = ws->C, Hp = ws->Hp;
    const float inv = 1.0f / norm;
    for (int b = 0; b < n; b++)
        for (int c = 0; c < C; c++)
            ws->dlog[(size_t)b * C + c] =
                (ws->prob[(size_t)b * C + c] - (c == ws->labels[b] ? 1.0f : 0.0f)) * inv;
    size_t rs;
    const float *hT = last_h(ws, &rs);
    pl_gemm_op gw = {.M = ws->H, .N = C, .nb = 1, .kb = n, .a = hT, .a_rs = 1,
                     .a_cs = rs, .b = ws->dlog, .ldb = (size_t)C, .c = tg->w_out,
                     .ldc = (size_t)C};
    pl_gemm_with(ws->k, &gw);
    float *dtop = ws->varlen ? ws->dc : ws->dH + ws->off[ws->Te - 1] * Hp;
    pl_gemm_op gh = {.M = n, .N = Hp, .nb = 1, .kb = C, .a = ws->dlog, .a_rs = (size_t)C,
                     .a_cs = 1, .b = pk->wot, .ldb = (size_t)Hp, .c = dtop,
                     .ldc = (size_t)Hp};
    pl_gemm_with(ws->k, &gh);
    for (int b = 0; b < n && ws->varlen; b++) /* to each row's last step */
        memcpy(ws->dH + (ws->off[ws->len[b] - 1] + (size_t)b) * Hp, dtop + (size_t)b * Hp,
               sizeof(float) * (size_t)Hp);
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
    int Hp, npanel, nq, K[PL_MAX_LAYERS];
    shape(cfg, &Hp, &npanel, &nq, K);
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
