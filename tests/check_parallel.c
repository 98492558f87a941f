/* Data parallelism and the pool: the same batch gives the same loss and
 * gradient for every worker count (uneven shards and more workers than
 * cores included), OpenMP threads change nothing at all, and the pool runs
 * every worker every time. */
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "testutil.h"

typedef struct {
    pl_dataset ds; /* in tu_dir */
    pl_config cfg;
    float dropout;
    pl_gemm_backend be; /* the kernel set */
} data_fixture;

static void data_make(data_fixture *f, int n)
{
    f->ds = tu_dataset(tu_dir, n, 10, 9, 7, 5, 31);
    f->cfg = (pl_config){7, 24, 5, 1};
    f->dropout = 0;
    f->be = PL_GEMM_AUTO;
}

static void data_free(data_fixture *f) { pl_dataset_free(&f->ds); }

/* Loss and gradient of batch [0, n) with W workers and T threads. */
static double gradient(const data_fixture *f, int batch, int W, int T, int det, float *grad)
{
    pl_train_opts o = tu_opts(batch, W, T, det, 7);
    o.dropout = f->dropout;
    o.gemm = f->be;
    pl_trainer *tr = tu_trainer(&f->cfg, &f->ds, &o);
    ck_assert_int_eq(pl_trainer_workers(tr), W);
    /* a thread owns whole gate panels: more are capped at the panel count */
    const int panels = (f->cfg.hidden + 15) / 16;
    ck_assert_int_eq(pl_trainer_threads(tr), T < panels ? T : panels);
    uint32_t idx[64];
    for (int i = 0; i < batch; i++)
        idx[i] = (uint32_t)(i * 3 % (int)f->ds.n);
    pl_step_stats st;
    pl_error err = {0};
    ck_assert_int_eq(pl_trainer_gradient(tr, &f->ds, idx, batch, &st, &err), PL_OK);
    memcpy(grad, pl_trainer_grad(tr), sizeof(float) * pl_param_count(&f->cfg));
    pl_trainer_free(tr);
    return st.loss;
}

/* Same batch, W = 1, 2, 3, 4, 7 and 16 (more workers than cores): loss
 * within 1e-6 relative, gradient within 1e-5 of its largest entry. Shards
 * are uneven for batch 23 (e.g. 8/8/7 with 3 workers). The second run of
 * each kernel set has two layers and dropout: each image keeps its masks
 * whatever shard it falls in. Every kernel set. */
START_TEST(test_workers_agree)
{
    const pl_gemm_backend be = tu_sets[_i % tu_nsets];
    if (!tu_set_runs(be, _i < tu_nsets ? "workers agree" : NULL))
        return;
    data_fixture f;
    data_make(&f, 60);
    f.be = be;
    if (_i >= tu_nsets) {
        f.cfg.layers = 2;
        f.dropout = 0.3f;
    }
    size_t np = pl_param_count(&f.cfg);
    float *g1 = malloc(sizeof(float) * np), *gw = malloc(sizeof(float) * np);
    const int batches[] = {23, 7, 32};
    for (int bi = 0; bi < 3; bi++) {
        int batch = batches[bi];
        double l1 = gradient(&f, batch, 1, 1, 0, g1);
        double big = 0;
        for (size_t i = 0; i < np; i++)
            big = fmax(big, fabs(g1[i]));
        ck_assert(big > 1e-3);
        const int ws[] = {2, 3, 4, 7, 16};
        for (int k = 0; k < 5; k++) {
            if (ws[k] > batch)
                continue;
            double lw = gradient(&f, batch, ws[k], 1, 0, gw);
            double worst = 0;
            for (size_t i = 0; i < np; i++)
                worst = fmax(worst, fabs(gw[i] - g1[i]));
            printf("%s: batch %2d, %2d workers: loss %.9f vs %.9f, gradient difference %.2e "
                   "of %.2e\n", pl_gemm_name(be), batch, ws[k], lw, l1, worst, big);
            ck_assert_msg(fabs(lw - l1) <= 1e-6 * l1, "loss %g vs %g", lw, l1);
            ck_assert_msg(worst <= 1e-5 * big, "%d workers: gradient differs by %g", ws[k], worst);
        }
    }
    free(g1);
    free(gw);
    data_free(&f);
}
END_TEST

/* The trainer's reduced gradient, every entry of it (the last chunk's
 * last parameter included), against the double-precision reference on the
 * same rows, with 1, 3 and 7 workers and with --deterministic shards. */
START_TEST(test_trainer_gradient_matches_reference)
{
    data_fixture f;
    data_make(&f, 60);
    const int batch = 23, T = f.ds.T, D = f.ds.D;
    size_t np = pl_param_count(&f.cfg);
    float *x = malloc(sizeof(float) * (size_t)batch * T * D), *g = malloc(sizeof(float) * np);
    double *ref = malloc(sizeof(double) * np);
    uint8_t labels[64];
    for (int i = 0; i < batch; i++) {
        int item = i * 3 % (int)f.ds.n; /* the rows gradient() takes */
        labels[i] = f.ds.labels[item];
        for (int k = 0; k < T * D; k++)
            x[(size_t)i * T * D + k] = f.ds.images[(size_t)item * T * D + k] / 255.0f;
    }
    pl_train_opts o;
    pl_train_opts_default(&o);
    o.seed = 7;
    pl_error err = {0};
    pl_trainer *init = pl_trainer_create(&f.cfg, T, &o, &err); /* its initial parameters */
    ck_assert_ptr_nonnull(init);
    double ref_loss = pl_ref_loss_grad(&f.cfg, pl_trainer_params(init), x, labels, batch, T,
                                       (double)batch, ref, NULL);
    pl_trainer_free(init);
    double big = 0;
    for (size_t i = 0; i < np; i++)
        big = fmax(big, fabs(ref[i]));
    const int conf[][2] = {{1, 0}, {3, 0}, {7, 0}, {2, 1}};
    for (int k = 0; k < 4; k++) {
        double loss = gradient(&f, batch, conf[k][0], 1, conf[k][1], g);
        double worst = 0;
        size_t at = 0;
        for (size_t i = 0; i < np; i++)
            if (fabs(g[i] - ref[i]) > worst) {
                worst = fabs(g[i] - ref[i]);
                at = i;
            }
        printf("trainer gradient, %d worker%s%s: loss %.9f vs %.9f, largest difference %.2e "
               "(at %zu of %zu) of %.2e\n", conf[k][0], conf[k][0] > 1 ? "s" : "",
               conf[k][1] ? ", deterministic" : "", loss, ref_loss, worst, at, np, big);
        ck_assert_msg(fabs(loss - ref_loss) <= 1e-5 * ref_loss, "loss %g vs %g", loss, ref_loss);
        ck_assert_msg(worst <= 1e-4 * big, "gradient entry %zu differs by %g", at, worst);
        ck_assert_msg(fabs(ref[np - 1]) > 1e-3 * big, "the last entry is no test");
    }
    free(x);
    free(g);
    free(ref);
    data_free(&f);
}
END_TEST

/* OpenMP threads split work by whole output columns: bitwise equal, on
 * every kernel set. */
START_TEST(test_threads_bitwise_equal)
{
    if (!tu_set_runs(tu_sets[_i], "threads change no bit"))
        return;
    data_fixture f;
    data_make(&f, 60);
    f.be = tu_sets[_i];
    size_t np = pl_param_count(&f.cfg);
    float *a = malloc(sizeof(float) * np), *b = malloc(sizeof(float) * np);
    for (int W = 1; W <= 2; W++) {
        double la = gradient(&f, 20, W, 1, 0, a);
        double lb = gradient(&f, 20, W, 2, 0, b);
        ck_assert(la == lb);
        ck_assert_int_eq(memcmp(a, b, sizeof(float) * np), 0);
        lb = gradient(&f, 20, W, 3, 0, b); /* 2 gate panels: 3 threads capped at 2 */
        ck_assert_int_eq(memcmp(a, b, sizeof(float) * np), 0);
    }
    free(a);
    free(b);
    /* 7 gate panels in 3 threads: the second owns units 48-79, which the
     * backward products take in two pieces (48-63, 64-79) */
    f.cfg.hidden = 112;
    np = pl_param_count(&f.cfg);
    a = malloc(sizeof(float) * np);
    b = malloc(sizeof(float) * np);
    ck_assert(gradient(&f, 20, 1, 1, 0, a) == gradient(&f, 20, 1, 3, 0, b));
    ck_assert_int_eq(memcmp(a, b, sizeof(float) * np), 0);
    free(a);
    free(b);
    data_free(&f);
}
END_TEST

/* Whole training steps with 4 workers and 2 threads each on 2 cores still
 * match one worker after 5 steps (parameters within 1e-4). */
START_TEST(test_steps_oversubscribed)
{
    data_fixture f;
    data_make(&f, 60);
    size_t np = pl_param_count(&f.cfg);
    float *p[2];
    int conf[2][2] = {{1, 1}, {4, 2}};
    for (int k = 0; k < 2; k++) {
        pl_train_opts o;
        pl_train_opts_default(&o);
        o.batch = 12;
        o.workers = conf[k][0];
        o.threads = conf[k][1];
        pl_error err;
        pl_trainer *tr = pl_trainer_create(&f.cfg, f.ds.T, &o, &err);
        ck_assert_ptr_nonnull(tr);
        uint32_t order[60];
        pl_epoch_order(3, 0, order, 60);
        for (int s = 0; s < 5; s++)
            ck_assert_int_eq(pl_trainer_step(tr, &f.ds, order + 12 * s, 12, s, 5, NULL, &err),
                             PL_OK);
        p[k] = malloc(sizeof(float) * np);
        memcpy(p[k], pl_trainer_params(tr), sizeof(float) * np);
        pl_trainer_free(tr);
    }
    double worst = 0;
    for (size_t i = 0; i < np; i++)
        worst = fmax(worst, fabs(p[0][i] - p[1][i]));
    printf("5 steps, 1x1 vs 4x2: largest parameter difference %.2e\n", worst);
    ck_assert(worst < 1e-4);
    free(p[0]);
    free(p[1]);
    data_free(&f);
}
END_TEST

/* --pin ties the caller's thread (worker 0) to one CPU; the CPUs this
 * process may use, and so the next trainer's workers, stay all of them. */
START_TEST(test_pin_keeps_the_process_cpus)
{
    int before = pl_cpu_count();
    pl_train_opts o;
    pl_train_opts_default(&o);
    o.batch = 20;
    o.workers = 1;
    o.threads = 1;
    o.pin = 1;
    const pl_config cfg = {7, 24, 5, 1};
    pl_error err = {0};
    pl_trainer *tr = pl_trainer_create(&cfg, 9, &o, &err);
    ck_assert_msg(tr != NULL, "%s", err.msg);
    cpu_set_t mine;
    ck_assert_int_eq(sched_getaffinity(0, sizeof mine, &mine), 0);
    printf("pin: %d CPUs before, this thread now on %d, pl_cpu_count %d\n", before,
           CPU_COUNT(&mine), pl_cpu_count());
    ck_assert_int_eq(CPU_COUNT(&mine), 1); /* pinned indeed */
    ck_assert_int_eq(pl_cpu_count(), before);
    pl_trainer_free(tr);
}
END_TEST

START_TEST(test_worker_count_checks)
{
    pl_config cfg = {7, 24, 5, 1};
    pl_train_opts o;
    pl_train_opts_default(&o);
    o.batch = 4;
    o.workers = 5;
    pl_error err = {0};
    ck_assert_ptr_null(pl_trainer_create(&cfg, 9, &o, &err));
    ck_assert_int_eq(err.code, PL_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "batch 4 is smaller than workers 5"));
    /* absurd sizes are refused before any allocation is touched */
    pl_config huge = {28, 8192, 10, 1};
    o.batch = 60000;
    o.workers = 1;
    ck_assert_ptr_null(pl_trainer_create(&huge, 28, &o, &err));
    ck_assert_int_eq(err.code, PL_ERR_TOO_LARGE);
    ck_assert_msg(strstr(err.msg, "GiB of buffers for 28 time steps, the machine has") != NULL,
                  "%s", err.msg);
    int w = 0, t = 0;
    const pl_config h128 = {28, 128, 10, 1}, h256 = {28, 256, 10, 1}, h1024 = {28, 1024, 10, 1};
    pl_resolve_parallelism(&h128, 100, 2, &w, &t);
    ck_assert_int_eq(w, 2);
    ck_assert_int_eq(t, 1);
    w = t = 0;
    pl_resolve_parallelism(&h128, 100, 64, &w, &t);
    ck_assert_int_eq(w, 6); /* shards of 16 or more rows */
    ck_assert_int_eq(t, 8); /* 10 CPUs each, but only 8 gate panels */
    w = t = 0;
    pl_resolve_parallelism(&h256, 20, 64, &w, &t);
    ck_assert_int_eq(w, 1);
    ck_assert_int_eq(t, 16);
    /* 17 MiB of weights: threads first, two panels each, then workers */
    w = t = 0;
    pl_resolve_parallelism(&h1024, 100, 2, &w, &t);
    ck_assert_int_eq(w, 1);
    ck_assert_int_eq(t, 2);
    w = t = 0;
    pl_resolve_parallelism(&h1024, 100, 64, &w, &t);
    ck_assert_int_eq(w, 2);
    ck_assert_int_eq(t, 32);
    w = t = 0;
    pl_resolve_parallelism(&h1024, 1000, 256, &w, &t);
    ck_assert_int_eq(w, 8);
    ck_assert_int_eq(t, 32);
    /* 1.2 MB at hidden 256, three layers of 128 1.4 MB: workers first */
    const pl_config three = {28, 128, 10, 3}, h512 = {28, 512, 10, 1};
    w = t = 0;
    pl_resolve_parallelism(&h256, 100, 2, &w, &t);
    ck_assert_int_eq(w, 2);
    ck_assert_int_eq(t, 1);
    w = t = 0;
    pl_resolve_parallelism(&h256, 100, 16, &w, &t);
    ck_assert_int_eq(w, 6);
    ck_assert_int_eq(t, 2);
    w = t = 0;
    pl_resolve_parallelism(&three, 100, 2, &w, &t);
    ck_assert_int_eq(w, 2);
    /* hidden 512: 4.4 MB in fp32, threads first; 2.2 MB in bf16, workers */
    w = t = 0;
    pl_resolve_parallelism(&h512, 100, 2, &w, &t);
    ck_assert_int_eq(w, 1);
    ck_assert_int_eq(t, 2);
    w = t = 0;
    pl_resolve_parallelism_bytes(&h512, 2, 100, 2, &w, &t);
    ck_assert_int_eq(w, 2);
    ck_assert_int_eq(t, 1);
    w = t = 0;
    pl_resolve_parallelism_bytes(&h512, 4, 100, 2, &w, &t);
    ck_assert_int_eq(w, 1);
    /* the trainer counts the bytes its products read: at hidden 512 on 2
     * CPUs, bf16 puts workers first and fp32 threads */
    if (pl_cpu_count() == 2) {
        for (int p = 0; p < 2; p++) {
            pl_train_opts_default(&o);
            o.batch = 100;
            o.precision = p ? PL_PRECISION_BF16 : PL_PRECISION_FP32;
            pl_trainer *tr = pl_trainer_create(&h512, 28, &o, &err);
            ck_assert_msg(tr != NULL, "%s", err.msg);
            ck_assert_int_eq(pl_trainer_workers(tr), (p ? 2 : 1));
            ck_assert_int_eq(pl_trainer_threads(tr), (p ? 1 : 2));
            pl_trainer_free(tr);
        }
    }
    w = 0;
    t = 2;
    pl_resolve_parallelism(&h128, 100, 8, &w, &t);
    ck_assert_int_eq(w, 4);
    w = 3;
    t = 0;
    pl_resolve_parallelism(&h128, 100, 8, &w, &t);
    ck_assert_int_eq(t, 2);
}
END_TEST

typedef struct {
    pl_pool *pool;
    int counts[8][16]; /* a cache line each */
    int phase2_saw[8];
} pool_ctx;

static void pool_fn(void *p, int w)
{
    pool_ctx *c = p;
    c->counts[w][0]++;
    pl_pool_barrier(c->pool);
    /* after the barrier every worker has counted this run */
    int sum = 0;
    for (int k = 0; k < pl_pool_size(c->pool); k++)
        sum += c->counts[k][0];
    c->phase2_saw[w] = sum;
}

START_TEST(test_pool_runs_every_worker)
{
    pool_ctx c;
    memset(&c, 0, sizeof c);
    pl_error err;
    c.pool = pl_pool_create(5, &err);
    ck_assert_ptr_nonnull(c.pool);
    ck_assert_int_eq(pl_pool_size(c.pool), 5);
    for (int r = 1; r <= 2000; r++) {
        pl_pool_run(c.pool, pool_fn, &c);
        for (int w = 0; w < 5; w++) {
            ck_assert_int_eq(c.counts[w][0], r);
            ck_assert_int_eq(c.phase2_saw[w], 5 * r);
        }
    }
    pl_pool_free(c.pool);
    ck_assert_ptr_null(pl_pool_create(0, &err));
    ck_assert_int_eq(err.code, PL_ERR_ARG);
}
END_TEST

Suite *parallel_suite(void)
{
    Suite *s = suite_create("parallel");
    TCase *tc = tu_tcase_with_dir("data-parallel");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_workers_agree, 0, 2 * tu_nsets);
    tcase_add_test(tc, test_trainer_gradient_matches_reference);
    tcase_add_loop_test(tc, test_threads_bitwise_equal, 0, tu_nsets);
    tcase_add_test(tc, test_steps_oversubscribed);
    tcase_add_test(tc, test_worker_count_checks);
    tcase_add_test(tc, test_pin_keeps_the_process_cpus);
    tcase_add_test(tc, test_pool_runs_every_worker);
    suite_add_tcase(s, tc);
    return s;
}
