/* parlstm eval: accuracy of a saved model on a test set: IDX images
 * (--data), or sequences of values (--test FILE, for a model trained on
 * --train's), standardised as the model records. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char *const CMD = "eval";

/* The test images must have the shapes the model was trained on; then
 * they are read as the model reads images (pixels, permuted). */
static int check_shapes(const char *model, const pl_model_info *mi, pl_dataset *test,
                        int quiet)
{
    if (mi->version >= 3 || (mi->version == 0 && mi->T > 0)) { /* v3, or safetensors */
        if (test->T != mi->rows || test->D != mi->cols) {
            fprintf(stderr, "parlstm eval: %s: the model reads images of %dx%d, the test images "
                    "are %dx%d\n", model, mi->rows, mi->cols, test->T, test->D);
            return 1;
        }
        return cli_read_as("eval", test, mi->sequence, mi->permuted, mi->permute_seed);
    }
    if (test->D != mi->cfg.input) {
        fprintf(stderr, "parlstm eval: %s: the model reads rows of %d pixels, the test images "
                "have %d\n", model, mi->cfg.input, test->D);
        return 1;
    }
    if (mi->T == 0) {
        if (!quiet && mi->version > 0)
            fprintf(stderr, "parlstm eval: note: %s is a version %d model file, which does not "
                    "record the sequence length; only the row width is checked\n", model,
                    mi->version);
        else if (!quiet)
            fprintf(stderr, "parlstm eval: note: %s records no sequence length (no time_steps "
                    "in its metadata); only the row width is checked\n", model);
        return 0;
    }
    if (test->T != mi->T) {
        fprintf(stderr, "parlstm eval: %s: the model was trained on sequences of %d rows, the "
                "test images have %d\n", model, mi->T, test->T);
        return 1;
    }
    return 0;
}

/* --test FILE and its labels and lengths, for a model of values: read to
 * the model's classes, standardised with its statistics, read as it reads
 * them. 0, or 1 after a message. */
static int load_series_test(const char *model, const pl_model_info *mi, const cli_value *v,
                            pl_dataset *test)
{
    const char *path = v[O_TEST_FILE].text;
    if (mi->input == PL_INPUT_IMAGES && mi->version >= 4) {
        fprintf(stderr, "parlstm eval: %s reads images (it was trained on IDX images), not the "
                "sequences of %s: give its test images with --data DIR\n", model, path);
        return 1;
    }
    return cli_load_sequences(CMD, model, mi, path, v[O_TEST_LABELS].text,
                              v[O_TEST_LENGTHS].text, 1, test);
}

/* Which test set: --data's images or --test's sequences, not both; the
 * files that go with --test only with it. 0, or EXIT_USAGE after a
 * message. */
static int check_test_args(const cli_value *v)
{
    const char *alone = v[O_TEST_LABELS].text ? "--test-labels"
                        : v[O_TEST_LENGTHS].text ? "--test-lengths" : NULL;
    if (!v[O_TEST_FILE].text && alone) {
        fprintf(stderr, "parlstm eval: %s goes with --test FILE\n", alone);
        return EXIT_USAGE;
    }
    if (v[O_TEST_FILE].text && v[O_DATA].set) {
        fprintf(stderr, "parlstm eval: --data and --test both give the test set: --data "
                "IDX images, --test sequences of values (give one)\n");
        return EXIT_USAGE;
    }
    return 0;
}

static int evaluate(const char *model, const pl_model_info *mi, const float *params,
                    const pl_dataset *test, pl_train_opts *o, int quiet)
{
    pl_error err = {0};
    o->hidden = mi->cfg.hidden;
    if (o->workers > o->batch)
        o->batch = o->workers;
    pl_trainer *tr = pl_trainer_create(&mi->cfg, test->T, o, &err);
    if (!tr) {
        print_error(CMD, &err);
        return 1;
    }
    memcpy(pl_trainer_params(tr), params, sizeof(float) * pl_param_count(&mi->cfg));
    double acc, loss, t0 = pl_seconds();
    pl_status rc = pl_trainer_evaluate(tr, test, &acc, &loss, &err);
    pl_trainer_free(tr);
    if (rc) {
        print_error(CMD, &err);
        return 1;
    }
    double secs = pl_seconds() - t0;
    if (!quiet)
        fprintf(stderr, "parlstm eval: model %d-%d-%d from %s on %zu test %s%s\n",
                mi->cfg.input, mi->cfg.hidden, mi->cfg.classes, model, test->n,
                test->values ? "sequences" : "images",
                mi->features ? ", standardised as the model records" : "");
    printf("result: test_accuracy=%.4f test_loss=%.4f images=%zu seconds=%.2f\n", acc, loss,
           test->n, secs);
    return 0;
}

int cmd_eval(int argc, char **argv)
{
    cli_value v[O_COUNT];
    int rc = cli_parse(CMD_EVAL, argc, argv, v);
    if (rc)
        return rc < 0 ? 0 : rc;
    const char *model = v[O_MODEL].text;
    int quiet = (int)v[O_QUIET].i;
    if (!model)
        return cli_missing(CMD_EVAL, O_MODEL);
    pl_train_opts o;
    pl_train_opts_default(&o);
    o.workers = (int)v[O_WORKERS].i;
    o.threads = (int)v[O_THREADS].i;
    o.gemm = (pl_gemm_backend)v[O_GEMM].i;
    if (pl_gemm_resolve(o.gemm) == PL_GEMM_BLAS)
        cli_fix_openblas();
    if ((rc = check_test_args(v)))
        return rc;
    pl_model_info mi;
    float *params = NULL;
    if (cli_load_model(CMD, model, &mi, &params))
        return 1;
    o.precision = mi.precision; /* the model runs as it trained */
    pl_dataset train, test = {0};
    int have_test;
    if (!v[O_TEST_FILE].text && mi.input == PL_INPUT_VALUES) {
        fprintf(stderr, "parlstm eval: %s was trained on sequences of values (--train), not "
                "images: give its test file with --test FILE\n", model);
        rc = EXIT_USAGE;
    } else {
        if (v[O_TEST_FILE].text)
            rc = load_series_test(model, &mi, v, &test);
        else if (!(rc = cli_load_data(CMD, v[O_DATA].text, mi.cfg.classes, 0, &train, &test,
                                      &have_test)))
            rc = check_shapes(model, &mi, &test, quiet);
    }
    if (!rc)
        rc = evaluate(model, &mi, params, &test, &o, quiet);
    pl_model_info_free(&mi);
    pl_free(params);
    pl_dataset_free(&test);
    return rc;
}
