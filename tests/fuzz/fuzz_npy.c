/* libFuzzer harness: the .npy reader on arbitrary bytes as a values file,
 * copied and mapped. It must return a status, never crash, leak or read
 * out of bounds; a refusal leaves the set empty and says why; an accepted
 * file has the shape its header claims (the data exactly fill the file),
 * finite values, and the copy and the mapping hold the same values. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "series.h"
#include "fuzz_common.h"

/* What every accepted set satisfies. */
static void check_set(const pl_series *s, size_t size)
{
    size_t cells = s->n * (size_t)s->T * (size_t)s->D;
    if (s->n == 0 || s->T < 1 || s->D < 1 || !s->values || !s->lengths || s->labels ||
        s->class_names || cells > size) /* every value came from at least a byte */
        abort();
    for (size_t i = 0; i < s->n; i++)
        if (s->lengths[i] != s->T)
            abort();
    for (size_t k = 0; k < cells; k++)
        if (!isfinite(s->values[k]))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    pl_series s[2];
    pl_status rc[2];
    for (int m = 0; m < 2; m++) {
        pl_error err = {0};
        rc[m] = pl_npy_read_series(path, NULL, NULL, NULL, m ? PL_NPY_MAP : PL_NPY_COPY, &s[m],
                                   &err);
        if (rc[m] != PL_OK && (s[m].values || s[m].lengths || s[m].n || err.code != rc[m] ||
                               !err.msg[0]))
            abort(); /* a refusal leaves nothing and says why */
        if (rc[m] == PL_OK)
            check_set(&s[m], size);
    }
    if (rc[0] != rc[1])
        abort(); /* copied or mapped, the same verdict */
    if (rc[0] == PL_OK) {
        if (s[0].n != s[1].n || s[0].T != s[1].T || s[0].D != s[1].D ||
            memcmp(s[0].values, s[1].values, s[0].n * (size_t)s[0].T * (size_t)s[0].D * 4))
            abort();
        pl_series_free(&s[0]);
        pl_series_free(&s[1]);
    }
    return 0;
}
