/* parlstm train: options, data, the step loop with progress, evaluation,
 * the result line and --save. */
#include <errno.h>
#include <inttypes.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "testing.h"

static void train_usage(FILE *f)
{
    fprintf(f,
        "Usage: parlstm train [OPTIONS]\n"
        "Trains the row-sequential LSTM classifier: each image row is a time step;\n"
        "a D->H input projection, one LSTM layer of H units (forget bias +1, zero\n"
        "initial state), an H->C output layer on the last hidden state, softmax\n"
        "cross-entropy, Adam.\n"
        "\n"
        "Data:\n"
        "  --data DIR          IDX files DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]\n"
        "                      (default data/mnist; get MNIST with data/fetch-mnist.sh)\n"
        "  --val N             hold out the first N training images for validation (5000)\n"
        "  --classes N         class count (default: largest training label + 1)\n"
        "\n"
        "Training:\n"
        "  --epochs N          passes over the training images (1)\n"
        "  --steps N           train N steps (with --epochs: stop after N steps at most)\n"
        "  --batch N           images per step (100)\n"
        "  --hidden N          LSTM units (128)\n"
        "  --lr X              peak learning rate (0.01)\n"
        "  --lr-schedule S     cosine (default: from --lr down to 0 over the run) or constant\n"
        "  --clip X            clip the global gradient norm at X; 0 = off (1.0)\n"
        "  --init I            default (Glorot-uniform, orthogonal recurrent weights,\n"
        "                      zero biases) or tutorial (N(0,1) projections, 0.1 biases,\n"
        "                      Glorot-uniform LSTM kernel)\n"
        "  --tutorial          the TensorFlow tutorial exactly: --init tutorial\n"
        "                      --lr-schedule constant --clip 0\n"
        "  --seed N            seed for initialisation and shuffling (1)\n"
        "\n"
        "Parallelism:\n"
        "  --workers W         data-parallel worker threads (default: one per CPU,\n"
        "                      keeping at least 16 images per worker)\n"
        "  --threads T         OpenMP threads inside each worker (default: CPUs / W)\n"
        "  --pin               pin workers and their threads to CPUs\n"
        "  --gemm B            auto (default), avx512, blas (OpenBLAS) or naive\n"
        "\n"
        "  --deterministic     bitwise identical results for every --workers and\n"
        "                      --threads (the batch is cut into 16 fixed shards; slower)\n"
        "\n"
        "Checkpoints:\n"
        "  --checkpoint FILE   keep the whole training state in FILE (atomic writes)\n"
        "  --checkpoint-every N  write it every N steps (100) and at the end\n"
        "  --resume FILE       continue the run saved in FILE; it ends bitwise identical\n"
        "                      to the run left alone. Settings come from FILE; options\n"
        "                      given again must agree (--workers/--threads may change,\n"
        "                      which keeps bit-for-bit results only with --deterministic)\n"
        "  SIGINT/SIGTERM finish the current step, write the checkpoint and exit with\n"
        "  130/143; a second signal exits at once, leaving the last checkpoint intact.\n"
        "\n"
        "Output:\n"
        "  --save FILE         write the trained model (read it with parlstm eval)\n"
        "  --log-every N       progress line every N steps (100)\n"
        "  --quiet             no progress lines; errors and the result line only\n"
        "  -h, --help          this help\n"
        "\n"
        "Logs go to stderr. The last stdout line is the result, for example\n"
        "  result: steps=550 train_loss=0.1234 val_accuracy=0.9712 test_accuracy=0.9705\n"
        "          seconds=21.3 samples_per_sec=2582 workers=2 threads=1\n"
        "(one line; train_loss is the mean over the last --log-every steps, seconds\n"
        "and samples_per_sec count the training steps only, not evaluation).\n"
        "Exit status: 0 done, 1 error (data, files, numerics), 2 bad options,\n"
        "130/143 stopped by SIGINT/SIGTERM.\n");
}

enum {
    OPT_DATA = 256, OPT_VAL, OPT_CLASSES, OPT_EPOCHS, OPT_STEPS, OPT_BATCH,
    OPT_HIDDEN, OPT_LR, OPT_SCHED, OPT_CLIP, OPT_INIT, OPT_TUTORIAL, OPT_SEED,
    OPT_WORKERS, OPT_THREADS, OPT_PIN, OPT_GEMM, OPT_SAVE, OPT_LOG, OPT_QUIET,
    OPT_CKPT, OPT_CKPT_EVERY, OPT_RESUME, OPT_DET, OPT_END
};

int cli_load_data(const char *cmd, const char *dir, int classes, int need_train,
                  pl_dataset *train, pl_dataset *test, int *have_test)
{
    pl_error err = {0};
    struct stat st;
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    *have_test = 0;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "parlstm %s: no data directory %s\n", cmd, dir);
        fprintf(stderr, "parlstm %s: get MNIST with data/fetch-mnist.sh (it fills data/mnist), "
                "or pass --data DIR\n", cmd);
        return 1;
    }
    if (need_train) {
        if (pl_dataset_load(train, dir, "train", classes, &err)) {
            print_error(cmd, &err);
            if (err.code == PL_ERR_NOT_FOUND)
                fprintf(stderr, "parlstm %s: get MNIST with data/fetch-mnist.sh, or pass --data DIR\n",
                        cmd);
            return 1;
        }
        if (classes == 0)
            classes = train->classes;
    }
    pl_status rc = pl_dataset_load(test, dir, "t10k", classes, &err);
    if (rc == PL_ERR_NOT_FOUND && need_train) {
        fprintf(stderr, "parlstm %s: warning: %s; no test accuracy\n", cmd, err.msg);
        return 0;
    }
    if (rc) {
        print_error(cmd, &err);
        pl_dataset_free(train);
        return 1;
    }
    if (need_train && (test->T != train->T || test->D != train->D)) {
        fprintf(stderr, "parlstm %s: the test images are %d x %d, the training images %d x %d\n",
                cmd, test->T, test->D, train->T, train->D);
        pl_dataset_free(train);
        pl_dataset_free(test);
        return 1;
    }
    *have_test = 1;
    return 0;
}

/* ---- signals: the first asks to stop after the step, the second exits */
static volatile sig_atomic_t stop_signal;
/* the checkpoint or model write in progress, for the second signal */
static pl_write_guard write_guard;

static void on_signal(int sig)
{
    if (stop_signal) {
        pl_write_abandon(&write_guard);
        _exit(128 + sig);
    }
    stop_signal = sig;
}

static void install_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

typedef struct {
    pl_train_opts o;
    const char *data, *save, *ckpt, *resume;
    long long val, log_every, ckpt_every;
    int quiet, tutorial;
    unsigned char set[OPT_END]; /* options given on the command line */
} train_args;

static int parse_args(int argc, char **argv, train_args *a)
{
    static const struct option longopts[] = {
        {"data", required_argument, 0, OPT_DATA},
        {"val", required_argument, 0, OPT_VAL},
        {"classes", required_argument, 0, OPT_CLASSES},
        {"epochs", required_argument, 0, OPT_EPOCHS},
        {"steps", required_argument, 0, OPT_STEPS},
        {"batch", required_argument, 0, OPT_BATCH},
        {"hidden", required_argument, 0, OPT_HIDDEN},
        {"lr", required_argument, 0, OPT_LR},
        {"lr-schedule", required_argument, 0, OPT_SCHED},
        {"clip", required_argument, 0, OPT_CLIP},
        {"init", required_argument, 0, OPT_INIT},
        {"tutorial", no_argument, 0, OPT_TUTORIAL},
        {"seed", required_argument, 0, OPT_SEED},
        {"workers", required_argument, 0, OPT_WORKERS},
        {"threads", required_argument, 0, OPT_THREADS},
        {"pin", no_argument, 0, OPT_PIN},
        {"gemm", required_argument, 0, OPT_GEMM},
        {"save", required_argument, 0, OPT_SAVE},
        {"log-every", required_argument, 0, OPT_LOG},
        {"quiet", no_argument, 0, OPT_QUIET},
        {"checkpoint", required_argument, 0, OPT_CKPT},
        {"checkpoint-every", required_argument, 0, OPT_CKPT_EVERY},
        {"resume", required_argument, 0, OPT_RESUME},
        {"deterministic", no_argument, 0, OPT_DET},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    static const char *const schedules[] = {"cosine", "constant", NULL};
    static const char *const inits[] = {"default", "tutorial", NULL};
    const char *cmd = "train";
    pl_train_opts *o = &a->o;
    long long v;
    double x;
    int c, k;
    memset(a, 0, sizeof *a);
    pl_train_opts_default(o);
    a->data = "data/mnist";
    a->val = 5000;
    a->log_every = 100;
    a->ckpt_every = 100;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c >= OPT_DATA && c < OPT_END)
            a->set[c] = 1;
        switch (c) {
        case OPT_DATA: a->data = optarg; break;
        case OPT_VAL:
            if (opt_long(cmd, "--val", optarg, 0, 100000000, &a->val)) return EXIT_USAGE;
            break;
        case OPT_CLASSES:
            if (opt_long(cmd, "--classes", optarg, 2, 256, &v)) return EXIT_USAGE;
            o->classes = (int)v;
            break;
        case OPT_EPOCHS:
            if (opt_long(cmd, "--epochs", optarg, 1, 1000000, &v)) return EXIT_USAGE;
            o->epochs = (int)v;
            break;
        case OPT_STEPS:
            if (opt_long(cmd, "--steps", optarg, 1, 1000000000000LL, &v)) return EXIT_USAGE;
            o->steps = (long)v;
            break;
        case OPT_BATCH:
            if (opt_long(cmd, "--batch", optarg, 1, 65536, &v)) return EXIT_USAGE;
            o->batch = (int)v;
            break;
        case OPT_HIDDEN:
            if (opt_long(cmd, "--hidden", optarg, 1, 8192, &v)) return EXIT_USAGE;
            o->hidden = (int)v;
            break;
        case OPT_LR:
            if (opt_float(cmd, "--lr", optarg, 0, 10, 0, &x)) return EXIT_USAGE;
            o->lr = (float)x;
            break;
        case OPT_SCHED:
            if ((k = opt_word(cmd, "--lr-schedule", optarg, schedules)) < 0) return EXIT_USAGE;
            o->schedule = k == 0 ? PL_SCHED_COSINE : PL_SCHED_CONSTANT;
            break;
        case OPT_CLIP:
            if (opt_float(cmd, "--clip", optarg, 0, 1e30, 1, &x)) return EXIT_USAGE;
            o->clip = (float)x;
            break;
        case OPT_INIT:
            if ((k = opt_word(cmd, "--init", optarg, inits)) < 0) return EXIT_USAGE;
            o->init = k == 0 ? PL_INIT_DEFAULT : PL_INIT_TUTORIAL;
            break;
        case OPT_TUTORIAL: a->tutorial = 1; break;
        case OPT_SEED:
            if (opt_u64(cmd, "--seed", optarg, &o->seed)) return EXIT_USAGE;
            break;
        case OPT_WORKERS:
            if (opt_long(cmd, "--workers", optarg, 1, 1024, &v)) return EXIT_USAGE;
            o->workers = (int)v;
            break;
        case OPT_THREADS:
            if (opt_long(cmd, "--threads", optarg, 1, 1024, &v)) return EXIT_USAGE;
            o->threads = (int)v;
            break;
        case OPT_PIN: o->pin = 1; break;
        case OPT_GEMM:
            if (opt_gemm(cmd, optarg, &o->gemm)) return EXIT_USAGE;
            break;
        case OPT_SAVE: a->save = optarg; break;
        case OPT_LOG:
            if (opt_long(cmd, "--log-every", optarg, 1, 1000000000, &a->log_every)) return EXIT_USAGE;
            break;
        case OPT_QUIET: a->quiet = 1; break;
        case OPT_CKPT: a->ckpt = optarg; break;
        case OPT_CKPT_EVERY:
            if (opt_long(cmd, "--checkpoint-every", optarg, 1, 1000000000000LL, &a->ckpt_every))
                return EXIT_USAGE;
            break;
        case OPT_RESUME: a->resume = optarg; break;
        case OPT_DET: o->deterministic = 1; break;
        case 'h': train_usage(stdout); return -1;
        default:
            if (optopt)
                fprintf(stderr, "parlstm train: option '%s' needs a value (see parlstm train --help)\n",
                        argv[optind - 1]);
            else
                fprintf(stderr, "parlstm train: unknown option '%s' (see parlstm train --help)\n",
                        argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "parlstm train: unexpected argument '%s' (see parlstm train --help)\n",
                argv[optind]);
        return EXIT_USAGE;
    }
    if (a->tutorial) {
        if ((a->set[OPT_INIT] && o->init != PL_INIT_TUTORIAL) ||
            (a->set[OPT_SCHED] && o->schedule != PL_SCHED_CONSTANT) ||
            (a->set[OPT_CLIP] && o->clip != 0)) {
            fprintf(stderr, "parlstm train: --tutorial means --init tutorial --lr-schedule constant "
                    "--clip 0; drop the option that contradicts it\n");
            return EXIT_USAGE;
        }
        o->init = PL_INIT_TUTORIAL;
        o->schedule = PL_SCHED_CONSTANT;
        o->clip = 0;
        a->set[OPT_INIT] = a->set[OPT_SCHED] = a->set[OPT_CLIP] = 1;
    }
    if (o->workers > o->batch) {
        fprintf(stderr, "parlstm train: --workers %d is more than --batch %d: every worker needs "
                "at least one image\n", o->workers, o->batch);
        return EXIT_USAGE;
    }
    if (a->set[OPT_CKPT_EVERY] && !a->ckpt) {
        fprintf(stderr, "parlstm train: --checkpoint-every needs --checkpoint FILE\n");
        return EXIT_USAGE;
    }
    return 0;
}

/* A resumed run keeps the settings that shape its trajectory: options given
 * again must agree with the checkpoint. Returns 0 or prints and returns 2. */
static int adopt_checkpoint(train_args *a, const pl_ckpt_meta *m, long *total)
{
    pl_train_opts *o = &a->o;
    const pl_train_opts *c = &m->opts;
    char mine[64], theirs[64];
#define SAME(opt, name, fmt, field)                                                        \
    do {                                                                                   \
        if (a->set[opt] && o->field != c->field) {                                         \
            snprintf(mine, sizeof mine, fmt, o->field);                                    \
            snprintf(theirs, sizeof theirs, fmt, c->field);                                \
            fprintf(stderr, "parlstm train: %s %s differs from the checkpoint's %s: a "   \
                    "resumed run keeps its settings (drop the option)\n", name, mine,      \
                    theirs);                                                               \
            return EXIT_USAGE;                                                             \
        }                                                                                  \
        o->field = c->field;                                                               \
    } while (0)
    SAME(OPT_BATCH, "--batch", "%d", batch);
    SAME(OPT_HIDDEN, "--hidden", "%d", hidden);
    SAME(OPT_LR, "--lr", "%g", lr);
    SAME(OPT_SCHED, "--lr-schedule", "%d", schedule);
    SAME(OPT_CLIP, "--clip", "%g", clip);
    SAME(OPT_INIT, "--init", "%d", init);
    SAME(OPT_SEED, "--seed", "%" PRIu64, seed);
    SAME(OPT_EPOCHS, "--epochs", "%d", epochs);
    SAME(OPT_STEPS, "--steps", "%ld", steps);
    SAME(OPT_DET, "--deterministic", "%d", deterministic);
#undef SAME
    if (a->set[OPT_CLASSES] && o->classes != m->cfg.classes) {
        fprintf(stderr, "parlstm train: --classes %d differs from the checkpoint's %d\n",
                o->classes, m->cfg.classes);
        return EXIT_USAGE;
    }
    o->classes = m->cfg.classes;
    if (a->set[OPT_VAL] && a->val != m->val) {
        fprintf(stderr, "parlstm train: --val %lld differs from the checkpoint's %ld\n", a->val,
                m->val);
        return EXIT_USAGE;
    }
    a->val = m->val;
    if (!a->set[OPT_WORKERS])
        o->workers = c->workers;
    if (!a->set[OPT_THREADS])
        o->threads = c->threads;
    if (!a->set[OPT_GEMM])
        o->gemm = c->gemm;
    if (!o->deterministic && !a->quiet &&
        (o->workers != c->workers || o->threads != c->threads || o->gemm != c->gemm))
        fprintf(stderr, "parlstm train: note: the checkpoint ran %d x %d with %s GEMMs; other "
                "settings change the last bits of the result (use --deterministic for runs "
                "that must match bit for bit)\n", c->workers, c->threads, pl_gemm_name(c->gemm));
    *total = m->total;
    return 0;
}

static int write_checkpoint(const train_args *a, pl_trainer *tr, pl_ckpt_meta *meta, long step)
{
    pl_error err = {0};
    meta->step = step;
    if (pl_checkpoint_save(a->ckpt, tr, meta, &write_guard, &err)) {
        print_error("train", &err);
        return 1;
    }
    return 0;
}

int cmd_train(int argc, char **argv)
{
    const char *cmd = "train";
    train_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc < 0 ? 0 : rc;
    pl_train_opts *o = &a.o;
    pl_error err = {0};
    pl_ckpt_meta resumed;
    long total = 0, start = 0;
    float *state = NULL;
    if (a.resume) {
        if (pl_checkpoint_load(a.resume, &resumed, &state, &err)) {
            print_error(cmd, &err);
            return 1;
        }
        if ((rc = adopt_checkpoint(&a, &resumed, &total))) {
            pl_free(state);
            return rc;
        }
        start = resumed.step;
    }
    const char *outputs[2] = {a.save, a.ckpt};
    for (int i = 0; i < 2; i++)
        if (outputs[i] && pl_check_writable(outputs[i], &err)) {
            print_error(cmd, &err);
            pl_free(state);
            return 1;
        }
    if (pl_gemm_resolve(o->gemm) == PL_GEMM_BLAS)
        cli_fix_openblas();

    pl_dataset all, test;
    int have_test;
    if ((rc = cli_load_data(cmd, a.data, o->classes, 1, &all, &test, &have_test))) {
        pl_free(state);
        return rc;
    }
    rc = 1;
    pl_trainer *tr = NULL;
    uint32_t *order = NULL;
    pl_dataset valset, trainset;
    if (pl_dataset_split(&all, (size_t)a.val, &trainset, &valset, &err)) {
        fprintf(stderr, "parlstm train: --val %lld: %s\n", a.val, err.msg);
        rc = EXIT_USAGE;
        goto out;
    }
    long spe = (long)(trainset.n / (size_t)o->batch);
    if (spe < 1) {
        fprintf(stderr, "parlstm train: --batch %d is larger than the %zu training images\n",
                o->batch, trainset.n);
        rc = EXIT_USAGE;
        goto out;
    }
    /* --steps alone runs that many steps, over as many epochs as it takes;
     * with --epochs it stops early */
    if (!a.resume) {
        total = spe * o->epochs;
        if (o->steps > 0 && (!a.set[OPT_EPOCHS] || o->steps < total))
            total = o->steps;
    }
    pl_config cfg = {all.D, o->hidden, all.classes, 1};
    uint32_t data_crc = (a.resume || a.ckpt) ? pl_dataset_crc(&trainset) : 0;
    if (a.resume && (resumed.cfg.input != cfg.input || resumed.T != all.T ||
                     resumed.n_train != trainset.n || resumed.data_crc != data_crc)) {
        fprintf(stderr, "parlstm train: %s was made on other data: %" PRIu64 " training images of "
                "%dx%d (CRC32 %08x), %s has %zu of %dx%d (CRC32 %08x)\n", a.resume,
                resumed.n_train, resumed.T, resumed.cfg.input, resumed.data_crc, a.data,
                trainset.n, all.T, all.D, data_crc);
        goto out;
    }
    if (!(tr = pl_trainer_create(&cfg, all.T, o, &err))) {
        print_error(cmd, &err);
        rc = err.code == PL_ERR_ARG || err.code == PL_ERR_TOO_LARGE ? EXIT_USAGE : 1;
        goto out;
    }
    const char *fault = getenv("PARLSTM_FAULT"); /* "STEP,GROUP": a NaN, for tests */
    long fault_step;
    int fault_group;
    if (fault && sscanf(fault, "%ld,%d", &fault_step, &fault_group) == 2)
        pl_trainer_set_fault(tr, fault_step, fault_group);
    size_t np = pl_param_count(&cfg);
    if (state) {
        memcpy(pl_trainer_params(tr), state, sizeof(float) * np);
        memcpy(pl_trainer_moment1(tr), state + np, sizeof(float) * np);
        memcpy(pl_trainer_moment2(tr), state + 2 * np, sizeof(float) * np);
        pl_trainer_set_adam_steps(tr, resumed.adam_steps);
    }
    if (!(order = malloc(sizeof *order * trainset.n))) {
        fprintf(stderr, "parlstm train: out of memory\n");
        goto out;
    }
    pl_ckpt_meta meta = {.cfg = cfg, .T = all.T, .opts = *pl_trainer_opts(tr), .total = total,
                         .val = (long)a.val, .n_train = trainset.n, .data_crc = data_crc};
    if (a.ckpt) {
        int stale = pl_remove_stale_temporaries(a.ckpt);
        if (stale && !a.quiet)
            fprintf(stderr, "parlstm train: removed %d unfinished temporary file%s beside %s "
                    "(left by a killed run)\n", stale, stale == 1 ? "" : "s", a.ckpt);
    }
    if (!a.quiet) {
        fprintf(stderr,
                "parlstm train: %zu training, %zu validation, %zu test images of %dx%d, %d classes\n"
                "parlstm train: model %d-%d-%d (%zu parameters); %ld steps of %d (%ld per epoch); "
                "lr %g %s, clip %g, init %s, seed %llu%s\n"
                "parlstm train: %d worker%s x %d thread%s, GEMM %s%s%s%s\n",
                trainset.n, valset.n, have_test ? test.n : 0, all.T, all.D, all.classes,
                cfg.input, cfg.hidden, cfg.classes, np, total, o->batch, spe,
                o->lr, o->schedule == PL_SCHED_COSINE ? "cosine" : "constant", o->clip,
                o->init == PL_INIT_TUTORIAL ? "tutorial" : "default",
                (unsigned long long)o->seed, o->deterministic ? ", deterministic" : "",
                pl_trainer_workers(tr), pl_trainer_workers(tr) == 1 ? "" : "s",
                pl_trainer_threads(tr), pl_trainer_threads(tr) == 1 ? "" : "s",
                pl_gemm_name(pl_gemm_resolve(o->gemm)),
                pl_gemm_resolve(o->gemm) == PL_GEMM_BLAS ? " (OpenBLAS core " : "",
                pl_gemm_resolve(o->gemm) == PL_GEMM_BLAS ? pl_blas_corename() : "",
                pl_gemm_resolve(o->gemm) == PL_GEMM_BLAS ? ")" : "");
        if (a.resume)
            fprintf(stderr, "parlstm train: resuming %s at step %ld of %ld\n", a.resume, start,
                    total);
    }
    install_handlers();

    double train_seconds = 0, win_loss = 0, last_loss = NAN, val_acc = NAN, test_acc = NAN;
    long win_steps = 0, win_correct = 0, win_rows = 0, step;
    double t_win = pl_seconds();
    for (step = start; step < total && !stop_signal; step++) {
        long epoch = step / spe, pos = step % spe;
        if (pos == 0 || step == start)
            pl_epoch_order(o->seed, epoch, order, trainset.n);
        pl_step_stats st;
        double t0 = pl_seconds();
        if (pl_trainer_step(tr, &trainset, order + pos * o->batch, o->batch, step, total, &st,
                            &err)) {
            fprintf(stderr, "parlstm train: step %ld: %s\n", step + 1, err.msg);
            if (a.ckpt && access(a.ckpt, F_OK) == 0)
                fprintf(stderr, "parlstm train: the last good checkpoint is %s (resume with "
                        "--resume %s)\n", a.ckpt, a.ckpt);
            goto out;
        }
        train_seconds += pl_seconds() - t0;
        win_loss += st.loss;
        win_correct += st.correct;
        win_rows += o->batch;
        win_steps++;
        if ((step + 1) % a.log_every == 0 || step + 1 == total) {
            last_loss = win_loss / win_steps;
            double now = pl_seconds();
            if (!a.quiet) {
                char eta[32];
                double rate = win_rows / (now - t_win);
                format_duration((total - step - 1) * (double)o->batch / rate, eta, sizeof eta);
                fprintf(stderr,
                        "step %*ld/%ld  epoch %ld  loss %.4f  accuracy %.4f  %.0f samples/s  eta %s\n",
                        (int)snprintf(NULL, 0, "%ld", total), step + 1, total, epoch + 1,
                        last_loss, (double)win_correct / win_rows, rate, eta);
            }
            win_loss = 0;
            win_steps = win_correct = win_rows = 0;
            t_win = now;
        }
        if (a.ckpt && ((step + 1) % a.ckpt_every == 0 || step + 1 == total) &&
            write_checkpoint(&a, tr, &meta, step + 1))
            goto out;
        if ((pos + 1 == spe || step + 1 == total) && valset.n > 0 && !stop_signal) {
            double t0v = pl_seconds(), vl;
            if (pl_trainer_evaluate(tr, &valset, &val_acc, &vl, &err)) {
                print_error(cmd, &err);
                goto out;
            }
            if (!a.quiet)
                fprintf(stderr, "epoch %ld: validation accuracy %.4f, loss %.4f (%zu images, %.1fs)\n",
                        epoch + 1, val_acc, vl, valset.n, pl_seconds() - t0v);
            t_win += pl_seconds() - t0v;
        }
    }
    if (stop_signal) {
        int sig = stop_signal;
        if (a.ckpt) {
            if (step % a.ckpt_every != 0 && write_checkpoint(&a, tr, &meta, step))
                goto out;
            fprintf(stderr, "parlstm train: %s after step %ld of %ld; the state is in %s\n"
                    "parlstm train: resume with: parlstm train --resume %s --checkpoint %s%s%s\n",
                    sig == SIGINT ? "interrupted" : "terminated", step, total, a.ckpt, a.ckpt,
                    a.ckpt, strcmp(a.data, "data/mnist") ? " --data " : "",
                    strcmp(a.data, "data/mnist") ? a.data : "");
        } else {
            fprintf(stderr, "parlstm train: %s after step %ld of %ld; nothing saved (no "
                    "--checkpoint FILE given)\n", sig == SIGINT ? "interrupted" : "terminated",
                    step, total);
        }
        rc = 128 + sig;
        goto out;
    }
    if (have_test) {
        double tl;
        if (pl_trainer_evaluate(tr, &test, &test_acc, &tl, &err)) {
            print_error(cmd, &err);
            goto out;
        }
        if (!a.quiet)
            fprintf(stderr, "test accuracy %.4f, loss %.4f (%zu images)\n", test_acc, tl, test.n);
    }
    if (a.save) {
        pl_model_info mi = {.cfg = cfg, .T = all.T};
        if (pl_model_save(a.save, &mi, pl_trainer_params(tr), &write_guard, &err)) {
            print_error(cmd, &err);
            goto out;
        }
        if (!a.quiet)
            fprintf(stderr, "saved the model to %s\n", a.save);
    }
    printf("result: steps=%ld train_loss=%.4f val_accuracy=%.4f test_accuracy=%.4f "
           "seconds=%.1f samples_per_sec=%.0f workers=%d threads=%d gemm=%s seed=%llu\n",
           total, last_loss, val_acc, test_acc, train_seconds,
           (total - start) * (double)o->batch / train_seconds, pl_trainer_workers(tr),
           pl_trainer_threads(tr), pl_gemm_name(pl_gemm_resolve(o->gemm)),
           (unsigned long long)o->seed);
    fflush(stdout);
    rc = 0;
out:
    pl_free(state);
    free(order);
    pl_trainer_free(tr);
    pl_dataset_free(&all);
    pl_dataset_free(&test);
    return rc;
}
