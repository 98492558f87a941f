/* The model against PyTorch: logits, loss and gradients of parlstm's fast
 * path (every GEMM backend) against vectors computed by PyTorch autograd in
 * float64 (tests/torch/vectors.bin for one layer, vectors-l2.bin for two
 * stacked layers, vectors-packed.bin for two layers over sequences of
 * different lengths as PyTorch packs them; written by
 * tests/torch/gen_vectors.py).
 *
 * The file (little-endian): magic "PLTV", u32 version 1: D, H, C, T, n, or
 * version 2 or 3: L, D, H, C, T, n;
 * f32 params (parlstm's layout); f32 x (n, T, D); u8 labels (n); version 3:
 * i32 lengths (n), 1..T (x is NaN past them); f64 loss
 * (mean over n); f64 logits (n, C); f64 gradient of the mean loss (params'
 * layout). A missing or malformed file fails the test. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"


typedef struct {
    pl_config cfg;
    int T, n;
    size_t np;
    float *params, *x;
    uint8_t *labels;
    int32_t *lengths; /* NULL: every sequence T steps */
    double loss, *logits, *grad;
} vectors;

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static float get_f32(const unsigned char *p)
{
    uint32_t u = get_u32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static double get_f64(const unsigned char *p)
{
    uint64_t u = (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static const char *const FILES[] = {"vectors.bin", "vectors-l2.bin", "vectors-packed.bin"};

static void vectors_read(vectors *v, const char *name)
{
    const char *src = getenv("PARLSTM_SRCDIR");
    ck_assert_msg(src != NULL && *src,
                  "PARLSTM_SRCDIR is not set (run the tests with make check)");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/torch/%s", src, name);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL,
                  "cannot open %s: the PyTorch test vectors are missing "
                  "(regenerate them with tests/torch/gen_vectors.py)",
                  path);
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0, got;
    do {
        if (len == cap) {
            cap = cap ? 2 * cap : 65536;
            ck_assert_msg(cap <= (size_t)1 << 26, "%s: larger than 64 MiB", path);
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    ck_assert_msg(!ferror(f), "%s: read error", path);
    fclose(f);

    ck_assert_msg(len >= 28 && memcmp(buf, "PLTV", 4) == 0,
                  "%s: not a parlstm test-vector file (no PLTV magic)", path);
    uint32_t version = get_u32(buf + 4);
    ck_assert_msg(version >= 1 && version <= 3, "%s: version %u, this test reads 1 to 3",
                  path, (unsigned)version);
    const size_t head = version == 1 ? 28 : 32;
    const unsigned char *h = buf + head - 20;
    uint32_t L = version == 1 ? 1 : get_u32(buf + 8);
    uint32_t D = get_u32(h), H = get_u32(h + 4), C = get_u32(h + 8), T = get_u32(h + 12),
             n = get_u32(h + 16);
    ck_assert_msg(L >= 1 && L <= PL_MAX_LAYERS, "%s: %u layers", path, (unsigned)L);
    ck_assert_msg(D >= 1 && D <= 256 && H >= 1 && H <= 256 && C >= 2 && C <= 256 &&
                      T >= 1 && T <= 256 && n >= 1 && n <= 256,
                  "%s: implausible sizes D=%u H=%u C=%u T=%u n=%u", path, (unsigned)D,
                  (unsigned)H, (unsigned)C, (unsigned)T, (unsigned)n);
    v->cfg.input = (int)D;
    v->cfg.hidden = (int)H;
    v->cfg.classes = (int)C;
    v->cfg.layers = (int)L;
    v->T = (int)T;
    v->n = (int)n;
    v->np = pl_param_count(&v->cfg);
    size_t nx = (size_t)n * T * D, nl = (size_t)n * C;
    const size_t nlen = version == 3 ? n : 0;
    size_t want = head + 4 * v->np + 4 * nx + n + 4 * nlen + 8 + 8 * nl + 8 * v->np;
    ck_assert_msg(len == want, "%s: %zu bytes, D=%u H=%u C=%u T=%u n=%u need %zu", path,
                  len, (unsigned)D, (unsigned)H, (unsigned)C, (unsigned)T, (unsigned)n,
                  want);

    const unsigned char *p = buf + head;
    v->params = pl_alloc_floats(v->np);
    v->x = malloc(sizeof(float) * nx);
    v->labels = malloc(n);
    v->logits = malloc(sizeof(double) * nl);
    v->grad = malloc(sizeof(double) * v->np);
    ck_assert(v->params && v->x && v->labels && v->logits && v->grad);
    for (size_t i = 0; i < v->np; i++, p += 4)
        v->params[i] = get_f32(p);
    for (size_t i = 0; i < nx; i++, p += 4)
        v->x[i] = get_f32(p);
    for (size_t i = 0; i < n; i++, p++) {
        v->labels[i] = *p;
        ck_assert_msg(*p < C, "%s: label %u of item %zu is not below C=%u", path,
                      (unsigned)*p, i, (unsigned)C);
    }
    v->lengths = nlen ? malloc(sizeof *v->lengths * n) : NULL;
    for (size_t i = 0; i < nlen; i++, p += 4) {
        v->lengths[i] = (int32_t)get_u32(p);
        ck_assert_msg(v->lengths[i] >= 1 && v->lengths[i] <= (int32_t)T,
                      "%s: length %d of item %zu is not in 1..%u", path, (int)v->lengths[i], i,
                      (unsigned)T);
    }
    v->loss = get_f64(p);
    p += 8;
    for (size_t i = 0; i < nl; i++, p += 8)
        v->logits[i] = get_f64(p);
    for (size_t i = 0; i < v->np; i++, p += 8)
        v->grad[i] = get_f64(p);
    ck_assert(p == buf + len);
    free(buf);
}

static void vectors_free(vectors *v)
{
    pl_free(v->params);
    free(v->x);
    free(v->labels);
    free(v->lengths);
    free(v->logits);
    free(v->grad);
}

/* As fast_path() in check_lstm.c: loss (summed), logits and the gradient of
 * loss / norm from the fast path. */
static double fast_path(pl_gemm_backend be, int threads, const vectors *v, float norm,
                        float *logits, float *grad)
{
    pl_packed *pk = pl_packed_create(&v->cfg, be);
    pl_ws *ws = pl_ws_create(&v->cfg, v->T, v->n, threads, be);
    ck_assert_ptr_nonnull(pk);
    ck_assert_ptr_nonnull(ws);
    pl_packed_update(pk, v->params, 0, 1);
    pl_ws_load_f32_lengths(ws, v->x, v->labels, v->lengths, v->n);
    int correct = -1;
    double loss = pl_lstm_forward(ws, pk, v->params, &correct, logits);
    ck_assert_int_ge(correct, 0);
    ck_assert_int_le(correct, v->n);
    if (grad)
        pl_lstm_backward(ws, pk, v->params, norm, grad);
    pl_ws_free(ws);
    pl_packed_free(pk);
    return loss;
}

/* every kernel set: tu_sets */

START_TEST(test_matches_pytorch)
{
    vectors v;
    vectors_read(&v, FILES[_i]);
    const size_t nl = (size_t)v.n * v.cfg.classes;
    float *logits = malloc(sizeof(float) * nl);
    float *grad = pl_alloc_floats(v.np);
    ck_assert(logits && grad);
    pl_group g[PL_MAX_GROUPS];
    const int ng = pl_param_groups(&v.cfg, g);
    int ran = 0;
    for (int b = 0; b < tu_nsets; b++) {
        if (!tu_set_runs(tu_sets[b], "the comparison with PyTorch"))
            continue;
        const char *name = pl_gemm_name(tu_sets[b]);
        for (int threads = 1; threads <= 2; threads++) {
            memset(logits, 0xff, sizeof(float) * nl); /* NaN: all must be written */
            memset(grad, 0xff, sizeof(float) * v.np);
            double loss = fast_path(tu_sets[b], threads, &v, (float)v.n, logits, grad) / v.n;
            double worst = 0;
            for (size_t i = 0; i < nl; i++)
                worst = isnan(logits[i]) ? INFINITY
                                         : fmax(worst, fabs(logits[i] - v.logits[i]));
            printf("torch %s %-6s x%d: largest logit difference %.2e, loss %.10f vs %.10f "
                   "(relative %.2e)\n",
                   FILES[_i], name, threads, worst, loss, v.loss, fabs(loss - v.loss) / v.loss);
            ck_assert_msg(worst < 2e-5, "%s: logits differ from PyTorch's by %g", name, worst);
            ck_assert_msg(fabs(loss - v.loss) < 1e-5 * v.loss,
                          "%s: loss %.10f, PyTorch %.10f", name, loss, v.loss);
            for (int k = 0; k < ng; k++) {
                double diff = 0, big = 0;
                for (size_t i = g[k].offset; i < g[k].offset + g[k].size; i++) {
                    diff = isnan(grad[i]) ? INFINITY : fmax(diff, fabs(grad[i] - v.grad[i]));
                    big = fmax(big, fabs(v.grad[i]));
                }
                double rel = big > 0 ? diff / big : diff;
                printf("torch %-6s x%d %-6s: largest gradient difference %.2e "
                       "(%.2e of the largest, %.2e)\n",
                       name, threads, g[k].name, diff, rel, big);
                ck_assert_msg(big > 1e-4, "%s: the PyTorch gradient is trivially small",
                              g[k].name);
                ck_assert_msg(rel < 2e-5, "%s %s: gradient differs from PyTorch's by %g "
                              "(%g relative)", name, g[k].name, diff, rel);
            }
            ran++;
        }
    }
    ck_assert_int_gt(ran, 0);
    free(logits);
    pl_free(grad);
    vectors_free(&v);
}
END_TEST

Suite *torch_suite(void)
{
    Suite *s = suite_create("torch");
    TCase *tc = tcase_create("vectors");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_matches_pytorch, 0, (int)(sizeof FILES / sizeof *FILES));
    suite_add_tcase(s, tc);
    return s;
}
