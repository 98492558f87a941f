/* End to end through the library: training on a small synthetic set makes
 * the loss fall and the accuracy rise, a seed reproduces bit for bit, and
 * model files round-trip and refuse damage. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

/* Trains `steps` steps; returns the mean loss of the first and last 5. */
static void train_run(const pl_dataset *ds, const pl_config *cfg, int W, int T, int steps,
                      uint64_t seed, double *first, double *last, float *params_out)
{
    pl_train_opts o;
    pl_train_opts_default(&o);
    o.batch = 20;
    o.workers = W;
    o.threads = T;
    o.seed = seed;
    pl_error err = {0};
    pl_trainer *tr = pl_trainer_create(cfg, ds->T, &o, &err);
    ck_assert_msg(tr != NULL, "%s", err.msg);
    long spe = (long)ds->n / 20;
    uint32_t *order = malloc(sizeof *order * ds->n);
    *first = *last = 0;
    for (long s = 0; s < steps; s++) {
        if (s % spe == 0)
            pl_epoch_order(seed, s / spe, order, ds->n);
        pl_step_stats st;
        ck_assert_int_eq(pl_trainer_step(tr, ds, order + (s % spe) * 20, 20, s, steps, &st, &err),
                         PL_OK);
        ck_assert(isfinite(st.loss));
        if (s < 5)
            *first += st.loss / 5;
        if (s >= steps - 5)
            *last += st.loss / 5;
    }
    if (params_out)
        memcpy(params_out, pl_trainer_params(tr), sizeof(float) * pl_param_count(cfg));
    free(order);
    pl_trainer_free(tr);
}

START_TEST(test_loss_falls)
{
    char *dir = tu_tmpdir();
    tu_make_dataset(dir, 400, 200, 10, 8, 4, 21);
    pl_dataset train;
    pl_error err;
    ck_assert_int_eq(pl_dataset_load(&train, dir, "train", 0, &err), PL_OK);
    pl_config cfg = {8, 32, 4, 1};
    double first, last;
    train_run(&train, &cfg, 2, 1, 60, 1, &first, &last, NULL);
    printf("60 steps: mean loss of the first 5 %.4f, of the last 5 %.4f\n", first, last);
    fflush(stdout);
    ck_assert_msg(last < 0.5 * first, "loss %g -> %g did not halve", first, last);
    ck_assert(first > 0.8); /* ln 4 = 1.39 at the very start */
    pl_dataset_free(&train);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_same_seed_same_bits)
{
    char *dir = tu_tmpdir();
    tu_make_dataset(dir, 200, 20, 7, 6, 3, 22);
    pl_dataset ds;
    pl_error err;
    ck_assert_int_eq(pl_dataset_load(&ds, dir, "train", 0, &err), PL_OK);
    pl_config cfg = {6, 20, 3, 1};
    size_t np = pl_param_count(&cfg);
    float *a = malloc(sizeof(float) * np), *b = malloc(sizeof(float) * np);
    double f1, l1, f2, l2;
    train_run(&ds, &cfg, 2, 1, 15, 9, &f1, &l1, a);
    train_run(&ds, &cfg, 2, 1, 15, 9, &f2, &l2, b);
    ck_assert_int_eq(memcmp(a, b, sizeof(float) * np), 0);
    train_run(&ds, &cfg, 2, 1, 15, 10, &f2, &l2, b);
    ck_assert_int_ne(memcmp(a, b, sizeof(float) * np), 0);
    free(a);
    free(b);
    pl_dataset_free(&ds);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_model_file_round_trip_and_damage)
{
    char *dir = tu_tmpdir();
    pl_config cfg = {5, 12, 3, 1};
    size_t np = pl_param_count(&cfg);
    float *p = pl_alloc_floats(np);
    pl_model_init(&cfg, p, PL_INIT_DEFAULT, 4);
    const char *path = tu_path(dir, "m.bin");
    pl_error err = {0};
    ck_assert_int_eq(pl_model_save(path, &cfg, p, NULL, &err), PL_OK);
    pl_config got;
    float *q = NULL;
    ck_assert_int_eq(pl_model_load(path, &got, &q, &err), PL_OK);
    ck_assert_int_eq(got.input, 5);
    ck_assert_int_eq(got.hidden, 12);
    ck_assert_int_eq(got.classes, 3);
    ck_assert_int_eq(memcmp(p, q, sizeof(float) * np), 0);
    pl_free(q);

    /* read the good file, then write damaged copies */
    FILE *f = fopen(path, "rb");
    unsigned char buf[65536];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    ck_assert_uint_eq(len, 32 + 4 * np + 4);
    struct {
        const char *what;
        size_t at, keep;
        unsigned char xor_mask;
        int append;
        pl_status want;
        const char *fragment;
    } bad[] = {
        {"magic", 0, 0, 0x01, 0, PL_ERR_MAGIC, "PLSTMMDL"},
        {"version", 8, 0, 0x02, 0, PL_ERR_VERSION, "version 3"},
        {"config", 19, 0, 0x80, 0, PL_ERR_MISMATCH, "bad model config"},
        {"parameter count", 24, 0, 0x01, 0, PL_ERR_MISMATCH, "a 5-12-3 model has"},
        {"parameter byte", 200, 0, 0x10, 0, PL_ERR_CORRUPT, "CRC32 mismatch"},
        {"truncated", 0, len - 9, 0, 0, PL_ERR_TRUNCATED, "truncated"},
        {"trailing", 0, 0, 0, 1, PL_ERR_TRAILING, "trailing bytes"},
        {"tiny", 0, 7, 0, 0, PL_ERR_TRUNCATED, "at least 36"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        unsigned char copy[65600];
        memcpy(copy, buf, len);
        size_t n = bad[k].keep ? bad[k].keep : len;
        copy[bad[k].at] ^= bad[k].xor_mask;
        if (bad[k].append)
            copy[n++] = 0;
        tu_write(path, copy, n);
        q = NULL;
        pl_status rc = pl_model_load(path, &got, &q, &err);
        printf("model file, damaged %-15s -> %s: %s\n", bad[k].what, pl_status_name(rc), err.msg);
        ck_assert_msg(rc == bad[k].want, "%s: got %s", bad[k].what, pl_status_name(rc));
        ck_assert_msg(strstr(err.msg, bad[k].fragment) != NULL, "%s: %s", bad[k].what, err.msg);
        ck_assert_ptr_null(q);
    }
    tu_write(path, "", 0);
    ck_assert_int_eq(pl_model_load(path, &got, &q, &err), PL_ERR_EMPTY);
    ck_assert_int_eq(pl_model_load(dir, &got, &q, &err), PL_ERR_NOT_FILE);

    /* a save into a missing directory fails and leaves nothing behind */
    ck_assert_int_eq(pl_model_save(tu_path(dir, "no/such/m.bin"), &cfg, p, NULL, &err), PL_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "no/such/m.bin"));
    /* a failed save leaves the previous file as it was */
    ck_assert_int_eq(pl_model_save(path, &cfg, p, NULL, &err), PL_OK);
    ck_assert_int_eq(chmod(dir, 0500), 0);
    if (access(tu_path(dir, "probe"), W_OK) != 0 && geteuid() != 0) {
        p[0] += 1.0f;
        ck_assert_int_eq(pl_model_save(path, &cfg, p, NULL, &err), PL_ERR_IO);
        ck_assert_int_eq(pl_model_load(path, &got, &q, &err), PL_OK);
        ck_assert_float_eq(q[0], p[0] - 1.0f);
        pl_free(q);
    }
    chmod(dir, 0700);
    pl_free(p);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

Suite *train_suite(void)
{
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("end-to-end");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_loss_falls);
    tcase_add_test(tc, test_same_seed_same_bits);
    tcase_add_test(tc, test_model_file_round_trip_and_damage);
    suite_add_tcase(s, tc);
    return s;
}
