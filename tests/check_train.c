/* End to end through the library: training on a small synthetic set makes
 * the loss fall and the accuracy rise, a seed reproduces bit for bit, and
 * model files round-trip and refuse damage. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

/* Trains `steps` steps (batches of 20, seed's epoch order); the mean loss
 * of the first and last 5 in first and last, the parameters in params_out
 * (may be NULL). */
static void train_run(const pl_dataset *ds, const pl_config *cfg, int W, int T, int steps,
                      uint64_t seed, double *first, double *last, float *params_out)
{
    pl_train_opts o = tu_opts(20, W, T, 0, seed);
    pl_trainer *tr = tu_trainer(cfg, ds, &o);
    double *loss = malloc(sizeof *loss * (size_t)steps);
    tu_steps(tr, ds, seed, 20, 0, steps, steps, loss);
    *first = *last = 0;
    for (int s = 0; s < steps; s++) {
        ck_assert(isfinite(loss[s]));
        if (s < 5)
            *first += loss[s] / 5;
        if (s >= steps - 5)
            *last += loss[s] / 5;
    }
    if (params_out)
        memcpy(params_out, pl_trainer_params(tr), sizeof(float) * pl_param_count(cfg));
    free(loss);
    pl_trainer_free(tr);
}

START_TEST(test_loss_falls)
{
    pl_dataset train = tu_dataset(tu_dir, 400, 200, 10, 8, 4, 21);
    pl_config cfg = {8, 32, 4, 1};
    double first, last;
    train_run(&train, &cfg, 2, 1, 60, 1, &first, &last, NULL);
    printf("60 steps: mean loss of the first 5 %.4f, of the last 5 %.4f\n", first, last);
    fflush(stdout);
    ck_assert_msg(last < 0.5 * first, "loss %g -> %g did not halve", first, last);
    ck_assert(first > 0.8); /* ln 4 = 1.39 at the very start */
    pl_dataset_free(&train);
}
END_TEST

START_TEST(test_same_seed_same_bits)
{
    pl_dataset ds = tu_dataset(tu_dir, 200, 20, 7, 6, 3, 22);
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
}
END_TEST

/* The buffers a trainer reports (the plan line's MiB) count, with bf16,
 * the packed weights' pairs: one parameter-sized array more than fp32. */
START_TEST(test_trainer_bytes_count_bf16_pairs)
{
    pl_dataset ds = tu_dataset(tu_dir, 200, 20, 7, 6, 3, 22);
    pl_config cfg = {6, 20, 3, 1};
    double bytes[2];
    for (int p = 0; p < 2; p++) {
        pl_train_opts o = tu_opts(10, 1, 1, 0, 1);
        o.precision = p ? PL_PRECISION_BF16 : PL_PRECISION_FP32;
        pl_trainer *tr = tu_trainer(&cfg, &ds, &o);
        bytes[p] = pl_trainer_bytes(tr);
        pl_trainer_free(tr);
    }
    ck_assert_double_eq(bytes[1] - bytes[0], sizeof(float) * (double)pl_param_count(&cfg));
    pl_dataset_free(&ds);
}
END_TEST

/* Initialised parameters of a model of config cfg (free with pl_free). */
static float *model_params(const pl_config *cfg, uint64_t seed)
{
    float *p = pl_alloc_floats(pl_param_count(cfg));
    ck_assert_ptr_nonnull(p);
    pl_model_init(cfg, p, PL_INIT_DEFAULT, seed);
    return p;
}

/* --init chrono (Tallec & Ollivier 2018) for T = 20 time steps, 3 layers
 * of 64: every parameter but the LSTM input and forget biases is the
 * default's, bit for bit; in every layer b_i == -b_f exactly, b_f lies in
 * [0, log(T - 1)] = [0, 2.944] and its mean is near E[log u] for u
 * uniform in [1, 19]: (19 log 19 - 18) / 18 = 2.1081 (192 draws of sd
 * 0.70: within 0.2); g and o biases are 0. The same seed gives the same
 * bits, another seed other biases; T = 2 leaves u = 1 (zero biases). The
 * trainer initialises with the data's T. */
START_TEST(test_chrono_init)
{
    const pl_config cfg = {5, 64, 3, 3};
    const size_t np = pl_param_count(&cfg), H = 64;
    float *def = pl_alloc_floats(np), *chr = pl_alloc_floats(np), *again = pl_alloc_floats(np);
    pl_model_init(&cfg, def, PL_INIT_DEFAULT, 7);
    pl_model_init_steps(&cfg, chr, PL_INIT_CHRONO, 7, 20);
    pl_model_init_steps(&cfg, again, PL_INIT_CHRONO, 7, 20);
    ck_assert_int_eq(memcmp(chr, again, sizeof(float) * np), 0);
    pl_tensors t, d;
    pl_tensors_bind(&cfg, chr, &t);
    pl_tensors_bind(&cfg, def, &d);
    double sum = 0;
    for (int l = 0; l < cfg.layers; l++) {
        for (size_t u = 2 * H; u < 4 * H; u++) /* g and o: zero, as the default's */
            ck_assert(t.b[l][u] == 0.0f && d.b[l][u] == 0.0f);
        for (size_t u = 0; u < H; u++) {
            const float bi = t.b[l][u], bf = t.b[l][H + u];
            ck_assert_msg(memcmp(&bi, &(float){-bf}, sizeof bi) == 0, "layer %d unit %zu: b_i %a, "
                          "b_f %a", l, u, (double)bi, (double)bf);
            ck_assert_msg(bf >= 0.0f && bf <= logf(19.0f), "b_f %g", (double)bf);
            sum += bf;
        }
    }
    const double mean = sum / (3.0 * H);
    printf("chrono, T = 20: mean forget bias %.4f (expected 2.1081)\n", mean);
    ck_assert_double_eq_tol(mean, (19 * log(19.0) - 18) / 18, 0.2);
    for (int l = 0; l < cfg.layers; l++) /* every other parameter: the default's bits */
        memcpy(def + (t.b[l] - chr), t.b[l], sizeof(float) * 4 * H);
    ck_assert_int_eq(memcmp(def, chr, sizeof(float) * np), 0);
    pl_model_init_steps(&cfg, again, PL_INIT_CHRONO, 8, 20);
    ck_assert_int_ne(memcmp(chr, again, sizeof(float) * np), 0);
    pl_model_init_steps(&cfg, again, PL_INIT_CHRONO, 7, 2);
    pl_tensors_bind(&cfg, again, &t);
    for (int l = 0; l < cfg.layers; l++)
        for (size_t u = 0; u < 2 * H; u++)
            ck_assert(t.b[l][u] == 0.0f);
    /* the trainer: the data's time steps */
    pl_dataset ds = tu_dataset(tu_dir, 40, 10, 20, 5, 3, 23);
    pl_train_opts o = tu_opts(20, 1, 1, 0, 7);
    o.init = PL_INIT_CHRONO;
    pl_trainer *tr = tu_trainer(&cfg, &ds, &o);
    ck_assert_int_eq(memcmp(pl_trainer_params(tr), chr, sizeof(float) * np), 0);
    pl_trainer_free(tr);
    pl_dataset_free(&ds);
    pl_free(def);
    pl_free(chr);
    pl_free(again);
}
END_TEST

/* --init pytorch: PyTorch's defaults for nn.Linear and nn.LSTM. For D = 16,
 * H = 64, C = 4, two layers: the input projection's weights and biases lie
 * in +-1/sqrt(16) = +-0.25, every LSTM weight (both layers, W_x and W_h)
 * and the output layer's weights and biases in +-1/sqrt(64) = +-0.125; each
 * group's largest magnitude is near its bound (uniform draws: above 0.9 of
 * it) and, over 1,000 draws or more, its variance near bound^2 / 3 (within
 * 10%); the LSTM biases are
 * zero with +1 on the forget gate. The same seed gives the same bits. */
START_TEST(test_pytorch_init)
{
    const pl_config cfg = {16, 64, 4, 2};
    const size_t np = pl_param_count(&cfg), H = 64;
    float *p = pl_alloc_floats(np), *again = pl_alloc_floats(np);
    pl_model_init(&cfg, p, PL_INIT_PYTORCH, 3);
    pl_model_init(&cfg, again, PL_INIT_PYTORCH, 3);
    ck_assert_int_eq(memcmp(p, again, sizeof(float) * np), 0);
    pl_tensors t;
    pl_tensors_bind(&cfg, p, &t);
    const struct {
        const char *name;
        const float *x;
        size_t n;
        double bound;
    } g[] = {{"w_in", t.w_in, 16 * H, 0.25},         {"b_in", t.b_in, H, 0.25},
             {"w_lstm", t.w[0], 2 * H * 4 * H, 0.125}, {"w_lstm_l1", t.w[1], 2 * H * 4 * H, 0.125},
             {"w_out", t.w_out, H * 4, 0.125},        {"b_out", t.b_out, 4, 0.125}};
    for (size_t k = 0; k < sizeof g / sizeof *g; k++) {
        double top = 0, sq = 0;
        for (size_t i = 0; i < g[k].n; i++) {
            top = fmax(top, fabs(g[k].x[i]));
            sq += (double)g[k].x[i] * g[k].x[i];
        }
        printf("pytorch init %s: largest %.4f (bound %.4f), variance %.5f (bound^2/3 %.5f)\n",
               g[k].name, top, g[k].bound, sq / g[k].n, g[k].bound * g[k].bound / 3);
        ck_assert_msg(top <= g[k].bound && (g[k].n < 10 || top > 0.9 * g[k].bound), "%s: %g",
                      g[k].name, top);
        if (g[k].n >= 1000) /* the estimate's sd: 3.3% at 1,024 draws */
            ck_assert_double_eq_tol(sq / g[k].n, g[k].bound * g[k].bound / 3,
                                    0.1 * g[k].bound * g[k].bound / 3);
    }
    for (int l = 0; l < cfg.layers; l++)
        for (size_t u = 0; u < 4 * H; u++)
            ck_assert_float_eq(t.b[l][u], u >= H && u < 2 * H ? 1.0f : 0.0f);
    pl_free(p);
    pl_free(again);
}
END_TEST

/* Byte offsets in a version 5 model file (modelfile.c): magic, version,
 * input, hidden, classes, n_params (u64), time steps, layers, rows, cols,
 * sequence, permuted, permute seed (u64), dropout, input kind, features,
 * names_bytes, precision, then (without a standardisation or names)
 * parameters. */
enum { MF_VERSION = 8, MF_HIDDEN = 16, MF_NPARAMS = 24, MF_T = 32, MF_LAYERS = 36,
       MF_ROWS = 40, MF_SEQ = 48, MF_PERM = 52, MF_DROPOUT = 64, MF_INPUT = 68,
       MF_FEATURES = 72, MF_NAMES = 76, MF_PRECISION = 80, MF_PARAMS = 84 };

/* The n bytes of a damaged model file, written to path: pl_model_load
 * refuses them with status want and a message that names the file and
 * holds fragment, and returns no parameters. */
static void expect_refused(const char *path, const unsigned char *bytes, size_t n,
                           const char *what, pl_status want, const char *fragment)
{
    pl_model_info got;
    pl_error err = {0};
    float *q = NULL;
    tu_write(path, bytes, n);
    pl_status rc = pl_model_load(path, &got, &q, &err);
    printf("model file, damaged %-22s -> %s: %s\n", what, pl_status_name(rc), err.msg);
    ck_assert_msg(rc == want, "%s: got %s", what, pl_status_name(rc));
    ck_assert_msg(strstr(err.msg, fragment) != NULL, "%s: %s", what, err.msg);
    ck_assert_msg(strncmp(err.msg, path, strlen(path)) == 0, "%s: names no file: %s", what,
                  err.msg);
    ck_assert_ptr_null(q);
}

START_TEST(test_model_file_round_trip_and_damage)
{
    const char *dir = tu_dir;
    pl_model_info mi = {.cfg = {5, 12, 3, 1}, .T = 7};
    size_t np = pl_param_count(&mi.cfg);
    float *p = model_params(&mi.cfg, 4);
    const char *path = tu_path(dir, "m.bin");
    pl_error err = {0};
    ck_assert_int_eq(pl_model_save(path, &mi, p, NULL, &err), PL_OK);
    pl_model_info got;
    float *q = NULL;
    ck_assert_int_eq(pl_model_load(path, &got, &q, &err), PL_OK);
    ck_assert_int_eq(got.cfg.input, 5);
    ck_assert_int_eq(got.cfg.hidden, 12);
    ck_assert_int_eq(got.cfg.classes, 3);
    ck_assert_int_eq(got.cfg.layers, 1);
    ck_assert_int_eq(got.T, 7);
    ck_assert_int_eq(got.version, 5);
    ck_assert_int_eq(got.precision, PL_PRECISION_FP32);
    ck_assert_int_eq(got.input, PL_INPUT_IMAGES);
    ck_assert_int_eq(got.features, 0);
    ck_assert_ptr_null(got.class_names);
    ck_assert_int_eq(got.rows, 7); /* rows x cols = T x D when saved without them */
    ck_assert_int_eq(got.cols, 5);
    ck_assert_int_eq(got.sequence, PL_SEQ_ROWS);
    ck_assert_int_eq(got.permuted, 0);
    ck_assert_int_eq(memcmp(p, q, sizeof(float) * np), 0);
    pl_free(q);

    /* read the good file, then write damaged copies */
    static unsigned char buf[65536];
    size_t len = tu_read(path, buf, sizeof buf);
    ck_assert_uint_eq(len, MF_PARAMS + 4 * np + 4);
    struct {
        const char *what;
        size_t at, keep;
        unsigned char xor_mask;
        int append, fix;
        pl_status want;
        const char *fragment;
    } bad[] = {
        {"magic", 0, 0, 0x01, 0, 0, PL_ERR_MAGIC, "PLSTMMDL"},
        {"version", MF_VERSION, 0, 0x03, 0, 0, PL_ERR_VERSION,
         "version 6, this build reads versions 1 to 5"},
        {"config", MF_HIDDEN + 3, 0, 0x80, 0, 0, PL_ERR_MISMATCH, "bad model config"},
        {"parameter count", MF_NPARAMS, 0, 0x01, 0, 0, PL_ERR_MISMATCH, "a 5-12-3 model has"},
        {"time steps", MF_T + 2, 0, 0x01, 0, 0, PL_ERR_CORRUPT, "CRC32 mismatch"},
        {"zero time steps", MF_T, 0, 0x07, 0, 1, PL_ERR_MISMATCH,
         "bad model header: 0 time steps (expected 1 to 65535)"},
        {"too many time steps", MF_T + 2, 0, 0x01, 0, 1, PL_ERR_MISMATCH, "65543 time steps"},
        {"parameter byte", 200, 0, 0x10, 0, 0, PL_ERR_CORRUPT, "CRC32 mismatch"},
        {"truncated", 0, len - 9, 0, 0, 0, PL_ERR_TRUNCATED, "truncated"},
        {"trailing", 0, 0, 0, 1, 0, PL_ERR_TRAILING, "trailing bytes"},
        {"tiny", 0, 7, 0, 0, 0, PL_ERR_TRUNCATED, "at least 36"},
        {"header cut", 0, 38, 0, 0, 0, PL_ERR_TRUNCATED, "a version 5 model file has at least 88"},
        {"precision 2", MF_PRECISION, 0, 0x02, 0, 1, PL_ERR_MISMATCH,
         "precision 2 (expected 0, fp32, or 1, bf16)"},
        {"layers", MF_LAYERS, 0, 0x03, 0, 1, PL_ERR_MISMATCH,
         "1311 parameters, a 5-12-3 model of 2 layers has 2511"},
        {"image rows", MF_ROWS, 0, 0x01, 0, 1, PL_ERR_MISMATCH,
         "images of 6x5 read as rows cannot make 7 time steps of width 5"},
        {"sequence mode", MF_SEQ, 0, 0x02, 0, 1, PL_ERR_MISMATCH, "sequence mode 2"},
        {"pixels of a 7x5 model", MF_SEQ, 0, 0x01, 0, 1, PL_ERR_MISMATCH,
         "images of 7x5 read as pixels cannot make 7 time steps of width 5"},
        {"permuted", MF_PERM, 0, 0x02, 0, 1, PL_ERR_MISMATCH, "permuted 2"},
        {"dropout", MF_DROPOUT + 3, 0, 0x40, 0, 1, PL_ERR_MISMATCH, "dropout 2 (0 to below 1)"},
        {"input kind", MF_INPUT, 0, 0x02, 0, 1, PL_ERR_MISMATCH, "input kind 2"},
        {"features", MF_FEATURES + 2, 0, 0x01, 0, 1, PL_ERR_TOO_LARGE, "65536 features"},
        {"names", MF_NAMES + 3, 0, 0x01, 0, 1, PL_ERR_TOO_LARGE, "16777216 bytes of class names"},
        {"features, no room", MF_FEATURES, 0, 0x01, 0, 1, PL_ERR_TRUNCATED, "truncated"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        static unsigned char copy[65600];
        memcpy(copy, buf, len);
        size_t n = bad[k].keep ? bad[k].keep : len;
        copy[bad[k].at] ^= bad[k].xor_mask;
        if (bad[k].append)
            copy[n++] = 0;
        if (bad[k].fix)
            tu_fix_crc(copy, n);
        expect_refused(path, copy, n, bad[k].what, bad[k].want, bad[k].fragment);
    }
    tu_write(path, "", 0);
    ck_assert_int_eq(pl_model_load(path, &got, &q, &err), PL_ERR_EMPTY);
    ck_assert_int_eq(pl_model_load(dir, &got, &q, &err), PL_ERR_NOT_FILE);
    /* what cannot be recorded is not written */
    pl_model_info no_t = {.cfg = mi.cfg, .T = 0};
    ck_assert_int_eq(pl_model_save(path, &no_t, p, NULL, &err), PL_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "0 time steps"));
    pl_model_info wrong = {.cfg = mi.cfg, .T = 7, .rows = 7, .cols = 4};
    ck_assert_int_eq(pl_model_save(path, &wrong, p, NULL, &err), PL_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "images of 7x4 read as rows cannot make 7 time steps"));
    pl_free(p);
}
END_TEST

/* Version 4: a model of real values with its standardisation and class
 * names reads back bit for bit; damaged extras are refused, each with its
 * own message; what cannot be recorded is not written; a version 3 file
 * (the same model without them) still reads, as images. Version 5's
 * precision reads back; a version 4 file reads as fp32. */
START_TEST(test_model_file_standardisation_and_names)
{
    const char *path = tu_path(tu_dir, "m.bin");
    float mean[2] = {-1.5f, 1e-30f}, sd[2] = {3.25f, 0.125f};
    char *names[3] = {"walking", "up", "a,\"b\""};
    pl_model_info mi = {.cfg = {2, 6, 3, 1}, .T = 4, .input = PL_INPUT_VALUES, .features = 2,
                        .norm_mean = mean, .norm_std = sd, .class_names = names,
                        .precision = PL_PRECISION_BF16};
    size_t np = pl_param_count(&mi.cfg);
    float *p = model_params(&mi.cfg, 6), *q = NULL;
    pl_error err = {0};
    ck_assert_msg(pl_model_save(path, &mi, p, NULL, &err) == PL_OK, "%s", err.msg);
    pl_model_info got;
    ck_assert_msg(pl_model_load(path, &got, &q, &err) == PL_OK, "%s", err.msg);
    ck_assert_int_eq(got.version, 5);
    ck_assert_int_eq(got.precision, PL_PRECISION_BF16);
    ck_assert_int_eq(got.input, PL_INPUT_VALUES);
    ck_assert_int_eq(got.features, 2);
    ck_assert_mem_eq(got.norm_mean, mean, sizeof mean);
    ck_assert_mem_eq(got.norm_std, sd, sizeof sd);
    for (int c = 0; c < 3; c++)
        ck_assert_str_eq(got.class_names[c], names[c]);
    ck_assert_int_eq(memcmp(p, q, sizeof(float) * np), 0);
    pl_model_info_free(&got);
    ck_assert_ptr_null(got.norm_mean);
    ck_assert_ptr_null(got.class_names);
    pl_free(q);

    /* the extras damaged (the CRC made right): means at 84, deviations at
     * 92, then the names "walking\0up\0a,"b"\0" in [100, 117) */
    static unsigned char buf[65536], copy[65536];
    size_t len = tu_read(path, buf, sizeof buf);
    ck_assert_uint_eq(len, 84 + 16 + 17 + 4 * np + 4);
    const struct {
        const char *what;
        int edits;
        size_t at[4];
        unsigned char to[4];
        pl_status want;
        const char *fragment;
    } bad[] = {
        {"a deviation of 0", 4, {96, 97, 98, 99}, {0, 0, 0, 0}, PL_ERR_MISMATCH,
         "feature 1 standardised with mean 1e-30 and standard deviation 0"},
        {"a name unterminated", 1, {116}, {'x'}, PL_ERR_CORRUPT, "names end after 2 of 3"},
        {"an empty name", 2, {100, 110}, {0, 'x'}, PL_ERR_MISMATCH, "class 0's name is 0 bytes"},
        {"a name too many", 1, {105}, {0}, PL_ERR_CORRUPT, "6 bytes after the 3 class names"},
        {"images with statistics", 1, {68}, {0}, PL_ERR_MISMATCH,
         "a standardisation of 2 features for a model that reads images"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        memcpy(copy, buf, len);
        for (int e = 0; e < bad[k].edits; e++)
            copy[bad[k].at[e]] = bad[k].to[e];
        tu_fix_crc(copy, len);
        expect_refused(path, copy, len, bad[k].what, bad[k].want, bad[k].fragment);
    }

    /* not written: statistics for images, or for another count than cols */
    pl_model_info wrong = mi;
    wrong.input = PL_INPUT_IMAGES;
    ck_assert_int_eq(pl_model_save(path, &wrong, p, NULL, &err), PL_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "for a model that reads images"));
    wrong = mi;
    wrong.features = 1;
    ck_assert_int_eq(pl_model_save(path, &wrong, p, NULL, &err), PL_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "a standardisation of 1 features for a model that "
                                          "reads steps of 2"));

    /* version 4: the same model's precision field gone, read as fp32;
     * version 3: without the extras too, read as images */
    mi.input = PL_INPUT_IMAGES;
    mi.features = 0;
    mi.class_names = NULL;
    ck_assert_int_eq(pl_model_save(path, &mi, p, NULL, &err), PL_OK);
    len = tu_model_to_v4(buf, tu_read(path, buf, sizeof buf));
    tu_write(path, buf, len);
    ck_assert_msg(pl_model_load(path, &got, &q, &err) == PL_OK, "%s", err.msg);
    ck_assert_int_eq(got.version, 4);
    ck_assert_int_eq(got.precision, PL_PRECISION_FP32);
    ck_assert_int_eq(memcmp(p, q, sizeof(float) * np), 0);
    pl_free(q);
    ck_assert_int_eq(pl_model_save(path, &mi, p, NULL, &err), PL_OK);
    len = tu_model_to_v3(buf, tu_read(path, buf, sizeof buf));
    tu_write(path, buf, len);
    ck_assert_msg(pl_model_load(path, &got, &q, &err) == PL_OK, "%s", err.msg);
    ck_assert_int_eq(got.version, 3);
    ck_assert_int_eq(got.input, PL_INPUT_IMAGES);
    ck_assert_int_eq(got.features, 0);
    ck_assert_ptr_null(got.class_names);
    ck_assert_int_eq(memcmp(p, q, sizeof(float) * np), 0);
    pl_free(q);
    pl_free(p);
}
END_TEST

/* A version 1 file (no time steps) still loads: T = 0, the same weights. */
START_TEST(test_model_file_version_1_still_read)
{
    const char *dir = tu_dir;
    pl_model_info mi = {.cfg = {4, 9, 2, 1}, .T = 6};
    size_t np = pl_param_count(&mi.cfg);
    float *p = model_params(&mi.cfg, 5);
    const char *path = tu_path(dir, "m.bin");
    pl_error err = {0};
    ck_assert_int_eq(pl_model_save(path, &mi, p, NULL, &err), PL_OK);
    static unsigned char buf[65536];
    size_t len = tu_read(path, buf, sizeof buf);
    len = tu_model_to_v1(buf, len);
    tu_write(path, buf, len);
    pl_model_info got;
    float *q = NULL;
    ck_assert_int_eq(pl_model_load(path, &got, &q, &err), PL_OK);
    ck_assert_int_eq(got.version, 1);
    ck_assert_int_eq(got.T, 0);
    ck_assert_int_eq(got.cfg.input, 4);
    ck_assert_int_eq(got.cfg.hidden, 9);
    ck_assert_int_eq(got.cfg.classes, 2);
    ck_assert_int_eq(memcmp(p, q, sizeof(float) * np), 0);
    pl_free(q);
    pl_free(p);
}
END_TEST

/* A save that cannot create its temporary file fails naming the file, and
 * the previous file stays as it was. Each way fails for root too: a
 * missing directory, a path through a regular file, and no descriptor
 * left (RLIMIT_NOFILE) beside an existing file. */
START_TEST(test_model_save_failures_keep_previous_file)
{
    const char *dir = tu_dir;
    pl_model_info mi = {.cfg = {5, 12, 3, 1}, .T = 7};
    float *p = model_params(&mi.cfg, 4);
    pl_error err = {0};
    const char *missing = tu_path(dir, "no/such/m.bin");
    ck_assert_int_eq(pl_model_save(missing, &mi, p, NULL, &err), PL_ERR_IO);
    ck_assert_msg(strstr(err.msg, missing) != NULL, "%s", err.msg);
    ck_assert_ptr_nonnull(strstr(err.msg, "No such file or directory"));
    tu_write(tu_path(dir, "plain"), "x", 1);
    const char *through = tu_path(dir, "plain/m.bin");
    ck_assert_int_eq(pl_model_save(through, &mi, p, NULL, &err), PL_ERR_IO);
    ck_assert_msg(strstr(err.msg, through) != NULL, "%s", err.msg);
    ck_assert_ptr_nonnull(strstr(err.msg, "Not a directory"));

    const char *path = tu_path(dir, "m.bin");
    ck_assert_int_eq(pl_model_save(path, &mi, p, NULL, &err), PL_OK);
    /* a file saved over keeps its mode; a new one gets 0666 less the umask */
    struct stat st;
    mode_t mask = umask(022);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0666 & ~mask);
    ck_assert_int_eq(chmod(path, 0640), 0);
    ck_assert_int_eq(pl_model_save(path, &mi, p, NULL, &err), PL_OK);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0640);
    umask(mask);
    const float first = p[0];
    p[0] += 1.0f;
    struct rlimit old, none;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    int lowest = dup(0); /* the next descriptor open() would return */
    ck_assert_int_ge(lowest, 0);
    close(lowest);
    none.rlim_cur = (rlim_t)lowest;
    none.rlim_max = old.rlim_max;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &none), 0);
    pl_status rc = pl_model_save(path, &mi, p, NULL, &err);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    printf("save without a free descriptor -> %s: %s\n", pl_status_name(rc), err.msg);
    ck_assert_int_eq(rc, PL_ERR_IO);
    ck_assert_msg(strstr(err.msg, path) != NULL, "%s", err.msg);
    ck_assert_ptr_nonnull(strstr(err.msg, "cannot create a file beside it"));
    pl_model_info got;
    float *q = NULL;
    ck_assert_int_eq(pl_model_load(path, &got, &q, &err), PL_OK);
    ck_assert_float_eq(q[0], first);
    pl_free(q);
    /* and where permissions hold (not as root), a read-only directory */
    ck_assert_int_eq(chmod(dir, 0500), 0);
    if (geteuid() != 0) {
        ck_assert_int_eq(pl_model_save(path, &mi, p, NULL, &err), PL_ERR_IO);
        ck_assert_ptr_nonnull(strstr(err.msg, "Permission denied"));
        ck_assert_int_eq(pl_model_load(path, &got, &q, &err), PL_OK);
        ck_assert_float_eq(q[0], first);
        pl_free(q);
    }
    chmod(dir, 0700);
    pl_free(p);
}
END_TEST

/* pl_trainer_predict: the softmax of the reference's logits for every
 * image (2 workers, chunks of the workspace's rows), labelled or not, and
 * its arg-max agrees with pl_trainer_evaluate's accuracy. */
START_TEST(test_predict_probabilities)
{
    const char *dir = tu_dir;
    tu_make_dataset(dir, 10, 53, 6, 5, 3, 8);
    pl_dataset ds;
    pl_error err = {0};
    ck_assert_int_eq(pl_dataset_load(&ds, dir, "t10k", 3, &err), PL_OK);
    const pl_config cfg = {5, 12, 3, 2};
    pl_train_opts o;
    pl_train_opts_default(&o);
    o.batch = 20; /* chunks of 10 rows per worker: 53 images in 6 chunks */
    o.workers = 2;
    o.hidden = cfg.hidden;
    pl_trainer *tr = pl_trainer_create(&cfg, ds.T, &o, &err);
    ck_assert_msg(tr != NULL, "%s", err.msg);
    size_t np = pl_param_count(&cfg);
    tu_fill(pl_trainer_params(tr), np, 0.8f, 3);
    float probs[53 * 3];
    ck_assert_int_eq(pl_trainer_predict(tr, &ds, probs, &err), PL_OK);
    /* the reference: double-precision logits, softmax here */
    float *x = malloc(sizeof(float) * ds.n * 30);
    for (size_t i = 0; i < ds.n * 30; i++)
        x[i] = ds.images[i] / 255.0f;
    double logits[53 * 3];
    pl_ref_loss_grad(&cfg, pl_trainer_params(tr), x, ds.labels, (int)ds.n, ds.T, 1.0, NULL,
                     logits);
    double worst = 0;
    long right = 0;
    for (size_t i = 0; i < ds.n; i++) {
        double top = fmax(fmax(logits[3 * i], logits[3 * i + 1]), logits[3 * i + 2]), sum = 0;
        int best = 0;
        for (int c = 0; c < 3; c++)
            sum += exp(logits[3 * i + c] - top);
        for (int c = 0; c < 3; c++) {
            double want = exp(logits[3 * i + c] - top) / sum;
            worst = fmax(worst, fabs(probs[3 * i + c] - want));
            best = probs[3 * i + c] > probs[3 * i + best] ? c : best;
        }
        right += best == ds.labels[i];
    }
    printf("predict against the reference: %zu images, largest difference %.3g\n", ds.n, worst);
    ck_assert_msg(worst < 1e-5, "probabilities differ by %g", worst);
    double acc;
    ck_assert_int_eq(pl_trainer_evaluate(tr, &ds, &acc, NULL, &err), PL_OK);
    ck_assert_double_eq_tol(acc, (double)right / ds.n, 1e-12);
    /* without labels: the same probabilities; evaluation refuses */
    pl_dataset bare = ds;
    bare.labels = NULL;
    float again[53 * 3];
    ck_assert_int_eq(pl_trainer_predict(tr, &bare, again, &err), PL_OK);
    ck_assert_int_eq(memcmp(probs, again, sizeof probs), 0);
    ck_assert_int_eq(pl_trainer_evaluate(tr, &bare, &acc, NULL, &err), PL_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "the set has no labels"));
    /* images of another shape */
    bare.D = 4;
    ck_assert_int_eq(pl_trainer_predict(tr, &bare, again, &err), PL_ERR_MISMATCH);
    free(x);
    pl_trainer_free(tr);
    pl_dataset_free(&ds);
}
END_TEST

/* pl_model_read tells a model file from a safetensors file by their first
 * bytes, and refuses what is neither, naming the file. */
START_TEST(test_model_read_either)
{
    const char *dir = tu_dir;
    const pl_config cfg = {3, 4, 2, 1};
    size_t np = pl_param_count(&cfg);
    float *p = pl_alloc_floats(np);
    tu_fill(p, np, 1.0f, 2);
    pl_model_info mi = {.cfg = cfg, .T = 5}, got;
    pl_error err = {0};
    const char *bin = tu_path(dir, "m.bin"), *st = tu_path(dir, "m.st");
    ck_assert_int_eq(pl_model_save(bin, &mi, p, NULL, &err), PL_OK);
    ck_assert_int_eq(pl_safetensors_save(st, &mi, p, NULL, &err), PL_OK);
    const char *paths[2] = {bin, st};
    for (int k = 0; k < 2; k++) {
        float *q = NULL;
        ck_assert_msg(pl_model_read(paths[k], &got, &q, &err) == PL_OK, "%s", err.msg);
        ck_assert_int_eq(got.version, k ? 0 : 5);
        ck_assert_int_eq(got.T, 5);
        ck_assert_int_eq(got.cfg.hidden, 4);
        ck_assert_int_eq(memcmp(p, q, 4 * np), 0);
        pl_free(q);
    }
    const char *other = tu_path(dir, "other");
    tu_write(other, "\x89PNG\r\n\x1a\n0000", 12);
    float *q = p;
    ck_assert_int_eq(pl_model_read(other, &got, &q, &err), PL_ERR_MAGIC);
    ck_assert_ptr_null(q);
    ck_assert_ptr_nonnull(strstr(err.msg, "other: neither a parlstm model file"));
    ck_assert_int_eq(pl_model_read(tu_path(dir, "none"), &got, &q, &err), PL_ERR_NOT_FOUND);
    unsigned char ckp[64] = "PLSTMCKP\x02";
    tu_write(other, ckp, sizeof ckp);
    ck_assert_int_eq(pl_model_read(other, &got, &q, &err), PL_ERR_MAGIC);
    ck_assert_ptr_nonnull(strstr(err.msg, "this is a checkpoint"));
    pl_free(p);
}
END_TEST

Suite *train_suite(void)
{
    Suite *s = suite_create("train");
    TCase *tc = tu_tcase_with_dir("end-to-end");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_loss_falls);
    tcase_add_test(tc, test_same_seed_same_bits);
    tcase_add_test(tc, test_trainer_bytes_count_bf16_pairs);
    tcase_add_test(tc, test_chrono_init);
    tcase_add_test(tc, test_pytorch_init);
    tcase_add_test(tc, test_model_file_round_trip_and_damage);
    tcase_add_test(tc, test_model_file_standardisation_and_names);
    tcase_add_test(tc, test_model_file_version_1_still_read);
    tcase_add_test(tc, test_model_save_failures_keep_previous_file);
    tcase_add_test(tc, test_predict_probabilities);
    tcase_add_test(tc, test_model_read_either);
    suite_add_tcase(s, tc);
    return s;
}
