/* libFuzzer harness: the IDX reader (raw and gzip) on arbitrary bytes, as
 * an images file and as a labels file. It must return a status, never
 * crash, leak or read out of bounds; on success the shape must match the
 * bytes it consumed. */
#include <stdint.h>
#include <string.h>

#include "parlstm.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    const uint32_t magics[2] = {PL_IDX_IMAGES_MAGIC, PL_IDX_LABELS_MAGIC};
    for (int k = 0; k < 2; k++) {
        pl_idx idx;
        pl_error err;
        pl_status rc = pl_idx_read(path, magics[k], &idx, &err);
        if (rc == PL_OK) {
            size_t bytes = idx.n * (size_t)idx.rows * (size_t)idx.cols;
            /* touch every byte: ASan checks the buffer is that large */
            unsigned sum = 0;
            for (size_t i = 0; i < bytes; i++)
                sum += idx.data[i];
            if (idx.n == 0 || (sum == 1 && bytes == 0))
                abort();
            pl_idx_free(&idx);
        } else if (idx.data != NULL || err.code != rc || err.msg[0] == '\0') {
            abort(); /* a failure must leave nothing allocated and say why */
        }
    }
    return 0;
}
