/* train_tiny: libparlstm from a program of your own, through its public API
 * alone. It makes a small image set in memory (class c draws a bright
 * column at c * 3 on the top or bottom half of 8 x 12 images, over noise),
 * trains a model on it, evaluates it on images it has not seen, saves it,
 * exports it for PyTorch and reads both files back.
 *
 *   cc train_tiny.c $(pkg-config --cflags --libs parlstm) -o train_tiny
 *   ./train_tiny [DIR]     (DIR: where the two files go; default: a new
 *                           directory under $TMPDIR or /tmp, removed after)
 *
 * Prints the test accuracy; exits 0 when it is above 0.9 and both files
 * read back equal, 1 otherwise. */
#include <parlstm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { ROWS = 8, COLS = 12, CLASSES = 4, N_TRAIN = 600, N_TEST = 200 };

/* n images (n, ROWS, COLS) and labels drawn with rng. */
static void make_images(uint8_t *images, uint8_t *labels, int n, pl_rng *rng)
{
    for (int i = 0; i < n; i++) {
        int c = (int)pl_rng_below(rng, CLASSES);
        uint8_t *img = images + (size_t)i * ROWS * COLS;
        for (int k = 0; k < ROWS * COLS; k++)
            img[k] = (uint8_t)pl_rng_below(rng, 80);
        for (int r = 0; r < ROWS; r++)
            if ((c % 2 == 0) == (r < ROWS / 2))
                img[r * COLS + c * 3] = 255;
        labels[i] = (uint8_t)c;
    }
}

static int fail(const char *what, const pl_error *err)
{
    fprintf(stderr, "train_tiny: %s: %s\n", what, err->msg);
    return 1;
}

int main(int argc, char **argv)
{
    static uint8_t train_images[N_TRAIN * ROWS * COLS], train_labels[N_TRAIN];
    static uint8_t test_images[N_TEST * ROWS * COLS], test_labels[N_TEST];
    pl_rng rng;
    pl_rng_seed(&rng, 42);
    make_images(train_images, train_labels, N_TRAIN, &rng);
    make_images(test_images, test_labels, N_TEST, &rng);
    /* data sets that view the caller's arrays (nothing owned) */
    pl_dataset train = {.images = train_images, .labels = train_labels, .n = N_TRAIN,
                        .T = ROWS, .D = COLS, .classes = CLASSES};
    pl_dataset test = {.images = test_images, .labels = test_labels, .n = N_TEST,
                       .T = ROWS, .D = COLS, .classes = CLASSES};

    pl_config cfg = {.input = COLS, .hidden = 32, .classes = CLASSES, .layers = 1};
    pl_train_opts opts;
    pl_train_opts_default(&opts);
    opts.batch = 50;
    opts.hidden = cfg.hidden;
    opts.lr = 0.02f;
    opts.workers = 2;
    opts.threads = 1;
    pl_error err;
    pl_trainer *tr = pl_trainer_create(&cfg, ROWS, &opts, &err);
    if (!tr)
        return fail("cannot create the trainer", &err);

    const int epochs = 8, per_epoch = N_TRAIN / opts.batch;
    const long total = (long)epochs * per_epoch;
    uint32_t order[N_TRAIN];
    pl_step_stats st = {0};
    for (long step = 0; step < total; step++) {
        if (step % per_epoch == 0)
            pl_epoch_order(opts.seed, step / per_epoch, order, N_TRAIN);
        const uint32_t *batch = order + (step % per_epoch) * opts.batch;
        if (pl_trainer_step(tr, &train, batch, opts.batch, step, total, &st, &err))
            return fail("training step", &err);
    }
    double accuracy, loss;
    if (pl_trainer_evaluate(tr, &test, &accuracy, &loss, &err))
        return fail("evaluation", &err);
    printf("train_tiny: %ld steps, last batch loss %.4f; test accuracy %.4f, loss %.4f\n", total,
           st.loss, accuracy, loss);

    /* save, export, read both back */
    char dir[4096];
    int own_dir = argc < 2;
    if (own_dir) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/train_tiny.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) {
            perror("train_tiny: mkdtemp");
            return 1;
        }
    } else {
        snprintf(dir, sizeof dir, "%s", argv[1]);
    }
    char model[4200], exported[4200];
    snprintf(model, sizeof model, "%s/tiny.model", dir);
    snprintf(exported, sizeof exported, "%s/tiny.safetensors", dir);
    const float *params = pl_trainer_params(tr);
    size_t n = pl_param_count(&cfg);
    pl_model_info info = {.cfg = cfg, .T = ROWS};
    if (pl_model_save(model, &info, params, NULL, &err))
        return fail("save", &err);
    if (pl_safetensors_save(exported, &info, params, NULL, &err))
        return fail("export", &err);
    pl_model_info m1, m2;
    float *p1 = NULL, *p2 = NULL;
    if (pl_model_load(model, &m1, &p1, &err))
        return fail("load", &err);
    if (pl_safetensors_load(exported, &m2, &p2, &err))
        return fail("import", &err);
    int same = m1.cfg.hidden == cfg.hidden && m1.T == ROWS && m2.cfg.hidden == cfg.hidden &&
               m2.T == ROWS && m2.rows == ROWS && m2.cols == COLS &&
               memcmp(p1, params, 4 * n) == 0 && memcmp(p2, params, 4 * n) == 0;
    printf("train_tiny: %s and %s read back %s\n", model, exported,
           same ? "equal, bit for bit" : "DIFFERENT");
    if (own_dir) {
        unlink(model);
        unlink(exported);
        rmdir(dir);
    }
    pl_free(p1);
    pl_free(p2);
    pl_trainer_free(tr);
    return accuracy > 0.9 && same ? 0 : 1;
}
