/* Export and import of a model as named float32 tensors in the safetensors
 * format (the exchange format of PyTorch and Hugging Face users):
 *
 *   u64 N (little-endian) | N bytes of JSON header | data buffer
 *
 * The header is a JSON object: one entry per tensor,
 *   "name": {"dtype": "F32", "shape": [rows, cols], "data_offsets": [begin, end]}
 * with offsets relative to the data buffer, and an optional "__metadata__"
 * object of string values. The buffer is covered by the tensors exactly: no
 * overlaps, no holes, nothing after the last one.
 *
 * The names are those of a PyTorch module
 *   input  = nn.Linear(D, H)
 *   lstm   = nn.LSTM(H, H, num_layers=L, batch_first=True)
 *   output = nn.Linear(H, C),   logits = output(lstm(input(x))[0][:, -1])
 * so that load_state_dict(strict=True) takes the file as it is. PyTorch
 * stores a layer's weights as (out, in), parlstm as (in, out): every matrix
 * is transposed on the way out and back. The LSTM kernel w[l] (2H, 4H) with
 * rows [input ; h] splits into weight_ih (its first H rows, transposed) and
 * weight_hh (its last H rows, transposed); both use the gate order
 * i, f, g, o. parlstm has one LSTM bias (the +1 forget bias is inside it):
 * it goes out as bias_ih, with bias_hh zero; on import b = bias_ih + bias_hh.
 *
 * The JSON is read and written by jansson; this file never parses JSON by
 * hand. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"

#define ST_MAX_HEADER (100u << 20) /* the limit of the reference implementation */
#define ST_MAX_FILE ((size_t)1 << 36)
#define ST_MAX_TENSORS (4 + 4 * PL_MAX_LAYERS)

/* How a tensor of the file maps onto the flat parameter buffer. */
typedef enum {
    ST_COPY,      /* 1-D, the same floats */
    ST_TRANSPOSE, /* (rows, cols) = the transpose of a (cols, rows) block */
    ST_ADD        /* 1-D, written as zeros, added on import (bias_hh) */
} st_kind;

typedef struct {
    char name[32];
    int ndim;
    size_t shape[2];
    size_t offset; /* of its block in the parameter buffer */
    st_kind kind;
} st_tensor;

static size_t numel(const st_tensor *t)
{
    return t->ndim == 1 ? t->shape[0] : t->shape[0] * t->shape[1];
}

static void set_tensor(st_tensor *t, const char *name, int layer, size_t rows,
                       size_t cols, size_t offset, st_kind kind)
{
    if (layer < 0)
        snprintf(t->name, sizeof t->name, "%s", name);
    else
        snprintf(t->name, sizeof t->name, "%s%d", name, layer);
    t->ndim = cols ? 2 : 1;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->offset = offset;
    t->kind = kind;
}

/* The tensors of a model of config cfg, in file order; returns how many.
 * Offsets come from the parameter groups (w_in, b_in, then w and b of each
 * layer, then w_out, b_out). */
static int tensor_table(const pl_config *cfg, st_tensor *t)
{
    const size_t D = (size_t)cfg->input, H = (size_t)cfg->hidden, C = (size_t)cfg->classes;
    pl_group g[PL_MAX_GROUPS];
    int ng = pl_param_groups(cfg, g), n = 0;
    set_tensor(&t[n++], "input.weight", -1, H, D, g[0].offset, ST_TRANSPOSE);
    set_tensor(&t[n++], "input.bias", -1, H, 0, g[1].offset, ST_COPY);
    for (int l = 0; l < cfg->layers; l++) {
        size_t w = g[2 + 2 * l].offset, b = g[3 + 2 * l].offset;
        set_tensor(&t[n++], "lstm.weight_ih_l", l, 4 * H, H, w, ST_TRANSPOSE);
        set_tensor(&t[n++], "lstm.weight_hh_l", l, 4 * H, H, w + H * 4 * H, ST_TRANSPOSE);
        set_tensor(&t[n++], "lstm.bias_ih_l", l, 4 * H, 0, b, ST_COPY);
        set_tensor(&t[n++], "lstm.bias_hh_l", l, 4 * H, 0, b, ST_ADD);
    }
    set_tensor(&t[n++], "output.weight", -1, C, H, g[ng - 2].offset, ST_TRANSPOSE);
    set_tensor(&t[n++], "output.bias", -1, C, 0, g[ng - 1].offset, ST_COPY);
    return n;
}

static void format_shape(char *buf, size_t len, const size_t *shape, int ndim)
{
    size_t used = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%zu", i ? ", " : "", shape[i]);
    if (used < len)
        snprintf(buf + used, len - used, "]");
}

/* The first non-finite value of x[0..n), or -1. */
static long first_nonfinite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return (long)i;
    return -1;
}

static pl_status nonfinite_error(pl_error *err, const char *path, const char *what,
                                 const st_tensor *t, float value, size_t i)
{
    char where[64];
    if (t->ndim == 2)
        snprintf(where, sizeof where, "[%zu, %zu]", i / t->shape[1], i % t->shape[1]);
    else
        snprintf(where, sizeof where, "[%zu]", i);
    return pl_fail(err, PL_ERR_NONFINITE, "%s: %s '%s' holds %s at %s", path, what, t->name,
                   isnan(value) ? "a NaN" : "an infinity", where);
}

/* Whether cfg is no valid config; if so, err says "PATH: WHAT: why". */
static int bad_config(const char *path, const char *what, const pl_config *cfg, pl_status code,
                      pl_error *err)
{
    pl_error why = {0};
    if (pl_config_check(cfg, &why) == PL_OK)
        return 0;
    pl_fail(err, code, "%s: %s: %s", path, what, why.msg);
    return 1;
}

/* ------------------------------------------------------------------ save */

static int meta_set(json_t *meta, const char *key, const char *value)
{
    return json_object_set_new(meta, key, json_string(value));
}

static int meta_set_int(json_t *meta, const char *key, long value)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%ld", value);
    return meta_set(meta, key, buf);
}

static int meta_set_u64(json_t *meta, const char *key, uint64_t value)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)value);
    return meta_set(meta, key, buf);
}

#define ST_MAX_ORDER ((size_t)1 << 20) /* pixel_order is written for images up to this */

/* pixel_order: the permutation of permute_seed as decimal positions,
 * "k0,k1,...", for readers that cannot compute parlstm's order (PyTorch);
 * NULL when there is none to write or no memory. */
static char *pixel_order_text(const pl_model_info *mi)
{
    size_t n = (size_t)mi->rows * (size_t)mi->cols;
    if (!mi->permuted || n == 0 || n > ST_MAX_ORDER)
        return NULL;
    uint32_t *perm = malloc(sizeof *perm * n);
    char *text = malloc(11 * n + 1);
    if (!perm || !text) {
        free(perm);
        free(text);
        return NULL;
    }
    pl_pixel_permutation(mi->permute_seed, perm, n);
    size_t at = 0;
    for (size_t k = 0; k < n; k++)
        at += (size_t)sprintf(text + at, "%s%u", k ? "," : "", perm[k]);
    free(perm);
    return text;
}

/* A JSON array of the n floats of x as text ("[0.5,-1.25]"), each with
 * the 9 digits that give the float back; NULL when out of memory. */
static char *floats_text(const float *x, int n)
{
    char *text = malloc(16 * (size_t)n + 3);
    if (!text)
        return NULL;
    size_t at = 0;
    text[at++] = '[';
    for (int i = 0; i < n; i++)
        at += (size_t)sprintf(text + at, "%s%.9g", i ? "," : "", (double)x[i]);
    snprintf(text + at, 2, "]");
    return text;
}

/* The class names as the text of a JSON array of strings; NULL when out
 * of memory or a name is not UTF-8 (export_check refuses that first). */
static char *names_text(const pl_model_info *mi)
{
    json_t *a = json_array();
    for (int c = 0; a && c < mi->cfg.classes; c++)
        if (json_array_append_new(a, json_string(mi->class_names[c]))) {
            json_decref(a);
            return NULL;
        }
    char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return text;
}

/* The standardisation and the class names (a model of real values):
 * normalize_mean and normalize_std, class_names. Returns nonzero when a
 * value cannot be set. */
static int values_metadata(json_t *m, const pl_model_info *mi)
{
    int bad = 0;
    if (mi->features) {
        char *mean = floats_text(mi->norm_mean, mi->features);
        char *sd = floats_text(mi->norm_std, mi->features);
        bad = !mean || !sd || meta_set(m, "normalize_mean", mean) ||
              meta_set(m, "normalize_std", sd);
        free(mean);
        free(sd);
    }
    if (!bad && mi->class_names) {
        char *names = names_text(mi);
        bad = !names || meta_set(m, "class_names", names);
        free(names);
    }
    return bad;
}

static json_t *make_metadata(const pl_model_info *mi)
{
    const pl_config *cfg = &mi->cfg;
    json_t *m = json_object();
    char module[256], dropout[32];
    snprintf(module, sizeof module,
             "input=nn.Linear(%d, %d); lstm=nn.LSTM(%d, %d, num_layers=%d, batch_first=True); "
             "output=nn.Linear(%d, %d); logits=output(lstm(input(x))[0][:, -1])",
             cfg->input, cfg->hidden, cfg->hidden, cfg->hidden, cfg->layers, cfg->hidden,
             cfg->classes);
    snprintf(dropout, sizeof dropout, "%.9g", (double)mi->dropout);
    int known = mi->T > 0;
    char *order = pixel_order_text(mi);
    int bad = !m || meta_set(m, "format", "pt") || meta_set(m, "producer", "parlstm") ||
              meta_set(m, "parlstm_version", PACKAGE_VERSION) || meta_set(m, "module", module) ||
              meta_set(m, "input_scaling", mi->input == PL_INPUT_IMAGES ? "pixel/255"
                                           : mi->features ? "standard" : "none") ||
              values_metadata(m, mi) ||
              meta_set(m, "sequence", mi->sequence == PL_SEQ_PIXELS ? "pixels" : "rows") ||
              (known && meta_set_int(m, "time_steps", mi->T)) ||
              (known && meta_set_int(m, "image_rows", mi->rows)) ||
              (known && meta_set_int(m, "image_cols", mi->cols)) ||
              meta_set(m, "permuted", mi->permuted ? "yes" : "no") ||
              (mi->permuted && meta_set_u64(m, "permute_seed", mi->permute_seed)) ||
              (order && meta_set(m, "pixel_order", order)) ||
              (mi->permuted && !order && (size_t)mi->rows * mi->cols <= ST_MAX_ORDER) ||
              meta_set(m, "dropout", dropout) ||
              meta_set_int(m, "width", cfg->input) || meta_set_int(m, "hidden", cfg->hidden) ||
              meta_set_int(m, "layers", cfg->layers) || meta_set_int(m, "classes", cfg->classes) ||
              meta_set(m, "gate_order", "i,f,g,o");
    free(order);
    if (bad) {
        json_decref(m);
        return NULL;
    }
    return m;
}

/* The JSON header (compact), padded with spaces so that the data starts at
 * a multiple of 8 bytes; *len is its padded length. */
static char *make_header(const pl_model_info *mi, const st_tensor *t, int nt, size_t *len)
{
    json_t *root = json_object();
    json_t *meta = make_metadata(mi);
    int bad = !root || !meta || json_object_set_new(root, "__metadata__", meta);
    size_t at = 0;
    for (int i = 0; i < nt && !bad; i++) {
        size_t bytes = 4 * numel(&t[i]);
        json_t *shape = t[i].ndim == 2 ? json_pack("[II]", (json_int_t)t[i].shape[0],
                                                   (json_int_t)t[i].shape[1])
                                       : json_pack("[I]", (json_int_t)t[i].shape[0]);
        json_t *e = json_pack("{s:s, s:o, s:[II]}", "dtype", "F32", "shape", shape,
                              "data_offsets", (json_int_t)at, (json_int_t)(at + bytes));
        bad = !e || json_object_set_new(root, t[i].name, e);
        at += bytes;
    }
    char *text = bad ? NULL : json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!text)
        return NULL;
    size_t n = strlen(text), padded = pl_round_up(8 + n, 8) - 8;
    char *out = realloc(text, padded);
    if (!out) {
        free(text);
        return NULL;
    }
    memset(out + n, ' ', padded - n);
    *len = padded;
    return out;
}

/* What the file can say about m: a valid config, and either no sequence
 * length (T = 0: a version 1 model file; then nothing about the images) or
 * a consistent image shape and sequence mode. *out: m, completed. */
static pl_status export_check(const char *path, const pl_model_info *m, pl_model_info *out,
                              pl_error *err)
{
    if (bad_config(path, "cannot export", &m->cfg, PL_ERR_ARG, err))
        return PL_ERR_ARG;
    *out = *m;
    if (m->T == 0) {
        if (m->rows || m->cols || m->sequence != PL_SEQ_ROWS || m->permuted)
            return pl_fail(err, PL_ERR_ARG, "%s: cannot export: an image shape, sequence "
                           "mode or permutation without the sequence length", path);
        if (m->features)
            return pl_fail(err, PL_ERR_ARG, "%s: cannot export: a standardisation without "
                           "the sequence length", path);
        if (!(m->dropout >= 0 && m->dropout < 1))
            return pl_fail(err, PL_ERR_ARG, "%s: cannot export: dropout %g (0 to below 1)",
                           path, (double)m->dropout);
        return PL_OK;
    }
    if (m->T < 0 || m->T > 65535)
        return pl_fail(err, PL_ERR_ARG, "%s: cannot export: %d time steps", path, m->T);
    pl_model_info_complete(out);
    if (pl_model_shape_check(path, "cannot export", out, err))
        return PL_ERR_ARG;
    for (int c = 0; m->class_names && c < m->cfg.classes; c++) {
        json_t *name = json_string(m->class_names[c]); /* NULL: not UTF-8 */
        if (!name)
            return pl_fail(err, PL_ERR_ARG, "%s: cannot export: class %d's name is not UTF-8 "
                           "text (JSON holds nothing else)", path, c);
        json_decref(name);
    }
    return PL_OK;
}

pl_status pl_safetensors_save(const char *path, const pl_model_info *m, const float *params,
                              pl_write_guard *guard, pl_error *err)
{
    pl_model_info mi;
    pl_status rc = export_check(path, m, &mi, err);
    if (rc)
        return rc;
    const pl_config *cfg = &mi.cfg;
    st_tensor t[ST_MAX_TENSORS];
    int nt = tensor_table(cfg, t);
    for (int i = 0; i < nt; i++) {
        if (t[i].kind == ST_ADD)
            continue;
        long bad = first_nonfinite(params + t[i].offset, numel(&t[i]));
        if (bad >= 0) {
            /* name the element as the file would (transposed) */
            size_t k = (size_t)bad;
            if (t[i].kind == ST_TRANSPOSE)
                k = k % t[i].shape[0] * t[i].shape[1] + k / t[i].shape[0];
            return nonfinite_error(err, path, "cannot export: tensor", &t[i],
                                   params[t[i].offset + (size_t)bad], k);
        }
    }
    size_t hlen;
    char *header = make_header(&mi, t, nt, &hlen);
    if (!header)
        return pl_fail(err, PL_ERR_NOMEM, "%s: out of memory building the header", path);
    size_t data = 0;
    for (int i = 0; i < nt; i++)
        data += 4 * numel(&t[i]);
    size_t len = 8 + hlen + data;
    unsigned char *buf = malloc(len);
    if (!buf) {
        free(header);
        return pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, len);
    }
    uint64_t n64 = hlen;
    memcpy(buf, &n64, 8); /* little-endian: see file.c */
    memcpy(buf + 8, header, hlen);
    free(header);
    float *out = (float *)(void *)(buf + 8 + hlen); /* 8-aligned by the padding */
    for (int i = 0; i < nt; i++) {
        const float *src = params + t[i].offset;
        size_t r = t[i].shape[0], c = t[i].shape[1];
        if (t[i].kind == ST_TRANSPOSE) {
            for (size_t a = 0; a < r; a++)
                for (size_t b = 0; b < c; b++)
                    out[a * c + b] = src[b * r + a];
        } else if (t[i].kind == ST_COPY) {
            memcpy(out, src, 4 * r);
        } else {
            memset(out, 0, 4 * r);
        }
        out += numel(&t[i]);
    }
    rc = pl_write_atomic(path, buf, len, guard, err);
    free(buf);
    return rc;
}

/* ------------------------------------------------------------------ load */

/* One tensor entry of the header, as found. */
typedef struct {
    const char *name; /* owned by the JSON tree */
    const char *dtype;
    int ndim;
    size_t shape[8];
    size_t begin, end;
    int used; /* matched by the expected table */
} st_entry;

/* A non-negative JSON integer (at most max), or -1. */
static long long json_count(const json_t *v, long long max)
{
    if (!json_is_integer(v))
        return -1;
    json_int_t x = json_integer_value(v);
    return x < 0 || x > max ? -1 : (long long)x;
}

static pl_status parse_entry(const char *path, const char *name, json_t *v, st_entry *e,
                             size_t data_len, pl_error *err)
{
    memset(e, 0, sizeof *e);
    e->name = name;
    if (!json_is_object(v))
        return pl_fail(err, PL_ERR_CORRUPT, "%s: tensor '%s' is not a JSON object", path, name);
    const char *key;
    json_t *x;
    json_object_foreach(v, key, x) {
        if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
            return pl_fail(err, PL_ERR_CORRUPT, "%s: tensor '%s' has an unknown field '%s'",
                           path, name, key);
    }
    json_t *dtype = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape"),
           *offs = json_object_get(v, "data_offsets");
    if (!json_is_string(dtype))
        return pl_fail(err, PL_ERR_CORRUPT, "%s: tensor '%s' has no dtype string", path, name);
    e->dtype = json_string_value(dtype);
    if (!json_is_array(shape) || json_array_size(shape) > 8)
        return pl_fail(err, PL_ERR_CORRUPT,
                       "%s: tensor '%s' has no shape (an array of at most 8 sizes)", path, name);
    e->ndim = (int)json_array_size(shape);
    for (int i = 0; i < e->ndim; i++) {
        long long s = json_count(json_array_get(shape, (size_t)i), 1LL << 40);
        if (s < 0)
            return pl_fail(err, PL_ERR_CORRUPT,
                           "%s: tensor '%s': shape entry %d is not a size from 0 to 2^40", path,
                           name, i);
        e->shape[i] = (size_t)s;
    }
    if (!json_is_array(offs) || json_array_size(offs) != 2)
        return pl_fail(err, PL_ERR_CORRUPT, "%s: tensor '%s' has no data_offsets [begin, end]",
                       path, name);
    long long b = json_count(json_array_get(offs, 0), LLONG_MAX),
              en = json_count(json_array_get(offs, 1), LLONG_MAX);
    if (b < 0 || en < 0)
        return pl_fail(err, PL_ERR_CORRUPT,
                       "%s: tensor '%s': data_offsets must be two non-negative integers", path,
                       name);
    if (en < b)
        return pl_fail(err, PL_ERR_CORRUPT,
                       "%s: tensor '%s': data_offsets [%lld, %lld] end before they begin", path,
                       name, b, en);
    if ((unsigned long long)en > data_len)
        return pl_fail(err, PL_ERR_TRUNCATED,
                       "%s: tensor '%s': data_offsets [%lld, %lld] go beyond the data (%zu "
                       "bytes after the header)",
                       path, name, b, en, data_len);
    e->begin = (size_t)b;
    e->end = (size_t)en;
    return PL_OK;
}

/* A metadata value that must be an integer in [lo, hi] (and equal want
 * when want > 0); *out gets it. Absent: PL_OK, *out untouched. */
static pl_status meta_int(const char *path, json_t *meta, const char *key, long lo, long hi,
                          long want, long *out, pl_error *err)
{
    json_t *v = json_object_get(meta, key);
    if (!v)
        return PL_OK;
    const char *s = json_string_value(v);
    char *end;
    long x = strtol(s, &end, 10);
    if (!*s || *end || x < lo || x > hi)
        return pl_fail(err, PL_ERR_CORRUPT,
                       "%s: metadata %s is \"%s\", expected an integer from %ld to %ld", path, key,
                       s, lo, hi);
    if (want > 0 && x != want)
        return pl_fail(err, PL_ERR_MISMATCH,
                       "%s: metadata %s is %ld but the tensors' shapes say %ld", path, key, x,
                       want);
    *out = x;
    return PL_OK;
}

static pl_status meta_word(const char *path, json_t *meta, const char *key, const char *want,
                           pl_error *err)
{
    json_t *v = json_object_get(meta, key);
    if (v && strcmp(json_string_value(v), want) != 0)
        return pl_fail(err, PL_ERR_MISMATCH, "%s: metadata %s is \"%s\", parlstm models use \"%s\"",
                       path, key, json_string_value(v), want);
    return PL_OK;
}

/* A metadata value that must be one of words[] (NULL-terminated); *out
 * gets its index, dflt when absent. */
static pl_status meta_choice(const char *path, json_t *meta, const char *key,
                             const char *const *words, int dflt, int *out, pl_error *err)
{
    json_t *v = json_object_get(meta, key);
    *out = dflt;
    if (!v)
        return PL_OK;
    const char *s = json_string_value(v);
    for (int i = 0; words[i]; i++)
        if (!strcmp(s, words[i])) {
            *out = i;
            return PL_OK;
        }
    char list[160];
    size_t at = 0;
    for (int i = 0; words[i]; i++)
        at += (size_t)snprintf(list + at, sizeof list - at, "%s\"%s\"",
                               i == 0 ? "" : words[i + 1] ? ", " : " or ", words[i]);
    return pl_fail(err, PL_ERR_MISMATCH, "%s: metadata %s is \"%s\", parlstm models use %s",
                   path, key, s, list);
}

/* permuted ("no" or "yes") and permute_seed (a decimal u64, there exactly
 * when permuted is yes). */
static pl_status meta_permutation(const char *path, json_t *meta, pl_model_info *m,
                                  pl_error *err)
{
    static const char *const yes_no[] = {"no", "yes", NULL};
    pl_status rc = meta_choice(path, meta, "permuted", yes_no, 0, &m->permuted, err);
    json_t *seed = json_object_get(meta, "permute_seed");
    if (rc)
        return rc;
    if (m->permuted && !seed)
        return pl_fail(err, PL_ERR_MISMATCH, "%s: metadata permuted is \"yes\" but there is no "
                       "permute_seed: the pixel order cannot be known", path);
    if (!m->permuted && seed)
        return pl_fail(err, PL_ERR_MISMATCH, "%s: metadata permute_seed without permuted "
                       "\"yes\"", path);
    if (!seed)
        return PL_OK;
    const char *s = json_string_value(seed);
    char *end;
    errno = 0;
    m->permute_seed = strtoull(s, &end, 10);
    if (*s < '0' || *s > '9' || *end || errno == ERANGE)
        return pl_fail(err, PL_ERR_CORRUPT, "%s: metadata permute_seed is \"%s\", expected an "
                       "integer from 0 to 2^64 - 1", path, s);
    return PL_OK;
}

static pl_status meta_dropout(const char *path, json_t *meta, float *dropout, pl_error *err)
{
    json_t *v = json_object_get(meta, "dropout");
    *dropout = 0;
    if (!v)
        return PL_OK;
    const char *s = json_string_value(v);
    char *end;
    float x = strtof(s, &end);
    if (!*s || *end || !(x >= 0 && x < 1))
        return pl_fail(err, PL_ERR_CORRUPT, "%s: metadata dropout is \"%s\", expected a number "
                       "from 0 to below 1", path, s);
    *dropout = x;
    return PL_OK;
}

/* The image shape: image_rows and image_cols with time_steps, or (rows
 * mode) time_steps alone, or nothing: T = 0, a sequence length unknown. */
static pl_status meta_shape(const char *path, json_t *meta, pl_model_info *m, pl_error *err)
{
    long t = 0, rows = 0, cols = 0;
    pl_status rc;
    if ((rc = meta_int(path, meta, "time_steps", 1, 65535, 0, &t, err)) ||
        (rc = meta_int(path, meta, "image_rows", 1, 65535, 0, &rows, err)) ||
        (rc = meta_int(path, meta, "image_cols", 1, 65535, 0, &cols, err)))
        return rc;
    m->T = (int)t;
    m->rows = (int)rows;
    m->cols = (int)cols;
    if (!rows != !cols)
        return pl_fail(err, PL_ERR_MISMATCH, "%s: metadata has image_%s without image_%s", path,
                       rows ? "rows" : "cols", rows ? "cols" : "rows");
    if (t == 0 && (rows || m->sequence != PL_SEQ_ROWS || m->permuted))
        return pl_fail(err, PL_ERR_MISMATCH, "%s: metadata has %s but no time_steps", path,
                       rows ? "an image shape" : m->sequence != PL_SEQ_ROWS ? "sequence \"pixels\""
                                                                           : "a permutation");
    if (t == 0)
        return PL_OK;
    if (m->sequence == PL_SEQ_PIXELS && !rows)
        return pl_fail(err, PL_ERR_MISMATCH, "%s: metadata sequence is \"pixels\" but there is "
                       "no image_rows and image_cols: the image shape cannot be known", path);
    pl_model_info_complete(m); /* checked with the input's kind by meta_values */
    return PL_OK;
}

/* pixel_order, when there: exactly the order of permute_seed over the
 * image's pixels. */
static pl_status meta_pixel_order(const char *path, json_t *meta, const pl_model_info *m,
                                  pl_error *err)
{
    json_t *v = json_object_get(meta, "pixel_order");
    if (!v)
        return PL_OK;
    if (!m->permuted)
        return pl_fail(err, PL_ERR_MISMATCH, "%s: metadata pixel_order without permuted \"yes\"",
                       path);
    size_t n = (size_t)m->rows * (size_t)m->cols;
    uint32_t *perm = malloc(sizeof *perm * (n ? n : 1));
    if (!perm)
        return pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate a pixel order of %zu", path, n);
    pl_pixel_permutation(m->permute_seed, perm, n);
    const char *s = json_string_value(v);
    pl_status rc = PL_OK;
    size_t k = 0;
    for (; *s && rc == PL_OK; k++) {
        char *end;
        errno = 0;
        unsigned long x = strtoul(s, &end, 10);
        if (end == s || errno || (*end && *end != ',') || (*end == ',' && !end[1]))
            rc = pl_fail(err, PL_ERR_CORRUPT, "%s: metadata pixel_order: entry %zu is not a "
                         "number (expected positions separated by commas)", path, k);
        else if (k >= n)
            rc = pl_fail(err, PL_ERR_MISMATCH, "%s: metadata pixel_order has more than the %zu "
                         "entries of %dx%d images", path, n, m->rows, m->cols);
        else if (x != perm[k])
            rc = pl_fail(err, PL_ERR_MISMATCH, "%s: metadata pixel_order is not the order of "
                         "permute_seed %llu: entry %zu is %lu, expected %u", path,
                         (unsigned long long)m->permute_seed, k, x, perm[k]);
        s = *end ? end + 1 : end;
    }
    if (rc == PL_OK && k != n)
        rc = pl_fail(err, PL_ERR_MISMATCH, "%s: metadata pixel_order has %zu entries, %dx%d "
                     "images have %zu pixels", path, k, m->rows, m->cols, n);
    free(perm);
    return rc;
}

/* A metadata value that is the text of a JSON array of numbers (1 to
 * 65535 of them; *count of them when *count is not 0), into *out
 * (allocated) and *count. */
static pl_status meta_floats(const char *path, json_t *meta, const char *key, float **out,
                             int *count, pl_error *err)
{
    const char *s = json_string_value(json_object_get(meta, key));
    json_t *a = json_loads(s, 0, NULL);
    size_t n = json_is_array(a) ? json_array_size(a) : 0;
    pl_status rc = PL_OK;
    *out = NULL;
    if (n == 0 || n > 65535)
        rc = pl_fail(err, PL_ERR_CORRUPT, "%s: metadata %s is \"%.40s\", expected a JSON array "
                     "of 1 to 65535 numbers", path, key, s);
    else if (*count && (int)n != *count)
        rc = pl_fail(err, PL_ERR_MISMATCH, "%s: metadata %s has %zu numbers, normalize_mean %d",
                     path, key, n, *count);
    else if (!(*out = malloc(n * sizeof **out)))
        rc = pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate %s", path, key);
    for (size_t i = 0; !rc && i < n; i++) {
        json_t *x = json_array_get(a, i);
        if (!json_is_number(x))
            rc = pl_fail(err, PL_ERR_CORRUPT, "%s: metadata %s: entry %zu is not a number", path,
                         key, i);
        else
            (*out)[i] = (float)json_number_value(x);
    }
    json_decref(a);
    if (rc) {
        free(*out);
        *out = NULL;
    } else {
        *count = (int)n;
    }
    return rc;
}

/* class_names, when there: the text of a JSON array of cfg.classes strings,
 * into m->class_names (allocated; m owns it, also when this fails). */
static pl_status meta_names(const char *path, json_t *meta, pl_model_info *m, pl_error *err)
{
    const char *s = json_string_value(json_object_get(meta, "class_names"));
    if (!s)
        return PL_OK;
    json_t *a = json_loads(s, 0, NULL);
    pl_status rc = PL_OK;
    if (!json_is_array(a) || (int)json_array_size(a) != m->cfg.classes)
        rc = pl_fail(err, PL_ERR_MISMATCH, "%s: metadata class_names is \"%.40s\", expected a "
                     "JSON array of the %d classes' names", path, s, m->cfg.classes);
    else if (!(m->class_names = calloc((size_t)m->cfg.classes, sizeof *m->class_names)))
        rc = pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate the class names", path);
    for (int c = 0; !rc && c < m->cfg.classes; c++) {
        const char *name = json_string_value(json_array_get(a, (size_t)c));
        if (!name)
            rc = pl_fail(err, PL_ERR_CORRUPT, "%s: metadata class_names: entry %d is not a "
                         "string", path, c);
        else if (!(m->class_names[c] = strdup(name)))
            rc = pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate the class names", path);
    }
    json_decref(a);
    return rc;
}

/* What a model of real values records: input_scaling ("pixel/255" images,
 * "none" or "standard" values), normalize_mean and normalize_std (there
 * exactly when "standard"), class_names; then the checks of every model
 * description (modelinfo.c). m owns what it allocates, also on failure. */
static pl_status meta_values(const char *path, json_t *meta, pl_model_info *m, pl_error *err)
{
    static const char *const scalings[] = {"pixel/255", "none", "standard", NULL};
    int scaling;
    pl_status rc = meta_choice(path, meta, "input_scaling", scalings, 0, &scaling, err);
    if (rc)
        return rc;
    m->input = scaling ? PL_INPUT_VALUES : PL_INPUT_IMAGES;
    int has = !!json_object_get(meta, "normalize_mean") + !!json_object_get(meta, "normalize_std");
    if (has != (scaling == 2 ? 2 : 0))
        return pl_fail(err, PL_ERR_MISMATCH, "%s: metadata input_scaling is \"%s\" with%s "
                       "normalize_mean and normalize_std (\"standard\" has both, the others "
                       "neither)", path, scalings[scaling], has == 2 ? "" : has ? " one of" : "out");
    if (scaling == 2 && m->T == 0)
        return pl_fail(err, PL_ERR_MISMATCH, "%s: metadata has a standardisation but no "
                       "time_steps", path);
    if (scaling == 2 && ((rc = meta_floats(path, meta, "normalize_mean", &m->norm_mean,
                                           &m->features, err)) ||
                         (rc = meta_floats(path, meta, "normalize_std", &m->norm_std,
                                           &m->features, err))))
        return rc;
    if ((rc = meta_names(path, meta, m, err)))
        return rc;
    return m->T ? pl_model_shape_check(path, "metadata", m, err) : PL_OK;
}

/* __metadata__: an object of strings; the keys parlstm knows must agree
 * with the tensors and with each other, and describe a model that parlstm
 * can run. Fills m beyond its config (which the tensors gave). */
static pl_status read_metadata(const char *path, json_t *meta, pl_model_info *m, pl_error *err)
{
    static const char *const sequences[] = {"rows", "pixels", NULL};
    const pl_config *cfg = &m->cfg;
    if (!meta)
        return PL_OK;
    if (!json_is_object(meta))
        return pl_fail(err, PL_ERR_CORRUPT, "%s: __metadata__ is not a JSON object", path);
    const char *key;
    json_t *v;
    json_object_foreach(meta, key, v) {
        if (!json_is_string(v))
            return pl_fail(err, PL_ERR_CORRUPT, "%s: metadata '%s' is not a string", path, key);
    }
    long x;
    int seq;
    pl_status rc;
    if ((rc = meta_word(path, meta, "gate_order", "i,f,g,o", err)) ||
        (rc = meta_choice(path, meta, "sequence", sequences, PL_SEQ_ROWS, &seq, err)) ||
        (rc = meta_int(path, meta, "width", 1, 65535, cfg->input, &x, err)) ||
        (rc = meta_int(path, meta, "hidden", 1, 8192, cfg->hidden, &x, err)) ||
        (rc = meta_int(path, meta, "layers", 1, PL_MAX_LAYERS, cfg->layers, &x, err)) ||
        (rc = meta_int(path, meta, "classes", 2, 256, cfg->classes, &x, err)) ||
        (rc = meta_permutation(path, meta, m, err)) ||
        (rc = meta_dropout(path, meta, &m->dropout, err)))
        return rc;
    m->sequence = (pl_sequence)seq;
    /* the shape is checked once, with the input's kind (meta_values), before
     * the pixel order is read over it */
    if ((rc = meta_shape(path, meta, m, err)) || (rc = meta_values(path, meta, m, err)))
        return rc;
    return meta_pixel_order(path, meta, m, err);
}

static st_entry *find_entry(st_entry *e, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(e[i].name, name))
            return &e[i];
    return NULL;
}

/* The model's config from the shapes of input.weight (H, D), output.weight
 * (C, H) and how many layers lstm.weight_ih_l0, _l1, ... there are. */
static pl_status infer_config(const char *path, st_entry *e, int n, pl_config *cfg,
                              pl_error *err)
{
    static const char *const need[] = {"input.weight", "output.weight"};
    const st_entry *w[2];
    for (int i = 0; i < 2; i++) {
        if (!(w[i] = find_entry(e, n, need[i])))
            return pl_fail(err, PL_ERR_MISMATCH, "%s: missing tensor '%s'", path, need[i]);
        if (w[i]->ndim != 2)
            return pl_fail(err, PL_ERR_DIMS, "%s: tensor '%s' has %d dimensions, expected 2",
                           path, need[i], w[i]->ndim);
    }
    int L = 0;
    char name[32];
    for (; L <= PL_MAX_LAYERS; L++) {
        snprintf(name, sizeof name, "lstm.weight_ih_l%d", L);
        if (!find_entry(e, n, name))
            break;
    }
    if (L == 0)
        return pl_fail(err, PL_ERR_MISMATCH, "%s: missing tensor 'lstm.weight_ih_l0'", path);
    pl_config c = {
        .input = w[0]->shape[1] > 65536 ? -1 : (int)w[0]->shape[1],
        .hidden = w[0]->shape[0] > 65536 ? -1 : (int)w[0]->shape[0],
        .classes = w[1]->shape[0] > 65536 ? -1 : (int)w[1]->shape[0],
        .layers = L,
    };
    if (bad_config(path, "the tensors describe no parlstm model", &c, PL_ERR_DIMS, err))
        return PL_ERR_DIMS;
    *cfg = c;
    return PL_OK;
}

/* Every expected tensor present with dtype F32, its shape and its byte
 * count; nothing else in the file. */
static pl_status match_tensors(const char *path, st_entry *e, int n, const pl_config *cfg,
                               const st_tensor *t, int nt, pl_error *err)
{
    for (int i = 0; i < nt; i++) {
        st_entry *f = find_entry(e, n, t[i].name);
        if (!f)
            return pl_fail(err, PL_ERR_MISMATCH, "%s: missing tensor '%s'", path, t[i].name);
        f->used = 1;
        if (strcmp(f->dtype, "F32") != 0)
            return pl_fail(err, PL_ERR_MISMATCH, "%s: tensor '%s' has dtype %s, expected F32",
                           path, t[i].name, f->dtype);
        int same = f->ndim == t[i].ndim;
        for (int k = 0; same && k < f->ndim; k++)
            same = f->shape[k] == t[i].shape[k];
        if (!same) {
            char got[160], want[64];
            format_shape(got, sizeof got, f->shape, f->ndim);
            format_shape(want, sizeof want, t[i].shape, t[i].ndim);
            return pl_fail(err, PL_ERR_DIMS, "%s: tensor '%s' has shape %s, expected %s", path,
                           t[i].name, got, want);
        }
        if (f->end - f->begin != 4 * numel(&t[i]))
            return pl_fail(err, PL_ERR_MISMATCH,
                           "%s: tensor '%s': data_offsets [%zu, %zu] hold %zu bytes, its shape "
                           "needs %zu",
                           path, t[i].name, f->begin, f->end, f->end - f->begin, 4 * numel(&t[i]));
    }
    for (int i = 0; i < n; i++)
        if (!e[i].used)
            return pl_fail(err, PL_ERR_MISMATCH,
                           "%s: unexpected tensor '%s' (a model of %d LSTM layer%s has %d "
                           "tensors: input.*, lstm.*_l0%s, output.*)",
                           path, e[i].name, cfg->layers, cfg->layers > 1 ? "s" : "", nt,
                           cfg->layers > 1 ? " ..." : "");
    return PL_OK;
}

static int by_begin(const void *a, const void *b)
{
    const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : x->end < y->end ? -1 : x->end > y->end;
}

/* The tensors cover the data buffer exactly: no overlap, no hole, nothing
 * after the last. */
static pl_status check_layout(const char *path, st_entry *e, int n, size_t data_len,
                              pl_error *err)
{
    st_entry *order[ST_MAX_TENSORS];
    for (int i = 0; i < n; i++)
        order[i] = &e[i];
    qsort(order, (size_t)n, sizeof *order, by_begin);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        if (order[i]->begin < at)
            return pl_fail(err, PL_ERR_CORRUPT,
                           "%s: tensors '%s' [%zu, %zu] and '%s' [%zu, %zu] overlap", path,
                           order[i - 1]->name, order[i - 1]->begin, order[i - 1]->end,
                           order[i]->name, order[i]->begin, order[i]->end);
        if (order[i]->begin > at)
            return pl_fail(err, PL_ERR_CORRUPT,
                           "%s: data bytes [%zu, %zu) belong to no tensor (before '%s')", path, at,
                           order[i]->begin, order[i]->name);
        at = order[i]->end;
    }
    if (at != data_len)
        return pl_fail(err, PL_ERR_TRAILING,
                       "%s: %zu data bytes after the last tensor (which ends at %zu of %zu)",
                       path, data_len - at, at, data_len);
    return PL_OK;
}

/* Copies the tensors' floats into params (zeroed), transposing matrices
 * and adding bias_hh into the LSTM bias; refuses NaN and infinity. */
static pl_status fill_params(const char *path, const st_entry *e, int n, const st_tensor *t,
                             int nt, const unsigned char *data, float *params, pl_error *err)
{
    for (int i = 0; i < nt; i++) {
        const st_entry *f = find_entry((st_entry *)e, n, t[i].name);
        const unsigned char *src = data + f->begin;
        float *dst = params + t[i].offset;
        size_t r = t[i].shape[0], c = t[i].shape[1];
        for (size_t k = 0; k < numel(&t[i]); k++) {
            float x;
            memcpy(&x, src + 4 * k, 4);
            if (!isfinite(x))
                return nonfinite_error(err, path, "tensor", &t[i], x, k);
            if (t[i].kind == ST_TRANSPOSE) {
                dst[(k % c) * r + k / c] = x;
            } else if (t[i].kind == ST_COPY) {
                dst[k] = x;
            } else if (x != 0.0f) { /* adding a zero would turn -0.0 into +0.0 */
                dst[k] += x;
                if (!isfinite(dst[k]))
                    return pl_fail(err, PL_ERR_NONFINITE,
                                   "%s: the sum of '%s' and the input bias overflows at [%zu]",
                                   path, t[i].name, k);
            }
        }
    }
    return PL_OK;
}

/* PyTorch LSTMs that parlstm cannot run, named before their shapes would
 * fail with a less helpful message. */
static pl_status refuse_unrepresentable(const char *path, const st_entry *e, int n,
                                        pl_error *err)
{
    for (int i = 0; i < n; i++) {
        size_t len = strlen(e[i].name);
        if (!strncmp(e[i].name, "lstm.", 5) && len > 8 && !strcmp(e[i].name + len - 8, "_reverse"))
            return pl_fail(err, PL_ERR_MISMATCH, "%s: tensor '%s' belongs to a bidirectional "
                           "LSTM; parlstm's LSTM reads the sequence in one direction", path,
                           e[i].name);
        if (!strncmp(e[i].name, "lstm.weight_hr_l", 16))
            return pl_fail(err, PL_ERR_MISMATCH, "%s: tensor '%s' belongs to an LSTM with "
                           "projections (proj_size > 0); parlstm's LSTM has none", path,
                           e[i].name);
    }
    return PL_OK;
}

/* The header of the file in buf (len bytes, at least 8): its length
 * checked against the file, then parsed into *root (a JSON object). */
static pl_status parse_header(const char *path, const unsigned char *buf, size_t len,
                              json_t **root, pl_error *err)
{
    uint64_t hlen;
    memcpy(&hlen, buf, 8);
    if (hlen < 2)
        return pl_fail(err, PL_ERR_CORRUPT,
                       "%s: header length %llu is too short for a JSON object (not a "
                       "safetensors file?)",
                       path, (unsigned long long)hlen);
    if (hlen > ST_MAX_HEADER)
        return pl_fail(err, PL_ERR_TOO_LARGE,
                       "%s: header length %llu is over the limit of %u bytes (not a "
                       "safetensors file?)",
                       path, (unsigned long long)hlen, ST_MAX_HEADER);
    if (hlen > len - 8)
        return pl_fail(err, PL_ERR_TRUNCATED,
                       "%s: header length %llu goes beyond the end of the file (%zu bytes)",
                       path, (unsigned long long)hlen, len);
    json_error_t jerr;
    *root = json_loadb((const char *)buf + 8, (size_t)hlen,
                       JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!*root)
        return pl_fail(err, PL_ERR_CORRUPT, "%s: the header is not valid JSON: %s (at byte %d)",
                       path, jerr.text, jerr.position);
    if (!json_is_object(*root))
        return pl_fail(err, PL_ERR_CORRUPT, "%s: the header is JSON but not an object", path);
    return PL_OK;
}

/* The header's tensor entries (every key but __metadata__) into e[0, *n),
 * each checked against the data_len bytes of data. */
static pl_status parse_entries(const char *path, json_t *root, size_t data_len, st_entry *e,
                               int *n, pl_error *err)
{
    const char *key;
    json_t *v;
    pl_status rc = PL_OK;
    *n = 0;
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "__metadata__"))
            continue;
        if (*n == ST_MAX_TENSORS)
            return pl_fail(err, PL_ERR_MISMATCH,
                           "%s: more than %d tensors; a parlstm model has at most %d", path,
                           ST_MAX_TENSORS, ST_MAX_TENSORS);
        if ((rc = parse_entry(path, key, v, &e[(*n)++], data_len, err)))
            return rc;
    }
    return PL_OK;
}

pl_status pl_safetensors_load(const char *path, pl_model_info *m, float **params, pl_error *err)
{
    *params = NULL;
    unsigned char *buf;
    size_t len;
    pl_status rc = pl_read_file(path, "safetensors", 8, ST_MAX_FILE, &buf, &len, err);
    if (rc)
        return rc;
    json_t *root = NULL;
    float *p = NULL;
    st_entry e[ST_MAX_TENSORS];
    int n = 0;
    pl_model_info got;
    memset(&got, 0, sizeof got);
    if ((rc = parse_header(path, buf, len, &root, err)))
        goto out;
    uint64_t hlen;
    memcpy(&hlen, buf, 8);
    const size_t data_len = len - 8 - (size_t)hlen;
    const unsigned char *data = buf + 8 + hlen;
    if ((rc = parse_entries(path, root, data_len, e, &n, err)))
        goto out;
    st_tensor t[ST_MAX_TENSORS];
    if ((rc = refuse_unrepresentable(path, e, n, err)) ||
        (rc = infer_config(path, e, n, &got.cfg, err)))
        goto out;
    int nt = tensor_table(&got.cfg, t);
    if ((rc = match_tensors(path, e, n, &got.cfg, t, nt, err)) ||
        (rc = check_layout(path, e, n, data_len, err)) ||
        (rc = read_metadata(path, json_object_get(root, "__metadata__"), &got, err)))
        goto out;
    if (!(p = pl_alloc_floats(pl_param_count(&got.cfg)))) {
        rc = pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate %zu parameters", path,
                     pl_param_count(&got.cfg));
        goto out;
    }
    if ((rc = fill_params(path, e, n, t, nt, data, p, err)))
        goto out;
    *m = got;
    *params = p;
    p = NULL;
out:
    if (rc)
        pl_model_info_free(&got);
    pl_free(p);
    json_decref(root);
    free(buf);
    return rc;
}
