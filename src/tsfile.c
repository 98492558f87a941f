/* The text formats of the time-series archives as a set of series.
 *
 * UCR 2018 .tsv: one series a line, its class label first, then its
 * values, separated by tabs (by commas when the first line has no tab: the
 * older UCR files; one separator for the whole file). Every line has as
 * many fields; a shorter series is padded at its end with NaN. D = 1.
 *
 * UEA/sktime .ts: '@' header lines (keywords case-insensitive, '#'
 * comments anywhere), then after @data one case a line: its dimensions
 * separated by ':', each dimension's values by ',', the class label last.
 * The dimensions of a case have one length; cases may differ. D = the
 * number of dimensions.
 *
 * Both: a missing value ("NaN", any case, or "?") may only pad the end of
 * a series (of each of a case's dimensions): a row's length is its values
 * before the trailing missing ones, and a value after a missing one is
 * refused with its line and column. Lines may be of any length (getline).
 * Rows are gathered as they come (the values of each case, (D, length),
 * one case after the other), then laid out as (n, T, D), zero-padded,
 * after the size of that is checked. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "series.h"

typedef enum { FMT_TSV, FMT_TS } text_format;

/* A text file being read, and the cases read so far. */
typedef struct {
    const char *path;
    text_format fmt;
    FILE *f;
    char *line;         /* the current line, NUL-terminated, without its '\n' */
    size_t line_cap, lineno;
    float *vals;        /* each case's (D, length) values, one case after another */
    size_t nvals, cap_vals;
    int32_t *labels;    /* (n) classes; -1 for a training .tsv until the end */
    int32_t *lengths;   /* (n) */
    size_t *name_at;    /* (n) training .tsv: where each label is in names */
    size_t n, cap_rows;
    char *names;        /* training .tsv: the labels, NUL-terminated */
    size_t nnames, cap_names;
    int D;              /* features a step: 0 until known */
    int T;              /* the longest case */
    int fields;         /* .tsv: values of every line (0 until the first) */
    size_t fields_line; /* .tsv: the line that set fields */
    char sep;           /* .tsv: '\t' or ',' */
    const pl_series *train;
    pl_class_key *train_keys;
    pl_series own;      /* .ts: @classLabel's names */
    pl_class_key *own_keys;
    int equal_length, series_length, data; /* .ts header: @equalLength, @seriesLength, @data seen */
} text_set;

/* Grows *p (of *cap items of elem bytes) to hold need items. */
static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 1;
    size_t want = *cap ? *cap : 64, bytes;
    while (want < need)
        if (__builtin_mul_overflow(want, (size_t)2, &want))
            return 0;
    if (__builtin_mul_overflow(want, elem, &bytes))
        return 0;
    void *q = realloc(*p, bytes);
    if (!q)
        return 0;
    *p = q;
    *cap = want;
    return 1;
}

/* The next line into s->line (its '\r\n' or '\n' cut); 0 at the end. */
static int next_line(text_set *s, pl_error *err, pl_status *rc)
{
    errno = 0;
    ssize_t len = getline(&s->line, &s->line_cap, s->f);
    if (len < 0) {
        if (ferror(s->f))
            *rc = pl_fail(err, PL_ERR_IO, "%s: read failed after line %zu: %s", s->path,
                          s->lineno, strerror(errno ? errno : EIO));
        return 0;
    }
    s->lineno++;
    if (strlen(s->line) != (size_t)len) {
        *rc = pl_fail(err, PL_ERR_CORRUPT, "%s:%zu: a NUL byte: binary data, not text", s->path,
                      s->lineno);
        return 0;
    }
    while (len > 0 && (s->line[len - 1] == '\n' || s->line[len - 1] == '\r' ||
                       s->line[len - 1] == ' ' || s->line[len - 1] == '\t'))
        s->line[--len] = '\0';
    return 1;
}

/* The 1-based column of p in the current line. */
static size_t col(const text_set *s, const char *p)
{
    return (size_t)(p - s->line) + 1;
}

static const char *skip_spaces(const char *p)
{
    while (*p == ' ')
        p++;
    return p;
}

/* Parses the values of one series from p up to stop (':' or '\0'),
 * separated by sep, appending the values before any trailing missing ones
 * to s->vals; *len = how many, *fields = how many fields in all; *end =
 * where it stopped. */
static pl_status parse_values(text_set *s, const char *p, char sep, char stop, size_t *len,
                              size_t *fields, const char **end, pl_error *err)
{
    const char *missing = NULL; /* the first missing value of a run */
    int missing_len = 0;
    *len = *fields = 0;
    for (;;) {
        p = skip_spaces(p);
        const char *tok = p;
        char *after;
        float v = strtof(tok, &after);
        int is_missing = *tok == '?' || (after != tok && isnan(v));
        if (*tok == '?')
            after = (char *)tok + 1;
        /* strtof would skip a tab or newline: an empty field is no number */
        if (after == tok || strchr(" \t\n\v\f\r", *tok) ||
            (*skip_spaces(after) != sep && *skip_spaces(after) != stop &&
             *skip_spaces(after) != '\0'))
            return pl_fail(err, PL_ERR_CORRUPT, "%s:%zu:%zu: expected a number, found '%.20s'",
                           s->path, s->lineno, col(s, tok), tok);
        if (!is_missing && isinf(v))
            return pl_fail(err, PL_ERR_NONFINITE, "%s:%zu:%zu: non-finite value '%.*s'",
                           s->path, s->lineno, col(s, tok), (int)(after - tok), tok);
        if (!is_missing && missing)
            return pl_fail(err, PL_ERR_CORRUPT,
                           "%s:%zu:%zu: a missing value ('%.*s') before the series' end (only "
                           "trailing ones pad a shorter series)",
                           s->path, s->lineno, col(s, missing), missing_len, missing);
        if (is_missing && !missing) {
            missing = tok;
            missing_len = (int)(after - tok);
        }
        if (!is_missing) {
            if (!grow((void **)&s->vals, &s->cap_vals, s->nvals + 1, sizeof *s->vals))
                return pl_fail(err, PL_ERR_NOMEM, "%s:%zu: cannot allocate the values",
                               s->path, s->lineno);
            s->vals[s->nvals++] = v;
            ++*len;
        }
        ++*fields;
        p = skip_spaces(after);
        if (*p != sep)
            break;
        p++;
    }
    *end = p;
    return PL_OK;
}

/* Room for one more row in labels, lengths and name_at. */
static int grow_rows(text_set *s)
{
    size_t cap = s->cap_rows;
    if (s->n < cap)
        return 1;
    if (!grow((void **)&s->labels, &cap, s->n + 1, sizeof *s->labels))
        return 0;
    int32_t *lengths = realloc(s->lengths, cap * sizeof *lengths);
    if (lengths)
        s->lengths = lengths;
    size_t *at = lengths ? realloc(s->name_at, cap * sizeof *at) : NULL;
    if (!at)
        return 0;
    s->name_at = at;
    s->cap_rows = cap;
    return 1;
}

/* Appends one case: its class (or name, for a training .tsv) and length. */
static pl_status add_case(text_set *s, int32_t label, const char *name, size_t len,
                          pl_error *err)
{
    size_t nlen = name ? strlen(name) + 1 : 0;
    if (!grow_rows(s) || !grow((void **)&s->names, &s->cap_names, s->nnames + nlen, 1))
        return pl_fail(err, PL_ERR_NOMEM, "%s:%zu: cannot allocate the rows", s->path,
                       s->lineno);
    if (len == 0)
        return pl_fail(err, PL_ERR_DIMS, "%s:%zu: a series without values", s->path,
                       s->lineno);
    if (len > PL_SERIES_MAX_SIDE)
        return pl_fail(err, PL_ERR_TOO_LARGE, "%s:%zu: a series of %zu steps (at most 2^30)",
                       s->path, s->lineno, len);
    s->labels[s->n] = label;
    s->lengths[s->n] = (int32_t)len;
    s->name_at[s->n] = s->nnames;
    if (name)
        memcpy(s->names + s->nnames, name, nlen);
    s->nnames += nlen;
    s->T = (int)len > s->T ? (int)len : s->T;
    s->n++;
    return PL_OK;
}

/* The class of label name (at column c), or -1 for a training .tsv (its
 * classes are known at the end): a .ts label must be one of @classLabel's,
 * and a test file's one of the training set's classes. */
static pl_status class_of(text_set *s, const char *name, const char *at, int32_t *label,
                          pl_error *err)
{
    *label = -1;
    if (!name[0])
        return pl_fail(err, PL_ERR_CORRUPT, "%s:%zu:%zu: an empty class label", s->path,
                       s->lineno, col(s, at));
    if (s->fmt == FMT_TS && (*label = pl_series_class_of(&s->own, s->own_keys, name)) < 0)
        return pl_fail(err, PL_ERR_LABEL, "%s:%zu:%zu: label '%s' is not one of @classLabel's",
                       s->path, s->lineno, col(s, at), name);
    if (s->train && (*label = pl_series_class_of(s->train, s->train_keys, name)) < 0)
        return pl_fail(err, PL_ERR_LABEL,
                       "%s:%zu:%zu: label '%s' is not a class of the training set", s->path,
                       s->lineno, col(s, at), name);
    return PL_OK;
}

/* ---- UCR .tsv */

/* One line: "label SEP v SEP v ...". */
static pl_status tsv_line(text_set *s, pl_error *err)
{
    char *p = s->line, *cut;
    if (!s->sep) /* the first line decides */
        s->sep = strchr(p, '\t') ? '\t' : ',';
    if (!(cut = strchr(p, s->sep)))
        return pl_fail(err, PL_ERR_CORRUPT, "%s:%zu: a label and no values (expected values "
                       "separated by %s)", s->path, s->lineno, s->sep == '\t' ? "tabs" : "commas");
    *cut = '\0';
    char *name = (char *)skip_spaces(p);
    for (char *e = cut; e > name && e[-1] == ' ';)
        *--e = '\0';
    int32_t label;
    pl_status rc = class_of(s, name, name, &label, err);
    size_t len, fields;
    const char *end;
    if (!rc)
        rc = parse_values(s, cut + 1, s->sep, '\0', &len, &fields, &end, err);
    if (rc)
        return rc;
    if (!s->fields) {
        s->fields = (int)fields;
        s->fields_line = s->lineno;
    }
    if (fields != (size_t)s->fields)
        return pl_fail(err, PL_ERR_MISMATCH,
                       "%s:%zu: %zu values, line %zu has %d (pad shorter series with NaN)",
                       s->path, s->lineno, fields, s->fields_line, s->fields);
    s->D = 1;
    return add_case(s, label, label < 0 ? name : NULL, len, err);
}

/* A training .tsv's label and how it sorts. */
typedef struct {
    const char *name;
    double num; /* its value when every label is a number, else 0 */
} sort_name;

static int sort_name_cmp(const void *a, const void *b)
{
    const sort_name *x = a, *y = b;
    if (x->num != y->num)
        return x->num < y->num ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Each case's label with its sort key: numerically when every label is a
 * finite number ("-1" < "1" < "10"), else lexically (strcmp). */
static sort_name *sorted_labels(const text_set *s)
{
    sort_name *v = malloc(s->n * sizeof *v);
    int numeric = 1;
    for (size_t i = 0; v && i < s->n; i++) {
        char *end;
        v[i].name = s->names + s->name_at[i];
        v[i].num = strtod(v[i].name, &end);
        numeric &= end != v[i].name && !*end && isfinite(v[i].num);
    }
    for (size_t i = 0; v && !numeric && i < s->n; i++)
        v[i].num = 0;
    if (v)
        qsort(v, s->n, sizeof *v, sort_name_cmp);
    return v;
}

/* A training .tsv's classes: its distinct labels in sorted order. */
static pl_status tsv_classes(text_set *s, pl_series *out, pl_error *err)
{
    sort_name *v = sorted_labels(s);
    if (!v || !(out->class_names = calloc(s->n, sizeof *out->class_names))) {
        free(v);
        return pl_fail(err, PL_ERR_NOMEM, "%s: cannot sort %zu labels", s->path, s->n);
    }
    pl_status rc = PL_OK;
    for (size_t i = 0; i < s->n && !rc; i++) {
        if (i > 0 && !strcmp(v[i].name, v[i - 1].name))
            continue;
        if (out->classes == PL_SERIES_MAX_CLASSES)
            rc = pl_fail(err, PL_ERR_TOO_LARGE, "%s: more than %d classes", s->path,
                         PL_SERIES_MAX_CLASSES);
        else if (!(out->class_names[out->classes] = strdup(v[i].name)))
            rc = pl_fail(err, PL_ERR_NOMEM, "%s: cannot copy the class names", s->path);
        else
            out->classes++;
    }
    free(v);
    if (!rc && out->classes < 2)
        rc = pl_fail(err, PL_ERR_LABEL,
                     "%s: every series has label '%s': a training set needs at least 2 classes",
                     s->path, out->class_names[0]);
    return rc;
}

/* A training .tsv's cases get their classes. */
static pl_status tsv_resolve(text_set *s, pl_series *out, pl_error *err)
{
    pl_status rc = tsv_classes(s, out, err);
    pl_class_key *keys = NULL;
    if (!rc)
        rc = pl_series_class_keys(s->path, out, &keys, err);
    for (size_t i = 0; !rc && i < s->n; i++)
        s->labels[i] = pl_series_class_of(out, keys, s->names + s->name_at[i]);
    free(keys);
    return rc;
}

/* ---- UEA .ts */

/* "true" or "false" (any case) as *v. */
static pl_status ts_bool(text_set *s, const char *kw, const char *arg, int *v, pl_error *err)
{
    if (!strcasecmp(arg, "true") || !strcasecmp(arg, "false")) {
        *v = !strcasecmp(arg, "true");
        return PL_OK;
    }
    return pl_fail(err, PL_ERR_CORRUPT, "%s:%zu: @%s takes true or false, found '%.20s'",
                   s->path, s->lineno, kw, arg);
}

/* A count 1..2^30 as *v. */
static pl_status ts_count(text_set *s, const char *kw, const char *arg, int *v, pl_error *err)
{
    char *end;
    errno = 0;
    long x = strtol(arg, &end, 10);
    if (end == arg || *end || errno || x < 1 || x > PL_SERIES_MAX_SIDE)
        return pl_fail(err, PL_ERR_CORRUPT, "%s:%zu: @%s takes a count from 1 to 2^30, found "
                       "'%.20s'", s->path, s->lineno, kw, arg);
    *v = (int)x;
    return PL_OK;
}

/* @classLabel true NAME...: the class names in their order, no two alike
 * (false, a regression problem, is refused). */
static pl_status ts_class_label(text_set *s, char *arg, pl_error *err)
{
    char *save, *tok = strtok_r(arg, " \t", &save);
    int yes = 0;
    pl_status rc = ts_bool(s, "classLabel", tok ? tok : "", &yes, err);
    if (rc)
        return rc;
    if (!yes)
        return pl_fail(err, PL_ERR_VERSION, "%s:%zu: @classLabel false: regression is not "
                       "supported (a class label for each case is)", s->path, s->lineno);
    if (s->own.class_names)
        return pl_fail(err, PL_ERR_CORRUPT, "%s:%zu: a second @classLabel", s->path, s->lineno);
    /* at most one name for every two bytes of the line */
    s->own.class_names = calloc(strlen(save ? save : "") / 2 + 1, sizeof(char *));
    if (!s->own.class_names)
        return pl_fail(err, PL_ERR_NOMEM, "%s:%zu: cannot allocate the names", s->path, s->lineno);
    while ((tok = strtok_r(NULL, " \t", &save)) && s->own.classes < PL_SERIES_MAX_CLASSES)
        if (!(s->own.class_names[s->own.classes++] = strdup(tok)))
            return pl_fail(err, PL_ERR_NOMEM, "%s:%zu: cannot copy the names", s->path, s->lineno);
    if (tok || s->own.classes == 0)
        return pl_fail(err, tok ? PL_ERR_TOO_LARGE : PL_ERR_CORRUPT,
                       "%s:%zu: @classLabel true with %s classes", s->path, s->lineno,
                       tok ? "more than 65536" : "no");
    rc = pl_series_class_keys(s->path, &s->own, &s->own_keys, err);
    for (int c = 1; !rc && c < s->own.classes; c++)
        if (!strcmp(s->own_keys[c].name, s->own_keys[c - 1].name))
            rc = pl_fail(err, PL_ERR_CORRUPT, "%s:%zu: @classLabel names '%s' twice", s->path,
                         s->lineno, s->own_keys[c].name);
    return rc;
}

/* @dimensions N and @univariate true/false: D, once. */
static pl_status ts_dims(text_set *s, int d, pl_error *err)
{
    if (s->D && s->D != d)
        return pl_fail(err, PL_ERR_MISMATCH, "%s:%zu: %d dimensions, an earlier line says %d",
                       s->path, s->lineno, d, s->D);
    s->D = d;
    return PL_OK;
}

/* One '@' line: its keyword (any case) and argument. */
static pl_status ts_header(text_set *s, char *p, pl_error *err)
{
    char *kw = p + 1, *arg = kw + strcspn(kw, " \t");
    if (*arg)
        *arg++ = '\0';
    arg = (char *)skip_spaces(arg);
    int v = 0;
    pl_status rc = PL_OK;
    if (!strcasecmp(kw, "problemName"))
        return PL_OK;
    if (!strcasecmp(kw, "missing"))
        return ts_bool(s, kw, arg, &v, err);
    if (!strcasecmp(kw, "timeStamps") && !(rc = ts_bool(s, kw, arg, &v, err)) && v)
        return pl_fail(err, PL_ERR_VERSION, "%s:%zu: @timeStamps true: time-stamped series are "
                       "not supported", s->path, s->lineno);
    if (!strcasecmp(kw, "timeStamps"))
        return rc;
    if (!strcasecmp(kw, "univariate"))
        return (rc = ts_bool(s, kw, arg, &v, err)) || !v ? rc : ts_dims(s, 1, err);
    if (!strcasecmp(kw, "dimensions") || !strcasecmp(kw, "dimension"))
        return (rc = ts_count(s, kw, arg, &v, err)) ? rc : ts_dims(s, v, err);
    if (!strcasecmp(kw, "equalLength"))
        return ts_bool(s, kw, arg, &s->equal_length, err);
    if (!strcasecmp(kw, "seriesLength"))
        return ts_count(s, kw, arg, &s->series_length, err);
    if (!strcasecmp(kw, "classLabel"))
        return ts_class_label(s, arg, err);
    if (!strcasecmp(kw, "targetLabel"))
        return pl_fail(err, PL_ERR_VERSION, "%s:%zu: @targetLabel: regression is not supported",
                       s->path, s->lineno);
    if (strcasecmp(kw, "data"))
        return pl_fail(err, PL_ERR_CORRUPT, "%s:%zu: unknown header line '@%.30s'", s->path,
                       s->lineno, kw);
    if (!s->own.class_names)
        return pl_fail(err, PL_ERR_CORRUPT, "%s:%zu: @data before @classLabel: the cases need "
                       "class labels", s->path, s->lineno);
    s->data = 1;
    return PL_OK;
}

/* What @equalLength and @seriesLength promise of a case of len steps. */
static pl_status ts_check_length(text_set *s, size_t len, pl_error *err)
{
    if (s->equal_length == 1 && s->series_length && len != (size_t)s->series_length)
        return pl_fail(err, PL_ERR_MISMATCH, "%s:%zu: a case of %zu steps; @seriesLength says %d",
                       s->path, s->lineno, len, s->series_length);
    if (s->equal_length == 1 && s->n > 0 && len != (size_t)s->lengths[0])
        return pl_fail(err, PL_ERR_MISMATCH, "%s:%zu: a case of %zu steps, the first has %d "
                       "(@equalLength true)", s->path, s->lineno, len, s->lengths[0]);
    return PL_OK;
}

/* One case: "v,v,...:v,v,...:label". */
static pl_status ts_line(text_set *s, pl_error *err)
{
    char *name = strrchr(s->line, ':');
    if (!name)
        return pl_fail(err, PL_ERR_CORRUPT, "%s:%zu: expected dimensions separated by ':' and "
                       "the class label last", s->path, s->lineno);
    *name++ = '\0';
    name = (char *)skip_spaces(name);
    int dims = 1;
    for (const char *q = s->line; (q = strchr(q, ':')); q++)
        dims++;
    if (!s->D)
        s->D = dims;
    if (dims != s->D)
        return pl_fail(err, PL_ERR_MISMATCH, "%s:%zu: %d dimensions, expected %d (@dimensions, "
                       "@univariate or the first case)", s->path, s->lineno, dims, s->D);
    int32_t label;
    pl_status rc = class_of(s, name, name, &label, err);
    const char *p = s->line;
    size_t len0 = 0, len, fields;
    for (int d = 0; d < dims && !rc; d++) {
        rc = parse_values(s, p, ',', ':', &len, &fields, &p, err);
        if (!rc && d > 0 && len != len0)
            rc = pl_fail(err, PL_ERR_MISMATCH, "%s:%zu: dimension %d has %zu values, dimension "
                         "1 has %zu (the dimensions of a case have one length)", s->path,
                         s->lineno, d + 1, len, len0);
        len0 = d == 0 ? len : len0;
        p += *p == ':';
    }
    if (!rc)
        rc = ts_check_length(s, len0, err);
    return rc ? rc : add_case(s, label, NULL, len0, err);
}

/* ---- the whole file */

/* Every line: blank ones skipped, '#' comments and '@' headers in a .ts. */
static pl_status read_lines(text_set *s, pl_error *err)
{
    pl_status rc = PL_OK;
    while (!rc && next_line(s, err, &rc)) {
        char *p = s->line + strspn(s->line, " \t");
        if (!*p || (s->fmt == FMT_TS && *p == '#'))
            continue;
        if (s->fmt == FMT_TSV)
            rc = tsv_line(s, err);
        else if (*p == '@' && !s->data)
            rc = ts_header(s, p, err);
        else if (*p == '@' || !s->data)
            rc = pl_fail(err, PL_ERR_CORRUPT, "%s:%zu: %s", s->path, s->lineno,
                         *p == '@' ? "a header line after @data" : "a case before @data");
        else
            rc = ts_line(s, err);
    }
    if (!rc && s->fmt == FMT_TS && !s->data)
        rc = pl_fail(err, PL_ERR_CORRUPT, "%s: no @data line (%zu lines read)", s->path,
                     s->lineno);
    if (!rc && s->n == 0)
        rc = pl_fail(err, PL_ERR_DIMS, "%s: no series in the file", s->path);
    if (!rc && s->fmt == FMT_TS && !s->train && s->own.classes < 2)
        rc = pl_fail(err, PL_ERR_LABEL, "%s: @classLabel names %d class: a training set needs "
                     "at least 2", s->path, s->own.classes);
    return rc;
}

/* The cases laid out as (n, T, D), each zero-padded after its length. */
static pl_status pack(text_set *s, pl_series *out, pl_error *err)
{
    size_t bytes;
    pl_status rc = pl_series_size(s->path, s->n, (size_t)s->T, (size_t)s->D, &bytes, err);
    if (rc)
        return rc;
    if (!(out->values = pl_alloc_aligned(bytes))) /* zeroed */
        return pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate %zu bytes", s->path, bytes);
    const float *src = s->vals; /* case i: (D, len) */
    size_t D = (size_t)s->D, row = (size_t)s->T * D;
    for (size_t i = 0; i < s->n; i++) {
        size_t len = (size_t)s->lengths[i];
        float *dst = out->values + i * row; /* (T, D) */
        for (size_t d = 0; d < D; d++)
            for (size_t t = 0; t < len; t++)
                dst[t * D + d] = src[d * len + t];
        src += D * len;
    }
    out->n = s->n;
    out->T = s->T;
    out->D = s->D;
    out->labels = s->labels;
    out->lengths = s->lengths;
    s->labels = NULL;
    s->lengths = NULL;
    return PL_OK;
}

/* The classes: the training set's (a test file), the sorted labels (a
 * training .tsv) or @classLabel's (a training .ts). */
static pl_status finish(text_set *s, pl_series *out, pl_error *err)
{
    pl_status rc = PL_OK;
    if (s->train && s->train->D != s->D)
        return pl_fail(err, PL_ERR_MISMATCH, "%s: %d features a step, the training set has %d",
                       s->path, s->D, s->train->D);
    if (s->train) {
        out->classes = s->train->classes;
        rc = pl_series_copy_names(s->path, s->train, out, err);
    } else if (s->fmt == FMT_TSV) {
        rc = tsv_resolve(s, out, err);
    } else {
        out->classes = s->own.classes;
        out->class_names = s->own.class_names;
        s->own.class_names = NULL;
        s->own.classes = 0;
    }
    return rc ? rc : pack(s, out, err);
}

static void text_set_free(text_set *s)
{
    if (s->f)
        fclose(s->f);
    free(s->line);
    free(s->vals);
    free(s->labels);
    free(s->lengths);
    free(s->name_at);
    free(s->names);
    free(s->train_keys);
    free(s->own_keys);
    pl_series_free(&s->own);
}

static pl_status read_text(const char *path, text_format fmt, const pl_series *train,
                           pl_series *out, pl_error *err)
{
    memset(out, 0, sizeof *out);
    text_set s = {.path = path, .fmt = fmt, .train = train, .equal_length = -1};
    int fd;
    size_t size;
    pl_status rc = pl_series_open(path, &fd, &size, err);
    if (rc)
        return rc;
    if (!(s.f = fdopen(fd, "r"))) {
        close(fd);
        return pl_fail(err, PL_ERR_NOMEM, "%s: cannot open a stream", path);
    }
    if (train)
        rc = pl_series_class_keys(path, train, &s.train_keys, err);
    if (!rc)
        rc = read_lines(&s, err);
    if (!rc)
        rc = finish(&s, out, err);
    text_set_free(&s);
    if (rc)
        pl_series_free(out);
    return rc;
}

pl_status pl_tsv_read(const char *path, const pl_series *train, pl_series *out, pl_error *err)
{
    return read_text(path, FMT_TSV, train, out, err);
}

pl_status pl_ts_read(const char *path, const pl_series *train, pl_series *out, pl_error *err)
{
    return read_text(path, FMT_TS, train, out, err);
}
