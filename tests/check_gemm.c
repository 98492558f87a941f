/* Fast kernels against their plain-loop references: every GEMM backend
 * against pl_gemm_naive over the operand shapes the model uses (and edge
 * cases), and the AVX-512 LSTM cell against the libm one. */
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
    pl_gemm(PL_GEMM_NAIVE, &op);
    const pl_gemm_backend bes[] = {PL_GEMM_BLAS, PL_GEMM_AVX512};
    for (int k = 0; k < 2; k++) {
        if (!pl_gemm_available(bes[k])) {
            char what[128];
            snprintf(what, sizeof what, "test_backends_match_naive, %s, %s backend", g->what,
                     pl_gemm_name(bes[k]));
            tu_skip(what, "this CPU has no AVX-512");
            continue;
        }
        memcpy(got, c0, sizeof(float) * (size_t)g->M * ldc);
        op.c = got;
        pl_gemm(bes[k], &op);
        double worst = 0;
        for (int i = 0; i < g->M; i++)
            for (size_t j = 0; j < ldc; j++) {
                size_t at = (size_t)i * ldc + j;
                if (j >= (size_t)g->N) /* the padding beyond N is untouched */
                    ck_assert_msg(got[at] == c0[at], "%s wrote outside C", g->what);
                else
                    worst = fmax(worst, fabs(got[at] - want[at]));
            }
        assert_within(bes[k], g->what, worst, (double)K);
    }
    free(a);
    free(b);
    free(c0);
    free(want);
    free(got);
}
END_TEST

/* B and C in column panels of 64 with gaps between them (the gate-panel
 * layouts of lstm.c), in both visiting orders of the AVX-512 driver (A small
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
    const pl_gemm_backend bes[] = {PL_GEMM_NAIVE, PL_GEMM_BLAS, PL_GEMM_AVX512};
    for (int k = 0; k < 3; k++) {
        if (!pl_gemm_available(bes[k]))
            continue;
        memcpy(got, c0, sizeof(float) * nc);
        op.c = got;
        pl_gemm(bes[k], &op);
        double worst = 0;
        for (size_t at = 0; at < nc; at++) {
            size_t p = at / c_ps, off = at % c_ps, j = off % ldc;
            if (off >= (size_t)g->M * ldc || p * 64 + j >= (size_t)g->N)
                ck_assert_msg(got[at] == c0[at], "%s %s wrote outside C at %zu",
                              pl_gemm_name(bes[k]), g->what, at);
            else
                worst = fmax(worst, fabs(got[at] - want[at]));
        }
        assert_within(bes[k], g->what, worst, (double)g->nb * g->kb);
    }
    free(a);
    free(b);
    free(c0);
    free(want);
    free(got);
}
END_TEST

/* The 16 x 16 transposes, from and to strided blocks; the AVX-512 one
 * against the plain one, both against the definition. */
START_TEST(test_transpose16)
{
    const size_t lds = 37, ldd = 21;
    float src[16 * 37], want[16 * 21], got[16 * 21];
    tu_fill(src, 16 * lds, 1.0f, 77);
    memset(want, 0, sizeof want);
    pl_transpose16_generic(src, lds, want, ldd);
    for (int i = 0; i < 16; i++)
        for (int u = 0; u < 16; u++)
            ck_assert_float_eq(want[i * ldd + u], src[u * lds + i]);
    if (!pl_cpu_has_avx512()) {
        tu_skip("test_transpose16 (AVX-512)", "this CPU has no AVX-512");
        return;
    }
    memcpy(got, want, sizeof got);
    for (int i = 0; i < 16; i++)
        for (int u = 0; u < 16; u++)
            got[i * ldd + u] = -1.0f;
    pl_transpose16_avx512(src, lds, got, ldd);
    ck_assert_int_eq(memcmp(got, want, sizeof got), 0);
}
END_TEST

/* The AVX-512 cell (polynomial exp, sigmoid, tanh) against libm. */
START_TEST(test_cell_avx512_matches_generic)
{
    if (!pl_cpu_has_avx512()) {
        tu_skip("test_cell_avx512_matches_generic", "this CPU has no AVX-512");
        return;
    }
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
    memcpy(g2, g1, sizeof(float) * np * g_ps);
    tu_fill(cp, (size_t)n * Hp, 3.0f, 6);
    pl_cell_args a = {.n = n, .p0 = 0, .p1 = np, .Hp = Hp, .g = g1, .g_ps = g_ps, .c = c1,
                      .tc = t1, .c_prev = cp, .h = h1, .h_rs = (size_t)Hp};
    pl_cell_forward_generic(&a);
    a.g = g2;
    a.c = c2;
    a.tc = t2;
    a.h = h2;
    pl_cell_forward_avx512(&a);
    double worst = 0;
    for (size_t i = 0; i < np * g_ps; i++)
        worst = fmax(worst, fabs(g1[i] - g2[i]));
    for (int i = 0; i < n * Hp; i++) {
        worst = fmax(worst, fabs(c1[i] - c2[i]));
        worst = fmax(worst, fabs(t1[i] - t2[i]));
        worst = fmax(worst, fabs(h1[i] - h2[i]));
    }
    printf("cell forward: largest difference %.2e\n", worst);
    ck_assert_msg(worst < 1e-6, "forward differs by %g", worst);
    ck_assert_float_eq(g2[0], 0.5f); /* sigmoid(0) exactly */
    ck_assert(g2[1] >= 0.0f && g2[1] < 1e-30f);
    ck_assert_float_eq(g2[2], 1.0f);

    tu_fill(dh, (size_t)n * Hp, 1.0f, 7);
    tu_fill(d1, (size_t)n * Hp, 1.0f, 8);
    memcpy(d2, d1, sizeof(float) * n * Hp);
    memcpy(g2, g1, sizeof(float) * np * g_ps); /* same activations in both */
    a.g = g1;
    a.tc = t1;
    a.dh = dh;
    a.dc = d1;
    pl_cell_backward_generic(&a);
    a.g = g2;
    a.dc = d2;
    pl_cell_backward_avx512(&a);
    worst = 0;
    for (size_t i = 0; i < np * g_ps; i++)
        worst = fmax(worst, fabs(g1[i] - g2[i]));
    for (int i = 0; i < n * Hp; i++)
        worst = fmax(worst, fabs(d1[i] - d2[i]));
    printf("cell backward: largest difference %.2e\n", worst);
    ck_assert_msg(worst < 1e-6, "backward differs by %g", worst);
    free(g1); free(g2); free(cp); free(h1); free(h2); free(c1); free(c2);
    free(t1); free(t2); free(dh); free(d1); free(d2);
}
END_TEST

START_TEST(test_backend_names_and_choice)
{
    ck_assert_str_eq(pl_gemm_name(PL_GEMM_NAIVE), "naive");
    ck_assert_str_eq(pl_gemm_name(PL_GEMM_AVX512), "avx512");
    ck_assert_int_eq(pl_gemm_resolve(PL_GEMM_AUTO),
                     pl_cpu_has_avx512() ? PL_GEMM_AVX512 : PL_GEMM_BLAS);
    ck_assert_int_eq(pl_gemm_resolve(PL_GEMM_BLAS), PL_GEMM_BLAS);
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
    tcase_add_test(tc, test_cell_avx512_matches_generic);
    tcase_add_test(tc, test_backend_names_and_choice);
    suite_add_tcase(s, tc);
    return s;
}
