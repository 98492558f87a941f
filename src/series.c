/* What the series readers share (npy.c, tsfile.c): opening a file, the
 * size check of an (n, T, D) buffer, class names looked up by name,
 * freeing a set, and pl_series_read, which tells a file's kind. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "series.h"

pl_status pl_series_open(const char *path, int *fd_out, size_t *size, pl_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return pl_fail(err, errno == ENOENT ? PL_ERR_NOT_FOUND : PL_ERR_IO, "%s: %s", path,
                       errno == ENOENT ? "no such file" : strerror(errno));
    if (!S_ISREG(st.st_mode))
        return pl_fail(err, PL_ERR_NOT_FILE, "%s: expected a regular file, found a %s", path,
                       S_ISDIR(st.st_mode) ? "directory" : S_ISFIFO(st.st_mode) ? "FIFO"
                                                                                : "special file");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pl_fail(err, PL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    /* the size of what was opened (the name may have changed since stat) */
    if (fstat(fd, &st) != 0) {
        close(fd);
        return pl_fail(err, PL_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    if (st.st_size == 0) {
        close(fd);
        return pl_fail(err, PL_ERR_EMPTY, "%s: the file is empty", path);
    }
    *fd_out = fd;
    *size = (size_t)st.st_size;
    return PL_OK;
}

pl_status pl_series_size(const char *path, size_t n, size_t T, size_t D, size_t *bytes,
                         pl_error *err)
{
    size_t cells;
    if (__builtin_mul_overflow(n, T, &cells) || __builtin_mul_overflow(cells, D, &cells) ||
        __builtin_mul_overflow(cells, sizeof(float), bytes))
        return pl_fail(err, PL_ERR_TOO_LARGE, "%s: %zu series of %zu x %zu values overflow",
                       path, n, T, D);
    double ram = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (ram > 0 && (double)*bytes > 0.8 * ram)
        return pl_fail(err, PL_ERR_TOO_LARGE,
                       "%s: %zu series of %zu x %zu float values need %.1f GiB, more than this "
                       "machine's memory (%.1f GiB)",
                       path, n, T, D, (double)*bytes / 1073741824.0, ram / 1073741824.0);
    return PL_OK;
}

pl_status pl_series_full_lengths(const char *path, pl_series *out, pl_error *err)
{
    out->lengths = malloc((out->n ? out->n : 1) * sizeof *out->lengths);
    if (!out->lengths)
        return pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate %zu lengths", path, out->n);
    for (size_t i = 0; i < out->n; i++)
        out->lengths[i] = out->T;
    return PL_OK;
}

pl_status pl_series_copy_names(const char *path, const pl_series *set, pl_series *out,
                               pl_error *err)
{
    if (!set->class_names)
        return PL_OK;
    out->class_names = calloc((size_t)set->classes, sizeof *out->class_names);
    for (int c = 0; out->class_names && c < set->classes; c++)
        if (!(out->class_names[c] = strdup(set->class_names[c]))) {
            for (int k = 0; k < c; k++)
                free(out->class_names[k]);
            free(out->class_names);
            out->class_names = NULL;
        }
    if (!out->class_names)
        return pl_fail(err, PL_ERR_NOMEM, "%s: cannot copy %d class names", path,
                       set->classes);
    return PL_OK;
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(((const pl_class_key *)a)->name, ((const pl_class_key *)b)->name);
}

pl_status pl_series_class_keys(const char *path, const pl_series *set, pl_class_key **keys,
                               pl_error *err)
{
    *keys = NULL;
    if (!set->class_names)
        return PL_OK;
    pl_class_key *k = malloc((size_t)(set->classes > 0 ? set->classes : 1) * sizeof *k);
    if (!k)
        return pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate %d class names", path,
                       set->classes);
    for (int c = 0; c < set->classes; c++)
        k[c] = (pl_class_key){set->class_names[c], c};
    qsort(k, (size_t)set->classes, sizeof *k, key_cmp);
    *keys = k;
    return PL_OK;
}

int pl_series_class_of(const pl_series *set, const pl_class_key *keys, const char *name)
{
    if (!set->class_names) { /* the index is the name: decimal digits only */
        long v = 0;
        if (!name[0] || strspn(name, "0123456789") != strlen(name) || strlen(name) > 9)
            return -1;
        v = strtol(name, NULL, 10);
        return v < set->classes ? (int)v : -1;
    }
    size_t lo = 0, hi = (size_t)set->classes; /* binary search in [lo, hi) */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, keys[mid].name);
        if (c == 0)
            return keys[mid].index;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

void pl_series_free(pl_series *s)
{
    if (s->mapped)
        munmap(s->mapped, s->mapped_len);
    else
        free(s->values);
    free(s->labels);
    free(s->lengths);
    for (int c = 0; s->class_names && c < s->classes; c++)
        free(s->class_names[c]);
    free(s->class_names);
    memset(s, 0, sizeof *s);
}

/* ---- the dispatcher */

typedef enum { KIND_UNKNOWN, KIND_NPY, KIND_TS, KIND_TSV } series_kind;

/* path's extension is ext (case-insensitive). */
static int has_ext(const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    return n > e && strcasecmp(path + n - e, ext) == 0;
}

/* The kind of file path is, from its first bytes (the .npy magic; a
 * first non-blank character '@' or '#' starts a .ts header), then its
 * extension. */
static series_kind kind_of(const char *path, const unsigned char *head, size_t len)
{
    if (len >= 6 && memcmp(head, "\x93NUMPY", 6) == 0)
        return KIND_NPY;
    size_t i = 0;
    while (i < len && (head[i] == ' ' || head[i] == '\t' || head[i] == '\r' || head[i] == '\n'))
        i++;
    if (i < len && (head[i] == '@' || head[i] == '#'))
        return KIND_TS;
    if (has_ext(path, ".npy"))
        return KIND_NPY;
    if (has_ext(path, ".ts"))
        return KIND_TS;
    if (has_ext(path, ".tsv") || has_ext(path, ".txt") || has_ext(path, ".csv"))
        return KIND_TSV;
    return KIND_UNKNOWN;
}

pl_status pl_series_read(const char *path, const char *labels_path, const char *lengths_path,
                         const pl_series *train, pl_series *out, pl_error *err)
{
    memset(out, 0, sizeof *out);
    int fd;
    size_t size;
    pl_status rc = pl_series_open(path, &fd, &size, err);
    if (rc)
        return rc;
    unsigned char head[256];
    ssize_t got = pread(fd, head, sizeof head, 0);
    close(fd);
    if (got < 0)
        return pl_fail(err, PL_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    series_kind kind = kind_of(path, head, (size_t)got);
    if (kind == KIND_UNKNOWN)
        return pl_fail(err, PL_ERR_MAGIC,
                       "%s: unknown kind of series file: neither a NumPy .npy (magic "
                       "\\x93NUMPY) nor a UEA .ts (@ header lines), and no .npy, .ts, .tsv, "
                       ".txt or .csv extension",
                       path);
    if (kind == KIND_NPY)
        return pl_npy_read_series(path, labels_path, lengths_path, train, PL_NPY_AUTO, out,
                                  err);
    if (labels_path || lengths_path)
        return pl_fail(err, PL_ERR_ARG,
                       "%s: a %s file holds its own labels and lengths (a separate %s file "
                       "is for .npy values only)",
                       path, kind == KIND_TS ? "UEA .ts" : "UCR .tsv",
                       labels_path ? "labels" : "lengths");
    return kind == KIND_TS ? pl_ts_read(path, train, out, err)
                           : pl_tsv_read(path, train, out, err);
}
