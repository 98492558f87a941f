/* The parlstm command-line front end: the only code that prints and exits. */
#ifndef PARLSTM_CLI_H
#define PARLSTM_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "parlstm.h"
#include "tools.h"

#define EXIT_USAGE 2

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_plot(int argc, char **argv);
/* The hidden command "help-man": the manual page parlstm(1), from the
 * option table (man.c). */
int cmd_help_man(int argc, char **argv);

/* ---- the option table (options.c)
 *
 * Every option of every command is one row of one table: its name, the
 * kind of value it takes and the range, its default, its help text and
 * the commands that take it. The table drives getopt, the range checks
 * and their messages (the same words for every command), --help, and
 * (through cli_options_for) the manual page.
 *
 * To add an option: an id below, a row in OPTIONS (options.c) in the
 * place its help should take, and the command's use of v[id]. */

/* The commands, as bits of cli_option.cmds. */
enum {
    CMD_TRAIN = 1, CMD_EVAL = 2, CMD_BENCH = 4, CMD_PREDICT = 8, CMD_EXPORT = 16,
    CMD_IMPORT = 32, CMD_PLOT = 64
};

typedef enum {
    ARG_NONE,   /* a flag */
    ARG_INT,    /* an integer in [min, max] */
    ARG_U64,    /* any unsigned 64-bit integer */
    ARG_NUMBER, /* a finite number in [min, max], or (min, max] with min_open */
    ARG_WORD,   /* one of words (the value is its index) */
    ARG_TEXT,   /* a file, a directory or a list: the command reads it */
    ARG_INTS,   /* a comma-separated list of integers in [min, max] */
    ARG_WORDS   /* a comma-separated list of words (their indices) */
} cli_arg;

#define CLI_MAX_LIST 16 /* items of an ARG_INTS or ARG_WORDS list */

typedef enum {
    O_MODEL, O_IN, O_DATA, O_TRAIN_FILE, O_TRAIN_LABELS, O_TRAIN_LENGTHS, O_TEST_FILE,
    O_TEST_LABELS, O_TEST_LENGTHS, O_NORMALIZE, O_LENGTHS, O_SYNTHETIC, O_VAL, O_CLASSES,
    O_SEQUENCE, O_PERMUTE, O_LAYERS, O_DROPOUT,
    O_EPOCHS, O_STEPS, O_GRID, O_BENCH_STEPS, O_WARMUP, O_ROUNDS, O_BATCH, O_HIDDEN,
    O_BENCH_BATCH, O_BENCH_HIDDEN, O_BENCH_SEQ, O_BENCH_GEMM,
    O_SCALING, O_LR, O_SCHEDULE, O_LR_WARMUP, O_LR_SCALING, O_WEIGHT_DECAY, O_OPTIMIZER,
    O_CLIP, O_INIT, O_INIT_FROM, O_TUTORIAL, O_SEED, O_TARGET_ACC, O_EVAL_EVERY, O_PRESET,
    O_WORKERS, O_THREADS, O_PIN, O_GEMM, O_PRECISION, O_DET, O_BENCH_DET,
    O_CKPT, O_CKPT_EVERY, O_RESUME,
    O_SAVE, O_LOG, O_LOG_EVERY, O_TEST_EVERY_EPOCH, O_PROFILE, O_SHARDS, O_CSV, O_PLOT, O_QUIET,
    O_PLOT_LOG, O_TIME_STEPS, O_EXPORT_OUT, O_IMPORT_OUT, O_PLOT_OUT, O_PROBS, O_TOP,
    O_COUNT
} cli_opt_id;

typedef struct {
    cli_opt_id id;
    const char *name;         /* without the dashes */
    const char *metavar;      /* "N", "FILE"; NULL for a flag */
    cli_arg kind;
    double min, max;          /* ARG_INT, ARG_NUMBER */
    int min_open;             /* ARG_NUMBER: min itself is refused */
    const char *const *words; /* ARG_WORD, NULL-terminated */
    const char *def;          /* the default, as it would be typed; NULL: none */
    const char *def_help;     /* the default in words, when def does not say it */
    unsigned cmds;            /* CMD_* that take it */
    const char *group;        /* heading in grouped help (train) */
    const char *help;         /* one paragraph, wrapped when printed */
    const char *alias;        /* another name it answers to (an earlier one), or NULL */
} cli_option;

/* A parsed value: the default, or what the command line gave. */
typedef struct {
    int set;          /* given on the command line */
    const char *text; /* as given, or the default's text (NULL: none) */
    long long i;      /* ARG_INT, ARG_WORD (index), ARG_NONE (1 when given) */
    uint64_t u;       /* ARG_U64 */
    double x;         /* ARG_NUMBER */
    long long list[CLI_MAX_LIST]; /* ARG_INTS, ARG_WORDS (indices) */
    int n;            /* their count */
} cli_value;

typedef struct {
    unsigned bit;          /* CMD_* */
    const char *name;      /* "train" */
    const char *synopsis;  /* "parlstm train [OPTIONS]" */
    const char *summary;   /* one line */
    const char *description; /* one paragraph before the options */
    int grouped;           /* print the options under their group headings */
    const char *operands;  /* "INPUT...": what follows the options; NULL: none */
    /* After the options: paragraphs separated by blank lines; a line that
     * starts with two spaces is shown as it is (an example). */
    void (*notes)(FILE *f);
    const char *exit_status; /* "0 done, 1 error ..., 2 bad options" */
} cli_command;

/* The commands, in the order parlstm --help lists them; *n is their count. */
const cli_command *cli_commands(int *n);
/* The option rows that command `cmd` (CMD_*) takes, one after the other:
 * prev = NULL gives the first, NULL comes after the last. For --help and
 * the manual page. */
const cli_option *cli_options_for(unsigned cmd, const cli_option *prev);
/* Word `index` of an option that takes words (--init 1: "tutorial"), or
 * "?" for an index it has no word for. */
const char *cli_word(cli_opt_id id, long long index);
/* The default of an option in words ("100", "one per CPU ..."), or NULL. */
const char *cli_default_text(const cli_option *opt);
/* A command's row (cmd: one CMD_* bit). */
const cli_command *cli_command_of(unsigned cmd);
/* Writes command cmd's --help. */
void cli_usage(unsigned cmd, FILE *f);
/* An option's help with its default: "images per step (default: 100)". */
const char *cli_option_text(const cli_option *opt, char *buf, size_t len);
/* Writes text from column `col`, wrapped at 79 columns, continuation
 * lines indented by `indent`; ends the line. */
void cli_wrap(FILE *f, const char *text, int col, int indent);
/* What parlstm is, where its data comes from and where its output goes:
 * one paragraph each, for parlstm --help and the manual page. */
extern const char CLI_ABOUT[], CLI_DATA_RULE[], CLI_OUTPUT_RULE[];

/* Parses the options of command cmd into v[O_COUNT] (defaults first).
 * Returns 0, -1 after printing --help (exit 0), or EXIT_USAGE after a
 * message naming the option and what it expected. Arguments that are no
 * options are refused. */
int cli_parse(unsigned cmd, int argc, char **argv, cli_value v[O_COUNT]);
/* Named recipes of train (--preset NAME): the options each stands for. */
typedef struct {
    const char *name, *options, *what;
} cli_preset;
extern const cli_preset CLI_PRESETS[];
/* argv with the options of the --preset it names (if any, and known) put
 * before the command line's, which therefore override them, into *out (a
 * static array; *out_argc its length). An unknown name is left for
 * cli_parse to refuse. */
void cli_with_preset(int argc, char **argv, int *out_argc, char ***out);
/* The same for a command with operands (cli_command.operands): they may
 * stand before, between or after the options ("--" ends the options), and
 * come back as argv[*first .. argc) (argv is reordered); none is an error. */
int cli_parse_operands(unsigned cmd, int argc, char **argv, cli_value v[O_COUNT], int *first);

/* ---- shared by the commands (common.c) */

/* The program's own argv, for re-executing it. */
extern char **cli_argv;
/* Re-executes the program with OPENBLAS_CORETYPE set when OpenBLAS
 * misdetected this CPU (see pl_blas_better_coretype); returns if not. */
void cli_fix_openblas(void);

/* Loads DIR/train-* (when need_train) and DIR/t10k-*. Without need_train
 * the test set is required; with it, a missing test set is a warning and
 * *have_test = 0. Prints errors; returns 0 or an exit code. */
int cli_load_data(const char *cmd, const char *dir, int classes, int need_train,
                  pl_dataset *train, pl_dataset *test, int *have_test);

/* Whether paths a and b (either may be NULL) name the same file: the
 * same device and inode when both exist (through links and other
 * spellings), the same directory (resolved) and name when neither does. */
int cli_same_file(const char *a, const char *b);

/* The data directory when --data is not given: $PARLSTM_DATA when set,
 * else data/mnist when that directory exists here (a source tree), else
 * $XDG_DATA_HOME/parlstm/mnist (~/.local/share/parlstm/mnist when
 * XDG_DATA_HOME is unset), where the installed parlstm-fetch-mnist puts it. */
const char *cli_default_data(void);
/* How to get MNIST, for messages about missing data. */
#define CLI_GET_MNIST "get MNIST with parlstm-fetch-mnist (data/fetch-mnist.sh in a source tree)"

/* Applies a model's reading of images to a data set loaded row by row:
 * pixel by pixel (sequence), then the fixed pixel order of permute_seed
 * (permuted). Prints errors; returns 0 or an exit code. */
int cli_read_as(const char *cmd, pl_dataset *ds, pl_sequence sequence, int permuted,
                uint64_t permute_seed);
/* Sequences of values in path (labels_path, lengths_path: a .npy's, or
 * NULL) for the model m read from model: its width and classes checked by
 * the reader, standardised as m records, read as it reads. Prints errors
 * (with the model's width when that was wrong); 0 or 1. */
int cli_load_sequences(const char *cmd, const char *model, const pl_model_info *m,
                       const char *path, const char *labels_path, const char *lengths_path,
                       int need_labels, pl_dataset *ds);

/* Progress for something long done by the caller (building a large model's
 * orthogonal initialisation): after a second, a line on stderr every few
 * seconds saying `what` and the time so far; stop says how long it took
 * (when it took a second or more, unless quiet). */
void cli_progress_start(const char *cmd, const char *what);
void cli_progress_stop(int quiet);

/* Reads a model file or a safetensors file (pl_model_read); prints the
 * error and returns 1, or 0. */
int cli_load_model(const char *cmd, const char *path, pl_model_info *m, float **params);
/* How a model reads an image: "row by row", "pixel by pixel in a permuted
 * order (seed 5)". */
const char *cli_reading(const pl_model_info *m, char *buf, size_t len);
/* "28-128-10, 1 layer, 28x28 images read row by row", or for a model of
 * values "8-128-10, 1 layer, sequences of 8 steps x 8 values read row by
 * row, standardised, classes named" (what a model reads). */
const char *cli_describe_model(const pl_model_info *m, char *buf, size_t len);
/* A required option that is missing: says so, returns EXIT_USAGE. */
int cli_missing(unsigned cmd, cli_opt_id id);
/* For a command that reads the file of option `in` and writes that of
 * `out` (export, import, plot): cli_parse, both options required, and not
 * one file for both. Returns 0, -1 after --help, or an exit code. */
int cli_parse_in_out(unsigned cmd, int argc, char **argv, cli_value v[O_COUNT], cli_opt_id in,
                     cli_opt_id out);
/* Whether gnuplot can be run; if not, says so ("parlstm CMD: gnuplot not
 * found ...; no WHAT written"). */
int cli_have_gnuplot(const char *cmd, const char *what);

/* ---- the training log (trainlog.c): CSV, one row per progress interval
 * and per evaluation, flushed as written. */
#define CLI_LOG_HEADER "kind,step,epoch,lr,loss,accuracy,grad_norm,samples_per_sec,seconds"
typedef struct {
    FILE *f;
    const char *path;
    int failed; /* a write failed: said once, no more rows */
} cli_log;

/* Opens the log at path: a new file with the header, or with append (a
 * resumed run) the end of an existing one, whose header must be ours (a
 * missing or empty file gets the header). Prints errors; 0 or 1. */
int cli_log_open(cli_log *lg, const char *path, int append);
/* One row; NaN values are written as empty fields. Nothing when lg->f is
 * NULL or a write failed before. */
void cli_log_row(cli_log *lg, const char *kind, long step, long epoch, double lr, double loss,
                 double accuracy, double grad_norm, double samples_per_sec, double seconds);
void cli_log_close(cli_log *lg);

void print_error(const char *cmd, const pl_error *err);

/* ---- several ranks (ranks.c): an MPI job prints with one voice, rank 0's
 * cli_ranks_start, first in main: joins the MPI job when an MPI launcher
 * started the program (PARLSTM_MPI=1: always, 0: never), refuses processes
 * that would each train alone; on ranks other than 0, stdout goes to
 * /dev/null and stderr is captured. Returns 0 or an exit code.
 * cli_agree is an agreement point (every rank): returns the largest exit
 * status of all ranks, and a rank that failed when rank 0 did not shows
 * its messages, naming itself. cli_fail_alone: a failure only this rank
 * knows about, away from an agreement point: shows its messages and ends
 * every rank (returns rc with one rank). */
int cli_ranks_start(int *argc, char ***argv);
int cli_agree(const char *cmd, int rc);
int cli_fail_alone(int rc);
/* Set once MPI is started: the program can no longer re-execute itself. */
extern int cli_no_reexec;
/* "12s", "3m05s", "1h02m" */
void format_duration(double s, char *buf, size_t len);
/* A result-line value: "%.*f", or "nan" when the run has none (NaN). */
const char *result_value(double v, int decimals, char *buf, size_t len);

/* Test hooks from PARLSTM_TEST_* (testhooks.c, the one reader; nothing
 * in a build without them): the writes' hooks for the process, a trainer's
 * fault and divergence (rank: this process's), and the directory into which
 * each rank dumps its final parameters (NULL: none). */
void cli_test_hooks_process(void);
void cli_test_hooks_trainer(pl_trainer *tr, int rank);
const char *cli_test_dump_dir(void);

#endif
