/* The commands that take models out of parlstm and back in, and show how
 * training went, run as a user runs them ($PARLSTM_BIN): export and import
 * (bit for bit, and every refusal), predict (IDX, PNG, PGM against the
 * library's forward pass, each kind of bad input named while the others
 * are still classified), train --init-from (fine-tuning, and every shape
 * that does not fit), train --log (its rows, a crash, a resumed run) and
 * plot. */
#include <math.h>
#include <png.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

/* the last run of a program */
static tu_result res;

/* The data of these tests: 7x5 images of 3 classes, 140 training images
 * (20 held out: 6 steps of 20 per epoch) and 30 test images. */
enum { ROWS = 7, COLS = 5, CLASSES = 3, N_TEST = 30, HIDDEN = 16 };

static void make_data(const char *dir) { tu_make_dataset(dir, 140, N_TEST, ROWS, COLS, CLASSES, 5); }

/* Trains `steps` steps on dir's data into model (one worker, one thread:
 * the same bits every time), with extra options (NULL-terminated, may be
 * NULL). */
static void train(const char *dir, const char *model, int steps, const char *const *extra)
{
    char s[16];
    snprintf(s, sizeof s, "%d", steps);
    const char *args[40] = {"train", "--data", dir, "--val", "20", "--batch", "20", "--hidden",
                            "16", "--steps", s, "--workers", "1", "--threads", "1", "--save",
                            model};
    int n = 17;
    for (int i = 0; extra && extra[i]; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    int st = tu_run_args(&res, args);
    ck_assert_msg(st == 0, "train exited %d: %s", st, res.err);
}

static float *load_model(const char *path, pl_model_info *m)
{
    float *p = NULL;
    pl_error e = {0};
    ck_assert_msg(pl_model_read(path, m, &p, &e) == PL_OK, "%s", e.msg);
    return p;
}

/* eval's result line for each of the n models on dir's test set is the
 * same (up to the seconds). */
static void same_eval(const char *dir, const char *const *models, int n)
{
    char first[256] = "";
    for (int k = 0; k < n; k++) {
        const char *ev[] = {"eval", "--model", models[k], "--data", dir, NULL};
        ck_assert_int_eq(tu_run_args(&res, ev), 0);
        char *r = strstr(res.out, "result: "), *sec = r ? strstr(r, " seconds=") : NULL;
        ck_assert_ptr_nonnull(sec);
        *sec = '\0';
        if (k == 0)
            snprintf(first, sizeof first, "%s", r);
        ck_assert_str_eq(r, first);
    }
}

/* ------------------------------------------------------------ export, import */

/* A trained model exported and imported back is the same file byte for
 * byte; eval reads the model, the export and the import alike. */
START_TEST(test_export_import_round_trip)
{
    const char *dir = tu_dir;
    make_data(dir);
    char m[4200], st[4200], back[4200];
    snprintf(m, sizeof m, "%s/m.bin", dir);
    snprintf(st, sizeof st, "%s/m.safetensors", dir);
    snprintf(back, sizeof back, "%s/back.bin", dir);
    train(dir, m, 12, NULL);
    const char *exp[] = {"export", "--model", m, "--out", st, NULL};
    ck_assert_int_eq(tu_run_args(&res, exp), 0);
    char want[8600];
    snprintf(want, sizeof want, "parlstm export: %s (5-16-3, 1 layer, 7x5 images read row by "
             "row) written to %s\n", m, st);
    ck_assert_str_eq(res.err, want);
    const char *imp[] = {"import", "--in", st, "--out", back, NULL};
    ck_assert_int_eq(tu_run_args(&res, imp), 0);
    ck_assert_msg(tu_same_file(m, back), "the imported model file differs from the original");
    /* eval: the same result line from all three */
    const char *files[3] = {m, st, back};
    same_eval(dir, files, 3);
    /* what is not a model is refused, naming the file */
    char idx[4200];
    snprintf(idx, sizeof idx, "%s/t10k-images-idx3-ubyte", dir);
    const char *bad_export[] = {"export", "--model", idx, "--out", st, NULL};
    ck_assert_int_eq(tu_run_args(&res, bad_export), 1);
    snprintf(want, sizeof want, "parlstm export: %s: neither a parlstm model file", idx);
    ck_assert_msg(strstr(res.err, want) != NULL, "%s", res.err);
    const char *bad_import[] = {"import", "--in", m, "--out", back, NULL};
    ck_assert_int_eq(tu_run_args(&res, bad_import), 1);
    snprintf(want, sizeof want, "parlstm import: %s: header length", m);
    ck_assert_msg(strstr(res.err, want) != NULL, "%s", res.err);
}
END_TEST

/* A file without time_steps (saved by PyTorch) needs --time-steps; a file
 * with them takes an agreeing --time-steps only. */
START_TEST(test_import_time_steps)
{
    const char *dir = tu_dir;
    const pl_config cfg = {COLS, HIDDEN, CLASSES, 2};
    size_t np = pl_param_count(&cfg);
    float *p = pl_alloc_floats(np);
    tu_fill(p, np, 0.5f, 4);
    pl_model_info none = {.cfg = cfg}, seven = {.cfg = cfg, .T = 7}, got;
    pl_error e = {0};
    const char *st0 = tu_path(dir, "t0.safetensors"), *st7 = tu_path(dir, "t7.safetensors"),
               *m = tu_path(dir, "m.bin");
    ck_assert_int_eq(pl_safetensors_save(st0, &none, p, NULL, &e), PL_OK);
    ck_assert_int_eq(pl_safetensors_save(st7, &seven, p, NULL, &e), PL_OK);
    const char *no_t[] = {"import", "--in", st0, "--out", m, NULL};
    ck_assert_int_eq(tu_run_args(&res, no_t), 2);
    ck_assert_ptr_nonnull(strstr(res.err, "does not record the sequence length (no time_steps in "
                                      "its metadata): give --time-steps N"));
    ck_assert_int_ne(access(m, F_OK), 0);
    const char *with_t[] = {"import", "--in", st0, "--out", m, "--time-steps", "9", NULL};
    ck_assert_int_eq(tu_run_args(&res, with_t), 0);
    float *q = load_model(m, &got);
    ck_assert_int_eq(got.T, 9);
    ck_assert_int_eq(got.rows, 9);
    ck_assert_int_eq(got.cols, COLS);
    ck_assert_int_eq(got.cfg.layers, 2);
    ck_assert_int_eq(memcmp(p, q, 4 * np), 0);
    pl_free(q);
    const char *agree[] = {"import", "--in", st7, "--out", m, "--time-steps", "7", NULL};
    ck_assert_int_eq(tu_run_args(&res, agree), 0);
    const char *differ[] = {"import", "--in", st7, "--out", m, "--time-steps", "8", NULL};
    ck_assert_int_eq(tu_run_args(&res, differ), 2);
    ck_assert_ptr_nonnull(strstr(res.err, "--time-steps 8 differs from the 7 time steps that"));
    pl_free(p);
}
END_TEST

/* ------------------------------------------------------------------ predict */

/* The CSV rows of predict's stdout: n rows of the columns after the
 * header (which must be want_header); returns n. */
static int csv_rows(const char *want_header, char rows[][512], int max)
{
    char *save = NULL, *line = strtok_r(res.out, "\n", &save);
    ck_assert_ptr_nonnull(line);
    ck_assert_str_eq(line, want_header);
    int n = 0;
    while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
        ck_assert_int_lt(n, max);
        snprintf(rows[n++], 512, "%s", line);
    }
    return n;
}

/* The library's probabilities for the images of ds with model m. */
static float *library_probs(const pl_model_info *m, const float *params, const pl_dataset *ds)
{
    pl_train_opts o;
    pl_train_opts_default(&o);
    o.hidden = m->cfg.hidden;
    o.workers = 1;
    o.threads = 1;
    pl_error e = {0};
    pl_trainer *tr = pl_trainer_create(&m->cfg, ds->T, &o, &e);
    ck_assert_msg(tr != NULL, "%s", e.msg);
    memcpy(pl_trainer_params(tr), params, 4 * pl_param_count(&m->cfg));
    float *probs = malloc(sizeof(float) * ds->n * (size_t)m->cfg.classes);
    ck_assert_int_eq(pl_trainer_predict(tr, ds, probs, &e), PL_OK);
    pl_trainer_free(tr);
    return probs;
}

/* dir's data, a model trained on it for `steps` steps (m: dir/m.bin), the
 * test images' file (idx) and the test set. */
static void trained_model(const char *dir, int steps, char *m, char *idx, pl_dataset *test)
{
    make_data(dir);
    snprintf(m, 4200, "%s/m.bin", dir);
    snprintf(idx, 4200, "%s/t10k-images-idx3-ubyte", dir);
    train(dir, m, steps, NULL);
    pl_error e = {0};
    ck_assert_int_eq(pl_dataset_load(test, dir, "t10k", CLASSES, &e), PL_OK);
}

/* An IDX images file: one row per image, in order, with the library's
 * class and probability; as many right as eval counts; --probabilities
 * and --top add their columns. */
START_TEST(test_predict_idx)
{
    const char *dir = tu_dir;
    char m[4200], idx[4200];
    pl_dataset test;
    trained_model(dir, 30, m, idx, &test);
    pl_model_info mi;
    float *params = load_model(m, &mi);
    float *probs = library_probs(&mi, params, &test);
    static char rows[N_TEST][512];

    const char *plain[] = {"predict", "--model", m, idx, NULL};
    ck_assert_int_eq(tu_run_args(&res, plain), 0);
    ck_assert_int_eq(csv_rows("input,index,class,probability", rows, N_TEST), N_TEST);
    int right = 0;
    for (int i = 0; i < N_TEST; i++) {
        char want[4400];
        int best = 0;
        for (int c = 1; c < CLASSES; c++)
            best = probs[i * CLASSES + c] > probs[i * CLASSES + best] ? c : best;
        snprintf(want, sizeof want, "%s,%d,%d,%.6f", idx, i, best,
                 (double)probs[i * CLASSES + best]);
        ck_assert_str_eq(rows[i], want);
        right += best == test.labels[i];
    }
    const char *ev[] = {"eval", "--model", m, "--data", dir, NULL};
    ck_assert_int_eq(tu_run_args(&res, ev), 0);
    char acc[64];
    snprintf(acc, sizeof acc, "test_accuracy=%.4f", (double)right / N_TEST);
    ck_assert_msg(strstr(res.out, acc) != NULL, "eval says %s, predict %s", res.out, acc);

    const char *full[] = {"predict", "--probabilities", "--top", "3", "--model", m, idx, NULL};
    ck_assert_int_eq(tu_run_args(&res, full), 0);
    ck_assert_int_eq(csv_rows("input,index,class,probability,class_2,probability_2,class_3,"
                              "probability_3,p_0,p_1,p_2", rows, N_TEST), N_TEST);
    for (int i = 0; i < N_TEST; i++) {
        int cls[3], index;
        double pr[3], p[3];
        char *r = rows[i] + strlen(idx) + 1;
        ck_assert_int_eq(sscanf(r, "%d,%d,%lf,%d,%lf,%d,%lf,%lf,%lf,%lf", &index, &cls[0],
                                &pr[0], &cls[1], &pr[1], &cls[2], &pr[2], &p[0], &p[1], &p[2]),
                         10);
        ck_assert_int_eq(index, i);
        ck_assert(cls[0] != cls[1] && cls[1] != cls[2] && cls[0] != cls[2]);
        ck_assert(pr[0] >= pr[1] && pr[1] >= pr[2]);
        for (int k = 0; k < 3; k++) {
            ck_assert_double_eq_tol(pr[k], p[cls[k]], 1e-12);
            ck_assert_double_eq_tol(p[k], probs[i * CLASSES + k], 6e-7);
        }
        ck_assert_double_eq_tol(p[0] + p[1] + p[2], 1.0, 2e-6);
    }
    free(probs);
    pl_free(params);
    pl_dataset_free(&test);
}
END_TEST

/* Image `k` of an IDX set written as PNG (8 and 16 bits), PGM P5 and P2:
 * each gives the IDX row of that image, under its own name and index 0. */
START_TEST(test_predict_png_pgm)
{
    const char *dir = tu_dir;
    char m[4200], idx[4200];
    pl_dataset test;
    trained_model(dir, 20, m, idx, &test);
    const int k = 4;
    const uint8_t *px = test.images + k * ROWS * COLS;
    char png8[4200], png16[4200], p5[4200], p2[4200];
    snprintf(png8, sizeof png8, "%s/a,\"b\".png", dir); /* a name CSV must quote */
    snprintf(png16, sizeof png16, "%s/b16.png", dir);
    snprintf(p5, sizeof p5, "%s/c.pgm", dir);
    snprintf(p2, sizeof p2, "%s/d.pgm", dir);
    tu_write_png(png8, COLS, ROWS, PNG_COLOR_TYPE_GRAY, 8, 0, px, COLS, NULL, 0);
    unsigned char wide[ROWS * COLS * 2];
    for (int i = 0; i < ROWS * COLS; i++)
        wide[2 * i] = wide[2 * i + 1] = px[i]; /* v * 257 */
    tu_write_png(png16, COLS, ROWS, PNG_COLOR_TYPE_GRAY, 16, 0, wide, 2 * COLS, NULL, 0);
    unsigned char pgm[64 + ROWS * COLS];
    int h = snprintf((char *)pgm, 64, "P5\n%d %d\n255\n", COLS, ROWS);
    memcpy(pgm + h, px, ROWS * COLS);
    tu_write(p5, pgm, (size_t)h + ROWS * COLS);
    FILE *f = fopen(p2, "w");
    fprintf(f, "P2\n# a comment\n%d %d\n255\n", COLS, ROWS);
    for (int i = 0; i < ROWS * COLS; i++)
        fprintf(f, "%d%c", px[i], i % COLS == COLS - 1 ? '\n' : ' ');
    fclose(f);
    const char *args[] = {"predict", "--model", m, "--top", "2", idx, png8, png16, p5, p2, NULL};
    ck_assert_int_eq(tu_run_args(&res, args), 0);
    static char rows[N_TEST + 4][512];
    ck_assert_int_eq(csv_rows("input,index,class,probability,class_2,probability_2", rows,
                              N_TEST + 4), N_TEST + 4);
    const char *tail = strchr(rows[k] + strlen(idx) + 1, ','); /* after "idx,4" */
    ck_assert_ptr_nonnull(tail);
    char want[4400];
    snprintf(want, sizeof want, "\"%s/a,\"\"b\"\".png\",0%s", dir, tail);
    ck_assert_str_eq(rows[N_TEST], want);
    const char *names[3] = {png16, p5, p2};
    for (int i = 0; i < 3; i++) {
        snprintf(want, sizeof want, "%s,0%s", names[i], tail);
        ck_assert_str_eq(rows[N_TEST + 1 + i], want);
    }
    pl_dataset_free(&test);
}
END_TEST

/* Each bad input is refused by name with what is wrong (exit 1), and the
 * good input after it is still classified. */
typedef enum {
    BAD_PNG_ROWS, BAD_PGM_COLS, BAD_IDX_SHAPE, BAD_TEXT, BAD_PNG_CUT, BAD_MISSING, BAD_LABELS,
    BAD_EMPTY, BAD_DIR, BAD_GZIP, BAD_NETPBM, BAD_MISSING_IDX
} bad_input;

static const struct {
    bad_input kind;
    const char *name; /* the file in the test's directory */
    const char *fragment;
} BAD_INPUTS[] = {
    {BAD_PNG_ROWS, "tall.png", "tall.png: an image of 8 rows x 5 columns, the model"},
    {BAD_PGM_COLS, "wide.pgm", "wide.pgm: an image of 7 rows x 6 columns, the model"},
    {BAD_IDX_SHAPE, "other-idx3", "other-idx3: images of 7 rows x 4 columns, the model"},
    {BAD_TEXT, "notes.txt", "notes.txt: not a PNG or PGM image, nor an IDX images file"},
    {BAD_PNG_CUT, "cut.png", "cut.png: bad PNG: truncated"},
    {BAD_MISSING, "none.png", "none.png: cannot open the image: No such file or directory"},
    {BAD_MISSING_IDX, "none-idx3", "none-idx3: no such file (nor "},
    {BAD_LABELS, "labels-idx1", "labels-idx1: expected 3 dimensions"},
    {BAD_EMPTY, "empty.png", "empty.png: the image file is empty"},
    {BAD_DIR, "sub", "sub: expected a image file, found a directory"},
    {BAD_GZIP, "broken.gz", "broken.gz: "},
    {BAD_NETPBM, "colour.ppm", "colour.ppm: a Netpbm P6 image"},
};

static void write_bad(bad_input kind, const char *path)
{
    uint8_t px[8 * 6] = {0};
    size_t len;
    unsigned char *b;
    switch (kind) {
    case BAD_PNG_ROWS:
        tu_write_png(path, COLS, 8, PNG_COLOR_TYPE_GRAY, 8, 0, px, COLS, NULL, 0);
        break;
    case BAD_PGM_COLS:
        tu_write(path, "P5\n6 7\n255\n" "0123456789012345678901234567890123456789012", 53);
        break;
    case BAD_IDX_SHAPE:
        b = tu_idx_images(3, 7, 4, NULL, &len);
        tu_write(path, b, len);
        free(b);
        break;
    case BAD_TEXT:
        tu_write(path, "hello, world\n", 13);
        break;
    case BAD_PNG_CUT:
        tu_write_png(path, COLS, ROWS, PNG_COLOR_TYPE_GRAY, 8, 0, px, COLS, NULL, 0);
        b = tu_read_all(path, &len);
        tu_write(path, b, len - 20);
        free(b);
        break;
    case BAD_MISSING:
    case BAD_MISSING_IDX:
        break;
    case BAD_LABELS:
        b = tu_idx_labels(3, px, &len);
        tu_write(path, b, len);
        free(b);
        break;
    case BAD_EMPTY:
        tu_write(path, "", 0);
        break;
    case BAD_DIR:
        ck_assert_int_eq(mkdir(path, 0700), 0);
        break;
    case BAD_GZIP:
        tu_write(path, "\x1f\x8b\x08\x00garbage", 12);
        break;
    case BAD_NETPBM:
        tu_write(path, "P6\n1 1\n255\nabc", 14);
        break;
    }
}

static char shared_model[4300], shared_dir[4200];

/* One model for the predict error cases (made once, before them). */
static void predict_fixture(void)
{
    char *dir = tu_tmpdir();
    snprintf(shared_dir, sizeof shared_dir, "%s", dir);
    free(dir);
    make_data(shared_dir);
    snprintf(shared_model, sizeof shared_model, "%s/m.bin", shared_dir);
    train(shared_dir, shared_model, 6, NULL);
}

static void predict_fixture_done(void) { tu_rmtree(shared_dir); }

START_TEST(test_predict_refuses)
{
    const char *dir = tu_dir;
    char bad[4200], good[4200], want[4400];
    snprintf(bad, sizeof bad, "%s/%s", dir, BAD_INPUTS[_i].name);
    snprintf(good, sizeof good, "%s/good.png", dir);
    write_bad(BAD_INPUTS[_i].kind, bad);
    uint8_t px[ROWS * COLS] = {0};
    px[3] = 200;
    tu_write_png(good, COLS, ROWS, PNG_COLOR_TYPE_GRAY, 8, 0, px, COLS, NULL, 0);
    const char *args[] = {"predict", "--model", shared_model, bad, good, NULL};
    ck_assert_int_eq(tu_run_args(&res, args), 1);
    snprintf(want, sizeof want, "parlstm predict: %s/%s", dir, BAD_INPUTS[_i].fragment);
    ck_assert_msg(strstr(res.err, want) != NULL, "%s: stderr lacks '%s': %s", BAD_INPUTS[_i].name,
                  want, res.err);
    ck_assert_ptr_nonnull(strstr(res.err, "parlstm predict: 1 of 2 inputs not classified"));
    if (BAD_INPUTS[_i].kind <= BAD_IDX_SHAPE) {
        snprintf(want, sizeof want, "the model %s reads 7 rows x 5 columns\n", shared_model);
        ck_assert_msg(strstr(res.err, want) != NULL, "%s", res.err);
    }
    /* the header, and the good image's row alone */
    static char rows[4][512];
    ck_assert_int_eq(csv_rows("input,index,class,probability", rows, 4), 1);
    snprintf(want, sizeof want, "%s,0,", good);
    ck_assert_int_eq(strncmp(rows[0], want, strlen(want)), 0);
}
END_TEST

/* predict's rows for the n images of input: the library's class and
 * probability of each. */
static void expect_rows(const char *input, const float *probs, int n, char rows[][512])
{
    char want[4400];
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int c = 1; c < CLASSES; c++)
            best = probs[i * CLASSES + c] > probs[i * CLASSES + best] ? c : best;
        snprintf(want, sizeof want, "%s,%d,%d,%.6f", input, i, best,
                 (double)probs[i * CLASSES + best]);
        ck_assert_str_eq(rows[i], want);
    }
}

/* A model that reads pixel by pixel gets each image as rows x cols steps of
 * width 1; a permuted one gets the pixels in its order; a model that does
 * not record its sequence length takes images of any height of its width. */
START_TEST(test_predict_model_readings)
{
    const char *dir = tu_dir;
    make_data(dir);
    char idx[4200];
    snprintf(idx, sizeof idx, "%s/t10k-images-idx3-ubyte", dir);
    pl_dataset test;
    pl_error e = {0};
    ck_assert_int_eq(pl_dataset_load(&test, dir, "t10k", CLASSES, &e), PL_OK);
    static char rows[N_TEST][512];
    char want[4400];

    /* pixels: 35 steps of 1 */
    const pl_config px_cfg = {1, 8, CLASSES, 1};
    pl_model_info px = {.cfg = px_cfg, .T = ROWS * COLS, .rows = ROWS, .cols = COLS,
                        .sequence = PL_SEQ_PIXELS};
    size_t np = pl_param_count(&px_cfg);
    float *p = pl_alloc_floats(np);
    tu_fill(p, np, 0.7f, 6);
    const char *m = tu_path(dir, "pixels.bin");
    ck_assert_int_eq(pl_model_save(m, &px, p, NULL, &e), PL_OK);
    pl_dataset seq = test;
    seq.T = ROWS * COLS;
    seq.D = 1;
    float *probs = library_probs(&px, p, &seq);
    const char *a1[] = {"predict", "--model", m, idx, NULL};
    ck_assert_int_eq(tu_run_args(&res, a1), 0);
    ck_assert_int_eq(csv_rows("input,index,class,probability", rows, N_TEST), N_TEST);
    expect_rows(idx, probs, N_TEST, rows);
    free(probs);

    /* pixels in a permuted order */
    px.permuted = 1;
    px.permute_seed = 42;
    ck_assert_int_eq(pl_model_save(m, &px, p, NULL, &e), PL_OK);
    pl_dataset shuffled;
    ck_assert_int_eq(pl_dataset_load(&shuffled, dir, "t10k", CLASSES, &e), PL_OK);
    pl_dataset_as_pixels(&shuffled);
    ck_assert_int_eq(pl_dataset_permute(&shuffled, 42, &e), PL_OK);
    probs = library_probs(&px, p, &shuffled);
    ck_assert_int_eq(tu_run_args(&res, a1), 0);
    ck_assert_int_eq(csv_rows("input,index,class,probability", rows, N_TEST), N_TEST);
    expect_rows(idx, probs, N_TEST, rows);
    free(probs);
    pl_dataset_free(&shuffled);
    pl_free(p);
    /* eval reads it the same way from its export */
    char st_px[4200];
    snprintf(st_px, sizeof st_px, "%s/pixels.safetensors", dir);
    const char *ex[] = {"export", "--model", m, "--out", st_px, NULL};
    ck_assert_int_eq(tu_run_args(&res, ex), 0);
    const char *files[2] = {m, st_px};
    same_eval(dir, files, 2);

    /* the sequence length unknown (a safetensors file without it): rows of 5 */
    const pl_config rcfg = {COLS, 8, CLASSES, 1};
    np = pl_param_count(&rcfg);
    p = pl_alloc_floats(np);
    tu_fill(p, np, 0.7f, 7);
    pl_model_info unknown = {.cfg = rcfg};
    const char *st = tu_path(dir, "unknown.safetensors");
    ck_assert_int_eq(pl_safetensors_save(st, &unknown, p, NULL, &e), PL_OK);
    size_t len;
    unsigned char *b = tu_idx_images(4, 9, COLS, NULL, &len);
    const char *taller = tu_path(dir, "taller-idx3");
    tu_write(taller, b, len);
    free(b);
    const char *a2[] = {"predict", "--model", st, taller, NULL};
    ck_assert_int_eq(tu_run_args(&res, a2), 0);
    ck_assert_int_eq(csv_rows("input,index,class,probability", rows, N_TEST), 4);
    b = tu_idx_images(4, 9, COLS + 1, NULL, &len);
    tu_write(taller, b, len);
    free(b);
    ck_assert_int_eq(tu_run_args(&res, a2), 1);
    snprintf(want, sizeof want, "%s: images of 9 rows x 6 columns, the model %s reads rows of "
             "5 pixels", taller, st);
    ck_assert_msg(strstr(res.err, want) != NULL, "%s", res.err);
    pl_free(p);
    pl_dataset_free(&test);
}
END_TEST

/* ------------------------------------------------------------ --init-from */

/* Fine-tuning starts from the file's parameters (a learning rate of
 * 1e-30 leaves them as they were), takes --hidden from it, restarts the
 * schedule at --lr, from a model file or a safetensors file; a model of
 * more classes than the labels use is fine. */
START_TEST(test_init_from)
{
    const char *dir = tu_dir;
    const char *two = tu_subdir("two");
    make_data(dir);
    char m[4200], st[4200], tuned[4200], log[4200];
    snprintf(m, sizeof m, "%s/m.bin", dir);
    snprintf(st, sizeof st, "%s/m.safetensors", dir);
    snprintf(tuned, sizeof tuned, "%s/tuned.bin", dir);
    snprintf(log, sizeof log, "%s/tuned.csv", dir);
    train(dir, m, 12, NULL);
    const char *exp[] = {"export", "--model", m, "--out", st, NULL};
    ck_assert_int_eq(tu_run_args(&res, exp), 0);
    pl_model_info mi, ti;
    float *p = load_model(m, &mi);
    const char *from[2] = {m, st};
    for (int k = 0; k < 2; k++) {
        const char *args[] = {"train",   "--data",  dir,     "--init-from", from[k], "--steps",
                              "2",       "--lr",    "1e-30", "--save",      tuned,   "--log",
                              log,       "--log-every", "1", "--val",       "20",    "--batch",
                              "20",      NULL};
        ck_assert_int_eq(tu_run_args(&res, args), 0);
        char want[4400];
        snprintf(want, sizeof want, "model 5-16-3 (");
        ck_assert_msg(strstr(res.err, want) != NULL, "%s", res.err);
        snprintf(want, sizeof want, "init from %s, seed 1", from[k]);
        ck_assert_msg(strstr(res.err, want) != NULL, "%s", res.err);
        float *q = load_model(tuned, &ti);
        ck_assert_int_eq(ti.cfg.hidden, HIDDEN);
        double worst = 0;
        for (size_t i = 0; i < pl_param_count(&mi.cfg); i++)
            worst = fmax(worst, fabs((double)q[i] - p[i]));
        printf("--init-from %s, 2 steps at lr 1e-30: largest change %.3g\n", from[k], worst);
        ck_assert_msg(worst < 1e-25, "the parameters moved by %g", worst);
        pl_free(q);
        /* the schedule starts at --lr: the first row's rate */
        char text[4096];
        tu_slurp(log, text, sizeof text);
        ck_assert_msg(strstr(text, "\ntrain,1,1,1e-30,") != NULL, "%s", text);
    }
    /* a model of 2 layers that reads pixels in a permuted order: the run
     * reads the data as it does (options not given are taken from it), and
     * --dropout between its layers is allowed */
    const pl_config deep = {1, 8, CLASSES, 2};
    float *dp = pl_alloc_floats(pl_param_count(&deep));
    pl_model_init(&deep, dp, PL_INIT_DEFAULT, 4);
    pl_model_info dm = {.cfg = deep, .T = ROWS * COLS, .rows = ROWS, .cols = COLS,
                        .sequence = PL_SEQ_PIXELS, .permuted = 1, .permute_seed = 77};
    pl_error e = {0};
    char deep_path[4200];
    snprintf(deep_path, sizeof deep_path, "%s/deep.bin", dir);
    ck_assert_int_eq(pl_model_save(deep_path, &dm, dp, NULL, &e), PL_OK);
    const char *adopt[] = {"train", "--data", dir, "--init-from", deep_path, "--steps", "2",
                           "--val", "20", "--batch", "20", "--dropout", "0.2", "--save", tuned,
                           NULL};
    ck_assert_int_eq(tu_run_args(&res, adopt), 0);
    ck_assert_msg(strstr(res.err, "model 1-8-3, 2 LSTM layers, dropout 0.2") != NULL, "%s", res.err);
    pl_free(load_model(tuned, &ti));
    ck_assert_int_eq(ti.cfg.layers, 2);
    ck_assert_int_eq(ti.sequence, PL_SEQ_PIXELS);
    ck_assert_int_eq(ti.permuted, 1);
    ck_assert_uint_eq(ti.permute_seed, 77);
    ck_assert_int_eq(ti.T, ROWS * COLS);
    pl_free(dp);
    /* labels of 2 classes, a model of 3 */
    tu_make_dataset(two, 140, 20, ROWS, COLS, 2, 9);
    const char *fewer[] = {"train", "--data", two, "--init-from", m, "--steps", "2", "--val", "20",
                           "--batch", "20", "--save", tuned, NULL};
    ck_assert_int_eq(tu_run_args(&res, fewer), 0);
    pl_free(load_model(tuned, &ti));
    ck_assert_int_eq(ti.cfg.classes, CLASSES);
    pl_free(p);
}
END_TEST

/* Each way a model does not fit the run, named. */
typedef enum {
    FIT_HIDDEN, FIT_CLASSES, FIT_WIDTH, FIT_LABELS, FIT_ROWS, FIT_LAYERS, FIT_PERMUTED,
    FIT_SEQUENCE, FIT_DROPOUT, FIT_CHECKPOINT
} misfit;

static const struct {
    misfit kind;
    const char *option[2]; /* given to the run, or NULL */
    int status;
    const char *fragment;
} MISFITS[] = {
    {FIT_HIDDEN, {"--hidden", "32"}, 2,
     "m.bin: its input.weight is 16 x 5, 16 hidden units; --hidden says 32"},
    {FIT_CLASSES, {"--classes", "4"}, 2,
     "m.bin: its output.weight is 3 x 16, 3 classes; --classes says 4"},
    {FIT_WIDTH, {NULL}, 1,
     "m.bin: its input.weight is 16 x 5, for rows of 5 pixels; the images of "},
    {FIT_LABELS, {NULL}, 1, "m.bin: its output.weight is 3 x 16, 3 classes; the labels of "},
    {FIT_ROWS, {NULL}, 1,
     "m.bin: it reads images of 7 rows x 5 columns (7 time steps), the images of "},
    {FIT_LAYERS, {"--layers", "1"}, 2,
     "m.bin: it has 2 LSTM layers (lstm.weight_ih_l0 to lstm.weight_ih_l1); --layers says 1"},
    {FIT_PERMUTED, {"--permute", "8"}, 2,
     "m.bin: it reads its images row by row in a permuted order (seed 9); --sequence and "
     "--permute say row by row in a permuted order (seed 8)"},
    {FIT_SEQUENCE, {"--sequence", "rows"}, 2,
     "m.bin: it reads its images pixel by pixel; --sequence and --permute say row by row"},
    /* a model of one layer: no dropout */
    {FIT_DROPOUT, {"--dropout", "0.5"}, 2,
     "--dropout 0.5 acts between stacked layers, and there is one"},
    {FIT_CHECKPOINT, {NULL}, 1, "m.bin: bad magic number: expected \"PLSTMMDL\" (a parlstm model); this "
     "is a checkpoint"},
};

START_TEST(test_init_from_misfits)
{
    const char *dir = tu_dir;
    const char *data = tu_subdir("data");
    const misfit k = MISFITS[_i].kind;
    const char *m = tu_path(dir, "m.bin");
    const int layers = k == FIT_LAYERS ? 2 : 1;
    const pl_config cfg = {k == FIT_SEQUENCE ? 1 : COLS, HIDDEN, CLASSES, layers};
    size_t np = pl_param_count(&cfg);
    float *p = pl_alloc_floats(np);
    pl_model_init(&cfg, p, PL_INIT_DEFAULT, 3);
    pl_model_info mi = {.cfg = cfg, .T = ROWS, .permuted = k == FIT_PERMUTED, .permute_seed = 9};
    if (k == FIT_SEQUENCE) {
        mi.T = ROWS * COLS;
        mi.rows = ROWS;
        mi.cols = COLS;
        mi.sequence = PL_SEQ_PIXELS;
    }
    pl_error e = {0};
    ck_assert_int_eq(pl_model_save(m, &mi, p, NULL, &e), PL_OK);
    tu_make_dataset(data, 60, 10, k == FIT_ROWS ? ROWS + 1 : ROWS, k == FIT_WIDTH ? COLS + 1 : COLS,
                    k == FIT_LABELS ? CLASSES + 1 : CLASSES, 2);
    const char *args[16] = {"train", "--data", data, "--init-from", m, "--steps", "1",
                            "--val", "10", "--batch", "10"};
    int n = 11;
    if (MISFITS[_i].option[0]) {
        args[n++] = MISFITS[_i].option[0];
        args[n++] = MISFITS[_i].option[1];
    }
    if (k == FIT_CHECKPOINT) { /* a checkpoint of the same model in its place */
        const char *make[] = {"train", "--data", data, "--hidden", "16", "--steps", "1", "--val",
                              "10", "--batch", "10", "--checkpoint", m, NULL};
        ck_assert_int_eq(tu_run_args(&res, make), 0);
    }
    args[n] = NULL;
    ck_assert_int_eq(tu_run_args(&res, args), MISFITS[_i].status);
    char want[4400];
    if (k == FIT_DROPOUT)
        snprintf(want, sizeof want, "parlstm train: %s", MISFITS[_i].fragment);
    else
        snprintf(want, sizeof want, "parlstm train: --init-from %s/%s", dir, MISFITS[_i].fragment);
    ck_assert_msg(strstr(res.err, want) != NULL, "stderr lacks '%s': %s", want, res.err);
    ck_assert_ptr_null(strstr(res.out, "result:"));
    pl_free(p);
}
END_TEST

/* ---------------------------------------------------------------- --log */

/* A row every --log-every steps and at the end, one per validation and one
 * for the test set: their steps, epochs, learning rates (the schedule's),
 * and the values the progress lines and the result line show. */
START_TEST(test_log_rows)
{
    const char *dir = tu_dir;
    make_data(dir);
    const char *log = tu_path(dir, "run.csv");
    const char *args[] = {"train", "--data", dir, "--val", "20", "--batch", "20", "--hidden",
                          "16", "--steps", "12", "--log-every", "5", "--log", log, NULL};
    ck_assert_int_eq(tu_run_args(&res, args), 0);
    tu_log_row r[16];
    ck_assert_int_eq(tu_read_log(log, r, 16), 6);
    static const struct {
        const char *kind;
        long step, epoch;
    } want[] = {{"train", 5, 1}, {"val", 6, 1},  {"train", 10, 2},
                {"train", 12, 2}, {"val", 12, 2}, {"test", 12, 2}};
    double seconds = 0;
    for (int i = 0; i < 6; i++) {
        ck_assert_str_eq(r[i].kind, want[i].kind);
        ck_assert_int_eq(r[i].step, want[i].step);
        ck_assert_int_eq(r[i].epoch, want[i].epoch);
        ck_assert(r[i].loss > 0 && r[i].accuracy >= 0 && r[i].accuracy <= 1);
        ck_assert(r[i].seconds >= seconds);
        seconds = r[i].seconds;
        int train_row = !strcmp(want[i].kind, "train");
        if (train_row) {
            char lr[32];
            snprintf(lr, sizeof lr, "%.6g",
                     (double)pl_lr_at(&(pl_lr_plan){PL_SCHED_COSINE, 0.01f, 0, 12},
                                      r[i].step - 1));
            ck_assert_str_eq(r[i].lr, lr);
            ck_assert(atof(r[i].grad_norm) > 0 && atof(r[i].rate) > 0);
            /* the progress line of that step shows the same loss and accuracy */
            char line[128];
            snprintf(line, sizeof line, "step %2ld/12  epoch %ld  loss ", r[i].step, r[i].epoch);
            const char *at = strstr(res.err, line);
            double loss, acc;
            ck_assert_msg(at != NULL, "no '%s' in %s", line, res.err);
            ck_assert_int_eq(sscanf(at + strlen(line), "%lf  accuracy %lf", &loss, &acc), 2);
            ck_assert_double_eq_tol(loss, r[i].loss, 5.1e-5);
            ck_assert_double_eq_tol(acc, r[i].accuracy, 5.1e-5);
        } else {
            ck_assert_str_eq(r[i].lr, "");
            ck_assert_str_eq(r[i].grad_norm, "");
            ck_assert_str_eq(r[i].rate, "");
        }
    }
    double acc, loss;
    const char *at = strstr(res.err, "epoch 1: validation accuracy ");
    ck_assert_ptr_nonnull(at);
    ck_assert_int_eq(sscanf(at, "epoch 1: validation accuracy %lf, loss %lf", &acc, &loss), 2);
    ck_assert_double_eq_tol(acc, r[1].accuracy, 5.1e-5);
    ck_assert_double_eq_tol(loss, r[1].loss, 5.1e-5);
    at = strstr(res.out, "val_accuracy=");
    ck_assert_ptr_nonnull(at);
    ck_assert_int_eq(sscanf(at, "val_accuracy=%lf test_accuracy=%lf", &acc, &loss), 2);
    ck_assert_double_eq_tol(acc, r[4].accuracy, 5.1e-5);
    ck_assert_double_eq_tol(loss, r[5].accuracy, 5.1e-5);
    /* a fresh run replaces the log; a resumed one will not take a file that
     * is not a log */
    ck_assert_int_eq(tu_run_args(&res, args), 0);
    ck_assert_int_eq(tu_read_log(log, r, 16), 6);
    const char *ck = tu_path(dir, "ck");
    tu_write(log, "step,loss\n1,2\n", 14);
    const char *make_ck[] = {"train", "--data", dir, "--hidden", "16", "--steps", "2", "--val",
                             "20", "--batch", "20", "--checkpoint", ck, NULL};
    ck_assert_int_eq(tu_run_args(&res, make_ck), 0);
    const char *resume[] = {"train", "--data", dir, "--resume", ck, "--log", log, NULL};
    ck_assert_int_eq(tu_run_args(&res, resume), 1);
    char want_err[4400];
    snprintf(want_err, sizeof want_err, "--log %s: not a parlstm training log (its first line "
             "is 'step,loss'", log);
    ck_assert_msg(strstr(res.err, want_err) != NULL, "%s", res.err);
    char text[64];
    tu_slurp(log, text, sizeof text);
    ck_assert_str_eq(text, "step,loss\n1,2\n");
}
END_TEST

/* A run killed mid-way keeps every row it logged, whole; resumed, it
 * appends (the header once, the old rows untouched) and the rows of the
 * steps it did again replace the old ones in parlstm plot: as many rows as
 * a run left alone logs. */
START_TEST(test_log_kill_and_resume)
{
    if (!tu_hooks("the log of a run killed during slowed writes"))
        return;
    const char *dir = tu_dir;
    make_data(dir);
    char log[4200], ck[4200], ck2[4200], alone[4200], png[4200];
    snprintf(log, sizeof log, "%s/run.csv", dir);
    snprintf(ck, sizeof ck, "%s/ck", dir);
    snprintf(ck2, sizeof ck2, "%s/ck2", dir);
    snprintf(alone, sizeof alone, "%s/alone.csv", dir);
    snprintf(png, sizeof png, "%s/p.png", dir);
    const char *common[] = {"--data", dir, "--val", "20", "--batch", "20", "--hidden", "16",
                            "--workers", "1", "--threads", "1", "--log-every", "2",
                            "--checkpoint-every", "4", "--epochs", "4"};
    const char *args[32] = {"train"};
    int n = 1;
    for (size_t i = 0; i < sizeof common / sizeof *common; i++)
        args[n++] = common[i];
    args[n++] = "--checkpoint";
    args[n++] = ck;
    args[n++] = "--log";
    args[n++] = log;
    args[n] = NULL;
    const char *slow[] = {"PARLSTM_TEST_SLOW_WRITE_MS=400", NULL};
    tu_job j;
    tu_start(&j, NULL, args, slow);
    /* the rows of step 10 (after two checkpoints), then kill */
    tu_signal_when(&j, SIGKILL, log, "\ntrain,10,");
    ck_assert_int_eq(tu_finish(&j, &res, 0), TU_KILLED(SIGKILL));
    char before[1 << 14];
    size_t had = tu_slurp(log, before, sizeof before);
    ck_assert_msg(strstr(before, "\ntrain,10,") != NULL, "the killed run logged: %s", before);
    ck_assert_msg(strstr(before, "\ntest,") == NULL, "the run was not killed mid-way: %s", before);
    ck_assert(had > 0 && before[had - 1] == '\n'); /* whole rows */
    tu_log_row r[64];
    int killed_rows = tu_read_log(log, r, 64);
    printf("killed after %d rows\n", killed_rows);

    const char *resume[] = {"train", "--data", dir, "--resume", ck, "--checkpoint", ck,
                            "--log", log, "--log-every", "2", NULL};
    ck_assert_int_eq(tu_run_args(&res, resume), 0);
    char after[1 << 15];
    tu_slurp(log, after, sizeof after);
    ck_assert_int_eq(strncmp(after, before, had), 0); /* appended, never truncated */
    ck_assert_ptr_null(strstr(after + 1, "kind,step")); /* one header */
    int all = tu_read_log(log, r, 64);

    args[n - 3] = ck2;
    args[n - 1] = alone;
    ck_assert_int_eq(tu_run_args(&res, args), 0);
    int rows = tu_read_log(alone, r, 64);
    printf("the killed and resumed log has %d rows, a run left alone %d\n", all, rows);
    ck_assert_int_ge(all, rows); /* steps after the checkpoint were done twice */
    const char *plot[] = {"plot", "--log", log, "--out", png, NULL};
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        tu_skip("parlstm plot of a resumed log", "no gnuplot (apt-get install gnuplot-nox)");
    } else {
        ck_assert_int_eq(tu_run_args(&res, plot), 0);
        char want[4400];
        snprintf(want, sizeof want, "parlstm plot: %d rows of %s drawn", rows, log);
        ck_assert_msg(strstr(res.err, want) != NULL, "%s", res.err);
    }
}
END_TEST

/* ----------------------------------------------------------------- plot */

/* A log becomes a 900 x 720 PNG; rows cut short are skipped and counted;
 * the rows a resumed run did again count once; what is not a log, an
 * empty log and a missing gnuplot are refused. */
START_TEST(test_plot)
{
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        tu_skip("parlstm plot", "no gnuplot (apt-get install gnuplot-nox)");
        return;
    }
    const char *dir = tu_dir;
    const char *log = tu_path(dir, "l.csv"), *png = tu_path(dir, "l.png");
    const char *text =
        "kind,step,epoch,lr,loss,accuracy,grad_norm,samples_per_sec,seconds\n"
        "train,2,1,0.01,2.1,0.3,1.5,900,0.1\n"
        "train,4,1,0.009,1.5,0.5,1.2,900,0.2\n"
        "val,4,1,,1.4,0.55,,,0.25\n"
        "train,6,2,0.008,1.1,0.6,1.1,900,0.3\n"
        "train,4,1,0.009,1.5,0.5,1.2,900,0.2\n" /* resumed from step 2 */
        "val,4,1,,1.4,0.55,,,0.25\n"
        "train,6,2,0.008,1.1,0.6,1.1,900,0.3\n"
        "train,8,2,0.007,0.9,0.7,1.0,900,0.4\n"
        "val,8,2,,0.8,0.72,,,0.45\n"
        "test,8,2,,0.85,0.7,,,0.5\n"
        "train,9,2,0.00";
    tu_write(log, text, strlen(text));
    const char *args[] = {"plot", "--log", log, "--out", png, NULL};
    ck_assert_int_eq(tu_run_args(&res, args), 0);
    char want[4400];
    snprintf(want, sizeof want, "parlstm plot: note: %s/l.csv: skipped 1 malformed row (the first on "
             "line 12", dir);
    ck_assert_msg(strstr(res.err, want) != NULL, "%s", res.err);
    snprintf(want, sizeof want, "parlstm plot: 7 rows of %s drawn into %s\n", log, png);
    ck_assert_msg(strstr(res.err, want) != NULL, "%s", res.err);
    pl_image img;
    pl_error e = {0};
    ck_assert_msg(pl_image_read(png, &img, &e) == PL_OK, "%s", e.msg);
    ck_assert_int_eq(img.cols, 900);
    ck_assert_int_eq(img.rows, 720);
    pl_image_free(&img);

    static const struct {
        const char *text, *fragment;
    } bad[] = {
        {"", "the log is empty"},
        {"kind,step,epoch,lr,loss,accuracy,grad_norm,samples_per_sec,seconds\n",
         "no rows to draw"},
        {"step,loss\n1,2\n", "not a parlstm training log (its header has no 'kind' column"},
        {"kind,step,loss\ntrain,1,2\n", "has no 'accuracy' column"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        tu_write(log, bad[k].text, strlen(bad[k].text));
        ck_assert_int_eq(tu_run_args(&res, args), 1);
        ck_assert_msg(strstr(res.err, bad[k].fragment) != NULL, "%s", res.err);
    }
    const char *none[] = {"plot", "--log", tu_path(dir, "none.csv"), "--out", png, NULL};
    ck_assert_int_eq(tu_run_args(&res, none), 1);
    ck_assert_ptr_nonnull(strstr(res.err, "none.csv: cannot open the log"));
    /* without gnuplot */
    tu_write(log, text, strlen(text));
    const char *no_path[] = {"PATH=/nonexistent", NULL};
    int st = tu_run_env(&res, args, no_path);
    ck_assert_int_eq(st, 1);
    ck_assert_ptr_nonnull(strstr(res.err, "parlstm plot: gnuplot not found (Debian package "
                                      "gnuplot-nox); no plot written"));
}
END_TEST

Suite *tools_suite(void)
{
    Suite *s = suite_create("tools");
    TCase *tc = tu_tcase_with_dir("tools");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_export_import_round_trip);
    tcase_add_test(tc, test_import_time_steps);
    tcase_add_test(tc, test_predict_idx);
    tcase_add_test(tc, test_predict_png_pgm);
    tcase_add_test(tc, test_predict_model_readings);
    tcase_add_test(tc, test_init_from);
    tcase_add_loop_test(tc, test_init_from_misfits, 0, (int)(sizeof MISFITS / sizeof *MISFITS));
    tcase_add_test(tc, test_log_rows);
    tcase_add_test(tc, test_log_kill_and_resume);
    tcase_add_test(tc, test_plot);
    suite_add_tcase(s, tc);
    TCase *bad = tu_tcase_with_dir("predict refuses");
    tcase_set_timeout(bad, 120);
    tcase_add_unchecked_fixture(bad, predict_fixture, predict_fixture_done);
    tcase_add_loop_test(bad, test_predict_refuses, 0,
                        (int)(sizeof BAD_INPUTS / sizeof *BAD_INPUTS));
    suite_add_tcase(s, bad);
    return s;
}
