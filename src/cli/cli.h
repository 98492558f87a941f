/* The parlstm command-line front end: the only code that prints and exits. */
#ifndef PARLSTM_CLI_H
#define PARLSTM_CLI_H

#include <stdint.h>

#include "parlstm.h"

#define EXIT_USAGE 2

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_bench(int argc, char **argv);

/* Strict number parsing: the whole string, in [min, max]; otherwise a
 * message naming the option and what was expected, and -1. */
int opt_long(const char *cmd, const char *opt, const char *s, long long min,
             long long max, long long *out);
int opt_float(const char *cmd, const char *opt, const char *s, double min,
              double max, int min_inclusive, double *out);
int opt_u64(const char *cmd, const char *opt, const char *s, uint64_t *out);
/* Index of s in the NULL-terminated words, or -1 with a message. */
int opt_word(const char *cmd, const char *opt, const char *s,
             const char *const *words);
int opt_gemm(const char *cmd, const char *s, pl_gemm_backend *out);

/* The program's own argv, for re-executing it. */
extern char **cli_argv;
/* Re-executes the program with OPENBLAS_CORETYPE set when OpenBLAS
 * misdetected this CPU (see pl_blas_better_coretype); returns if not. */
void cli_fix_openblas(void);

/* Loads DIR/train-* (required) and DIR/t10k-* (optional: *have_test = 0
 * and a warning when absent). Prints errors; returns 0 or an exit code. */
int cli_load_data(const char *cmd, const char *dir, int classes, int need_train,
                  pl_dataset *train, pl_dataset *test, int *have_test);

/* The data directory when --data is not given: $PARLSTM_DATA when set,
 * else data/mnist when that directory exists here (a source tree), else
 * $XDG_DATA_HOME/parlstm/mnist (~/.local/share/parlstm/mnist when
 * XDG_DATA_HOME is unset), where the installed parlstm-fetch-mnist puts it. */
const char *cli_default_data(void);
/* That rule and where to get MNIST, as --help says it (indented 22). */
#define CLI_DATA_RULE \
    "                      (default: $PARLSTM_DATA, else ./data/mnist when it\n" \
    "                      exists, else $XDG_DATA_HOME/parlstm/mnist, by default\n" \
    "                      ~/.local/share/parlstm/mnist; parlstm-fetch-mnist puts\n" \
    "                      MNIST there, data/fetch-mnist.sh in a source tree)\n"
/* How to get MNIST, for messages about missing data. */
#define CLI_GET_MNIST "get MNIST with parlstm-fetch-mnist (data/fetch-mnist.sh in a source tree)"

void print_error(const char *cmd, const pl_error *err);
/* "12s", "3m05s", "1h02m" */
void format_duration(double s, char *buf, size_t len);

#endif
