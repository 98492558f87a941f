/* libFuzzer harness: the text readers (UCR .tsv and UEA .ts) on arbitrary
 * bytes, each read as a training set and then, when accepted, the same
 * bytes read again as its own test set. They must return a status, never
 * crash, leak or read out of bounds; a refusal leaves the set empty and
 * says why (with the file's name first); an accepted set is whole: labels
 * below its classes, each length 1..T, finite values and zeros beyond each
 * row's length, a name for every class; and a training set read as its
 * own test set gives the same labels. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "series.h"
#include "fuzz_common.h"

static void check_set(const pl_series *s)
{
    if (s->n == 0 || s->T < 1 || s->D < 1 || s->classes < 1 || !s->class_names)
        abort();
    for (int c = 0; c < s->classes; c++)
        if (!s->class_names[c] || !s->class_names[c][0])
            abort();
    size_t row = (size_t)s->T * (size_t)s->D;
    for (size_t i = 0; i < s->n; i++) {
        if (s->labels[i] < 0 || s->labels[i] >= s->classes || s->lengths[i] < 1 ||
            s->lengths[i] > s->T)
            abort();
        for (size_t k = 0; k < row; k++) {
            float v = s->values[i * row + k];
            if (!isfinite(v) || (k >= (size_t)s->lengths[i] * (size_t)s->D && v != 0.0f))
                abort();
        }
    }
}

/* Reads path as fmt (0 .tsv, 1 .ts) against train; checks the verdict. */
static pl_status read_one(const char *path, int fmt, const pl_series *train, pl_series *s)
{
    pl_error err = {0};
    pl_status rc = fmt ? pl_ts_read(path, train, s, &err) : pl_tsv_read(path, train, s, &err);
    if (rc != PL_OK && (s->values || s->labels || s->lengths || s->class_names || s->n ||
                        err.code != rc || strncmp(err.msg, path, strlen(path)) != 0))
        abort();
    if (rc == PL_OK)
        check_set(s);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    for (int fmt = 0; fmt < 2; fmt++) {
        pl_series tr, te;
        if (read_one(path, fmt, NULL, &tr) != PL_OK)
            continue;
        if (read_one(path, fmt, &tr, &te) != PL_OK || te.n != tr.n || te.classes != tr.classes ||
            memcmp(te.labels, tr.labels, tr.n * sizeof *tr.labels) != 0)
            abort(); /* its own test set */
        pl_series_free(&te);
        pl_series_free(&tr);
    }
    return 0;
}
