/* Checkpoints: the whole training state, so that a resumed run ends
 * bitwise identical to one left alone.
 *
 * Layout (little-endian), version 7:
 *   "PLSTMCKP"  magic                          8
 *   version     u32                            4
 *   the run     the fields of META, then zeros meta_bytes(version): 256
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
 *      (pl_epoch_order). Version 1 files are read, those bytes ignored.
 *   3  adds layers, dropout and how the images are read (sequence mode,
 *      permuted, permute_seed); older files read as one layer, no dropout,
 *      rows in order.
 *   4  the run's block grows from 192 to 256 bytes and adds what shapes the
 *      learning rate and the update (warm-up steps, the rate's scaling for
 *      the batch, weight decay); older files read as none of them, which
 *      is how they ran.
 *   5  adds normalize (0 none, 1 standard: pl_ckpt_meta.normalize); older
 *      files read as none, which is how they ran. The statistics
 *      themselves are not stored: a resumed run recomputes them from the
 *      same training split (pl_dataset_norm_stats is a function of the
 *      split's values alone, computed in one order), and data_crc, taken
 *      over the standardised training values, confirms that they came out
 *      bit for bit the same.
 *   6  adds precision (0 fp32, 1 bf16: the matrix products' operands);
 *      older files read as fp32, which is how they ran.
 *   7  adds optimizer (0 Adam, 1 RMSprop; the m and v arrays are RMSprop's
 *      unused m and its v); older files read as Adam, which is how they
 *      ran. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "internal.h"

static const char CKPT_MAGIC[8] = {'P', 'L', 'S', 'T', 'M', 'C', 'K', 'P'};
#define CKPT_VERSION 7u     /* written */
#define CKPT_OLDEST 1u      /* the oldest version read */
#define RESERVED_RNG 32     /* version 1's generator state, now reserved */

/* The run's block: 192 bytes up to version 3, 256 from version 4; the
 * header is magic, version, that block and n_params. */
static size_t meta_bytes(uint32_t version) { return version >= 4 ? 256 : 192; }
static size_t head_bytes(uint32_t version) { return 8 + 4 + meta_bytes(version) + 8; }

/* The run's fields, in file order: where each lives in pl_ckpt_meta, its
 * C type, and the first version that has it. put_meta and get_meta walk
 * this one table; a field added at the end with version CKPT_VERSION + 1
 * is read as its default (pl_train_opts_default, or RUN_DEFAULTS) from
 * older files. */
typedef enum {
    F_INT,   /* int or an enum: u32 in the file */
    F_U32,   /* uint32_t: u32 */
    F_LONG,  /* long: u64 */
    F_U64,   /* uint64_t: u64 */
    F_F32,   /* float: f32 */
    F_GAP    /* RESERVED_RNG zero bytes: version 1's generator state */
} field_kind;

#define AT(member) offsetof(pl_ckpt_meta, member)
static const struct {
    size_t at;
    field_kind kind;
    uint32_t since;
} META[] = {
    {AT(cfg.input), F_INT, 1},        {AT(cfg.hidden), F_INT, 1},
    {AT(cfg.classes), F_INT, 1},      {AT(T), F_INT, 1},
    {AT(opts.batch), F_INT, 1},       {AT(opts.epochs), F_INT, 1},
    {AT(opts.steps), F_LONG, 1},      {AT(opts.lr), F_F32, 1},
    {AT(opts.beta1), F_F32, 1},       {AT(opts.beta2), F_F32, 1},
    {AT(opts.eps), F_F32, 1},         {AT(opts.clip), F_F32, 1},
    {AT(opts.schedule), F_INT, 1},    {AT(opts.init), F_INT, 1},
    {AT(opts.seed), F_U64, 1},        {AT(opts.workers), F_INT, 1},
    {AT(opts.threads), F_INT, 1},     {AT(opts.deterministic), F_INT, 1},
    {AT(opts.gemm), F_INT, 1},        {AT(step), F_LONG, 1},
    {AT(total), F_LONG, 1},           {AT(val), F_LONG, 1},
    {AT(n_train), F_U64, 1},          {AT(data_crc), F_U32, 1},
    {0, F_GAP, 1},                    {AT(adam_steps), F_LONG, 1},
    {AT(cfg.layers), F_INT, 3},       {AT(opts.dropout), F_F32, 3},
    {AT(sequence), F_INT, 3},         {AT(permuted), F_INT, 3},
    {AT(permute_seed), F_U64, 3},     {AT(opts.warmup), F_LONG, 4},
    {AT(opts.lr_scaling), F_INT, 4},  {AT(opts.weight_decay), F_F32, 4},
    {AT(normalize), F_INT, 5},        {AT(opts.precision), F_INT, 6},
    {AT(opts.optimizer), F_INT, 7},
};
#undef AT
#define NMETA (sizeof META / sizeof *META)
_Static_assert(sizeof(pl_sequence) == sizeof(int) && sizeof(pl_schedule) == sizeof(int) &&
                   sizeof(pl_init) == sizeof(int) && sizeof(pl_gemm_backend) == sizeof(int) &&
                   sizeof(pl_lr_scaling) == sizeof(int) && sizeof(pl_precision) == sizeof(int) &&
                   sizeof(pl_optimizer) == sizeof(int),
               "the enums of the checkpoint are stored as ints");

/* The meta block (this version's meta_bytes, zero after the last field). */
static void put_meta(pl_wcursor *c, const pl_ckpt_meta *m)
{
    unsigned char *start = c->p;
    for (size_t f = 0; f < NMETA; f++) {
        const void *v = (const char *)m + META[f].at;
        switch (META[f].kind) {
        case F_INT: pl_put_u32(c, (uint32_t)*(const int *)v); break;
        case F_U32: pl_put_u32(c, *(const uint32_t *)v); break;
        case F_LONG: pl_put_u64(c, (uint64_t)*(const long *)v); break;
        case F_U64: pl_put_u64(c, *(const uint64_t *)v); break;
        case F_F32: pl_put_f32(c, *(const float *)v); break;
        case F_GAP:
            memset(c->p, 0, RESERVED_RNG);
            c->p += RESERVED_RNG;
            break;
        }
    }
    while (c->p < start + meta_bytes(CKPT_VERSION)) /* reserved, zero */
        *c->p++ = 0;
}

/* The fields a file of this version has; the others keep the defaults:
 * the options' (pl_train_opts_default), one layer read row by row. */
static void get_meta(pl_rcursor *c, uint32_t version, pl_ckpt_meta *m)
{
    const unsigned char *start = c->p;
    memset(m, 0, sizeof *m);
    pl_train_opts_default(&m->opts);
    m->cfg.layers = 1;
    m->sequence = PL_SEQ_ROWS;
    for (size_t f = 0; f < NMETA && META[f].since <= version; f++) {
        void *v = (char *)m + META[f].at;
        switch (META[f].kind) {
        case F_INT: *(int *)v = (int)pl_get_u32(c); break;
        case F_U32: *(uint32_t *)v = pl_get_u32(c); break;
        case F_LONG: *(long *)v = (long)pl_get_u64(c); break;
        case F_U64: *(uint64_t *)v = pl_get_u64(c); break;
        case F_F32: *(float *)v = pl_get_f32(c); break;
        case F_GAP: c->p += RESERVED_RNG; break;
        }
    }
    c->p = start + meta_bytes(version);
    m->opts.hidden = m->cfg.hidden;
    m->opts.classes = m->cfg.classes;
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
    else if ((unsigned)o->precision > PL_PRECISION_BF16)
        snprintf(why, sizeof why, "precision %u (expected 0, fp32, or 1, bf16)",
                 (unsigned)o->precision);
    else if ((unsigned)o->optimizer > PL_OPT_RMSPROP)
        snprintf(why, sizeof why, "optimizer %u (expected 0, Adam, or 1, RMSprop)",
                 (unsigned)o->optimizer);
    else if ((unsigned)m->normalize > 1)
        snprintf(why, sizeof why, "normalize %u (expected 0, none, or 1, standard)",
                 (unsigned)m->normalize);
    else if (o->warmup < 0 || (unsigned)o->lr_scaling > PL_LR_SCALE_SQRT ||
             !(o->weight_decay >= 0 && o->weight_decay <= 1))
        snprintf(why, sizeof why, "warm-up %ld, rate scaling %u, weight decay %g", o->warmup,
                 (unsigned)o->lr_scaling, (double)o->weight_decay);
    else if ((unsigned)o->schedule > PL_SCHED_CONSTANT || (unsigned)o->init > PL_INIT_LAST ||
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
    const size_t cells = ds->n * (size_t)ds->T * (size_t)ds->D;
    uLong crc = ds->values ? crc32_z(0L, (const unsigned char *)ds->values, cells * sizeof(float))
                           : crc32_z(0L, ds->images, cells);
    crc = crc32_z(crc, ds->labels, ds->n);
    if (ds->lengths) /* one length: nothing, as before lengths existed */
        crc = crc32_z(crc, (const unsigned char *)ds->lengths, ds->n * sizeof *ds->lengths);
    return (uint32_t)crc;
}

pl_status pl_checkpoint_save(const char *path, pl_trainer *tr,
                             const pl_ckpt_meta *meta, pl_write_guard *guard,
                             pl_error *err)
{
    size_t n = pl_param_count(pl_trainer_config(tr));
    const size_t head = head_bytes(CKPT_VERSION), len = head + 12 * n + 4;
    const int root = pl_dist_rank() == 0;
    unsigned char *buf = root ? malloc(len) : NULL;
    pl_error e = {0};
    /* every rank takes part in the gather, or none does */
    if (pl_dist_agree(root && !buf, NULL)) {
        free(buf);
        return pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, len);
    }
    pl_trainer_gather_moments(tr, root ? (float *)(buf + head + 4 * n) : NULL,
                              root ? (float *)(buf + head + 8 * n) : NULL);
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
    pl_status rc = pl_read_file(path, "checkpoint", head_bytes(CKPT_OLDEST) + 4, (size_t)1 << 36,
                                &buf, &len, err);
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
    const size_t head = head_bytes(version);
    if (len < head + 4) {
        rc = pl_fail(err, PL_ERR_TRUNCATED, "%s: truncated: %zu bytes, a version %u checkpoint "
                     "has at least %zu", path, len, version, head + 4);
        goto out;
    }
    get_meta(&c, version, meta);
    uint64_t n = pl_get_u64(&c);
    if ((rc = pl_check_payload(path, "checkpoint", &meta->cfg, n, head, 3, buf, len, err)))
        goto out;
    if ((rc = check_run(path, meta, err)))
        goto out;
    float *s = pl_alloc_floats(3 * (size_t)n);
    if (!s) {
        rc = pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate the state", path);
        goto out;
    }
    memcpy(s, buf + head, 12 * (size_t)n);
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
