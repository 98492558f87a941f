/* NumPy .npy arrays as a set of series: values, labels and lengths files.
 *
 * Layout (format versions 1.0, 2.0 and 3.0): the magic "\x93NUMPY", the
 * version's two bytes (major, minor), the header's length (little-endian:
 * 2 bytes in version 1, 4 in versions 2 and 3), the header, then the data.
 * The header is a Python dict literal with the keys 'descr' (the dtype,
 * e.g. '<f4'), 'fortran_order' and 'shape' in any order, padded with
 * spaces and ended by '\n' (numpy pads the preamble and header to a
 * multiple of 64 bytes; the reader does not insist on that).
 *
 * What this reader refuses, and with which status: no magic
 * (PL_ERR_MAGIC); another version, Fortran order, a big-endian, object
 * or other dtype it does not read, float labels (PL_ERR_VERSION); a header
 * that is not such a dict (PL_ERR_CORRUPT); a shape of the wrong rank or
 * with a zero side (PL_ERR_DIMS), or whose product overflows
 * (PL_ERR_TOO_LARGE); fewer or more data bytes than the shape says
 * (PL_ERR_TRUNCATED, PL_ERR_TRAILING), both judged from the file's size
 * before anything is allocated; files whose row counts differ
 * (PL_ERR_MISMATCH); labels out of range (PL_ERR_LABEL); lengths out of
 * 1..T (PL_ERR_DIMS); a NaN or infinity within a row (PL_ERR_NONFINITE). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "series.h"

/* A header longer than this is no header of an array we read. */
#define NPY_MAX_HEADER ((size_t)1 << 20)

/* What a .npy file's preamble and header say. */
typedef struct {
    char descr[32];  /* the dtype as written, e.g. "<f4" */
    char kind;       /* 'f' float, 'i' signed, 'u' unsigned integer */
    int size;        /* bytes per item: 1, 2, 4 or 8 */
    int ndim;        /* the shape's rank */
    size_t shape[3]; /* its first three sides */
    size_t count;    /* items: the product of the shape */
    size_t offset;   /* bytes before the data */
    int seen;        /* the keys read: 1 descr, 2 fortran_order, 4 shape */
} npy_header;

/* An open .npy file. */
typedef struct {
    const char *path;
    int fd;
    size_t size; /* the file's bytes */
    npy_header h;
} npy_file;

/* ---- the header's dict literal: a cursor p over NUL-terminated text */

typedef struct {
    const char *start, *p;
    const char *path;
    pl_error *err;
} npy_scan;

static pl_status malformed(npy_scan *s, const char *expected)
{
    return pl_fail(s->err, PL_ERR_CORRUPT,
                   "%s: malformed .npy header at byte %zu of its dict: expected %s, found "
                   "'%.12s'",
                   s->path, (size_t)(s->p - s->start), expected, s->p);
}

static void skip_space(npy_scan *s)
{
    while (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')
        s->p++;
}

/* ch after optional spaces; 1 when it is there (and skipped). */
static int accept(npy_scan *s, char ch)
{
    skip_space(s);
    if (*s->p != ch)
        return 0;
    s->p++;
    return 1;
}

/* A quoted string without escapes into buf (cap bytes with the NUL). */
static pl_status scan_string(npy_scan *s, char *buf, size_t cap)
{
    skip_space(s);
    char q = *s->p;
    if (q != '\'' && q != '"')
        return malformed(s, "a quoted string");
    const char *end = strchr(s->p + 1, q);
    if (!end || memchr(s->p + 1, '\\', (size_t)(end - s->p - 1)))
        return malformed(s, "a string closed without escapes");
    size_t n = (size_t)(end - s->p - 1);
    if (n >= cap)
        return malformed(s, "a shorter string");
    memcpy(buf, s->p + 1, n);
    buf[n] = '\0';
    s->p = end + 1;
    return PL_OK;
}

/* A non-negative integer, refused beyond 2^62. */
static pl_status scan_size(npy_scan *s, size_t *v)
{
    skip_space(s);
    if (*s->p < '0' || *s->p > '9')
        return malformed(s, "a non-negative integer");
    size_t x = 0;
    for (; *s->p >= '0' && *s->p <= '9'; s->p++) {
        x = x * 10 + (size_t)(*s->p - '0');
        if (x > ((size_t)1 << 62))
            return pl_fail(s->err, PL_ERR_TOO_LARGE, "%s: a side of the shape is beyond 2^62",
                           s->path);
    }
    *v = x;
    return PL_OK;
}

/* A tuple of sides, "(N, T, D)", "(N,)" or "()": the first three into h. */
static pl_status scan_shape(npy_scan *s, npy_header *h)
{
    if (!accept(s, '('))
        return malformed(s, "'(' starting the shape");
    h->ndim = 0;
    int comma = 1; /* a side may come next */
    while (!accept(s, ')')) {
        size_t v = 0;
        if (!comma)
            return malformed(s, "',' or ')' in the shape");
        pl_status rc = scan_size(s, &v);
        if (rc)
            return rc;
        if (h->ndim < 3)
            h->shape[h->ndim] = v;
        if (++h->ndim > 32)
            return malformed(s, "at most 32 sides");
        comma = accept(s, ',');
    }
    if (h->ndim == 1 && !comma)
        return malformed(s, "'(N,)': a tuple of one side has a comma");
    return PL_OK;
}

/* 'fortran_order': True refused, False taken. */
static pl_status scan_order(npy_scan *s)
{
    skip_space(s);
    if (strncmp(s->p, "False", 5) == 0) {
        s->p += 5;
        return PL_OK;
    }
    if (strncmp(s->p, "True", 4) == 0)
        return pl_fail(s->err, PL_ERR_VERSION,
                       "%s: the array is in Fortran order (column-major); save it in C order "
                       "(numpy.ascontiguousarray)",
                       s->path);
    return malformed(s, "True or False");
}

/* One "'key': value" of the dict. */
static pl_status scan_entry(npy_scan *s, npy_header *h)
{
    char key[32];
    pl_status rc = scan_string(s, key, sizeof key);
    if (rc)
        return rc;
    int bit = !strcmp(key, "descr") ? 1 : !strcmp(key, "fortran_order") ? 2
                                      : !strcmp(key, "shape")           ? 4
                                                                        : 0;
    if (!bit)
        return pl_fail(s->err, PL_ERR_CORRUPT, "%s: the .npy header has an unknown key '%s'",
                       s->path, key);
    if (h->seen & bit)
        return pl_fail(s->err, PL_ERR_CORRUPT, "%s: the .npy header has '%s' twice", s->path,
                       key);
    h->seen |= bit;
    if (!accept(s, ':'))
        return malformed(s, "':' after a key");
    if (bit == 1) {
        skip_space(s);
        if (*s->p == '[')
            return pl_fail(s->err, PL_ERR_VERSION,
                           "%s: a structured dtype (a list of fields); expected a number "
                           "type such as '<f4'",
                           s->path);
        return scan_string(s, h->descr, sizeof h->descr);
    }
    return bit == 2 ? scan_order(s) : scan_shape(s, h);
}

/* The dict, then nothing but spaces up to the final '\n'. */
static pl_status scan_dict(npy_scan *s, npy_header *h, size_t len)
{
    if (len == 0 || s->start[len - 1] != '\n')
        return pl_fail(s->err, PL_ERR_CORRUPT, "%s: the .npy header does not end with '\\n'",
                       s->path);
    if (!accept(s, '{'))
        return malformed(s, "'{'");
    while (!accept(s, '}')) {
        pl_status rc = scan_entry(s, h);
        if (rc)
            return rc;
        if (!accept(s, ',') && *s->p != '}' && (skip_space(s), *s->p != '}'))
            return malformed(s, "',' or '}'");
    }
    skip_space(s);
    if ((size_t)(s->p - s->start) != len)
        return malformed(s, "only spaces after the dict");
    if (h->seen != 7)
        return pl_fail(s->err, PL_ERR_CORRUPT,
                       "%s: the .npy header lacks '%s' (it needs descr, fortran_order and "
                       "shape)",
                       s->path, !(h->seen & 1) ? "descr" : !(h->seen & 2) ? "fortran_order"
                                                                          : "shape");
    return PL_OK;
}

/* ---- the dtype, the preamble, the sizes */

/* '<f4', '<f8', '|u1', '|i1', '<[iu]{2,4,8}' (a byte's order: '|', '<'
 * or '>'); what else it is, in the message. */
static pl_status parse_descr(const char *path, npy_header *h, pl_error *err)
{
    const char *d = h->descr;
    char order = d[0], kind = d[0] ? d[1] : 0;
    int size = (kind && d[2] >= '1' && d[2] <= '8' && !d[3]) ? d[2] - '0' : 0;
    if (order == '|' && kind == 'O')
        return pl_fail(err, PL_ERR_VERSION,
                       "%s: an object array ('%s'): numbers only, saved without pickle", path, d);
    int known = (kind == 'f' && (size == 4 || size == 8)) ||
                ((kind == 'i' || kind == 'u') && (size == 1 || size == 2 || size == 4 ||
                                                  size == 8));
    if (!known || !strchr("<>|=", order) || !order)
        return pl_fail(err, PL_ERR_VERSION,
                       "%s: unsupported dtype '%s' (expected float32/64 or an integer type: "
                       "'<f4', '<f8', '|u1', '|i1', '<i2'...)",
                       path, d);
    if (size > 1 && order == '>')
        return pl_fail(err, PL_ERR_VERSION,
                       "%s: big-endian dtype '%s'; save it little-endian (astype('<%c%d'))",
                       path, d, kind, size);
    if (size > 1 && order != '<')
        return pl_fail(err, PL_ERR_VERSION,
                       "%s: dtype '%s' does not say its byte order; expected '<%c%d'", path, d,
                       kind, size);
    h->kind = kind;
    h->size = size;
    return PL_OK;
}

/* Reads exactly len bytes at offset into buf. */
static pl_status read_at(const npy_file *f, void *buf, size_t len, size_t offset, pl_error *err)
{
    size_t done = 0;
    while (done < len) {
        ssize_t got = pread(f->fd, (char *)buf + done, len - done, (off_t)(offset + done));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return pl_fail(err, PL_ERR_IO, "%s: read failed: %s", f->path, strerror(errno));
        if (got == 0)
            return pl_fail(err, PL_ERR_TRUNCATED,
                           "%s: truncated: the file ended at byte %zu (it shrank while read)",
                           f->path, offset + done);
        done += (size_t)got;
    }
    return PL_OK;
}

/* The magic, the version and the header's length; *hlen, f->h.offset. */
static pl_status read_preamble(npy_file *f, size_t *hlen, pl_error *err)
{
    unsigned char p[12];
    size_t have = f->size < sizeof p ? f->size : sizeof p;
    pl_status rc = read_at(f, p, have, 0, err);
    if (rc)
        return rc;
    if (have < 6 || memcmp(p, "\x93NUMPY", 6) != 0)
        return pl_fail(err, PL_ERR_MAGIC, "%s: not a NumPy .npy file (no \\x93NUMPY magic)",
                       f->path);
    size_t fixed = have >= 7 && p[6] == 1 ? 10 : 12;
    if (have < 8 || have < fixed)
        return pl_fail(err, PL_ERR_TRUNCATED, "%s: truncated: %zu bytes, not a whole .npy "
                       "preamble", f->path, have);
    if (p[6] < 1 || p[6] > 3 || p[7] != 0)
        return pl_fail(err, PL_ERR_VERSION,
                       "%s: .npy format version %u.%u; this build reads 1.0, 2.0 and 3.0",
                       f->path, p[6], p[7]);
    *hlen = p[6] == 1 ? (size_t)p[8] | (size_t)p[9] << 8
                      : (size_t)p[8] | (size_t)p[9] << 8 | (size_t)p[10] << 16 |
                            (size_t)p[11] << 24;
    if (*hlen > NPY_MAX_HEADER)
        return pl_fail(err, PL_ERR_TOO_LARGE, "%s: a .npy header of %zu bytes (at most %zu)",
                       f->path, *hlen, NPY_MAX_HEADER);
    f->h.offset = fixed + *hlen;
    if (f->h.offset > f->size)
        return pl_fail(err, PL_ERR_TRUNCATED,
                       "%s: truncated: the header needs %zu bytes, the file has %zu", f->path,
                       f->h.offset, f->size);
    return PL_OK;
}

/* The header: its text read and parsed. */
static pl_status read_header(npy_file *f, pl_error *err)
{
    size_t hlen = 0;
    pl_status rc = read_preamble(f, &hlen, err);
    if (rc)
        return rc;
    char *text = malloc(hlen + 1);
    if (!text)
        return pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate %zu bytes", f->path, hlen + 1);
    rc = read_at(f, text, hlen, f->h.offset - hlen, err);
    if (!rc && memchr(text, '\0', hlen))
        rc = pl_fail(err, PL_ERR_CORRUPT, "%s: a NUL byte in the .npy header", f->path);
    if (!rc) {
        text[hlen] = '\0';
        npy_scan s = {text, text, f->path, err};
        rc = scan_dict(&s, &f->h, hlen);
    }
    free(text);
    return rc ? rc : parse_descr(f->path, &f->h, err);
}

/* The shape's rank is one of ranks (1, or 2 and 3) with no zero side, its
 * product fits, and the data are exactly the file's remaining bytes. */
static pl_status check_shape(npy_file *f, const char *what, int lo, int hi, pl_error *err)
{
    npy_header *h = &f->h;
    if (h->ndim < lo || h->ndim > hi)
        return pl_fail(err, PL_ERR_DIMS, "%s: %s of %d dimension%s; expected %s", f->path,
                       what, h->ndim, h->ndim == 1 ? "" : "s",
                       hi == 1 ? "1, (N,)" : "(N, T, D), or (N, T) for D = 1");
    size_t bytes = (size_t)h->size;
    h->count = 1;
    for (int k = 0; k < h->ndim; k++) {
        if (h->shape[k] == 0)
            return pl_fail(err, PL_ERR_DIMS, "%s: %s with a side of 0 (shape side %d)", f->path,
                           what, k);
        if (__builtin_mul_overflow(h->count, h->shape[k], &h->count) ||
            __builtin_mul_overflow(bytes, h->shape[k], &bytes) ||
            (k > 0 && h->shape[k] > PL_SERIES_MAX_SIDE))
            return pl_fail(err, PL_ERR_TOO_LARGE,
                           "%s: the shape's product overflows or a side is beyond 2^30", f->path);
    }
    size_t data = f->size - h->offset;
    if (data != bytes)
        return pl_fail(err, data < bytes ? PL_ERR_TRUNCATED : PL_ERR_TRAILING,
                       "%s: %s: the shape says %zu items of %d bytes (%zu bytes after the "
                       "%zu-byte header), the file has %zu",
                       f->path, data < bytes ? "truncated" : "trailing bytes", h->count, h->size,
                       bytes, h->offset, data);
    return PL_OK;
}

/* Opens and checks path as `what` (its rank lo..hi). */
static pl_status npy_open(npy_file *f, const char *path, const char *what, int lo, int hi,
                          pl_error *err)
{
    memset(f, 0, sizeof *f);
    f->path = path;
    f->fd = -1;
    pl_status rc = pl_series_open(path, &f->fd, &f->size, err);
    if (!rc)
        rc = read_header(f, err);
    if (!rc)
        rc = check_shape(f, what, lo, hi, err);
    if (rc && f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
    return rc;
}

/* ---- items: read in chunks and converted */

#define NPY_CHUNK 65536 /* items a chunk */

/* Item p as an integer; 0 when it does not fit int64 (a big uint64). */
static int item_int(const npy_header *h, const unsigned char *p, int64_t *v)
{
    union { int8_t i1; int16_t i2; int32_t i4; int64_t i8; uint8_t u1; uint16_t u2;
            uint32_t u4; uint64_t u8; } u;
    memcpy(&u, p, (size_t)h->size);
    if (h->kind == 'i')
        *v = h->size == 1 ? u.i1 : h->size == 2 ? u.i2 : h->size == 4 ? u.i4 : u.i8;
    else if (h->size < 8)
        *v = h->size == 1 ? u.u1 : h->size == 2 ? u.u2 : u.u4;
    else if (u.u8 > INT64_MAX)
        return 0;
    else
        *v = (int64_t)u.u8;
    return 1;
}

/* Item p as a float32 (float64 rounded, integers converted). */
static float item_float(const npy_header *h, const unsigned char *p)
{
    if (h->kind == 'f' && h->size == 4) {
        float x;
        memcpy(&x, p, 4);
        return x;
    }
    if (h->kind == 'f') {
        double x;
        memcpy(&x, p, 8);
        return (float)x;
    }
    int64_t v;
    if (item_int(h, p, &v))
        return (float)v;
    uint64_t u;
    memcpy(&u, p, 8);
    return (float)u;
}

/* Calls visit on f's items a chunk at a time (items [first, first + k)
 * at p) until it returns an error. */
typedef pl_status (*npy_visit)(const npy_file *f, const unsigned char *p, size_t first,
                               size_t k, void *ctx, pl_error *err);
static pl_status each_chunk(const npy_file *f, npy_visit visit, void *ctx, pl_error *err)
{
    const npy_header *h = &f->h;
    unsigned char *buf = malloc((size_t)NPY_CHUNK * (size_t)h->size);
    if (!buf)
        return pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate a read buffer", f->path);
    pl_status rc = PL_OK;
    for (size_t at = 0; at < h->count && !rc; at += NPY_CHUNK) {
        size_t k = h->count - at < NPY_CHUNK ? h->count - at : NPY_CHUNK;
        rc = read_at(f, buf, k * (size_t)h->size, h->offset + at * (size_t)h->size, err);
        if (!rc)
            rc = visit(f, buf, at, k, ctx, err);
    }
    free(buf);
    return rc;
}

/* A chunk of items into the floats at ctx. */
static pl_status visit_floats(const npy_file *f, const unsigned char *p, size_t first, size_t k,
                              void *ctx, pl_error *err)
{
    float *out = ctx;
    for (size_t i = 0; i < k; i++)
        out[first + i] = item_float(&f->h, p + i * (size_t)f->h.size);
    return PL_OK;
}

/* Every item of f as float32 into out (f->h.count floats). */
static pl_status read_floats(const npy_file *f, float *out, pl_error *err)
{
    if (f->h.kind == 'f' && f->h.size == 4)
        return read_at(f, out, f->h.count * 4, f->h.offset, err);
    return each_chunk(f, visit_floats, out, err);
}

/* What read_ints checks and where it puts them. */
typedef struct {
    const char *what; /* "labels" or "lengths" */
    int64_t lo, hi;   /* the range they must be in */
    pl_status bad;    /* the status of one that is not */
    int32_t *out;     /* (N) */
} int_range;

/* A chunk of items into range->out, each checked. */
static pl_status visit_ints(const npy_file *f, const unsigned char *p, size_t first, size_t k,
                            void *ctx, pl_error *err)
{
    const int_range *r = ctx;
    for (size_t i = 0; i < k; i++) {
        int64_t v;
        int fits = item_int(&f->h, p + i * (size_t)f->h.size, &v);
        if (!fits || v < r->lo || v > r->hi)
            return pl_fail(err, r->bad, "%s: %.*s %s%lld at row %zu; expected %lld..%lld",
                           f->path, (int)strlen(r->what) - 1, r->what, /* "labels" -> "label" */
                           fits ? "" : "beyond ", fits ? (long long)v : INT64_MAX, first + i,
                           (long long)r->lo, (long long)r->hi);
        r->out[first + i] = (int32_t)v;
    }
    return PL_OK;
}

/* f's N integers into r->out, each in [r->lo, r->hi], or an error naming
 * the first that is not (status r->bad). */
static pl_status read_ints(const npy_file *f, int_range *r, pl_error *err)
{
    if (f->h.kind == 'f')
        return pl_fail(err, PL_ERR_VERSION, "%s: %s must be integers, found dtype '%s'",
                       f->path, r->what, f->h.descr);
    return each_chunk(f, visit_ints, r, err);
}

/* ---- the three files of a set */

/* Opens an integer file of n entries and reads it into *out. */
static pl_status load_ints(const char *path, const char *what, size_t n, int64_t lo,
                           int64_t hi, pl_status bad, int32_t **out, pl_error *err)
{
    npy_file f;
    pl_status rc = npy_open(&f, path, what, 1, 1, err);
    if (rc)
        return rc;
    if (f.h.shape[0] != n)
        rc = pl_fail(err, PL_ERR_MISMATCH, "%s: %zu %s for %zu series (the values file's N)",
                     path, f.h.shape[0], what, n);
    if (!rc && !(*out = malloc(n * sizeof **out)))
        rc = pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate %zu %s", path, n, what);
    int_range r = {what, lo, hi, bad, *out};
    if (!rc)
        rc = read_ints(&f, &r, err);
    close(f.fd);
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* The labels; a training set's class count is its largest label + 1. */
static pl_status load_labels(const char *path, const pl_series *train, pl_series *out,
                             pl_error *err)
{
    int64_t hi = train ? train->classes - 1 : PL_SERIES_MAX_CLASSES - 1;
    pl_status rc = load_ints(path, "labels", out->n, 0, hi, PL_ERR_LABEL, &out->labels, err);
    if (rc)
        return rc;
    if (train) {
        out->classes = train->classes;
        return PL_OK;
    }
    int32_t max = 0;
    for (size_t i = 0; i < out->n; i++)
        max = out->labels[i] > max ? out->labels[i] : max;
    out->classes = max + 1;
    if (out->classes < 2)
        return pl_fail(err, PL_ERR_LABEL,
                       "%s: every label is 0: a training set needs at least 2 classes", path);
    return PL_OK;
}

/* Maps f's float32 data when mode asks for it and it can be (aligned
 * little-endian float32); 1 when mapped. */
static int map_values(const npy_file *f, pl_npy_mode mode, pl_series *out)
{
    size_t bytes = f->h.count * 4;
    if (mode == PL_NPY_COPY || (mode == PL_NPY_AUTO && bytes < PL_NPY_MAP_MIN) ||
        f->h.kind != 'f' || f->h.size != 4 || f->h.offset % 4 != 0)
        return 0;
    /* private: a writer gets its own pages, the file never changes */
    void *m = mmap(NULL, f->size, PROT_READ | PROT_WRITE, MAP_PRIVATE, f->fd, 0);
    if (m == MAP_FAILED)
        return 0; /* copied instead */
    out->mapped = m;
    out->mapped_len = f->size;
    out->values = (float *)((char *)m + f->h.offset);
    return 1;
}

/* Zeroes the steps beyond each row's length (a copy; a mapping is left as
 * it is), then refuses a non-finite value within a row. */
static pl_status finish_values(const npy_file *f, pl_series *out, pl_error *err)
{
    size_t row = (size_t)out->T * (size_t)out->D;
    for (size_t i = 0; i < out->n; i++) {
        float *v = out->values + i * row;
        size_t valid = (size_t)(out->lengths ? out->lengths[i] : out->T) * (size_t)out->D;
        if (!out->mapped)
            memset(v + valid, 0, (row - valid) * sizeof *v);
        for (size_t k = 0; k < valid; k++)
            if (!isfinite(v[k]))
                return pl_fail(err, PL_ERR_NONFINITE,
                               "%s: non-finite value %g at series %zu, step %zu, feature %zu%s",
                               f->path, (double)v[k], i, k / (size_t)out->D,
                               k % (size_t)out->D,
                               f->h.size == 8 ? " (float64 beyond float32's range?)" : "");
    }
    return PL_OK;
}

/* The values: mapped or copied. */
static pl_status load_values(npy_file *f, pl_npy_mode mode, pl_series *out, pl_error *err)
{
    if (map_values(f, mode, out))
        return PL_OK;
    size_t bytes;
    pl_status rc = pl_series_size(f->path, out->n, (size_t)out->T, (size_t)out->D, &bytes, err);
    if (rc)
        return rc;
    if (!(out->values = pl_alloc_data(bytes)))
        return pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate %zu bytes", f->path, bytes);
    return read_floats(f, out->values, err);
}

pl_status pl_npy_read_series(const char *values_path, const char *labels_path,
                             const char *lengths_path, const pl_series *train,
                             pl_npy_mode mode, pl_series *out, pl_error *err)
{
    memset(out, 0, sizeof *out);
    npy_file f;
    pl_status rc = npy_open(&f, values_path, "values", 2, 3, err);
    if (rc)
        return rc;
    out->n = f.h.shape[0];
    out->T = (int)f.h.shape[1];
    out->D = f.h.ndim == 3 ? (int)f.h.shape[2] : 1;
    if (train && train->D != out->D)
        rc = pl_fail(err, PL_ERR_MISMATCH, "%s: %d features a step, the training set has %d",
                     values_path, out->D, train->D);
    if (!rc && labels_path)
        rc = load_labels(labels_path, train, out, err);
    if (!rc && lengths_path)
        rc = load_ints(lengths_path, "lengths", out->n, 1, out->T, PL_ERR_DIMS, &out->lengths,
                       err);
    if (!rc)
        rc = load_values(&f, mode, out, err);
    if (!rc)
        rc = finish_values(&f, out, err);
    close(f.fd);
    if (!rc && !out->lengths)
        rc = pl_series_full_lengths(values_path, out, err);
    if (rc)
        pl_series_free(out);
    return rc;
}
