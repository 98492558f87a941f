/* What a model description must satisfy, whatever file it came from: the
 * checks that the model file (modelfile.c) and safetensors (safetensors.c)
 * readers and writers share, so that neither format calls the other. */
#include <math.h>
#include <stdlib.h>

#include "files.h"

/* The standardisation and the class names: values only, features = cols,
 * finite means and positive finite deviations; cfg.classes names of 1 to
 * PL_MAX_CLASS_NAME bytes. */
static pl_status extras_check(const char *path, const char *what, const pl_model_info *m,
                              pl_error *err)
{
    if (m->input != PL_INPUT_IMAGES && m->input != PL_INPUT_VALUES)
        return pl_fail(err, PL_ERR_MISMATCH, "%s: %s: input kind %d (expected 0, images, or "
                       "1, values)", path, what, (int)m->input);
    if (m->features != 0 && (m->input != PL_INPUT_VALUES || m->features != m->cols))
        return pl_fail(err, PL_ERR_MISMATCH, "%s: %s: a standardisation of %d features for a "
                       "model that reads %s of %d", path, what, m->features,
                       m->input == PL_INPUT_VALUES ? "steps" : "images with rows", m->cols);
    if (m->features != 0 && (!m->norm_mean || !m->norm_std))
        return pl_fail(err, PL_ERR_ARG, "%s: %s: %d features but no statistics", path, what,
                       m->features);
    for (int d = 0; d < m->features; d++)
        if (!isfinite(m->norm_mean[d]) || !(m->norm_std[d] > 0) || !isfinite(m->norm_std[d]))
            return pl_fail(err, PL_ERR_MISMATCH, "%s: %s: feature %d standardised with mean %g "
                           "and standard deviation %g (expected finite, and above 0)", path,
                           what, d, (double)m->norm_mean[d], (double)m->norm_std[d]);
    for (int c = 0; m->class_names && c < m->cfg.classes; c++) {
        size_t len = m->class_names[c] ? strlen(m->class_names[c]) : 0;
        if (len == 0 || len > PL_MAX_CLASS_NAME)
            return pl_fail(err, PL_ERR_MISMATCH, "%s: %s: class %d's name is %zu bytes long "
                           "(expected 1 to %d)", path, what, c, len, PL_MAX_CLASS_NAME);
    }
    return PL_OK;
}

pl_status pl_model_shape_check(const char *path, const char *what, const pl_model_info *m,
                               pl_error *err)
{
    long px = (long)m->rows * m->cols;
    int ok = m->rows >= 1 && m->cols >= 1 && m->rows <= 65535 && m->cols <= 65535 &&
             (m->sequence == PL_SEQ_ROWS ? m->rows == m->T && m->cols == m->cfg.input
                                         : px == m->T && m->cfg.input == 1);
    if (m->sequence != PL_SEQ_ROWS && m->sequence != PL_SEQ_PIXELS)
        return pl_fail(err, PL_ERR_MISMATCH, "%s: %s: sequence mode %d "
                       "(expected 0, rows, or 1, pixels)", path, what, (int)m->sequence);
    if (!ok)
        return pl_fail(err, PL_ERR_MISMATCH,
                       "%s: %s: images of %dx%d read as %s cannot make %d time "
                       "steps of width %d", path, what, m->rows, m->cols,
                       m->sequence == PL_SEQ_ROWS ? "rows" : "pixels", m->T, m->cfg.input);
    if (m->permuted != 0 && m->permuted != 1)
        return pl_fail(err, PL_ERR_MISMATCH, "%s: %s: permuted %d (0 or 1)", path, what,
                       m->permuted);
    if (!(m->dropout >= 0 && m->dropout < 1))
        return pl_fail(err, PL_ERR_MISMATCH, "%s: %s: dropout %g (0 to below 1)", path, what,
                       (double)m->dropout);
    return extras_check(path, what, m, err);
}

void pl_model_info_complete(pl_model_info *m)
{
    if (m->rows == 0 && m->cols == 0 && m->sequence == PL_SEQ_ROWS) {
        m->rows = m->T;
        m->cols = m->cfg.input;
    }
}

void pl_model_info_free(pl_model_info *m)
{
    free(m->norm_mean);
    free(m->norm_std);
    for (int c = 0; m->class_names && c < m->cfg.classes; c++)
        free(m->class_names[c]);
    free(m->class_names);
    m->norm_mean = m->norm_std = NULL;
    m->class_names = NULL;
    m->features = 0;
}

pl_status pl_model_extras_alloc(const char *path, pl_model_info *m, int features, int names,
                                pl_error *err)
{
    m->features = features;
    m->norm_mean = features ? calloc((size_t)features, sizeof(float)) : NULL;
    m->norm_std = features ? calloc((size_t)features, sizeof(float)) : NULL;
    m->class_names = names ? calloc((size_t)m->cfg.classes, sizeof(char *)) : NULL;
    if ((features && (!m->norm_mean || !m->norm_std)) || (names && !m->class_names)) {
        pl_model_info_free(m);
        return pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate the standardisation of %d "
                       "features or %d class names", path, features, m->cfg.classes);
    }
    return PL_OK;
}
