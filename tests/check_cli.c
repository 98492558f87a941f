/* The parlstm program: bad options exit 2 with a message (never a crash),
 * missing data says how to get it, help and version answer, and
 * train --save / eval agree. Runs the built binary ($PARLSTM_BIN). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "testutil.h"

/* the last run of a program */
static tu_result res;

typedef struct {
    const char *args[16];
    int status;
    const char *fragment; /* in stderr */
} cli_case;

static const cli_case BAD[] = {
    {{"train", "--batch", "0"}, 2, "--batch: expected an integer from 1 to 65536, got '0'"},
    {{"train", "--lr", "-1"}, 2, "--lr: expected a number above 0"},
    {{"train", "--lr", "nan"}, 2, "--lr: expected a number"},
    {{"train", "--workers", "0"}, 2, "--workers: expected an integer from 1 to 1024, got '0'"},
    {{"train", "--threads", "-3"}, 2, "--threads: expected an integer from 1"},
    {{"train", "--batch", "abc"}, 2, "--batch: expected an integer"},
    {{"train", "--batch", "12x"}, 2, "got '12x'"},
    {{"train", "--epochs", "99999999999999999999999"}, 2, "--epochs: expected an integer"},
    {{"train", "--seed", "-1"}, 2, "--seed: expected a non-negative integer"},
    {{"train", "--clip", "-0.5"}, 2, "--clip: expected a number at least 0"},
    {{"train", "--hidden", "100000"}, 2, "--hidden: expected an integer from 1 to 8192"},
    {{"train", "--lr-schedule", "linear"}, 2, "expected one of cosine, constant"},
    {{"train", "--init", "zeros"}, 2, "expected one of default, tutorial"},
    {{"train", "--gemm", "cuda"}, 2, "expected one of auto, naive, blas, avx512, avx2, neon"},
    {{"train", "--frobnicate"}, 2, "unknown option '--frobnicate'"},
    {{"train", "--batch"}, 2, "needs a value"},
    {{"train", "extra"}, 2, "unexpected argument 'extra'"},
    {{"train", "--batch", "4", "--workers", "8"}, 2, "--workers 8 is more than --batch 4"},
    {{"train", "--tutorial", "--clip", "1"}, 2, "--tutorial means"},
    {{"train", "--data", "/nonexistent/mnist"}, 1, "data/fetch-mnist.sh"},
    {{"train", "--check", "x"}, 2,
     "ambiguous option '--check': it could be --checkpoint, --checkpoint-every"},
    {{"train", "--save", "m.bin", "--checkpoint", "./m.bin", "--data", "/nonexistent"}, 2,
     "--save m.bin and --checkpoint ./m.bin are the same file"},
    {{"train", "--resume", "/tmp/parlstm-no-such-ck", "--save", "/tmp/../tmp/parlstm-no-such-ck"},
     2, "--save /tmp/../tmp/parlstm-no-such-ck and --resume /tmp/parlstm-no-such-ck are the same"},
    /* the same words for every command */
    {{"eval", "--workers", "0"}, 2,
     "parlstm eval: --workers: expected an integer from 1 to 1024, got '0'"},
    {{"bench", "--batch", "0"}, 2,
     "parlstm bench: --batch: expected a comma-separated list of at most 16 integers from 1 to "
     "65536, got '0'"},
    {{"bench", "--hidden", "64,,128"}, 2, "parlstm bench: --hidden: expected a comma-separated"},
    {{"bench", "--gemm", "avx512,cuda"}, 2,
     "parlstm bench: --gemm: expected a list of auto, naive, blas, avx512, avx2, neon; got 'avx512,cuda'"},
    {{"bench", "--seq", "28x28"}, 2, "parlstm bench: --seq: expected T,D (time steps, input width"},
    {{"bench", "--seq", "28,28/0,1"}, 2, "a list like 28,28/784,1 of at most 16; got '28,28/0,1'"},
    {{"eval", "--gemm", "cuda"}, 2,
     "parlstm eval: --gemm: expected one of auto, naive, blas, avx512, avx2, neon; got 'cuda'"},
    /* --kernels is the option's name, --gemm the earlier one: each message names the one typed */
    {{"train", "--kernels", "cuda"}, 2,
     "parlstm train: --kernels: expected one of auto, naive, blas, avx512, avx2, neon; got 'cuda'"},
    {{"bench", "--kernels", "avx512,cuda"}, 2,
     "parlstm bench: --kernels: expected a list of auto, naive, blas, avx512, avx2, neon; got "
     "'avx512,cuda'"},
    {{"bench", "--frobnicate"}, 2,
     "parlstm bench: unknown option '--frobnicate' (see parlstm bench --help)"},
    {{"eval", "--model"}, 2, "parlstm eval: option '--model' needs a value"},
    {{"bench", "extra"}, 2, "parlstm bench: unexpected argument 'extra' (see parlstm bench"},
    {{"eval", "--batch", "5"}, 2,
     "unknown option '--batch': it is an option of parlstm train, parlstm bench"},
    {{"bench", "--steps", "2000000"}, 2, "bench: --steps: expected an integer from 1 to 1000000"},
    {{"bench", "--scaling", "linear"}, 2, "expected one of strong, weak, both; got 'linear'"},
    {{"bench", "--grid", "2x"}, 2, "--grid: expected a list like 1x1,2x1,1x2"},
    /* (without the check, the grid fails before anything is measured) */
    {{"bench", "--csv", "/tmp/parlstm-t.csv", "--plot", "/tmp/../tmp/parlstm-t.csv", "--data",
      "/nonexistent", "--grid", "4x1", "--batch", "2"}, 2,
     "--csv /tmp/parlstm-t.csv and --plot /tmp/../tmp/parlstm-t.csv are the same file"},
    /* the layers issue's options */
    {{"train", "--layers", "0"}, 2, "--layers: expected an integer from 1 to 8, got '0'"},
    {{"train", "--layers", "9"}, 2, "--layers: expected an integer from 1 to 8, got '9'"},
    {{"train", "--dropout", "1"}, 2, "--dropout: expected a number at least 0 and at most 0.95"},
    {{"train", "--dropout", "0.3"}, 2,
     "--dropout 0.3 acts between stacked layers, and there is one"},
    {{"train", "--sequence", "cols"}, 2, "--sequence: expected one of rows, pixels; got 'cols'"},
    {{"train", "--permute", "x"}, 2, "--permute: expected a non-negative integer"},
    /* the training-recipe options (issue 20) */
    {{"train", "--lr-warmup", "-1"}, 2,
     "--lr-warmup: expected an integer from 0 to 1000000000000, got '-1'"},
    {{"train", "--lr-scaling", "cube"}, 2,
     "--lr-scaling: expected one of none, linear, sqrt; got 'cube'"},
    {{"train", "--preset", "mnist-100"}, 2,
     "--preset: expected one of mnist-99, smnist, psmnist; got 'mnist-100'"},
    {{"train", "--preset", "smnist", "--tutorial", "--clip", "1"}, 2,
     "--tutorial means --init tutorial --lr-schedule constant --clip 0"},
    {{"train", "--weight-decay", "1.5"}, 2,
     "--weight-decay: expected a number at least 0 and at most 1, got '1.5'"},
    {{"train", "--weight-decay", "0.5", "--lr", "2"}, 2,
     "--weight-decay 0.5 at a peak rate of 2 multiplies the parameters by 0 at the peak: "
     "rate x decay must be below 1"},
    {{"train", "--weight-decay", "0.2", "--lr", "2", "--lr-scaling", "linear", "--batch",
      "300"}, 2, "--weight-decay 0.2 at a peak rate of 6 multiplies the parameters by -0.2"},
    {{"train", "--target-accuracy", "0"}, 2,
     "--target-accuracy: expected a number above 0 and at most 1, got '0'"},
    {{"train", "--target-accuracy", "1.01"}, 2,
     "--target-accuracy: expected a number above 0 and at most 1, got '1.01'"},
    {{"train", "--eval-every", "0"}, 2,
     "--eval-every: expected an integer from 1 to 1000000000000, got '0'"},
    {{"train", "--init", "glorot"}, 2, "--init: expected one of default, tutorial, chrono, pytorch; got"},
    {{"frob"}, 2, "unknown command 'frob' (commands: train, eval, predict, export, import, plot, "
     "bench; see parlstm --help)"},
    /* the commands that take models out and back, and show training */
    {{"predict", "--model", "m.bin"}, 2, "parlstm predict: no INPUT... given (see parlstm "
     "predict --help)"},
    {{"predict", "x.png"}, 2, "parlstm predict: --model FILE is required"},
    {{"predict", "--model", "m", "--top", "0", "x.png"}, 2,
     "parlstm predict: --top: expected an integer from 1 to 256, got '0'"},
    {{"predict", "--model", "/nonexistent/m.bin", "x.png"}, 1, "/nonexistent/m.bin: cannot open "
     "the model"},
    {{"predict", "--data", "d", "--model", "m", "x.png"}, 2,
     "unknown option '--data': it is an option of parlstm train, parlstm eval, parlstm bench"},
    {{"export"}, 2, "parlstm export: --model FILE is required"},
    {{"export", "--model", "m.bin"}, 2, "parlstm export: --out FILE.safetensors is required"},
    {{"export", "--model", "m.bin", "--out", "./m.bin"}, 2,
     "parlstm export: --model m.bin and --out ./m.bin are the same file"},
    {{"export", "--model", "/nonexistent/m.bin", "--out", "/nonexistent/m.st"}, 1,
     "parlstm export: /nonexistent/m.bin: cannot open the model"},
    {{"export", "--model", "m.bin", "--out", "x", "extra"}, 2,
     "parlstm export: unexpected argument 'extra'"},
    {{"import"}, 2, "parlstm import: --in FILE is required"},
    {{"import", "--in", "m.st"}, 2, "parlstm import: --out MODEL is required"},
    {{"import", "--in", "m.st", "--out", "./m.st"}, 2,
     "parlstm import: --in m.st and --out ./m.st are the same file"},
    {{"import", "--in", "m.st", "--out", "m.bin", "--time-steps", "0"}, 2,
     "parlstm import: --time-steps: expected an integer from 1 to 65535, got '0'"},
    {{"import", "--in", "/nonexistent/m.st", "--out", "/nonexistent/m.bin"}, 1,
     "parlstm import: /nonexistent/m.st: cannot open the safetensors"},
    {{"plot"}, 2, "parlstm plot: --log FILE.csv is required"},
    {{"plot", "--log", "l.csv"}, 2, "parlstm plot: --out FILE.png is required"},
    {{"plot", "--log", "l.csv", "--out", "./l.csv"}, 2,
     "parlstm plot: --log l.csv and --out ./l.csv are the same file"},
    {{"train", "--init-from", "a.bin", "--resume", "ck"}, 2,
     "parlstm train: --init-from and --resume both say where the parameters come from"},
    {{"train", "--log", "x.csv", "--save", "./x.csv", "--data", "/nonexistent"}, 2,
     "parlstm train: --log x.csv and --save ./x.csv are the same file"},
    {{"train", "--log", "ck", "--checkpoint", "./ck", "--data", "/nonexistent"}, 2,
     "--log ck and --checkpoint ./ck are the same file"},
    {{"train", "--log", "/tmp/parlstm-no-such-r", "--resume", "/tmp/./parlstm-no-such-r"}, 2,
     "--log /tmp/parlstm-no-such-r and --resume /tmp/./parlstm-no-such-r are the same file"},
    {{"train", "--log", "i.bin", "--init-from", "./i.bin"}, 2,
     "--log i.bin and --init-from ./i.bin are the same file"},
    {{"train", "--log", "/nonexistent-dir/l.csv", "--data", "/nonexistent"}, 1,
     "/nonexistent-dir/l.csv"},
    {{"train", "--init-from", "/nonexistent/i.bin", "--data", "/nonexistent"}, 1,
     "parlstm train: --init-from /nonexistent/i.bin: cannot open the model"},
    {{"train", "--out", "x"}, 2,
     "unknown option '--out': it is an option of parlstm export, parlstm import, parlstm plot"},
    {{"eval", "--top", "3"}, 2, "unknown option '--top': it is an option of parlstm predict"},
    {{"help-man", "x"}, 2, "parlstm help-man: no arguments"},
    {{"eval"}, 2, "--model FILE is required"},
    {{"eval", "--model", "/nonexistent/m.bin"}, 1, "cannot open the model"},
    {{0}, 2, "Usage: parlstm COMMAND"},
};

START_TEST(test_bad_invocations)
{
    const cli_case *c = &BAD[_i];
    int st = tu_run_args(&res, c->args);
    printf("parlstm %s %s %s -> %d: %s", c->args[0] ? c->args[0] : "",
           c->args[1] ? c->args[1] : "", c->args[2] ? c->args[2] : "", st, res.err);
    ck_assert_msg(st == c->status, "exit %d, expected %d; stderr: %s", st, c->status, res.err);
    ck_assert_msg(strstr(res.err, c->fragment) != NULL, "stderr lacks '%s': %s", c->fragment, res.err);
    ck_assert_msg(strstr(res.out, "result:") == NULL, "a result line after an error");
}
END_TEST

/* A kernel set this CPU cannot run is refused before anything starts,
 * under either name of the option, naming the set, what it needs and
 * what auto runs here. */
START_TEST(test_unavailable_kernels_refused)
{
    pl_gemm_backend missing = PL_GEMM_AUTO;
    for (int be = PL_GEMM_NAIVE; be <= PL_GEMM_LAST && missing == PL_GEMM_AUTO; be++)
        if (!pl_gemm_available((pl_gemm_backend)be))
            missing = (pl_gemm_backend)be;
    ck_assert_msg(missing != PL_GEMM_AUTO, "every kernel set runs here: neon and avx2 exclude "
                  "each other");
    const char *names[] = {"--kernels", "--gemm"};
    for (int k = 0; k < 2; k++) {
        const char *args[] = {"train", names[k], pl_gemm_name(missing), NULL};
        char want[512];
        snprintf(want, sizeof want, "parlstm train: %s %s: needs %s, which this CPU is not; "
                 "use auto (%s here)", names[k], pl_gemm_name(missing), pl_gemm_requires(missing),
                 pl_gemm_name(pl_gemm_resolve(PL_GEMM_AUTO)));
        ck_assert_int_eq(tu_run_args(&res, args), 2);
        ck_assert_msg(strstr(res.err, want) != NULL, "stderr lacks '%s': %s", want, res.err);
    }
}
END_TEST

START_TEST(test_help_and_version)
{
    const char *a1[] = {"--help", NULL};
    ck_assert_int_eq(tu_run_args(&res, a1), 0);
    ck_assert_ptr_nonnull(strstr(res.out, "train"));
    ck_assert_ptr_nonnull(strstr(res.out, "data/fetch-mnist.sh"));
    const char *a2[] = {"train", "--help", NULL};
    ck_assert_int_eq(tu_run_args(&res, a2), 0);
    const char *opts[] = {"--workers", "--threads", "--tutorial", "--clip", "--lr-schedule",
                          "--save", "--steps", "--val", "--seed", "--quiet", "Exit status"};
    for (size_t i = 0; i < sizeof opts / sizeof *opts; i++)
        ck_assert_msg(strstr(res.out, opts[i]) != NULL, "train --help lacks %s", opts[i]);
    /* the defaults, from the option table (help text wrapped: compare words) */
    static char flat[65536];
    size_t k = 0;
    for (const char *c = res.out; *c && k + 1 < sizeof flat; c++)
        if (!(c[0] == ' ' || c[0] == '\n') || (k > 0 && flat[k - 1] != ' '))
            flat[k++] = c[0] == '\n' ? ' ' : c[0];
    flat[k] = '\0';
    const char *defaults[] = {"(default: 100)", "(default: 5000)", "(default: cosine)",
                              "(default: $PARLSTM_DATA, else ./data/mnist when it exists", "(default: 0.01)",
                              "(default: the largest training label + 1)"};
    for (size_t i = 0; i < sizeof defaults / sizeof *defaults; i++)
        ck_assert_msg(strstr(flat, defaults[i]) != NULL, "train --help lacks %s", defaults[i]);
    /* wrapped at 79 columns */
    for (const char *line = res.out; *line;) {
        size_t len = strcspn(line, "\n");
        ck_assert_msg(len <= 79, "a long help line: %.*s", (int)len, line);
        line += len + (line[len] == '\n');
    }
    const char *a3[] = {"eval", "--help", NULL};
    ck_assert_int_eq(tu_run_args(&res, a3), 0);
    ck_assert_ptr_nonnull(strstr(res.out, "--model FILE"));
    ck_assert_ptr_null(strstr(res.out, "--lr"));
    const char *a5[] = {"bench", "--help", NULL};
    ck_assert_int_eq(tu_run_args(&res, a5), 0);
    const char *bench_opts[] = {"--grid LIST", "--steps N", "timed steps per configuration",
                                "(default: 40)", "--rounds R", "--synthetic", "--plot FILE.png",
                                "GFLOP per step"};
    for (size_t i = 0; i < sizeof bench_opts / sizeof *bench_opts; i++)
        ck_assert_msg(strstr(res.out, bench_opts[i]) != NULL, "bench --help lacks %s", bench_opts[i]);
    /* the new commands: their options, operands and exit statuses */
    static const struct {
        const char *cmd, *want[6];
    } more[] = {
        {"predict", {"Usage: parlstm predict --model FILE [OPTIONS] INPUT...", "--top K",
                     "--probabilities", "input,index,class,probability",
                     "Exit status: 0 every image classified; 1 an input refused", NULL}},
        {"export", {"Usage: parlstm export --model FILE --out FILE.safetensors",
                    "--out FILE.safetensors", "load_state_dict(strict=True)", "Exit status: 0",
                    NULL}},
        {"import", {"Usage: parlstm import --in FILE.safetensors --out MODEL", "--in FILE",
                    "--time-steps N", "Exit status: 0", NULL}},
        {"plot", {"Usage: parlstm plot --log FILE.csv --out FILE.png", "--log FILE.csv",
                  "gnuplot-nox", "Exit status: 0", NULL}},
        {"train", {"--init-from FILE", "--log FILE.csv",
                   "kind,step,epoch,lr,loss,accuracy,grad_norm,samples_per_sec,seconds",
                   "FILE.rescue-PID", NULL}},
    };
    for (size_t c = 0; c < sizeof more / sizeof *more; c++) {
        const char *a[] = {more[c].cmd, "--help", NULL};
        ck_assert_int_eq(tu_run_args(&res, a), 0);
        for (int i = 0; more[c].want[i]; i++)
            ck_assert_msg(strstr(res.out, more[c].want[i]) != NULL, "%s --help lacks '%s'",
                          more[c].cmd, more[c].want[i]);
        for (const char *line = res.out; *line;) {
            size_t len = strcspn(line, "\n");
            ck_assert_msg(len <= 79, "%s --help: a long line: %.*s", more[c].cmd, (int)len, line);
            line += len + (line[len] == '\n');
        }
    }
    const char *a4[] = {"--version", NULL};
    ck_assert_int_eq(tu_run_args(&res, a4), 0);
    ck_assert_ptr_nonnull(strstr(res.out, "parlstm 0."));
    ck_assert_ptr_nonnull(strstr(res.out, "OpenBLAS core"));
    /* the caches it read, and the blocking they give auto's set */
    const pl_cpu_caches cache = pl_cpu_cache_sizes();
    char caches[96];
    snprintf(caches, sizeof caches, "caches per core: L1 data %ld KiB, L2 %ld KiB", cache.l1d / 1024,
             cache.l2 / 1024);
    ck_assert_msg(strstr(res.out, caches) != NULL, "no '%s' in %s", caches, res.out);
    int kc;
    long a_limit;
    pl_gemm_blocking(PL_GEMM_AUTO, &kc, &a_limit);
    snprintf(caches, sizeof caches, "B in chunks of %d rows", kc);
    ck_assert_msg(!kc || strstr(res.out, caches) != NULL, "no '%s' in %s", caches, res.out);
    snprintf(caches, sizeof caches, "A is at most %ld KiB (read by rows; %ld KiB by columns)",
             pl_gemm_rows_limit(a_limit) / 1024, a_limit / 1024);
    ck_assert_msg(!kc || strstr(res.out, caches) != NULL, "no '%s' in %s", caches, res.out);
    ck_assert_ptr_nonnull(strstr(res.out, pl_dist_built() ? "MPI: Open MPI" : "MPI: no"));
    /* the kernel set auto picks, and why */
    char line[160];
    snprintf(line, sizeof line, "kernels: --kernels auto runs %s", pl_gemm_auto_reason());
    ck_assert_msg(strstr(res.out, line) != NULL, "no '%s' in %s", line, res.out);
}
END_TEST

static double field(const char *text, const char *key)
{
    const char *r = strstr(text, "result:");
    ck_assert_msg(r != NULL, "no result line in: %s", text);
    const char *k = strstr(r, key);
    ck_assert_msg(k != NULL, "no %s in %s", key, r);
    return atof(k + strlen(key));
}

/* Train a few steps on a small synthetic set, save, evaluate: eval reads
 * the model and reproduces the test accuracy; the result line has every
 * key; a corrupt model is refused. */
START_TEST(test_train_save_eval)
{
    const char *dir = tu_dir;
    tu_make_dataset(dir, 300, 80, 8, 6, 4, 77);
    char model[4096];
    snprintf(model, sizeof model, "%s/model.bin", dir);
    const char *train[] = {"train", "--data", dir, "--val", "50", "--batch", "25",
                           "--steps", "20", "--hidden", "16", "--save", model,
                           "--log-every", "5", NULL};
    int st = tu_run_args(&res, train);
    ck_assert_msg(st == 0, "train failed (%d): %s", st, res.err);
    ck_assert_ptr_nonnull(strstr(res.err, "step  5/20  epoch 1  loss "));
    ck_assert_ptr_nonnull(strstr(res.err, "samples/s"));
    ck_assert_ptr_nonnull(strstr(res.err, "validation accuracy"));
    const char *keys[] = {"steps=20 ", "train_loss=", "val_accuracy=", "test_accuracy=",
                          "seconds=", "samples_per_sec=", "ranks=1 ", "workers=",
                          "threads="};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        ck_assert_msg(strstr(res.out, keys[i]) != NULL, "result lacks %s: %s", keys[i], res.out);
    /* the result line is the last line on stdout */
    size_t len = strlen(res.out);
    ck_assert(len > 0 && res.out[len - 1] == '\n');
    res.out[len - 1] = '\0';
    const char *last = strrchr(res.out, '\n');
    ck_assert_int_eq(strncmp(last ? last + 1 : res.out, "result: ", 8), 0);
    res.out[len - 1] = '\n';
    double acc = field(res.out, "test_accuracy=");
    ck_assert(acc > 0.25); /* above chance (4 classes) after 20 steps */

    const char *eval[] = {"eval", "--model", model, "--data", dir, NULL};
    st = tu_run_args(&res, eval);
    ck_assert_msg(st == 0, "eval failed (%d): %s", st, res.err);
    ck_assert_double_eq_tol(field(res.out, "test_accuracy="), acc, 1e-9);
    ck_assert_double_eq(field(res.out, "images="), 80);

    /* flip one byte of the parameters: the CRC catches it */
    FILE *f = fopen(model, "r+b");
    fseek(f, 100, SEEK_SET);
    int ch = fgetc(f);
    fseek(f, 100, SEEK_SET);
    fputc(ch ^ 0x40, f);
    fclose(f);
    st = tu_run_args(&res, eval);
    ck_assert_int_eq(st, 1);
    ck_assert_ptr_nonnull(strstr(res.err, "CRC32 mismatch"));
}
END_TEST

/* A .ts file of n cases of D dimensions x T steps, two classes: "up"
 * cases rise, "down" cases fall, with noise; case `cut` (or none: -1) one
 * step short. */
static void write_ts(const char *path, int n, int T, int D, uint64_t seed, int cut)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "# made by check_cli.c\n@problemName updown\n@timeStamps false\n"
               "@univariate %s\n@dimensions %d\n@equalLength %s\n@classLabel true up down\n"
               "@data\n", D == 1 ? "true" : "false", D, cut < 0 ? "true" : "false");
    pl_rng r;
    pl_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        const int up = i % 2 == 0, steps = i == cut ? T - 1 : T;
        for (int d = 0; d < D; d++)
            for (int t = 0; t < steps; t++)
                fprintf(f, "%.4f%s", (up ? t : T - t) * 0.3 + pl_rng_uniform(&r) - 0.5,
                        t + 1 < steps ? "," : ":");
        fprintf(f, "%s\n", up ? "up" : "down");
    }
    fclose(f);
}

/* --train/--test with .ts files: trains and tests on the sequences (their
 * own classes); the test file's classes are the training file's; cases of
 * other lengths. */
START_TEST(test_train_on_sequence_files)
{
    const char *train = tu_path(tu_dir, "updown_TRAIN.ts"), *test = tu_path(tu_dir, "updown_TEST.ts");
    write_ts(train, 120, 6, 2, 5, -1);
    write_ts(test, 40, 6, 2, 6, -1);
    const char *args[] = {"train", "--train", train, "--test", test, "--batch", "10",
                          "--steps", "30", "--hidden", "16", NULL};
    int st = tu_run_args(&res, args);
    ck_assert_msg(st == 0, "train failed (%d): %s", st, res.err);
    ck_assert_double_eq(field(res.out, "steps="), 30);
    ck_assert_msg(field(res.out, "test_accuracy=") >= 0.9, "%s", res.out);
    /* without --val a tenth (12) held out */
    ck_assert_msg(strstr(res.err, "(12 images") != NULL, "%s", res.err);

    /* a test label the training file does not have */
    FILE *f = fopen(test, "a");
    fprintf(f, "1,2,3,4,5,6:1,2,3,4,5,6:sideways\n");
    fclose(f);
    st = tu_run_args(&res, args);
    ck_assert_int_eq(st, 1);
    ck_assert_msg(strstr(res.err, test) && strstr(res.err, "sideways"), "%s", res.err);

    /* a training case and a test case a step short: each read over its
     * own length */
    write_ts(train, 120, 6, 2, 5, 7);
    write_ts(test, 40, 6, 2, 6, 3);
    st = tu_run_args(&res, args);
    ck_assert_msg(st == 0, "train failed (%d): %s", st, res.err);
    ck_assert_msg(field(res.out, "test_accuracy=") >= 0.9, "%s", res.out);
}
END_TEST

/* ---- --normalize, and eval and predict on sequence files */

/* The three files of the standardisation tests in tu_dir: a .ts training
 * set of "up" and "down" cases (6 steps x 2), its test set, and a test set
 * of 3 features a step. */
static void write_updown(void)
{
    write_ts(tu_path(tu_dir, "ud_TRAIN.ts"), 120, 6, 2, 5, -1);
    write_ts(tu_path(tu_dir, "ud_TEST.ts"), 40, 6, 2, 6, -1);
    write_ts(tu_path(tu_dir, "wide.ts"), 10, 6, 3, 7, -1);
}

/* The result line's test_accuracy= as written (4 decimals), into buf. */
static const char *accuracy_text(const char *out, char *buf, size_t len)
{
    const char *a = strstr(out, "test_accuracy=");
    ck_assert_msg(a != NULL, "no test_accuracy in '%s'", out);
    snprintf(buf, len, "%.*s", (int)strcspn(a, " \n"), a);
    return buf;
}

/* train --train (standardised by default) --save; the model records the
 * statistics of the training split (the validation cases held out), the
 * input kind and the class names; eval on the same test file prints the
 * accuracy train printed; export carries them as metadata; a test file of
 * another width is refused by eval and predict, naming it. */
START_TEST(test_normalize_round_trip)
{
    write_updown();
    const char *train = tu_path(tu_dir, "ud_TRAIN.ts"), *test = tu_path(tu_dir, "ud_TEST.ts");
    const char *model = tu_path(tu_dir, "m.bin"), *st = tu_path(tu_dir, "m.safetensors");
    const char *args[] = {"train", "--train", train, "--test", test, "--batch", "10", "--steps",
                          "30", "--hidden", "16", "--save", model, NULL};
    ck_assert_msg(tu_run_args(&res, args) == 0, "train: %s", res.err);
    ck_assert_msg(strstr(res.err, "each of the 2 features standardised with the mean and "
                                  "standard deviation of the 108 training sequences"), "%s",
                  res.err);
    char trained[64], evaluated[64];
    accuracy_text(res.out, trained, sizeof trained);

    /* the model: the training split's statistics, bit for bit */
    pl_model_info mi;
    float *params, mean[2], sd[2];
    pl_error err = {0};
    ck_assert_int_eq(pl_model_load(model, &mi, &params, &err), PL_OK);
    ck_assert_int_eq(mi.version, 5);
    ck_assert_int_eq(mi.input, PL_INPUT_VALUES);
    ck_assert_int_eq(mi.features, 2);
    ck_assert_str_eq(mi.class_names[0], "up");
    ck_assert_str_eq(mi.class_names[1], "down");
    pl_dataset all, tr, val;
    ck_assert_int_eq(pl_dataset_load_series(&all, train, NULL, NULL, NULL, &err), PL_OK);
    ck_assert_int_eq(pl_dataset_split(&all, 12, &tr, &val, &err), PL_OK);
    ck_assert_int_eq(pl_dataset_norm_stats(&tr, 2, mean, sd, &err), PL_OK);
    ck_assert_mem_eq(mi.norm_mean, mean, sizeof mean);
    ck_assert_mem_eq(mi.norm_std, sd, sizeof sd);
    ck_assert_int_eq(pl_dataset_norm_stats(&all, 2, mean, sd, &err), PL_OK);
    ck_assert_msg(memcmp(mi.norm_mean, mean, sizeof mean) != 0, "the validation cases counted");
    pl_dataset_free(&all);

    /* eval: the accuracy train printed */
    const char *ev[] = {"eval", "--model", model, "--test", test, NULL};
    ck_assert_msg(tu_run_args(&res, ev) == 0, "eval: %s", res.err);
    ck_assert_str_eq(accuracy_text(res.out, evaluated, sizeof evaluated), trained);
    ck_assert_double_eq(field(res.out, "images="), 40);
    ck_assert_ptr_nonnull(strstr(res.err, "standardised as the model records"));

    /* export: the same statistics and names in the metadata */
    const char *ex[] = {"export", "--model", model, "--out", st, NULL};
    ck_assert_msg(tu_run_args(&res, ex) == 0, "export: %s", res.err);
    pl_model_info si;
    float *sp;
    ck_assert_int_eq(pl_safetensors_load(st, &si, &sp, &err), PL_OK);
    ck_assert_int_eq(si.features, 2);
    ck_assert_mem_eq(si.norm_mean, mi.norm_mean, 2 * sizeof(float));
    ck_assert_mem_eq(si.norm_std, mi.norm_std, 2 * sizeof(float));
    ck_assert_str_eq(si.class_names[1], "down");
    size_t len;
    unsigned char *bytes = tu_read_all(st, &len);
    bytes[len] = '\0';
    const char *text = (const char *)bytes + 8; /* the JSON header after its length */
    ck_assert_ptr_nonnull(strstr(text, "\"input_scaling\":\"standard\""));
    ck_assert_ptr_nonnull(strstr(text, "\"class_names\":\"[\\\"up\\\",\\\"down\\\"]\""));
    free(bytes);
    pl_model_info_free(&si);
    pl_free(sp);
    pl_model_info_free(&mi);
    pl_free(params);

    /* 3 features a step for a model of 2: refused, naming the file */
    const char *wide = tu_path(tu_dir, "wide.ts");
    const char *ev3[] = {"eval", "--model", model, "--test", wide, NULL};
    ck_assert_int_eq(tu_run_args(&res, ev3), 1);
    ck_assert_msg(strstr(res.err, wide) && strstr(res.err, "3 features a step") &&
                  strstr(res.err, "reads sequences of 2 features a step"), "%s", res.err);
    const char *pr3[] = {"predict", "--model", model, wide, NULL};
    ck_assert_int_eq(tu_run_args(&res, pr3), 1);
    ck_assert_msg(strstr(res.err, wide) && strstr(res.err, "3 features a step"), "%s", res.err);
}
END_TEST

/* predict on a .ts writes the model's class names ("up", "down"), its
 * right answers as many as eval counts; a model without names (a .npy's)
 * writes the index; images for a model of values are refused. */
START_TEST(test_predict_class_names)
{
    write_updown();
    const char *train = tu_path(tu_dir, "ud_TRAIN.ts"), *test = tu_path(tu_dir, "ud_TEST.ts");
    const char *model = tu_path(tu_dir, "m.bin");
    const char *args[] = {"train", "--train", train, "--batch", "10", "--steps", "30", "--hidden",
                          "16", "--save", model, NULL};
    ck_assert_msg(tu_run_args(&res, args) == 0, "train: %s", res.err);
    const char *ev[] = {"eval", "--model", model, "--test", test, NULL};
    ck_assert_msg(tu_run_args(&res, ev) == 0, "eval: %s", res.err);
    const int right = (int)lround(field(res.out, "test_accuracy=") * 40);
    const char *pr[] = {"predict", "--model", model, test, "--top", "2", NULL};
    ck_assert_msg(tu_run_args(&res, pr) == 0, "predict: %s", res.err);
    char *line = strtok(res.out, "\n");
    ck_assert_str_eq(line, "input,index,class,probability,class_2,probability_2");
    int rows = 0, agree = 0;
    for (line = strtok(NULL, "\n"); line; line = strtok(NULL, "\n"), rows++) {
        char input[4096], first[16], second[16];
        int index;
        ck_assert_int_eq(sscanf(line, "%4095[^,],%d,%15[^,],%*f,%15[^,],", input, &index, first,
                                second), 4);
        ck_assert_str_eq(input, test);
        ck_assert_int_eq(index, rows);
        ck_assert_msg(!strcmp(first, "up") ? !strcmp(second, "down")
                                           : !strcmp(first, "down") && !strcmp(second, "up"),
                      "row %d: %s", rows, line);
        agree += !strcmp(first, rows % 2 == 0 ? "up" : "down"); /* write_ts: even cases rise */
    }
    ck_assert_int_eq(rows, 40);
    ck_assert_int_eq(agree, right);

    /* an image for a model of values */
    const char *img = tu_path(tu_dir, "x.pgm");
    tu_write(img, "P5\n2 6\n255\n" "012345678901", 23);
    const char *pi[] = {"predict", "--model", model, img, NULL};
    ck_assert_int_eq(tu_run_args(&res, pi), 1);
    ck_assert_msg(strstr(res.err, "reads sequences of values (.npy, .ts, .tsv), not images"),
                  "%s", res.err);
}
END_TEST

/* A .npy of n rows of (T, D) float32 values, or of n int64 labels (D = 0). */
static void write_npy_file(const char *path, const void *data, int n, int T, int D)
{
    char head[118];
    int len = D ? snprintf(head, sizeof head, "{'descr': '<f4', 'fortran_order': False, "
                           "'shape': (%d, %d, %d), }", n, T, D)
                : snprintf(head, sizeof head, "{'descr': '<i8', 'fortran_order': False, "
                           "'shape': (%d,), }", n);
    size_t bytes = D ? 4 * (size_t)n * T * D : 8 * (size_t)n;
    unsigned char *b = malloc(128 + bytes);
    memcpy(b, "\x93NUMPY\x01\x00\x76\x00", 10); /* header of 118 bytes: data at 128 */
    memset(b + 10, ' ', 118);
    memcpy(b + 10, head, (size_t)len);
    b[127] = '\n';
    memcpy(b + 128, data, bytes);
    tu_write(path, b, 128 + bytes);
    free(b);
}

/* --normalize none: a model without statistics (and, from a .npy, without
 * names) evals on its test file to train's accuracy, also as a version 3
 * file; predict writes the class index. */
START_TEST(test_model_without_statistics)
{
    enum { N = 100, T = 5, D = 3 };
    static float x[N * T * D];
    int64_t y[N];
    pl_rng r;
    pl_rng_seed(&r, 8);
    for (int i = 0; i < N; i++) {
        y[i] = i % 2;
        for (int k = 0; k < T * D; k++)
            x[i * T * D + k] = (float)((y[i] ? 1 : -1) * (k / D) + pl_rng_uniform(&r) + 40);
    }
    const char *xs = tu_path(tu_dir, "x.npy"), *ys = tu_path(tu_dir, "y.npy");
    const char *model = tu_path(tu_dir, "m.bin");
    write_npy_file(xs, x, N, T, D);
    write_npy_file(ys, y, N, T, 0);
    const char *args[] = {"train", "--train", xs, "--train-labels", ys, "--test", xs,
                          "--test-labels", ys, "--normalize", "none", "--batch", "10",
                          "--steps", "20", "--hidden", "8", "--save", model, NULL};
    ck_assert_msg(tu_run_args(&res, args) == 0, "train: %s", res.err);
    ck_assert_ptr_null(strstr(res.err, "standardised"));
    char trained[64], evaluated[64];
    accuracy_text(res.out, trained, sizeof trained);
    static unsigned char buf[1 << 16];
    size_t len = tu_read(model, buf, sizeof buf);
    ck_assert_uint_eq(buf[8], 5);
    for (int version = 5; version >= 3; version -= 2) {
        const char *ev[] = {"eval", "--model", model, "--test", xs, "--test-labels", ys, NULL};
        ck_assert_msg(tu_run_args(&res, ev) == 0, "eval of version %d: %s", version, res.err);
        ck_assert_str_eq(accuracy_text(res.out, evaluated, sizeof evaluated), trained);
        ck_assert_ptr_null(strstr(res.err, "standardised"));
        if (version == 5) /* then the same as version 3 */
            tu_write(model, buf, tu_model_to_v3(buf, len));
    }
    const char *pr[] = {"predict", "--model", model, xs, NULL};
    ck_assert_msg(tu_run_args(&res, pr) == 0, "predict: %s", res.err);
    char want[4200];
    snprintf(want, sizeof want, "\n%s,0,", xs);
    const char *row = strstr(res.out, want);
    ck_assert_msg(row && (row[strlen(want)] == '0' || row[strlen(want)] == '1') &&
                  row[strlen(want) + 1] == ',', "%s", res.out);
}
END_TEST

/* A run stopped by a NaN (injected) resumes from its last checkpoint to
 * the very model of a run left alone: the statistics are recomputed from
 * the same split, bit for bit (the checkpoint's data CRC would refuse
 * anything else); giving another --normalize to the resumed run is
 * refused. */
START_TEST(test_normalize_resume_exact)
{
    if (!tu_hooks("resuming a standardised run"))
        return;
    write_updown();
    const char *train = tu_path(tu_dir, "ud_TRAIN.ts"), *ck = tu_path(tu_dir, "ck");
    const char *whole = tu_path(tu_dir, "whole.bin"), *resumed = tu_path(tu_dir, "resumed.bin");
    const char *a1[] = {"train", "--train", train, "--batch", "10", "--steps", "20", "--hidden",
                        "8", "--deterministic", "--workers", "1", "--threads", "1", "--save",
                        whole, "--quiet", NULL};
    ck_assert_msg(tu_run_args(&res, a1) == 0, "train: %s", res.err);
    const char *a2[] = {"train", "--train", train, "--batch", "10", "--steps", "20", "--hidden",
                        "8", "--deterministic", "--workers", "1", "--threads", "1",
                        "--checkpoint", ck, "--checkpoint-every", "5", "--quiet", NULL};
    setenv("PARLSTM_TEST_FAULT", "12,2", 1);
    int st = tu_run_args(&res, a2);
    unsetenv("PARLSTM_TEST_FAULT");
    ck_assert_msg(st == 1 && strstr(res.err, "step 13: non-finite gradient"), "%s", res.err);
    const char *a3[] = {"train", "--resume", ck, "--checkpoint", ck, "--train", train,
                        "--normalize", "none", NULL};
    ck_assert_int_eq(tu_run_args(&res, a3), 2);
    ck_assert_msg(strstr(res.err, "--normalize none differs from the checkpoint's standard"),
                  "%s", res.err);
    const char *a4[] = {"train", "--resume", ck, "--checkpoint", ck, "--train", train, "--save",
                        resumed, "--quiet", NULL};
    ck_assert_msg(tu_run_args(&res, a4) == 0, "resume: %s", res.err);
    ck_assert_msg(tu_same_file(whole, resumed), "the resumed run's model differs");
}
END_TEST

/* --train's company: what goes only with it, and what is for images only. */
START_TEST(test_sequence_file_options_refused)
{
    static const struct {
        const char *args[8], *want;
    } cases[] = {
        {{"train", "--train-labels", "l.npy", NULL}, "--train-labels goes with --train FILE"},
        {{"train", "--test", "t.ts", NULL}, "--test goes with --train FILE"},
        {{"train", "--train", "a.ts", "--test-labels", "l.npy", NULL},
         "--test-labels goes with --test FILE"},
        {{"train", "--train", "a.ts", "--data", "d", NULL}, "--data is for IDX images"},
        {{"train", "--train", "a.ts", "--classes", "3", NULL}, "their labels give the classes"},
        {{"train", "--train", "a.ts", "--permute", "3", NULL}, "--permute is for IDX images"},
        {{"train", "--normalize", "standard", NULL},
         "--normalize standard is for --train's sequences of values"},
        {{"eval", "--model", "m.bin", "--test-labels", "l.npy", NULL},
         "--test-labels goes with --test FILE"},
        {{"eval", "--model", "m.bin", "--data", "d", "--test", "t.ts", NULL},
         "--data and --test both give the test set"},
        {{"predict", "--model", "m.bin", "--lengths", "l.npy", "a.npy", "b.npy", NULL},
         "--lengths l.npy goes with one .npy input, and 2 of the inputs are .npy files"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ck_assert_int_eq(tu_run_args(&res, cases[i].args), 2);
        ck_assert_msg(strstr(res.err, cases[i].want) != NULL, "case %zu: %s", i, res.err);
    }
}
END_TEST

/* --test-every-epoch: a test accuracy at the end of every epoch, in the
 * output and as test rows of --log, the last one the result line's. */
START_TEST(test_test_every_epoch)
{
    const char *dir = tu_dir;
    tu_make_dataset(dir, 60, 30, 6, 5, 3, 92);
    const char *log = tu_path(dir, "log.csv");
    const char *args[] = {"train", "--data", dir, "--val", "10", "--batch", "25", "--epochs", "3",
                          "--hidden", "8", "--test-every-epoch", "--log", log, NULL};
    int st = tu_run_args(&res, args);
    ck_assert_msg(st == 0, "exit %d: %s", st, res.err);
    ck_assert_msg(strstr(res.err, "epoch 1: test accuracy ") && strstr(res.err, "epoch 2: test accuracy ") &&
                  !strstr(res.err, "epoch 3: test accuracy "), "%s", res.err);
    static char text[1 << 14];
    tu_slurp(log, text, sizeof text);
    ck_assert_msg(strstr(text, "\ntest,2,1,") && strstr(text, "\ntest,4,2,") &&
                  strstr(text, "\ntest,6,3,"), "%s", text);
}
END_TEST

/* More OpenMP threads than gate panels: capped, with a warning that says
 * why; the result line shows the threads used. */
START_TEST(test_threads_capped_with_a_warning)
{
    const char *dir = tu_dir;
    tu_make_dataset(dir, 60, 10, 6, 5, 3, 89);
    const char *args[] = {"train", "--data", dir, "--val", "0", "--batch", "20", "--steps", "1",
                          "--hidden", "20", "--workers", "1", "--threads", "64", NULL};
    int st = tu_run_args(&res, args);
    ck_assert_msg(st == 0, "exit %d: %s", st, res.err);
    ck_assert_msg(strstr(res.err, "warning: --threads 64 capped at 2: a thread owns whole 16-unit "
                              "gate panels, and 20 units make 2") != NULL, "%s", res.err);
    ck_assert_msg(strstr(res.out, " threads=2 ") != NULL, "%s", res.out);
}
END_TEST

/* A round's line of bench on stderr (round: where it starts, in err):
 * samples/s, then the neighbour probe before and after the round where a
 * GEMM kernel of ours runs (auto's, when --gemm names none of ours). */
static void assert_round_probe(const char *round, const char *err)
{
    int kc, a0 = -1, a1 = -1;
    long a_limit;
    pl_gemm_blocking(PL_GEMM_AUTO, &kc, &a_limit);
    ck_assert_msg(round != NULL, "%s", err);
    const char *end = strchr(round, '\n');
    const char *probe = strstr(round, " samples/s; GEMM in L1 at ");
    if (kc > 0) {
        ck_assert_msg(probe && probe < end &&
                          sscanf(probe, " samples/s; GEMM in L1 at %d%%, %d%% of the FMA loop",
                                 &a0, &a1) == 2,
                      "%s", err);
        ck_assert_msg(a0 >= 0 && a0 < 300 && a1 >= 0 && a1 < 300, "%s", err);
    } else
        ck_assert_msg(end && strncmp(end - 10, " samples/s", 10) == 0, "%s", err);
}

/* bench over shapes: every (T, D) x hidden x batch x backend gets its row,
 * in the table and in the CSV, with the peak measured beside it. */
START_TEST(test_bench_shapes_grid)
{
    const char *dir = tu_dir;
    const char *csv = tu_path(dir, "shapes.csv");
    const char *args[] = {"bench", "--synthetic", "--seq", "6,5/12,1", "--hidden", "8,20",
                          "--batch", "10", "--gemm", "naive,blas", "--grid", "1x1", "--rounds",
                          "1", "--steps", "1", "--layers", "2", "--csv", csv, NULL};
    int st = tu_run_args(&res, args);
    ck_assert_msg(st == 0, "exit %d: %s", st, res.err);
    ck_assert_msg(strstr(res.out, "shapes: 2 layers") != NULL, "%s", res.out);
    ck_assert_msg(strstr(res.err, "T=12, D=1: random images") != NULL, "%s", res.err);
    /* every (hidden, batch)'s rounds: each row's samples/s, then the probe */
    const char *t12 = strstr(res.err, "T=12, D=1: random images\n");
    const char *round = strstr(t12, "round 1/1 (hidden 20, batch 10): naive 1x1 ");
    const char *blas = round ? strstr(round, " blas 1x1 ") : NULL;
    ck_assert_msg(round && blas && blas < strchr(round, '\n'), "%s", res.err);
    assert_round_probe(round, res.err);
    static char text[1 << 14];
    tu_slurp(csv, text, sizeof text);
    const char *head = "T,D,hidden,layers,batch,gemm,workers,threads,samples_per_sec,";
    ck_assert_msg(strncmp(text, head, strlen(head)) == 0, "%s", text);
    const char *rows[] = {"\n6,5,8,2,10,naive,1,1,", "\n6,5,8,2,10,blas,1,1,",
                          "\n6,5,20,2,10,naive,1,1,", "\n6,5,20,2,10,blas,1,1,",
                          "\n12,1,8,2,10,naive,1,1,", "\n12,1,20,2,10,blas,1,1,"};
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
        ck_assert_msg(strstr(text, rows[i]) != NULL, "no row %s in %s", rows[i] + 1, text);
    int lines = 0;
    for (const char *c = text; *c; c++)
        lines += *c == '\n';
    ck_assert_int_eq(lines, 1 + 2 * 2 * 2);
    /* --profile: after each shape's rows, its phases, a column per backend */
    const char *prof[] = {"bench", "--synthetic", "--seq", "12,1", "--hidden", "8,20", "--batch",
                          "10", "--gemm", "naive,blas", "--grid", "1x1", "--rounds", "1",
                          "--steps", "1", "--profile", NULL};
    st = tu_run_args(&res, prof);
    ck_assert_msg(st == 0, "exit %d: %s", st, res.err);
    const char *p8 = strstr(res.out, "profile of T=12, D=1, hidden 8, batch 10: milliseconds");
    const char *p20 = strstr(res.out, "profile of T=12, D=1, hidden 20, batch 10: milliseconds");
    const char *row20 = strstr(res.out, "\n   12    1    20    10 naive");
    ck_assert_msg(p8 && p20 && row20 && p8 < row20 && row20 < p20, "%s", res.out);
    ck_assert_msg(strstr(p8, "naive 1x1 blas 1x1\n") || strstr(p8, "naive 1x1  blas 1x1\n"),
                  "%s", res.out);
    double fwd_naive = -1, fwd_blas = -1;
    const char *fwd = strstr(p8, "\nforward GEMM");
    ck_assert_msg(fwd && sscanf(fwd, "\nforward GEMM %lf %lf", &fwd_naive, &fwd_blas) == 2,
                  "%s", res.out);
    ck_assert_msg(fwd_naive > 0 && fwd_blas > 0, "%s", res.out);
}
END_TEST

/* Two layers with dropout, images read pixel by pixel in a permuted order:
 * the model file records all of it, so eval reads the test images the same
 * way and reports train's test accuracy; the plan line says what was read;
 * a resumed run refuses another reading or depth. */
START_TEST(test_layers_pixels_permuted_through_the_program)
{
    const char *dir = tu_dir;
    tu_make_dataset(dir, 200, 60, 4, 3, 3, 91);
    char model[4096], ck[4096];
    snprintf(model, sizeof model, "%s/model.bin", dir);
    snprintf(ck, sizeof ck, "%s/ck", dir);
    const char *train[] = {"train", "--data", dir, "--val", "0", "--batch", "20", "--steps", "12",
                           "--hidden", "12", "--layers", "2", "--dropout", "0.2",
                           "--sequence", "pixels", "--permute", "7", "--save", model,
                           "--checkpoint", ck, NULL};
    int st = tu_run_args(&res, train);
    ck_assert_msg(st == 0, "train failed (%d): %s", st, res.err);
    ck_assert_msg(strstr(res.err, "images of 4x3, 3 classes, read as 12 steps of 1, pixels permuted") &&
                  strstr(res.err, "model 1-12-3, 2 LSTM layers, dropout 0.2"), "%s", res.err);
    double acc = field(res.out, "test_accuracy=");
    pl_model_info mi;
    float *p = NULL;
    pl_error e = {0};
    ck_assert_int_eq(pl_model_load(model, &mi, &p, &e), PL_OK);
    ck_assert_int_eq(mi.cfg.layers, 2);
    ck_assert_int_eq(mi.cfg.input, 1);
    ck_assert_int_eq(mi.T, 12);
    ck_assert_int_eq(mi.rows, 4);
    ck_assert_int_eq(mi.cols, 3);
    ck_assert_int_eq(mi.sequence, PL_SEQ_PIXELS);
    ck_assert_int_eq(mi.permuted, 1);
    ck_assert_uint_eq(mi.permute_seed, 7);
    ck_assert_float_eq(mi.dropout, 0.2f);
    pl_free(p);
    const char *eval[] = {"eval", "--model", model, "--data", dir, NULL};
    st = tu_run_args(&res, eval);
    ck_assert_msg(st == 0, "eval failed (%d): %s", st, res.err);
    ck_assert_double_eq_tol(field(res.out, "test_accuracy="), acc, 1e-9);
    /* eval really reads in the recorded order: the same model file with
     * another permutation seed gives another test loss */
    double loss = field(res.out, "test_loss=");
    static unsigned char buf[1 << 16];
    size_t len = tu_read(model, buf, sizeof buf);
    buf[56] ^= 0x0f; /* the permutation seed (modelfile.c: u64 at 56) */
    tu_fix_crc(buf, len);
    tu_write(model, buf, len);
    st = tu_run_args(&res, eval);
    ck_assert_msg(st == 0, "eval failed (%d): %s", st, res.err);
    ck_assert_msg(fabs(field(res.out, "test_loss=") - loss) > 1e-4, "loss %g both times: %s", loss,
                  res.out);
    /* a resumed run keeps its reading and depth */
    const char *r1[] = {"train", "--data", dir, "--resume", ck, "--layers", "3", NULL};
    ck_assert_int_eq(tu_run_args(&res, r1), 2);
    ck_assert_ptr_nonnull(strstr(res.err, "--layers 3 differs from the checkpoint's 2"));
    const char *r2[] = {"train", "--data", dir, "--resume", ck, "--sequence", "rows", NULL};
    ck_assert_int_eq(tu_run_args(&res, r2), 2);
    ck_assert_ptr_nonnull(strstr(res.err, "--sequence rows differs from the checkpoint's pixels"));
    const char *r3[] = {"train", "--data", dir, "--resume", ck, "--permute", "8", NULL};
    ck_assert_int_eq(tu_run_args(&res, r3), 2);
    ck_assert_ptr_nonnull(strstr(res.err, "--permute 8 differs from the checkpoint's seed"));
}
END_TEST

/* --precision bf16 through the program: the plan line says where it runs;
 * it learns (test accuracy well above chance, as fp32 does); eval runs the
 * saved model in bf16 too (the model file records it); a run stopped
 * at a checkpoint and resumed ends in the model of the run left alone, bit
 * for bit (the checkpoint records bf16); a resumed run refuses fp32. */
START_TEST(test_bf16_through_the_program)
{
    const char *dir = tu_dir;
    tu_make_dataset(dir, 300, 90, 6, 5, 3, 93);
    char whole[4096], part[4096], ck[4096];
    snprintf(whole, sizeof whole, "%s/whole.bin", dir);
    snprintf(part, sizeof part, "%s/part.bin", dir);
    snprintf(ck, sizeof ck, "%s/ck", dir);
    const char *straight[] = {"train", "--data", dir, "--val", "0", "--batch", "20", "--steps",
                              "40", "--hidden", "16", "--precision", "bf16", "--deterministic",
                              "--save", whole, NULL};
    int st = tu_run_args(&res, straight);
    ck_assert_msg(st == 0, "train failed (%d): %s", st, res.err);
    ck_assert_msg(strstr(res.err, "bf16 operands for the LSTM's products, fp32 sums, on "),
                  "%s", res.err);
    const double acc = field(res.out, "test_accuracy=");
    ck_assert_msg(acc > 0.8, "bf16 test accuracy %g", acc);
    /* the model file records bf16: eval runs it so, to train's test loss */
    const char *line = strstr(res.err, "test accuracy ");
    ck_assert_ptr_nonnull(line);
    char loss[32];
    ck_assert_int_eq(sscanf(line, "test accuracy %*f, loss %31[0-9.]", loss), 1);
    const char *eval[] = {"eval", "--model", whole, "--data", dir, NULL};
    st = tu_run_args(&res, eval);
    ck_assert_msg(st == 0, "eval failed (%d): %s", st, res.err);
    char want[64];
    snprintf(want, sizeof want, "test_loss=%s ", loss);
    ck_assert_msg(strstr(res.out, want), "train's test loss %s, eval's: %s", loss, res.out);
    /* predict too: its probabilities change when the file says fp32 */
    char images[4096];
    static char as_bf16[1 << 20];
    snprintf(images, sizeof images, "%s/t10k-images-idx3-ubyte", dir);
    const char *pr[] = {"predict", "--model", whole, "--probabilities", images, NULL};
    ck_assert_msg(tu_run_args(&res, pr) == 0, "predict: %s", res.err);
    snprintf(as_bf16, sizeof as_bf16, "%s", res.out);
    static unsigned char mbuf[1 << 16];
    size_t mlen = tu_read(whole, mbuf, sizeof mbuf);
    ck_assert_int_eq(mbuf[8], 5);
    ck_assert_int_eq(mbuf[80], PL_PRECISION_BF16); /* the precision field (modelfile.c) */
    mbuf[80] = PL_PRECISION_FP32;
    tu_fix_crc(mbuf, mlen);
    tu_write(part, mbuf, mlen);
    const char *pr32[] = {"predict", "--model", part, "--probabilities", images, NULL};
    ck_assert_msg(tu_run_args(&res, pr32) == 0, "predict: %s", res.err);
    ck_assert_msg(strlen(as_bf16) > 100 && strcmp(strchr(as_bf16, '\n'), strchr(res.out, '\n')),
                  "the same probabilities in bf16 and fp32:\n%.300s", res.out);
    const char *first[] = {"train", "--data", dir, "--val", "0", "--batch", "20", "--steps",
                           "40", "--hidden", "16", "--precision", "bf16", "--deterministic",
                           "--checkpoint", ck, "--checkpoint-every", "5", NULL};
    const char *env[] = {"PARLSTM_TEST_FAULT=17,2", NULL}; /* a NaN at step 18 stops it */
    if (tu_hooks("a bf16 run stopped and resumed")) {
        st = tu_run_env(&res, first, env);
        ck_assert_msg(st == 1 && strstr(res.err, "non-finite gradient"), "%s", res.err);
        const char *rest[] = {"train", "--data", dir, "--resume", ck, "--save", part, NULL};
        st = tu_run_args(&res, rest);
        ck_assert_msg(st == 0, "resume failed (%d): %s", st, res.err);
        ck_assert_msg(strstr(res.err, "resuming") && strstr(res.err, "bf16 operands"), "%s",
                      res.err);
        ck_assert_msg(tu_same_file(whole, part), "the resumed bf16 run ends elsewhere");
    } else { /* a whole run still leaves a checkpoint to refuse */
        ck_assert_msg(tu_run_args(&res, first) == 0, "%s", res.err);
    }
    const char *mixed[] = {"train", "--data", dir, "--resume", ck, "--precision", "fp32", NULL};
    ck_assert_int_eq(tu_run_args(&res, mixed), 2);
    ck_assert_msg(strstr(res.err, "--precision fp32 differs from the checkpoint's bf16"), "%s",
                  res.err);
}
END_TEST

/* eval refuses a test set of other images than the model's (their shape
 * recorded since model file version 3, the sequence length since version
 * 2), naming the model file; a version 1 file, which records neither, gets
 * a note and the width check only. */
START_TEST(test_eval_checks_the_sequence_length)
{
    const char *dir = tu_dir;
    const char *longer = tu_subdir("longer");
    const char *wider = tu_subdir("wider");
    tu_make_dataset(dir, 60, 20, 10, 5, 3, 81);
    tu_make_dataset(longer, 20, 20, 12, 5, 3, 82);
    tu_make_dataset(wider, 20, 20, 10, 6, 3, 83);
    char model[4096];
    snprintf(model, sizeof model, "%s/model.bin", dir);
    const char *train[] = {"train", "--data", dir, "--val", "0", "--batch", "20", "--steps", "2",
                           "--hidden", "8", "--save", model, "--quiet", NULL};
    ck_assert_int_eq(tu_run_args(&res, train), 0);
    const char *same[] = {"eval", "--model", model, "--data", dir, NULL};
    ck_assert_int_eq(tu_run_args(&res, same), 0);
    ck_assert_ptr_null(strstr(res.err, "note:"));
    const char *ev[] = {"eval", "--model", model, "--data", longer, NULL};
    int st = tu_run_args(&res, ev);
    ck_assert_msg(st == 1, "exit %d: %s", st, res.err);
    char want[4200];
    snprintf(want, sizeof want, "%s: the model reads images of 10x5, the test images are 12x5",
             model);
    ck_assert_msg(strstr(res.err, want) != NULL, "%s", res.err);
    ck_assert_ptr_null(strstr(res.out, "result:"));
    const char *ew3[] = {"eval", "--model", model, "--data", wider, NULL};
    ck_assert_int_eq(tu_run_args(&res, ew3), 1);
    snprintf(want, sizeof want, "%s: the model reads images of 10x5, the test images are 10x6",
             model);
    ck_assert_msg(strstr(res.err, want) != NULL, "%s", res.err);
    /* a version 2 file: the sequence length, checked by itself */
    static unsigned char buf[1 << 16];
    size_t len2 = tu_model_to_v2(buf, tu_read(model, buf, sizeof buf));
    tu_write(model, buf, len2);
    st = tu_run_args(&res, ev);
    ck_assert_msg(st == 1, "exit %d: %s", st, res.err);
    snprintf(want, sizeof want, "%s: the model was trained on sequences of 10 rows, the test "
             "images have 12", model);
    ck_assert_msg(strstr(res.err, want) != NULL, "%s", res.err);
    ck_assert_int_eq(tu_run_args(&res, same), 0);
    /* the same model as a version 1 file */
    ck_assert_int_eq(tu_run_args(&res, train), 0);
    size_t len = tu_model_to_v1(buf, tu_read(model, buf, sizeof buf));
    tu_write(model, buf, len);
    st = tu_run_args(&res, ev);
    ck_assert_msg(st == 0, "exit %d: %s", st, res.err);
    ck_assert_msg(strstr(res.err, "note: ") != NULL && strstr(res.err, "is a version 1 model file, which "
                  "does not record the sequence length") != NULL, "%s", res.err);
    ck_assert_ptr_nonnull(strstr(res.out, "result: test_accuracy="));
    const char *ew[] = {"eval", "--model", model, "--data", wider, NULL};
    ck_assert_int_eq(tu_run_args(&res, ew), 1);
    snprintf(want, sizeof want, "%s: the model reads rows of 5 pixels, the test images have 6",
             model);
    ck_assert_msg(strstr(res.err, want) != NULL, "%s", res.err);
}
END_TEST

/* Training data whose labels are all one class: the message is about the
 * labels file, not about an option. */
START_TEST(test_one_class_training_labels)
{
    const char *dir = tu_dir;
    tu_make_dataset(dir, 40, 10, 6, 5, 1, 84);
    const char *args[] = {"train", "--data", dir, "--val", "0", "--batch", "10", "--steps", "1",
                          NULL};
    int st = tu_run_args(&res, args);
    ck_assert_msg(st == 1, "exit %d: %s", st, res.err);
    char want[4200];
    snprintf(want, sizeof want, "%s/train-labels-idx1-ubyte: all 40 labels are 0", dir);
    ck_assert_msg(strstr(res.err, want) != NULL, "%s", res.err);
    ck_assert_msg(strstr(res.err, "classes must be") == NULL, "%s", res.err);
}
END_TEST

/* The held-out validation images are the first --val ones and the
 * training run sees only the rest: the checkpoint records the training
 * count and the CRC32 of exactly those images and labels, computed here
 * from the files' bytes. */
START_TEST(test_validation_split_through_the_program)
{
    const char *dir = tu_dir;
    const int n = 90, val = 25, T = 6, D = 5;
    tu_make_dataset(dir, n, 10, T, D, 3, 85);
    char ck[4096];
    snprintf(ck, sizeof ck, "%s/ck", dir);
    const char *args[] = {"train", "--data", dir, "--val", "25", "--batch", "13", "--steps", "5",
                          "--hidden", "8", "--checkpoint", ck, NULL};
    int st = tu_run_args(&res, args);
    ck_assert_msg(st == 0, "exit %d: %s", st, res.err);
    ck_assert_msg(strstr(res.err, "65 training, 25 validation, 10 test images") != NULL, "%s", res.err);
    ck_assert_msg(strstr(res.err, "validation accuracy") != NULL && strstr(res.err, "(25 images") != NULL,
                  "%s", res.err);
    pl_ckpt_meta m;
    float *state = NULL;
    pl_error e;
    ck_assert_int_eq(pl_checkpoint_load(ck, &m, &state, &e), PL_OK);
    pl_free(state);
    ck_assert_uint_eq(m.n_train, (uint64_t)(n - val));
    ck_assert_int_eq(m.val, val);
    static unsigned char img[1 << 16], lab[1 << 12];
    char p[4200];
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", dir);
    ck_assert_uint_eq(tu_read(p, img, sizeof img), 16 + (size_t)n * T * D);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte", dir);
    ck_assert_uint_eq(tu_read(p, lab, sizeof lab), 8 + (size_t)n);
    uLong crc = crc32(0L, img + 16 + (size_t)val * T * D, (uInt)((n - val) * T * D));
    crc = crc32(crc, lab + 8 + val, (uInt)(n - val));
    ck_assert_uint_eq(m.data_crc, (uint32_t)crc);
}
END_TEST

/* Two outputs that are one file through a link are refused too. */
START_TEST(test_save_over_checkpoint_through_a_link)
{
    const char *dir = tu_dir;
    tu_make_dataset(dir, 40, 10, 6, 5, 3, 86);
    char ck[4096], link[4096];
    snprintf(ck, sizeof ck, "%s/ck", dir);
    snprintf(link, sizeof link, "%s/link", dir);
    tu_write(ck, "x", 1);
    ck_assert_int_eq(symlink(ck, link), 0);
    const char *args[] = {"train", "--data", dir, "--val", "0", "--batch", "10", "--steps", "1",
                          "--checkpoint", ck, "--save", link, NULL};
    int st = tu_run_args(&res, args);
    ck_assert_msg(st == 2, "exit %d: %s", st, res.err);
    ck_assert_msg(strstr(res.err, "are the same file: the model would overwrite the checkpoint") !=
                  NULL, "%s", res.err);
    /* distinct files are fine */
    const char *ok[] = {"train", "--data", dir, "--val", "0", "--batch", "10", "--steps", "1",
                        "--checkpoint", ck, "--save", tu_path(dir, "m.bin"), "--quiet", NULL};
    st = tu_run_args(&res, ok);
    ck_assert_msg(st == 0, "exit %d: %s", st, res.err);
}
END_TEST

/* The manual page is generated from the option table: the committed
 * parlstm.1 is what the program writes now (so it and --help cannot tell
 * different stories), it names every option of every command, and groff
 * reads it without a warning. */
START_TEST(test_man_page_is_current)
{
    static char committed[1 << 18];
    const char *src = getenv("PARLSTM_SRCDIR");
    ck_assert_msg(src != NULL, "PARLSTM_SRCDIR is not set (run the tests with make check)");
    char path[4096];
    snprintf(path, sizeof path, "%s/parlstm.1", src);
    const char *args[] = {"help-man", NULL};
    static tu_result man; /* its page: res runs the commands' --help below */
    ck_assert_int_eq(tu_run_args(&man, args), 0);
    const char *page = man.out;
    ck_assert_str_eq(man.err, "");
    size_t n = tu_slurp(path, committed, sizeof committed);
    ck_assert_msg(n > 0, "no %s", path);
    ck_assert_msg(strcmp(page, committed) == 0, "%s is not what 'parlstm help-man' writes now: "
                  "run make update-man (and commit parlstm.1)", path);
    ck_assert_ptr_nonnull(strstr(page, ".TH PARLSTM 1 \"\" \"parlstm " PACKAGE_VERSION "\""));
    const char *sections[] = {".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH COMMANDS",
                              ".SH EXIT STATUS", ".SH ENVIRONMENT", ".SH FILES", ".SH EXAMPLES",
                              ".TP\n\\fBPARLSTM_DATA\\fR\n", ".TP\n\\fBXDG_DATA_HOME\\fR\n",
                              ".TP\n\\fBOPENBLAS_CORETYPE\\fR\n", ".TP\n\\fBTMPDIR\\fR\n"};
    for (size_t i = 0; i < sizeof sections / sizeof *sections; i++)
        ck_assert_msg(strstr(page, sections[i]) != NULL, "the page lacks %s", sections[i]);
    /* every command's section, with every option of the table */
    int nc;
    const char *names[] = {"train", "eval", "predict", "export", "import", "plot", "bench"};
    nc = (int)(sizeof names / sizeof *names);
    for (int c = 0; c < nc; c++) {
        char sec[64], next_sec[64];
        snprintf(sec, sizeof sec, ".SS %s\n", names[c]);
        snprintf(next_sec, sizeof next_sec, "%s", c + 1 < nc ? ".SS " : ".SH EXIT STATUS");
        const char *at = strstr(page, sec), *end = at ? strstr(at + 1, next_sec) : NULL;
        ck_assert_msg(at && end, "no section for %s", names[c]);
        const char *help[] = {names[c], "--help", NULL};
        ck_assert_int_eq(tu_run_args(&res, help), 0);
        /* every "  --name" of --help is a tag of the section */
        for (const char *o = strstr(res.out, "\n  --"); o; o = strstr(o + 1, "\n  --")) {
            char tag[128] = ".TP\n\\fB\\-\\-";
            size_t k = strlen(tag);
            for (const char *p = o + 5; (*p >= 'a' && *p <= 'z') || *p == '-'; p++) {
                if (*p == '-')
                    tag[k++] = '\\';
                tag[k++] = *p;
            }
            tag[k] = '\0';
            const char *hit = strstr(at, tag);
            ck_assert_msg(hit && hit < end, "the %s section has no '%s'", names[c], tag);
        }
    }
    /* groff reads it without a warning */
    if (system("command -v groff >/dev/null 2>&1") != 0) {
        tu_skip("the manual page through groff", "no groff (apt-get install groff-base)");
        return;
    }
    const char *dir = tu_dir;
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "groff -man -Tascii -ww -z %s 2>%s/warnings", path, dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_uint_eq(tu_slurp(tu_path(dir, "warnings"), res.out, sizeof res.out), 0);
}
END_TEST

/* One file of a pair without the other is refused by name, for the
 * training set and for the test set; a test set missing as a whole is a
 * warning (and no test accuracy), as before. */
START_TEST(test_half_a_pair_refused)
{
    static const char *const files[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    const int k = _i;
    const char *dir = tu_dir;
    tu_make_dataset(dir, 40, 10, 6, 5, 3, 88);
    unlink(tu_path(dir, files[k]));
    const char *args[] = {"train", "--data", dir, "--val", "0", "--batch", "10", "--steps", "2",
                          "--hidden", "8", "--quiet", NULL};
    ck_assert_int_eq(tu_run_args(&res, args), 1);
    char want[4400];
    snprintf(want, sizeof want, "parlstm train: %s/%s: no such file (nor %s/%s.gz), but %s/%s "
             "is there", dir, files[k], dir, files[k], dir, files[k ^ 1]);
    ck_assert_msg(strstr(res.err, want) != NULL, "no '%s' in %s", want, res.err);
    ck_assert_ptr_null(strstr(res.out, "result:"));
}
END_TEST

/* Without validation images and test set, the result line says nan for
 * both, as documented; the values the run has are numbers. */
START_TEST(test_result_line_without_validation_or_test)
{
    const char *dir = tu_dir;
    tu_make_dataset(dir, 40, 10, 6, 5, 3, 87);
    unlink(tu_path(dir, "t10k-images-idx3-ubyte"));
    unlink(tu_path(dir, "t10k-labels-idx1-ubyte"));
    const char *args[] = {"train", "--data", dir, "--val", "0", "--batch", "10", "--steps", "4",
                          "--hidden", "8", "--quiet", NULL};
    int st = tu_run_args(&res, args);
    ck_assert_msg(st == 0, "exit %d: %s", st, res.err);
    ck_assert_msg(strstr(res.out, "val_accuracy=nan test_accuracy=nan ") != NULL, "%s", res.out);
    ck_assert_msg(strstr(res.err, "no test accuracy") != NULL, "%s", res.err);
    double loss = field(res.out, "train_loss="), rate = field(res.out, "samples_per_sec=");
    ck_assert_msg(loss > 0.1 && loss < 5 && rate > 0, "%s", res.out);
}
END_TEST

/* ---- the training-recipe options (issue 20) */

/* The learning rate of every step in --log (a row per step): warm-up over
 * 4 steps to the peak, then cosine over the other 6. --lr 0.01 at batch
 * 20, linear: peak 0.01 x 20 / 100 = 0.002; steps 1-4: 0.002 x s / 4;
 * step 5 the peak; then 0.002 (1 + cos(k pi / 6)) / 2 for k = 1 .. 5. The
 * plan line says how the rate was made. */
START_TEST(test_lr_warmup_and_scaling_in_the_log)
{
    const char *dir = tu_dir;
    tu_make_dataset(dir, 300, 40, 6, 5, 3, 62);
    const char *log = tu_path(dir, "run.csv");
    const char *args[] = {"train", "--data", dir, "--val", "40", "--batch", "20", "--hidden",
                          "8", "--steps", "10", "--lr-warmup", "4", "--lr-scaling", "linear",
                          "--log-every", "1", "--log", log, NULL};
    int st = tu_run_args(&res, args);
    ck_assert_msg(st == 0, "exit %d: %s", st, res.err);
    ck_assert_msg(strstr(res.err, "; lr 0.002 (0.01 x 20/100) cosine after 4 warm-up steps, "
                                  "clip 1, init default,") != NULL, "%s", res.err);
    static const char *const want[10] = {"0.0005", "0.001",  "0.0015", "0.002",
                                         "0.002",  "0.00186603", "0.0015", "0.001",
                                         "0.0005", "0.000133975"};
    tu_log_row r[16];
    ck_assert_int_eq(tu_read_log(log, r, 16), 12); /* 10 train, val, test */
    for (int i = 0; i < 10; i++) {
        ck_assert_str_eq(r[i].kind, "train");
        ck_assert_int_eq(r[i].step, i + 1);
        ck_assert_msg(strcmp(r[i].lr, want[i]) == 0, "step %d: lr %s, want %s", i + 1, r[i].lr,
                      want[i]);
    }
    /* sqrt at batch 25: 0.01 x sqrt(0.25) = 0.005, constant after 2 steps */
    const char *sq[] = {"train", "--data", dir, "--val", "40", "--batch", "25", "--hidden", "8",
                        "--steps", "3", "--lr-warmup", "2", "--lr-scaling", "sqrt",
                        "--lr-schedule", "constant", "--log-every", "1", "--log", log, NULL};
    unlink(log);
    st = tu_run_args(&res, sq);
    ck_assert_msg(st == 0, "exit %d: %s", st, res.err);
    ck_assert_msg(strstr(res.err, "; lr 0.005 (0.01 x sqrt(25/100)) constant after 2 warm-up "
                                  "steps,") != NULL, "%s", res.err);
    ck_assert_int_eq(tu_read_log(log, r, 16), 5);
    ck_assert_str_eq(r[0].lr, "0.0025");
    ck_assert_str_eq(r[1].lr, "0.005");
    ck_assert_str_eq(r[2].lr, "0.005");
}
END_TEST

/* Above batch 500 the rate, the warm-up and the clipping follow the batch
 * unless given (r = log2(batch / 500)): batch 1000, r = 1: lr 0.02, 20
 * warm-up steps, clip 0.25, and a line that says so; batch 2000, r = 2: lr
 * 0.03, 40 steps, clip 1/7, with --lr and --clip given keeping theirs;
 * --lr-scaling keeps the rate's 0.01; batch 500 and --tutorial: the plain
 * defaults. */
START_TEST(test_large_batch_defaults)
{
    static const struct {
        const char *batch, *extra[5], *plan, *note; /* note NULL: no line */
    } cases[] = {
        {"1000", {NULL}, "; lr 0.02 cosine after 20 warm-up steps, clip 0.25, init default,",
         "batch 1000 is above 500: lr 0.02, 20 warm-up steps, clip 0.25 by default"},
        {"2000", {NULL}, "; lr 0.03 cosine after 40 warm-up steps, clip 0.142857,",
         "batch 2000 is above 500: lr 0.03, 40 warm-up steps, clip 0.142857 by default"},
        {"2000", {"--lr", "0.005", "--clip", "2"},
         "; lr 0.005 cosine after 40 warm-up steps, clip 2,",
         "is above 500: 40 warm-up steps by default"},
        {"1000", {"--lr-scaling", "sqrt"},
         "; lr 0.0316228 (0.01 x sqrt(1000/100)) cosine after 20 warm-up steps, clip 0.25,",
         "is above 500: 20 warm-up steps, clip 0.25 by default"},
        {"500", {NULL}, "; lr 0.01 cosine, clip 1, init default,", NULL},
        {"1000", {"--tutorial"}, "; lr 0.01 constant, clip 0, init tutorial,", NULL},
    };
    const char *dir = tu_dir;
    tu_make_dataset(dir, 2040, 10, 4, 3, 3, 63);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *args[16] = {"train", "--data", dir, "--val", "40", "--batch", cases[i].batch,
                                "--hidden", "4", "--steps", "1"};
        int n = 11;
        for (int e = 0; cases[i].extra[e]; e++)
            args[n++] = cases[i].extra[e];
        int st = tu_run_args(&res, args);
        ck_assert_msg(st == 0, "batch %s: exit %d: %s", cases[i].batch, st, res.err);
        ck_assert_msg(strstr(res.err, cases[i].plan) != NULL, "%s", res.err);
        if (cases[i].note)
            ck_assert_msg(strstr(res.err, cases[i].note) != NULL, "%s", res.err);
        else
            ck_assert_ptr_null(strstr(res.err, "by default"));
    }
}
END_TEST

/* --preset: its options come first and the command line's override them
 * (--hidden, --steps here; the preset's --lr stays); both spellings; the
 * help lists every preset with its options. */
START_TEST(test_preset_and_overrides)
{
    const char *dir = tu_dir;
    tu_make_dataset(dir, 200, 40, 6, 5, 3, 63);
    const char *a1[] = {"train", "--data", dir, "--val", "40", "--batch", "20", "--preset",
                        "mnist-99", "--hidden", "8", "--steps", "3", NULL};
    int st = tu_run_args(&res, a1);
    ck_assert_msg(st == 0, "exit %d: %s", st, res.err);
    ck_assert_msg(strstr(res.err, "model 5-8-3 ") != NULL, "%s", res.err);
    ck_assert_msg(strstr(res.err, "3 steps of 20 (8 per epoch); lr 0.003 cosine, clip 1, init "
                                  "pytorch") != NULL, "%s", res.err);
    const char *a2[] = {"train", "--data", dir, "--val", "40", "--batch", "20", "--hidden", "8",
                        "--steps", "2", "--preset=psmnist", "--lr", "0.02", NULL};
    st = tu_run_args(&res, a2);
    ck_assert_msg(st == 0, "exit %d: %s", st, res.err);
    ck_assert_msg(strstr(res.err, "lr 0.02 cosine") != NULL, "%s", res.err);
    ck_assert_msg(strstr(res.err, "pixels") != NULL, "psmnist reads pixels: %s", res.err);
    const char *help[] = {"train", "--help", NULL};
    ck_assert_int_eq(tu_run_args(&res, help), 0);
    static const char *const lines[] = {
        "  mnist-99  --hidden 256 --lr 0.003 --epochs 7 --init pytorch\n",
        "  smnist    --sequence pixels --init chrono --lr 0.001 --epochs 60\n",
        "  psmnist   --sequence pixels --permute 1 --hidden 256 --lr 0.001 --epochs 30\n"};
    for (int k = 0; k < 3; k++)
        ck_assert_msg(strstr(res.out, lines[k]) != NULL, "help lacks '%s'", lines[k]);
}
END_TEST

/* --eval-every alone: validation rows (and lines) at steps 3, 6, 9 and the
 * last, 10, and the same model as the run that validates once per epoch
 * (evaluating changes no parameter); no time_to_target without a target. */
START_TEST(test_eval_every)
{
    const char *dir = tu_dir;
    tu_make_dataset(dir, 300, 40, 6, 5, 3, 63);
    const char *log = tu_path(dir, "run.csv"), *a = tu_path(dir, "a.bin"),
               *b = tu_path(dir, "b.bin");
    const char *every[] = {"train", "--data", dir, "--val", "40", "--batch", "20", "--hidden",
                           "8", "--steps", "10", "--eval-every", "3", "--log", log, "--save",
                           a, NULL};
    int st = tu_run_args(&res, every);
    ck_assert_msg(st == 0, "exit %d: %s", st, res.err);
    ck_assert_msg(strstr(res.err, "step 3, epoch 1: validation accuracy ") != NULL &&
                  strstr(res.err, "step 10, epoch 1: validation accuracy ") != NULL,
                  "%s", res.err);
    ck_assert_ptr_null(strstr(res.out, "time_to_target"));
    tu_log_row r[16];
    int n = tu_read_log(log, r, 16), vals = 0;
    const long at[4] = {3, 6, 9, 10};
    for (int i = 0; i < n; i++)
        if (!strcmp(r[i].kind, "val")) {
            ck_assert_int_lt(vals, 4);
            ck_assert_int_eq(r[i].step, at[vals++]);
        }
    ck_assert_int_eq(vals, 4);
    const char *once[] = {"train", "--data", dir, "--val", "40", "--batch", "20", "--hidden",
                          "8", "--steps", "10", "--save", b, "--quiet", NULL};
    ck_assert_int_eq(tu_run_args(&res, once), 0);
    size_t la, lb;
    unsigned char *ma = tu_read_all(a, &la), *mb = tu_read_all(b, &lb);
    ck_assert_uint_eq(la, lb);
    ck_assert_int_eq(memcmp(ma, mb, la), 0);
    free(ma);
    free(mb);
}
END_TEST

/* --target-accuracy reached: the run stops after the first validation at
 * or above it (every 2 steps; a small rate makes it take a few), and the result line says when: target_step
 * is that validation's step and the steps done, time_to_target at least
 * the seconds its log row shows (evaluation included); the log window and
 * the checkpoint are written there. An unreachable target (a rate too small to learn) runs
 * every step and reports nan for both; without validation images it is
 * refused. */
START_TEST(test_target_accuracy)
{
    const char *dir = tu_dir;
    tu_make_dataset(dir, 400, 40, 6, 5, 3, 64);
    const char *log = tu_path(dir, "run.csv"), *ck = tu_path(dir, "ck");
    const char *args[] = {"train", "--data", dir, "--val", "100", "--batch", "20", "--hidden",
                          "16", "--lr", "0.001", "--steps", "300", "--target-accuracy", "0.9",
                          "--eval-every", "2", "--log", log, "--checkpoint", ck, NULL};
    int st = tu_run_args(&res, args);
    ck_assert_msg(st == 0, "exit %d: %s", st, res.err);
    tu_log_row r[256];
    int n = tu_read_log(log, r, 256), hit = -1, below = 0;
    for (int i = 0; i < n && hit < 0; i++)
        if (!strcmp(r[i].kind, "val") && r[i].accuracy >= 0.9)
            hit = i;
        else if (!strcmp(r[i].kind, "val"))
            below++;
    ck_assert_msg(hit >= 0, "never reached 0.9: %s", res.err);
    const long step = r[hit].step;
    printf("target 0.9 reached at step %ld (validation accuracy %.4f, %.3fs) after %d "
           "validations below it: %s", step, r[hit].accuracy, r[hit].seconds, below, res.out);
    ck_assert_int_ge(below, 2); /* the rate makes it take a few */
    ck_assert_int_eq(step % 2, 0);
    ck_assert_int_eq(step, 2 * (below + 1));
    ck_assert_double_eq(field(res.out, "target_step="), (double)step);
    ck_assert_double_eq(field(res.out, "steps="), (double)step);
    ck_assert_double_eq_tol(field(res.out, "val_accuracy="), r[hit].accuracy, 1e-4);
    /* the result line rounds to 0.01 s and the log row to 0.001 s: the
     * two can differ by 0.0055 (0.03 against 0.035 where both were 0.0348) */
    double t = field(res.out, "time_to_target=");
    ck_assert_msg(t >= r[hit].seconds - 0.0056 && t < r[hit].seconds + 1, "%g, row %g", t,
                  r[hit].seconds);
    /* after it: the last steps' train row (the window the target closed),
     * the test row; nothing trained or validated later */
    for (int i = hit + 1; i < n; i++)
        ck_assert_msg((!strcmp(r[i].kind, "train") && r[i].step == step) ||
                      !strcmp(r[i].kind, "test"), "a %s row of step %ld after the target",
                      r[i].kind, r[i].step);
    pl_ckpt_meta m;
    float *state = NULL;
    pl_error e;
    ck_assert_int_eq(pl_checkpoint_load(ck, &m, &state, &e), PL_OK);
    pl_free(state);
    ck_assert_int_eq(m.step, step);
    ck_assert_int_eq(m.total, 300);

    const char *never[] = {"train", "--data", dir, "--val", "100", "--batch", "20", "--hidden",
                           "16", "--lr", "1e-7", "--steps", "6", "--target-accuracy", "0.99",
                           "--eval-every", "2", "--quiet", NULL};
    st = tu_run_args(&res, never);
    ck_assert_msg(st == 0, "exit %d: %s", st, res.err);
    ck_assert_msg(strstr(res.out, "result: steps=6 ") != NULL, "%s", res.out);
    ck_assert_msg(strstr(res.out, " time_to_target=nan target_step=nan\n") != NULL, "%s",
                  res.out);
    const char *noval[] = {"train", "--data", dir, "--val", "0", "--target-accuracy", "0.9",
                           NULL};
    ck_assert_int_eq(tu_run_args(&res, noval), 2);
    ck_assert_msg(strstr(res.err, "--target-accuracy 0.9 is measured on the validation images, "
                                  "and --val 0 holds none out") != NULL, "%s", res.err);
}
END_TEST

/* --init chrono through the program, after one step at a rate too small
 * to move a bias by 1e-6: every layer's forget-gate biases lie in
 * [0, log(T - 1)] for the data's T = 12 time steps and are spread (not
 * the default's +1), the input-gate biases are their negatives, g and o
 * stay near 0. */
START_TEST(test_chrono_init_through_the_program)
{
    const char *dir = tu_dir;
    tu_make_dataset(dir, 60, 10, 12, 5, 3, 65);
    const char *model = tu_path(dir, "m.bin");
    const char *args[] = {"train", "--data", dir, "--val", "0", "--batch", "20", "--hidden", "16",
                          "--layers", "2", "--steps", "1", "--lr", "1e-8", "--init", "chrono",
                          "--save", model, NULL};
    int st = tu_run_args(&res, args);
    ck_assert_msg(st == 0, "exit %d: %s", st, res.err);
    ck_assert_ptr_nonnull(strstr(res.err, ", init chrono, seed 1"));
    pl_model_info mi;
    float *p = NULL;
    pl_error e;
    ck_assert_int_eq(pl_model_load(model, &mi, &p, &e), PL_OK);
    pl_tensors t;
    pl_tensors_bind(&mi.cfg, p, &t);
    const int H = 16;
    for (int l = 0; l < 2; l++) {
        float lo = 1e9f, hi = -1e9f;
        for (int u = 0; u < H; u++) {
            const float bi = t.b[l][u], bf = t.b[l][H + u];
            ck_assert_msg(bf >= -1e-6f && bf <= logf(11.0f) + 1e-6f, "b_f %g", (double)bf);
            ck_assert_float_eq_tol(bi, -bf, 2e-6f);
            ck_assert_float_eq_tol(t.b[l][2 * H + u], 0.0f, 1e-6f);
            ck_assert_float_eq_tol(t.b[l][3 * H + u], 0.0f, 1e-6f);
            lo = fminf(lo, bf);
            hi = fmaxf(hi, bf);
        }
        ck_assert_msg(hi - lo > 0.5f, "layer %d: b_f from %g to %g", l, (double)lo, (double)hi);
    }
    pl_free(p);
}
END_TEST

/* The recipe's options at their neutral values are the defaults: a run
 * that names them saves the same bytes as one that does not (that the
 * defaults' arithmetic is the one from before the options existed is
 * check_optim.c's: the update without decay, the rate without warm-up). */
START_TEST(test_defaults_keep_the_bits)
{
    const char *dir = tu_dir;
    tu_make_dataset(dir, 300, 40, 6, 5, 3, 61);
    const char *plain = tu_path(dir, "plain.bin"), *named = tu_path(dir, "named.bin");
    const char *a1[] = {"train", "--data", dir, "--val", "40", "--batch", "20", "--hidden",
                        "16", "--steps", "20", "--save", plain, "--quiet", NULL};
    const char *a2[] = {"train", "--data", dir, "--val", "40", "--batch", "20", "--hidden",
                        "16", "--steps", "20", "--save", named, "--quiet", "--lr-warmup", "0",
                        "--lr-scaling", "none", "--weight-decay", "0", "--init", "default",
                        NULL};
    int st = tu_run_args(&res, a1);
    ck_assert_msg(st == 0, "exit %d: %s", st, res.err);
    st = tu_run_args(&res, a2);
    ck_assert_msg(st == 0, "exit %d: %s", st, res.err);
    ck_assert_msg(tu_same_file(plain, named), "the model files differ");
}
END_TEST

/* bench names the data it loaded by its directory (never "MNIST"), and a
 * batch too large for the images and a batch too small for the workers
 * get two different messages. */
START_TEST(test_bench_names_its_data)
{
    const char *dir = tu_dir;
    tu_make_dataset(dir, 60, 10, 6, 5, 3, 88);
    const char *args[] = {"bench", "--data", dir, "--grid", "1x1", "--rounds", "1", "--steps",
                          "1", "--warmup", "0", "--hidden", "8", "--batch", "10", NULL};
    int st = tu_run_args(&res, args);
    ck_assert_msg(st == 0, "exit %d: %s", st, res.err);
    char want[4200];
    snprintf(want, sizeof want, "60 images of 6x5 from %s", dir);
    ck_assert_msg(strstr(res.err, want) != NULL, "%s", res.err);
    ck_assert_msg(strstr(res.out, want) != NULL, "%s", res.out);
    ck_assert_msg(strstr(res.out, "MNIST") == NULL && strstr(res.err, "MNIST") == NULL, "%s%s", res.err, res.out);
    ck_assert_msg(strstr(res.err, "model 5-8-3") != NULL, "%s", res.err);
    /* the round's line: samples/s, then the neighbour probe */
    assert_round_probe(strstr(res.err, "round 1/1: 1x1 "), res.err);
    const char *big[] = {"bench", "--data", dir, "--grid", "1x1", "--rounds", "1", "--batch",
                         "100", NULL};
    st = tu_run_args(&res, big);
    ck_assert_msg(st == 2, "exit %d: %s", st, res.err);
    ck_assert_msg(strstr(res.err, "1x1: batch 100 is more than the 60 images") != NULL, "%s", res.err);
    const char *few[] = {"bench", "--data", dir, "--grid", "4x1", "--rounds", "1", "--batch",
                         "2", NULL};
    st = tu_run_args(&res, few);
    ck_assert_msg(st == 2, "exit %d: %s", st, res.err);
    ck_assert_msg(strstr(res.err, "4x1: batch 2 leaves some of the 4 workers without an image") !=
                  NULL, "%s", res.err);
}
END_TEST

/* Every kernel set trains to the plain-loop path's loss: the OpenBLAS path
 * (re-executed with the right core type when OpenBLAS misdetects the CPU)
 * and our kernels; a set this CPU cannot run is refused with exit status 2
 * and what it needs. */
START_TEST(test_kernel_sets_match_naive)
{
    const pl_gemm_backend set = tu_sets[_i];
    if (set == PL_GEMM_NAIVE)
        return; /* the reference itself */
    const char *dir = tu_dir;
    tu_make_dataset(dir, 120, 20, 6, 5, 3, 78);
    double loss[2];
    const char *be[2] = {pl_gemm_name(set), "naive"};
    if (!pl_gemm_available(set)) {
        const char *args[] = {"train", "--data", dir, "--gemm", be[0], NULL};
        ck_assert_int_eq(tu_run_args(&res, args), 2);
        ck_assert_msg(strstr(res.err, pl_gemm_requires(set)) != NULL, "%s", res.err);
        tu_set_runs(set, "training from the command line");
        return;
    }
    for (int k = 0; k < 2; k++) {
        const char *args[] = {"train", "--data", dir, "--val", "20", "--batch", "20",
                              "--steps", "5", "--hidden", "16", "--gemm", be[k],
                              "--log-every", "5", "--lr-schedule", "constant", NULL};
        int st = tu_run_args(&res, args);
        ck_assert_msg(st == 0, "%s: %s", be[k], res.err);
        loss[k] = field(res.out, "train_loss=");
        ck_assert_ptr_nonnull(strstr(res.out, be[k]));
        /* on an AVX-512 CPU that OpenBLAS misdetects, the program restarted
         * itself with the right core type before OpenBLAS loaded */
        if (k == 0 && set == PL_GEMM_BLAS && !getenv("OPENBLAS_CORETYPE") &&
            pl_blas_better_coretype())
            ck_assert_msg(strstr(res.err, "(OpenBLAS core SkylakeX)") != NULL ||
                              strstr(res.err, "(OpenBLAS core Haswell)") != NULL,
                          "no re-execution with the right core: %s", res.err);
    }
    printf("5 steps: %s loss %.4f, naive loss %.4f\n", be[0], loss[0], loss[1]);
    ck_assert_double_eq_tol(loss[0], loss[1], 2e-4);
}
END_TEST

/* Where train looks without --data: $PARLSTM_DATA, else ./data/mnist when
 * it exists, else $XDG_DATA_HOME/parlstm/mnist, else
 * $HOME/.local/share/parlstm/mnist. Each case runs the program in a
 * directory of its own with its own environment. */
typedef struct {
    const char *name;
    int make_local;         /* a data set in ./data/mnist */
    const char *env[4];     /* "K=V", with @ standing for the case's directory */
    const char *data_under; /* a data set under @/this, or NULL */
    int status;
    const char *fragment; /* in stderr (@: the directory) */
} data_case;

static const data_case DATA_CASES[] = {
    {"PARLSTM_DATA names a missing directory", 0,
     {"PARLSTM_DATA=@/pd", "XDG_DATA_HOME=@/xdg"}, NULL, 1, "no data directory @/pd\n"},
    {"PARLSTM_DATA before ./data/mnist", 1, {"PARLSTM_DATA=@/pd"}, NULL, 1,
     "no data directory @/pd\n"},
    {"PARLSTM_DATA with data", 0, {"PARLSTM_DATA=@/pd"}, "pd", 0, "4 classes"},
    {"./data/mnist when it exists", 1, {"PARLSTM_DATA=", "XDG_DATA_HOME=@/xdg"}, NULL, 0,
     "4 classes"},
    {"XDG_DATA_HOME next", 0, {"PARLSTM_DATA=", "XDG_DATA_HOME=@/xdg"}, "xdg/parlstm/mnist", 0,
     "4 classes"},
    {"XDG_DATA_HOME without data", 0, {"PARLSTM_DATA=", "XDG_DATA_HOME=@/xdg"}, NULL, 1,
     "no data directory @/xdg/parlstm/mnist\nparlstm train: get MNIST with parlstm-fetch-mnist"},
    {"a relative XDG_DATA_HOME is ignored", 0,
     {"PARLSTM_DATA=", "XDG_DATA_HOME=rel", "HOME=@/home"}, NULL, 1,
     "no data directory @/home/.local/share/parlstm/mnist\n"},
    {"HOME last", 0, {"PARLSTM_DATA=", "XDG_DATA_HOME=", "HOME=@/home"},
     "home/.local/share/parlstm/mnist", 0, "4 classes"},
};

/* s with every @ replaced by dir, into a static buffer (one of 6). */
static const char *at_dir(const char *s, const char *dir)
{
    static char bufs[6][4096];
    static int next;
    char *b = bufs[next++ % 6], *o = b;
    for (; *s && o < b + 4000; s++) {
        if (*s == '@')
            o += snprintf(o, (size_t)(b + 4096 - o), "%s", dir);
        else
            *o++ = *s;
    }
    *o = '\0';
    return b;
}

START_TEST(test_default_data_dir)
{
    const data_case *c = &DATA_CASES[_i];
    const char *dir = tu_dir;
    char sub[4096];
    if (c->make_local) {
        snprintf(sub, sizeof sub, "mkdir -p '%s/data/mnist'", dir);
        ck_assert_int_eq(system(sub), 0);
        snprintf(sub, sizeof sub, "%s/data/mnist", dir);
        tu_make_dataset(sub, 60, 10, 5, 4, 4, 3);
    }
    if (c->data_under) {
        snprintf(sub, sizeof sub, "mkdir -p '%s/%s'", dir, c->data_under);
        ck_assert_int_eq(system(sub), 0);
        snprintf(sub, sizeof sub, "%s/%s", dir, c->data_under);
        tu_make_dataset(sub, 60, 10, 5, 4, 4, 3);
    }
    const char *env[5] = {0};
    for (int k = 0; k < 4 && c->env[k]; k++)
        env[k] = at_dir(c->env[k], dir);
    /* sh -c 'cd DIR && exec parlstm train ...' */
    const char *args[] = {"-c", "cd \"$1\" && shift && exec \"$@\"", "sh", dir,
                          getenv("PARLSTM_BIN"), "train", "--steps", "2", "--val", "0",
                          "--batch", "10", "--hidden", "8", NULL};
    int st = tu_run_program(&res, "/bin/sh", args, env, 0);
    const char *want = at_dir(c->fragment, dir);
    printf("%s -> %d: %s", c->name, st, res.err);
    ck_assert_msg(st == c->status, "%s: exit %d, expected %d; stderr: %s", c->name, st,
                  c->status, res.err);
    ck_assert_msg(strstr(res.err, want) != NULL, "%s: stderr lacks '%s': %s", c->name, want, res.err);
}
END_TEST

Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tu_tcase_with_dir("program");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_bad_invocations, 0, (int)(sizeof BAD / sizeof *BAD));
    tcase_add_test(tc, test_unavailable_kernels_refused);
    tcase_add_test(tc, test_layers_pixels_permuted_through_the_program);
    tcase_add_test(tc, test_bf16_through_the_program);
    tcase_add_test(tc, test_bench_shapes_grid);
    tcase_add_test(tc, test_threads_capped_with_a_warning);
    tcase_add_test(tc, test_test_every_epoch);
    tcase_add_test(tc, test_preset_and_overrides);
    tcase_add_test(tc, test_help_and_version);
    tcase_add_test(tc, test_man_page_is_current);
    tcase_add_loop_test(tc, test_half_a_pair_refused, 0, 4);
    tcase_add_test(tc, test_train_save_eval);
    tcase_add_test(tc, test_train_on_sequence_files);
    tcase_add_test(tc, test_normalize_round_trip);
    tcase_add_test(tc, test_predict_class_names);
    tcase_add_test(tc, test_model_without_statistics);
    tcase_add_test(tc, test_normalize_resume_exact);
    tcase_add_test(tc, test_sequence_file_options_refused);
    tcase_add_test(tc, test_eval_checks_the_sequence_length);
    tcase_add_test(tc, test_one_class_training_labels);
    tcase_add_test(tc, test_save_over_checkpoint_through_a_link);
    tcase_add_test(tc, test_result_line_without_validation_or_test);
    tcase_add_test(tc, test_bench_names_its_data);
    tcase_add_test(tc, test_validation_split_through_the_program);
    tcase_add_loop_test(tc, test_kernel_sets_match_naive, 0, tu_nsets);
    tcase_add_test(tc, test_lr_warmup_and_scaling_in_the_log);
    tcase_add_test(tc, test_large_batch_defaults);
    tcase_add_test(tc, test_eval_every);
    tcase_add_test(tc, test_target_accuracy);
    tcase_add_test(tc, test_chrono_init_through_the_program);
    tcase_add_test(tc, test_defaults_keep_the_bits);
    tcase_add_loop_test(tc, test_default_data_dir, 0,
                        (int)(sizeof DATA_CASES / sizeof *DATA_CASES));
    suite_add_tcase(s, tc);
    return s;
}
