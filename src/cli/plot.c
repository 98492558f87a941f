/* parlstm plot: the loss and accuracy of a training log (parlstm train
 * --log) against the training step, drawn by gnuplot into a PNG.
 *
 * The log is read here, not by gnuplot: its header names the columns, rows
 * that a crash cut short are skipped (and counted), and the rows of steps
 * that a resumed run did again replace the ones before them. What remains
 * goes to gnuplot as three data blocks: training, validation, test. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char *const CMD = "plot";

enum { K_TRAIN, K_VAL, K_TEST, K_KINDS };
static const char *const KINDS[K_KINDS] = {"train", "val", "test"};

typedef struct {
    int kind;
    long step;
    double loss, accuracy;
} log_row;

typedef struct {
    log_row *rows;
    size_t n, cap;
    long skipped, first_skipped; /* malformed rows, and the line of the first */
} log_rows;

/* The columns of the log's header that plot needs: their positions. */
enum { C_KIND, C_STEP, C_LOSS, C_ACCURACY, C_NEEDED };
static const char *const NEEDED[C_NEEDED] = {"kind", "step", "loss", "accuracy"};

/* Splits line (no line break) at commas into at most max fields. */
static int split(char *line, char **fields, int max)
{
    int n = 0;
    for (char *p = line; n < max;) {
        fields[n++] = p;
        p = strchr(p, ',');
        if (!p)
            break;
        *p++ = '\0';
    }
    return n;
}

static int header_columns(const char *path, char *line, int *col)
{
    char *f[64];
    int n = split(line, f, 64);
    for (int c = 0; c < C_NEEDED; c++) {
        col[c] = -1;
        for (int i = 0; i < n; i++)
            if (!strcmp(f[i], NEEDED[c]))
                col[c] = i;
        if (col[c] < 0) {
            fprintf(stderr, "parlstm plot: %s: not a parlstm training log (its header has no "
                    "'%s' column; parlstm train --log writes '%s')\n", path, NEEDED[c],
                    CLI_LOG_HEADER);
            return 1;
        }
    }
    return 0;
}

/* A data row: its kind, step, loss and accuracy, all there and finite. */
static int parse_row(char *line, const int *col, log_row *r)
{
    char *f[64], *end;
    int n = split(line, f, 64);
    for (int c = 0; c < C_NEEDED; c++)
        if (col[c] >= n)
            return 0;
    r->kind = -1;
    for (int k = 0; k < K_KINDS; k++)
        if (!strcmp(f[col[C_KIND]], KINDS[k]))
            r->kind = k;
    errno = 0;
    r->step = strtol(f[col[C_STEP]], &end, 10);
    if (r->kind < 0 || *end || end == f[col[C_STEP]] || errno || r->step < 0)
        return 0;
    r->loss = strtod(f[col[C_LOSS]], &end);
    if (*end || end == f[col[C_LOSS]] || !isfinite(r->loss))
        return 0;
    r->accuracy = strtod(f[col[C_ACCURACY]], &end);
    return !*end && end != f[col[C_ACCURACY]] && isfinite(r->accuracy);
}

/* Adds r; a row whose step is not beyond the last of its kind starts
 * again from an earlier step (a resumed run): the rows it replaces, every
 * kept row at or after its step, go. */
static int keep(log_rows *lr, const log_row *r)
{
    long last = -1;
    for (size_t i = 0; i < lr->n; i++)
        if (lr->rows[i].kind == r->kind && lr->rows[i].step > last)
            last = lr->rows[i].step;
    if (r->step <= last) {
        size_t k = 0;
        for (size_t i = 0; i < lr->n; i++)
            if (lr->rows[i].step < r->step)
                lr->rows[k++] = lr->rows[i];
        lr->n = k;
    }
    if (lr->n == lr->cap) {
        size_t cap = lr->cap ? 2 * lr->cap : 256;
        log_row *more = realloc(lr->rows, cap * sizeof *more);
        if (!more)
            return 1;
        lr->rows = more;
        lr->cap = cap;
    }
    lr->rows[lr->n++] = *r;
    return 0;
}

/* Reads the log; 0, or 1 after a message. */
static int read_log(const char *path, log_rows *lr)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "parlstm plot: %s: cannot open the log: %s\n", path, strerror(errno));
        return 1;
    }
    char line[4096];
    int col[C_NEEDED], rc = 0;
    long lineno = 1;
    if (!fgets(line, sizeof line, f)) {
        fprintf(stderr, "parlstm plot: %s: the log is empty\n", path);
        rc = 1;
    } else {
        line[strcspn(line, "\r\n")] = '\0';
        rc = header_columns(path, line, col);
    }
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        log_row r;
        if (!parse_row(line, col, &r)) {
            if (!lr->skipped++)
                lr->first_skipped = lineno;
        } else if (keep(lr, &r)) {
            fprintf(stderr, "parlstm plot: out of memory\n");
            rc = 1;
        }
    }
    fclose(f);
    if (!rc && lr->n == 0) {
        fprintf(stderr, "parlstm plot: %s: no rows to draw (a log of a run that logged no "
                "step yet?)\n", path);
        rc = 1;
    }
    return rc;
}

/* The rows as gnuplot data blocks, one per kind that has rows; *present
 * says which. 0, or 1 after a message. */
static int write_data(const log_rows *lr, const char *dat, int *present)
{
    FILE *f = fopen(dat, "w");
    if (!f) {
        fprintf(stderr, "parlstm plot: %s: %s\n", dat, strerror(errno));
        return 1;
    }
    for (int k = 0; k < K_KINDS; k++) {
        present[k] = 0;
        for (size_t i = 0; i < lr->n; i++)
            if (lr->rows[i].kind == k) {
                fprintf(f, "%ld %.9g %.9g\n", lr->rows[i].step, lr->rows[i].loss,
                        lr->rows[i].accuracy);
                present[k] = 1;
            }
        if (present[k])
            fprintf(f, "\n\n");
    }
    return fclose(f) != 0;
}

/* s as a gnuplot single-quoted string (quotes doubled). */
static void gp_string(FILE *g, const char *s)
{
    fputc('\'', g);
    for (; *s; s++) {
        if (*s == '\'')
            fputc('\'', g);
        fputc(*s, g);
    }
    fputc('\'', g);
}

/* One panel: column col (2 loss, 3 accuracy) of every block present, in
 * the styles of KINDS; the key gives each kind's last value. */
static void plot_panel(FILE *g, const char *dat, const log_rows *lr, const int *present,
                       int col)
{
    static const char *const style[K_KINDS] = {
        "with lines lw 2 lc rgb '#1f77b4'",
        "with linespoints lw 2 pt 7 ps 1.4 lc rgb '#d62728'",
        "with points pt 5 ps 1.8 lc rgb '#2ca02c'",
    };
    static const char *const name[K_KINDS] = {"training (mean over each interval)",
                                              "validation", "test"};
    const char *sep = "plot ";
    for (int k = 0, block = 0; k < K_KINDS; k++) {
        if (!present[k])
            continue;
        double last = NAN;
        for (size_t i = 0; i < lr->n; i++)
            if (lr->rows[i].kind == k)
                last = col == 2 ? lr->rows[i].loss : lr->rows[i].accuracy;
        char title[96];
        snprintf(title, sizeof title, "%s, last %.4f", name[k], last);
        fputs(sep, g);
        gp_string(g, dat);
        fprintf(g, " index %d using 1:%d %s title ", block++, col, style[k]);
        gp_string(g, title);
        sep = ", ";
    }
    fprintf(g, "\n");
}

/* The accuracy axis starts below the accuracies of the run once it is
 * under way (after the first tenth of its steps, and every evaluation), on
 * a multiple of 0.05: the first steps' low accuracies would squeeze the
 * part worth reading into a sliver. *clipped: whether some row is below. */
static double accuracy_floor(const log_rows *lr, long last, int *clipped)
{
    double lo = 1.0;
    for (size_t i = 0; i < lr->n; i++)
        if (lr->rows[i].kind != K_TRAIN || lr->rows[i].step >= last / 10)
            lo = fmin(lo, lr->rows[i].accuracy);
    lo = fmax(0.0, floor((lo - 0.02) * 20) / 20);
    *clipped = 0;
    for (size_t i = 0; i < lr->n; i++)
        *clipped |= lr->rows[i].accuracy < lo;
    return lo;
}

static int draw(const char *log, const char *png, const log_rows *lr)
{
    char dat[4096];
    const char *tmp = getenv("TMPDIR");
    snprintf(dat, sizeof dat, "%s/parlstm-plot-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(dat), present[K_KINDS];
    if (fd < 0) {
        fprintf(stderr, "parlstm plot: cannot create a temporary file in %s: %s\n",
                tmp && *tmp ? tmp : "/tmp", strerror(errno));
        return 1;
    }
    close(fd);
    long last = 0;
    for (size_t i = 0; i < lr->n; i++)
        last = lr->rows[i].step > last ? lr->rows[i].step : last;
    FILE *g = NULL;
    int rc = write_data(lr, dat, present) || !(g = popen("gnuplot", "w"));
    if (!rc) {
        /* file names go into gnuplot's single-quoted strings: quotes doubled */
        fprintf(g, "set terminal pngcairo size 900,720 noenhanced font 'sans,11'\n"
                   "set output ");
        gp_string(g, png);
        char title[4200];
        snprintf(title, sizeof title, "parlstm training log %s: %ld steps", log, last);
        fprintf(g, "\nset multiplot layout 2,1 title ");
        gp_string(g, title);
        fprintf(g, "\n"
                   "set grid\nset lmargin 12\nset rmargin 4\nset xrange [0:%g]\n"
                   "set key top right box opaque\n"
                   "set ylabel 'loss (cross-entropy)'\nset logscale y\nset format x ''\n",
                last > 0 ? last * 1.03 : 1.0); /* room for the points at the last step */
        plot_panel(g, dat, lr, present, 2);
        int clipped;
        double lo = accuracy_floor(lr, last, &clipped);
        fprintf(g, "unset logscale y\nset format x '%%g'\nset xlabel 'training step'\n"
                   "set ylabel 'accuracy'\nset yrange [%g:1]\nset key bottom right box opaque\n",
                lo);
        if (clipped)
            fprintf(g, "set label 1 'the first steps, below %.2f, are off the axis' at graph "
                       "0.02, graph 0.93 left font ',9'\n", lo);
        plot_panel(g, dat, lr, present, 3);
        fprintf(g, "unset multiplot\n");
        rc = pclose(g) != 0 || access(png, F_OK) != 0;
        if (rc)
            fprintf(stderr, "parlstm plot: gnuplot failed (see its message above); no plot "
                    "written\n");
    } else {
        fprintf(stderr, "parlstm plot: cannot run gnuplot\n");
    }
    unlink(dat);
    return rc;
}

int cmd_plot(int argc, char **argv)
{
    cli_value v[O_COUNT];
    int rc = cli_parse_in_out(CMD_PLOT, argc, argv, v, O_PLOT_LOG, O_PLOT_OUT);
    if (rc)
        return rc < 0 ? 0 : rc;
    const char *log = v[O_PLOT_LOG].text, *png = v[O_PLOT_OUT].text;
    log_rows lr = {0};
    if (read_log(log, &lr)) {
        free(lr.rows);
        return 1;
    }
    if (lr.skipped)
        fprintf(stderr, "parlstm plot: note: %s: skipped %ld malformed row%s (the first on line "
                "%ld; a row cut short by a crash?)\n", log, lr.skipped,
                lr.skipped == 1 ? "" : "s", lr.first_skipped);
    rc = cli_have_gnuplot(CMD, "plot") ? draw(log, png, &lr) : 1;
    if (!rc)
        fprintf(stderr, "parlstm plot: %zu rows of %s drawn into %s\n", lr.n, log, png);
    free(lr.rows);
    return rc;
}
