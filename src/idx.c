/* Reading and validating IDX files (the MNIST format) through zlib.
 *
 * Layout: a 4-byte big-endian magic (0, 0, type 0x08 = unsigned byte,
 * number of dimensions), one 4-byte big-endian size per dimension, then the
 * payload. gzread reads gzip and uncompressed files alike. The payload buffer
 * grows as bytes arrive, so a header that claims more data than the file
 * holds costs no more memory than the file itself. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "parlstm.h"

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

pl_status pl_idx_read(const char *path, uint32_t expect, pl_idx *out,
                      pl_error *err)
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

    unsigned char hdr[16];
    unsigned ndims = expect == PL_IDX_IMAGES_MAGIC ? 3 : 1;
    size_t hdr_len = 4 + 4 * (size_t)ndims;
    uint8_t *data = NULL;
    long long got = gz_read_full(gz, hdr, 4);
    if (got < 0 || (got < 4 && short_read_is_stream_error(gz))) {
        rc = stream_error(gz, used, err);
        goto fail;
    }
    if (got < 4) {
        rc = pl_fail(err, PL_ERR_TRUNCATED,
                     "%s: truncated: expected a 4-byte magic number, found "
                     "%lld byte%s",
                     used, got, got == 1 ? "" : "s");
        goto fail;
    }
    uint32_t magic = be32(hdr);
    if ((rc = check_header(used, magic, expect, err)))
        goto fail;
    got = gz_read_full(gz, hdr + 4, hdr_len - 4);
    if (got < 0 || ((size_t)got < hdr_len - 4 && short_read_is_stream_error(gz))) {
        rc = stream_error(gz, used, err);
        goto fail;
    }
    if ((size_t)got < hdr_len - 4) {
        rc = pl_fail(err, PL_ERR_TRUNCATED,
                     "%s: truncated header: expected %zu bytes, found %lld",
                     used, hdr_len, 4 + got);
        goto fail;
    }
    uint32_t n = be32(hdr + 4);
    uint32_t rows = ndims == 3 ? be32(hdr + 8) : 1;
    uint32_t cols = ndims == 3 ? be32(hdr + 12) : 1;
    if (n == 0) {
        rc = pl_fail(err, PL_ERR_DIMS, "%s: the header says 0 %s", used,
                     kind_name(expect));
        goto fail;
    }
    if (rows == 0 || cols == 0) {
        rc = pl_fail(err, PL_ERR_DIMS,
                     "%s: expected non-zero image rows and columns, found "
                     "%u x %u",
                     used, rows, cols);
        goto fail;
    }
    size_t item = 0, total = 0;
    if (__builtin_mul_overflow((size_t)rows, (size_t)cols, &item) ||
        __builtin_mul_overflow(item, (size_t)n, &total) || rows > IDX_MAX_SIDE ||
        cols > IDX_MAX_SIDE || total > IDX_MAX_BYTES) {
        rc = pl_fail(err, PL_ERR_TOO_LARGE,
                     "%s: the header claims %u x %u x %u bytes, beyond this "
                     "program's limit (sides up to %u, 1 TiB in all)",
                     used, n, rows, cols, IDX_MAX_SIDE);
        goto fail;
    }
    /* Images stay in memory: a claim beyond the machine's memory (a gzip
     * bomb, or a header that lies) is refused before reading. */
    double ram = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (ram > 0 && (double)total > 0.8 * ram) {
        rc = pl_fail(err, PL_ERR_TOO_LARGE,
                     "%s: the header claims %u %s of %zu bytes (%.1f GiB), more than this "
                     "machine's memory (%.1f GiB)",
                     used, n, kind_name(expect), item, (double)total / 1073741824.0,
                     ram / 1073741824.0);
        goto fail;
    }
    /* An uncompressed file's size is known: judge it without reading. */
    int direct = gzdirect(gz);
    if (direct) {
        unsigned long long have = (unsigned long long)st.st_size;
        unsigned long long want = hdr_len + (unsigned long long)total;
        if (have < want) {
            rc = pl_fail(err, PL_ERR_TRUNCATED,
                         "%s: truncated: the header says %u %s (%llu bytes "
                         "in all), the file has %llu bytes",
                         used, n, kind_name(expect), want, have);
            goto fail;
        }
        if (have > want) {
            rc = pl_fail(err, PL_ERR_TRAILING,
                         "%s: %llu trailing bytes: the header says %u %s "
                         "(%llu bytes in all), the file has %llu",
                         used, have - want, n, kind_name(expect), want, have);
            goto fail;
        }
    }
    size_t cap = total < ((size_t)16 << 20) ? total : ((size_t)16 << 20);
    size_t have = 0;
    data = malloc(cap);
    if (!data) {
        rc = pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate %zu bytes", used,
                     cap);
        goto fail;
    }
    for (;;) {
        got = gz_read_full(gz, data + have, cap - have);
        if (got < 0) {
            rc = stream_error(gz, used, err);
            goto fail;
        }
        have += (size_t)got;
        if (have < cap) { /* end of the stream */
            if (short_read_is_stream_error(gz)) {
                rc = stream_error(gz, used, err);
                goto fail;
            }
            rc = pl_fail(err, PL_ERR_TRUNCATED,
                         "%s: truncated: the header says %u %s (%zu payload "
                         "bytes), the data ends after %zu",
                         used, n, kind_name(expect), total, have);
            goto fail;
        }
        if (have == total)
            break;
        size_t next = cap * 2 < total ? cap * 2 : total;
        uint8_t *grown = realloc(data, next);
        if (!grown) {
            rc = pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate %zu bytes",
                         used, next);
            goto fail;
        }
        data = grown;
        cap = next;
    }
    unsigned char extra[256];
    got = gz_read_full(gz, extra, sizeof extra);
    if (got < 0) {
        rc = stream_error(gz, used, err);
        goto fail;
    }
    if (got > 0) {
        long long more = got;
        while ((got = gz_read_full(gz, extra, sizeof extra)) > 0)
            more += got;
        rc = pl_fail(err, PL_ERR_TRAILING,
                     "%s: %lld%s trailing bytes after the %u %s the header "
                     "announces",
                     used, more, got < 0 ? "+" : "", n, kind_name(expect));
        goto fail;
    }
    if (short_read_is_stream_error(gz)) {
        rc = stream_error(gz, used, err);
        goto fail;
    }
    gzclose(gz);
    out->magic = magic;
    out->n = n;
    out->rows = (int)rows;
    out->cols = (int)cols;
    out->data = data;
    return PL_OK;
fail:
    free(data);
    gzclose(gz);
    return rc;
}

void pl_idx_free(pl_idx *idx)
{
    free(idx->data);
    idx->data = NULL;
}
