/* Per-feature standardisation of sequences of real values (issue 18): the
 * mean and standard deviation of each feature over the valid steps of a
 * training split, and x = (x - mean) / std applied to any set read from
 * the same kind of file.
 *
 * The statistics are computed in double, two passes (the mean, then the
 * squared deviations from it), in row order: the same rows give the same
 * bits, which a resumed run relies on (it recomputes them). The standard
 * deviation is the population's (divided by the count, as scikit-learn's
 * StandardScaler); a feature that never varies gets 1, so that it is only
 * centred. Applying is one float subtraction and one float division per
 * value, as (x - mean) / std in PyTorch does it. */
#include <math.h>
#include <stdint.h>

#include "series.h"

/* Valid steps of row i: lengths[i], or T without lengths. */
static int steps_of(const int32_t *lengths, size_t i, int T)
{
    return lengths ? lengths[i] : T;
}

pl_status pl_norm_stats(const char *what, const float *values, const int32_t *lengths,
                        size_t n, int T, int D, float *mean, float *std, pl_error *err)
{
    const size_t row = (size_t)T * (size_t)D;
    double count = 0;
    for (size_t i = 0; i < n; i++)
        count += steps_of(lengths, i, T);
    if (count == 0)
        return pl_fail(err, PL_ERR_ARG, "%s: no steps to compute the standardisation from "
                       "(%zu sequences)", what, n);
    for (int d = 0; d < D; d++) {
        double sum = 0, dev = 0;
        for (size_t i = 0; i < n; i++)
            for (int t = 0; t < steps_of(lengths, i, T); t++)
                sum += values[i * row + (size_t)t * D + d];
        const double mu = sum / count;
        for (size_t i = 0; i < n; i++)
            for (int t = 0; t < steps_of(lengths, i, T); t++) {
                const double x = values[i * row + (size_t)t * D + d] - mu;
                dev += x * x;
            }
        const float sd = (float)sqrt(dev / count);
        mean[d] = (float)mu;
        std[d] = sd > 0 && isfinite(sd) ? sd : 1.0f;
    }
    return PL_OK;
}

void pl_norm_apply(float *values, const int32_t *lengths, size_t n, int T, int D,
                   const float *mean, const float *std)
{
    const size_t row = (size_t)T * (size_t)D;
    for (size_t i = 0; i < n; i++) {
        float *x = values + i * row;
        const size_t cells = (size_t)steps_of(lengths, i, T) * (size_t)D;
        for (size_t k = 0; k < cells; k++)
            x[k] = (x[k] - mean[k % (size_t)D]) / std[k % (size_t)D];
    }
}

/* ---- the same on a data set of sequences, or a view of one */

/* The series ds holds and the first of its rows that ds starts at (a view
 * starts inside the file's rows), after checking that ds holds sequences
 * of `features` features. */
static pl_status rows_of(const pl_dataset *ds, int features, const pl_series **s,
                         size_t *first, pl_error *err)
{
    *s = ds->series;
    if (!ds->values || !*s)
        return pl_fail(err, PL_ERR_ARG, "standardisation is for sequences of values, not "
                       "images");
    if ((*s)->D != features)
        return pl_fail(err, PL_ERR_MISMATCH, "standardisation of %d features, the sequences "
                       "have %d", features, (*s)->D);
    const size_t row = (size_t)(*s)->T * (size_t)(*s)->D;
    const int inside = ds->values >= (*s)->values;
    const size_t at = inside ? (size_t)(ds->values - (*s)->values) : 0;
    if (!inside || at % row != 0 || at / row + ds->n > (*s)->n)
        return pl_fail(err, PL_ERR_ARG, "the data set is no view of its sequences");
    *first = at / row;
    return PL_OK;
}

pl_status pl_dataset_norm_stats(const pl_dataset *ds, int features, float *mean, float *std,
                                pl_error *err)
{
    const pl_series *s;
    size_t first;
    pl_status rc = rows_of(ds, features, &s, &first, err);
    if (rc)
        return rc;
    return pl_norm_stats("the training set", ds->values, s->lengths + first, ds->n, s->T, s->D,
                         mean, std, err);
}

pl_status pl_dataset_standardize(pl_dataset *ds, int features, const float *mean,
                                 const float *std, pl_error *err)
{
    const pl_series *s;
    size_t first;
    pl_status rc = rows_of(ds, features, &s, &first, err);
    if (rc)
        return rc;
    for (int d = 0; d < features; d++)
        if (!isfinite(mean[d]) || !(std[d] > 0) || !isfinite(std[d]))
            return pl_fail(err, PL_ERR_ARG, "standardisation of feature %d: mean %g, standard "
                           "deviation %g (expected finite, and above 0)", d, (double)mean[d],
                           (double)std[d]);
    /* the series' own pointer: its values are a copy or a private mapping */
    pl_norm_apply(s->values + first * (size_t)s->T * (size_t)s->D, s->lengths + first, ds->n,
                  s->T, s->D, mean, std);
    return PL_OK;
}

const char *const *pl_dataset_class_names(const pl_dataset *ds)
{
    const pl_series *s = ds->series;
    return s ? (const char *const *)s->class_names : NULL;
}
