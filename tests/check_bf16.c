/* bf16: the rounding against hand-worked bit patterns, the software GEMM
 * against the definition (kernels.h) written another way, the AVX512_BF16
 * kernel against the software path bit for bit (on CPUs that have it; a
 * skip elsewhere), and the size of the error against exact products. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "testutil.h"

static float from_bits(uint32_t u)
{
    float x;
    memcpy(&x, &u, 4);
    return x;
}

static uint32_t bits_of(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

/* Each case worked by hand: the fp32 bits and the bf16 they round to. */
START_TEST(test_bf16_rounding)
{
    static const struct {
        const char *what;
        uint32_t in;
        uint16_t want;
    } cases[] = {
        {"one", 0x3f800000u, 0x3f80},
        {"just below the halfway point: down", 0x3f807fffu, 0x3f80},
        {"halfway, even below: down", 0x3f808000u, 0x3f80},
        {"halfway, odd below: up to even", 0x3f818000u, 0x3f82},
        {"just above halfway: up", 0x3f808001u, 0x3f81},
        {"negative halfway, even below", 0xbf808000u, 0xbf80},
        {"carry into the exponent", 0x3fffff00u, 0x4000},
        {"largest float: to infinity", 0x7f7fffffu, 0x7f80},
        {"largest float that stays finite", 0x7f7f7fffu, 0x7f7f},
        {"infinity", 0x7f800000u, 0x7f80},
        {"minus infinity", 0xff800000u, 0xff80},
        {"quiet NaN", 0x7fc00000u, 0x7fc0},
        {"signalling NaN: made quiet", 0x7f800001u, 0x7fc0},
        {"negative NaN with payload: sign and top payload kept", 0xffa12345u, 0xffe1},
        {"NaN whose payload would round into infinity", 0x7f80ffffu, 0x7fc0},
        {"zero", 0x00000000u, 0x0000},
        {"minus zero", 0x80000000u, 0x8000},
        {"smallest subnormal: zero", 0x00000001u, 0x0000},
        {"largest negative subnormal: minus zero", 0x807fffffu, 0x8000},
        {"smallest normal", 0x00800000u, 0x0080},
        {"smallest normal, halfway up: even", 0x00808000u, 0x0080},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        uint16_t got = pl_bf16_round(from_bits(cases[k].in));
        printf("bf16 %-55s %08x -> %04x\n", cases[k].what, cases[k].in, got);
        ck_assert_msg(got == cases[k].want, "%s: %08x rounds to %04x, expected %04x",
                      cases[k].what, cases[k].in, got, cases[k].want);
        ck_assert_uint_eq(bits_of(pl_bf16_float(cases[k].want)), (uint32_t)cases[k].want << 16);
    }
}
END_TEST

/* The pairs of a panel (pl_gemm_op.b16's layout): row 2p in the low half,
 * row 2p + 1 in the high half, zero past an odd row count. */
START_TEST(test_bf16_pairs_layout)
{
    enum { ROWS = 5 };
    float panel[ROWS * 64];
    uint32_t out[3 * 64];
    tu_fill(panel, ROWS * 64, 3.0f, 61);
    pl_bf16_pairs(panel, ROWS, out);
    for (int p = 0; p < 3; p++)
        for (int j = 0; j < 64; j++) {
            uint32_t lo = pl_bf16_round(panel[2 * p * 64 + j]);
            uint32_t hi = 2 * p + 1 < ROWS ? pl_bf16_round(panel[(2 * p + 1) * 64 + j]) : 0;
            ck_assert_msg(out[p * 64 + j] == (lo | hi << 16), "pair %d, column %d: %08x, "
                          "expected %08x", p, j, out[p * 64 + j], lo | hi << 16);
        }
}
END_TEST

typedef struct {
    const char *what;
    int M, N, nb, kb;
    int trans;      /* A stored transposed (a_rs = 1) */
    int accumulate;
    int panelled;   /* B and C in panels of 64 columns, apart by more than 64 */
} bcase;

static const bcase BCASES[] = {
    {"one product (K = 1: a zero pair member)", 1, 1, 1, 1, 0, 0, 0},
    {"forward gates, 100 rows, odd K", 100, 64, 1, 157, 0, 0, 1},
    {"7 rows, partial vector, accumulate", 7, 37, 1, 33, 0, 1, 0},
    {"two panels and a partial one", 13, 150, 1, 20, 0, 1, 1},
    {"backward dh: blocks of 64", 50, 64, 8, 64, 0, 0, 1},
    {"odd blocks: pairs across blocks", 9, 48, 3, 7, 0, 1, 0},
    {"weight gradient: A transposed, K past a chunk", 29, 64, 1, 600, 1, 0, 1},
    {"A transposed, short, accumulate", 6, 17, 1, 3, 1, 1, 0},
};

typedef struct {
    float *a, *b, *c0;
    size_t na, nb, nc;
    pl_gemm_op op; /* without c */
} bfix;

/* Operands of case g: values of magnitude up to `scale`. */
static void bfix_make(bfix *f, const bcase *g, float scale, uint64_t seed)
{
    const int K = g->nb * g->kb, panels = (g->N + 63) / 64;
    const size_t lda = g->trans ? (size_t)g->M : (size_t)K;
    const size_t ldb = g->panelled ? 64 : (size_t)g->N, b_ps = g->panelled ? (size_t)K * 64 + 16 : 0;
    const size_t ldc = g->panelled ? 64 : (size_t)g->N;
    const size_t c_ps = g->panelled ? (size_t)g->M * 64 + 16 : 0;
    f->na = (size_t)g->M * K;
    f->nb = g->panelled ? b_ps * panels : (size_t)K * g->N;
    f->nc = g->panelled ? c_ps * panels : (size_t)g->M * g->N;
    f->a = malloc(sizeof(float) * f->na);
    f->b = malloc(sizeof(float) * f->nb);
    f->c0 = malloc(sizeof(float) * f->nc);
    tu_fill(f->a, f->na, scale, seed);
    tu_fill(f->b, f->nb, scale, seed + 1);
    tu_fill(f->c0, f->nc, 1.0f, seed + 2);
    f->op = (pl_gemm_op){.M = g->M, .N = g->N, .nb = g->nb, .kb = g->kb, .a = f->a,
                         .a_rs = g->trans ? 1 : lda, .a_cs = g->trans ? lda : 1,
                         .a_bs = g->trans ? (size_t)g->kb * lda : (size_t)g->kb, .b = f->b,
                         .ldb = ldb, .b_bs = (size_t)g->kb * ldb, .b_ps = b_ps, .ldc = ldc,
                         .c_ps = c_ps, .accumulate = g->accumulate, .bf16 = 1};
}

/* A fresh copy of C's starting values (caller frees). */
static float *c_copy(const bfix *f)
{
    float *c = malloc(sizeof(float) * f->nc);
    memcpy(c, f->c0, sizeof(float) * f->nc);
    return c;
}

/* How many of n floats differ in their bits. */
static size_t differing(const float *a, const float *b, size_t n)
{
    size_t d = 0;
    for (size_t i = 0; i < n; i++)
        d += bits_of(a[i]) != bits_of(b[i]);
    return d;
}

static void bfix_free(bfix *f)
{
    free(f->a);
    free(f->b);
    free(f->c0);
}

static size_t col(int j, size_t ps) { return (size_t)(j / 64) * (ps ? ps : 64) + (size_t)(j % 64); }

static float a_of(const pl_gemm_op *op, int i, int k)
{
    return op->a[(size_t)(k / op->kb) * op->a_bs + (size_t)i * op->a_rs +
                 (size_t)(k % op->kb) * op->a_cs];
}

static float b_of(const pl_gemm_op *op, int k, int j)
{
    return op->b[(size_t)(k / op->kb) * op->b_bs + (size_t)(k % op->kb) * op->ldb +
                 col(j, op->b_ps)];
}

static float ftz(float x) { return fpclassify(x) == FP_SUBNORMAL ? copysignf(0.0f, x) : x; }

/* The definition as kernels.h states it, with fmaf: C(i, j) after the op. */
static float definition(const pl_gemm_op *op, float c, int i, int j)
{
    const int K = op->nb * op->kb;
    float s = op->accumulate ? ftz(c) : 0.0f;
    for (int k = 0; k < K; k += 2) {
        float a0 = pl_bf16_float(pl_bf16_round(a_of(op, i, k)));
        float b0 = pl_bf16_float(pl_bf16_round(b_of(op, k, j)));
        float a1 = k + 1 < K ? pl_bf16_float(pl_bf16_round(a_of(op, i, k + 1))) : 0.0f;
        float b1 = k + 1 < K ? pl_bf16_float(pl_bf16_round(b_of(op, k + 1, j))) : 0.0f;
        s = ftz(fmaf(a1, b1, s));
        s = ftz(fmaf(a0, b0, s));
    }
    return s;
}

/* The software path against the definition, bit for bit; magnitudes from
 * ordinary (1) to tiny (3e-19: products and sums about the subnormal range,
 * flushed) and huge (1e19: overflow to infinity). */
START_TEST(test_bf16_soft_is_the_definition)
{
    static const float scales[] = {1.0f, 3e-19f, 3e18f};
    const bcase *g = &BCASES[_i];
    for (size_t s = 0; s < sizeof scales / sizeof *scales; s++) {
        bfix f;
        bfix_make(&f, g, scales[s], 700 + 10 * _i + s);
        if (scales[s] < 1e-10f) /* subnormal C on entry: read as zero */
            for (size_t i = 0; i < f.nc; i += 3)
                f.c0[i] = f.c0[i] * 1e-39f;
        float *c = c_copy(&f);
        pl_gemm_op op = f.op;
        op.c = c;
        pl_gemm_bf16_soft(&op);
        size_t differ = 0, flushed = 0, infinite = 0;
        for (int i = 0; i < g->M; i++)
            for (int j = 0; j < g->N; j++) {
                size_t at = (size_t)i * op.ldc + col(j, op.c_ps);
                float want = definition(&op, f.c0[at], i, j);
                differ += bits_of(want) != bits_of(c[at]) && !(isnan(want) && isnan(c[at]));
                flushed += want == 0.0f;
                infinite += isinf(want);
            }
        printf("bf16 soft %-48s scale %g: %zu of %d differ (%zu zero, %zu infinite)\n", g->what,
               (double)scales[s], differ, g->M * g->N, flushed, infinite);
        ck_assert_msg(differ == 0, "%s, scale %g: %zu values differ from the definition", g->what,
                      (double)scales[s], differ);
        free(c);
        bfix_free(&f);
    }
}
END_TEST

/* The AVX512_BF16 kernel gives the software path's bits, every layout. */
START_TEST(test_bf16_hardware_matches_soft)
{
    if (!pl_cpu_has_avx512_bf16()) {
        if (_i == 0)
            tu_skip("the AVX512_BF16 kernel against the software path",
                    "this CPU lacks AVX512_BF16");
        return;
    }
    const bcase *g = &BCASES[_i];
    const pl_kernels *k = pl_kernels_of(PL_GEMM_AVX512);
    ck_assert_ptr_nonnull(k);
    ck_assert_msg(k->gemm_bf16 != pl_gemm_bf16_soft, "the avx512 set does not use the hardware");
    bfix f;
    bfix_make(&f, g, 1.0f, 800 + _i);
    float *soft = c_copy(&f), *hard = c_copy(&f);
    pl_gemm_op op = f.op;
    op.c = soft;
    pl_gemm_bf16_soft(&op);
    op.c = hard;
    pl_gemm_with(k, &op);
    size_t differ = differing(soft, hard, f.nc);
    printf("bf16 avx512 %-52s %zu of %zu values differ\n", g->what, differ, f.nc);
    ck_assert_msg(differ == 0, "%s: %zu values differ", g->what, differ);
    if (g->panelled) { /* B given in pairs (pl_gemm_op.b16), as the packed weights are */
        const int K = g->nb * g->kb, P = (K + 1) / 2, panels = (g->N + 63) / 64;
        uint32_t *b16 = malloc(sizeof(uint32_t) * ((size_t)panels * P * 64 + 64));
        for (int jp = 0; jp < panels; jp++)
            pl_bf16_pairs(f.b + (size_t)jp * op.b_ps, K, b16 + (size_t)jp * P * 64);
        memcpy(hard, f.c0, sizeof(float) * f.nc);
        op.b16 = b16;
        op.b16_ps = (size_t)P * 64;
        pl_gemm_with(k, &op);
        differ = differing(soft, hard, f.nc);
        printf("bf16 avx512 %-44s B in pairs: %zu of %zu values differ\n", g->what, differ, f.nc);
        ck_assert_msg(differ == 0, "%s, B in pairs: %zu values differ", g->what, differ);
        free(b16);
    }
    free(soft);
    free(hard);
    bfix_free(&f);
}
END_TEST

/* The hardware's conversions, through products with one: C = 0 + bf16(a) x 1
 * for A from random bit patterns (NaN, infinities, subnormals among them),
 * and likewise for B, equal to pl_bf16_round. */
START_TEST(test_bf16_hardware_rounds_as_soft)
{
    if (!pl_cpu_has_avx512_bf16()) {
        tu_skip("the AVX512_BF16 conversions", "this CPU lacks AVX512_BF16");
        return;
    }
    const pl_kernels *k = pl_kernels_of(PL_GEMM_AVX512);
    enum { N = 4096 };
    static float x[N], one[N], c[N];
    uint64_t s = 99;
    for (int i = 0; i < N; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t u = (uint32_t)(s >> 32);
        if (i % 8 == 1)
            u &= 0x807fffffu; /* subnormal */
        else if (i % 8 == 2)
            u |= 0x7f800000u; /* infinity or NaN */
        else if (i % 8 == 3)
            u = (u & 0xffff0000u) | 0x8000u; /* a halfway case */
        x[i] = from_bits(u);
        one[i] = 1.0f;
    }
    /* A (N, 1) x B (1, 1) = 1 */
    pl_gemm_op op = {.M = N, .N = 1, .nb = 1, .kb = 1, .a = x, .a_rs = 1, .a_cs = 1,
                     .b = one, .ldb = 1, .c = c, .ldc = 1, .bf16 = 1};
    for (int side = 0; side < 2; side++) {
        if (side == 1) /* A (1, 1) = 1 x B (1, N) */
            op = (pl_gemm_op){.M = 1, .N = N, .nb = 1, .kb = 1, .a = one, .a_rs = 1, .a_cs = 1,
                              .b = x, .ldb = N, .c = c, .ldc = N, .bf16 = 1};
        pl_gemm_with(k, &op);
        int differ = 0;
        for (int i = 0; i < N; i++) {
            float want = pl_bf16_float(pl_bf16_round(x[i]));
            /* as values: 0 + (-0) x 1 is +0, the sum's sign, not the operand's */
            differ += isnan(want) ? !isnan(c[i]) : want != c[i];
        }
        printf("bf16 avx512 conversion of %s: %d of %d differ\n", side ? "B" : "A", differ, N);
        ck_assert_int_eq(differ, 0);
    }
}
END_TEST

/* How far bf16 products are from exact ones: each operand's rounding is
 * within 2^-9 relative, so a product within 2^-8 (plus the fp32 sums):
 * |C - exact| <= 2^-8 sum |a b| + 1e-6 sum |a b|. And bf16 is in use: most
 * values differ from the fp32 product. */
START_TEST(test_bf16_error_is_bf16s)
{
    const bcase *g = &BCASES[_i];
    bfix f;
    bfix_make(&f, g, 1.0f, 900 + _i);
    float *c = c_copy(&f), *c32 = c_copy(&f);
    pl_gemm_op op = f.op;
    op.c = c;
    pl_gemm_with(pl_kernels_of(PL_GEMM_AUTO), &op);
    op.bf16 = 0;
    op.c = c32;
    tu_gemm(PL_GEMM_NAIVE, &op);
    const int K = g->nb * g->kb;
    double worst = 0;
    size_t same = 0;
    for (int i = 0; i < g->M; i++)
        for (int j = 0; j < g->N; j++) {
            size_t at = (size_t)i * op.ldc + col(j, op.c_ps);
            double exact = g->accumulate ? f.c0[at] : 0, mag = fabs(exact);
            for (int k = 0; k < K; k++) {
                exact += (double)a_of(&op, i, k) * b_of(&op, k, j);
                mag += fabs((double)a_of(&op, i, k) * b_of(&op, k, j));
            }
            double e = tu_absdiff(c[at], exact) / ((ldexp(1, -8) + 1e-6) * mag + 1e-30);
            worst = fmax(worst, e);
            same += c[at] == c32[at];
        }
    printf("bf16 %-60s error %.2f of the bound; %zu of %d equal to fp32\n", g->what, worst,
           same, g->M * g->N);
    ck_assert_msg(worst <= 1.0, "%s: %g of the bound", g->what, worst);
    if (K > 1)
        ck_assert_msg(same * 2 < (size_t)g->M * g->N, "%s: %zu of %d values as in fp32: is "
                      "bf16 in use?", g->what, same, g->M * g->N);
    free(c);
    free(c32);
    bfix_free(&f);
}
END_TEST

/* Columns cut as threads cut them give the same bits (each value is one
 * chain over the pairs, whatever the columns around it). */
START_TEST(test_bf16_column_split_changes_no_bit)
{
    const bcase *g = &BCASES[_i];
    bfix f;
    bfix_make(&f, g, 1.0f, 950 + _i);
    float *whole = c_copy(&f), *parts = c_copy(&f);
    const pl_kernels *k = pl_kernels_of(PL_GEMM_AUTO);
    pl_gemm_op op = f.op;
    op.c = whole;
    pl_gemm_with(k, &op);
    for (int j0 = 0; j0 < g->N; j0 += 16) {
        op.N = g->N - j0 < 16 ? g->N - j0 : 16;
        op.b = f.b + col(j0, f.op.b_ps);
        op.c = parts + col(j0, f.op.c_ps);
        pl_gemm_with(k, &op);
    }
    size_t differ = differing(whole, parts, f.nc);
    printf("bf16 %-52s in pieces of 16 columns: %zu differ\n", g->what, differ);
    ck_assert_msg(differ == 0, "%s: %zu values differ", g->what, differ);
    free(whole);
    free(parts);
    bfix_free(&f);
}
END_TEST

Suite *bf16_suite(void)
{
    Suite *s = suite_create("bf16");
    TCase *tc = tcase_create("bf16");
    tcase_set_timeout(tc, 60);
    const int n = (int)(sizeof BCASES / sizeof *BCASES);
    tcase_add_test(tc, test_bf16_rounding);
    tcase_add_test(tc, test_bf16_pairs_layout);
    tcase_add_loop_test(tc, test_bf16_soft_is_the_definition, 0, n);
    tcase_add_loop_test(tc, test_bf16_hardware_matches_soft, 0, n);
    tcase_add_test(tc, test_bf16_hardware_rounds_as_soft);
    tcase_add_loop_test(tc, test_bf16_error_is_bf16s, 0, n);
    tcase_add_loop_test(tc, test_bf16_column_split_changes_no_bit, 0, n);
    suite_add_tcase(s, tc);
    return s;
}
