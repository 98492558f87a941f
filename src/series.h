/* Your own sequences: NumPy .npy arrays, UCR 2018 .tsv and UEA/sktime .ts
 * files read into one shape, (n, T, D) float32 with a label and a length
 * per row (issue 18). The readers only read and check; a data set, the
 * trainer and the program build on pl_series (not part of the public API).
 *
 * Every reader names the file in its errors (text formats also the line,
 * and the column where it helps), checks each size a file claims before it
 * allocates for it, and leaves nothing half-loaded: on an error everything
 * it allocated is freed and *out is zeroed.
 *
 * One class mapping for a training set and its test sets: each reader
 * takes the training set (NULL when it reads the training set itself); a
 * test file's labels are mapped to the training set's classes, and a label
 * the training set does not have is refused. */
#ifndef PARLSTM_SERIES_H
#define PARLSTM_SERIES_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

/* No set of series has more classes than this. */
#define PL_SERIES_MAX_CLASSES 65536
/* No series is longer, or wider, than this (T and D are ints). */
#define PL_SERIES_MAX_SIDE (1 << 30)

typedef struct {
    float *values;      /* (n, T, D) row-major; steps at or beyond a row's length are 0,
                           or never to be read when mapped is not NULL */
    int32_t *labels;    /* (n) class indices in [0, classes); NULL: a .npy read without
                           its labels file */
    int32_t *lengths;   /* (n) valid steps of each row, 1..T */
    size_t n;           /* rows */
    int T, D;           /* the longest row's steps; features per step */
    int classes;        /* the training set's class count (0 without labels) */
    char **class_names; /* (classes) the labels as the file writes them ("1", "-1",
                           "walking"), or NULL for .npy (the index is the name) */
    void *mapped;       /* the file that values points into (mmap), or NULL */
    size_t mapped_len;  /* its length in bytes */
} pl_series;

/* How a .npy of little-endian float32 values in C order reaches memory:
 * copied, mapped (values then point into a private mapping of the file:
 * writes stay in this process; steps beyond a row's length are never
 * read, not zeroed), or mapped when it is large (PL_NPY_MAP_MIN). Other
 * dtypes, a data offset that is not a multiple of 4, or a failed mmap are
 * copied whatever the mode (s->mapped says which it was). A mapped file
 * that another process truncates raises SIGBUS, as any mapping does. */
typedef enum { PL_NPY_COPY = 0, PL_NPY_MAP = 1, PL_NPY_AUTO = 2 } pl_npy_mode;
#define PL_NPY_MAP_MIN ((size_t)64 << 20)

/* Reads a set of series from a .npy of values (shape (N, T, D), or (N, T)
 * for D = 1; float32/64, u?int8/16/32/64, little-endian, C order), a .npy
 * of labels (integers, shape (N)) or NULL, and a .npy of lengths
 * (integers, shape (N), each 1..T) or NULL (every row T steps long).
 * Training labels (train NULL) are 0..C-1 with C = the largest + 1 >= 2;
 * a test set's are below train->classes. Values must be finite within
 * each row's length. */
pl_status pl_npy_read_series(const char *values_path, const char *labels_path,
                             const char *lengths_path, const pl_series *train,
                             pl_npy_mode mode, pl_series *out, pl_error *err);

/* A UCR 2018 .tsv: one series a line, its label first, then its values,
 * tab-separated (comma-separated when the first line has no tab: the
 * older UCR files); a shorter series is padded at its end with NaN. */
pl_status pl_tsv_read(const char *path, const pl_series *train, pl_series *out,
                      pl_error *err);

/* A UEA/sktime .ts: @ header lines, then one case a line, its dimensions
 * separated by ':' and each dimension's values by ',', the class label
 * last. Class names in @classLabel's order. */
pl_status pl_ts_read(const char *path, const pl_series *train, pl_series *out,
                     pl_error *err);

/* Any of them, told by content (the .npy magic; '@' or '#' header lines
 * for .ts) and then by extension (.npy, .ts, .tsv/.txt/.csv). labels_path
 * and lengths_path are for .npy only (a text file holds its labels and
 * lengths); .npy values mapped when large (PL_NPY_AUTO). */
pl_status pl_series_read(const char *path, const char *labels_path, const char *lengths_path,
                         const pl_series *train, pl_series *out, pl_error *err);

/* Frees (or unmaps) everything and zeroes *s. */
void pl_series_free(pl_series *s);

/* ---- per-feature standardisation (normalize.c)
 *
 * mean[d] and std[d] (D each) of feature d over the valid steps of rows
 * [0, n) of values (n, T, D): step t of row i counts when t < lengths[i]
 * (every step when lengths is NULL). In double; the population's standard
 * deviation, and 1 for a feature that never varies. Fails, naming what,
 * when no step counts. */
pl_status pl_norm_stats(const char *what, const float *values, const int32_t *lengths,
                        size_t n, int T, int D, float *mean, float *std, pl_error *err);
/* x = (x - mean[d]) / std[d] (float) on the valid steps of rows [0, n);
 * the padded steps are left as they are. */
void pl_norm_apply(float *values, const int32_t *lengths, size_t n, int T, int D,
                   const float *mean, const float *std);

/* ---- shared by the readers (series.c) */

/* Opens path for reading: a regular file of at least one byte (a FIFO is
 * refused before it is opened); *size = its bytes. */
pl_status pl_series_open(const char *path, int *fd, size_t *size, pl_error *err);
/* Refuses an (n, T, D) float buffer whose size overflows or exceeds this
 * machine's memory; *bytes = its size. */
pl_status pl_series_size(const char *path, size_t n, size_t T, size_t D, size_t *bytes,
                         pl_error *err);

/* Every row of out T steps long: out->lengths allocated and filled. */
pl_status pl_series_full_lengths(const char *path, pl_series *out, pl_error *err);
/* out->class_names: a copy of set's (NULL when set has none). */
pl_status pl_series_copy_names(const char *path, const pl_series *set, pl_series *out,
                               pl_error *err);

/* A class name and its index, sorted by name to look labels up. */
typedef struct {
    const char *name;
    int index;
} pl_class_key;
/* set's class names sorted by strcmp (caller frees *keys, not the names);
 * *keys = NULL when set has no names (a .npy set: the index is the name). */
pl_status pl_series_class_keys(const char *path, const pl_series *set, pl_class_key **keys,
                               pl_error *err);
/* The class of label name in set: through keys (pl_series_class_keys),
 * or, when set has no names, name read as a decimal index below
 * set->classes; -1 when set has no such class. */
int pl_series_class_of(const pl_series *set, const pl_class_key *keys, const char *name);

#endif
