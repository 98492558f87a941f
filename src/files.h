/* Files: IDX reading, the little-endian fields of the formats, atomic
 * writes, whole-file reads and the checks of a model's description. */
#ifndef PARLSTM_FILES_H
#define PARLSTM_FILES_H

#include "common.h"

/* IDX files */
#define PL_IDX_IMAGES_MAGIC 2051u /* 0x00000803: unsigned byte, 3 dims */
#define PL_IDX_LABELS_MAGIC 2049u /* 0x00000801: unsigned byte, 1 dim */

typedef struct {
    uint32_t magic;  /* PL_IDX_IMAGES_MAGIC or PL_IDX_LABELS_MAGIC */
    size_t n;        /* items */
    int rows, cols;  /* images only: each item is (rows, cols); labels: 1, 1 */
    uint8_t *data;   /* (n, rows, cols) or (n), owned */
} pl_idx;

/* Reads an IDX file of the expected magic through zlib (raw or gzip).
 * When path does not exist and path.gz does, reads that. */
pl_status pl_idx_read(const char *path, uint32_t expect_magic, pl_idx *out,
                      pl_error *err);
void pl_idx_free(pl_idx *idx);

/* ---- little-endian fields of the file formats (models, checkpoints): a
 * cursor that advances over the bytes it puts or gets. The formats are
 * written in the host's order, which must be little-endian. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "parlstm's file formats are little-endian; port the pl_put/pl_get helpers first"
#endif
typedef struct {
    unsigned char *p;
} pl_wcursor;
typedef struct {
    const unsigned char *p;
} pl_rcursor;

static inline void pl_put_bytes(pl_wcursor *c, const void *v, size_t n)
{
    if (n) /* v may be NULL then (no statistics, no names) */
        memcpy(c->p, v, n);
    c->p += n;
}
static inline void pl_put_u32(pl_wcursor *c, uint32_t v) { pl_put_bytes(c, &v, 4); }
static inline void pl_put_u64(pl_wcursor *c, uint64_t v) { pl_put_bytes(c, &v, 8); }
static inline void pl_put_f32(pl_wcursor *c, float v) { pl_put_bytes(c, &v, 4); }
static inline void pl_get_bytes(pl_rcursor *c, void *v, size_t n)
{
    memcpy(v, c->p, n);
    c->p += n;
}
static inline uint32_t pl_get_u32(pl_rcursor *c) { uint32_t v; pl_get_bytes(c, &v, 4); return v; }
static inline uint64_t pl_get_u64(pl_rcursor *c) { uint64_t v; pl_get_bytes(c, &v, 8); return v; }
static inline float pl_get_f32(pl_rcursor *c) { float v; pl_get_bytes(c, &v, 4); return v; }

/* Writes len bytes to path atomically (see pl_write_guard); guard may be
 * NULL. */
pl_status pl_write_atomic(const char *path, const void *data, size_t len,
                          pl_write_guard *guard, pl_error *err);

/* Reads a whole regular file of min_len..max_len bytes into *data (free
 * it); what ("model", "checkpoint") names it in errors. */
pl_status pl_read_file(const char *path, const char *what, size_t min_len, size_t max_len,
                       unsigned char **data, size_t *len, pl_error *err);

/* After a file's magic and version: the config it declares is valid, it
 * holds n parameters, it is exactly head + copies x 4n + 4 bytes long, and
 * the CRC32 in its last 4 bytes matches the rest. */
pl_status pl_check_payload(const char *path, const char *what, const pl_config *cfg,
                           uint64_t n, size_t head, int copies, const unsigned char *buf,
                           size_t len, pl_error *err);

/* A model's description (pl_model_info) beyond its config: the image
 * shape and the sequence mode agree with T and the input width, permuted
 * is 0 or 1, dropout in [0, 1); the input kind known, a standardisation
 * only for values and of cols features (finite, deviations above 0), class
 * names of 1 to PL_MAX_CLASS_NAME bytes. Otherwise err says "PATH: WHAT:
 * why". */
pl_status pl_model_shape_check(const char *path, const char *what, const pl_model_info *m,
                               pl_error *err);
/* The readers' allocation of m's standardisation (features floats each,
 * zeroed; none when 0) and, when names, m->cfg.classes class-name pointers
 * (NULL each); nothing is left allocated when it fails. */
pl_status pl_model_extras_alloc(const char *path, pl_model_info *m, int features, int names,
                                pl_error *err);
/* rows = cols = 0 in rows mode means the shape T x D: fills it in. */
void pl_model_info_complete(pl_model_info *m);

#endif
