/* Strict option parsing and small helpers shared by the commands. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

int opt_long(const char *cmd, const char *opt, const char *s, long long min,
             long long max, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE || end == s || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "parlstm %s: %s: expected an integer from %lld to %lld, got '%s'\n",
                cmd, opt, min, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

int opt_float(const char *cmd, const char *opt, const char *s, double min,
              double max, int min_inclusive, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno == ERANGE || end == s || *end != '\0' || !isfinite(v) ||
        (min_inclusive ? v < min : v <= min) || v > max) {
        fprintf(stderr, "parlstm %s: %s: expected a number %s %g and at most %g, got '%s'\n",
                cmd, opt, min_inclusive ? "at least" : "above", min, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

int opt_u64(const char *cmd, const char *opt, const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    if (*s == '-' || *s == '\0') {
        fprintf(stderr, "parlstm %s: %s: expected a non-negative integer, got '%s'\n",
                cmd, opt, s);
        return -1;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (errno == ERANGE || *end != '\0') {
        fprintf(stderr, "parlstm %s: %s: expected an integer from 0 to %llu, got '%s'\n",
                cmd, opt, (unsigned long long)UINT64_MAX, s);
        return -1;
    }
    *out = v;
    return 0;
}

int opt_word(const char *cmd, const char *opt, const char *s,
             const char *const *words)
{
    for (int i = 0; words[i]; i++)
        if (strcmp(s, words[i]) == 0)
            return i;
    fprintf(stderr, "parlstm %s: %s: expected one of", cmd, opt);
    for (int i = 0; words[i]; i++)
        fprintf(stderr, "%s %s", i ? "," : "", words[i]);
    fprintf(stderr, "; got '%s'\n", s);
    return -1;
}

int opt_gemm(const char *cmd, const char *s, pl_gemm_backend *out)
{
    static const char *const words[] = {"auto", "naive", "blas", "avx512", NULL};
    int i = opt_word(cmd, "--gemm", s, words);
    if (i < 0)
        return -1;
    *out = (pl_gemm_backend)i;
    if (!pl_gemm_available(*out)) {
        fprintf(stderr, "parlstm %s: --gemm %s: this CPU has no AVX-512; use auto or blas\n",
                cmd, s);
        return -1;
    }
    return 0;
}

char **cli_argv;

void cli_fix_openblas(void)
{
    const char *core = pl_blas_better_coretype();
    if (!core || getenv("PARLSTM_NO_REEXEC"))
        return;
    /* OpenBLAS reads OPENBLAS_CORETYPE once, when it is loaded: start again. */
    setenv("OPENBLAS_CORETYPE", core, 1);
    setenv("PARLSTM_NO_REEXEC", "1", 1);
    execv("/proc/self/exe", cli_argv);
    /* exec failed: carry on with the kernels OpenBLAS chose */
}

void print_error(const char *cmd, const pl_error *err)
{
    fprintf(stderr, "parlstm %s: %s\n", cmd, err->msg);
}

void format_duration(double s, char *buf, size_t len)
{
    if (!(s >= 0) || s > 1e9)
        snprintf(buf, len, "?");
    else if (s < 60)
        snprintf(buf, len, "%.0fs", s);
    else if (s < 3600)
        snprintf(buf, len, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(buf, len, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
}

const char *cli_default_data(void)
{
    static char buf[4096];
    const char *env = getenv("PARLSTM_DATA"), *xdg = getenv("XDG_DATA_HOME"),
               *home = getenv("HOME");
    struct stat st;
    if (env && *env)
        return env;
    if (stat("data/mnist", &st) == 0 && S_ISDIR(st.st_mode))
        return "data/mnist";
    if (xdg && xdg[0] == '/') /* the XDG rule: relative values are ignored */
        snprintf(buf, sizeof buf, "%s/parlstm/mnist", xdg);
    else if (home && *home)
        snprintf(buf, sizeof buf, "%s/.local/share/parlstm/mnist", home);
    else
        return "data/mnist";
    return buf;
}
