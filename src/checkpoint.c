/* Checkpoints: the whole training state, so that a resumed run ends
 * bitwise identical to one left alone.
 *
 * Layout (little-endian), version 1:
 *   "PLSTMCKP"  magic                          8
 *   version     u32                            4
 *   the run     see put_meta                   META_BYTES
 *   n_params    u64                            8
 *   params, m, v  3 x n_params f32
 *   crc32       u32 over every byte before it  4
 * Written through pl_write_atomic: a crash leaves the old or the new file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "internal.h"

static const char CKPT_MAGIC[8] = {'P', 'L', 'S', 'T', 'M', 'C', 'K', 'P'};
#define CKPT_VERSION 1u
#define META_BYTES 192
#define HEAD (8 + 4 + META_BYTES + 8)

typedef struct {
    unsigned char *p;
} cursor;

static void put_u32(cursor *c, uint32_t v) { memcpy(c->p, &v, 4); c->p += 4; }
static void put_u64(cursor *c, uint64_t v) { memcpy(c->p, &v, 8); c->p += 8; }
static void put_f32(cursor *c, float v) { memcpy(c->p, &v, 4); c->p += 4; }
static uint32_t get_u32(cursor *c) { uint32_t v; memcpy(&v, c->p, 4); c->p += 4; return v; }
static uint64_t get_u64(cursor *c) { uint64_t v; memcpy(&v, c->p, 8); c->p += 8; return v; }
static float get_f32(cursor *c) { float v; memcpy(&v, c->p, 4); c->p += 4; return v; }

static void put_meta(cursor *c, const pl_ckpt_meta *m)
{
    const pl_train_opts *o = &m->opts;
    unsigned char *start = c->p;
    put_u32(c, (uint32_t)m->cfg.input);
    put_u32(c, (uint32_t)m->cfg.hidden);
    put_u32(c, (uint32_t)m->cfg.classes);
    put_u32(c, (uint32_t)m->T);
    put_u32(c, (uint32_t)o->batch);
    put_u32(c, (uint32_t)o->epochs);
    put_u64(c, (uint64_t)o->steps);
    put_f32(c, o->lr);
    put_f32(c, o->beta1);
    put_f32(c, o->beta2);
    put_f32(c, o->eps);
    put_f32(c, o->clip);
    put_u32(c, (uint32_t)o->schedule);
    put_u32(c, (uint32_t)o->init);
    put_u64(c, o->seed);
    put_u32(c, (uint32_t)o->workers);
    put_u32(c, (uint32_t)o->threads);
    put_u32(c, (uint32_t)o->deterministic);
    put_u32(c, (uint32_t)o->gemm);
    put_u64(c, (uint64_t)m->step);
    put_u64(c, (uint64_t)m->total);
    put_u64(c, (uint64_t)m->val);
    put_u64(c, m->n_train);
    put_u32(c, m->data_crc);
    for (int i = 0; i < 4; i++)
        put_u64(c, m->rng[i]);
    put_u64(c, (uint64_t)m->adam_steps);
    /* reserved, zero */
    while (c->p < start + META_BYTES)
        *c->p++ = 0;
}

static void get_meta(cursor *c, pl_ckpt_meta *m)
{
    pl_train_opts *o = &m->opts;
    unsigned char *start = c->p;
    pl_train_opts_default(o);
    m->cfg.input = (int)get_u32(c);
    m->cfg.hidden = (int)get_u32(c);
    m->cfg.classes = (int)get_u32(c);
    m->cfg.layers = 1;
    m->T = (int)get_u32(c);
    o->batch = (int)get_u32(c);
    o->epochs = (int)get_u32(c);
    o->steps = (long)get_u64(c);
    o->lr = get_f32(c);
    o->beta1 = get_f32(c);
    o->beta2 = get_f32(c);
    o->eps = get_f32(c);
    o->clip = get_f32(c);
    o->schedule = (pl_schedule)get_u32(c);
    o->init = (pl_init)get_u32(c);
    o->seed = get_u64(c);
    o->workers = (int)get_u32(c);
    o->threads = (int)get_u32(c);
    o->deterministic = (int)get_u32(c);
    o->gemm = (pl_gemm_backend)get_u32(c);
    m->step = (long)get_u64(c);
    m->total = (long)get_u64(c);
    m->val = (long)get_u64(c);
    m->n_train = get_u64(c);
    m->data_crc = get_u32(c);
    for (int i = 0; i < 4; i++)
        m->rng[i] = get_u64(c);
    m->adam_steps = (long)get_u64(c);
    c->p = start + META_BYTES;
    o->hidden = m->cfg.hidden;
    o->classes = m->cfg.classes;
}

uint32_t pl_dataset_crc(const pl_dataset *ds)
{
    uLong crc = crc32_z(0L, ds->images, ds->n * (size_t)ds->T * (size_t)ds->D);
    return (uint32_t)crc32_z(crc, ds->labels, ds->n);
}

pl_status pl_checkpoint_save(const char *path, pl_trainer *tr,
                             const pl_ckpt_meta *meta, pl_error *err)
{
    size_t n = pl_param_count(pl_trainer_config(tr));
    size_t len = HEAD + 12 * n + 4;
    unsigned char *buf = malloc(len);
    if (!buf)
        return pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, len);
    cursor c = {buf};
    memcpy(c.p, CKPT_MAGIC, 8);
    c.p += 8;
    put_u32(&c, CKPT_VERSION);
    pl_ckpt_meta m = *meta;
    m.adam_steps = pl_trainer_adam_steps(tr);
    put_meta(&c, &m);
    put_u64(&c, n);
    memcpy(c.p, pl_trainer_params(tr), 4 * n);
    memcpy(c.p + 4 * n, pl_trainer_moment1(tr), 4 * n);
    memcpy(c.p + 8 * n, pl_trainer_moment2(tr), 4 * n);
    c.p += 12 * n;
    put_u32(&c, (uint32_t)crc32_z(0L, buf, len - 4));
    pl_status rc = pl_write_atomic(path, buf, len, err);
    free(buf);
    return rc;
}

pl_status pl_checkpoint_load(const char *path, pl_ckpt_meta *meta, float **state,
                             pl_error *err)
{
    *state = NULL;
    unsigned char *buf;
    size_t len;
    pl_status rc = pl_read_file(path, "checkpoint", HEAD + 4, (size_t)1 << 36, &buf, &len, err);
    if (rc)
        return rc;
    cursor c = {buf};
    if (memcmp(buf, CKPT_MAGIC, 8) != 0) {
        rc = pl_fail(err, PL_ERR_MAGIC,
                     "%s: bad magic number: expected \"PLSTMCKP\" (a parlstm checkpoint)%s",
                     path, memcmp(buf, "PLSTMMDL", 8) == 0 ? "; this is a model file" : "");
        goto out;
    }
    c.p += 8;
    uint32_t version = get_u32(&c);
    if (version != CKPT_VERSION) {
        rc = pl_fail(err, PL_ERR_VERSION,
                     "%s: checkpoint format version %u, this build reads version %u", path,
                     version, CKPT_VERSION);
        goto out;
    }
    get_meta(&c, meta);
    uint64_t n = get_u64(&c);
    if ((rc = pl_check_payload(path, "checkpoint", &meta->cfg, n, HEAD, 3, buf, len, err)))
        goto out;
    if (meta->T < 1 || meta->opts.batch < 1 || meta->step < 0 || meta->step > meta->total ||
        meta->opts.workers < 1 || meta->opts.threads < 1 || meta->opts.schedule > 1 ||
        meta->opts.init > 1 || meta->opts.gemm > PL_GEMM_AVX512 || meta->adam_steps < 0 ||
        meta->adam_steps > meta->step) {
        rc = pl_fail(err, PL_ERR_MISMATCH, "%s: inconsistent run settings in the checkpoint",
                     path);
        goto out;
    }
    float *s = pl_alloc_floats(3 * (size_t)n);
    if (!s) {
        rc = pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate the state", path);
        goto out;
    }
    memcpy(s, buf + HEAD, 12 * (size_t)n);
    *state = s;
out:
    free(buf);
    return rc;
}
