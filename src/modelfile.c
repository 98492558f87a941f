/* Model files: the trained parameters and every shape they need.
 *
 * Layout (little-endian):
 *   "PLSTMMDL"  magic                                 8
 *   version     u32                                   4
 *   header      the rows of FIELDS that the version has
 *   extras      version 4: features f32 means, features f32 standard
 *               deviations, names_bytes of class names (classes of them,
 *               each NUL-terminated); nothing when both counts are 0
 *   params      n_params f32
 *   crc32       u32 over every byte before it         4
 * Written through pl_write_atomic: a crash leaves the old or the new file.
 *
 * Versions (the number changes whenever a field is added, dropped or
 * changes meaning; the reader names the versions it reads):
 *   1  input, hidden, classes (u32), n_params (u64)
 *   2  adds time_steps (u32): the sequence length the model was trained on
 *   3  adds layers, image rows and cols, sequence (0 rows, 1 pixels),
 *      permuted (0, 1) (u32 each), permute_seed (u64), dropout (u32: the
 *      float's bits)
 *   4  adds input (0 images, pixels / 255; 1 real values), features (the
 *      standardisation's count: 0, or cols) and names_bytes (0, or the
 *      class names' block) (u32 each), and the extras they count; older
 *      files read as images, without either
 *   5  adds precision (u32: 0 fp32, 1 bf16: the operands of the LSTM's
 *      products in training, which eval and predict use too); older files
 *      read as fp32
 *
 * To add a field: a member in `head`, a row at the end of FIELDS with the
 * new version, MODEL_VERSION + 1, its check in head_check and its place in
 * pl_model_info. An older file reads the field as 0. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "files.h"

static const char MODEL_MAGIC[8] = {'P', 'L', 'S', 'T', 'M', 'M', 'D', 'L'};
#define MODEL_VERSION 5u /* written */
#define MODEL_OLDEST 1u  /* the oldest version read */
#define PREFIX 12        /* magic and version */
#define MAX_NAMES_BYTES (256 * (PL_MAX_CLASS_NAME + 1)) /* 256 classes at most */

typedef struct {
    uint64_t input, hidden, classes, n_params, time_steps;
    uint64_t layers, rows, cols, sequence, permuted, permute_seed, dropout;
    uint64_t input_kind, features, names_bytes, precision;
} head;

static const struct {
    size_t at;      /* offsetof(head, the field) */
    int bytes;      /* 4 or 8 in the file */
    uint32_t since; /* the first version that has it */
} FIELDS[] = {
    {offsetof(head, input), 4, 1},
    {offsetof(head, hidden), 4, 1},
    {offsetof(head, classes), 4, 1},
    {offsetof(head, n_params), 8, 1},
    {offsetof(head, time_steps), 4, 2},
    {offsetof(head, layers), 4, 3},
    {offsetof(head, rows), 4, 3},
    {offsetof(head, cols), 4, 3},
    {offsetof(head, sequence), 4, 3},
    {offsetof(head, permuted), 4, 3},
    {offsetof(head, permute_seed), 8, 3},
    {offsetof(head, dropout), 4, 3},
    {offsetof(head, input_kind), 4, 4},
    {offsetof(head, features), 4, 4},
    {offsetof(head, names_bytes), 4, 4},
    {offsetof(head, precision), 4, 5},
};
#define NFIELDS (sizeof FIELDS / sizeof *FIELDS)

static size_t head_bytes(uint32_t version)
{
    size_t n = 0;
    for (size_t f = 0; f < NFIELDS; f++)
        if (FIELDS[f].since <= version)
            n += (size_t)FIELDS[f].bytes;
    return n;
}

static void head_put(pl_wcursor *c, const head *h)
{
    for (size_t f = 0; f < NFIELDS; f++) {
        uint64_t v;
        memcpy(&v, (const char *)h + FIELDS[f].at, 8);
        if (FIELDS[f].bytes == 4)
            pl_put_u32(c, (uint32_t)v);
        else
            pl_put_u64(c, v);
    }
}

static void head_get(pl_rcursor *c, uint32_t version, head *h)
{
    memset(h, 0, sizeof *h);
    for (size_t f = 0; f < NFIELDS; f++) {
        if (FIELDS[f].since > version)
            continue;
        uint64_t v = FIELDS[f].bytes == 4 ? pl_get_u32(c) : pl_get_u64(c);
        memcpy((char *)h + FIELDS[f].at, &v, 8);
    }
}

/* Bytes of the extras that header h announces (its counts already
 * within their limits: read_header). */
static size_t extras_bytes(const head *h)
{
    return 8 * (size_t)h->features + (size_t)h->names_bytes;
}

/* The class names' block: exactly m->cfg.classes NUL-terminated names in
 * `bytes` bytes, into m->class_names (allocated). */
static pl_status get_names(const char *path, const char *block, size_t bytes,
                           pl_model_info *m, pl_error *err)
{
    size_t at = 0;
    for (int c = 0; c < m->cfg.classes; c++) {
        const char *end = at < bytes ? memchr(block + at, '\0', bytes - at) : NULL;
        if (!end)
            return pl_fail(err, PL_ERR_CORRUPT, "%s: bad model header: the class names end "
                           "after %d of %d names", path, c, m->cfg.classes);
        if (!(m->class_names[c] = strdup(block + at)))
            return pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate the class names", path);
        at = (size_t)(end - block) + 1;
    }
    if (at != bytes)
        return pl_fail(err, PL_ERR_CORRUPT, "%s: bad model header: %zu bytes after the %d class "
                       "names", path, bytes - at, m->cfg.classes);
    return PL_OK;
}

/* Version 4's extras (at p) into m: the standardisation and the class
 * names, allocated (m owns them, also when this fails). */
static pl_status get_extras(const char *path, const head *h, const unsigned char *p,
                            pl_model_info *m, pl_error *err)
{
    pl_status rc = pl_model_extras_alloc(path, m, (int)h->features, h->names_bytes > 0, err);
    if (rc)
        return rc;
    if (h->features) { /* none: no arrays (memcpy to NULL is undefined even for 0 bytes) */
        memcpy(m->norm_mean, p, 4 * (size_t)h->features);
        memcpy(m->norm_std, p + 4 * h->features, 4 * (size_t)h->features);
    }
    if (h->names_bytes)
        rc = get_names(path, (const char *)p + 8 * h->features, (size_t)h->names_bytes, m, err);
    return rc;
}

/* After the payload check (config, count, length, CRC): the fields beyond
 * the config, each within its range, into m (and the extras, at extras). */
static pl_status head_check(const char *path, uint32_t version, const head *h,
                            const unsigned char *extras, pl_model_info *m, pl_error *err)
{
    m->version = (int)version;
    m->T = (int)h->time_steps;
    if (version >= 2 && (h->time_steps < 1 || h->time_steps > 65535))
        return pl_fail(err, PL_ERR_MISMATCH,
                       "%s: bad model header: %llu time steps (expected 1 to 65535)", path,
                       (unsigned long long)h->time_steps);
    if (version < 3) { /* rows read row by row, the shape from T and D */
        m->rows = m->T;
        m->cols = m->T ? m->cfg.input : 0;
        m->sequence = PL_SEQ_ROWS;
        m->permuted = 0;
        m->permute_seed = 0;
        m->dropout = 0;
        return PL_OK;
    }
    uint32_t bits = (uint32_t)h->dropout;
    m->rows = (int)(h->rows > 65535 ? 0 : h->rows);
    m->cols = (int)(h->cols > 65535 ? 0 : h->cols);
    m->sequence = h->sequence > 1 ? (pl_sequence)2 : (pl_sequence)h->sequence;
    m->permuted = h->permuted > 1 ? 2 : (int)h->permuted;
    m->permute_seed = h->permute_seed;
    memcpy(&m->dropout, &bits, 4);
    m->input = h->input_kind > 1 ? (pl_input)2 : (pl_input)h->input_kind;
    if (h->precision > PL_PRECISION_BF16)
        return pl_fail(err, PL_ERR_MISMATCH, "%s: bad model header: precision %llu (expected 0, "
                       "fp32, or 1, bf16)", path, (unsigned long long)h->precision);
    m->precision = (pl_precision)h->precision;
    pl_status rc = get_extras(path, h, extras, m, err);
    if (!rc)
        rc = pl_model_shape_check(path, "bad model header", m, err);
    if (rc)
        pl_model_info_free(m);
    return rc;
}

/* The class names' block of m: its bytes (0 without names). */
static size_t names_bytes(const pl_model_info *m)
{
    size_t n = 0;
    for (int c = 0; m->class_names && c < m->cfg.classes; c++)
        n += strlen(m->class_names[c]) + 1;
    return n;
}

static void put_extras(pl_wcursor *c, const pl_model_info *m)
{
    pl_put_bytes(c, m->norm_mean, 4 * (size_t)m->features);
    pl_put_bytes(c, m->norm_std, 4 * (size_t)m->features);
    for (int k = 0; m->class_names && k < m->cfg.classes; k++)
        pl_put_bytes(c, m->class_names[k], strlen(m->class_names[k]) + 1);
}

pl_status pl_model_save(const char *path, const pl_model_info *m, const float *params,
                        pl_write_guard *guard, pl_error *err)
{
    if (pl_config_check(&m->cfg, err))
        return PL_ERR_ARG;
    if (m->T < 1 || m->T > 65535)
        return pl_fail(err, PL_ERR_ARG, "%s: %d time steps (expected 1 to 65535)", path, m->T);
    pl_model_info w = *m;
    pl_model_info_complete(&w);
    if (pl_model_shape_check(path, "cannot save", &w, err))
        return PL_ERR_ARG;
    size_t n = pl_param_count(&m->cfg);
    uint32_t bits;
    memcpy(&bits, &w.dropout, 4);
    head h = {(uint64_t)m->cfg.input, (uint64_t)m->cfg.hidden, (uint64_t)m->cfg.classes, n,
              (uint64_t)m->T, (uint64_t)m->cfg.layers, (uint64_t)w.rows, (uint64_t)w.cols,
              (uint64_t)w.sequence, (uint64_t)w.permuted, w.permute_seed, bits,
              (uint64_t)w.input, (uint64_t)w.features, names_bytes(&w),
              (uint64_t)(w.precision == PL_PRECISION_BF16)};
    size_t len = PREFIX + head_bytes(MODEL_VERSION) + extras_bytes(&h) + 4 * n + 4;
    unsigned char *buf = malloc(len);
    if (!buf)
        return pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, len);
    pl_wcursor c = {buf};
    pl_put_bytes(&c, MODEL_MAGIC, 8);
    pl_put_u32(&c, MODEL_VERSION);
    head_put(&c, &h);
    put_extras(&c, &w);
    pl_put_bytes(&c, params, 4 * n);
    pl_put_u32(&c, (uint32_t)crc32_z(0L, buf, len - 4));
    pl_status rc = pl_write_atomic(path, buf, len, guard, err);
    free(buf);
    return rc;
}

/* Magic, version and header of a model file of len bytes. */
static pl_status read_header(const char *path, const unsigned char *buf, size_t len,
                             uint32_t *version_out, head *h, size_t *head_len, pl_error *err)
{
    if (memcmp(buf, MODEL_MAGIC, 8) != 0)
        return pl_fail(err, PL_ERR_MAGIC,
                       "%s: bad magic number: expected \"PLSTMMDL\" (a parlstm model)%s", path,
                       memcmp(buf, "PLSTMCKP", 8) == 0 ? "; this is a checkpoint" : "");
    pl_rcursor c = {buf + 8};
    uint32_t version = pl_get_u32(&c);
    if (version < MODEL_OLDEST || version > MODEL_VERSION)
        return pl_fail(err, PL_ERR_VERSION,
                       "%s: model format version %u, this build reads versions %u to %u", path,
                       version, MODEL_OLDEST, MODEL_VERSION);
    *head_len = PREFIX + head_bytes(version);
    if (len < *head_len + 4)
        return pl_fail(err, PL_ERR_TRUNCATED,
                       "%s: truncated: %zu bytes, a version %u model file has at least %zu",
                       path, len, version, *head_len + 4);
    head_get(&c, version, h);
    if (h->features > 65535 || h->names_bytes > MAX_NAMES_BYTES)
        return pl_fail(err, PL_ERR_TOO_LARGE, "%s: bad model header: a standardisation of %llu "
                       "features and %llu bytes of class names (at most 65535 and %d)", path,
                       (unsigned long long)h->features, (unsigned long long)h->names_bytes,
                       MAX_NAMES_BYTES);
    *head_len += extras_bytes(h); /* within the payload: pl_check_payload checks the length */
    *version_out = version;
    return PL_OK;
}

pl_status pl_model_load(const char *path, pl_model_info *m, float **params, pl_error *err)
{
    *params = NULL;
    unsigned char *buf;
    size_t len, head_len = 0;
    uint32_t version = 0;
    head h = {0};
    pl_model_info got;
    pl_status rc = pl_read_file(path, "model", PREFIX + head_bytes(MODEL_OLDEST) + 4,
                                (size_t)1 << 34, &buf, &len, err);
    if (rc)
        return rc;
    if ((rc = read_header(path, buf, len, &version, &h, &head_len, err)))
        goto out;
    uint64_t n = h.n_params;
    memset(&got, 0, sizeof got);
    got.cfg = (pl_config){(int)h.input, (int)h.hidden, (int)h.classes,
                          version >= 3 ? (int)(h.layers > PL_MAX_LAYERS ? 0 : h.layers) : 1};
    if ((rc = pl_check_payload(path, "model file", &got.cfg, n, head_len, 1, buf, len, err)) ||
        (rc = head_check(path, version, &h, buf + head_len - extras_bytes(&h), &got, err)))
        goto out;
    float *p = pl_alloc_floats(n);
    if (!p) {
        pl_model_info_free(&got);
        rc = pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate %llu parameters", path,
                     (unsigned long long)n);
        goto out;
    }
    memcpy(p, buf + head_len, 4 * n);
    *m = got;
    *params = p;
out:
    free(buf);
    return rc;
}
