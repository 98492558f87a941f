/* A labelled set: IDX images as uint8 (scaled per batch) or sequences of
 * real values (series.h's readers), labels, and non-owning views for the
 * train/validation split. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "files.h"
#include "series.h"

/* Whether an IDX file is there, raw or .gz (as pl_idx_read looks for it);
 * found gets the name it has. */
static int idx_present(const char *path, char *found, size_t len)
{
    struct stat st;
    snprintf(found, len, "%s", path);
    if (stat(found, &st) == 0)
        return 1;
    snprintf(found, len, "%s.gz", path);
    return stat(found, &st) == 0;
}

/* Images and labels come in pairs: one without the other is refused,
 * naming the one that is missing and the one that is there. */
static pl_status check_pair(const char *images_path, const char *labels_path, pl_error *err)
{
    char img_found[4200], lbl_found[4200];
    int img = idx_present(images_path, img_found, sizeof img_found),
        lbl = idx_present(labels_path, lbl_found, sizeof lbl_found);
    if (img == lbl)
        return PL_OK; /* both (read them), or neither (the reader says so) */
    const char *missing = img ? labels_path : images_path;
    return pl_fail(err, PL_ERR_MISMATCH,
                   "%s: no such file (nor %s.gz), but %s is there: the %s are missing (a set "
                   "needs both its images and its labels)", missing, missing,
                   img ? img_found : lbl_found, img ? "labels" : "images");
}

pl_status pl_dataset_load_images(pl_dataset *ds, const char *images_path, pl_error *err)
{
    pl_idx img;
    memset(ds, 0, sizeof *ds);
    pl_status rc = pl_idx_read(images_path, PL_IDX_IMAGES_MAGIC, &img, err);
    if (rc)
        return rc;
    ds->images = img.data;
    ds->owned_images = img.data;
    ds->n = img.n;
    ds->T = img.rows;
    ds->D = img.cols;
    return PL_OK;
}

pl_status pl_dataset_load_files(pl_dataset *ds, const char *images_path,
                                const char *labels_path, int classes,
                                pl_error *err)
{
    pl_idx lbl;
    memset(ds, 0, sizeof *ds);
    if (classes < 0 || classes > 256)
        return pl_fail(err, PL_ERR_ARG,
                       "classes must be between 1 and 256, got %d", classes);
    pl_status rc = check_pair(images_path, labels_path, err);
    if (!rc)
        rc = pl_dataset_load_images(ds, images_path, err);
    if (rc)
        return rc;
    rc = pl_idx_read(labels_path, PL_IDX_LABELS_MAGIC, &lbl, err);
    if (rc) {
        pl_dataset_free(ds);
        return rc;
    }
    if (ds->n != lbl.n) {
        rc = pl_fail(err, PL_ERR_MISMATCH,
                     "%s holds %zu images but %s holds %zu labels: expected "
                     "the same count (images and labels from different sets?)",
                     images_path, ds->n, labels_path, lbl.n);
        goto fail;
    }
    int top = 0, distinct = 0;
    size_t top_at = 0;
    unsigned char seen[256] = {0};
    for (size_t i = 0; i < lbl.n; i++) {
        if (lbl.data[i] > top) {
            top = lbl.data[i];
            top_at = i;
        }
        distinct += !seen[lbl.data[i]];
        seen[lbl.data[i]] = 1;
    }
    if (classes == 0 && distinct < 2) {
        rc = pl_fail(err, PL_ERR_LABEL,
                     "%s: all %zu labels are %d: a classifier needs at least two classes in "
                     "its training labels (or an explicit class count)",
                     labels_path, lbl.n, top);
        goto fail;
    }
    if (classes > 0 && top >= classes) {
        rc = pl_fail(err, PL_ERR_LABEL,
                     "%s: label %d at item %zu: expected labels below %d "
                     "(the class count)",
                     labels_path, top, top_at, classes);
        goto fail;
    }
    ds->labels = lbl.data;
    ds->owned_labels = lbl.data;
    ds->classes = classes > 0 ? classes : top + 1;
    return PL_OK;
fail:
    pl_dataset_free(ds);
    pl_idx_free(&lbl);
    return rc;
}

pl_status pl_dataset_load(pl_dataset *ds, const char *dir, const char *prefix,
                          int classes, pl_error *err)
{
    char ip[4096], lp[4096];
    int a = snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte", dir, prefix);
    int b = snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte", dir, prefix);
    if (a < 0 || b < 0 || (size_t)a >= sizeof ip || (size_t)b >= sizeof lp)
        return pl_fail(err, PL_ERR_ARG, "data directory name too long: %s", dir);
    return pl_dataset_load_files(ds, ip, lp, classes, err);
}

/* The rows' lengths when they differ (NULL when every row is T steps). */
static const int32_t *lengths_of(const pl_series *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->lengths[i] != s->T)
            return s->lengths;
    return NULL;
}

/* What a set of series must be to train on: labelled (unless need_labels
 * is 0: sequences to classify), at most 256 classes. */
static pl_status check_trainable(const char *path, const pl_series *s, int need_labels,
                                 pl_error *err)
{
    if (!s->labels && need_labels)
        return pl_fail(err, PL_ERR_ARG, "%s: no labels (a .npy set needs its labels file)",
                       path);
    if (s->classes > 256)
        return pl_fail(err, PL_ERR_LABEL, "%s: %d classes; parlstm takes at most 256", path,
                       s->classes);
    return PL_OK;
}

/* A set of sequences read against `like` (the training set's classes and
 * width; NULL when path is the training set). */
static pl_status load_series(pl_dataset *ds, const char *path, const char *labels_path,
                             const char *lengths_path, const pl_series *like, int need_labels,
                             pl_error *err)
{
    pl_series *s = calloc(1, sizeof *s);
    if (!s)
        return pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate", path);
    pl_status rc = pl_series_read(path, labels_path, lengths_path, like, s, err);
    if (!rc)
        rc = check_trainable(path, s, need_labels, err);
    uint8_t *lab = rc || !s->labels ? NULL : malloc(s->n ? s->n : 1);
    if (!rc && s->labels && !lab)
        rc = pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate %zu labels", path, s->n);
    if (rc) {
        pl_series_free(s);
        free(s);
        return rc;
    }
    for (size_t i = 0; lab && i < s->n; i++)
        lab[i] = (uint8_t)s->labels[i];
    *ds = (pl_dataset){.values = s->values, .labels = lab, .n = s->n, .T = s->T, .D = s->D,
                       .classes = s->classes, .owned_labels = lab, .series = s,
                       .owned_series = s, .lengths = lengths_of(s)};
    return PL_OK;
}

pl_status pl_dataset_load_series(pl_dataset *ds, const char *path, const char *labels_path,
                                 const char *lengths_path, const pl_dataset *train,
                                 pl_error *err)
{
    memset(ds, 0, sizeof *ds);
    if (train && !train->series)
        return pl_fail(err, PL_ERR_MISMATCH,
                       "%s: the training set is images; a set of sequences needs sequences "
                       "to train on", path);
    return load_series(ds, path, labels_path, lengths_path, train ? train->series : NULL, 1,
                       err);
}

pl_status pl_dataset_load_series_for(pl_dataset *ds, const char *path, const char *labels_path,
                                     const char *lengths_path, const pl_model_info *m,
                                     int need_labels, pl_error *err)
{
    memset(ds, 0, sizeof *ds);
    /* the training set as the model remembers it: its width and classes */
    pl_series like = {.D = m->cols ? m->cols : m->cfg.input, .classes = m->cfg.classes,
                      .class_names = m->class_names};
    return load_series(ds, path, labels_path, lengths_path, &like, need_labels, err);
}

pl_dataset pl_dataset_view(const pl_dataset *src, size_t start, size_t count)
{
    pl_dataset v = *src;
    if (start > src->n)
        start = src->n;
    if (count > src->n - start)
        count = src->n - start;
    const size_t at = start * (size_t)src->T * (size_t)src->D;
    v.images = src->images ? src->images + at : NULL;
    v.values = src->values ? src->values + at : NULL;
    v.labels = src->labels ? src->labels + start : NULL;
    v.lengths = src->lengths ? src->lengths + start : NULL;
    v.n = count;
    v.owned_images = v.owned_labels = v.owned_series = NULL;
    return v;
}

pl_status pl_dataset_split(const pl_dataset *all, size_t val, pl_dataset *train,
                           pl_dataset *valset, pl_error *err)
{
    if (val >= all->n)
        return pl_fail(err, PL_ERR_ARG,
                       "holding out %zu images for validation leaves none for training (the "
                       "set has %zu)",
                       val, all->n);
    *valset = pl_dataset_view(all, 0, val);
    *train = pl_dataset_view(all, val, all->n - val);
    return PL_OK;
}

void pl_dataset_free(pl_dataset *ds)
{
    free(ds->owned_images);
    free(ds->owned_labels);
    if (ds->owned_series) {
        pl_series_free(ds->owned_series);
        free(ds->owned_series);
    }
    memset(ds, 0, sizeof *ds);
}

void pl_dataset_as_pixels(pl_dataset *ds)
{
    ds->T *= ds->D;
    ds->D = 1;
}

void pl_pixel_permutation(uint64_t seed, uint32_t *perm, size_t n)
{
    pl_rng r;
    pl_rng_seed(&r, seed ^ 0x5045524d55544531ull); /* "PERMUTE1": not the data order's stream */
    pl_rng_permutation(&r, perm, n);
}

pl_status pl_dataset_permute(pl_dataset *ds, uint64_t seed, pl_error *err)
{
    if (!ds->images)
        return pl_fail(err, PL_ERR_ARG, "a pixel order is for images, not sequences of values");
    const size_t px = (size_t)ds->T * (size_t)ds->D;
    uint32_t *perm = malloc(sizeof *perm * px);
    uint8_t *tmp = malloc(px);
    uint8_t *out = ds->owned_images ? (uint8_t *)ds->owned_images : pl_alloc_data(px * ds->n + 1);
    if (!perm || !tmp || !out) {
        free(perm);
        free(tmp);
        if (out != ds->owned_images)
            free(out);
        return pl_fail(err, PL_ERR_NOMEM, "cannot allocate for permuting %zu images of %zu "
                       "pixels", ds->n, px);
    }
    pl_pixel_permutation(seed, perm, px);
    for (size_t i = 0; i < ds->n; i++) {
        memcpy(tmp, ds->images + i * px, px);
        for (size_t k = 0; k < px; k++)
            out[i * px + k] = tmp[perm[k]];
    }
    if (out != ds->owned_images)
        ds->owned_images = out;
    ds->images = out;
    free(perm);
    free(tmp);
    return PL_OK;
}
