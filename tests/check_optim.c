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
    pl_adam(&p, &g, &m, &v, 1, 0.1f, 0.9f, 0.999f, 1e-8f, 1, 1.0f, 0.0f);
    ck_assert_float_eq_tol(m, 0.05f, 1e-7f); /* float rounding of 1 - beta1 */
    ck_assert_float_eq_tol(v, 0.00025f, 1e-8f);
    ck_assert_float_eq_tol(p, 0.9f, 1e-7f);
    /* a negative gradient moves the other way by the same amount */
    float q = 1.0f, h = -3.0f, mq = 0, vq = 0;
    pl_adam(&q, &h, &mq, &vq, 1, 0.1f, 0.9f, 0.999f, 1e-8f, 1, 1.0f, 0.0f);
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
        pl_adam(&p, &grads[t], &m, &v, 1, 0.01f, 0.9f, 0.999f, 1e-8f, t + 1, 1.0f, 0.0f);
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
    pl_adam(&p1, &g1, &m1, &v1, 1, 0.01f, 0.9f, 0.999f, 1e-8f, 1, 0.5f, 0.0f);
    pl_adam(&p2, &g2, &m2, &v2, 1, 0.01f, 0.9f, 0.999f, 1e-8f, 1, 1.0f, 0.0f);
    ck_assert_float_eq(m1, m2);
    ck_assert_float_eq(v1, v2);
    ck_assert_float_eq(p1, p2);
}
END_TEST

/* Every set's update does each lane's operations in the scalar order:
 * bitwise equal, tail lanes included (n = 997: 5 lanes past the last whole
 * vector of 8 or 16, 1 past one of 4); without weight decay (keep 1) and
 * with it (keep 0.9993: lr 0.007, decay 0.1). */
START_TEST(test_adam_sets_match_generic)
{
    const pl_gemm_backend be = tu_sets[_i];
    if (be == PL_GEMM_NAIVE || !tu_set_runs(be, "Adam"))
        return;
    enum { N = 1000 };
    const float keeps[2] = {1.0f, 0.9993f};
    for (int d = 0; d < 2; d++) {
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
        pl_adam_k k = {.step = 0.01f / 0.19f, .b1 = 0.9f, .b2 = 0.999f, .b1c = 0.1f,
                       .b2c = 0.001f, .rbc2 = 22.4f, .eps = 1e-8f, .scale = 0.7f,
                       .keep = keeps[d]};
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
        printf("adam %s, keep %g: bitwise equal to the scalar loop over %d floats\n",
               pl_gemm_name(be), (double)keeps[d], N - 3);
    }
}
END_TEST

/* AdamW by hand. One step from zero moments as in test_adam_one_step
 * (Adam's step 0.1 at lr 0.1), with decay 0.5: the parameter is first
 * multiplied by 1 - 0.1 x 0.5 = 0.95, then moved: 1 -> 0.95 - 0.1 = 0.85,
 * and -2 -> -1.9 + 0.1 = -1.8 (gradient -3). Decay 0 is the update of
 * before decay existed, bit for bit: p -= step x m / den, on every set. */
START_TEST(test_adamw_by_hand)
{
    float p = 1.0f, g = 0.5f, m = 0, v = 0;
    pl_adam(&p, &g, &m, &v, 1, 0.1f, 0.9f, 0.999f, 1e-8f, 1, 1.0f, 0.5f);
    ck_assert_float_eq_tol(p, 0.85f, 1e-7f);
    float q = -2.0f, h = -3.0f, mq = 0, vq = 0;
    pl_adam(&q, &h, &mq, &vq, 1, 0.1f, 0.9f, 0.999f, 1e-8f, 1, 1.0f, 0.5f);
    ck_assert_float_eq_tol(q, -1.8f, 1e-7f);
    /* the decay acts on the parameter alone: the moments are Adam's */
    ck_assert_float_eq_tol(m, 0.05f, 1e-7f);
    const pl_adam_k k = pl_adam_constants(0.1f, 0.9f, 0.999f, 1e-8f, 1, 1.0f, 0.5f);
    ck_assert_float_eq(k.keep, 0.95f);
    ck_assert_float_eq(pl_adam_constants(0.1f, 0.9f, 0.999f, 1e-8f, 1, 1.0f, 0.0f).keep, 1.0f);

    enum { N = 203 };
    static float p0[N], gr[N], m0[N], v0[N], pa[N], ma[N], va[N];
    tu_fill(p0, N, 1.0f, 5);
    tu_fill(gr, N, 0.1f, 6);
    tu_fill(m0, N, 0.01f, 7);
    tu_fill(v0, N, 0.001f, 8);
    /* a zero update of -0: p x 1 keeps its sign, where p - 0 x p would not */
    p0[0] = -0.0f;
    gr[0] = m0[0] = 0.0f;
    for (int i = 0; i < N; i++)
        v0[i] = fabsf(v0[i]);
    const pl_adam_k k0 = pl_adam_constants(0.003f, 0.9f, 0.999f, 1e-8f, 7, 0.6f, 0.0f);
    for (int s = 0; s < tu_nsets; s++) {
        if (!pl_gemm_available(tu_sets[s]))
            continue;
        memcpy(pa, p0, sizeof pa);
        memcpy(ma, m0, sizeof ma);
        memcpy(va, v0, sizeof va);
        pl_kernels_of(tu_sets[s])->adam(pa, gr, ma, va, N, &k0);
        for (int i = 0; i < N; i++) { /* the update without decay, written out */
            float gi = gr[i] * k0.scale;
            float mi = k0.b1 * m0[i] + k0.b1c * gi;
            float vi = k0.b2 * v0[i] + k0.b2c * gi * gi;
            float want = p0[i] - k0.step * mi / (sqrtf(vi) * k0.rbc2 + k0.eps);
            ck_assert_msg(memcmp(&pa[i], &want, sizeof want) == 0, "%s: parameter %d: %a, "
                          "without decay %a", pl_gemm_name(tu_sets[s]), i, (double)pa[i],
                          (double)want);
        }
    }
}
END_TEST

/* RMSprop by hand (torch.optim.RMSprop's defaults, alpha 0.99): gradients
 * 1, -2, 0.5 at lr 0.01 from v = 0, no bias correction (computed in
 * double):
 *  t=1: v=0.01      p = 1 - 0.01 x 1 / 0.1                = 0.9
 *  t=2: v=0.0499    p = 0.9 + 0.01 x 2 / 0.2233831       = 0.9895323
 *  t=3: v=0.051901  p = 0.9895323 - 0.01 x 0.5 / 0.2278179 = 0.9675850
 * on every kernel set (Adam's kernel with RMSprop's constants); the first
 * moment is the gradient itself, scaled by grad_scale; decay 0.5 at lr 0.1
 * multiplies the parameter by 0.95 first. */
START_TEST(test_rmsprop_by_hand)
{
    const float grads[3] = {1.0f, -2.0f, 0.5f};
    const float want_p[3] = {0.9f, 0.9895323f, 0.9675850f};
    const float want_v[3] = {0.01f, 0.0499f, 0.051901f};
    for (int s = 0; s < tu_nsets; s++) {
        if (!pl_gemm_available(tu_sets[s]))
            continue;
        float p = 1.0f, m = 0, v = 0;
        for (int t = 0; t < 3; t++) {
            const pl_adam_k k = pl_rmsprop_constants(0.01f, PL_RMSPROP_ALPHA, 1e-8f, 1.0f, 0.0f);
            pl_kernels_of(tu_sets[s])->adam(&p, &grads[t], &m, &v, 1, &k);
            ck_assert_float_eq(m, grads[t]);
            ck_assert_float_eq_tol(v, want_v[t], 1e-7f); /* 1 - 0.99f is 0.0099999905 */
            ck_assert_msg(fabsf(p - want_p[t]) < 1e-6f, "%s: t=%d: p %.7f, want %.7f",
                          pl_gemm_name(tu_sets[s]), t + 1, (double)p, (double)want_p[t]);
        }
        float q = 1.0f, h = 4.0f, mq = 0, vq = 0;
        const pl_adam_k kd = pl_rmsprop_constants(0.1f, PL_RMSPROP_ALPHA, 1e-8f, 0.5f, 0.5f);
        pl_kernels_of(tu_sets[s])->adam(&q, &h, &mq, &vq, 1, &kd);
        ck_assert_float_eq(mq, 2.0f); /* 4 x grad_scale 0.5 */
        ck_assert_float_eq_tol(q, 0.95f - 1.0f, 2e-6f); /* 0.1 x 2 / sqrt(0.04) = 1 */
    }
}
END_TEST

/* The trainer's RMSprop (--optimizer rmsprop), one step without clipping
 * from the same parameters and batch as pl_trainer_gradient: the first
 * moment holds the gradient bit for bit, v = 0.01 g^2, and every
 * parameter moved by lr g / (sqrt(v) + eps), no bias correction (Adam's
 * first step would move it by lr g / (|g| + eps), ten times less). */
START_TEST(test_trainer_rmsprop_step)
{
    pl_dataset ds = tu_dataset(tu_dir, 40, 10, 6, 5, 3, 9);
    pl_config cfg = {5, 16, 3, 1};
    size_t np = pl_param_count(&cfg);
    pl_train_opts o = tu_opts(10, 1, 1, 0, 4);
    o.schedule = PL_SCHED_CONSTANT;
    o.lr = 0.001f;
    o.clip = 0;
    o.optimizer = PL_OPT_RMSPROP;
    pl_trainer *tr = tu_trainer(&cfg, &ds, &o);
    uint32_t idx[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    pl_step_stats st;
    pl_error err = {0};
    ck_assert_int_eq(pl_trainer_gradient(tr, &ds, idx, 10, &st, &err), PL_OK);
    float *g = malloc(sizeof(float) * np), *p0 = malloc(sizeof(float) * np);
    memcpy(g, pl_trainer_grad(tr), sizeof(float) * np);
    memcpy(p0, pl_trainer_params(tr), sizeof(float) * np);
    ck_assert_int_eq(pl_trainer_step(tr, &ds, idx, 10, 0, 20, &st, &err), PL_OK);
    const float *p1 = pl_trainer_params(tr), *m = pl_trainer_moment1(tr),
                *v = pl_trainer_moment2(tr);
    ck_assert_int_eq(memcmp(m, g, sizeof(float) * np), 0);
    double worst = 0, moved = 0;
    for (size_t i = 0; i < np; i++) {
        double vi = 0.01 * (double)g[i] * g[i];
        ck_assert_msg(fabs(v[i] - vi) <= 2e-6 * vi + 1e-30, "v[%zu] %g, want %g", i,
                      (double)v[i], vi);
        double want = p0[i] - 0.001 * g[i] / (sqrt(vi) + 1e-8);
        worst = fmax(worst, fabs(p1[i] - want));
        moved = fmax(moved, fabs(p1[i] - p0[i]));
    }
    printf("rmsprop step: largest move %.2e, largest difference from the hand-computed step "
           "%.2e\n", moved, worst);
    ck_assert(moved > 0.009); /* about 10 x lr where the gradient is well above eps */
    ck_assert(worst < 1e-7);
    pl_trainer_free(tr);
    o.optimizer = (pl_optimizer)2;
    ck_assert_ptr_null(pl_trainer_create(&cfg, ds.T, &o, &err));
    ck_assert_msg(strstr(err.msg, "or optimizer 2") != NULL, "%s", err.msg);
    free(g);
    free(p0);
    pl_dataset_free(&ds);
}
END_TEST

static float lr_of(pl_schedule kind, float peak, long warmup, long total, long step)
{
    const pl_lr_plan p = {.kind = kind, .peak = peak, .warmup = warmup, .total = total};
    return pl_lr_at(&p, step);
}

START_TEST(test_schedules)
{
    ck_assert_float_eq(lr_of(PL_SCHED_CONSTANT, 0.01f, 0, 550, 123), 0.01f);
    ck_assert_float_eq(lr_of(PL_SCHED_COSINE, 0.01f, 0, 550, 0), 0.01f);
    ck_assert_float_eq_tol(lr_of(PL_SCHED_COSINE, 0.01f, 0, 550, 275), 0.005f, 1e-9f);
    ck_assert_float_eq_tol(lr_of(PL_SCHED_COSINE, 0.01f, 0, 550, 549),
                           0.01f * 0.5f * (1.0f + cosf((float)M_PI * 549.0f / 550.0f)), 1e-9f);
    ck_assert(lr_of(PL_SCHED_COSINE, 0.01f, 0, 550, 549) < 1e-6f);
    ck_assert(lr_of(PL_SCHED_COSINE, 0.01f, 0, 550, 100) >
              lr_of(PL_SCHED_COSINE, 0.01f, 0, 550, 101));
}
END_TEST

/* Warm-up by hand: 4 steps to 0.01 over 14, then cosine over the other 10.
 * Steps 0-3: 0.0025, 0.005, 0.0075, 0.01 (the peak exactly); step 4 starts
 * the cosine at the peak, step 9 is half-way (0.005), step 13 is
 * 0.01 (1 + cos(0.9 pi)) / 2 = 0.000244717. Constant after warm-up stays
 * at the peak; warm-up longer than the run only rises. */
START_TEST(test_warmup_schedule)
{
    const float want[14] = {0.0025f,      0.005f,       0.0075f,      0.01f,
                            0.01f,        0.0097552826f, 0.0090450850f, 0.0079389263f,
                            0.0065450850f, 0.005f,       0.0034549150f, 0.0020610737f,
                            0.00095491503f, 0.00024471742f};
    for (long s = 0; s < 14; s++) {
        float lr = lr_of(PL_SCHED_COSINE, 0.01f, 4, 14, s);
        printf("warm-up 4 of 14, step %ld: lr %.9g (want %.9g)\n", s, (double)lr,
               (double)want[s]);
        ck_assert_float_eq_tol(lr, want[s], 1e-9f);
    }
    ck_assert_float_eq(lr_of(PL_SCHED_COSINE, 0.01f, 4, 14, 3), 0.01f);
    ck_assert_float_eq(lr_of(PL_SCHED_COSINE, 0.01f, 4, 14, 4), 0.01f);
    ck_assert_float_eq(lr_of(PL_SCHED_CONSTANT, 0.01f, 4, 14, 1), 0.005f);
    ck_assert_float_eq(lr_of(PL_SCHED_CONSTANT, 0.01f, 4, 14, 13), 0.01f);
    ck_assert_float_eq_tol(lr_of(PL_SCHED_COSINE, 0.01f, 100, 10, 9), 0.001f, 1e-9f);
    /* no warm-up: the cosine over (step / total) as it always was */
    for (long s = 0; s < 14; s++) {
        float old = (float)(0.01f * 0.5 * (1.0 + cos(M_PI * ((double)s / 14.0))));
        ck_assert(lr_of(PL_SCHED_COSINE, 0.01f, 0, 14, s) == old);
    }
}
END_TEST

/* The peak rate for the batch: lr 0.01 at batch 400 is 0.04 (linear) or
 * 0.02 (sqrt); at batch 25, 0.0025 or 0.005; batch 100 keeps 0.01 exactly
 * either way; none is lr at every batch. The plan carries it. */
START_TEST(test_lr_scaling)
{
    pl_train_opts o;
    pl_train_opts_default(&o);
    const struct {
        pl_lr_scaling s;
        int batch;
        float want;
    } c[] = {{PL_LR_SCALE_NONE, 400, 0.01f},   {PL_LR_SCALE_LINEAR, 400, 0.04f},
             {PL_LR_SCALE_SQRT, 400, 0.02f},   {PL_LR_SCALE_LINEAR, 25, 0.0025f},
             {PL_LR_SCALE_SQRT, 25, 0.005f},   {PL_LR_SCALE_LINEAR, 100, 0.01f},
             {PL_LR_SCALE_SQRT, 100, 0.01f},   {PL_LR_SCALE_SQRT, 200, 0.0141421356f}};
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        o.lr_scaling = c[i].s;
        o.batch = c[i].batch;
        ck_assert_float_eq_tol(pl_lr_peak(&o), c[i].want, 1e-9f);
    }
    o.lr_scaling = PL_LR_SCALE_LINEAR;
    o.batch = 100;
    ck_assert_float_eq(pl_lr_peak(&o), o.lr);
    o.batch = 300;
    o.warmup = 5;
    o.schedule = PL_SCHED_CONSTANT;
    const pl_lr_plan p = pl_lr_plan_of(&o, 50);
    ck_assert_float_eq_tol(p.peak, 0.03f, 1e-9f);
    ck_assert_int_eq(p.warmup, 5);
    ck_assert_int_eq(p.total, 50);
    ck_assert_int_eq(p.kind, PL_SCHED_CONSTANT);
    ck_assert_float_eq_tol(pl_lr_at(&p, 0), 0.006f, 1e-9f);
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

/* The norm that clipping divides by is part of the training's bits: the sum
 * runs in eight lanes (lane l the squares of x[l], x[l + 8], ...; the tail
 * into lane 0), then the lanes in order, exactly. */
START_TEST(test_sum_squares_lane_order)
{
    enum { N = 1003 };
    static float x[N];
    uint64_t s = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < N; i++) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        x[i] = ldexpf((float)(s >> 40) / (float)(1 << 24), (int)(s >> 33 & 15) - 8);
    }
    double lane[8] = {0};
    int i = 0;
    for (; i + 8 <= N; i += 8)
        for (int l = 0; l < 8; l++)
            lane[l] += (double)x[i + l] * x[i + l];
    for (; i < N; i++)
        lane[0] += (double)x[i] * x[i];
    double want = 0;
    for (int l = 0; l < 8; l++)
        want += lane[l];
    ck_assert_double_eq(pl_sum_squares(x, N), want);
    double five = 0; /* fewer than eight: all in lane 0, in turn */
    for (int k = 0; k < 5; k++)
        five += (double)x[k] * x[k];
    ck_assert_double_eq(pl_sum_squares(x, 5), five);
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
        worst = fmax(worst, tu_absdiff(p1[i], want));
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

/* The trainer's step with the recipe's options, against the plain step
 * from the same parameters and batch: with 4 warm-up steps the first step
 * runs at lr / 4 (constant schedule, lr 0.04: 0.01) and, with decay 0.5,
 * every parameter is p0 (1 - 0.01 x 0.5) minus the plain step's update at
 * that rate (to float rounding: the update is measured here as the
 * plain step's p0 - p1). Linear scaling at batch 10 makes the peak of lr
 * 0.01 0.001: the first of 2 warm-up steps runs at 0.0005. */
START_TEST(test_trainer_step_warmup_and_decay)
{
    pl_dataset ds = tu_dataset(tu_dir, 40, 10, 6, 5, 3, 9);
    pl_config cfg = {5, 16, 3, 1};
    size_t np = pl_param_count(&cfg);
    pl_train_opts o = tu_opts(10, 1, 1, 0, 4);
    o.schedule = PL_SCHED_CONSTANT;
    o.lr = 0.01f;
    pl_trainer *plain = tu_trainer(&cfg, &ds, &o);
    o.lr = 0.04f;
    o.warmup = 4;
    o.weight_decay = 0.5f;
    pl_trainer *recipe = tu_trainer(&cfg, &ds, &o);
    float *p0 = malloc(sizeof(float) * np);
    memcpy(p0, pl_trainer_params(plain), sizeof(float) * np);
    ck_assert_int_eq(memcmp(p0, pl_trainer_params(recipe), sizeof(float) * np), 0);
    uint32_t idx[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    pl_step_stats st;
    pl_error err = {0};
    ck_assert_int_eq(pl_trainer_step(plain, &ds, idx, 10, 0, 20, &st, &err), PL_OK);
    ck_assert_float_eq(st.lr, 0.01f);
    ck_assert_int_eq(pl_trainer_step(recipe, &ds, idx, 10, 0, 20, &st, &err), PL_OK);
    ck_assert_float_eq(st.lr, 0.01f);
    const float *p1 = pl_trainer_params(plain), *p2 = pl_trainer_params(recipe);
    double worst = 0;
    for (size_t i = 0; i < np; i++)
        worst = fmax(worst, fabs(p2[i] - (p0[i] * 0.995 - (p0[i] - p1[i]))));
    printf("warm-up and decay: largest difference from the hand-computed step %.2e\n", worst);
    ck_assert(worst < 1e-6);
    pl_trainer_free(plain);
    pl_trainer_free(recipe);
    o.lr = 0.01f;
    o.warmup = 2;
    o.weight_decay = 0;
    o.lr_scaling = PL_LR_SCALE_LINEAR;
    recipe = tu_trainer(&cfg, &ds, &o);
    ck_assert_int_eq(pl_trainer_step(recipe, &ds, idx, 10, 0, 20, &st, &err), PL_OK);
    ck_assert_float_eq_tol(st.lr, 0.0005f, 1e-9f);
    ck_assert_int_eq(pl_trainer_step(recipe, &ds, idx, 10, 1, 20, &st, &err), PL_OK);
    ck_assert_float_eq_tol(st.lr, 0.001f, 1e-9f);
    pl_trainer_free(recipe);
    /* refused: a decay that the rate makes 1 or more, a negative warm-up */
    o.weight_decay = 1.0f;
    o.lr = 0.5f;
    o.batch = 200; /* peak 1 */
    ck_assert_ptr_null(pl_trainer_create(&cfg, ds.T, &o, &err));
    ck_assert_int_eq(err.code, PL_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "weight decay 1 at a peak rate of 1: their product") != NULL,
                  "%s", err.msg);
    o.weight_decay = 0;
    o.warmup = -1;
    ck_assert_ptr_null(pl_trainer_create(&cfg, ds.T, &o, &err));
    ck_assert_msg(strstr(err.msg, "warm-up steps must be at least 0, got -1") != NULL, "%s",
                  err.msg);
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

/* A batch of several lengths in balanced order: sorted longest first
 * (stable), then the ranks in bit-reversed order, worked out by hand for
 * 6 rows; for 100 rows of lengths 1..100 in a random order, every split
 * into 2 to 5 contiguous shards has a mean length within 10% of the
 * batch's (6 to 16: 20%), and the order is a permutation of the batch. */
START_TEST(test_balance_rows)
{
    const int32_t len[] = {0, 5, 9, 5, 2, 7, 1}; /* of items 0..6; item 0 unused */
    const uint32_t idx[] = {1, 2, 3, 4, 5, 6};
    uint32_t out[6], sorted[6];
    int cnt[10];
    pl_balance_rows(idx, 6, len, 9, out, sorted, cnt);
    /* sorted: 2 (9), 5 (7), 1 (5), 3 (5), 4 (2), 6 (1); ranks in the
     * bit-reversed order of 0..7 below 6: 0 4 2 1 5 3 */
    const uint32_t want[] = {2, 4, 1, 5, 6, 3};
    for (int i = 0; i < 6; i++)
        ck_assert_msg(out[i] == want[i], "row %d: item %u, expected %u", i, out[i], want[i]);

    enum { N = 100 };
    int32_t lens[N];
    uint32_t batch[N], bal[N], scratch[N];
    int counts[N + 1];
    pl_epoch_order(7, 0, batch, N);
    for (int i = 0; i < N; i++)
        lens[i] = i + 1;
    pl_balance_rows(batch, N, lens, N, bal, scratch, counts);
    int seen[N] = {0};
    for (int i = 0; i < N; i++)
        seen[bal[i]]++;
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(seen[i], 1);
    for (int k = 2; k <= 16; k++) {
        double worst = 0;
        for (int q = 0; q < k; q++) {
            long lo, hi, sum = 0;
            pl_split(N, q, k, &lo, &hi);
            for (long i = lo; i < hi; i++)
                sum += lens[bal[i]];
            /* a shard one row short of another is fine: cost per row */
            worst = fmax(worst, fabs(sum / (double)(hi - lo) - 50.5) / 50.5);
        }
        /* a random order is 5-55% off here; this one 1-19% (more for
         * smaller shards) */
        ck_assert_msg(worst < (k <= 5 ? 0.10 : 0.20), "%d shards: a shard's mean length "
                      "%.1f%% off", k, 100 * worst);
    }
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
    tcase_add_test(tc, test_adamw_by_hand);
    tcase_add_test(tc, test_rmsprop_by_hand);
    tcase_add_test(tc, test_trainer_rmsprop_step);
    tcase_add_test(tc, test_schedules);
    tcase_add_test(tc, test_warmup_schedule);
    tcase_add_test(tc, test_lr_scaling);
    tcase_add_test(tc, test_sum_squares);
    tcase_add_test(tc, test_sum_squares_lane_order);
    tcase_add_test(tc, test_clipped_update_by_hand);
    tcase_add_test(tc, test_trainer_step_warmup_and_decay);
    tcase_add_test(tc, test_rng);
    tcase_add_test(tc, test_balance_rows);
    suite_add_tcase(s, tc);
    return s;
}
