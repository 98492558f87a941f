/* parlstm train --log: the training curve as CSV (see CLI_LOG_HEADER and
 * the train notes), written as training goes. Every row is flushed, so a
 * crash keeps what was logged; a resumed run appends to the log it had. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* An existing log opened to append: its first line is our header, and it
 * ends with a line break (else one is added: a row cut by a crash stays a
 * row of its own, which parlstm plot skips). Returns 0, or 1 after a
 * message. */
static int check_existing(cli_log *lg)
{
    char line[256];
    if (!fgets(line, sizeof line, lg->f))
        return 0; /* empty: the header goes in */
    line[strcspn(line, "\r\n")] = '\0';
    if (strcmp(line, CLI_LOG_HEADER) != 0) {
        fprintf(stderr, "parlstm train: --log %s: not a parlstm training log (its first line "
                "is '%.60s', expected '%s'); give --log another file\n", lg->path, line,
                CLI_LOG_HEADER);
        return 1;
    }
    if (fseek(lg->f, -1, SEEK_END) == 0 && fgetc(lg->f) != '\n')
        fputc('\n', lg->f);
    return 0;
}

int cli_log_open(cli_log *lg, const char *path, int append)
{
    memset(lg, 0, sizeof *lg);
    lg->path = path;
    lg->f = fopen(path, append ? "a+" : "w");
    if (!lg->f) {
        fprintf(stderr, "parlstm train: --log %s: cannot open it: %s\n", path, strerror(errno));
        return 1;
    }
    if (append && check_existing(lg)) {
        fclose(lg->f);
        lg->f = NULL;
        return 1;
    }
    fseek(lg->f, 0, SEEK_END);
    if (ftell(lg->f) == 0)
        fprintf(lg->f, "%s\n", CLI_LOG_HEADER);
    if (fflush(lg->f) != 0) {
        fprintf(stderr, "parlstm train: --log %s: cannot write it: %s\n", path, strerror(errno));
        fclose(lg->f);
        lg->f = NULL;
        return 1;
    }
    return 0;
}

/* ",%.*f" of x, or "," alone for NaN. */
static void field(FILE *f, const char *fmt, double x)
{
    fputc(',', f);
    if (!isnan(x))
        fprintf(f, fmt, x);
}

void cli_log_row(cli_log *lg, const char *kind, long step, long epoch, double lr, double loss,
                 double accuracy, double grad_norm, double samples_per_sec, double seconds)
{
    if (!lg->f || lg->failed)
        return;
    fprintf(lg->f, "%s,%ld,%ld", kind, step, epoch);
    field(lg->f, "%.6g", lr);
    field(lg->f, "%.6f", loss);
    field(lg->f, "%.6f", accuracy);
    field(lg->f, "%.6g", grad_norm);
    field(lg->f, "%.0f", samples_per_sec);
    field(lg->f, "%.3f", seconds);
    fputc('\n', lg->f);
    if (fflush(lg->f) != 0 || ferror(lg->f)) {
        fprintf(stderr, "parlstm train: warning: --log %s: write failed (%s); training goes on "
                "without the log\n", lg->path, strerror(errno));
        lg->failed = 1;
    }
}

void cli_log_close(cli_log *lg)
{
    if (lg->f)
        fclose(lg->f);
    lg->f = NULL;
}
