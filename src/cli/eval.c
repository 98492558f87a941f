/* parlstm eval: accuracy of a saved model on a test set. */
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
        fprintf(stderr, "parlstm eval: model %d-%d-%d from %s on %zu test images\n",
                mi->cfg.input, mi->cfg.hidden, mi->cfg.classes, model, test->n);
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
    pl_model_info mi;
    float *params = NULL;
    if (cli_load_model(CMD, model, &mi, &params))
        return 1;
    pl_dataset train, test;
    int have_test;
    rc = cli_load_data(CMD, v[O_DATA].text, mi.cfg.classes, 0, &train, &test, &have_test);
    if (!rc && !(rc = check_shapes(model, &mi, &test, quiet)))
        rc = evaluate(model, &mi, params, &test, &o, quiet);
    pl_free(params);
    pl_dataset_free(&test);
    return rc;
}
