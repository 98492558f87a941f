/* What the commands share: loading the data directory, comparing output
 * files, re-executing for OpenBLAS, messages and result-line values. */
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

char **cli_argv;
int cli_no_reexec;

void cli_fix_openblas(void)
{
    const char *core = pl_blas_better_coretype();
    if (!core || getenv("PARLSTM_NO_REEXEC") || cli_no_reexec)
        return;
    /* OpenBLAS reads OPENBLAS_CORETYPE once, when it is loaded: start again. */
    setenv("OPENBLAS_CORETYPE", core, 1);
    setenv("PARLSTM_NO_REEXEC", "1", 1);
    execv("/proc/self/exe", cli_argv);
    /* exec failed: carry on with the kernels OpenBLAS chose */
}

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
        fprintf(stderr, "parlstm %s: " CLI_GET_MNIST " (it fills the default directory), "
                "or pass --data DIR\n", cmd);
        return 1;
    }
    if (need_train) {
        if (pl_dataset_load(train, dir, "train", classes, &err)) {
            print_error(cmd, &err);
            if (err.code == PL_ERR_NOT_FOUND)
                fprintf(stderr, "parlstm %s: " CLI_GET_MNIST ", or pass --data DIR\n",
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

/* Where a file that does not exist yet would be: its directory resolved
 * (links, "." and "..") and its name. */
static void future_place(const char *path, char *where, size_t len)
{
    char *d = strdup(path), *b = strdup(path), real[PATH_MAX];
    if (d && b && realpath(dirname(d), real))
        snprintf(where, len, "%s/%s", real, basename(b));
    else
        snprintf(where, len, "%s", path);
    free(d);
    free(b);
}

int cli_same_file(const char *a, const char *b)
{
    if (!a || !b)
        return 0;
    struct stat sa, sb;
    int ea = stat(a, &sa) == 0, eb = stat(b, &sb) == 0;
    if (ea && eb)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    if (ea || eb)
        return 0;
    char wa[2 * PATH_MAX], wb[2 * PATH_MAX];
    future_place(a, wa, sizeof wa);
    future_place(b, wb, sizeof wb);
    return strcmp(wa, wb) == 0;
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

const char *result_value(double v, int decimals, char *buf, size_t len)
{
    if (isnan(v))
        snprintf(buf, len, "nan");
    else
        snprintf(buf, len, "%.*f", decimals, v);
    return buf;
}

int cli_read_as(const char *cmd, pl_dataset *ds, pl_sequence sequence, int permuted,
                uint64_t permute_seed)
{
    pl_error err = {0};
    if (sequence == PL_SEQ_PIXELS)
        pl_dataset_as_pixels(ds);
    if (permuted && pl_dataset_permute(ds, permute_seed, &err)) {
        print_error(cmd, &err);
        return 1;
    }
    return 0;
}

int cli_load_sequences(const char *cmd, const char *model, const pl_model_info *m,
                       const char *path, const char *labels_path, const char *lengths_path,
                       int need_labels, pl_dataset *ds)
{
    pl_error err = {0};
    if (pl_dataset_load_series_for(ds, path, labels_path, lengths_path, m, need_labels, &err) ||
        (m->features && pl_dataset_standardize(ds, m->features, m->norm_mean, m->norm_std, &err))) {
        print_error(cmd, &err);
        if (err.code == PL_ERR_MISMATCH && strstr(err.msg, "features a step"))
            fprintf(stderr, "parlstm %s: the model %s reads sequences of %d features a step\n",
                    cmd, model, m->cols ? m->cols : m->cfg.input);
        return 1;
    }
    return cli_read_as(cmd, ds, m->sequence, 0, 0);
}

int cli_load_model(const char *cmd, const char *path, pl_model_info *m, float **params)
{
    pl_error err = {0};
    if (pl_model_read(path, m, params, &err)) {
        print_error(cmd, &err);
        return 1;
    }
    return 0;
}

/* ---- progress while something long runs in the caller's thread */

static struct {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int running, done;
    const char *cmd, *what;
    double t0;
} ticker = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void *tick(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&ticker.mu);
    for (double next = 1.0; !ticker.done; next += next < 10 ? 4 : 10) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        double wait = ticker.t0 + next - pl_seconds();
        if (wait > 0) {
            until.tv_sec += (time_t)wait;
            until.tv_nsec += (long)((wait - (double)(time_t)wait) * 1e9);
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
        }
        while (!ticker.done &&
               pthread_cond_timedwait(&ticker.cv, &ticker.mu, &until) == 0)
            ;
        if (!ticker.done)
            fprintf(stderr, "parlstm %s: %s ... %.0fs\n", ticker.cmd, ticker.what,
                    pl_seconds() - ticker.t0);
    }
    pthread_mutex_unlock(&ticker.mu);
    return NULL;
}

void cli_progress_start(const char *cmd, const char *what)
{
    ticker.cmd = cmd;
    ticker.what = what;
    ticker.done = 0;
    ticker.t0 = pl_seconds();
    ticker.running = pthread_create(&ticker.thread, NULL, tick, NULL) == 0;
}

void cli_progress_stop(int quiet)
{
    if (!ticker.running)
        return;
    pthread_mutex_lock(&ticker.mu);
    ticker.done = 1;
    pthread_cond_signal(&ticker.cv);
    pthread_mutex_unlock(&ticker.mu);
    pthread_join(ticker.thread, NULL);
    ticker.running = 0;
    double took = pl_seconds() - ticker.t0;
    if (!quiet && took >= 1.0)
        fprintf(stderr, "parlstm %s: %s took %.1fs\n", ticker.cmd, ticker.what, took);
}

const char *cli_reading(const pl_model_info *m, char *buf, size_t len)
{
    if (m->permuted)
        snprintf(buf, len, "%s in a permuted order (seed %llu)",
                 m->sequence == PL_SEQ_PIXELS ? "pixel by pixel" : "row by row",
                 (unsigned long long)m->permute_seed);
    else
        snprintf(buf, len, "%s", m->sequence == PL_SEQ_PIXELS ? "pixel by pixel" : "row by row");
    return buf;
}

const char *cli_describe_model(const pl_model_info *m, char *buf, size_t len)
{
    const pl_config *c = &m->cfg;
    char how[96];
    if (m->T == 0)
        snprintf(buf, len, "%d-%d-%d, %d layer%s, rows of %d pixels (the sequence length not "
                 "recorded)", c->input, c->hidden, c->classes, c->layers,
                 c->layers == 1 ? "" : "s", c->input);
    else if (m->input == PL_INPUT_VALUES)
        snprintf(buf, len, "%d-%d-%d, %d layer%s, sequences of %d steps x %d values read %s%s%s",
                 c->input, c->hidden, c->classes, c->layers, c->layers == 1 ? "" : "s", m->rows,
                 m->cols, cli_reading(m, how, sizeof how),
                 m->features ? ", standardised" : "", m->class_names ? ", classes named" : "");
    else
        snprintf(buf, len, "%d-%d-%d, %d layer%s, %dx%d images read %s", c->input, c->hidden,
                 c->classes, c->layers, c->layers == 1 ? "" : "s", m->rows, m->cols,
                 cli_reading(m, how, sizeof how));
    return buf;
}

/* Command cmd's row of option id. */
static const cli_option *option_of(unsigned cmd, cli_opt_id id)
{
    const cli_option *o = cli_options_for(cmd, NULL);
    while (o && o->id != id)
        o = cli_options_for(cmd, o);
    return o;
}

int cli_missing(unsigned cmd, cli_opt_id id)
{
    const cli_command *c = cli_command_of(cmd);
    const cli_option *o = option_of(cmd, id);
    fprintf(stderr, "parlstm %s: --%s %s is required (see parlstm %s --help)\n", c->name,
            o->name, o->metavar, c->name);
    return EXIT_USAGE;
}

int cli_parse_in_out(unsigned cmd, int argc, char **argv, cli_value v[O_COUNT], cli_opt_id in,
                     cli_opt_id out)
{
    int rc = cli_parse(cmd, argc, argv, v);
    if (rc)
        return rc;
    if (!v[in].text)
        return cli_missing(cmd, in);
    if (!v[out].text)
        return cli_missing(cmd, out);
    if (!cli_same_file(v[in].text, v[out].text))
        return 0;
    fprintf(stderr, "parlstm %s: --%s %s and --%s %s are the same file (give --%s a file of "
            "its own)\n", cli_command_of(cmd)->name, option_of(cmd, in)->name, v[in].text,
            option_of(cmd, out)->name, v[out].text, option_of(cmd, out)->name);
    return EXIT_USAGE;
}

int cli_have_gnuplot(const char *cmd, const char *what)
{
    if (system("command -v gnuplot >/dev/null 2>&1") == 0)
        return 1;
    fprintf(stderr, "parlstm %s: gnuplot not found (Debian package gnuplot-nox); no %s "
            "written\n", cmd, what);
    return 0;
}
