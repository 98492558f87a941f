/* What a model description must satisfy, whatever file it came from: the
 * checks that the model file (modelfile.c) and safetensors (safetensors.c)
 * readers and writers share, so that neither format calls the other. */
#include "files.h"

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
    return PL_OK;
}

void pl_model_info_complete(pl_model_info *m)
{
    if (m->rows == 0 && m->cols == 0 && m->sequence == PL_SEQ_ROWS) {
        m->rows = m->T;
        m->cols = m->cfg.input;
    }
}
