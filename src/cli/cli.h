/* The parlstm command-line front end: the only code that prints and exits. */
#ifndef PARLSTM_CLI_H
#define PARLSTM_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "parlstm.h"

#define EXIT_USAGE 2

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_bench(int argc, char **argv);

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
enum { CMD_TRAIN = 1, CMD_EVAL = 2, CMD_BENCH = 4 };

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
    O_MODEL, O_DATA, O_SYNTHETIC, O_VAL, O_CLASSES,
    O_SEQUENCE, O_PERMUTE, O_LAYERS, O_DROPOUT,
    O_EPOCHS, O_STEPS, O_GRID, O_BENCH_STEPS, O_WARMUP, O_ROUNDS, O_BATCH, O_HIDDEN,
    O_BENCH_BATCH, O_BENCH_HIDDEN, O_BENCH_SEQ, O_BENCH_GEMM,
    O_SCALING, O_LR, O_SCHEDULE, O_CLIP, O_INIT, O_TUTORIAL, O_SEED,
    O_WORKERS, O_THREADS, O_PIN, O_GEMM, O_DET, O_BENCH_DET,
    O_CKPT, O_CKPT_EVERY, O_RESUME,
    O_SAVE, O_LOG_EVERY, O_PROFILE, O_SHARDS, O_CSV, O_PLOT, O_QUIET,
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
    const char *description; /* paragraphs before the options */
    int grouped;           /* print the options under their group headings */
    void (*notes)(FILE *f); /* after the options: result line, exit status */
} cli_command;

/* The commands, in the order parlstm --help lists them; *n is their count. */
const cli_command *cli_commands(int *n);
/* The option rows that command `cmd` (CMD_*) takes, one after the other:
 * prev = NULL gives the first, NULL comes after the last. For --help and
 * the manual page. */
const cli_option *cli_options_for(unsigned cmd, const cli_option *prev);
/* The default of an option in words ("100", "one per CPU ..."), or NULL. */
const char *cli_default_text(const cli_option *opt);
/* Writes command cmd's --help. */
void cli_usage(unsigned cmd, FILE *f);

/* Parses the options of command cmd into v[O_COUNT] (defaults first).
 * Returns 0, -1 after printing --help (exit 0), or EXIT_USAGE after a
 * message naming the option and what it expected. */
int cli_parse(unsigned cmd, int argc, char **argv, cli_value v[O_COUNT]);

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

/* Progress for something long done by the caller (building a large model's
 * orthogonal initialisation): after a second, a line on stderr every few
 * seconds saying `what` and the time so far; stop says how long it took
 * (when it took a second or more, unless quiet). */
void cli_progress_start(const char *cmd, const char *what);
void cli_progress_stop(int quiet);

void print_error(const char *cmd, const pl_error *err);
/* "12s", "3m05s", "1h02m" */
void format_duration(double s, char *buf, size_t len);
/* A result-line value: "%.*f", or "nan" when the run has none (NaN). */
const char *result_value(double v, int decimals, char *buf, size_t len);

#endif
