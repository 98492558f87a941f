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

/* The AVX-512 update does each lane's operations in the scalar order:
 * bitwise equal, tail lanes included. */
START_TEST(test_adam_avx512_matches_generic)
{
    if (!pl_cpu_has_avx512())
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
    pl_adam_avx512(p2, g, m2, v2, N - 3, &k);
    ck_assert_int_eq(memcmp(p1, p2, sizeof p1), 0);
    ck_assert_int_eq(memcmp(m1, m2, sizeof m1), 0);
    ck_assert_int_eq(memcmp(v1, v2, sizeof v1), 0);
    ck_assert(p1[N - 1] == p2[N - 1]); /* beyond n: untouched in both */
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

/* Clipping in a real step: a clip far below the gradient norm makes the
 * step report the unclipped norm, and with clip 0 nothing is scaled. */
START_TEST(test_trainer_reports_norm_and_clips)
{
    char *dir = tu_tmpdir();
    tu_make_dataset(dir, 40, 10, 6, 5, 3, 8);
    pl_dataset ds;
    pl_error err;
    ck_assert_int_eq(pl_dataset_load(&ds, dir, "train", 0, &err), PL_OK);
    pl_config cfg = {5, 16, 3, 1};
    float *after[2];
    size_t np = pl_param_count(&cfg);

    for (int k = 0; k < 2; k++) {
        pl_train_opts o;
        pl_train_opts_default(&o);
        o.batch = 10;
        o.workers = 1;
        o.threads = 1;
        o.clip = k == 0 ? 1e-6f : 0.0f;
        o.lr = 0.1f;
        pl_trainer *tr = pl_trainer_create(&cfg, ds.T, &o, &err);
        uint32_t idx[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
        pl_step_stats st;
        /* two steps: the second Adam step depends on the gradient scale */
        ck_assert_int_eq(pl_trainer_step(tr, &ds, idx, 10, 0, 2, &st, &err), PL_OK);
        ck_assert_int_eq(pl_trainer_step(tr, &ds, idx, 10, 1, 2, &st, &err), PL_OK);

        ck_assert(st.grad_norm > 1e-3);
        ck_assert_float_eq_tol(st.lr, 0.05f, 1e-7f); /* cosine at step 1 of 2 */
        after[k] = malloc(sizeof(float) * np);
        memcpy(after[k], pl_trainer_params(tr), sizeof(float) * np);
        pl_trainer_free(tr);
    }
    /* Adam is nearly scale-invariant, but with gradients scaled to a norm of
     * 1e-6 the eps term (1e-8) changes the update measurably */
    double diff = 0;
    for (size_t i = 0; i < np; i++)
        diff = fmax(diff, fabs(after[0][i] - after[1][i]));
    printf("clip 1e-6 vs none: largest parameter difference %.3e\n", diff);
    ck_assert(diff > 1e-6);
    free(after[0]);
    free(after[1]);
    pl_dataset_free(&ds);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_rng)
{
    pl_rng a, b;
    pl_rng_seed(&a, 42);
    pl_rng_seed(&b, 42);
    for (int i = 0; i < 100; i++)
        ck_assert_uint_eq(pl_rng_next(&a), pl_rng_next(&b));
    /* xoshiro256** from splitmix64(42): a fixed stream */
    pl_rng_seed(&a, 0);
    uint64_t first = pl_rng_next(&a);
    pl_rng_seed(&b, 1);
    ck_assert_uint_ne(first, pl_rng_next(&b));
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
    uint32_t order[1000];
    int seen[1000] = {0};
    pl_epoch_order(5, 3, order, 1000);
    for (int i = 0; i < 1000; i++) {
        ck_assert_uint_lt(order[i], 1000);
        seen[order[i]]++;
    }
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(seen[i], 1);
    uint32_t again[1000], other[1000];
    pl_epoch_order(5, 3, again, 1000);
    pl_epoch_order(5, 4, other, 1000);
    ck_assert_int_eq(memcmp(order, again, sizeof order), 0);
    ck_assert_int_ne(memcmp(order, other, sizeof order), 0);
    for (int i = 0; i < 1000; i++)
        ck_assert_uint_lt(pl_rng_below(&a, 7), 7);
}
END_TEST

Suite *optim_suite(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("adam");
    tcase_add_test(tc, test_adam_one_step);
    tcase_add_test(tc, test_adam_three_steps);
    tcase_add_test(tc, test_adam_grad_scale);
    tcase_add_test(tc, test_adam_avx512_matches_generic);
    tcase_add_test(tc, test_schedules);
    tcase_add_test(tc, test_sum_squares);
    tcase_add_test(tc, test_trainer_reports_norm_and_clips);
    tcase_add_test(tc, test_rng);
    suite_add_tcase(s, tc);
    return s;
}
