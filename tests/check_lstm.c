/* The model: the fast forward/backward (every kernel set) against the
 * double-precision reference, and gradients against central finite
 * differences. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* A small model that exercises padding (H = 20 -> 32 internal units, two
 * gate panels) and several row tiles (n = 7). */
static const pl_config CFG = {5, 20, 4, 1};
/* One, two and three stacked layers; the last also has more threads than
 * gate panels (H = 40: three panels) in the backward test. */
static const pl_config CFGS[] = {{5, 20, 4, 1}, {5, 20, 4, 2}, {3, 40, 3, 3}};
#define NCFGS ((int)(sizeof CFGS / sizeof *CFGS))
enum { T_ = 6, N_ = 7 };

typedef struct {
    float *params, *x;
    uint8_t labels[16];
    size_t np;
} fixture;

static void fixture_make(fixture *f, const pl_config *cfg, int n, int T, uint64_t seed)
{
    f->np = pl_param_count(cfg);
    f->params = pl_alloc_floats(f->np);
    f->x = malloc(sizeof(float) * (size_t)n * T * cfg->input);
    pl_model_init(cfg, f->params, PL_INIT_DEFAULT, seed);
    /* perturb every parameter so no gradient is trivially zero */
    float *noise = malloc(sizeof(float) * f->np);
    tu_fill(noise, f->np, 0.3f, seed + 1);
    for (size_t i = 0; i < f->np; i++)
        f->params[i] += noise[i];
    free(noise);
    tu_fill(f->x, (size_t)n * T * cfg->input, 1.0f, seed + 2);
    for (int i = 0; i < (int)n && i < 16; i++)
        f->labels[i] = (uint8_t)(i % cfg->classes);
}

static void fixture_free(fixture *f)
{
    pl_free(f->params);
    free(f->x);
}

static double fast_path_len(pl_gemm_backend be, int threads, const pl_config *cfg,
                            const fixture *f, const int32_t *lengths, int n, int T, float norm,
                            float *logits, float *grad, float drop, uint64_t key);

/* Loss (summed), logits and gradient (of loss / norm) from the fast path. */
static double fast_path(pl_gemm_backend be, int threads, const pl_config *cfg,
                        const fixture *f, int n, int T, float norm, float *logits,
                        float *grad)
{
    return fast_path_len(be, threads, cfg, f, NULL, n, T, norm, logits, grad, 0, 0);
}

/* The same with dropout p between layers, masks of key. */
static double fast_path_drop(pl_gemm_backend be, int threads, const pl_config *cfg,
                             const fixture *f, int n, int T, float norm, float *logits,
                             float *grad, float drop, uint64_t key)
{
    return fast_path_len(be, threads, cfg, f, NULL, n, T, norm, logits, grad, drop, key);
}

/* The operands of the fast path's gate products (fp32 unless a test says). */
static pl_precision fast_precision = PL_PRECISION_FP32;

/* The same with each row's length (NULL: T). */
static double fast_path_len(pl_gemm_backend be, int threads, const pl_config *cfg,
                            const fixture *f, const int32_t *lengths, int n, int T, float norm,
                            float *logits, float *grad, float drop, uint64_t key)
{
    pl_packed *pk = pl_packed_create(cfg, be);
    pl_ws *ws = pl_ws_create(cfg, T, n, threads, be);
    ck_assert_ptr_nonnull(pk);
    ck_assert_ptr_nonnull(ws);
    pl_packed_update(pk, f->params, 0, 1);
    ck_assert_int_eq(pl_packed_set_precision(pk, fast_precision, NULL), PL_OK);
    pl_packed_pair(pk, 0, 1);
    pl_ws_load_f32_lengths(ws, f->x, f->labels, lengths, n);
    pl_ws_set_dropout(ws, drop, key);
    pl_ws_set_precision(ws, fast_precision);
    int correct = -1;
    double loss = pl_lstm_forward(ws, pk, f->params, &correct, logits);
    ck_assert_int_ge(correct, 0);
    ck_assert_int_le(correct, n);
    if (grad)
        pl_lstm_backward(ws, pk, f->params, norm, grad);
    pl_ws_free(ws);
    pl_packed_free(pk);
    return loss;
}

/* every kernel set: tu_sets */

START_TEST(test_forward_matches_reference)
{
    const pl_config *cfg = &CFGS[_i];
    fixture f;
    fixture_make(&f, cfg, N_, T_, 11);
    double ref_logits[N_ * 4];
    const int C = cfg->classes;
    double ref_loss = pl_ref_loss_grad(cfg, f.params, f.x, f.labels, N_, T_, 1.0, NULL,
                                       ref_logits);
    ck_assert(ref_loss > 0.1);
    for (int b = 0; b < tu_nsets; b++) {
        if (!tu_set_runs(tu_sets[b], _i == 0 ? "the forward pass against the reference"
                                             : NULL))
            continue;
        float logits[N_ * 4];
        (void)C;
        double loss = fast_path(tu_sets[b], 1, cfg, &f, N_, T_, 1.0f, logits, NULL);
        double worst = 0;
        for (int i = 0; i < N_ * C; i++)
            worst = fmax(worst, tu_absdiff(logits[i], ref_logits[i]));
        printf("forward %-6s: largest logit difference %.2e, loss %.8f vs %.8f\n",
               pl_gemm_name(tu_sets[b]), worst, loss, ref_loss);
        ck_assert_msg(worst < 2e-5, "%s: logits differ by %g", pl_gemm_name(tu_sets[b]), worst);
        ck_assert_msg(fabs(loss - ref_loss) < 1e-5 * ref_loss, "%s: loss %.9f vs %.9f",
                      pl_gemm_name(tu_sets[b]), loss, ref_loss);
    }
    fixture_free(&f);
}
END_TEST

/* Largest |a - r| over a group (infinite with a NaN), relative to the
 * group's largest |r|. */
static double group_error(const float *a, const double *r, size_t n, double *scale)
{
    double worst = 0, big = 0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, tu_absdiff(a[i], r[i]));
        big = fmax(big, fabs(r[i]));
    }
    *scale = big;
    return big > 0 ? worst / big : worst;
}

/* Every parameter group of a fast gradient within 2e-5 of the double
 * reference (relative to the group's largest entry), none trivially small. */
static void assert_groups_near(const pl_config *cfg, const float *grad, const double *ref,
                               pl_gemm_backend be, int threads)
{
    pl_group g[PL_MAX_GROUPS];
    for (int k = 0, ng = pl_param_groups(cfg, g); k < ng; k++) {
        double scale;
        double e = group_error(grad + g[k].offset, ref + g[k].offset, g[k].size, &scale);
        ck_assert_msg(scale > 1e-4, "%s gradient is trivially small", g[k].name);
        ck_assert_msg(e < 2e-5, "%s x%d %s: relative difference %g", pl_gemm_name(be), threads,
                      g[k].name, e);
    }
}

/* bf16 operands: the gradient within bf16's error of the double
 * reference (each operand within 2^-9, sums over a handful of steps: 3% of
 * the group's largest entry), and not within fp32's (bf16 is in use); the
 * software path (naive) and the set auto picks (AVX512_BF16 where the CPU
 * has it) alike. */
START_TEST(test_bf16_backward_near_reference)
{
    const pl_config *cfg = &CFGS[_i];
    fixture f;
    fixture_make(&f, cfg, N_, T_, 14);
    double *ref = malloc(sizeof(double) * f.np);
    float *grad = pl_alloc_floats(f.np);
    pl_ref_loss_grad(cfg, f.params, f.x, f.labels, N_, T_, (double)N_, ref, NULL);
    pl_group g[PL_MAX_GROUPS];
    const int ng = pl_param_groups(cfg, g);
    const pl_gemm_backend sets[] = {PL_GEMM_NAIVE, pl_gemm_resolve(PL_GEMM_AUTO)};
    fast_precision = PL_PRECISION_BF16;
    for (int b = 0; b < 2; b++) {
        memset(grad, 0xff, sizeof(float) * f.np);
        fast_path(sets[b], _i == 2 ? 3 : 1, cfg, &f, N_, T_, (float)N_, NULL, grad);
        double most = 0;
        for (int k = 0; k < ng; k++) {
            double scale;
            double e = group_error(grad + g[k].offset, ref + g[k].offset, g[k].size, &scale);
            printf("backward bf16 %-6s %-6s: largest relative difference %.2e\n",
                   pl_gemm_name(sets[b]), g[k].name, e);
            ck_assert_msg(e < 3e-2, "%s %s: relative difference %g", pl_gemm_name(sets[b]),
                          g[k].name, e);
            most = fmax(most, e);
        }
        ck_assert_msg(most > 1e-4, "%s: within %g of the reference: is bf16 in use?",
                      pl_gemm_name(sets[b]), most);
    }
    fast_precision = PL_PRECISION_FP32;
    free(ref);
    pl_free(grad);
    fixture_free(&f);
}
END_TEST

START_TEST(test_backward_matches_reference)
{
    const pl_config *cfg = &CFGS[_i];
    fixture f;
    fixture_make(&f, cfg, N_, T_, 12);
    double *ref = malloc(sizeof(double) * f.np);
    float *grad = pl_alloc_floats(f.np);
    pl_ref_loss_grad(cfg, f.params, f.x, f.labels, N_, T_, (double)N_, ref, NULL);
    pl_group g[PL_MAX_GROUPS];
    const int ng = pl_param_groups(cfg, g);
    for (int b = 0; b < tu_nsets; b++) {
        if (!tu_set_runs(tu_sets[b], _i == 0 ? "the backward pass against the reference"
                                             : NULL))
            continue;
        memset(grad, 0xff, sizeof(float) * f.np); /* NaN: every entry must be written */
        fast_path(tu_sets[b], _i == 2 ? 4 : 1, cfg, &f, N_, T_, (float)N_, NULL, grad);
        for (int k = 0; k < ng; k++) {
            double scale;
            double e = group_error(grad + g[k].offset, ref + g[k].offset, g[k].size, &scale);
            printf("backward %-6s %-6s: largest relative difference %.2e (scale %.2e)\n",
                   pl_gemm_name(tu_sets[b]), g[k].name, e, scale);
            ck_assert_msg(scale > 1e-4, "%s gradient is trivially small", g[k].name);
            ck_assert_msg(e < 2e-5, "%s %s: relative difference %g", pl_gemm_name(tu_sets[b]),
                          g[k].name, e);
        }
    }
    free(ref);
    pl_free(grad);
    fixture_free(&f);
}
END_TEST

/* Central differences of the double-precision reference loss, against the
 * fast path's float gradient: for 12 parameters of every group,
 * |analytic - numeric| <= 2e-4 * max(1e-2, |numeric|). The perturbation
 * is the float difference actually applied (about 2e-3). */
START_TEST(test_gradient_finite_differences)
{
    const pl_config *cfg = &CFGS[_i];
    fixture f;
    fixture_make(&f, cfg, N_, T_, 13);
    float *grad = pl_alloc_floats(f.np);
    fast_path(pl_gemm_resolve(PL_GEMM_AUTO), 1, cfg, &f, N_, T_, (float)N_, NULL, grad);
    pl_group g[PL_MAX_GROUPS];
    const int ng = pl_param_groups(cfg, g);
    pl_rng r;
    pl_rng_seed(&r, 99);
    double worst_all = 0;
    for (int k = 0; k < ng; k++) {
        double worst = 0;
        for (int s = 0; s < 12; s++) {
            size_t i = g[k].offset + (size_t)pl_rng_below(&r, g[k].size);
            float saved = f.params[i];
            float up = saved + 1e-3f, down = saved - 1e-3f;
            f.params[i] = up;
            double lu = pl_ref_loss_grad(cfg, f.params, f.x, f.labels, N_, T_, N_, NULL, NULL);
            f.params[i] = down;
            double ld = pl_ref_loss_grad(cfg, f.params, f.x, f.labels, N_, T_, N_, NULL, NULL);
            f.params[i] = saved;
            double numeric = (lu - ld) / ((double)up - (double)down);
            double err = fabs(grad[i] - numeric) / fmax(1e-2, fabs(numeric));
            worst = fmax(worst, err);
            ck_assert_msg(err <= 2e-4, "%s[%zu]: analytic %.8g, numeric %.8g", g[k].name,
                          i - g[k].offset, grad[i], numeric);
        }
        printf("finite differences %-6s: largest relative error %.2e\n", g[k].name, worst);
        worst_all = fmax(worst_all, worst);
    }
    ck_assert(worst_all > 0); /* the comparison really ran */
    pl_free(grad);
    fixture_free(&f);
}
END_TEST

/* The reference's own backward against its finite differences, tight. */
START_TEST(test_reference_gradient_finite_differences)
{
    const pl_config *cfg = &CFGS[_i];
    fixture f;
    fixture_make(&f, cfg, N_, T_, 14);
    double *ref = malloc(sizeof(double) * f.np);
    pl_ref_loss_grad(cfg, f.params, f.x, f.labels, N_, T_, N_, ref, NULL);
    pl_group g[PL_MAX_GROUPS];
    const int ng = pl_param_groups(cfg, g);
    for (int k = 0; k < ng; k++) {
        size_t i = g[k].offset + g[k].size / 2;
        float saved = f.params[i], up = saved + 1e-3f, down = saved - 1e-3f;
        f.params[i] = up;
        double lu = pl_ref_loss_grad(cfg, f.params, f.x, f.labels, N_, T_, N_, NULL, NULL);
        f.params[i] = down;
        double ld = pl_ref_loss_grad(cfg, f.params, f.x, f.labels, N_, T_, N_, NULL, NULL);
        f.params[i] = saved;
        double numeric = (lu - ld) / ((double)up - (double)down);
        ck_assert_msg(fabs(ref[i] - numeric) <= 1e-5 * fmax(1e-2, fabs(numeric)),
                      "%s: reference %.10g, numeric %.10g", g[k].name, ref[i], numeric);
    }
    free(ref);
    fixture_free(&f);
}
END_TEST

/* Padded hidden units must not leak: H = 16 (no padding) and H = 20 give
 * the reference's loss; so does the MNIST shape (D = 28, H = 128). */
START_TEST(test_shapes_match_reference)
{
    const pl_config cfgs[] = {{3, 16, 3, 1}, {7, 33, 5, 1}, {28, 128, 10, 1}};
    for (size_t c = 0; c < sizeof cfgs / sizeof *cfgs; c++) {
        fixture f;
        int n = 5, T = c == 2 ? 28 : 4;
        fixture_make(&f, &cfgs[c], n, T, 20 + c);
        double ref = pl_ref_loss_grad(&cfgs[c], f.params, f.x, f.labels, n, T, 1.0, NULL, NULL);
        double fast = fast_path(pl_gemm_resolve(PL_GEMM_AUTO), 2, &cfgs[c], &f, n, T, 1.0f,
                                NULL, NULL);
        ck_assert_msg(fabs(fast - ref) < 1e-4 * fabs(ref), "config %zu: %.8f vs %.8f", c, fast,
                      ref);
        fixture_free(&f);
    }
}
END_TEST

/* The model's documented shapes and step FLOP counts. */
START_TEST(test_param_layout_and_flops)
{
    const pl_config mnist = {28, 128, 10, 1};
    ck_assert_uint_eq(pl_param_count(&mnist), 28 * 128 + 128 + 256 * 512 + 512 + 1280 + 10);
    pl_group g[PL_MAX_GROUPS];
    ck_assert_int_eq(pl_param_groups(&mnist, g), 6);
    ck_assert_str_eq(g[2].name, "w_lstm");
    ck_assert_uint_eq(g[2].offset, 28 * 128 + 128);
    ck_assert_uint_eq(g[2].size, 256 * 512);
    /* 2.24 GFLOP of matrix products in the standard computation of a
     * batch-100 step; the folded one executes 1.27 */
    ck_assert_double_eq_tol(pl_step_flops_model(&mnist, 28, 100) / 1e9, 2.2429, 1e-3);
    ck_assert_double_eq_tol(pl_step_flops_executed(&mnist, 28, 100) / 1e9, 1.2656, 1e-3);
    float *p = pl_alloc_floats(pl_param_count(&mnist));
    pl_tensors t;
    pl_tensors_bind(&mnist, p, &t);
    pl_model_init(&mnist, p, PL_INIT_DEFAULT, 5);
    ck_assert_float_eq(t.b[0][128], 1.0f);   /* forget gate bias */
    ck_assert_float_eq(t.b[0][255], 1.0f);
    ck_assert_float_eq(t.b[0][127], 0.0f);   /* input gate bias */
    ck_assert_float_eq(t.b[0][256], 0.0f);   /* cell candidate bias */
    /* orthogonal recurrent weights: rows of W_h have unit norm and are
     * orthogonal */
    const float *wh = t.w[0] + 128 * 512;
    double n0 = 0, d01 = 0;
    for (int j = 0; j < 512; j++) {
        n0 += (double)wh[j] * wh[j];
        d01 += (double)wh[j] * wh[512 + j];
    }
    ck_assert_double_eq_tol(n0, 1.0, 1e-5);
    ck_assert_double_eq_tol(d01, 0.0, 1e-5);
    pl_model_init(&mnist, p, PL_INIT_TUTORIAL, 5);
    ck_assert_float_eq(t.b_in[0], 0.1f);
    ck_assert_float_eq(t.b_out[9], 0.1f);
    ck_assert_float_eq(t.b[0][128], 1.0f);
    pl_free(p);
    /* two layers: 4 + 2 x 2 groups, the second layer's named _l1, its own
     * forget bias */
    const pl_config two = {28, 128, 10, 2};
    ck_assert_int_eq(pl_param_groups(&two, g), 8);
    ck_assert_str_eq(g[4].name, "w_lstm_l1");
    ck_assert_str_eq(g[5].name, "b_lstm_l1");
    ck_assert_uint_eq(g[4].offset, g[3].offset + 512);
    ck_assert_uint_eq(pl_param_count(&two), pl_param_count(&mnist) + 256 * 512 + 512);
    float *q = pl_alloc_floats(pl_param_count(&two));
    pl_model_init(&two, q, PL_INIT_DEFAULT, 5);
    pl_tensors_bind(&two, q, &t);
    ck_assert_float_eq(t.b[1][128], 1.0f);
    ck_assert_float_eq(t.b[1][127], 0.0f);
    pl_free(q);
}
END_TEST

/* Subnormal inputs are read as zero and subnormal products flushed (they
 * cost a microcode assist each on x86): with every pixel at 1e-39 the input
 * weights' gradient is exactly zero on every backend, where the exact
 * (double) gradient is a tiny non-zero number. */
START_TEST(test_subnormals_flushed)
{
    fixture f;
    fixture_make(&f, &CFG, N_, T_, 31);
    for (size_t i = 0; i < (size_t)N_ * T_ * CFG.input; i++)
        f.x[i] = 1e-39f;
    ck_assert(f.x[0] > 0 && f.x[0] < 1.17549435e-38f); /* subnormal indeed */
    double *ref = malloc(sizeof(double) * f.np);
    pl_ref_loss_grad(&CFG, f.params, f.x, f.labels, N_, T_, 1.0, ref, NULL);
    double ref_max = 0;
    for (int i = 0; i < CFG.input * CFG.hidden; i++)
        ref_max = fmax(ref_max, fabs(ref[i]));
    ck_assert(ref_max > 1e-45 && ref_max < 1e-30);
    float *grad = pl_alloc_floats(f.np);
    for (int b = 0; b < tu_nsets; b++) {
        if (!tu_set_runs(tu_sets[b], "flushing subnormals"))
            continue;
        fast_path(tu_sets[b], 2, &CFG, &f, N_, T_, 1.0f, NULL, grad);
        int nonzero = 0;
        for (int i = 0; i < CFG.input * CFG.hidden; i++)
            nonzero += grad[i] != 0.0f;
        ck_assert_msg(nonzero == 0, "%s: %d subnormal weight gradients not flushed",
                      pl_gemm_name(tu_sets[b]), nonzero);
        pl_tensors tg;
        pl_tensors_bind(&CFG, grad, &tg);
        ck_assert(tg.b[0][0] != 0.0f); /* the rest of the gradient is there */
    }
    /* the mode is restored on the calling thread afterwards */
    volatile float tiny = 1e-39f, half = 0.5f;
    ck_assert(tiny * half > 0.0f);
    pl_free(grad);
    free(ref);
    fixture_free(&f);
}
END_TEST

/* Dropout between layers: the fast path (every backend, 1 and 3 threads)
 * against the double reference with the same masks; the reference's
 * gradient against its own finite differences; a quarter of the units
 * really dropped, and the masks change with the key. */
START_TEST(test_dropout_matches_reference)
{
    const pl_config cfg = {5, 40, 4, 3};
    const float p = 0.25f;
    const uint64_t key = 0x1234567;
    fixture f;
    fixture_make(&f, &cfg, N_, T_, 41);
    double *ref = malloc(sizeof(double) * f.np), ref_logits[N_ * 4];
    double rl = pl_ref_loss_grad_dropout(&cfg, f.params, f.x, f.labels, N_, T_, N_, ref,
                                         ref_logits, p, key);
    double plain = pl_ref_loss_grad(&cfg, f.params, f.x, f.labels, N_, T_, N_, NULL, NULL);
    ck_assert_msg(fabs(rl - plain) > 1e-4, "dropout changed nothing: %g vs %g", rl, plain);
    long dropped = 0, all = 0;
    for (int t = 0; t < 50; t++)
        for (int u = 0; u < 40; u++, all++)
            dropped += pl_dropout_hash(key, 0, t, 3, u) < pl_dropout_cut(p);
    printf("dropout: %ld of %ld units dropped at p = %.2f\n", dropped, all, (double)p);
    ck_assert(dropped > all / 4 - all / 20 && dropped < all / 4 + all / 20);
    ck_assert(pl_dropout_hash(key, 0, 5, 3, 7) != pl_dropout_hash(key + 1, 0, 5, 3, 7));
    float *grad = pl_alloc_floats(f.np), logits[N_ * 4];
    pl_group g[PL_MAX_GROUPS];
    const int ng = pl_param_groups(&cfg, g);
    for (int b = 0; b < tu_nsets; b++) {
        if (!tu_set_runs(tu_sets[b], "dropout against the reference"))
            continue;
        for (int threads = 1; threads <= 3; threads += 2) {
            double loss = fast_path_drop(tu_sets[b], threads, &cfg, &f, N_, T_, (float)N_,
                                         logits, grad, p, key) / N_;
            ck_assert_msg(fabs(loss - rl) < 1e-5 * rl, "%s x%d: loss %.8f vs %.8f",
                          pl_gemm_name(tu_sets[b]), threads, loss, rl);
            for (int k = 0; k < ng; k++) {
                double scale;
                double e = group_error(grad + g[k].offset, ref + g[k].offset, g[k].size, &scale);
                ck_assert_msg(e < 2e-5, "%s x%d %s: relative difference %g",
                              pl_gemm_name(tu_sets[b]), threads, g[k].name, e);
            }
        }
    }
    /* the reference with dropout against its finite differences */
    for (int k = 0; k < ng; k++) {
        size_t i = g[k].offset + g[k].size / 3;
        float saved = f.params[i], up = saved + 1e-3f, down = saved - 1e-3f;
        f.params[i] = up;
        double lu = pl_ref_loss_grad_dropout(&cfg, f.params, f.x, f.labels, N_, T_, N_, NULL,
                                             NULL, p, key);
        f.params[i] = down;
        double ld = pl_ref_loss_grad_dropout(&cfg, f.params, f.x, f.labels, N_, T_, N_, NULL,
                                             NULL, p, key);
        f.params[i] = saved;
        double numeric = (lu - ld) / ((double)up - (double)down);
        ck_assert_msg(fabs(ref[i] - numeric) <= 1e-5 * fmax(1e-2, fabs(numeric)),
                      "%s: reference %.10g, numeric %.10g", g[k].name, ref[i], numeric);
    }
    pl_free(grad);
    free(ref);
    fixture_free(&f);
}
END_TEST

/* Variable lengths (packed sequences): rows of lengths 1..T in no order,
 * ties included, every step past a row's length NaN (never read): loss,
 * logits (in the caller's order) and gradient against the reference, each
 * row run alone over its own steps; every kernel set, 1 and 3 threads,
 * one to three layers, and dropout on the three. */
START_TEST(test_lengths_match_reference)
{
    static const int32_t len[] = {3, 6, 1, 6, 2, 5, 6, 4, 2};
    enum { NL = 9 };
    const pl_config *cfg = &CFGS[_i];
    const float p = _i == 2 ? 0.25f : 0.0f;
    const uint64_t key = 77;
    fixture f;
    fixture_make(&f, cfg, NL, T_, 51);
    for (int s = 0; s < NL; s++)
        for (size_t k = (size_t)len[s] * cfg->input; k < (size_t)T_ * cfg->input; k++)
            f.x[(size_t)s * T_ * cfg->input + k] = NAN;
    double *ref = malloc(sizeof(double) * f.np), ref_logits[NL * 4];
    double rl = pl_ref_loss_grad_lengths(cfg, f.params, f.x, f.labels, len, NL, T_, NL, ref,
                                         ref_logits, p, key);
    ck_assert(isfinite(rl) && rl > 0.1);
    float *grad = pl_alloc_floats(f.np), logits[NL * 4];
    for (int b = 0; b < tu_nsets; b++) {
        if (!tu_set_runs(tu_sets[b], _i == 0 ? "variable lengths against the reference" : NULL))
            continue;
        for (int threads = 1; threads <= 3; threads += 2) {
            memset(grad, 0xff, sizeof(float) * f.np);
            double loss = fast_path_len(tu_sets[b], threads, cfg, &f, len, NL, T_, (float)NL,
                                        logits, grad, p, key) / NL;
            ck_assert_msg(fabs(loss - rl) < 1e-5 * rl, "%s x%d: loss %.8f vs %.8f",
                          pl_gemm_name(tu_sets[b]), threads, loss, rl);
            for (int i = 0; i < NL * cfg->classes; i++)
                ck_assert_msg(fabs(logits[i] - ref_logits[i]) < 2e-5, "%s: logit %d %g vs %g",
                              pl_gemm_name(tu_sets[b]), i, logits[i], ref_logits[i]);
            assert_groups_near(cfg, grad, ref, tu_sets[b], threads);
        }
    }
    pl_free(grad);
    free(ref);
    fixture_free(&f);
}
END_TEST

/* The weight gradient after the time loop in several GEMM calls
 * (pl_wgrad_rows rows each, C carrying the sum): 15 rows x 16 steps = 240
 * rows, two calls of 224 and 16 with a 112-row chunk, one of 256 with 128;
 * each row counted once, against the reference, every set, 1 and 2
 * threads. */
START_TEST(test_weight_gradient_in_calls)
{
    const pl_config cfg = {130, 128, 4, 1}; /* K x Hp above 32768: after the loop */
    const int n = 15, T = 16;
    ck_assert(!pl_wgrad_in_loop(cfg.input + 1 + cfg.hidden, cfg.hidden));
    fixture f;
    fixture_make(&f, &cfg, n, T, 61);
    double *ref = malloc(sizeof(double) * f.np);
    float *grad = pl_alloc_floats(f.np);
    pl_ref_loss_grad(&cfg, f.params, f.x, f.labels, n, T, (double)n, ref, NULL);
    for (int b = 0; b < tu_nsets; b++) {
        if (!tu_set_runs(tu_sets[b], "the weight gradient in several calls"))
            continue;
        for (int threads = 1; threads <= 2; threads++) {
            memset(grad, 0xff, sizeof(float) * f.np);
            fast_path(tu_sets[b], threads, &cfg, &f, n, T, (float)n, NULL, grad);
            assert_groups_near(&cfg, grad, ref, tu_sets[b], threads);
        }
    }
    free(ref);
    pl_free(grad);
    fixture_free(&f);
}
END_TEST

/* A model whose weight gradient is summed after the time loop (D = 130,
 * H = 128: wgrad_in_loop is false; a wider H would start OpenBLAS's own
 * threads in the initialisation, which ThreadSanitizer cannot see), on a
 * workspace that first ran full-length rows
 * of NaN (NaN left in every buffer): the rows that ended must still add
 * nothing. */
START_TEST(test_lengths_after_full_rows)
{
    static const int32_t len[] = {2, 6, 1, 5, 6, 3};
    const pl_config cfg = {130, 128, 4, 2}; /* K x Hp above 32768 in both layers */
    const pl_gemm_backend be = pl_gemm_resolve(PL_GEMM_AUTO);
    fixture f;
    fixture_make(&f, &cfg, 6, T_, 53);
    for (int s = 0; s < 6; s++) /* never read */
        for (size_t k = (size_t)len[s] * cfg.input; k < (size_t)T_ * cfg.input; k++)
            f.x[(size_t)s * T_ * cfg.input + k] = NAN;
    const size_t nx = (size_t)6 * T_ * cfg.input;
    float *nan_x = malloc(sizeof(float) * nx); /* the first pass leaves NaN everywhere */
    for (size_t k = 0; k < nx; k++)
        nan_x[k] = NAN;
    double *ref = malloc(sizeof(double) * f.np);
    double rl = pl_ref_loss_grad_lengths(&cfg, f.params, f.x, f.labels, len, 6, T_, 6, ref,
                                         NULL, 0, 0);
    pl_packed *pk = pl_packed_create(&cfg, be);
    pl_ws *ws = pl_ws_create(&cfg, T_, 6, 2, be);
    float *grad = pl_alloc_floats(f.np);
    pl_packed_update(pk, f.params, 0, 1);
    pl_ws_load_f32(ws, nan_x, f.labels, 6);
    pl_lstm_forward(ws, pk, f.params, NULL, NULL);
    pl_lstm_backward(ws, pk, f.params, 6, grad);
    pl_ws_load_f32_lengths(ws, f.x, f.labels, len, 6);
    double loss = pl_lstm_forward(ws, pk, f.params, NULL, NULL) / 6;
    pl_lstm_backward(ws, pk, f.params, 6, grad);
    ck_assert_msg(fabs(loss - rl) < 1e-5 * rl, "loss %.8f vs %.8f", loss, rl);
    pl_group g[PL_MAX_GROUPS];
    for (int k = 0, ng = pl_param_groups(&cfg, g); k < ng; k++) {
        double scale, e = group_error(grad + g[k].offset, ref + g[k].offset, g[k].size, &scale);
        ck_assert_msg(e < 2e-5, "%s: relative difference %g", g[k].name, e);
    }
    pl_ws_free(ws);
    pl_packed_free(pk);
    pl_free(grad);
    free(ref);
    free(nan_x);
    fixture_free(&f);
}
END_TEST

/* The reference with lengths is each row alone: the sum over rows of the
 * one-row reference over len[s] steps, loss and gradient to 1e-12. */
START_TEST(test_reference_lengths_are_rows_alone)
{
    static const int32_t len[] = {2, 6, 1, 4};
    const pl_config *cfg = &CFGS[1];
    fixture f;
    fixture_make(&f, cfg, 4, T_, 52);
    double *all = malloc(sizeof(double) * f.np), *one = malloc(sizeof(double) * f.np);
    double *sum = calloc(f.np, sizeof(double));
    double la = pl_ref_loss_grad_lengths(cfg, f.params, f.x, f.labels, len, 4, T_, 1.0, all,
                                         NULL, 0, 0);
    double ls = 0;
    for (int s = 0; s < 4; s++) {
        ls += pl_ref_loss_grad(cfg, f.params, f.x + (size_t)s * T_ * cfg->input, f.labels + s,
                               1, len[s], 1.0, one, NULL);
        for (size_t i = 0; i < f.np; i++)
            sum[i] += one[i];
    }
    double full = pl_ref_loss_grad(cfg, f.params, f.x, f.labels, 4, T_, 1.0, NULL, NULL);
    ck_assert_msg(fabs(la - full) > 1e-3, "the lengths changed nothing: %g", la);
    ck_assert_msg(fabs(la - ls) < 1e-12 * ls, "%.15g vs %.15g", la, ls);
    for (size_t i = 0; i < f.np; i++)
        ck_assert_msg(fabs(all[i] - sum[i]) < 1e-12 * fmax(1, fabs(sum[i])), "[%zu] %g vs %g", i,
                      all[i], sum[i]);
    free(all);
    free(one);
    free(sum);
    fixture_free(&f);
}
END_TEST

/* The QR orthonormalisation of the initialisation against classical
 * Gram-Schmidt (run twice) on the same random rows: the same rows, signs
 * included, to 1e-12. */
START_TEST(test_orthonormal_rows_match_gram_schmidt)
{
    enum { R = 7, CC = 19 };
    double q[R * CC], gs[R * CC];
    pl_rng r;
    pl_rng_seed(&r, 5);
    for (int i = 0; i < R * CC; i++)
        q[i] = gs[i] = pl_rng_normal(&r);
    ck_assert_int_eq(pl_orthonormalise_rows(q, R, CC), 0);
    for (int i = 0; i < R; i++) {
        double *gi = gs + i * CC;
        for (int pass = 0; pass < 2; pass++)
            for (int j = 0; j < i; j++) {
                double dot = 0;
                for (int k = 0; k < CC; k++)
                    dot += gi[k] * gs[j * CC + k];
                for (int k = 0; k < CC; k++)
                    gi[k] -= dot * gs[j * CC + k];
            }
        double norm = 0;
        for (int k = 0; k < CC; k++)
            norm += gi[k] * gi[k];
        for (int k = 0; k < CC; k++)
            gi[k] /= sqrt(norm);
    }
    double worst = 0;
    for (int i = 0; i < R * CC; i++)
        worst = fmax(worst, tu_absdiff(q[i], gs[i]));
    printf("orthonormal rows: QR against Gram-Schmidt, largest difference %.2e\n", worst);
    ck_assert_msg(worst < 1e-12, "QR and Gram-Schmidt differ by %g", worst);
}
END_TEST

Suite *lstm_suite(void)
{
    Suite *s = suite_create("lstm");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_forward_matches_reference, 0, NCFGS);
    tcase_add_loop_test(tc, test_backward_matches_reference, 0, NCFGS);
    tcase_add_loop_test(tc, test_bf16_backward_near_reference, 0, NCFGS);
    tcase_add_loop_test(tc, test_gradient_finite_differences, 0, NCFGS);
    tcase_add_loop_test(tc, test_reference_gradient_finite_differences, 0, NCFGS);
    tcase_add_test(tc, test_shapes_match_reference);
    tcase_add_test(tc, test_param_layout_and_flops);
    tcase_add_test(tc, test_subnormals_flushed);
    tcase_add_test(tc, test_orthonormal_rows_match_gram_schmidt);
    tcase_add_test(tc, test_dropout_matches_reference);
    tcase_add_loop_test(tc, test_lengths_match_reference, 0, NCFGS);
    tcase_add_test(tc, test_reference_lengths_are_rows_alone);
    tcase_add_test(tc, test_lengths_after_full_rows);
    tcase_add_test(tc, test_weight_gradient_in_calls);
    suite_add_tcase(s, tc);
    return s;
}
