/* Adam, schedules, clipping and the RNG against hand-computed values. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "testutil.h"

/* One step from zero moments: m = 0.05, v = 0.00025, bias corrections
 * 0.1 and 0.001, so the update is lr * 0.5 / (0.5 + 1e-8) = 0.1. */
START_TEST(test_adam_one_step)
{
    float p = 1.0f, g = 0.5f, m = 0, v = 0;
    pl_adam(&p, &g, &m, &v, 1, 0.1f, 0.9f, 0.999f, 1e-8f, 1, 1.0f);
    ck_assert_float_eq_tol(m, 0.05f, 1e-7f); /* float rounding of 1 - beta1 */
    ck_assert_float_eq_tol(v, 0.00025f, 1e-8f);
    ck_assert_float_eq_tol(p, 0.9f, 1e-7f);
    /* a negative gradient moves the other way by the same amount */
    float q = 1.0f, h = -3.0f, mq = 0, vq = 0;
    pl_adam(&q, &h, &mq, &vq, 1, 0.1f, 0.9f, 0.999f, 1e-8f, 1, 1.0f);
    ck_assert_float_eq_tol(q, 1.1f, 1e-7f);
}
END_TEST

/* Three steps with gradients 1, -2, 0.5 and lr 0.01, by hand:
 *  t=1: m=0.1      v=0.001         mhat=1        vhat=1          p=1-0.01*1/1         = 0.99
 *  t=2: m=-0.11    v=0.004999      mhat=-0.578947 vhat=2.500750  p+=0.01*0.578947/1.581376 = 0.993661
 *  t=3: m=-0.049   v=0.005244001   mhat=-0.180812 vhat=1.749584  p+=0.01*0.180812/1.322718 = 0.995028 */
START_TEST(test_adam_three_steps)
{
    float p = 1.0f, m = 0, v = 0;
    const float grads[3] = {1.0f, -2.0f, 0.5f};
    const float want_p[3] = {0.99f, 0.9936610f, 0.9950280f};
    const float want_m[3] = {0.1f, -0.11f, -0.049f};
    for (int t = 0; t < 3; t++) {
        pl_adam(&p, &grads[t], &m, &v, 1, 0.01f, 0.9f, 0.999f, 1e-8f, t + 1, 1.0f);
        printf("adam t=%d: p %.7f (want %.7f), m %.7f\n", t + 1, p, want_p[t], m);
        ck_assert_float_eq_tol(m, want_m[t], 1e-7f);
        ck_assert_float_eq_tol(p, want_p[t], 2e-6f);
    }
    ck_assert_float_eq_tol(v, 0.005244001f, 2e-7f); /* 1 - beta2 in float is 0.00100005 */
}
END_TEST

/* grad_scale (the clipping factor) multiplies the gradient before the
 * moments: scale 0.5 with gradient 4 is gradient 2. */
START_TEST(test_adam_grad_scale)
{
    float p1 = 0, g1 = 4, m1 = 0, v1 = 0, p2 = 0, g2 = 2, m2 = 0, v2 = 0;
    pl_adam(&p1, &g1, &m1, &v1, 1, 0.01f, 0.9f, 0.999f, 1e-8f, 1, 0.5f);
    pl_adam(&p2, &g2, &m2, &v2, 1, 0.01f, 0.9f, 0.999f, 1e-8f, 1, 1.0f);
    ck_assert_float_eq(m1, m2);
    ck_assert_float_eq(v1, v2);
    ck_assert_float_eq(p1, p2);
}
END_TEST

/* Every set's update does each lane's operations in the scalar order:
 * bitwise equal, tail lanes included (n = 997: 5 lanes past the last whole
 * vector of 8 or 16, 1 past one of 4). */
START_TEST(test_adam_sets_match_generic)
{
    const pl_gemm_backend be = tu_sets[_i];
    if (be == PL_GEMM_NAIVE || !tu_set_runs(be, "Adam"))
        return;
    enum { N = 1000 };
    static float p1[N], g[N], m1[N], v1[N], p2[N], m2[N], v2[N];
    tu_fill(p1, N, 1.0f, 1);
    tu_fill(g, N, 0.1f, 2);
    tu_fill(m1, N, 0.01f, 3);
    tu_fill(v1, N, 0.001f, 4);
    for (int i = 0; i < N; i++)
        v1[i] = fabsf(v1[i]);
    memcpy(p2, p1, sizeof p1);
    memcpy(m2, m1, sizeof m1);
    memcpy(v2, v1, sizeof v1);
    pl_adam_k k = {0.01f / 0.19f, 0.9f, 0.999f, 0.1f, 0.001f, 22.4f, 1e-8f, 0.7f};
    pl_adam_generic(p1, g, m1, v1, N - 3, &k);
    pl_kernels_of(be)->adam(p2, g, m2, v2, N - 3, &k);
    ck_assert_int_eq(memcmp(p1, p2, sizeof p1), 0);
    ck_assert_int_eq(memcmp(m1, m2, sizeof m1), 0);
    ck_assert_int_eq(memcmp(v1, v2, sizeof v1), 0);
    static float p0[N];
    tu_fill(p0, N, 1.0f, 1);
    ck_assert(p2[N - 1] == p0[N - 1]); /* beyond n: untouched */
    for (int i = 0; i < N - 3; i++)    /* every parameter moved */
        ck_assert_msg(p2[i] != p0[i], "%s: parameter %d not updated", pl_gemm_name(be), i);
    printf("adam %s: bitwise equal to the scalar loop over %d floats\n", pl_gemm_name(be), N - 3);
}
END_TEST

START_TEST(test_schedules)
{
    ck_assert_float_eq(pl_lr_at(PL_SCHED_CONSTANT, 0.01f, 123, 550), 0.01f);
    ck_assert_float_eq(pl_lr_at(PL_SCHED_COSINE, 0.01f, 0, 550), 0.01f);
    ck_assert_float_eq_tol(pl_lr_at(PL_SCHED_COSINE, 0.01f, 275, 550), 0.005f, 1e-9f);
    ck_assert_float_eq_tol(pl_lr_at(PL_SCHED_COSINE, 0.01f, 549, 550),
                           0.01f * 0.5f * (1.0f + cosf((float)M_PI * 549.0f / 550.0f)), 1e-9f);
    ck_assert(pl_lr_at(PL_SCHED_COSINE, 0.01f, 549, 550) < 1e-6f);
    ck_assert(pl_lr_at(PL_SCHED_COSINE, 0.01f, 100, 550) >
              pl_lr_at(PL_SCHED_COSINE, 0.01f, 101, 550));
}
END_TEST

START_TEST(test_sum_squares)
{
    float x[19];
    double want = 0;
    for (int i = 0; i < 19; i++) {
        x[i] = (float)(i - 9) * 0.5f;
        want += (double)x[i] * x[i];
    }
    ck_assert_double_eq_tol(pl_sum_squares(x, 19), want, 1e-12);
    ck_assert_double_eq(pl_sum_squares(x, 0), 0.0);
}
END_TEST

/* One trainer step with clipping against the update computed here by
 * hand from the unclipped gradient g of the same batch: with norm |g| and
 * scale s = clip / |g| when |g| > clip (else 1), Adam's first step is
 *   p1 = p0 - lr * (s g) / (|s g| + eps)
 * (m / (1 - b1) = s g and sqrt(v / (1 - b2)) = |s g|). eps = 1 makes the
 * update proportional to s for small gradients, so a wrong scale shows;
 * with the default 1e-8 Adam's first step hardly depends on it. */
static void clipped_step(const pl_dataset *ds, float clip, const float *g, const float *p0,
                         double norm, size_t np)
{
    pl_config cfg = {5, 16, 3, 1};
    pl_train_opts o;
    pl_train_opts_default(&o);
    o.batch = 10;
    o.workers = o.threads = 1;
    o.eps = 1.0f;
    o.lr = 0.1f;
    o.schedule = PL_SCHED_CONSTANT;
    o.clip = clip;
    pl_error err = {0};
    pl_trainer *tr = pl_trainer_create(&cfg, ds->T, &o, &err);
    ck_assert_ptr_nonnull(tr);
    ck_assert_int_eq(memcmp(pl_trainer_params(tr), p0, sizeof(float) * np), 0);
    uint32_t idx[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    pl_step_stats st;
    ck_assert_int_eq(pl_trainer_step(tr, ds, idx, 10, 0, 1, &st, &err), PL_OK);
    ck_assert_double_eq_tol(st.grad_norm, norm, 1e-9 * norm); /* before clipping */
    ck_assert_float_eq(st.lr, 0.1f);
    float scale = clip > 0 && norm > clip ? (float)(clip / norm) : 1.0f;
    const float *p1 = pl_trainer_params(tr);
    double worst = 0, biggest = 0;
    for (size_t i = 0; i < np; i++) {
        double gs = (double)(g[i] * scale);
        double want = p0[i] - 0.1 * gs / (fabs(gs) + 1.0);
        worst = fmax(worst, fabs(p1[i] - want));
        biggest = fmax(biggest, fabs(p1[i] - p0[i]));
    }
    printf("clip %g (norm %.4f, scale %.4f): largest update %.3e, largest difference from the "
           "hand-computed one %.2e\n", clip, norm, scale, biggest, worst);
    ck_assert(biggest > 1e-5);
    ck_assert_msg(worst < 1e-6 && worst < 1e-3 * biggest, "clip %g: the update differs by %g",
                  clip, worst);
    pl_trainer_free(tr);
}

START_TEST(test_clipped_update_by_hand)
{
    const char *dir = tu_dir;
    tu_make_dataset(dir, 40, 10, 6, 5, 3, 8);
    pl_dataset ds;
    pl_error err;
    ck_assert_int_eq(pl_dataset_load(&ds, dir, "train", 0, &err), PL_OK);
    pl_config cfg = {5, 16, 3, 1};
    size_t np = pl_param_count(&cfg);
    pl_train_opts o;
    pl_train_opts_default(&o);
    o.batch = 10;
    o.workers = o.threads = 1;
    pl_trainer *tr = pl_trainer_create(&cfg, ds.T, &o, &err);
    ck_assert_ptr_nonnull(tr);
    uint32_t idx[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    pl_step_stats st;
    ck_assert_int_eq(pl_trainer_gradient(tr, &ds, idx, 10, &st, &err), PL_OK);
    float *g = malloc(sizeof(float) * np), *p0 = malloc(sizeof(float) * np);
    memcpy(g, pl_trainer_grad(tr), sizeof(float) * np);
    memcpy(p0, pl_trainer_params(tr), sizeof(float) * np);
    double norm = 0;
    for (size_t i = 0; i < np; i++)
        norm += (double)g[i] * g[i];
    norm = sqrt(norm);
    ck_assert_double_eq_tol(st.grad_norm, norm, 1e-9 * norm);
    ck_assert(norm > 0.1);
    pl_trainer_free(tr);
    clipped_step(&ds, (float)(0.5 * norm), g, p0, norm, np);  /* clipped to half */
    clipped_step(&ds, (float)(0.05 * norm), g, p0, norm, np); /* to a twentieth */
    clipped_step(&ds, (float)(2 * norm), g, p0, norm, np);    /* below the clip: as is */
    clipped_step(&ds, 0.0f, g, p0, norm, np);                 /* clipping off */
    free(g);
    free(p0);
    pl_dataset_free(&ds);
}
END_TEST

/* The generator against known answers: splitmix64's published first value
 * for seed 0 (0xe220a8397b1dcdaf, the first state word), and values of
 * xoshiro256**, the uniform and normal transforms, rejection sampling,
 * Fisher-Yates and the epoch order computed by an independent
 * implementation of the published algorithms (Python integers). The epoch
 * order is what exact resume and the reproducibility of old runs rest on. */
START_TEST(test_rng)
{
    pl_rng a;
    pl_rng_seed(&a, 0);
    ck_assert_uint_eq(a.s[0], 0xe220a8397b1dcdafull);
    ck_assert_uint_eq(pl_rng_next(&a), 0x99ec5f36cb75f2b4ull);
    ck_assert_uint_eq(pl_rng_next(&a), 0xbf6e1f784956452aull);
    pl_rng_seed(&a, 42);
    const uint64_t state42[4] = {0xbdd732262feb6e95ull, 0x28efe333b266f103ull,
                                 0x47526757130f9f52ull, 0x581ce1ff0e4ae394ull};
    const uint64_t next42[4] = {0x15780b2e0c2ec716ull, 0x6104d9866d113a7eull,
                                0xae17533239e499a1ull, 0xecb8ad4703b360a1ull};
    for (int i = 0; i < 4; i++)
        ck_assert_uint_eq(a.s[i], state42[i]);
    for (int i = 0; i < 4; i++)
        ck_assert_uint_eq(pl_rng_next(&a), next42[i]);
    pl_rng_seed(&a, 7);
    ck_assert_double_eq(pl_rng_uniform(&a), 0.7005764821796896);
    ck_assert_double_eq(pl_rng_uniform(&a), 0.2787512294737843);
    pl_rng_seed(&a, 3);
    ck_assert_double_eq_tol(pl_rng_normal(&a), -0.9721068514561665, 1e-14);
    pl_rng_seed(&a, 9);
    const uint64_t below9[8] = {0, 5, 7, 6, 7, 8, 3, 7};
    for (int i = 0; i < 8; i++)
        ck_assert_uint_eq(pl_rng_below(&a, 10), below9[i]);
    /* rejection sampling where it shows: below 3 x 2^62, a quarter of the
     * draws (the 2nd and 3rd here) must be rejected, not folded */
    pl_rng_seed(&a, 13);
    const uint64_t below13[4] = {0x3e0712664d19f162ull, 0x1b522c2ca82e677eull,
                                 0xa748b99a329181aeull, 0x70a7addba7443c1full};
    for (int i = 0; i < 4; i++)
        ck_assert_uint_eq(pl_rng_below(&a, 0xc000000000000000ull), below13[i]);
    uint32_t perm[10];
    const uint32_t perm11[10] = {2, 8, 4, 3, 7, 0, 1, 9, 6, 5};
    pl_rng_seed(&a, 11);
    pl_rng_permutation(&a, perm, 10);
    ck_assert_int_eq(memcmp(perm, perm11, sizeof perm), 0);
    uint32_t order[12];
    const uint32_t order53[12] = {7, 9, 6, 2, 8, 11, 5, 3, 10, 4, 1, 0};
    const uint32_t order10[12] = {0, 1, 6, 7, 5, 3, 2, 4, 9, 10, 11, 8};
    pl_epoch_order(5, 3, order, 12);
    ck_assert_int_eq(memcmp(order, order53, sizeof order), 0);
    pl_epoch_order(1, 0, order, 12);
    ck_assert_int_eq(memcmp(order, order10, sizeof order), 0);

    /* and the distributions */
    pl_rng b;
    pl_rng_seed(&a, 1);
    pl_rng_seed(&b, 2);
    double sum = 0, sq = 0;
    for (int i = 0; i < 100000; i++) {
        double u = pl_rng_uniform(&a);
        ck_assert(u >= 0 && u < 1);
        double z = pl_rng_normal(&b);
        sum += z;
        sq += z * z;
    }
    ck_assert_double_le(fabs(sum / 1e5), 0.02);
    ck_assert_double_le(fabs(sq / 1e5 - 1), 0.02);
    uint32_t big[1000];
    int seen[1000] = {0};
    pl_epoch_order(5, 3, big, 1000);
    for (int i = 0; i < 1000; i++) {
        ck_assert_uint_lt(big[i], 1000);
        seen[big[i]]++;
    }
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(seen[i], 1);
}
END_TEST

Suite *optim_suite(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tu_tcase_with_dir("adam");
    tcase_add_test(tc, test_adam_one_step);
    tcase_add_test(tc, test_adam_three_steps);
    tcase_add_test(tc, test_adam_grad_scale);
    tcase_add_loop_test(tc, test_adam_sets_match_generic, 0, tu_nsets);
    tcase_add_test(tc, test_schedules);
    tcase_add_test(tc, test_sum_squares);
    tcase_add_test(tc, test_clipped_update_by_hand);
    tcase_add_test(tc, test_rng);
    suite_add_tcase(s, tc);
    return s;
}
