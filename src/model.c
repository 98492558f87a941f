/* The model's configuration, its one flat parameter buffer with named views,
 * and initialisation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void *pl_alloc_aligned(size_t bytes)
{
    void *p = NULL;
    if (bytes == 0)
        bytes = 64;
    bytes = (bytes + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, bytes) != 0)
        return NULL;
    memset(p, 0, bytes);
    return p;
}

float *pl_alloc_floats(size_t n)
{
    if (n > SIZE_MAX / sizeof(float))
        return NULL;
    return pl_alloc_aligned(n * sizeof(float));
}

void pl_free(void *p) { free(p); }

pl_status pl_config_check(const pl_config *cfg, pl_error *err)
{
    if (cfg->input < 1 || cfg->input > 65535)
        return pl_fail(err, PL_ERR_ARG,
                       "input width must be between 1 and 65535, got %d",
                       cfg->input);
    if (cfg->hidden < 1 || cfg->hidden > 8192)
        return pl_fail(err, PL_ERR_ARG,
                       "hidden units must be between 1 and 8192, got %d",
                       cfg->hidden);
    if (cfg->classes < 2 || cfg->classes > 256)
        return pl_fail(err, PL_ERR_ARG,
                       "classes must be between 2 and 256, got %d",
                       cfg->classes);
    if (cfg->layers < 1 || cfg->layers > PL_MAX_LAYERS)
        return pl_fail(err, PL_ERR_ARG, "layers must be between 1 and %d, got %d",
                       PL_MAX_LAYERS, cfg->layers);
    return PL_OK;
}

int pl_param_groups(const pl_config *cfg, pl_group *g)
{
    static const char *const wname[PL_MAX_LAYERS] = {
        "w_lstm", "w_lstm_l1", "w_lstm_l2", "w_lstm_l3",
        "w_lstm_l4", "w_lstm_l5", "w_lstm_l6", "w_lstm_l7"};
    static const char *const bname[PL_MAX_LAYERS] = {
        "b_lstm", "b_lstm_l1", "b_lstm_l2", "b_lstm_l3",
        "b_lstm_l4", "b_lstm_l5", "b_lstm_l6", "b_lstm_l7"};
    const size_t D = (size_t)cfg->input, H = (size_t)cfg->hidden,
                 C = (size_t)cfg->classes;
    const int L = cfg->layers < 1 ? 1 : cfg->layers > PL_MAX_LAYERS ? PL_MAX_LAYERS : cfg->layers;
    int n = 0;
    size_t off = 0;
#define GROUP(nm, sz) (g[n].name = (nm), g[n].offset = off, g[n].size = (sz), off += (sz), n++)
    GROUP("w_in", D * H);
    GROUP("b_in", H);
    for (int l = 0; l < L; l++) {
        GROUP(wname[l], 2 * H * 4 * H);
        GROUP(bname[l], 4 * H);
    }
    GROUP("w_out", H * C);
    GROUP("b_out", C);
#undef GROUP
    return n;
}

size_t pl_param_count(const pl_config *cfg)
{
    pl_group g[PL_MAX_GROUPS];
    int n = pl_param_groups(cfg, g);
    return g[n - 1].offset + g[n - 1].size;
}

void pl_tensors_bind(const pl_config *cfg, float *base, pl_tensors *t)
{
    pl_group g[PL_MAX_GROUPS];
    int n = pl_param_groups(cfg, g);
    memset(t, 0, sizeof *t);
    t->w_in = base + g[0].offset;
    t->b_in = base + g[1].offset;
    for (int l = 0; 2 + 2 * l + 1 < n - 2; l++) {
        t->w[l] = base + g[2 + 2 * l].offset;
        t->b[l] = base + g[3 + 2 * l].offset;
    }
    t->w_out = base + g[n - 2].offset;
    t->b_out = base + g[n - 1].offset;
}

static void fill_uniform(float *x, size_t n, double limit, pl_rng *r)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((2.0 * pl_rng_uniform(r) - 1.0) * limit);
}

static void fill_normal(float *x, size_t n, double sd, pl_rng *r)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(sd * pl_rng_normal(r));
}

/* w (rows, cols) with rows <= cols gets orthonormal rows: Gram-Schmidt
 * (run twice for accuracy) on `rows` random normal vectors of length cols. */
static void fill_orthogonal(float *w, int rows, int cols, pl_rng *r)
{
    double *q = malloc(sizeof(double) * (size_t)rows * (size_t)cols);
    if (!q) { /* fall back to a scaled normal; cannot fail the caller */
        fill_normal(w, (size_t)rows * (size_t)cols, 1.0 / sqrt(cols), r);
        return;
    }
    for (size_t i = 0; i < (size_t)rows * (size_t)cols; i++)
        q[i] = pl_rng_normal(r);
    for (int i = 0; i < rows; i++) {
        double *qi = q + (size_t)i * cols;
        for (int pass = 0; pass < 2; pass++)
            for (int j = 0; j < i; j++) {
                const double *qj = q + (size_t)j * cols;
                double dot = 0;
                for (int k = 0; k < cols; k++)
                    dot += qi[k] * qj[k];
                for (int k = 0; k < cols; k++)
                    qi[k] -= dot * qj[k];
            }
        double norm = 0;
        for (int k = 0; k < cols; k++)
            norm += qi[k] * qi[k];
        norm = sqrt(norm);
        for (int k = 0; k < cols; k++)
            qi[k] /= norm;
    }
    for (size_t i = 0; i < (size_t)rows * (size_t)cols; i++)
        w[i] = (float)q[i];
    free(q);
}

void pl_model_init(const pl_config *cfg, float *params, pl_init init,
                   uint64_t seed)
{
    size_t D = (size_t)cfg->input, H = (size_t)cfg->hidden,
           C = (size_t)cfg->classes;
    pl_tensors t;
    pl_rng r;
    pl_rng_seed(&r, seed);
    pl_tensors_bind(cfg, params, &t);
    memset(params, 0, sizeof(float) * pl_param_count(cfg));
    if (init == PL_INIT_TUTORIAL) {
        fill_normal(t.w_in, D * H, 1.0, &r);
        for (size_t i = 0; i < H; i++)
            t.b_in[i] = 0.1f;
        for (int l = 0; l < cfg->layers; l++)
            fill_uniform(t.w[l], 2 * H * 4 * H, sqrt(6.0 / (double)(2 * H + 4 * H)), &r);
        fill_normal(t.w_out, H * C, 1.0, &r);
        for (size_t i = 0; i < C; i++)
            t.b_out[i] = 0.1f;
    } else {
        fill_uniform(t.w_in, D * H, sqrt(6.0 / (double)(D + H)), &r);
        for (int l = 0; l < cfg->layers; l++) {
            fill_uniform(t.w[l], H * 4 * H, sqrt(6.0 / (double)(H + 4 * H)), &r);
            fill_orthogonal(t.w[l] + H * 4 * H, (int)H, (int)(4 * H), &r);
        }
        fill_uniform(t.w_out, H * C, sqrt(6.0 / (double)(H + C)), &r);
    }
    for (int l = 0; l < cfg->layers; l++)
        for (size_t u = 0; u < H; u++)
            t.b[l][H + u] = 1.0f; /* forget gate */
}
