/* Fast kernels against their plain-loop references, for every kernel set
 * this CPU runs (the others are reported as skips): every GEMM against
 * pl_gemm_naive over the operand shapes the model uses (and edge cases),
 * the vector LSTM cells against the libm one, the 16 x 16 transposes
 * against the definition, Adam in check_optim.c; and which set auto picks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "testutil.h"

typedef struct {
    const char *what;
    int M, N, nb, kb;
    int trans; /* A stored transposed: a_rs = 1 */
    int accumulate;
} gemm_case;

static const gemm_case CASES[] = {
    {"forward gates, 100 rows", 100, 64, 1, 157, 0, 0},
    {"forward gates, 50 rows", 50, 64, 1, 157, 0, 0},
    {"one row", 1, 64, 1, 9, 0, 0},
    {"7 rows, 1 vector", 7, 16, 1, 33, 0, 0},
    {"13 rows, 3 vectors", 13, 48, 1, 5, 0, 1},
    {"partial vector (N = 37)", 11, 37, 1, 20, 0, 0},
    {"partial second vector (N = 29)", 5, 29, 1, 11, 0, 1},
    {"two column panels + partial", 9, 150, 1, 17, 0, 1},
    {"backward dh: blocks of 64", 50, 64, 8, 64, 0, 0},
    {"backward dh: odd blocks", 21, 32, 5, 64, 0, 1},
    {"weight gradient: A transposed, long K", 157, 64, 1, 2800, 1, 0},
    {"weight gradient: A transposed, short", 6, 64, 1, 3, 1, 1},
    {"K longer than the L1 chunk, several blocks", 17, 64, 3, 400, 0, 0},
};

/* A backend's largest difference from the reference over a product of
 * inner dimension K: float sums of K products of magnitude <= 1 round
 * within about 2e-6 sqrt(K); the test allows 4 times that. */
static void assert_within(pl_gemm_backend be, const char *what, double worst, double K)
{
    double tol = 2e-6 * sqrt(K) * 4;
    printf("gemm %-6s %-52s largest difference %.2e (tolerance %.1e)\n", pl_gemm_name(be),
           what, worst, tol);
    ck_assert_msg(worst <= tol, "%s %s: %g", pl_gemm_name(be), what, worst);
}

START_TEST(test_backends_match_naive)
{
    const gemm_case *g = &CASES[_i];
    size_t K = (size_t)g->nb * g->kb;
    size_t a_bs = (size_t)g->M * g->kb + 3; /* blocks apart, with a gap */
    size_t lda = g->trans ? (size_t)g->M + 2 : (size_t)g->kb + 1;
    size_t ldb = (size_t)g->N + 5, ldc = (size_t)g->N + 3;
    size_t b_bs = (size_t)g->kb * ldb + 7;
    if (g->trans)
        a_bs = (size_t)g->kb * lda + 3;
    else
        a_bs = (size_t)g->M * lda + 3;
    float *a = malloc(sizeof(float) * a_bs * g->nb);
    float *b = malloc(sizeof(float) * b_bs * g->nb);
    float *c0 = malloc(sizeof(float) * (size_t)g->M * ldc);
    float *want = malloc(sizeof(float) * (size_t)g->M * ldc);
    float *got = malloc(sizeof(float) * (size_t)g->M * ldc);
    tu_fill(a, a_bs * g->nb, 1.0f, 1 + _i);
    tu_fill(b, b_bs * g->nb, 1.0f, 100 + _i);
    tu_fill(c0, (size_t)g->M * ldc, 1.0f, 200 + _i);
    pl_gemm_op op = {.M = g->M, .N = g->N, .nb = g->nb, .kb = g->kb, .a = a,
                     .a_rs = g->trans ? 1 : lda, .a_cs = g->trans ? lda : 1, .a_bs = a_bs,
                     .b = b, .ldb = ldb, .b_bs = b_bs, .ldc = ldc,
                     .accumulate = g->accumulate};
    memcpy(want, c0, sizeof(float) * (size_t)g->M * ldc);
    op.c = want;
    tu_gemm(PL_GEMM_NAIVE, &op);
    for (int k = 0; k < tu_nsets; k++) {
        const pl_gemm_backend be = tu_sets[k];
        if (be == PL_GEMM_NAIVE || !tu_set_runs(be, _i == 0 ? "the GEMM cases" : NULL))
            continue;
        memcpy(got, c0, sizeof(float) * (size_t)g->M * ldc);
        op.c = got;
        tu_gemm(be, &op);
        double worst = 0;
        for (int i = 0; i < g->M; i++)
            for (size_t j = 0; j < ldc; j++) {
                size_t at = (size_t)i * ldc + j;
                if (j >= (size_t)g->N) /* the padding beyond N is untouched */
                    ck_assert_msg(got[at] == c0[at], "%s %s wrote outside C", pl_gemm_name(be),
                                  g->what);
                else
                    worst = fmax(worst, tu_absdiff(got[at], want[at]));
            }
        assert_within(be, g->what, worst, (double)K);
    }
    free(a);
    free(b);
    free(c0);
    free(want);
    free(got);
}
END_TEST

/* B and C in column panels of 64 with gaps between them (the gate-panel
 * layouts of lstm.c), in both visiting orders of the blocked driver (A small
 * enough for L2: panel by panel; larger: chunk by chunk); the gaps stay
 * untouched. */
typedef struct {
    const char *what;
    int M, N, nb, kb, trans, accumulate;
} panel_case;

static const panel_case PANEL_CASES[] = {
    {"forward: 3 panels, last partial", 13, 150, 1, 200, 0, 0},
    {"weight gradient: A transposed", 40, 192, 1, 300, 1, 1},
    {"recurrent: blocks, large A (chunk order)", 100, 160, 40, 64, 0, 0},
    {"recurrent: blocks, accumulate", 7, 64, 5, 64, 0, 1},
};

START_TEST(test_panelled_operands)
{
    const panel_case *g = &PANEL_CASES[_i];
    const size_t ldb = 64, b_ps = (size_t)g->nb * g->kb * ldb + 80, b_bs = (size_t)g->kb * ldb;
    const size_t ldc = 64, c_ps = (size_t)g->M * ldc + 48;
    const int panels = (g->N + 63) / 64;
    const size_t lda = g->trans ? (size_t)g->M + 1 : (size_t)g->nb * g->kb + 3;
    const size_t a_bs = g->trans ? (size_t)g->kb * lda : (size_t)g->kb;
    const size_t na = g->trans ? (size_t)g->nb * g->kb * lda : (size_t)g->M * lda;
    const size_t nb = (size_t)panels * b_ps, nc = (size_t)panels * c_ps;
    float *a = malloc(sizeof(float) * na), *b = malloc(sizeof(float) * nb);
    float *c0 = malloc(sizeof(float) * nc), *want = malloc(sizeof(float) * nc);
    float *got = malloc(sizeof(float) * nc);
    tu_fill(a, na, 1.0f, 300 + _i);
    tu_fill(b, nb, 1.0f, 310 + _i);
    tu_fill(c0, nc, 1.0f, 320 + _i);
    pl_gemm_op op = {.M = g->M, .N = g->N, .nb = g->nb, .kb = g->kb, .a = a,
                     .a_rs = g->trans ? 1 : lda, .a_cs = g->trans ? lda : 1, .a_bs = a_bs,
                     .b = b, .ldb = ldb, .b_bs = b_bs, .b_ps = b_ps, .ldc = ldc, .c_ps = c_ps,
                     .accumulate = g->accumulate};
    /* the reference, written out: C(i, j) at panel j / 64, column j % 64 */
    memcpy(want, c0, sizeof(float) * nc);
    for (int i = 0; i < g->M; i++)
        for (int j = 0; j < g->N; j++) {
            double acc = g->accumulate ? want[(size_t)(j / 64) * c_ps + (size_t)i * ldc + j % 64] : 0;
            for (int k = 0; k < g->nb * g->kb; k++) {
                int blk = k / g->kb, kk = k % g->kb;
                double av = g->trans ? a[(size_t)blk * a_bs + (size_t)kk * lda + i]
                                     : a[(size_t)i * lda + (size_t)blk * a_bs + kk];
                acc += av * b[(size_t)(j / 64) * b_ps + (size_t)blk * b_bs + (size_t)kk * ldb + j % 64];
            }
            want[(size_t)(j / 64) * c_ps + (size_t)i * ldc + j % 64] = (float)acc;
        }
    for (int k = 0; k < tu_nsets; k++) {
        const pl_gemm_backend be = tu_sets[k];
        if (!tu_set_runs(be, _i == 0 ? "the panelled GEMM cases" : NULL))
            continue;
        memcpy(got, c0, sizeof(float) * nc);
        op.c = got;
        tu_gemm(be, &op);
        double worst = 0;
        for (size_t at = 0; at < nc; at++) {
            size_t p = at / c_ps, off = at % c_ps, j = off % ldc;
            if (off >= (size_t)g->M * ldc || p * 64 + j >= (size_t)g->N)
                ck_assert_msg(got[at] == c0[at], "%s %s wrote outside C at %zu",
                              pl_gemm_name(be), g->what, at);
            else
                worst = fmax(worst, tu_absdiff(got[at], want[at]));
        }
        assert_within(be, g->what, worst, (double)g->nb * g->kb);
    }
    free(a);
    free(b);
    free(c0);
    free(want);
    free(got);
}
END_TEST

/* Threads cut a product's columns at multiples of 16 (64 in a panelled C):
 * each computes its own columns with an op of its own. Every set must give
 * the same bits for a column whatever the op that holds it, or the threads
 * would change the result (OpenBLAS's Haswell and Zen kernels did: a
 * column's value depended on the width of the call). */
typedef struct {
    const char *what;
    int M, N, nb, kb, trans, b_panelled, c_panelled, cut;
} split_case;

static const split_case SPLIT_CASES[] = {
    {"dW_in: 8 rows, 40 columns cut at 16", 8, 40, 1, 64, 0, 0, 0, 16},
    {"dH: 20 rows, 48 columns cut at 32", 20, 48, 3, 64, 0, 1, 0, 32},
    {"dH: 20 rows, 64 columns cut at 16", 20, 64, 2, 64, 0, 1, 0, 16},
    {"fold: 29 rows, 24 columns cut at 16", 29, 24, 1, 40, 0, 0, 0, 16},
    {"gates: panelled C, 3 panels cut at 64", 50, 192, 1, 157, 0, 1, 1, 64},
    {"weight gradient: A transposed, cut at 64", 61, 128, 1, 100, 1, 1, 1, 64},
};

START_TEST(test_column_split_changes_no_bit)
{
    const split_case *g = &SPLIT_CASES[_i];
    const int K = g->nb * g->kb, panels = (g->N + 63) / 64;
    const size_t lda = g->trans ? (size_t)g->M : (size_t)K;
    const size_t ldb = g->b_panelled ? 64 : (size_t)g->N, b_ps = g->b_panelled ? (size_t)K * 64 : 0;
    const size_t ldc = g->c_panelled ? 64 : (size_t)g->N, c_ps = g->c_panelled ? (size_t)g->M * 64 : 0;
    const size_t na = (size_t)g->M * K, nb = (size_t)K * 64 * panels, nc = (size_t)g->M * 64 * panels;
    float *a = malloc(sizeof(float) * na), *b = malloc(sizeof(float) * nb);
    float *whole = calloc(nc, sizeof(float)), *parts = calloc(nc, sizeof(float));
    tu_fill(a, na, 1.0f, 400 + _i);
    tu_fill(b, nb, 1.0f, 410 + _i);
    pl_gemm_op op = {.M = g->M, .nb = g->nb, .kb = g->kb, .a = a, .a_rs = g->trans ? 1 : lda,
                     .a_cs = g->trans ? lda : 1, .a_bs = g->trans ? (size_t)g->kb * lda : (size_t)g->kb,
                     .ldb = ldb, .b_bs = (size_t)g->kb * ldb, .b_ps = b_ps, .ldc = ldc, .c_ps = c_ps};
    for (int k = 0; k < tu_nsets; k++) {
        const pl_gemm_backend be = tu_sets[k];
        if (!tu_set_runs(be, _i == 0 ? "columns split between threads" : NULL))
            continue;
        op.N = g->N, op.b = b, op.c = whole;
        tu_gemm(be, &op);
        for (int j0 = 0; j0 < g->N; j0 += g->cut) { /* column j of a panelled operand: panel j / 64 */
            op.N = g->N - j0 < g->cut ? g->N - j0 : g->cut;
            op.b = b + (b_ps ? (size_t)(j0 / 64) * b_ps + j0 % 64 : (size_t)j0);
            op.c = parts + (c_ps ? (size_t)(j0 / 64) * c_ps + j0 % 64 : (size_t)j0);
            tu_gemm(be, &op);
        }
        size_t differ = 0;
        for (size_t i = 0; i < nc; i++)
            differ += whole[i] != parts[i];
        printf("gemm %-6s %-52s %zu of %zu values differ\n", pl_gemm_name(be), g->what, differ, nc);
        ck_assert_msg(differ == 0, "%s %s: %zu values differ", pl_gemm_name(be), g->what, differ);
    }
    free(a);
    free(b);
    free(whole);
    free(parts);
}
END_TEST

/* The weight gradient runs over all steps' rows in calls of
 * pl_wgrad_rows rows each, C carrying the sum from call to call: for our
 * sets (fp32, and bf16 with calls starting at even rows) the calls' size
 * must not change a bit, so that it can follow the CPU's L1. One call over
 * 700 rows against calls of 224 (avx2 on a 32 KiB L1), 256 and 2 x kc. */
START_TEST(test_row_split_changes_no_bit)
{
    const int M = 37, N = 128, rows = 700, bf16 = _i;
    const size_t na = (size_t)rows * M, nb = (size_t)rows * N, nc = (size_t)M * N;
    float *a = malloc(sizeof(float) * na), *b = malloc(sizeof(float) * nb);
    float *whole = malloc(sizeof(float) * nc), *parts = malloc(sizeof(float) * nc);
    tu_fill(a, na, 1.0f, 430);
    tu_fill(b, nb, 1.0f, 431);
    for (int k = 0; k < tu_nsets; k++) {
        const pl_gemm_backend be = tu_sets[k];
        int kc;
        long a_limit;
        pl_gemm_blocking(be, &kc, &a_limit);
        if (!kc || !tu_set_runs(be, "the weight gradient's rows split into calls"))
            continue; /* BLAS and the reference: one size of call, WGRAD_ROWS */
        const int sizes[] = {224, 256, pl_wgrad_rows(kc, 0)};
        pl_gemm_op op = {.M = M, .N = N, .nb = 1, .kb = rows, .a = a, .a_rs = 1, .a_cs = M,
                         .b = b, .ldb = 64, .b_ps = (size_t)rows * 64, .c = whole, .ldc = 64,
                         .c_ps = (size_t)M * 64, .bf16 = bf16};
        tu_gemm(be, &op);
        for (int s = 0; s < 3; s++) {
            op.c = parts;
            for (int r = 0; r < rows; r += sizes[s]) {
                op.kb = rows - r < sizes[s] ? rows - r : sizes[s];
                op.a = a + (size_t)r * M;
                op.b = b + (size_t)r * 64;
                op.accumulate = r > 0;
                tu_gemm(be, &op);
            }
            size_t differ = 0;
            for (size_t i = 0; i < nc; i++)
                differ += whole[i] != parts[i];
            printf("gemm %-6s %s weight gradient, 700 rows in calls of %d: %zu of %zu values "
                   "differ\n", pl_gemm_name(be), bf16 ? "bf16" : "fp32", sizes[s], differ, nc);
            ck_assert_msg(differ == 0, "%s %s calls of %d rows: %zu values differ",
                          pl_gemm_name(be), bf16 ? "bf16" : "fp32", sizes[s], differ);
        }
    }
    ck_assert_int_eq(pl_wgrad_rows(112, 0), 224);
    ck_assert_int_eq(pl_wgrad_rows(128, 0), 256);
    ck_assert_int_eq(pl_wgrad_rows(112, 1), WGRAD_ROWS); /* bf16: its own 256-row chunk */
    ck_assert_int_eq(pl_wgrad_rows(0, 0), WGRAD_ROWS);   /* BLAS */
    free(a);
    free(b);
    free(whole);
    free(parts);
}
END_TEST

/* The 16 x 16 transposes, from and to strided blocks: every set's against
 * the definition, the rest of the destination untouched. */
START_TEST(test_transpose16)
{
    const size_t lds = 37, ldd = 21;
    float src[16 * 37], got[16 * 21];
    tu_fill(src, 16 * lds, 1.0f, 77);
    for (int k = 0; k < tu_nsets; k++) {
        if (!tu_set_runs(tu_sets[k], "the 16 x 16 transpose"))
            continue;
        for (size_t i = 0; i < 16 * ldd; i++)
            got[i] = -1.0f - (float)i;
        pl_kernels_of(tu_sets[k])->transpose16(src, lds, got, ldd);
        for (int i = 0; i < 16; i++)
            for (size_t u = 0; u < ldd; u++) {
                const float want = u < 16 ? src[u * lds + i] : -1.0f - (float)(i * ldd + u);
                ck_assert_msg(got[i * ldd + u] == want, "%s transpose at (%d, %zu)",
                              pl_gemm_name(tu_sets[k]), i, u);
            }
    }
}
END_TEST

/* Largest |x - y| over n floats. Not inlined: inlined into the cell test,
 * these max reductions crash GCC 12.2 for AArch64 (internal compiler error
 * in vect_transform_reduction), as the cell test of main did. */
__attribute__((noinline)) static double largest_diff(const float *x, const float *y,
                                                     size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, tu_absdiff(x[i], y[i]));
    return worst;
}

/* Every set's LSTM cell (polynomial exp, sigmoid, tanh in the vector sets)
 * against the libm one, forward and backward, over pre-activations in
 * [-12, 12] with exact zeros and values beyond the exp clamp. */
START_TEST(test_cell_matches_generic)
{
    const pl_gemm_backend be = tu_sets[_i];
    if (be == PL_GEMM_NAIVE || !tu_set_runs(be, "the LSTM cell"))
        return;
    const pl_kernels *ks = pl_kernels_of(be);
    const int n = 9, Hp = 48, np = 3;
    size_t g_ps = (size_t)n * 64;
    float *g1 = malloc(sizeof(float) * np * g_ps), *g2 = malloc(sizeof(float) * np * g_ps);
    float *cp = malloc(sizeof(float) * n * Hp), *h1 = calloc((size_t)n * Hp, sizeof(float));
    float *h2 = calloc((size_t)n * Hp, sizeof(float));
    float *c1 = malloc(sizeof(float) * n * Hp), *c2 = malloc(sizeof(float) * n * Hp);
    float *t1 = malloc(sizeof(float) * n * Hp), *t2 = malloc(sizeof(float) * n * Hp);
    float *dh = malloc(sizeof(float) * n * Hp);
    float *d1 = malloc(sizeof(float) * n * Hp), *d2 = malloc(sizeof(float) * n * Hp);
    /* pre-activations over [-12, 12], including exact zeros and extremes */
    tu_fill(g1, np * g_ps, 12.0f, 5);
    g1[0] = 0.0f;
    g1[1] = -90.0f;
    g1[2] = 90.0f;
    g1[33] = 1e-7f;
    g1[40] = -90.0f; /* tanh of the g gate at both ends */
    g1[41] = 90.0f;
    memcpy(g2, g1, sizeof(float) * np * g_ps);
    tu_fill(cp, (size_t)n * Hp, 3.0f, 6);
    pl_cell_args a = {.n = n, .p0 = 0, .p1 = np, .Hp = Hp, .g = g1, .g_ps = g_ps, .c = c1,
                      .tc = t1, .c_prev = cp, .h = h1, .h_rs = (size_t)Hp};
    pl_cell_forward_generic(&a);
    a.g = g2;
    a.c = c2;
    a.tc = t2;
    a.h = h2;
    ks->cell_forward(&a);
    const size_t nu = (size_t)n * Hp;
    double worst = fmax(fmax(largest_diff(g1, g2, np * g_ps), largest_diff(c1, c2, nu)),
                        fmax(largest_diff(t1, t2, nu), largest_diff(h1, h2, nu)));
    printf("cell %-6s forward: largest difference %.2e\n", pl_gemm_name(be), worst);
    ck_assert_msg(worst < 1e-6, "%s forward differs by %g", pl_gemm_name(be), worst);
    ck_assert_float_eq(g2[0], 0.5f); /* sigmoid(0) exactly */
    ck_assert(g2[1] >= 0.0f && g2[1] < 1e-30f);
    ck_assert_float_eq(g2[2], 1.0f);
    ck_assert_float_eq(g2[40], -1.0f);
    ck_assert_float_eq(g2[41], 1.0f);

    /* backward from the same activations (g1), with a previous cell and,
     * as at the first step, without one (c_prev NULL reads zeros) */
    float *act = malloc(sizeof(float) * np * g_ps);
    memcpy(act, g1, sizeof(float) * np * g_ps);
    tu_fill(dh, nu, 1.0f, 7);
    a.tc = t1;
    a.dh = dh;
    for (int first = 0; first <= 1; first++) {
        a.c_prev = first ? NULL : cp;
        tu_fill(d1, nu, 1.0f, 8);
        memcpy(d2, d1, sizeof(float) * nu);
        memcpy(g1, act, sizeof(float) * np * g_ps);
        memcpy(g2, act, sizeof(float) * np * g_ps);
        a.g = g1;
        a.dc = d1;
        pl_cell_backward_generic(&a);
        a.g = g2;
        a.dc = d2;
        ks->cell_backward(&a);
        worst = fmax(largest_diff(g1, g2, np * g_ps), largest_diff(d1, d2, nu));
        printf("cell %-6s backward%s: largest difference %.2e\n", pl_gemm_name(be),
               first ? " (first step)" : "", worst);
        ck_assert_msg(worst < 1e-6, "%s backward differs by %g", pl_gemm_name(be), worst);
    }
    for (size_t i = 0; i < np * g_ps; i += 64)
        ck_assert_float_eq(g2[i + 16], 0.0f); /* d_f = dc c_prev f (1 - f) */
    free(g1); free(g2); free(cp); free(h1); free(h2); free(c1); free(c2);
    free(t1); free(t2); free(dh); free(d1); free(d2); free(act);
}
END_TEST

/* Each set's FMA calibration loop counts the work of its vector width
 * (12 chains of 16 lanes for AVX-512, 12 of 8 for AVX2, 16 of 4 for NEON,
 * 2 flops per lane), and the peak of a set the CPU cannot run is 0. */
START_TEST(test_fma_peak_per_set)
{
    const pl_gemm_backend be = tu_sets[_i];
    if (!pl_gemm_available(be)) {
        ck_assert(pl_fma_peak_gflops_of(be, 1, 0.01) == 0);
        tu_set_runs(be, "the FMA peak");
        return;
    }
    const pl_kernels *ks = pl_kernels_of(be);
    if (ks->fma_loop) {
        double flops = 0;
        volatile float r = ks->fma_loop(1000, &flops);
        const double per = be == PL_GEMM_AVX512 ? 384 : be == PL_GEMM_AVX2 ? 192 : 128;
        ck_assert_double_eq(flops, 1000 * per);
        ck_assert(isfinite(r) && r > 0);
    }
    double peak = pl_fma_peak_gflops_of(be, 1, 0.02);
    printf("FMA peak of the %s kernels, one thread: %.1f GFLOP/s\n", pl_gemm_name(be), peak);
    ck_assert(peak > 0.1 && peak < 1e5);
}
END_TEST

/* The neighbour probe: a set with a blocked GEMM of ours gives a positive
 * ratio of its GEMM in L1 to its FMA loop between its quartiles; the
 * others (naive, blas, a set this CPU cannot run) give 0. */
START_TEST(test_l1_ceiling_per_set)
{
    const pl_gemm_backend be = tu_sets[_i];
    int kc;
    long a_limit;
    pl_gemm_blocking(be, &kc, &a_limit);
    double q1 = -1, q3 = -1, med = pl_l1_ceiling(be, 5, &q1, &q3);
    if (kc <= 0) {
        ck_assert(med == 0 && q1 == -1 && q3 == -1);
        return;
    }
    printf("%s GEMM in L1 over its FMA loop: %.2f (%.2f-%.2f)\n", pl_gemm_name(be), med, q1, q3);
    ck_assert(med > 0 && med < 3); /* far below 1 under the sanitizers, above 1 under qemu */
    ck_assert(q1 <= med && med <= q3);
    ck_assert(pl_l1_ceiling(be, 0, NULL, NULL) == 0);
}
END_TEST

/* A tile for pl_gemm_blocked that computes with plain loops and records
 * the lines it was given to prefetch (pl_tile.pf and pf2), a count per line
 * of two buffers. */
static struct {
    const char *base[2];
    size_t lines[2];
    int *seen[2];
    int stray;  /* lines outside both */
    int given;  /* tiles that got any */
} rec;

static void record_lines(const char *p, int n)
{
    for (int i = 0; i < n; i++, p += 64) {
        int hit = 0;
        for (int k = 0; k < 2; k++)
            if (p >= rec.base[k] && p < rec.base[k] + 64 * rec.lines[k]) {
                rec.seen[k][(p - rec.base[k]) / 64]++;
                hit = 1;
            }
        rec.stray += !hit;
    }
}

static void recording_tile(const pl_tile *t)
{
    for (int i = 0; i < t->mr; i++)
        for (int j = 0; j < t->cols; j++) {
            float s = t->accumulate ? t->c[i * t->ldc + j] : 0.0f;
            for (int blk = 0; blk < t->nb; blk++)
                for (int k = 0; k < t->kb; k++)
                    s += t->a[blk * t->a_bs + i * t->a_rs + k * t->a_cs] *
                         t->b[blk * t->b_bs + k * t->ldb + j];
            t->c[i * t->ldc + j] = s;
        }
    rec.given += t->npf > 0 || t->npf2 > 0;
    record_lines(t->pf, t->npf);
    record_lines(t->pf2, t->npf2);
}

/* The driver's prefetching with pl_gemm_isa.spread: the tiles are handed
 * every line of the next B chunks (all of B but the first chunk, rows
 * 0..kc of panel 0) and of pl_gemm_op.warm (pieces of any alignment and
 * stride), each once; without spread, none (the driver prefetches B
 * itself and ignores warm). The product is the same either way. */
START_TEST(test_driver_prefetch_shares)
{
    enum { M = 100, N = 128, NB = 8, KB = 64, K = NB * KB };
    float *a = aligned_alloc(64, sizeof(float) * M * K), *b = aligned_alloc(64, sizeof(float) * K * N);
    float *c = calloc(M * N, sizeof(float)), *want = calloc(M * N, sizeof(float));
    char *side = aligned_alloc(64, 49152);
    tu_fill(a, (size_t)M * K, 1.0f, 71);
    tu_fill(b, (size_t)K * N, 1.0f, 72);
    /* the side spans: 5 pieces of 1000 bytes from byte 12, 4096 apart (16
     * lines each: the first and last partly), then 20000 bytes from 24576 */
    const pl_warm warm = {{{side + 12, 1000, 4096, 5}, {side + 24576, 20000, 0, 1}}, 2};
    pl_gemm_op op = {.M = M, .N = N, .nb = NB, .kb = KB, .a = a, .a_rs = K, .a_cs = 1,
                     .a_bs = KB, .b = b, .ldb = 64, .b_bs = (size_t)KB * 64,
                     .b_ps = (size_t)K * 64, .c = want, .ldc = N, .warm = &warm};
    pl_gemm_naive(&op);
    op.c = c;
    for (int spread = 1; spread >= 0; spread--) {
        const pl_gemm_isa isa = {.mr = 6, .kc = 128, .tile = recording_tile, .spread = spread};
        rec.base[0] = (const char *)b, rec.lines[0] = (size_t)K * N * 4 / 64;
        rec.base[1] = side, rec.lines[1] = 49152 / 64;
        for (int k = 0; k < 2; k++)
            rec.seen[k] = calloc(rec.lines[k], sizeof(int));
        rec.stray = rec.given = 0;
        pl_gemm_blocked(&isa, &op);
        int wrong = 0; /* counted, not a running maximum: gcc 12 for aarch64
                          fails to vectorise that reduction here (ICE) */
        for (int i = 0; i < M * N; i++)
            wrong += !(fabsf(c[i] - want[i]) < 1e-4f);
        ck_assert_msg(wrong == 0, "spread %d: %d values of C wrong", spread, wrong);
        ck_assert_int_eq(rec.stray, 0);
        if (!spread) {
            ck_assert_int_eq(rec.given, 0);
        } else {
            /* B: panel 0's rows from the first chunk's end on, and all of panel 1 */
            size_t first = 0; /* lines of panel 0 never handed: the first chunk */
            while (first < (size_t)K * 4 && rec.seen[0][first] == 0)
                first++;
            ck_assert_msg(first % (4 * KB) == 0 && first > 0 && first <= 4 * 128,
                          "the first %zu lines of B are not prefetched", first);
            for (size_t l = first; l < rec.lines[0]; l++)
                ck_assert_msg(rec.seen[0][l] == 1, "line %zu of B handed %d times", l,
                              rec.seen[0][l]);
            for (size_t l = 0; l < rec.lines[1]; l++) {
                const size_t at = l * 64;
                int want_seen = 0;
                for (int r = 0; r < 5; r++)
                    want_seen |= at + 64 > 12 + 4096 * (size_t)r && at < 1012 + 4096 * (size_t)r;
                want_seen |= at + 64 > 24576 && at < 24576 + 20000;
                ck_assert_msg(rec.seen[1][l] == want_seen, "side line %zu handed %d times, want %d",
                              l, rec.seen[1][l], want_seen);
            }
        }
        for (int k = 0; k < 2; k++)
            free(rec.seen[k]);
    }
    free(a);
    free(b);
    free(c);
    free(want);
    free(side);
}
END_TEST

/* The GEMM blocking follows the caches: a set's chunk (tuned for 48 KiB)
 * shrinks to 7/8 of a smaller L1 in steps of 16 rows, never below 32; A
 * goes chunk by chunk beyond half of L2 (7/8 when read by rows); unknown
 * sizes keep the defaults. */
START_TEST(test_blocking_from_caches)
{
    ck_assert_int_eq(pl_gemm_kc(128, 48 * 1024), 128);
    ck_assert_int_eq(pl_gemm_kc(128, 64 * 1024), 128);
    ck_assert_int_eq(pl_gemm_kc(128, 32 * 1024), 112);
    ck_assert_int_eq(pl_gemm_kc(112, 32 * 1024), 112);
    ck_assert_int_eq(pl_gemm_kc(96, 32 * 1024), 96);
    ck_assert_int_eq(pl_gemm_kc(128, 24 * 1024), 80);
    ck_assert_int_eq(pl_gemm_kc(128, 16 * 1024), 48);
    ck_assert_int_eq(pl_gemm_kc(128, 4 * 1024), 32);
    ck_assert_int_eq(pl_gemm_kc(128, 0), 128);
    ck_assert_int_eq(pl_gemm_a_limit(1024 * 1024), 512 * 1024);
    ck_assert_int_eq(pl_gemm_a_limit(2048 * 1024), 1024 * 1024);
    ck_assert_int_eq(pl_gemm_a_limit(0), 512 * 1024);
    /* an A read by rows: up to 7/8 of L2 */
    ck_assert_int_eq(pl_gemm_rows_limit(pl_gemm_a_limit(512 * 1024)), 448 * 1024);
    ck_assert_int_eq(pl_gemm_rows_limit(pl_gemm_a_limit(2048 * 1024)), 1792 * 1024);
    /* the forward product in one chunk where A and a panel of B fit the
     * rows limit (917504 bytes on a 1 MiB L2): hidden 1024, batch 100 (K =
     * 1053) yes, hidden 2048 no; 4 x 896 x (192 + 64) bytes is the limit
     * itself */
    const long lim = pl_gemm_a_limit(1024 * 1024);
    const pl_gemm_isa one = {.mr = 6, .kc = 128, .one_chunk = 1, .long_blocks = 1},
                      off = {.mr = 6, .kc = 128}, fwd_only = {.mr = 6, .kc = 128, .one_chunk = 1};
    pl_gemm_op fwd = {.M = 100, .N = 4096, .nb = 1, .kb = 1053, .a_rs = 1053, .a_cs = 1,
                      .ldb = PL_PANEL};
    ck_assert_int_eq(pl_gemm_chunk_rows(&one, &fwd, 128, lim), 1053);
    ck_assert_int_eq(pl_gemm_chunk_rows(&off, &fwd, 128, lim), 128);
    fwd.kb = 2077;
    ck_assert_int_eq(pl_gemm_chunk_rows(&one, &fwd, 128, lim), 128);
    fwd.M = 192;
    fwd.kb = 896;
    ck_assert_int_eq(pl_gemm_chunk_rows(&one, &fwd, 128, lim), 896);
    fwd.kb = 897;
    ck_assert_int_eq(pl_gemm_chunk_rows(&one, &fwd, 112, lim), 112);
    fwd.kb = 157;
    ck_assert_int_eq(pl_gemm_chunk_rows(&one, &fwd, 128, lim), 157);
    /* A by columns (the weight gradient) and B rows apart (the fold): kc */
    pl_gemm_op wgrad = fwd, fold = fwd;
    wgrad.a_cs = 157;
    wgrad.a_rs = 1;
    fold.ldb = 4096;
    ck_assert_int_eq(pl_gemm_chunk_rows(&one, &wgrad, 128, lim), 128);
    ck_assert_int_eq(pl_gemm_chunk_rows(&one, &fold, 128, lim), 128);
    /* several blocks (the recurrent product at hidden 1024): twice kc,
     * unless it warms spans for the backward cell; an empty warm is none */
    pl_gemm_op blocks = {.M = 100, .N = 1024, .nb = 64, .kb = 64, .a_rs = 64, .a_cs = 1,
                         .a_bs = 6400, .ldb = PL_PANEL, .b_bs = 4096};
    pl_warm warm = {.n = 0};
    blocks.warm = &warm;
    ck_assert_int_eq(pl_gemm_chunk_rows(&one, &blocks, 128, lim), 256);
    ck_assert_int_eq(pl_gemm_chunk_rows(&one, &blocks, 112, lim), 224);
    ck_assert_int_eq(pl_gemm_chunk_rows(&fwd_only, &blocks, 128, lim), 128);
    warm.n = 1;
    ck_assert_int_eq(pl_gemm_chunk_rows(&one, &blocks, 128, lim), 128);
    /* the set that does both: avx512 (as measured), not avx2, neon or
     * others */
    const int has512 = pl_gemm_available(PL_GEMM_AVX512);
    const pl_gemm_backend none[] = {PL_GEMM_NAIVE, PL_GEMM_BLAS, PL_GEMM_AVX2, PL_GEMM_NEON};
    for (size_t i = 0; i < sizeof none / sizeof *none; i++) {
        const pl_gemm_rules r = pl_gemm_rules_of(none[i]);
        ck_assert_msg(r.one_chunk == 0 && r.long_blocks == 0, "%s: %d %d",
                      pl_gemm_name(none[i]), r.one_chunk, r.long_blocks);
    }
    ck_assert_int_eq(pl_gemm_rules_of(PL_GEMM_AVX512).one_chunk, has512);
    ck_assert_int_eq(pl_gemm_rules_of(PL_GEMM_AVX512).long_blocks, has512);
    const pl_cpu_caches c = pl_cpu_cache_sizes();
    printf("caches: L1 data %ld, L2 %ld bytes\n", c.l1d, c.l2);
    ck_assert(c.l1d >= 0 && c.l1d <= 4L << 20 && c.l2 >= 0 && c.l2 <= 1L << 30);
    for (int be = PL_GEMM_AUTO; be <= PL_GEMM_LAST; be++) {
        int kc;
        long a_limit;
        pl_gemm_blocking((pl_gemm_backend)be, &kc, &a_limit);
        const pl_kernels *ks = pl_kernels_of((pl_gemm_backend)be);
        if (!ks || !ks->gemm_isa) { /* not ours, or not on this CPU */
            ck_assert(kc == 0 && a_limit == 0);
            continue;
        }
        ck_assert_int_eq(kc, pl_gemm_kc(ks->gemm_isa->kc, c.l1d));
        ck_assert_int_eq(a_limit, pl_gemm_a_limit(c.l2));
    }
    int kc;
    long a_limit;
    pl_gemm_blocking(PL_GEMM_NAIVE, &kc, &a_limit);
    ck_assert(kc == 0 && a_limit == 0);
    pl_gemm_blocking(PL_GEMM_BLAS, &kc, &a_limit);
    ck_assert(kc == 0 && a_limit == 0);
}
END_TEST

START_TEST(test_backend_names_and_choice)
{
    /* the values are stored in checkpoints: they never change */
    const char *names[] = {"auto", "naive", "blas", "avx512", "avx2", "neon"};
    for (int be = PL_GEMM_AUTO; be <= PL_GEMM_LAST; be++) {
        ck_assert_str_eq(pl_gemm_name((pl_gemm_backend)be), names[be]);
        ck_assert_int_eq(pl_gemm_by_name(names[be]), be);
    }
    ck_assert_int_eq(pl_gemm_by_name("AVX2"), -1);
    ck_assert_int_eq(pl_gemm_by_name("?"), -1);
    ck_assert_int_eq(pl_gemm_by_name(""), -1);
    ck_assert_int_eq(PL_GEMM_AVX2, 4);
    ck_assert_str_eq(pl_gemm_name((pl_gemm_backend)(PL_GEMM_LAST + 1)), "?");
    ck_assert(!pl_gemm_available((pl_gemm_backend)(PL_GEMM_LAST + 1)));
    /* auto: the widest vector set the CPU runs, else the architecture's
     * plain choice (NEON on AArch64, where neither x86 flag is set) */
#if defined(__aarch64__)
    const pl_gemm_backend plain = PL_GEMM_NEON;
#else
    const pl_gemm_backend plain = PL_GEMM_BLAS;
#endif
    const pl_gemm_backend want = pl_cpu_has_avx512() ? PL_GEMM_AVX512
                                 : pl_cpu_has_avx2() ? PL_GEMM_AVX2
                                                     : plain;
    ck_assert_int_eq(pl_gemm_resolve(PL_GEMM_AUTO), want);
    /* and on the CPUs this one is not */
    ck_assert_int_eq(pl_gemm_auto_for(1, 1), PL_GEMM_AVX512);
    ck_assert_int_eq(pl_gemm_auto_for(0, 1), PL_GEMM_AVX2);
    ck_assert_int_eq(pl_gemm_auto_for(0, 0), plain);
    ck_assert_ptr_eq(pl_kernels_of(PL_GEMM_AUTO), pl_kernels_of(want));
    ck_assert_ptr_nonnull(strstr(pl_gemm_auto_reason(), pl_gemm_name(want)));
    printf("auto: %s\n", pl_gemm_auto_reason());
    for (int be = PL_GEMM_NAIVE; be <= PL_GEMM_LAST; be++) {
        ck_assert_int_eq(pl_gemm_resolve((pl_gemm_backend)be), be);
        const pl_kernels *ks = pl_kernels_of((pl_gemm_backend)be);
        ck_assert_int_eq(ks != NULL, pl_gemm_available((pl_gemm_backend)be));
        if (ks)
            ck_assert_int_eq(ks->be, be);
    }
    ck_assert(pl_gemm_available(PL_GEMM_NAIVE) && pl_gemm_available(PL_GEMM_BLAS));
    ck_assert_int_eq(pl_gemm_available(PL_GEMM_AVX512), pl_cpu_has_avx512());
    ck_assert_int_eq(pl_gemm_available(PL_GEMM_AVX2), pl_cpu_has_avx2());
#if defined(__aarch64__)
    ck_assert(pl_gemm_available(PL_GEMM_NEON));
    ck_assert(!pl_cpu_has_avx2() && !pl_cpu_has_avx512());
#else
    ck_assert(!pl_gemm_available(PL_GEMM_NEON));
#endif
    ck_assert_int_ge(pl_cpu_count(), 1);
    /* a core type the user set is never overridden */
    const char *saved = getenv("OPENBLAS_CORETYPE");
    char *copy = saved ? strdup(saved) : NULL;
    setenv("OPENBLAS_CORETYPE", "Haswell", 1);
    ck_assert_ptr_null(pl_blas_better_coretype());
    if (copy) {
        setenv("OPENBLAS_CORETYPE", copy, 1);
        free(copy);
    } else {
        unsetenv("OPENBLAS_CORETYPE");
    }
    /* on an AVX-512 CPU that OpenBLAS calls Prescott, ask for SkylakeX */
    const char *better = pl_blas_better_coretype();
    printf("OpenBLAS core %s, better: %s\n", pl_blas_corename(), better ? better : "(none)");
    if (!getenv("OPENBLAS_CORETYPE") && strcmp(pl_blas_corename(), "Prescott") == 0 &&
        pl_cpu_has_avx512())
        ck_assert_str_eq(better, "SkylakeX");
}
END_TEST

Suite *gemm_suite(void)
{
    Suite *s = suite_create("gemm");
    TCase *tc = tcase_create("kernels");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_transpose16);
    tcase_add_loop_test(tc, test_panelled_operands, 0,
                        (int)(sizeof PANEL_CASES / sizeof *PANEL_CASES));
    tcase_add_loop_test(tc, test_backends_match_naive, 0, (int)(sizeof CASES / sizeof *CASES));
    tcase_add_loop_test(tc, test_row_split_changes_no_bit, 0, 2);
    tcase_add_loop_test(tc, test_column_split_changes_no_bit, 0,
                        (int)(sizeof SPLIT_CASES / sizeof *SPLIT_CASES));
    tcase_add_loop_test(tc, test_cell_matches_generic, 0, tu_nsets);
    tcase_add_loop_test(tc, test_fma_peak_per_set, 0, tu_nsets);
    tcase_add_loop_test(tc, test_l1_ceiling_per_set, 0, tu_nsets);
    tcase_add_test(tc, test_backend_names_and_choice);
    tcase_add_test(tc, test_blocking_from_caches);
    tcase_add_test(tc, test_driver_prefetch_shares);
    suite_add_tcase(s, tc);
    return s;
}
