/* The reference model: plain loops in double precision over the canonical
 * parameter layout, the input projection computed as written (no folding).
 * Slow and simple on purpose; the tests hold the fast path against it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static double sig(double x) { return 1.0 / (1.0 + exp(-x)); }

double pl_ref_loss_grad(const pl_config *cfg, const float *params,
                        const float *x, const uint8_t *labels, int n, int T,
                        double norm, double *grad, double *logits)
{
    const int D = cfg->input, H = cfg->hidden, C = cfg->classes, H4 = 4 * H;
    const size_t np = pl_param_count(cfg);
    pl_group g[PL_MAX_GROUPS];
    pl_param_groups(cfg, g);
    double *p = malloc(sizeof(double) * np);
    /* per step: xp (H), gates (4H, activated), c (H), h (H) */
    double *xp = malloc(sizeof(double) * (size_t)T * H);
    double *ga = malloc(sizeof(double) * (size_t)T * H4);
    double *cs = malloc(sizeof(double) * (size_t)(T + 1) * H);
    double *hs = malloc(sizeof(double) * (size_t)(T + 1) * H);
    double *dh = malloc(sizeof(double) * H), *dc = malloc(sizeof(double) * H);
    double *dz = malloc(sizeof(double) * H4), *dxh = malloc(sizeof(double) * 2 * H);
    double z[256], pr[256];
    for (size_t i = 0; i < np; i++)
        p[i] = params[i];
    const double *w_in = p + g[0].offset, *b_in = p + g[1].offset,
                 *w = p + g[2].offset, *bl = p + g[3].offset,
                 *w_out = p + g[4].offset, *b_out = p + g[5].offset;
    if (grad)
        memset(grad, 0, sizeof(double) * np);
    double loss = 0;
    for (int s = 0; s < n; s++) {
        const float *xs = x + (size_t)s * T * D;
        memset(cs, 0, sizeof(double) * H);
        memset(hs, 0, sizeof(double) * H);
        for (int t = 0; t < T; t++) {
            double *xt = xp + (size_t)t * H, *a = ga + (size_t)t * H4;
            const double *hprev = hs + (size_t)t * H, *cprev = cs + (size_t)t * H;
            for (int j = 0; j < H; j++) {
                double acc = b_in[j];
                for (int d = 0; d < D; d++)
                    acc += xs[t * D + d] * w_in[d * H + j];
                xt[j] = acc;
            }
            for (int j = 0; j < H4; j++) {
                double acc = bl[j];
                for (int k = 0; k < H; k++)
                    acc += xt[k] * w[(size_t)k * H4 + j] +
                           hprev[k] * w[(size_t)(H + k) * H4 + j];
                a[j] = acc;
            }
            for (int j = 0; j < H; j++) {
                double i = sig(a[j]), f = sig(a[H + j]), gg = tanh(a[2 * H + j]),
                       o = sig(a[3 * H + j]);
                a[j] = i;
                a[H + j] = f;
                a[2 * H + j] = gg;
                a[3 * H + j] = o;
                double c = f * cprev[j] + i * gg;
                cs[(size_t)(t + 1) * H + j] = c;
                hs[(size_t)(t + 1) * H + j] = o * tanh(c);
            }
        }
        const double *hT = hs + (size_t)T * H;
        double zmax = -INFINITY;
        for (int c = 0; c < C; c++) {
            z[c] = b_out[c];
            for (int u = 0; u < H; u++)
                z[c] += hT[u] * w_out[u * C + c];
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

        double *gw_in = grad + g[0].offset, *gb_in = grad + g[1].offset,
               *gw = grad + g[2].offset, *gbl = grad + g[3].offset,
               *gw_out = grad + g[4].offset, *gb_out = grad + g[5].offset;
        for (int c = 0; c < C; c++)
            pr[c] = (exp(z[c] - zmax) / sum - (c == labels[s])) / norm;
        for (int u = 0; u < H; u++) {
            dh[u] = 0;
            for (int c = 0; c < C; c++) {
                gw_out[u * C + c] += hT[u] * pr[c];
                dh[u] += pr[c] * w_out[u * C + c];
            }
            dc[u] = 0;
        }
        for (int c = 0; c < C; c++)
            gb_out[c] += pr[c];
        for (int t = T - 1; t >= 0; t--) {
            const double *a = ga + (size_t)t * H4, *xt = xp + (size_t)t * H;
            const double *hprev = hs + (size_t)t * H, *cprev = cs + (size_t)t * H;
            const double *ct = cs + (size_t)(t + 1) * H;
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
                double in = k < H ? xt[k] : hprev[k - H], acc = 0;
                for (int j = 0; j < H4; j++) {
                    gw[(size_t)k * H4 + j] += in * dz[j];
                    acc += w[(size_t)k * H4 + j] * dz[j];
                }
                dxh[k] = acc;
            }
            for (int k = 0; k < H; k++) {
                gb_in[k] += dxh[k];
                for (int d = 0; d < D; d++)
                    gw_in[d * H + k] += xs[t * D + d] * dxh[k];
                dh[k] = dxh[H + k];
            }
        }
    }
    free(p);
    free(xp);
    free(ga);
    free(cs);
    free(hs);
    free(dh);
    free(dc);
    free(dz);
    free(dxh);
    return loss / norm;
}
