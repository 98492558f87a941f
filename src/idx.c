/* Reading and validating IDX files (the MNIST format) through zlib.
 *
 * Layout: a 4-byte big-endian magic (0, 0, type 0x08 = unsigned byte,
 * number of dimensions), one 4-byte big-endian size per dimension, then the
 * payload. gzread reads gzip and uncompressed files alike. pl_idx_read goes
 * through named stages: open, header, sizes, file size (uncompressed files),
 * payload, end of stream; each refuses what is wrong with its own error. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "files.h"

/* No image set this program can train on is larger than this. */
#define IDX_MAX_BYTES ((size_t)1 << 40)
#define IDX_MAX_SIDE 65535u

static uint32_t be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* Reads up to len bytes; returns bytes read, or -1 on a stream error. */
static long long gz_read_full(gzFile gz, unsigned char *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        size_t chunk = len - done;
        if (chunk > (1u << 30))
            chunk = 1u << 30;
        int got = gzread(gz, buf + done, (unsigned)chunk);
        if (got < 0)
            return -1;
        if (got == 0)
            break;
        done += (size_t)got;
    }
    return (long long)done;
}

static pl_status stream_error(gzFile gz, const char *path, pl_error *err)
{
    int zerr = 0;
    const char *msg = gzerror(gz, &zerr);
    if (zerr == Z_ERRNO)
        return pl_fail(err, PL_ERR_IO, "%s: read failed: %s", path,
                       strerror(errno));
    return pl_fail(err, PL_ERR_CORRUPT, "%s: corrupt compressed stream (%s)",
                   path, msg ? msg : "zlib error");
}

/* After a short read: a gzip stream that ended early is reported by zlib as
 * an error, but what the user needs to know is that the file is truncated. */
static int short_read_is_stream_error(gzFile gz)
{
    int zerr = 0;
    gzerror(gz, &zerr);
    return zerr != Z_OK && zerr != Z_BUF_ERROR;
}

static const char *kind_name(uint32_t magic)
{
    return magic == PL_IDX_IMAGES_MAGIC ? "images" : "labels";
}

/* Opens path, or path.gz when path does not exist; refuses anything that is
 * not a regular file before opening it (a FIFO would block). */
static pl_status open_idx(const char *path, char *used, size_t used_len,
                          int *fd_out, struct stat *st, pl_error *err)
{
    snprintf(used, used_len, "%s", path);
    if (stat(used, st) != 0 && errno == ENOENT) {
        snprintf(used, used_len, "%s.gz", path);
        if (stat(used, st) != 0) {
            snprintf(used, used_len, "%s", path);
            return pl_fail(err, PL_ERR_NOT_FOUND,
                           "%s: no such file (nor %s.gz)", path, path);
        }
    } else if (stat(used, st) != 0) {
        return pl_fail(err, PL_ERR_IO, "%s: cannot stat: %s", used,
                       strerror(errno));
    }
    if (!S_ISREG(st->st_mode))
        return pl_fail(err, PL_ERR_NOT_FILE,
                       "%s: expected a regular file, found a %s", used,
                       S_ISDIR(st->st_mode)    ? "directory"
                       : S_ISFIFO(st->st_mode) ? "FIFO"
                       : S_ISCHR(st->st_mode)  ? "character device"
                                               : "special file");
    int fd = open(used, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pl_fail(err, PL_ERR_IO, "%s: cannot open: %s", used,
                       strerror(errno));
    if (st->st_size == 0) {
        close(fd);
        return pl_fail(err, PL_ERR_EMPTY,
                       "%s: the file is empty (expected an IDX header)", used);
    }
    *fd_out = fd;
    return PL_OK;
}

static pl_status check_header(const char *path, uint32_t magic,
                              uint32_t expect, pl_error *err)
{
    unsigned want_dims = expect == PL_IDX_IMAGES_MAGIC ? 3 : 1;
    if ((magic >> 8) != 0x08)
        return pl_fail(err, PL_ERR_MAGIC,
                       "%s: bad magic number: expected %u (0x%08x, IDX %s), "
                       "found %u (0x%08x)",
                       path, expect, expect, kind_name(expect), magic, magic);
    if ((magic & 0xff) != want_dims)
        return pl_fail(err, PL_ERR_DIMS,
                       "%s: expected %u dimension%s (IDX %s, magic %u), found "
                       "%u (magic %u%s)",
                       path, want_dims, want_dims == 1 ? "" : "s",
                       kind_name(expect), expect, magic & 0xff, magic,
                       magic == PL_IDX_LABELS_MAGIC   ? ": a labels file"
                       : magic == PL_IDX_IMAGES_MAGIC ? ": an images file"
                                                      : "");
    return PL_OK;
}

/* What the header says. */
typedef struct {
    uint32_t magic, n, rows, cols;
    size_t hdr_len; /* bytes of the header: 4 + 4 per dimension */
    size_t item;    /* bytes per item */
    size_t total;   /* payload bytes: n x item */
} idx_header;

/* The magic number, then the sizes of its dimensions. */
static pl_status read_header(gzFile gz, const char *used, uint32_t expect, idx_header *h,
                             pl_error *err)
{
    unsigned char hdr[16];
    unsigned ndims = expect == PL_IDX_IMAGES_MAGIC ? 3 : 1;
    h->hdr_len = 4 + 4 * (size_t)ndims;
    long long got = gz_read_full(gz, hdr, 4);
    if (got < 0 || (got < 4 && short_read_is_stream_error(gz)))
        return stream_error(gz, used, err);
    if (got < 4)
        return pl_fail(err, PL_ERR_TRUNCATED,
                       "%s: truncated: expected a 4-byte magic number, found %lld byte%s", used,
                       got, got == 1 ? "" : "s");
    h->magic = be32(hdr);
    pl_status rc = check_header(used, h->magic, expect, err);
    if (rc)
        return rc;
    got = gz_read_full(gz, hdr + 4, h->hdr_len - 4);
    if (got < 0 || ((size_t)got < h->hdr_len - 4 && short_read_is_stream_error(gz)))
        return stream_error(gz, used, err);
    if ((size_t)got < h->hdr_len - 4)
        return pl_fail(err, PL_ERR_TRUNCATED,
                       "%s: truncated header: expected %zu bytes, found %lld", used, h->hdr_len,
                       4 + got);
    h->n = be32(hdr + 4);
    h->rows = ndims == 3 ? be32(hdr + 8) : 1;
    h->cols = ndims == 3 ? be32(hdr + 12) : 1;
    return PL_OK;
}

/* Sizes that are zero, overflow, or exceed what this machine can hold are
 * refused before anything is allocated. */
static pl_status check_sizes(const char *used, uint32_t expect, idx_header *h, pl_error *err)
{
    if (h->n == 0)
        return pl_fail(err, PL_ERR_DIMS, "%s: the header says 0 %s", used, kind_name(expect));
    if (h->rows == 0 || h->cols == 0)
        return pl_fail(err, PL_ERR_DIMS,
                       "%s: expected non-zero image rows and columns, found %u x %u", used,
                       h->rows, h->cols);
    if (__builtin_mul_overflow((size_t)h->rows, (size_t)h->cols, &h->item) ||
        __builtin_mul_overflow(h->item, (size_t)h->n, &h->total) || h->rows > IDX_MAX_SIDE ||
        h->cols > IDX_MAX_SIDE || h->total > IDX_MAX_BYTES)
        return pl_fail(err, PL_ERR_TOO_LARGE,
                       "%s: the header claims %u x %u x %u bytes, beyond this program's limit "
                       "(sides up to %u, 1 TiB in all)",
                       used, h->n, h->rows, h->cols, IDX_MAX_SIDE);
    /* Images stay in memory: a claim beyond the machine's memory (a gzip
     * bomb, or a header that lies) is refused before reading. */
    double ram = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (ram > 0 && (double)h->total > 0.8 * ram)
        return pl_fail(err, PL_ERR_TOO_LARGE,
                       "%s: the header claims %u %s of %zu bytes (%.1f GiB), more than this "
                       "machine's memory (%.1f GiB)",
                       used, h->n, kind_name(expect), h->item, (double)h->total / 1073741824.0,
                       ram / 1073741824.0);
    return PL_OK;
}

/* An uncompressed file's size is known: judge it without reading. */
static pl_status check_file_size(const char *used, uint32_t expect, const idx_header *h,
                                 unsigned long long have, pl_error *err)
{
    unsigned long long want = h->hdr_len + (unsigned long long)h->total;
    if (have < want)
        return pl_fail(err, PL_ERR_TRUNCATED,
                       "%s: truncated: the header says %u %s (%llu bytes in all), the file has "
                       "%llu bytes",
                       used, h->n, kind_name(expect), want, have);
    if (have > want)
        return pl_fail(err, PL_ERR_TRAILING,
                       "%s: %llu trailing bytes: the header says %u %s (%llu bytes in all), the "
                       "file has %llu",
                       used, have - want, h->n, kind_name(expect), want, have);
    return PL_OK;
}

/* The payload, into a buffer that grows (from 16 MiB, doubling) as bytes
 * arrive: a header that claims more than the stream holds costs no more
 * memory than the stream. On huge pages (pl_alloc_data): batches read it
 * at random. */
static pl_status read_payload(gzFile gz, const char *used, uint32_t expect, const idx_header *h,
                              uint8_t **out, pl_error *err)
{
    size_t cap = h->total < ((size_t)16 << 20) ? h->total : ((size_t)16 << 20), have = 0;
    uint8_t *data = pl_alloc_data(cap);
    if (!data)
        return pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate %zu bytes", used, cap);
    pl_status rc = PL_OK;
    for (;;) {
        long long got = gz_read_full(gz, data + have, cap - have);
        if (got < 0) {
            rc = stream_error(gz, used, err);
            break;
        }
        have += (size_t)got;
        if (have < cap) { /* end of the stream */
            rc = short_read_is_stream_error(gz)
                     ? stream_error(gz, used, err)
                     : pl_fail(err, PL_ERR_TRUNCATED,
                               "%s: truncated: the header says %u %s (%zu payload bytes), the "
                               "data ends after %zu",
                               used, h->n, kind_name(expect), h->total, have);
            break;
        }
        if (have == h->total)
            break;
        size_t next = cap * 2 < h->total ? cap * 2 : h->total;
        uint8_t *grown = pl_alloc_data(next);
        if (!grown) {
            rc = pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate %zu bytes", used, next);
            break;
        }
        memcpy(grown, data, have);
        free(data);
        data = grown;
        cap = next;
    }
    if (rc) {
        free(data);
        return rc;
    }
    *out = data;
    return PL_OK;
}

/* Nothing may follow the payload (a gzip stream is read to its end). */
static pl_status check_end(gzFile gz, const char *used, uint32_t expect, const idx_header *h,
                           pl_error *err)
{
    unsigned char extra[256];
    long long got = gz_read_full(gz, extra, sizeof extra);
    if (got < 0)
        return stream_error(gz, used, err);
    if (got > 0) {
        long long more = got;
        while ((got = gz_read_full(gz, extra, sizeof extra)) > 0)
            more += got;
        return pl_fail(err, PL_ERR_TRAILING,
                       "%s: %lld%s trailing bytes after the %u %s the header announces", used,
                       more, got < 0 ? "+" : "", h->n, kind_name(expect));
    }
    if (short_read_is_stream_error(gz))
        return stream_error(gz, used, err);
    /* zlib stops quietly at the end of the bytes; a gzip stream must also
     * reach its trailer, whose CRC32 vouches for the payload */
    int zerr = 0;
    gzerror(gz, &zerr);
    if (!gzdirect(gz) && zerr == Z_BUF_ERROR)
        return pl_fail(err, PL_ERR_TRUNCATED,
                       "%s: truncated: the gzip stream ends before its trailer (CRC32 and "
                       "length), after the %u %s",
                       used, h->n, kind_name(expect));
    return PL_OK;
}

pl_status pl_idx_read(const char *path, uint32_t expect, pl_idx *out, pl_error *err)
{
    char used[4096];
    struct stat st;
    int fd = -1;
    memset(out, 0, sizeof *out);
    if (expect != PL_IDX_IMAGES_MAGIC && expect != PL_IDX_LABELS_MAGIC)
        return pl_fail(err, PL_ERR_ARG, "pl_idx_read: unknown magic %u", expect);
    pl_status rc = open_idx(path, used, sizeof used, &fd, &st, err);
    if (rc)
        return rc;
    gzFile gz = gzdopen(fd, "rb");
    if (!gz) {
        close(fd);
        return pl_fail(err, PL_ERR_NOMEM, "%s: cannot start zlib", used);
    }
    gzbuffer(gz, 1 << 17);
    idx_header h = {0};
    uint8_t *data = NULL;
    rc = read_header(gz, used, expect, &h, err);
    if (!rc)
        rc = check_sizes(used, expect, &h, err);
    if (!rc && gzdirect(gz))
        rc = check_file_size(used, expect, &h, (unsigned long long)st.st_size, err);
    if (!rc)
        rc = read_payload(gz, used, expect, &h, &data, err);
    if (!rc)
        rc = check_end(gz, used, expect, &h, err);
    gzclose(gz);
    if (rc) {
        free(data);
        return rc;
    }
    out->magic = h.magic;
    out->n = h.n;
    out->rows = (int)h.rows;
    out->cols = (int)h.cols;
    out->data = data;
    return PL_OK;
}

void pl_idx_free(pl_idx *idx)
{
    free(idx->data);
    idx->data = NULL;
}
