/* parlstm eval: accuracy of a saved model on a test set. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void eval_usage(FILE *f)
{
    fprintf(f,
        "Usage: parlstm eval --model FILE [OPTIONS]\n"
        "Evaluates a model saved by 'parlstm train --save FILE' on the test set\n"
        "DIR/t10k-{images-idx3,labels-idx1}-ubyte[.gz].\n"
        "\n"
        "  --model FILE        the model (required)\n"
        "  --data DIR          data directory (default data/mnist)\n"
        "  --workers W, --threads T, --gemm B   as for train\n"
        "  --quiet             the result line only\n"
        "  -h, --help          this help\n"
        "\n"
        "The last stdout line is the result, for example\n"
        "  result: test_accuracy=0.9805 test_loss=0.0651 images=10000 seconds=0.4\n");
}

int cmd_eval(int argc, char **argv)
{
    enum { OPT_MODEL = 256, OPT_DATA, OPT_WORKERS, OPT_THREADS, OPT_GEMM, OPT_QUIET };
    static const struct option longopts[] = {
        {"model", required_argument, 0, OPT_MODEL},
        {"data", required_argument, 0, OPT_DATA},
        {"workers", required_argument, 0, OPT_WORKERS},
        {"threads", required_argument, 0, OPT_THREADS},
        {"gemm", required_argument, 0, OPT_GEMM},
        {"quiet", no_argument, 0, OPT_QUIET},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *cmd = "eval", *model = NULL, *data = "data/mnist";
    pl_train_opts o;
    pl_train_opts_default(&o);
    long long v;
    int c, quiet = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_MODEL: model = optarg; break;
        case OPT_DATA: data = optarg; break;
        case OPT_WORKERS:
            if (opt_long(cmd, "--workers", optarg, 1, 1024, &v)) return EXIT_USAGE;
            o.workers = (int)v;
            break;
        case OPT_THREADS:
            if (opt_long(cmd, "--threads", optarg, 1, 1024, &v)) return EXIT_USAGE;
            o.threads = (int)v;
            break;
        case OPT_GEMM:
            if (opt_gemm(cmd, optarg, &o.gemm)) return EXIT_USAGE;
            break;
        case OPT_QUIET: quiet = 1; break;
        case 'h': eval_usage(stdout); return 0;
        default:
            fprintf(stderr, "parlstm eval: %s option '%s' (see parlstm eval --help)\n",
                    optopt ? "missing value for" : "unknown", argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "parlstm eval: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (!model) {
        fprintf(stderr, "parlstm eval: --model FILE is required (see parlstm eval --help)\n");
        return EXIT_USAGE;
    }
    if (pl_gemm_resolve(o.gemm) == PL_GEMM_BLAS)
        cli_fix_openblas();
    pl_error err = {0};
    pl_model_info mi;
    float *params = NULL;
    if (pl_model_load(model, &mi, &params, &err)) {
        print_error(cmd, &err);
        return 1;
    }
    pl_config cfg = mi.cfg;
    pl_dataset train, test;
    int have_test, rc = cli_load_data(cmd, data, cfg.classes, 0, &train, &test, &have_test);
    if (rc) {
        pl_free(params);
        return rc;
    }
    rc = 1;
    pl_trainer *tr = NULL;
    if (test.D != cfg.input) {
        fprintf(stderr, "parlstm eval: %s: the model reads rows of %d pixels, the test images have %d\n",
                model, cfg.input, test.D);
        goto out;
    }
    if (mi.T == 0 && !quiet)
        fprintf(stderr, "parlstm eval: note: %s is a version %d model file, which does not record "
                "the sequence length; only the row width is checked\n", model, mi.version);
    if (mi.T != 0 && test.T != mi.T) {
        fprintf(stderr, "parlstm eval: %s: the model was trained on sequences of %d rows, the test "
                "images have %d\n", model, mi.T, test.T);
        goto out;
    }
    o.hidden = cfg.hidden;
    if (o.workers > o.batch)
        o.batch = o.workers;
    if (!(tr = pl_trainer_create(&cfg, test.T, &o, &err))) {
        print_error(cmd, &err);
        goto out;
    }
    memcpy(pl_trainer_params(tr), params, sizeof(float) * pl_param_count(&cfg));
    double acc, loss, t0 = pl_seconds();
    if (pl_trainer_evaluate(tr, &test, &acc, &loss, &err)) {
        print_error(cmd, &err);
        goto out;
    }
    double secs = pl_seconds() - t0;
    if (!quiet)
        fprintf(stderr, "parlstm eval: model %d-%d-%d from %s on %zu test images\n", cfg.input,
                cfg.hidden, cfg.classes, model, test.n);
    printf("result: test_accuracy=%.4f test_loss=%.4f images=%zu seconds=%.2f\n", acc, loss,
           test.n, secs);
    rc = 0;
out:
    pl_trainer_free(tr);
    pl_free(params);
    pl_dataset_free(&test);
    return rc;
}
