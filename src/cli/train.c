/* parlstm train: options, data, the step loop with progress, evaluation,
 * the result line and --save.
 *
 * cmd_train runs these stages in order, each of which prints what went
 * wrong and returns an exit code:
 *   parse_args     the option table's values, --tutorial, combinations
 *   check_outputs  --save, --checkpoint, --log: distinct and writable
 *   resume_setup   --resume: the checkpoint's run, adopted
 *   init_setup     --init-from: the model, its shapes adopted
 *   data_setup     the data, the validation split, the planned steps
 *   init_check     --init-from: its shapes against the data
 *   trainer_setup  the trainer, the resumed or initial state, the epoch
 *                  order, the log
 *   train_loop     the steps, with progress, log rows, checkpoints and
 *                  validation
 *   finish         after a signal: the checkpoint; otherwise the test set,
 *                  --save (or a rescue file when it cannot be written) and
 *                  the result line
 * With several ranks (mpirun, srun) every rank runs them: each reads the
 * data itself, the ranks agree after each stage that can fail on one of
 * them (cli_agree), the steps agree on stopping, and rank 0 alone writes
 * files, evaluates and prints (ranks.c). */
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char *const CMD = "train";

/* What the command line asked for. */
/* --train and the files that go with it (NULL: not given). */
typedef struct {
    const char *train, *train_labels, *train_lengths, *test, *test_labels, *test_lengths;
} series_files;

typedef struct {
    pl_train_opts o;
    const char *data, *save, *ckpt, *resume, *log, *init_from;
    series_files files;
    long long val, log_every, ckpt_every;
    int quiet, layers, test_every_epoch;
    int normalize;         /* pl_ckpt_meta.normalize: --normalize, or its default */
    pl_sequence sequence;  /* how images become sequences */
    int permuted;          /* --permute given */
    uint64_t permute_seed;
    double target;         /* --target-accuracy; 0: none */
    long long eval_every;  /* --eval-every; 0: after every epoch */
    int batch_rule;        /* the large-batch defaults taken: LB_LR | LB_WARMUP | LB_CLIP */
    cli_value v[O_COUNT];
} train_args;

/* A run: what the stages set up, freed by run_free. */
typedef struct {
    train_args a;
    pl_ckpt_meta resumed;  /* the checkpoint's run (--resume) */
    float *state;          /* its params, m, v */
    pl_dataset all, test, trainset, valset;
    int have_test;
    int rows, cols;        /* the images, before --sequence and --permute */
    pl_config cfg;
    pl_trainer *tr;
    uint32_t *order;       /* (trainset.n) the epoch's order */
    long spe, total, start; /* steps per epoch, planned, done before this run */
    pl_ckpt_meta meta;     /* what checkpoints record */
    float *norm_mean, *norm_std; /* (cols) --normalize standard's statistics */
    pl_model_info init;    /* --init-from: the model */
    float *init_params;    /* its parameters */
    cli_log log;           /* --log */
    double t_start;        /* when training started (pl_seconds) */
} run;

/* The step loop's accounts. */
typedef struct {
    long step;                /* the next step */
    double train_seconds;     /* in pl_trainer_step */
    double last_loss;         /* mean loss of the last log window */
    double val_acc, test_acc;
    double win_loss, t_win;   /* the current log window */
    double win_gnorm;         /* its summed gradient norms (before clipping) */
    float win_lr;             /* the rate of its last step */
    long win_steps, win_correct, win_rows;
    int stop;                 /* with several ranks: the stop signal they agreed on */
    long target_step;         /* steps done when validation reached --target-accuracy; 0: not */
    double time_to_target;    /* seconds from t_start to the end of that evaluation */
} progress;

/* ---- signals: the first asks to stop after the step, the second exits */
static volatile sig_atomic_t stop_signal;
/* the checkpoint or model write in progress, for the second signal */
static pl_write_guard write_guard;

static void on_signal(int sig)
{
    /* SIGUSR1, which mpirun forwards to every rank at once without killing
     * them, stops like SIGTERM */
    if (sig == SIGUSR1)
        sig = SIGTERM;
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
    /* a file-size limit makes a write fail (EFBIG, reported, the model
     * rescued) instead of killing the program */
    signal(SIGXFSZ, SIG_IGN);
    sigaction(SIGUSR1, &sa, NULL);
}

/* The signal to stop for: with several ranks, the one they agreed on at the
 * last step (so that all stop after the same step). */
static int stopping(const progress *p)
{
    return pl_dist_ranks() > 1 ? p->stop : stop_signal;
}

/* ---- options */

/* --tutorial sets three options; giving one of them otherwise contradicts it. */
static int apply_tutorial(train_args *a)
{
    pl_train_opts *o = &a->o;
    cli_value *v = a->v;
    if ((v[O_INIT].set && o->init != PL_INIT_TUTORIAL) ||
        (v[O_SCHEDULE].set && o->schedule != PL_SCHED_CONSTANT) ||
        (v[O_CLIP].set && o->clip != 0)) {
        fprintf(stderr, "parlstm train: --tutorial means --init tutorial --lr-schedule constant "
                "--clip 0; drop the option that contradicts it\n");
        return EXIT_USAGE;
    }
    o->init = PL_INIT_TUTORIAL;
    o->schedule = PL_SCHED_CONSTANT;
    o->clip = 0;
    v[O_INIT].set = v[O_SCHEDULE].set = v[O_CLIP].set = 1;
    return 0;
}

/* The defaults that follow the batch above LARGE_BATCH images, each taken
 * only when its option is not given (nor --tutorial, nor --lr-scaling for
 * the rate): with r = log2(batch / LARGE_BATCH), the peak rate 0.01 (the
 * default) x (1 + r), 20 r warm-up steps and clipping at 1 / (1 + 3 r): at batch 1,000
 * lr 0.02, 20 steps, clip 0.25. Chosen by measurement, 3 epochs of MNIST
 * rows (README: "Large batches"); up to 500 the plain defaults were as good
 * or better. */
#define LARGE_BATCH 500
enum { LB_LR = 1, LB_WARMUP = 2, LB_CLIP = 4 };

static void large_batch_defaults(train_args *a)
{
    pl_train_opts *o = &a->o;
    const cli_value *v = a->v;
    if (o->batch <= LARGE_BATCH || v[O_TUTORIAL].set)
        return;
    const double r = log2((double)o->batch / LARGE_BATCH);
    if (!v[O_LR].set && !v[O_LR_SCALING].set) {
        o->lr = (float)(o->lr * (1 + r)); /* the option's default, 0.01 */
        a->batch_rule |= LB_LR;
    }
    if (!v[O_LR_WARMUP].set) {
        o->warmup = lround(20 * r);
        a->batch_rule |= LB_WARMUP;
    }
    if (!v[O_CLIP].set) {
        o->clip = (float)(1 / (1 + 3 * r));
        a->batch_rule |= LB_CLIP;
    }
}

/* --dropout acts between stacked layers: 0, or EXIT_USAGE after saying so. */
static int dropout_needs_layers(const train_args *a)
{
    if (a->o.dropout == 0 || a->layers >= 2)
        return 0;
    fprintf(stderr, "parlstm train: --dropout %g acts between stacked layers, and there is "
            "one (add --layers 2 or more, or drop --dropout)\n", (double)a->o.dropout);
    return EXIT_USAGE;
}

/* --train's company: its files only with it, and not with what only
 * images have. */
static int check_series_args(const train_args *a)
{
    const series_files *f = &a->files;
    const cli_value *v = a->v;
    const char *needs_train = f->train_labels ? "--train-labels" : f->train_lengths
                              ? "--train-lengths" : f->test ? "--test" : f->test_labels
                              ? "--test-labels" : f->test_lengths ? "--test-lengths" : NULL;
    if (!f->train && needs_train) {
        fprintf(stderr, "parlstm train: %s goes with --train FILE (the training sequences)\n",
                needs_train);
        return EXIT_USAGE;
    }
    if ((f->test_labels || f->test_lengths) && !f->test) {
        fprintf(stderr, "parlstm train: %s goes with --test FILE\n",
                f->test_labels ? "--test-labels" : "--test-lengths");
        return EXIT_USAGE;
    }
    if (!f->train && a->normalize && v[O_NORMALIZE].set) {
        fprintf(stderr, "parlstm train: --normalize standard is for --train's sequences of "
                "values; IDX images are scaled by 1/255 (drop the option)\n");
        return EXIT_USAGE;
    }
    if (!f->train)
        return 0;
    const cli_opt_id images_only[] = {O_DATA, O_CLASSES, O_PERMUTE};
    const char *const names[] = {"--data", "--classes", "--permute"};
    for (int i = 0; i < 3; i++)
        if (v[images_only[i]].set) {
            fprintf(stderr, "parlstm train: %s is for IDX images, not --train's sequences%s\n",
                    names[i], images_only[i] == O_CLASSES ? " (their labels give the classes)"
                                                          : "");
            return EXIT_USAGE;
        }
    return 0;
}

/* The option table's values into a->o and a's other fields. */
static void take_values(train_args *a)
{
    const cli_value *v = a->v;
    pl_train_opts *o = &a->o;
    pl_train_opts_default(o);
    o->classes = (int)v[O_CLASSES].i;
    o->epochs = (int)v[O_EPOCHS].i;
    o->steps = (long)v[O_STEPS].i;
    o->batch = (int)v[O_BATCH].i;
    o->hidden = (int)v[O_HIDDEN].i;
    o->lr = (float)v[O_LR].x;
    o->schedule = v[O_SCHEDULE].i == 0 ? PL_SCHED_COSINE : PL_SCHED_CONSTANT;
    o->warmup = (long)v[O_LR_WARMUP].i;
    o->lr_scaling = (pl_lr_scaling)v[O_LR_SCALING].i;
    o->weight_decay = (float)v[O_WEIGHT_DECAY].x;
    o->optimizer = (pl_optimizer)v[O_OPTIMIZER].i;
    o->clip = (float)v[O_CLIP].x;
    o->init = (pl_init)v[O_INIT].i; /* INITS is in pl_init's order */
    o->seed = v[O_SEED].u;
    o->workers = (int)v[O_WORKERS].i;
    o->threads = (int)v[O_THREADS].i;
    o->pin = (int)v[O_PIN].i;
    o->gemm = (pl_gemm_backend)v[O_GEMM].i;
    o->precision = (pl_precision)v[O_PRECISION].i;
    o->deterministic = (int)v[O_DET].i;
    o->dropout = (float)v[O_DROPOUT].x;
    a->layers = (int)v[O_LAYERS].i;
    a->test_every_epoch = (int)v[O_TEST_EVERY_EPOCH].i;
    a->normalize = v[O_NORMALIZE].set ? (int)v[O_NORMALIZE].i : v[O_TRAIN_FILE].text != NULL;
    a->sequence = (pl_sequence)v[O_SEQUENCE].i;
    a->permuted = v[O_PERMUTE].set;
    a->permute_seed = v[O_PERMUTE].u;
    a->data = v[O_DATA].text;
    a->files = (series_files){v[O_TRAIN_FILE].text,  v[O_TRAIN_LABELS].text,
                              v[O_TRAIN_LENGTHS].text, v[O_TEST_FILE].text,
                              v[O_TEST_LABELS].text, v[O_TEST_LENGTHS].text};
    a->save = v[O_SAVE].text;
    a->ckpt = v[O_CKPT].text;
    a->resume = v[O_RESUME].text;
    a->log = v[O_LOG].text;
    a->init_from = v[O_INIT_FROM].text;
    a->val = v[O_VAL].i;
    a->log_every = v[O_LOG_EVERY].i;
    a->ckpt_every = v[O_CKPT_EVERY].i;
    a->quiet = (int)v[O_QUIET].i;
    a->target = v[O_TARGET_ACC].set ? v[O_TARGET_ACC].x : 0;
    a->eval_every = v[O_EVAL_EVERY].set ? v[O_EVAL_EVERY].i : 0;
}

/* The decay's factor 1 - rate x decay stays above 0 at the peak rate: 0,
 * or EXIT_USAGE after saying so. */
static int decay_fits_rate(const train_args *a)
{
    const double peak = pl_lr_peak(&a->o), decay = a->o.weight_decay;
    if (peak * decay < 1)
        return 0;
    fprintf(stderr, "parlstm train: --weight-decay %g at a peak rate of %g multiplies the "
            "parameters by %g at the peak: rate x decay must be below 1\n", decay, peak,
            1 - peak * decay);
    return EXIT_USAGE;
}

/* Returns 0, -1 after --help, or an exit code. */
static int parse_args(int argc, char **argv, train_args *a)
{
    memset(a, 0, sizeof *a);
    cli_value *v = a->v;
    cli_with_preset(argc, argv, &argc, &argv);
    int rc = cli_parse(CMD_TRAIN, argc, argv, v);
    if (rc)
        return rc;
    take_values(a);
    if ((rc = check_series_args(a)))
        return rc;
    const pl_train_opts *o = &a->o;
    if (v[O_TUTORIAL].set && (rc = apply_tutorial(a)))
        return rc;
    large_batch_defaults(a);
    if ((rc = decay_fits_rate(a)))
        return rc;
    if (o->workers > o->batch) {
        fprintf(stderr, "parlstm train: --workers %d is more than --batch %d: every worker needs "
                "at least one image\n", o->workers, o->batch);
        return EXIT_USAGE;
    }
    if (!a->init_from && (rc = dropout_needs_layers(a))) /* --init-from: once it has said */
        return rc;
    if (a->init_from && a->resume) {
        fprintf(stderr, "parlstm train: --init-from and --resume both say where the parameters "
                "come from: a resumed run continues from its checkpoint (drop one)\n");
        return EXIT_USAGE;
    }
    if (v[O_CKPT_EVERY].set && !a->ckpt) {
        fprintf(stderr, "parlstm train: --checkpoint-every needs --checkpoint FILE\n");
        return EXIT_USAGE;
    }
    return 0;
}

/* A resumed run keeps the options that shape its trajectory: those given
 * again must agree with the checkpoint's, the others are taken from it.
 * Returns 0 or prints and returns 2. */
static int adopt_options(train_args *a, const pl_train_opts *c)
{
    pl_train_opts *o = &a->o;
    char mine[64], theirs[64];
/* a differing value is shown as shown(value) prints it */
#define SAME_AS(opt, name, fmt, field, shown)                                              \
    do {                                                                                   \
        if (a->v[opt].set && o->field != c->field) {                                       \
            snprintf(mine, sizeof mine, fmt, shown(o->field));                             \
            snprintf(theirs, sizeof theirs, fmt, shown(c->field));                         \
            fprintf(stderr, "parlstm train: %s %s differs from the checkpoint's %s: a "   \
                    "resumed run keeps its settings (drop the option)\n", name, mine,      \
                    theirs);                                                               \
            return EXIT_USAGE;                                                             \
        }                                                                                  \
        o->field = c->field;                                                               \
    } while (0)
#define AS_IS(x) (x)
#define SAME(opt, name, fmt, field) SAME_AS(opt, name, fmt, field, AS_IS)
#define SCHEDULE_WORD(x) cli_word(O_SCHEDULE, x)
#define INIT_WORD(x) cli_word(O_INIT, x)
#define SCALING_WORD(x) cli_word(O_LR_SCALING, x)
#define PRECISION_WORD(x) cli_word(O_PRECISION, x)
#define OPTIMIZER_WORD(x) cli_word(O_OPTIMIZER, x)
    SAME(O_BATCH, "--batch", "%d", batch);
    SAME(O_HIDDEN, "--hidden", "%d", hidden);
    SAME(O_LR, "--lr", "%g", lr);
    SAME_AS(O_SCHEDULE, "--lr-schedule", "%s", schedule, SCHEDULE_WORD);
    SAME(O_CLIP, "--clip", "%g", clip);
    SAME_AS(O_INIT, "--init", "%s", init, INIT_WORD);
    SAME(O_SEED, "--seed", "%" PRIu64, seed);
    SAME(O_EPOCHS, "--epochs", "%d", epochs);
    SAME(O_STEPS, "--steps", "%ld", steps);
    SAME(O_DET, "--deterministic", "%d", deterministic);
    SAME(O_DROPOUT, "--dropout", "%g", dropout);
    SAME(O_LR_WARMUP, "--lr-warmup", "%ld", warmup);
    SAME(O_WEIGHT_DECAY, "--weight-decay", "%g", weight_decay);
    SAME_AS(O_LR_SCALING, "--lr-scaling", "%s", lr_scaling, SCALING_WORD);
    SAME_AS(O_PRECISION, "--precision", "%s", precision, PRECISION_WORD);
    SAME_AS(O_OPTIMIZER, "--optimizer", "%s", optimizer, OPTIMIZER_WORD);
#undef OPTIMIZER_WORD
#undef PRECISION_WORD
#undef SCALING_WORD
#undef INIT_WORD
#undef SCHEDULE_WORD
#undef SAME
#undef AS_IS
#undef SAME_AS
    return 0;
}

/* A resumed run keeps its settings (adopt_options), its model and its
 * reading of the data. Returns 0 or prints and returns 2. */
static int adopt_checkpoint(train_args *a, const pl_ckpt_meta *m)
{
    pl_train_opts *o = &a->o;
    const pl_train_opts *c = &m->opts;
    int rc = adopt_options(a, c);
    if (rc)
        return rc;
    /* the model and the data's reading */
    const char *const seqs[] = {"rows", "pixels"};
    if (a->v[O_LAYERS].set && a->layers != m->cfg.layers) {
        fprintf(stderr, "parlstm train: --layers %d differs from the checkpoint's %d: a resumed "
                "run keeps its settings (drop the option)\n", a->layers, m->cfg.layers);
        return EXIT_USAGE;
    }
    if (a->v[O_SEQUENCE].set && a->sequence != m->sequence) {
        fprintf(stderr, "parlstm train: --sequence %s differs from the checkpoint's %s: a "
                "resumed run keeps its settings (drop the option)\n", seqs[a->sequence],
                seqs[m->sequence]);
        return EXIT_USAGE;
    }
    if (a->v[O_PERMUTE].set && (!m->permuted || a->permute_seed != m->permute_seed)) {
        fprintf(stderr, "parlstm train: --permute %" PRIu64 " differs from the checkpoint's %s: "
                "a resumed run keeps its settings (drop the option)\n", a->permute_seed,
                m->permuted ? "seed" : "order (not permuted)");
        return EXIT_USAGE;
    }
    if (a->v[O_NORMALIZE].set && a->normalize != m->normalize) {
        fprintf(stderr, "parlstm train: --normalize %s differs from the checkpoint's %s: a "
                "resumed run keeps its settings (drop the option)\n",
                cli_word(O_NORMALIZE, a->normalize), cli_word(O_NORMALIZE, m->normalize));
        return EXIT_USAGE;
    }
    a->normalize = m->normalize;
    a->layers = m->cfg.layers;
    a->sequence = m->sequence;
    a->permuted = m->permuted;
    a->permute_seed = m->permute_seed;
    if (a->v[O_CLASSES].set && o->classes != m->cfg.classes) {
        fprintf(stderr, "parlstm train: --classes %d differs from the checkpoint's %d\n",
                o->classes, m->cfg.classes);
        return EXIT_USAGE;
    }
    o->classes = m->cfg.classes;
    if (a->v[O_VAL].set && a->val != m->val) {
        fprintf(stderr, "parlstm train: --val %lld differs from the checkpoint's %ld\n", a->val,
                m->val);
        return EXIT_USAGE;
    }
    a->val = m->val;
    if (!a->v[O_WORKERS].set)
        o->workers = c->workers;
    if (!a->v[O_THREADS].set)
        o->threads = c->threads;
    if (!a->v[O_GEMM].set)
        o->gemm = c->gemm;
    if (!o->deterministic && !a->quiet &&
        (o->workers != c->workers || o->threads != c->threads || o->gemm != c->gemm))
        fprintf(stderr, "parlstm train: note: the checkpoint ran %d x %d with %s GEMMs; other "
                "settings change the last bits of the result (use --deterministic for runs "
                "that must match bit for bit)\n", c->workers, c->threads, pl_gemm_name(c->gemm));
    return 0;
}

/* ---- the stages before training */

static int resume_setup(run *r)
{
    pl_error err = {0};
    if (!r->a.resume)
        return 0;
    if (pl_checkpoint_load(r->a.resume, &r->resumed, &r->state, &err)) {
        print_error(CMD, &err);
        return 1;
    }
    r->start = r->resumed.step;
    r->total = r->resumed.total;
    return adopt_checkpoint(&r->a, &r->resumed);
}

/* The model and the checkpoint go to different files, and each can be
 * written there; a model over the checkpoint being resumed is refused too. */
static int check_outputs(const train_args *a)
{
    const char *name = NULL, *other = NULL;
    if (cli_same_file(a->save, a->ckpt)) {
        name = "--checkpoint";
        other = a->ckpt;
    } else if (cli_same_file(a->save, a->resume)) {
        name = "--resume";
        other = a->resume;
    }
    if (name) {
        fprintf(stderr, "parlstm train: --save %s and %s %s are the same file: the model would "
                "overwrite the checkpoint (give --save a file of its own)\n", a->save, name,
                other);
        return EXIT_USAGE;
    }
    /* the log is written from the start: it must not replace another file */
    const char *others[4] = {a->save, a->ckpt, a->resume, a->init_from};
    const char *other_names[4] = {"--save", "--checkpoint", "--resume", "--init-from"};
    for (int i = 0; i < 4; i++)
        if (cli_same_file(a->log, others[i])) {
            fprintf(stderr, "parlstm train: --log %s and %s %s are the same file (give --log a "
                    "file of its own)\n", a->log, other_names[i], others[i]);
            return EXIT_USAGE;
        }
    pl_error err = {0};
    const char *outputs[3] = {a->save, a->ckpt, a->log};
    for (int i = 0; i < 3; i++)
        if (outputs[i] && pl_check_writable(outputs[i], &err)) {
            print_error(CMD, &err);
            return 1;
        }
    return 0;
}

/* --train FILE (and --test FILE) into r->all (and r->test); without --val,
 * a tenth of the sequences are held out for validation. */
static int load_series(run *r)
{
    const series_files *f = &r->a.files;
    pl_error err = {0};
    if (pl_dataset_load_series(&r->all, f->train, f->train_labels, f->train_lengths, NULL,
                               &err)) {
        print_error(CMD, &err);
        return 1;
    }
    if (f->test && pl_dataset_load_series(&r->test, f->test, f->test_labels, f->test_lengths,
                                          &r->all, &err)) {
        print_error(CMD, &err);
        return 1;
    }
    if (f->test && (r->test.T != r->all.T || r->test.D != r->all.D)) {
        fprintf(stderr, "parlstm train: %s holds sequences of %d steps x %d, %s of %d x %d\n",
                f->test, r->test.T, r->test.D, f->train, r->all.T, r->all.D);
        return 1;
    }
    r->have_test = f->test != NULL;
    if (!r->a.v[O_VAL].set)
        r->a.val = (long long)(r->all.n / 10);
    return 0;
}

/* --normalize standard: each feature's mean and standard deviation over
 * the training split (r->trainset, after --val is held out), applied to
 * the whole set (validation included) and the test set. A resumed run
 * gets here with the checkpoint's setting and the same split, and so
 * recomputes the same statistics (its data CRC, over the standardised
 * training values, says so). */
static int standardize(run *r)
{
    pl_error err = {0};
    const char *const *names = pl_dataset_class_names(&r->all);
    for (int c = 0; names && c < r->all.classes; c++)
        if (strlen(names[c]) > PL_MAX_CLASS_NAME) {
            fprintf(stderr, "parlstm train: %s: class %d's name is %zu bytes long; a model "
                    "keeps names of up to %d\n", r->a.files.train, c, strlen(names[c]),
                    PL_MAX_CLASS_NAME);
            return 1;
        }
    if (!r->a.normalize || !r->all.values)
        return 0;
    r->norm_mean = malloc(sizeof(float) * (size_t)r->cols);
    r->norm_std = malloc(sizeof(float) * (size_t)r->cols);
    if (!r->norm_mean || !r->norm_std) {
        fprintf(stderr, "parlstm train: out of memory\n");
        return 1;
    }
    if (pl_dataset_norm_stats(&r->trainset, r->cols, r->norm_mean, r->norm_std, &err) ||
        pl_dataset_standardize(&r->all, r->cols, r->norm_mean, r->norm_std, &err) ||
        (r->have_test &&
         pl_dataset_standardize(&r->test, r->cols, r->norm_mean, r->norm_std, &err))) {
        print_error(CMD, &err);
        return 1;
    }
    return 0;
}

static int data_setup(run *r)
{
    train_args *a = &r->a;
    pl_error err = {0};
    int rc = a->files.train ? load_series(r)
                            : cli_load_data(CMD, a->data, a->o.classes, 1, &r->all, &r->test,
                                            &r->have_test);
    if (rc)
        return rc;
    r->rows = r->all.T;
    r->cols = r->all.D;
    if ((rc = cli_read_as(CMD, &r->all, a->sequence, a->permuted, a->permute_seed)) ||
        (r->have_test &&
         (rc = cli_read_as(CMD, &r->test, a->sequence, a->permuted, a->permute_seed))))
        return rc;
    if (pl_dataset_split(&r->all, (size_t)a->val, &r->trainset, &r->valset, &err)) {
        fprintf(stderr, "parlstm train: --val %lld: %s\n", a->val, err.msg);
        return EXIT_USAGE;
    }
    if ((rc = standardize(r)))
        return rc;
    if (a->target > 0 && r->valset.n == 0) {
        fprintf(stderr, "parlstm train: --target-accuracy %g is measured on the validation "
                "images, and --val 0 holds none out (give --val N)\n", a->target);
        return EXIT_USAGE;
    }
    r->spe = (long)(r->trainset.n / (size_t)a->o.batch);
    if (r->spe < 1) {
        fprintf(stderr, "parlstm train: --batch %d is larger than the %zu training images\n",
                a->o.batch, r->trainset.n);
        return EXIT_USAGE;
    }
    /* --steps alone runs that many steps, over as many epochs as it takes;
     * with --epochs it stops early */
    if (!a->resume) {
        r->total = r->spe * a->o.epochs;
        if (a->o.steps > 0 && (!a->v[O_EPOCHS].set || a->o.steps < r->total))
            r->total = a->o.steps;
    }
    r->cfg = (pl_config){r->all.D, a->o.hidden, r->all.classes, a->layers};
    return 0;
}

/* What a model file of this run records: its shapes and how it reads
 * images. */
static pl_model_info run_model_info(const run *r)
{
    const train_args *a = &r->a;
    return (pl_model_info){.cfg = r->cfg, .T = r->all.T, .rows = r->rows, .cols = r->cols,
                           .sequence = a->sequence, .permuted = a->permuted,
                           .permute_seed = a->permute_seed, .dropout = a->o.dropout,
                           .input = r->all.values ? PL_INPUT_VALUES : PL_INPUT_IMAGES,
                           .features = r->norm_mean ? r->cols : 0, .norm_mean = r->norm_mean,
                           .norm_std = r->norm_std,
                           .class_names = (char **)pl_dataset_class_names(&r->all),
                           .precision = a->o.precision};
}

/* --init-from: the model, and the options it decides when they are not
 * given (--hidden, --layers, --sequence, --permute); given ones must agree
 * with it. */
static int init_setup(run *r)
{
    train_args *a = &r->a;
    if (!a->init_from)
        return 0;
    pl_error err = {0};
    if (pl_model_read(a->init_from, &r->init, &r->init_params, &err)) {
        fprintf(stderr, "parlstm train: --init-from %s\n", err.msg); /* the message names it */
        return 1;
    }
    const pl_config *c = &r->init.cfg;
    if (a->v[O_HIDDEN].set && a->o.hidden != c->hidden) {
        fprintf(stderr, "parlstm train: --init-from %s: its input.weight is %d x %d, %d hidden "
                "units; --hidden says %d\n", a->init_from, c->hidden, c->input, c->hidden,
                a->o.hidden);
        return EXIT_USAGE;
    }
    if (a->v[O_CLASSES].set && a->o.classes != c->classes) {
        fprintf(stderr, "parlstm train: --init-from %s: its output.weight is %d x %d, %d "
                "classes; --classes says %d\n", a->init_from, c->classes, c->hidden,
                c->classes, a->o.classes);
        return EXIT_USAGE;
    }
    a->o.hidden = c->hidden;
    if (a->v[O_LAYERS].set && a->layers != c->layers) {
        fprintf(stderr, "parlstm train: --init-from %s: it has %d LSTM layer%s "
                "(lstm.weight_ih_l0 to lstm.weight_ih_l%d); --layers says %d\n", a->init_from,
                c->layers, c->layers == 1 ? "" : "s", c->layers - 1, a->layers);
        return EXIT_USAGE;
    }
    a->layers = c->layers;
    const pl_model_info *m = &r->init;
    pl_model_info asked = {.sequence = a->sequence, .permuted = a->permuted,
                           .permute_seed = a->permute_seed};
    if ((a->v[O_SEQUENCE].set && a->sequence != m->sequence) ||
        (a->v[O_PERMUTE].set && (!m->permuted || a->permute_seed != m->permute_seed))) {
        char theirs[96], mine[96];
        fprintf(stderr, "parlstm train: --init-from %s: it reads its images %s; --sequence and "
                "--permute say %s\n", a->init_from, cli_reading(m, theirs, sizeof theirs),
                cli_reading(&asked, mine, sizeof mine));
        return EXIT_USAGE;
    }
    a->sequence = r->init.sequence; /* the model's reading, for the data */
    a->permuted = r->init.permuted;
    a->permute_seed = r->init.permute_seed;
    return dropout_needs_layers(a);
}

/* --init-from against the data (read as the model reads images): the
 * input width, the classes (the model may have more than the labels use),
 * the image shape. */
static int init_check(run *r)
{
    const pl_model_info *m = &r->init;
    const pl_config *c = &m->cfg;
    const char *f = r->a.init_from;
    pl_model_info want = run_model_info(r);
    if (!f)
        return 0;
    if (c->input != r->cfg.input) {
        fprintf(stderr, "parlstm train: --init-from %s: its input.weight is %d x %d, for rows "
                "of %d pixels; the images of %s have rows of %d\n", f, c->hidden, c->input,
                c->input, r->a.data, r->cfg.input);
        return 1;
    }
    if (c->classes < r->cfg.classes) {
        fprintf(stderr, "parlstm train: --init-from %s: its output.weight is %d x %d, %d "
                "classes; the labels of %s go up to %d\n", f, c->classes, c->hidden,
                c->classes, r->a.data, r->cfg.classes - 1);
        return 1;
    }
    r->cfg.classes = c->classes; /* labels that leave its last classes unused are fine */
    if (m->T > 0 && (m->rows != want.rows || m->cols != want.cols)) {
        fprintf(stderr, "parlstm train: --init-from %s: it reads images of %d rows x %d "
                "columns (%d time steps), the images of %s have %d x %d\n", f, m->rows,
                m->cols, m->T, r->a.data, want.rows, want.cols);
        return 1;
    }
    return 0;
}

/* A resumed run must continue on the data it was made on. */
static int same_data(const run *r, uint32_t data_crc)
{
    const pl_ckpt_meta *m = &r->resumed;
    if (m->cfg.input == r->cfg.input && m->T == r->all.T && m->n_train == r->trainset.n &&
        m->data_crc == data_crc)
        return 0;
    fprintf(stderr, "parlstm train: %s was made on other data: %" PRIu64 " training images of "
            "%dx%d (CRC32 %08x), %s has %zu of %dx%d (CRC32 %08x)\n", r->a.resume, m->n_train,
            m->T, m->cfg.input, m->data_crc, r->a.data, r->trainset.n, r->all.T, r->all.D,
            data_crc);
    return 1;
}

/* Every rank read its own copy of the data: the same one. */
static int same_data_everywhere(const run *r)
{
    if (pl_dist_ranks() == 1 || pl_dist_same(pl_dataset_crc(&r->all)))
        return 0;
    fprintf(stderr, "parlstm train: the ranks read different training data from %s (its CRC32 "
            "differs between ranks): every rank needs the same files\n", r->a.data);
    return 1;
}

static int trainer_setup(run *r)
{
    train_args *a = &r->a;
    pl_error err = {0};
    uint32_t data_crc = (a->resume || a->ckpt) ? pl_dataset_crc(&r->trainset) : 0;
    if (a->resume && same_data(r, data_crc))
        return 1;
    char what[128];
    snprintf(what, sizeof what, "building the model (%d layer%s of %d units: orthogonal "
             "initialisation by QR)", r->cfg.layers, r->cfg.layers == 1 ? "" : "s", r->cfg.hidden);
    cli_progress_start(CMD, what);
    r->tr = pl_trainer_create(&r->cfg, r->all.T, &a->o, &err);
    cli_progress_stop(a->quiet);
    if (!r->tr) {
        print_error(CMD, &err);
        return err.code == PL_ERR_ARG || err.code == PL_ERR_TOO_LARGE ? EXIT_USAGE : 1;
    }
    if (a->o.threads > pl_trainer_threads(r->tr) && !a->quiet)
        fprintf(stderr, "parlstm train: warning: --threads %d capped at %d: a thread owns whole "
                "16-unit gate panels, and %d units make %d\n", a->o.threads,
                pl_trainer_threads(r->tr), r->cfg.hidden, (r->cfg.hidden + 15) / 16);
    cli_test_hooks_trainer(r->tr, pl_dist_rank());
    pl_trainer_watch_stop(r->tr, &stop_signal);
    size_t np = pl_param_count(&r->cfg);
    if (r->state)
        pl_trainer_set_state(r->tr, r->state, r->resumed.adam_steps);
    else if (r->init_params) /* fine-tuning: Adam starts fresh (zero moments, t = 0) */
        memcpy(pl_trainer_params(r->tr), r->init_params, sizeof(float) * np);
    if (!(r->order = malloc(sizeof *r->order * r->trainset.n))) {
        fprintf(stderr, "parlstm train: out of memory\n");
        return 1;
    }
    r->meta = (pl_ckpt_meta){.cfg = r->cfg, .T = r->all.T, .opts = *pl_trainer_opts(r->tr),
                             .total = r->total, .val = (long)a->val, .n_train = r->trainset.n,
                             .data_crc = data_crc, .sequence = a->sequence,
                             .permuted = a->permuted, .permute_seed = a->permute_seed,
                             .normalize = a->normalize};
    if (a->ckpt && pl_dist_rank() == 0) {
        int stale = pl_remove_stale_temporaries(a->ckpt);
        if (stale && !a->quiet)
            fprintf(stderr, "parlstm train: removed %d unfinished temporary file%s beside %s "
                    "(left by a killed run)\n", stale, stale == 1 ? "" : "s", a->ckpt);
    }
    /* a resumed run continues its log; the log is rank 0's, as every file */
    return a->log && pl_dist_rank() == 0 ? cli_log_open(&r->log, a->log, a->resume != NULL) : 0;
}

/* The rates of the plan line: "0.01 cosine" without the recipe's options;
 * with them, e.g. "0.02 (0.01 x sqrt(400/100)) cosine after 50 warm-up
 * steps, weight decay 0.1", ", RMSprop" last when it is the optimizer. */
static const char *rate_text(const pl_train_opts *o, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%g", (double)pl_lr_peak(o));
    if (o->lr_scaling != PL_LR_SCALE_NONE)
        n += snprintf(buf + n, len - (size_t)n, " (%g x %s%d/%d%s)", (double)o->lr,
                      o->lr_scaling == PL_LR_SCALE_SQRT ? "sqrt(" : "", o->batch,
                      PL_LR_REF_BATCH, o->lr_scaling == PL_LR_SCALE_SQRT ? ")" : "");
    n += snprintf(buf + n, len - (size_t)n, " %s", cli_word(O_SCHEDULE, o->schedule));
    if (o->warmup > 0)
        n += snprintf(buf + n, len - (size_t)n, " after %ld warm-up step%s", o->warmup,
                      o->warmup == 1 ? "" : "s");
    if (o->weight_decay > 0)
        n += snprintf(buf + n, len - (size_t)n, ", weight decay %g", (double)o->weight_decay);
    if (o->optimizer == PL_OPT_RMSPROP)
        snprintf(buf + n, len - (size_t)n, ", RMSprop");
    return buf;
}

static void print_plan(const run *r)
{
    const pl_train_opts *o = &r->a.o;
    pl_gemm_backend be = pl_gemm_resolve(o->gemm);
    int W = pl_trainer_workers(r->tr), T = pl_trainer_threads(r->tr);
    char layers_text[64] = "", ranks_text[64] = "", rates[160];
    if (pl_dist_ranks() > 1)
        snprintf(ranks_text, sizeof ranks_text, "%d ranks (MPI) x ", pl_dist_ranks());
    if (r->cfg.layers > 1 && o->dropout > 0)
        snprintf(layers_text, sizeof layers_text, ", %d LSTM layers, dropout %g", r->cfg.layers,
                 (double)o->dropout);
    else if (r->cfg.layers > 1)
        snprintf(layers_text, sizeof layers_text, ", %d LSTM layers", r->cfg.layers);
    fprintf(stderr,
            "parlstm train: %zu training, %zu validation, %zu test images of %dx%d, %d classes, "
            "read as %d steps of %d%s\n"
            "parlstm train: model %d-%d-%d%s (%zu parameters); %ld steps of %d (%ld per epoch); "
            "lr %s, clip %g, init %s%s, seed %llu%s\n"
            "parlstm train: %s%d worker%s x %d thread%s, GEMM %s%s%s%s; %.0f MiB of buffers\n",
            r->trainset.n, r->valset.n, r->have_test ? r->test.n : 0, r->rows, r->cols,
            r->all.classes, r->all.T, r->all.D, r->a.permuted ? ", pixels permuted" : "",
            r->cfg.input, r->cfg.hidden, r->cfg.classes, layers_text,
            pl_param_count(&r->cfg), r->total, o->batch, r->spe,
            rate_text(o, rates, sizeof rates), o->clip,
            r->a.init_from ? "from " : cli_word(O_INIT, o->init),
            r->a.init_from ? r->a.init_from : "", (unsigned long long)o->seed,
            o->deterministic ? ", deterministic" : "", ranks_text, W, W == 1 ? "" : "s", T,
            T == 1 ? "" : "s", pl_gemm_name(be), be == PL_GEMM_BLAS ? " (OpenBLAS core " : "",
            be == PL_GEMM_BLAS ? pl_blas_corename() : "", be == PL_GEMM_BLAS ? ")" : "",
            pl_trainer_bytes(r->tr) / 1048576.0);
    if (r->a.batch_rule && !r->a.resume) {
        const int b = r->a.batch_rule;
        char said[160] = "";
        int n = 0;
        if (b & LB_LR)
            n += snprintf(said + n, sizeof said - (size_t)n, "lr %g, ", (double)o->lr);
        if (b & LB_WARMUP)
            n += snprintf(said + n, sizeof said - (size_t)n, "%ld warm-up steps, ", o->warmup);
        if (b & LB_CLIP)
            snprintf(said + n, sizeof said - (size_t)n, "clip %g, ", (double)o->clip);
        said[strlen(said) - 2] = '\0'; /* the last ", " */
        fprintf(stderr, "parlstm train: batch %d is above %d: %s by default (--lr, "
                "--lr-warmup and --clip choose them)\n", o->batch, LARGE_BATCH, said);
    }
    if (o->precision == PL_PRECISION_BF16)
        fprintf(stderr, "parlstm train: bf16 operands for the LSTM's products, fp32 sums, %s\n",
                be == PL_GEMM_AVX512 && pl_cpu_has_avx512_bf16()
                    ? "on AVX512_BF16 (vdpbf16ps)"
                    : "on the exact software path (not --kernels avx512 on a CPU with "
                      "AVX512_BF16): far slower than fp32");
    if (r->norm_mean)
        fprintf(stderr, "parlstm train: each of the %d features standardised with the mean and "
                "standard deviation of the %zu training sequences (--normalize standard)\n",
                r->cols, r->trainset.n);
    if (r->a.resume)
        fprintf(stderr, "parlstm train: resuming %s at step %ld of %ld\n", r->a.resume,
                r->start, r->total);
}

/* ---- training */

static int write_checkpoint(run *r, long step)
{
    pl_error err = {0};
    r->meta.step = step;
    if (pl_checkpoint_save(r->a.ckpt, r->tr, &r->meta, &write_guard, &err)) {
        print_error(CMD, &err);
        return 1;
    }
    return 0;
}

/* Validation after `step` steps, at the end of epoch `epoch` (1-based):
 * rank 0's (the others go on to the next step and wait for it there). */
static int evaluate_validation(run *r, progress *p, long step, long epoch)
{
    pl_error err = {0};
    double t0 = pl_seconds(), loss;
    if (pl_dist_rank() != 0)
        return 0;
    if (pl_trainer_evaluate(r->tr, &r->valset, &p->val_acc, &loss, &err)) {
        print_error(CMD, &err);
        return cli_fail_alone(1);
    }
    cli_log_row(&r->log, "val", step, epoch, NAN, loss, p->val_acc, NAN, NAN,
                pl_seconds() - r->t_start);
    char when[64]; /* --eval-every: evaluations within epochs say their step */
    if (r->a.eval_every)
        snprintf(when, sizeof when, "step %ld, epoch %ld", step, epoch);
    else
        snprintf(when, sizeof when, "epoch %ld", epoch);
    if (!r->a.quiet)
        fprintf(stderr, "%s: validation accuracy %.4f, loss %.4f (%zu images, %.1fs)\n", when,
                p->val_acc, loss, r->valset.n, pl_seconds() - t0);
    p->t_win += pl_seconds() - t0;
    return 0;
}

/* The test set's accuracy after `step` steps (epoch `epoch`): its line and
 * its log row; rank 0's. */
static int evaluate_test(run *r, progress *p, long step, long epoch)
{
    pl_error err = {0};
    double loss, t0 = pl_seconds();
    if (pl_trainer_evaluate(r->tr, &r->test, &p->test_acc, &loss, &err)) {
        print_error(CMD, &err);
        return 1;
    }
    if (!r->a.quiet && step < r->total)
        fprintf(stderr, "epoch %ld: test accuracy %.4f, loss %.4f (%zu images, %.1fs)\n", epoch,
                p->test_acc, loss, r->test.n, pl_seconds() - t0);
    else if (!r->a.quiet)
        fprintf(stderr, "test accuracy %.4f, loss %.4f (%zu images)\n", p->test_acc, loss,
                r->test.n);
    cli_log_row(&r->log, "test", step, epoch, NAN, loss, p->test_acc, NAN, NAN,
                pl_seconds() - r->t_start);
    p->t_win += pl_seconds() - t0;
    return 0;
}

/* Whether validation follows step `step` (at `pos` in its epoch): every
 * --eval-every steps, else at the end of each epoch; and after the last. */
static int validation_due(const run *r, long step, long pos)
{
    if (step + 1 == r->total)
        return 1;
    return r->a.eval_every ? (step + 1) % r->a.eval_every == 0 : pos + 1 == r->spe;
}

/* --target-accuracy after the validation of `step` steps: when rank 0's
 * accuracy reached it (the ranks agree), the step and the seconds since
 * training started, evaluations included. Returns whether it was reached. */
static int target_reached(const run *r, progress *p, long step)
{
    int reached = pl_dist_rank() == 0 && p->val_acc >= r->a.target;
    if (pl_dist_ranks() > 1)
        reached = pl_dist_agree(reached, NULL);
    if (!reached)
        return 0;
    p->target_step = step;
    p->time_to_target = pl_seconds() - r->t_start;
    if (!r->a.quiet && pl_dist_rank() == 0)
        fprintf(stderr, "parlstm train: validation accuracy %.4f reached --target-accuracy %g "
                "after step %ld (%.1fs): stopping\n", p->val_acc, r->a.target, step,
                p->time_to_target);
    return 1;
}

/* At the end of a log window: the window's mean loss, its line and its
 * log row. */
static void log_window(run *r, progress *p, long step, long epoch)
{
    p->last_loss = p->win_loss / p->win_steps;
    double now = pl_seconds();
    cli_log_row(&r->log, "train", step + 1, epoch + 1, p->win_lr, p->last_loss,
                (double)p->win_correct / p->win_rows, p->win_gnorm / p->win_steps,
                p->win_rows / (now - p->t_win), now - r->t_start);
    if (!r->a.quiet) {
        char eta[32];
        double rate = p->win_rows / (now - p->t_win);
        format_duration((r->total - step - 1) * (double)r->a.o.batch / rate, eta, sizeof eta);
        fprintf(stderr,
                "step %*ld/%ld  epoch %ld  loss %.4f  accuracy %.4f  %.0f samples/s  eta %s\n",
                (int)snprintf(NULL, 0, "%ld", r->total), step + 1, r->total, epoch + 1,
                p->last_loss, (double)p->win_correct / p->win_rows, rate, eta);
    }
    p->win_loss = p->win_gnorm = 0;
    p->win_steps = p->win_correct = p->win_rows = 0;
    p->t_win = now;
}

/* Step `step`, then what follows it: the progress line, the checkpoint,
 * validation at the end of an epoch. */
static int train_step(run *r, progress *p, long step)
{
    const train_args *a = &r->a;
    long epoch = step / r->spe, pos = step % r->spe;
    pl_error err = {0};
    if (pos == 0 || step == r->start)
        pl_epoch_order(a->o.seed, epoch, r->order, r->trainset.n);
    pl_step_stats st;
    double t0 = pl_seconds();
    if (pl_trainer_step(r->tr, &r->trainset, r->order + pos * a->o.batch, a->o.batch, step,
                        r->total, &st, &err)) {
        fprintf(stderr, "parlstm train: step %ld: %s\n", step + 1, err.msg);
        if (a->ckpt && access(a->ckpt, F_OK) == 0)
            fprintf(stderr, "parlstm train: the last good checkpoint is %s (resume with "
                    "--resume %s)\n", a->ckpt, a->ckpt);
        return 1;
    }
    p->stop = st.stop;
    p->train_seconds += pl_seconds() - t0;
    p->win_loss += st.loss;
    p->win_gnorm += st.grad_norm;
    p->win_lr = st.lr;
    p->win_correct += st.correct;
    p->win_rows += a->o.batch;
    p->win_steps++;
    int last = step + 1 == r->total;
    if ((step + 1) % a->log_every == 0 || last)
        log_window(r, p, step, epoch);
    const int ckpt_due = a->ckpt && ((step + 1) % a->ckpt_every == 0 || last);
    if (ckpt_due && write_checkpoint(r, step + 1))
        return 1;
    if (validation_due(r, step, pos) && r->valset.n > 0 && !stopping(p)) {
        if (evaluate_validation(r, p, step + 1, epoch + 1))
            return 1;
        /* the target reached: the run ends here, as after its last step
         * (its log window closed, its checkpoint written) */
        if (a->target > 0 && target_reached(r, p, step + 1)) {
            if (p->win_steps > 0)
                log_window(r, p, step, epoch);
            return a->ckpt && !ckpt_due ? write_checkpoint(r, step + 1) : 0;
        }
    }
    /* the test set after every epoch but the last (finish evaluates that) */
    if (pos + 1 == r->spe && !last && a->test_every_epoch && r->have_test && !stopping(p) &&
        !p->target_step &&
        pl_dist_rank() == 0 && evaluate_test(r, p, step + 1, epoch + 1))
        return cli_fail_alone(1);
    return 0;
}

static int train_loop(run *r, progress *p)
{
    r->t_start = pl_seconds();
    *p = (progress){.step = r->start, .last_loss = NAN, .val_acc = NAN, .test_acc = NAN,
                    .t_win = r->t_start};
    for (; p->step < r->total && !stopping(p) && !p->target_step; p->step++) {
        int rc = train_step(r, p, p->step);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- after training */

/* Stopped by a signal: the checkpoint, and how to resume. */
/* The data options a resumed run needs again (" --data DIR" unless the
 * default, or --train and its files), into buf. */
static void data_args(const train_args *a, char *buf, size_t len)
{
    const series_files *f = &a->files;
    const char *const names[] = {"--train", "--train-labels", "--train-lengths",
                                 "--test", "--test-labels", "--test-lengths"};
    const char *const files[] = {f->train, f->train_labels, f->train_lengths,
                                 f->test, f->test_labels, f->test_lengths};
    size_t at = 0;
    buf[0] = '\0';
    if (!f->train && strcmp(a->data, cli_default_data()) != 0)
        snprintf(buf, len, " --data %s", a->data);
    for (int i = 0; f->train && i < 6 && at < len; i++)
        if (files[i])
            at += (size_t)snprintf(buf + at, len - at, " %s %s", names[i], files[i]);
}

static int stopped(run *r, long step, int sig)
{
    const train_args *a = &r->a;
    const char *what = sig == SIGINT ? "interrupted" : "terminated";
    if (!a->ckpt) {
        fprintf(stderr, "parlstm train: %s after step %ld of %ld; nothing saved (no "
                "--checkpoint FILE given)\n", what, step, r->total);
        return 128 + sig;
    }
    if (step % a->ckpt_every != 0 && write_checkpoint(r, step))
        return 1;
    char data[8192];
    data_args(a, data, sizeof data);
    fprintf(stderr, "parlstm train: %s after step %ld of %ld; the state is in %s\n"
            "parlstm train: resume with: parlstm train --resume %s --checkpoint %s%s\n",
            what, step, r->total, a->ckpt, a->ckpt, a->ckpt, data);
    return 128 + sig;
}

/* --save failed after training: the model goes to FILE.rescue-PID in
 * $TMPDIR (else /tmp), else in the working directory; the message says
 * where, and where the checkpoint (which holds it too) is. Returns the exit
 * status: 1, since the model is not where it was asked for. */
static int rescue(const run *r, const pl_model_info *mi)
{
    const train_args *a = &r->a;
    const char *tmp = getenv("TMPDIR"), *base = strrchr(a->save, '/');
    char places[2][4096];
    base = base ? base + 1 : a->save;
    snprintf(places[0], sizeof places[0], "%s/%s.rescue-%ld", tmp && *tmp ? tmp : "/tmp", base,
             (long)getpid());
    char here[2048];
    if (getcwd(here, sizeof here))
        snprintf(places[1], sizeof places[1], "%s/%s.rescue-%ld", here, base, (long)getpid());
    else /* the working directory is gone: try its name all the same */
        snprintf(places[1], sizeof places[1], "%s.rescue-%ld", base, (long)getpid());
    int saved = -1;
    for (int i = 0; i < 2 && saved < 0; i++) {
        pl_error err = {0};
        if (pl_model_save(places[i], mi, pl_trainer_params(r->tr), &write_guard, &err) == PL_OK)
            saved = i;
        else
            print_error(CMD, &err);
    }
    if (saved >= 0)
        fprintf(stderr, "parlstm train: the trained model is safe in %s (--save %s could not be "
                "written): move it where it belongs\n", places[saved], a->save);
    else
        fprintf(stderr, "parlstm train: the trained model could not be written to --save %s, "
                "%s or %s\n", a->save, places[0], places[1]);
    if (a->ckpt && access(a->ckpt, F_OK) == 0)
        fprintf(stderr, "parlstm train: the checkpoint %s holds it too: parlstm train --resume "
                "%s --save FILE writes it\n", a->ckpt, a->ckpt);
    return 1; /* --save was not written */
}

/* The result line: steps done (the planned ones, unless --target-accuracy
 * stopped the run earlier), and with --target-accuracy when it was reached. */
static void print_result(const run *r, const progress *p)
{
    char loss[32], val[32], test[32], rate[32], target[96] = "";
    long trained = p->step - r->start;
    if (r->a.target > 0) {
        char secs[32], step[32];
        snprintf(target, sizeof target, " time_to_target=%s target_step=%s",
                 result_value(p->target_step ? p->time_to_target : NAN, 2, secs, sizeof secs),
                 result_value(p->target_step ? (double)p->target_step : NAN, 0, step,
                              sizeof step));
    }
    fprintf(stdout, "result: steps=%ld train_loss=%s val_accuracy=%s test_accuracy=%s "
            "seconds=%.1f samples_per_sec=%s ranks=%d workers=%d threads=%d gemm=%s "
            "seed=%llu%s\n",
            p->step, result_value(p->last_loss, 4, loss, sizeof loss),
            result_value(p->val_acc, 4, val, sizeof val),
            result_value(p->test_acc, 4, test, sizeof test), p->train_seconds,
            result_value(trained > 0 ? trained * (double)r->a.o.batch / p->train_seconds : NAN,
                         0, rate, sizeof rate),
            pl_dist_ranks(), pl_trainer_workers(r->tr), pl_trainer_threads(r->tr),
            pl_gemm_name(pl_gemm_resolve(r->a.o.gemm)), (unsigned long long)r->a.o.seed,
            target);
    fflush(stdout);
}

static int finish(run *r, progress *p)
{
    const train_args *a = &r->a;
    pl_error err = {0};
    if (stopping(p))
        return stopped(r, p->step, stopping(p));
    /* every rank holds the same parameters; rank 0 alone evaluates, saves
     * and prints */
    if (pl_trainer_check_ranks(r->tr, &err)) {
        print_error(CMD, &err);
        return 1;
    }
    const char *dump = cli_test_dump_dir(); /* each rank's parameters, for tests */
    if (dump) {
        char path[4096];
        snprintf(path, sizeof path, "%s/rank%d.bin", dump, pl_dist_rank());
        pl_model_info mi = {.cfg = r->cfg, .T = r->all.T, .rows = r->rows, .cols = r->cols};
        if (pl_model_save(path, &mi, pl_trainer_params(r->tr), NULL, &err))
            print_error(CMD, &err);
    }
    if (pl_dist_rank() != 0)
        return 0;
    if (r->start >= r->total && r->valset.n > 0 &&
        evaluate_validation(r, p, r->total, (r->total - 1) / r->spe + 1))
        return 1;
    if (r->have_test && evaluate_test(r, p, r->total, (r->total - 1) / r->spe + 1))
        return 1;
    int rc = 0;
    if (a->save) {
        pl_model_info mi = run_model_info(r);
        if (pl_model_save(a->save, &mi, pl_trainer_params(r->tr), &write_guard, &err)) {
            print_error(CMD, &err);
            rc = rescue(r, &mi);
        } else if (!a->quiet) {
            fprintf(stderr, "saved the model to %s\n", a->save);
        }
    }
    print_result(r, p);
    return rc;
}

static void run_free(run *r)
{
    free(r->norm_mean);
    free(r->norm_std);
    pl_model_info_free(&r->init);
    pl_free(r->state);
    pl_free(r->init_params);
    cli_log_close(&r->log);
    free(r->order);
    pl_trainer_free(r->tr);
    pl_dataset_free(&r->all);
    pl_dataset_free(&r->test);
}

int cmd_train(int argc, char **argv)
{
    run r;
    memset(&r, 0, sizeof r);
    int rc = parse_args(argc, argv, &r.a);
    if (rc)
        return rc < 0 ? 0 : rc;
    /* rank 0 alone writes files; every rank reads the data (and --init-from)
     * and builds a trainer, and all agree that each stage went well */
    if (!(rc = cli_agree(CMD, pl_dist_rank() == 0 ? check_outputs(&r.a) : 0)) &&
        !(rc = resume_setup(&r)) && !(rc = cli_agree(CMD, init_setup(&r)))) {
        if (pl_gemm_resolve(r.a.o.gemm) == PL_GEMM_BLAS)
            cli_fix_openblas();
        if (!(rc = cli_agree(CMD, data_setup(&r))) && !(rc = same_data_everywhere(&r)) &&
            !(rc = init_check(&r)) && !(rc = cli_agree(CMD, trainer_setup(&r)))) {
            if (!r.a.quiet)
                print_plan(&r);
            if (r.start >= r.total)
                fprintf(stderr, "parlstm train: %s: the run had finished (step %ld of %ld): "
                        "nothing to train\n", r.a.resume, r.start, r.total);
            install_handlers();
            progress p;
            if (!(rc = train_loop(&r, &p)))
                rc = finish(&r, &p);
        }
    }
    run_free(&r);
    return rc;
}
