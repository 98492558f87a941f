/* The model's configuration, its one flat parameter buffer with named views,
 * and initialisation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "lstm.h"

/* Buffers from this size on go on huge pages (pl_alloc_data). */
#define HUGE_PAGE ((size_t)2 << 20)
#define HUGE_FROM (2 * HUGE_PAGE)

void *pl_alloc_data(size_t bytes)
{
    const size_t huge = HUGE_PAGE;
    if (bytes < HUGE_FROM)
        return malloc(bytes ? bytes : 1);
    void *p = NULL;
    if (posix_memalign(&p, huge, bytes) != 0)
        return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, bytes & ~(huge - 1), MADV_HUGEPAGE); /* advice: no huge pages is no error */
#endif
    return p;
}

void *pl_alloc_aligned(size_t bytes)
{
    void *p = NULL;
    if (bytes == 0)
        bytes = 64;
    bytes = (bytes + 63) & ~(size_t)63;
    if (bytes >= HUGE_FROM) {
        p = pl_alloc_data(bytes);
        if (p)
            memset(p, 0, bytes);
        return p;
    }
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

/* LAPACK (in OpenBLAS, Fortran interface): Householder QR and the
 * explicit Q of it, column-major. */
extern void dgeqrf_(const int *m, const int *n, double *a, const int *lda, double *tau,
                    double *work, const int *lwork, int *info);
extern void dorgqr_(const int *m, const int *n, const int *k, double *a, const int *lda,
                    const double *tau, double *work, const int *lwork, int *info);
extern void openblas_set_num_threads(int n);
extern int openblas_get_num_threads(void);

/* q (rows, cols) row-major, rows <= cols: orthonormalises the rows in place
 * (Q of the QR factorisation of q^T, with the signs of R's diagonal taken
 * out so that Q is what Gram-Schmidt would give). Seen column-major, q is
 * q^T (cols x rows) with leading dimension cols: LAPACK works on it as is.
 * O(rows^2 cols) in blocked LAPACK, on every CPU. Returns 0, or -1 when
 * LAPACK fails or memory runs out. */
int pl_orthonormalise_rows(double *q, int rows, int cols)
{
    int m = cols, n = rows, lda = cols, info = 0, lwork = -1;
    double query, *tau = malloc(sizeof(double) * (size_t)n), *diag = malloc(sizeof(double) * n);
    if (!tau || !diag) {
        free(tau);
        free(diag);
        return -1;
    }
    int threads = openblas_get_num_threads();
    openblas_set_num_threads(pl_cpu_count());
    dgeqrf_(&m, &n, q, &lda, tau, &query, &lwork, &info);
    lwork = info == 0 ? (int)query : 0;
    double *work = lwork > 0 ? malloc(sizeof(double) * (size_t)lwork) : NULL;
    if (work)
        dgeqrf_(&m, &n, q, &lda, tau, work, &lwork, &info);
    if (work && info == 0) {
        for (int j = 0; j < n; j++)
            diag[j] = q[(size_t)j * lda + j]; /* R's diagonal */
        dorgqr_(&m, &n, &n, q, &lda, tau, work, &lwork, &info);
    }
    openblas_set_num_threads(threads);
    int ok = work && info == 0;
    for (int j = 0; ok && j < n; j++)
        if (diag[j] < 0)
            for (int i = 0; i < m; i++)
                q[(size_t)j * lda + i] = -q[(size_t)j * lda + i];
    free(work);
    free(tau);
    free(diag);
    return ok ? 0 : -1;
}

/* w (rows, cols) with rows <= cols gets orthonormal rows drawn uniformly:
 * the orthonormalised rows of a (rows, cols) matrix of N(0, 1) values. */
static void fill_orthogonal(float *w, int rows, int cols, pl_rng *r)
{
    const size_t n = (size_t)rows * (size_t)cols;
    double *q = malloc(sizeof(double) * n);
    if (q)
        for (size_t i = 0; i < n; i++)
            q[i] = pl_rng_normal(r);
    if (!q || pl_orthonormalise_rows(q, rows, cols) != 0) {
        /* cannot fail the caller: a scaled normal, near-orthogonal rows */
        for (size_t i = 0; i < n; i++)
            w[i] = (float)(q ? q[i] / sqrt(cols) : pl_rng_normal(r) / sqrt(cols));
        free(q);
        return;
    }
    for (size_t i = 0; i < n; i++)
        w[i] = (float)q[i];
    free(q);
}

/* Chrono initialisation (Tallec & Ollivier 2018) of every layer's input
 * and forget biases: u ~ Uniform[1, T - 1], b_f = log(u), b_i = -b_f, so
 * that the forget gates' time scales spread over 1 to T - 1 steps. */
static void chrono_biases(const pl_config *cfg, const pl_tensors *t, int T, pl_rng *r)
{
    const size_t H = (size_t)cfg->hidden;
    const double span = T > 2 ? (double)T - 2.0 : 0.0; /* u = 1 + span x U[0, 1) */
    for (int l = 0; l < cfg->layers; l++)
        for (size_t u = 0; u < H; u++) {
            const float bf = (float)log(1.0 + span * pl_rng_uniform(r));
            t->b[l][u] = -bf;    /* input gate: block i */
            t->b[l][H + u] = bf; /* forget gate: block f */
        }
}

void pl_model_init(const pl_config *cfg, float *params, pl_init init,
                   uint64_t seed)
{
    pl_model_init_steps(cfg, params, init, seed, 0);
}

void pl_model_init_steps(const pl_config *cfg, float *params, pl_init init, uint64_t seed,
                         int T)
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
    } else if (init == PL_INIT_PYTORCH) {
        fill_uniform(t.w_in, D * H, 1.0 / sqrt((double)D), &r);
        fill_uniform(t.b_in, H, 1.0 / sqrt((double)D), &r);
        for (int l = 0; l < cfg->layers; l++)
            fill_uniform(t.w[l], 2 * H * 4 * H, 1.0 / sqrt((double)H), &r);
        fill_uniform(t.w_out, H * C, 1.0 / sqrt((double)H), &r);
        fill_uniform(t.b_out, C, 1.0 / sqrt((double)H), &r);
    } else {
        fill_uniform(t.w_in, D * H, sqrt(6.0 / (double)(D + H)), &r);
        for (int l = 0; l < cfg->layers; l++) {
            fill_uniform(t.w[l], H * 4 * H, sqrt(6.0 / (double)(H + 4 * H)), &r);
            fill_orthogonal(t.w[l] + H * 4 * H, (int)H, (int)(4 * H), &r);
        }
        fill_uniform(t.w_out, H * C, sqrt(6.0 / (double)(H + C)), &r);
    }
    if (init == PL_INIT_CHRONO) { /* after every other draw: the default's weights */
        chrono_biases(cfg, &t, T, &r);
        return;
    }
    for (int l = 0; l < cfg->layers; l++)
        for (size_t u = 0; u < H; u++)
            t.b[l][H + u] = 1.0f; /* forget gate */
}
