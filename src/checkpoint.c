/* Checkpoints: the whole training state, so that a resumed run ends
 * bitwise identical to one left alone.
 *
 * Layout (little-endian), version 3:
 *   "PLSTMCKP"  magic                          8
 *   version     u32                            4
 *   the run     see put_meta                   META_BYTES
 *   n_params    u64                            8
 *   params, m, v  3 x n_params f32
 *   crc32       u32 over every byte before it  4
 * Written through pl_write_atomic: a crash leaves the old or the new file.
 * With several ranks, rank 0 writes and reads the file: the Adam moments,
 * sharded over the ranks, are gathered into it, and a file read is sent to
 * every rank; the file is the same whatever the ranks, so a run resumes
 * with any number of them.
 *
 * Versions: the number changes whenever a field is added, dropped or
 * changes meaning, and the reader names the versions it reads.
 *   1  the first layout.
 *   2  the 32 bytes after data_crc, where version 1 kept the shuffling
 *      generator of the current epoch, are reserved (zero). No reader ever
 *      used them: the epoch order is a function of (seed, epoch) alone
 *      (pl_epoch_order). Version 1 files are read, those bytes ignored. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "internal.h"

static const char CKPT_MAGIC[8] = {'P', 'L', 'S', 'T', 'M', 'C', 'K', 'P'};
#define CKPT_VERSION 3u     /* written */
#define CKPT_OLDEST 1u      /* the oldest version read */
#define RESERVED_RNG 32     /* version 1's generator state, now reserved */
#define META_BYTES 192
#define HEAD (8 + 4 + META_BYTES + 8)

static void put_meta(pl_wcursor *c, const pl_ckpt_meta *m)
{
    const pl_train_opts *o = &m->opts;
    unsigned char *start = c->p;
    pl_put_u32(c, (uint32_t)m->cfg.input);
    pl_put_u32(c, (uint32_t)m->cfg.hidden);
    pl_put_u32(c, (uint32_t)m->cfg.classes);
    pl_put_u32(c, (uint32_t)m->T);
    pl_put_u32(c, (uint32_t)o->batch);
    pl_put_u32(c, (uint32_t)o->epochs);
    pl_put_u64(c, (uint64_t)o->steps);
    pl_put_f32(c, o->lr);
    pl_put_f32(c, o->beta1);
    pl_put_f32(c, o->beta2);
    pl_put_f32(c, o->eps);
    pl_put_f32(c, o->clip);
    pl_put_u32(c, (uint32_t)o->schedule);
    pl_put_u32(c, (uint32_t)o->init);
    pl_put_u64(c, o->seed);
    pl_put_u32(c, (uint32_t)o->workers);
    pl_put_u32(c, (uint32_t)o->threads);
    pl_put_u32(c, (uint32_t)o->deterministic);
    pl_put_u32(c, (uint32_t)o->gemm);
    pl_put_u64(c, (uint64_t)m->step);
    pl_put_u64(c, (uint64_t)m->total);
    pl_put_u64(c, (uint64_t)m->val);
    pl_put_u64(c, m->n_train);
    pl_put_u32(c, m->data_crc);
    memset(c->p, 0, RESERVED_RNG);
    c->p += RESERVED_RNG;
    pl_put_u64(c, (uint64_t)m->adam_steps);
    pl_put_u32(c, (uint32_t)m->cfg.layers);
    pl_put_f32(c, o->dropout);
    pl_put_u32(c, (uint32_t)m->sequence);
    pl_put_u32(c, (uint32_t)m->permuted);
    pl_put_u64(c, m->permute_seed);
    /* reserved, zero */
    while (c->p < start + META_BYTES)
        *c->p++ = 0;
}

static void get_meta(pl_rcursor *c, uint32_t version, pl_ckpt_meta *m)
{
    pl_train_opts *o = &m->opts;
    const unsigned char *start = c->p;
    pl_train_opts_default(o);
    m->cfg.input = (int)pl_get_u32(c);
    m->cfg.hidden = (int)pl_get_u32(c);
    m->cfg.classes = (int)pl_get_u32(c);
    m->cfg.layers = 1;
    m->T = (int)pl_get_u32(c);
    o->batch = (int)pl_get_u32(c);
    o->epochs = (int)pl_get_u32(c);
    o->steps = (long)pl_get_u64(c);
    o->lr = pl_get_f32(c);
    o->beta1 = pl_get_f32(c);
    o->beta2 = pl_get_f32(c);
    o->eps = pl_get_f32(c);
    o->clip = pl_get_f32(c);
    o->schedule = (pl_schedule)pl_get_u32(c);
    o->init = (pl_init)pl_get_u32(c);
    o->seed = pl_get_u64(c);
    o->workers = (int)pl_get_u32(c);
    o->threads = (int)pl_get_u32(c);
    o->deterministic = (int)pl_get_u32(c);
    o->gemm = (pl_gemm_backend)pl_get_u32(c);
    m->step = (long)pl_get_u64(c);
    m->total = (long)pl_get_u64(c);
    m->val = (long)pl_get_u64(c);
    m->n_train = pl_get_u64(c);
    m->data_crc = pl_get_u32(c);
    c->p += RESERVED_RNG;
    m->adam_steps = (long)pl_get_u64(c);
    m->sequence = PL_SEQ_ROWS;
    m->permuted = 0;
    m->permute_seed = 0;
    if (version >= 3) {
        m->cfg.layers = (int)pl_get_u32(c);
        o->dropout = pl_get_f32(c);
        m->sequence = (pl_sequence)pl_get_u32(c);
        m->permuted = (int)pl_get_u32(c);
        m->permute_seed = pl_get_u64(c);
    }
    c->p = start + META_BYTES;
    o->hidden = m->cfg.hidden;
    o->classes = m->cfg.classes;
}

/* The run's settings a resumed run relies on, each within its range. */
static pl_status check_run(const char *path, const pl_ckpt_meta *m, pl_error *err)
{
    const pl_train_opts *o = &m->opts;
    char why[128];
    if (m->T < 1 || m->T > 65535)
        snprintf(why, sizeof why, "%d time steps (expected 1 to 65535)", m->T);
    else if (o->batch < 1)
        snprintf(why, sizeof why, "batch %d", o->batch);
    else if (m->step < 0 || m->step > m->total)
        snprintf(why, sizeof why, "step %ld of %ld", m->step, m->total);
    else if (m->adam_steps < 0 || m->adam_steps > m->step)
        snprintf(why, sizeof why, "%ld Adam steps after %ld steps", m->adam_steps, m->step);
    else if (o->workers < 1 || o->threads < 1)
        snprintf(why, sizeof why, "%d workers x %d threads", o->workers, o->threads);
    else if (!(o->dropout >= 0 && o->dropout < 1))
        snprintf(why, sizeof why, "dropout %g (expected 0 to below 1)", (double)o->dropout);
    else if ((unsigned)m->sequence > PL_SEQ_PIXELS || (unsigned)m->permuted > 1)
        snprintf(why, sizeof why, "sequence %u, permuted %u (unknown values)",
                 (unsigned)m->sequence, (unsigned)m->permuted);
    else if ((unsigned)o->schedule > PL_SCHED_CONSTANT || (unsigned)o->init > PL_INIT_TUTORIAL ||
             (unsigned)o->gemm > PL_GEMM_LAST)
        snprintf(why, sizeof why, "schedule %u, init %u, GEMM %u (unknown values)",
                 (unsigned)o->schedule, (unsigned)o->init, (unsigned)o->gemm);
    else
        return PL_OK;
    return pl_fail(err, PL_ERR_MISMATCH, "%s: inconsistent run settings in the checkpoint: %s",
                   path, why);
}

uint32_t pl_dataset_crc(const pl_dataset *ds)
{
    uLong crc = crc32_z(0L, ds->images, ds->n * (size_t)ds->T * (size_t)ds->D);
    return (uint32_t)crc32_z(crc, ds->labels, ds->n);
}

pl_status pl_checkpoint_save(const char *path, pl_trainer *tr,
                             const pl_ckpt_meta *meta, pl_write_guard *guard,
                             pl_error *err)
{
    size_t n = pl_param_count(pl_trainer_config(tr));
    size_t len = HEAD + 12 * n + 4;
    const int root = pl_dist_rank() == 0;
    unsigned char *buf = root ? malloc(len) : NULL;
    pl_error e = {0};
    /* every rank takes part in the gather, or none does */
    if (pl_dist_agree(root && !buf, NULL)) {
        free(buf);
        return pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, len);
    }
    pl_trainer_gather_moments(tr, root ? (float *)(buf + HEAD + 4 * n) : NULL,
                              root ? (float *)(buf + HEAD + 8 * n) : NULL);
    if (root) {
        pl_wcursor c = {buf};
        pl_put_bytes(&c, CKPT_MAGIC, 8);
        pl_put_u32(&c, CKPT_VERSION);
        pl_ckpt_meta m = *meta;
        m.adam_steps = pl_trainer_adam_steps(tr);
        put_meta(&c, &m);
        pl_put_u64(&c, n);
        pl_put_bytes(&c, pl_trainer_params(tr), 4 * n);
        c.p += 8 * n; /* the moments, gathered in place */
        pl_put_u32(&c, (uint32_t)crc32_z(0L, buf, len - 4));
        pl_write_atomic(path, buf, len, guard, &e);
        free(buf);
    }
    /* rank 0's outcome is every rank's */
    pl_dist_bcast(&e, sizeof e);
    if (err)
        *err = e;
    return e.code;
}

static pl_status load_file(const char *path, pl_ckpt_meta *meta, float **state,
                           pl_error *err)
{
    *state = NULL;
    unsigned char *buf;
    size_t len;
    pl_status rc = pl_read_file(path, "checkpoint", HEAD + 4, (size_t)1 << 36, &buf, &len, err);
    if (rc)
        return rc;
    pl_rcursor c = {buf + 8};
    if (memcmp(buf, CKPT_MAGIC, 8) != 0) {
        rc = pl_fail(err, PL_ERR_MAGIC,
                     "%s: bad magic number: expected \"PLSTMCKP\" (a parlstm checkpoint)%s",
                     path, memcmp(buf, "PLSTMMDL", 8) == 0 ? "; this is a model file" : "");
        goto out;
    }
    uint32_t version = pl_get_u32(&c);
    if (version < CKPT_OLDEST || version > CKPT_VERSION) {
        rc = pl_fail(err, PL_ERR_VERSION,
                     "%s: checkpoint format version %u, this build reads versions %u to %u",
                     path, version, CKPT_OLDEST, CKPT_VERSION);
        goto out;
    }
    get_meta(&c, version, meta);
    uint64_t n = pl_get_u64(&c);
    if ((rc = pl_check_payload(path, "checkpoint", &meta->cfg, n, HEAD, 3, buf, len, err)))
        goto out;
    if ((rc = check_run(path, meta, err)))
        goto out;
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

pl_status pl_checkpoint_load(const char *path, pl_ckpt_meta *meta, float **state,
                             pl_error *err)
{
    if (pl_dist_ranks() == 1)
        return load_file(path, meta, state, err);
    /* rank 0 reads; its outcome, the run and the state go to every rank */
    pl_error e = {0};
    *state = NULL;
    if (pl_dist_rank() == 0)
        load_file(path, meta, state, &e);
    pl_dist_bcast(&e, sizeof e);
    if (e.code == PL_OK) {
        pl_dist_bcast(meta, sizeof *meta);
        size_t n = pl_param_count(&meta->cfg);
        if (pl_dist_rank() != 0)
            *state = pl_alloc_floats(3 * n);
        if (pl_dist_agree(*state == NULL, NULL))
            pl_fail(&e, PL_ERR_NOMEM, "%s: cannot allocate the state on every rank", path);
        else
            pl_dist_bcast(*state, 12 * n);
    }
    if (e.code != PL_OK) {
        pl_free(*state);
        *state = NULL;
    }
    if (err)
        *err = e;
    return e.code;
}
