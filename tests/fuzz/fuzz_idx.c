/* libFuzzer harness: the IDX reader (raw and gzip) on arbitrary bytes, as
 * an images file and as a labels file. It must return a status, never
 * crash, leak or read out of bounds, and it must agree with an independent
 * reading of the same bytes:
 *   - uncompressed input is accepted exactly when it is a valid IDX file of
 *     the expected kind (magic, non-zero sides of at most 65535, a payload
 *     of exactly n x rows x cols bytes), with that shape and payload;
 *   - gzip input that is accepted inflates (member after member, as zlib
 *     reads them) to exactly the header and payload the reader returned. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "internal.h"
#include "fuzz_common.h"

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* The IDX file in bytes d: its shape, or 0 when it is not a valid one. */
static int valid_idx(const uint8_t *d, size_t size, uint32_t magic, uint32_t shape[3],
                     size_t *hdr)
{
    int dims = magic == PL_IDX_IMAGES_MAGIC ? 3 : 1;
    *hdr = 4 + 4 * (size_t)dims;
    if (size < *hdr || be32(d) != magic)
        return 0;
    shape[0] = be32(d + 4);
    shape[1] = dims == 3 ? be32(d + 8) : 1;
    shape[2] = dims == 3 ? be32(d + 12) : 1;
    if (!shape[0] || !shape[1] || !shape[2] || shape[1] > 65535 || shape[2] > 65535)
        return 0;
    unsigned __int128 total = (unsigned __int128)shape[0] * shape[1] * shape[2];
    return size - *hdr == total;
}

/* Inflates the gzip members of d one after the other while the next bytes
 * start a member (zlib ignores what follows otherwise), into out (at most
 * cap bytes). Returns the bytes, or -1 when the stream is not whole. */
static long long inflate_members(const uint8_t *d, size_t size, uint8_t *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        abort();
    z.next_in = (uint8_t *)d;
    z.avail_in = (uInt)size;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    long long got = -1;
    for (;;) {
        int rc = inflate(&z, Z_FINISH);
        if (rc != Z_STREAM_END)
            break; /* damaged, cut short, or more than cap */
        if (z.avail_in < 2 || z.next_in[0] != 0x1f || z.next_in[1] != 0x8b) {
            got = (long long)(cap - z.avail_out);
            break;
        }
        inflateReset(&z);
    }
    inflateEnd(&z);
    return got;
}

static void check_gzip(const uint8_t *data, size_t size, const pl_idx *idx, size_t hdr)
{
    size_t bytes = idx->n * (size_t)idx->rows * (size_t)idx->cols;
    uint8_t *plain = malloc(hdr + bytes + 1);
    long long got = inflate_members(data, size, plain, hdr + bytes + 1);
    uint32_t shape[3];
    size_t h;
    if (got != (long long)(hdr + bytes) || !valid_idx(plain, hdr + bytes, idx->magic, shape, &h) ||
        shape[0] != idx->n || shape[1] != (uint32_t)idx->rows ||
        shape[2] != (uint32_t)idx->cols || memcmp(plain + hdr, idx->data, bytes) != 0)
        abort(); /* accepted what is not there */
    free(plain);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    const uint32_t magics[2] = {PL_IDX_IMAGES_MAGIC, PL_IDX_LABELS_MAGIC};
    int gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    for (int k = 0; k < 2; k++) {
        pl_idx idx;
        pl_error err;
        uint32_t shape[3];
        size_t hdr;
        pl_status rc = pl_idx_read(path, magics[k], &idx, &err);
        int valid = !gzip && valid_idx(data, size, magics[k], shape, &hdr);
        if (rc != PL_OK) {
            if (idx.data != NULL || err.code != rc || err.msg[0] == '\0' || valid)
                abort(); /* a failure leaves nothing, says why, and refuses only bad files */
            continue;
        }
        if (idx.magic != magics[k] || idx.n == 0 || idx.rows < 1 || idx.cols < 1)
            abort();
        if (gzip) {
            check_gzip(data, size, &idx, 4 + 4 * (size_t)(magics[k] == PL_IDX_IMAGES_MAGIC ? 3 : 1));
        } else if (!valid || shape[0] != idx.n || shape[1] != (uint32_t)idx.rows ||
                   shape[2] != (uint32_t)idx.cols ||
                   memcmp(data + hdr, idx.data, size - hdr) != 0) {
            abort();
        }
        pl_idx_free(&idx);
    }
    return 0;
}
