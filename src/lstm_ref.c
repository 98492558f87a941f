/* The reference model: plain loops in double precision over the canonical
 * parameter layout, the input projection computed as written (no folding),
 * one sample at a time, layer after layer. Slow and simple on purpose; the
 * tests hold the fast path against it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lstm.h"

/* Double views of the parameter groups (see pl_tensors). */
typedef struct {
    double *w_in, *b_in, *w[PL_MAX_LAYERS], *b[PL_MAX_LAYERS], *w_out, *b_out;
} pl_tensors_d;

static double sig(double x) { return 1.0 / (1.0 + exp(-x)); }

/* One sample's activations: for layer l and step t, the layer's input
 * in[l][t] (H), activated gates ga[l][t] (4H: i f g o), cell cs[l][t + 1]
 * and hidden hs[l][t + 1] (H; slot 0 is the zero initial state). */
typedef struct {
    int L, T, H;
    double *in, *ga, *cs, *hs;
    float drop;      /* dropout between layers (0: off) */
    uint64_t key;
    uint32_t id;     /* the sample's item: its row */
} ref_acts;

/* The dropout multiplier between layer l and l + 1 (see internal.h). */
static double drop_scale(const ref_acts *r, int l, int t, int u)
{
    if (r->drop <= 0)
        return 1.0;
    return pl_dropout_hash(r->key, l, t, r->id, u) >= pl_dropout_cut(r->drop)
               ? 1.0 / (1.0 - (double)r->drop) : 0.0;
}

/* Row t of layer l in one of r's arrays of `slots` rows per layer. */
static double *at(double *base, int l, int t, int width, int slots)
{
    return base + ((size_t)l * slots + t) * width;
}

static void ref_forward(const pl_config *cfg, const pl_tensors_d *p, const float *xs,
                        int T, ref_acts *r)
{
    const int D = cfg->input, H = cfg->hidden, H4 = 4 * H;
    for (int l = 0; l < r->L; l++) {
        const double *w = p->w[l], *bl = p->b[l];
        memset(at(r->cs, l, 0, H, T + 1), 0, sizeof(double) * H);
        memset(at(r->hs, l, 0, H, T + 1), 0, sizeof(double) * H);
        for (int t = 0; t < T; t++) {
            double *in = at(r->in, l, t, H, T), *a = at(r->ga, l, t, H4, T);
            const double *hprev = at(r->hs, l, t, H, T + 1);
            const double *cprev = at(r->cs, l, t, H, T + 1);
            for (int j = 0; j < H; j++) {
                if (l == 0) {
                    double acc = p->b_in[j];
                    for (int d = 0; d < D; d++)
                        acc += xs[t * D + d] * p->w_in[d * H + j];
                    in[j] = acc;
                } else {
                    in[j] = at(r->hs, l - 1, t + 1, H, T + 1)[j] * drop_scale(r, l - 1, t, j);
                }
            }
            for (int j = 0; j < H4; j++) {
                double acc = bl[j];
                for (int k = 0; k < H; k++)
                    acc += in[k] * w[(size_t)k * H4 + j] + hprev[k] * w[(size_t)(H + k) * H4 + j];
                a[j] = acc;
            }
            double *c = at(r->cs, l, t + 1, H, T + 1), *h = at(r->hs, l, t + 1, H, T + 1);
            for (int j = 0; j < H; j++) {
                double i = sig(a[j]), f = sig(a[H + j]), gg = tanh(a[2 * H + j]),
                       o = sig(a[3 * H + j]);
                a[j] = i;
                a[H + j] = f;
                a[2 * H + j] = gg;
                a[3 * H + j] = o;
                c[j] = f * cprev[j] + i * gg;
                h[j] = o * tanh(c[j]);
            }
        }
    }
}

/* Backward through all layers and steps; dtop (H) is the gradient wrt the
 * last layer's h_T. dabove (T, H) carries the gradient wrt each layer's
 * input down to the layer below. */
static void ref_backward(const pl_config *cfg, const pl_tensors_d *p, pl_tensors_d *g,
                         const float *xs, int T, const ref_acts *r, const double *dtop,
                         double *dabove)
{
    const int D = cfg->input, H = cfg->hidden, H4 = 4 * H;
    double *dh = malloc(sizeof(double) * H), *dc = malloc(sizeof(double) * H);
    double *dz = malloc(sizeof(double) * H4), *dxh = malloc(sizeof(double) * 2 * H);
    for (int l = r->L - 1; l >= 0; l--) {
        const double *w = p->w[l];
        double *gw = g->w[l], *gbl = g->b[l];
        for (int j = 0; j < H; j++) {
            dh[j] = l == r->L - 1 ? dtop[j] : 0;
            dc[j] = 0;
        }
        for (int t = T - 1; t >= 0; t--) {
            const double *a = at(r->ga, l, t, H4, T), *in = at(r->in, l, t, H, T);
            const double *hprev = at(r->hs, l, t, H, T + 1);
            const double *cprev = at(r->cs, l, t, H, T + 1);
            const double *ct = at(r->cs, l, t + 1, H, T + 1);
            if (l < r->L - 1)
                for (int j = 0; j < H; j++)
                    dh[j] += dabove[(size_t)t * H + j] * drop_scale(r, l, t, j);
            for (int j = 0; j < H; j++) {
                double i = a[j], f = a[H + j], gg = a[2 * H + j], o = a[3 * H + j];
                double tc = tanh(ct[j]);
                double dcj = dc[j] + dh[j] * o * (1 - tc * tc);
                dz[j] = dcj * gg * i * (1 - i);
                dz[H + j] = dcj * cprev[j] * f * (1 - f);
                dz[2 * H + j] = dcj * i * (1 - gg * gg);
                dz[3 * H + j] = dh[j] * tc * o * (1 - o);
                dc[j] = dcj * f;
            }
            for (int j = 0; j < H4; j++)
                gbl[j] += dz[j];
            for (int k = 0; k < 2 * H; k++) {
                double v = k < H ? in[k] : hprev[k - H], acc = 0;
                for (int j = 0; j < H4; j++) {
                    gw[(size_t)k * H4 + j] += v * dz[j];
                    acc += w[(size_t)k * H4 + j] * dz[j];
                }
                dxh[k] = acc;
            }
            for (int k = 0; k < H; k++) {
                if (l == 0) {
                    g->b_in[k] += dxh[k];
                    for (int d = 0; d < D; d++)
                        g->w_in[d * H + k] += xs[t * D + d] * dxh[k];
                } else {
                    dabove[(size_t)t * H + k] = dxh[k]; /* for layer l - 1 */
                }
                dh[k] = dxh[H + k];
            }
        }
    }
    free(dh);
    free(dc);
    free(dz);
    free(dxh);
}

/* Views of a double copy of the flat buffer, like pl_tensors. */
static void bind_d(const pl_config *cfg, double *base, pl_tensors_d *t)
{
    pl_group g[PL_MAX_GROUPS];
    int n = pl_param_groups(cfg, g);
    t->w_in = base + g[0].offset;
    t->b_in = base + g[1].offset;
    for (int l = 0; l < cfg->layers; l++) {
        t->w[l] = base + g[2 + 2 * l].offset;
        t->b[l] = base + g[3 + 2 * l].offset;
    }
    t->w_out = base + g[n - 2].offset;
    t->b_out = base + g[n - 1].offset;
}

double pl_ref_loss_grad(const pl_config *cfg, const float *params,
                        const float *x, const uint8_t *labels, int n, int T,
                        double norm, double *grad, double *logits)
{
    return pl_ref_loss_grad_dropout(cfg, params, x, labels, n, T, norm, grad, logits, 0, 0);
}

double pl_ref_loss_grad_dropout(const pl_config *cfg, const float *params, const float *x,
                                const uint8_t *labels, int n, int T, double norm,
                                double *grad, double *logits, float drop, uint64_t key)
{
    return pl_ref_loss_grad_lengths(cfg, params, x, labels, NULL, n, T, norm, grad, logits,
                                    drop, key);
}

double pl_ref_loss_grad_lengths(const pl_config *cfg, const float *params, const float *x,
                                const uint8_t *labels, const int32_t *lengths, int n, int T,
                                double norm, double *grad, double *logits, float drop,
                                uint64_t key)
{
    const int D = cfg->input, H = cfg->hidden, C = cfg->classes, L = cfg->layers;
    const size_t np = pl_param_count(cfg);
    double *p = malloc(sizeof(double) * np);
    for (size_t i = 0; i < np; i++)
        p[i] = params[i];
    pl_tensors_d tp, tg;
    bind_d(cfg, p, &tp);
    if (grad) {
        memset(grad, 0, sizeof(double) * np);
        bind_d(cfg, grad, &tg);
    }
    ref_acts r = {L, T, H, malloc(sizeof(double) * L * T * H),
                  malloc(sizeof(double) * L * T * 4 * H),
                  malloc(sizeof(double) * L * (T + 1) * H),
                  malloc(sizeof(double) * L * (T + 1) * H), drop, key, 0};
    double *dabove = malloc(sizeof(double) * (size_t)T * H), *dtop = malloc(sizeof(double) * H);
    double z[256], pr[256], loss = 0;
    for (int s = 0; s < n; s++) {
        const float *xs = x + (size_t)s * T * D;
        const int Ts = lengths ? lengths[s] : T; /* this row's steps */
        r.id = (uint32_t)s;
        ref_forward(cfg, &tp, xs, Ts, &r);
        const double *hT = at(r.hs, L - 1, Ts, H, Ts + 1);
        double zmax = -INFINITY;
        for (int c = 0; c < C; c++) {
            z[c] = tp.b_out[c];
            for (int u = 0; u < H; u++)
                z[c] += hT[u] * tp.w_out[u * C + c];
            if (z[c] > zmax)
                zmax = z[c];
        }
        double sum = 0;
        for (int c = 0; c < C; c++)
            sum += exp(z[c] - zmax);
        loss += log(sum) + zmax - z[labels[s]];
        if (logits)
            for (int c = 0; c < C; c++)
                logits[(size_t)s * C + c] = z[c];
        if (!grad)
            continue;
        for (int c = 0; c < C; c++)
            pr[c] = (exp(z[c] - zmax) / sum - (c == labels[s])) / norm;
        for (int u = 0; u < H; u++) {
            dtop[u] = 0;
            for (int c = 0; c < C; c++) {
                tg.w_out[u * C + c] += hT[u] * pr[c];
                dtop[u] += pr[c] * tp.w_out[u * C + c];
            }
        }
        for (int c = 0; c < C; c++)
            tg.b_out[c] += pr[c];
        ref_backward(cfg, &tp, &tg, xs, Ts, &r, dtop, dabove);
    }
    free(p);
    free(r.in);
    free(r.ga);
    free(r.cs);
    free(r.hs);
    free(dabove);
    free(dtop);
    return loss / norm;
}
