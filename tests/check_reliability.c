/* Trustworthy training: --deterministic is bitwise identical for every
 * workers x threads, checkpoints round-trip and refuse damage, NaN stops
 * training with the parameters untouched, a full disk leaves the previous
 * file intact, and the program resumes exactly and handles signals. */
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "testing.h"
#include "testutil.h"

static const pl_config CFG = {6, 20, 3, 1};

/* The training set of these tests, in tu_dir: 200 images of 7x6, 3 classes. */
static pl_dataset load_set(uint64_t seed) { return tu_dataset(tu_dir, 200, 30, 7, 6, 3, seed); }

/* The same set read as sequences of lengths 1..7 (variable lengths). */
static int32_t set_lengths[200];
static pl_dataset load_set_lengths(uint64_t seed)
{
    pl_dataset ds = load_set(seed);
    ck_assert_uint_eq(ds.n, 200);
    for (int i = 0; i < 200; i++)
        set_lengths[i] = 1 + (i * 5 + i / 7) % 7;
    ds.lengths = set_lengths;
    return ds;
}

/* The model make() builds: one layer, or (the layers issue) three layers
 * of 40 units with dropout between them; and the kernel set it runs. */
static const pl_config *make_cfg = &CFG;
static float make_dropout;
static pl_gemm_backend make_gemm = PL_GEMM_AUTO;
static pl_precision make_precision = PL_PRECISION_FP32;

static pl_trainer *make(const pl_dataset *ds, int W, int T, int det)
{
    pl_train_opts o = tu_opts(20, W, T, det, 3);
    o.dropout = make_dropout;
    o.gemm = make_gemm;
    o.precision = make_precision;
    return tu_trainer(make_cfg, ds, &o);
}

/* Steps [from, to) of a 10-step schedule, batches of 20 in seed 3's epoch
 * order. */
static void steps(pl_trainer *tr, const pl_dataset *ds, int from, int to)
{
    tu_steps(tr, ds, 3, 20, from, to, 10, NULL);
}

/* Each model on every kernel set (_i = model x tu_nsets + set): one
 * layer; three with dropout; three with dropout on sequences of variable
 * lengths. */
START_TEST(test_deterministic_any_workers_threads)
{
    static const pl_config three = {6, 40, 3, 3};
    make_gemm = tu_sets[_i % tu_nsets];
    if (!tu_set_runs(make_gemm, _i < tu_nsets ? "--deterministic" : NULL))
        return;
    make_cfg = _i < tu_nsets ? &CFG : &three;
    make_dropout = _i < tu_nsets ? 0.0f : 0.3f;
    pl_dataset ds = _i < 2 * tu_nsets ? load_set(41) : load_set_lengths(41);
    size_t np = pl_param_count(make_cfg);
    float *ref = malloc(sizeof(float) * np);
    pl_trainer *tr = make(&ds, 1, 1, 1);
    steps(tr, &ds, 0, 4);
    memcpy(ref, pl_trainer_params(tr), sizeof(float) * np);
    pl_trainer_free(tr);
    const int conf[][2] = {{2, 1}, {1, 2}, {3, 1}, {5, 2}, {16, 1}, {4, 3}};
    for (size_t k = 0; k < sizeof conf / sizeof *conf; k++) {
        tr = make(&ds, conf[k][0], conf[k][1], 1);
        steps(tr, &ds, 0, 4);
        ck_assert_msg(memcmp(ref, pl_trainer_params(tr), sizeof(float) * np) == 0,
                      "%s: --deterministic %dx%d differs from 1x1", pl_gemm_name(make_gemm),
                      conf[k][0], conf[k][1]);
        pl_trainer_free(tr);
    }
    free(ref);
    pl_dataset_free(&ds);
}
END_TEST

/* --deterministic in bf16: every workers x threads gives 1x1's bits, on
 * the software path (naive) and on the set auto picks (AVX512_BF16 where
 * the CPU has it); three layers with dropout on sequences of variable
 * lengths. And bf16 is in use: the fp32 run ends elsewhere. */
START_TEST(test_bf16_deterministic_any_workers_threads)
{
    static const pl_config three = {6, 40, 3, 3};
    make_gemm = _i == 0 ? PL_GEMM_NAIVE : PL_GEMM_AUTO;
    make_cfg = &three;
    make_dropout = 0.3f;
    pl_dataset ds = load_set_lengths(47);
    size_t np = pl_param_count(make_cfg);
    float *ref = malloc(sizeof(float) * np);
    pl_trainer *tr = make(&ds, 1, 1, 1);
    steps(tr, &ds, 0, 3);
    memcpy(ref, pl_trainer_params(tr), sizeof(float) * np);
    pl_trainer_free(tr);
    make_precision = PL_PRECISION_BF16;
    const int conf[][2] = {{1, 1}, {2, 1}, {1, 2}, {3, 2}};
    for (size_t k = 0; k < sizeof conf / sizeof *conf; k++) {
        tr = make(&ds, conf[k][0], conf[k][1], 1);
        steps(tr, &ds, 0, 3);
        if (k == 0) {
            ck_assert_msg(memcmp(ref, pl_trainer_params(tr), sizeof(float) * np) != 0,
                          "bf16 ends where fp32 does: is bf16 in use?");
            memcpy(ref, pl_trainer_params(tr), sizeof(float) * np);
        }
        ck_assert_msg(memcmp(ref, pl_trainer_params(tr), sizeof(float) * np) == 0,
                      "%s bf16: --deterministic %dx%d differs from 1x1", pl_gemm_name(make_gemm),
                      conf[k][0], conf[k][1]);
        pl_trainer_free(tr);
    }
    make_precision = PL_PRECISION_FP32;
    free(ref);
    pl_dataset_free(&ds);
}
END_TEST

/* A library-level resume: 3 steps, checkpoint, load into a fresh trainer,
 * 3 more steps == 6 steps straight, bit for bit; on every kernel set (the
 * checkpoint records it), on sequences of one length and of variable
 * lengths (_i = lengths x tu_nsets + set). */
START_TEST(test_checkpoint_resume_exact)
{
    make_gemm = tu_sets[_i % tu_nsets];
    make_cfg = &CFG;
    make_dropout = 0;
    if (!tu_set_runs(make_gemm, _i < tu_nsets ? "exact resume" : NULL))
        return;
    const char *dir = tu_dir;
    pl_dataset ds = _i < tu_nsets ? load_set(42) : load_set_lengths(42);
    size_t np = pl_param_count(&CFG);
    pl_trainer *straight = make(&ds, 2, 1, 0);
    steps(straight, &ds, 0, 6);

    pl_trainer *a = make(&ds, 2, 1, 0);
    steps(a, &ds, 0, 3);
    pl_ckpt_meta meta = {.cfg = CFG, .T = ds.T, .opts = *pl_trainer_opts(a), .step = 3,
                         .total = 10, .val = 0, .n_train = ds.n, .data_crc = pl_dataset_crc(&ds)};
    const char *path = tu_path(dir, "ck");
    pl_error err = {0};
    ck_assert_int_eq(pl_checkpoint_save(path, a, &meta, NULL, &err), PL_OK);
    pl_trainer_free(a);

    pl_ckpt_meta got;
    float *state = NULL;
    ck_assert_int_eq(pl_checkpoint_load(path, &got, &state, &err), PL_OK);
    ck_assert_int_eq(got.step, 3);
    ck_assert_int_eq(got.total, 10);
    ck_assert_int_eq(got.adam_steps, 3);
    ck_assert_int_eq(got.cfg.hidden, 20);
    ck_assert_int_eq(got.opts.batch, 20);
    ck_assert_int_eq(got.opts.workers, 2);
    ck_assert_uint_eq(got.opts.seed, 3);
    ck_assert_uint_eq(got.data_crc, meta.data_crc);
    ck_assert_int_eq(got.opts.gemm, make_gemm);
    make_gemm = got.opts.gemm;
    pl_trainer *b = make(&ds, 2, 1, 0);
    memcpy(pl_trainer_params(b), state, sizeof(float) * np);
    memcpy(pl_trainer_moment1(b), state + np, sizeof(float) * np);
    memcpy(pl_trainer_moment2(b), state + 2 * np, sizeof(float) * np);
    pl_trainer_set_adam_steps(b, got.adam_steps);
    steps(b, &ds, 3, 6);
    ck_assert_int_eq(memcmp(pl_trainer_params(b), pl_trainer_params(straight), sizeof(float) * np),
                     0);
    ck_assert_int_eq(memcmp(pl_trainer_moment2(b), pl_trainer_moment2(straight),
                            sizeof(float) * np), 0);
    pl_free(state);
    pl_trainer_free(b);
    pl_trainer_free(straight);
    pl_dataset_free(&ds);
}
END_TEST

/* Byte offsets in a checkpoint (the layout in checkpoint.c): magic,
 * version, then the run's fields. */
enum {
    CK_VERSION = 8, CK_HIDDEN = 16, CK_T = 24, CK_BATCH = 28, CK_SCHEDULE = 64, CK_INIT = 68,
    CK_WORKERS = 80, CK_THREADS = 84, CK_GEMM = 92, CK_STEP = 96, CK_RESERVED = 132,
    CK_ADAM = 164, CK_LAYERS = 172, CK_DROPOUT = 176, CK_SEQUENCE = 180, CK_PERMUTED = 184,
    CK_PERMUTE_SEED = 188, CK_WARMUP = 196, CK_LR_SCALING = 204, CK_WEIGHT_DECAY = 208,
    CK_NORMALIZE = 212, CK_PRECISION = 216, CK_OPTIMIZER = 220,
    CK_META = 12, CK_META_V3 = 192, CK_META_V4 = 256
};

/* A version 7 checkpoint in buf (len bytes) made version 3: the run's
 * block cut from 256 bytes to 192 (the fields of versions 4 to 7 dropped), the
 * CRC32 made right; returns the new length. */
static size_t ckpt_to_v3(unsigned char *buf, size_t len)
{
    const size_t cut = CK_META_V4 - CK_META_V3, from = CK_META + CK_META_V4;
    memmove(buf + from - cut, buf + from, len - from);
    len -= cut;
    uint32_t version = 3;
    memcpy(buf + CK_VERSION, &version, 4);
    tu_fix_crc(buf, len);
    return len;
}

/* Damaged checkpoints: each is refused with its own error, which names the
 * file. The run's settings are checked after the CRC, so those cases write
 * a valid CRC over the damage. */
START_TEST(test_checkpoint_hostile)
{
    const char *dir = tu_dir;
    pl_dataset ds = load_set(43);
    pl_trainer *tr = make(&ds, 1, 1, 0);
    steps(tr, &ds, 0, 2);
    pl_ckpt_meta meta = {.cfg = CFG, .T = ds.T, .opts = *pl_trainer_opts(tr), .step = 2,
                         .total = 10, .n_train = ds.n};
    const char *path = tu_path(dir, "ck");
    pl_error err = {0};
    ck_assert_int_eq(pl_checkpoint_save(path, tr, &meta, NULL, &err), PL_OK);
    static unsigned char buf[1 << 16];
    size_t len = tu_read(path, buf, sizeof buf);
    ck_assert(len > 200);
    struct {
        const char *what;
        size_t at;        /* byte to change */
        unsigned char x;  /* xor */
        long keep;        /* > 0: truncate; < 0: append -keep bytes */
        int fix_crc;      /* recompute the CRC after the change */
        pl_status want;
        const char *fragment;
    } bad[] = {
        {"magic", 2, 0x20, 0, 0, PL_ERR_MAGIC, "PLSTMCKP"},
        {"version", CK_VERSION, 0x0f, 0, 0, PL_ERR_VERSION,
         "checkpoint format version 8, this build reads versions 1 to 7"},
        {"version 0", CK_VERSION, 0x07, 0, 1, PL_ERR_VERSION, "checkpoint format version 0"},
        {"negative warm-up", CK_WARMUP + 7, 0x80, 0, 1, PL_ERR_MISMATCH,
         "warm-up -9223372036854775808, rate scaling 0, weight decay 0"},
        {"unknown rate scaling", CK_LR_SCALING, 0x03, 0, 1, PL_ERR_MISMATCH,
         "warm-up 0, rate scaling 3, weight decay 0"},
        {"weight decay 2", CK_WEIGHT_DECAY + 3, 0x40, 0, 1, PL_ERR_MISMATCH,
         "rate scaling 0, weight decay 2"},
        {"truncated in the run's block", 0, 0, CK_META + CK_META_V4 - 10, 0, PL_ERR_TRUNCATED,
         "a version 7 checkpoint has at least 280"},
        {"normalize 2", CK_NORMALIZE, 0x02, 0, 1, PL_ERR_MISMATCH,
         "normalize 2 (expected 0, none, or 1, standard)"},
        {"precision 2", CK_PRECISION, 0x02, 0, 1, PL_ERR_MISMATCH,
         "precision 2 (expected 0, fp32, or 1, bf16)"},
        {"optimizer 2", CK_OPTIMIZER, 0x02, 0, 1, PL_ERR_MISMATCH,
         "optimizer 2 (expected 0, Adam, or 1, RMSprop)"},
        {"zero layers", CK_LAYERS, 0x01, 0, 1, PL_ERR_MISMATCH, "layers must be between 1 and 8"},
        {"dropout 2", CK_DROPOUT + 3, 0x40, 0, 1, PL_ERR_MISMATCH, "dropout 2 (expected 0 to"},
        {"unknown sequence", CK_SEQUENCE, 0x02, 0, 1, PL_ERR_MISMATCH, "sequence 2, permuted 0"},
        {"permuted 2", CK_PERMUTED, 0x02, 0, 1, PL_ERR_MISMATCH, "sequence 0, permuted 2"},
        {"a flipped parameter", 400, 0x01, 0, 0, PL_ERR_CORRUPT, "CRC32 mismatch"},
        {"truncated", 0, 0, 100, 0, PL_ERR_TRUNCATED, "truncated"},
        {"truncated body", 0, 0, (long)len - 5, 0, PL_ERR_TRUNCATED, "expected"},
        {"trailing bytes", 0, 0, -3, 0, PL_ERR_TRAILING, "trailing bytes"},
        {"hidden units out of range", CK_HIDDEN + 3, 0x40, 0, 1, PL_ERR_MISMATCH,
         "bad model config"},
        {"zero time steps", CK_T, 0x07, 0, 1, PL_ERR_MISMATCH, "0 time steps"},
        {"negative batch", CK_BATCH + 3, 0x80, 0, 1, PL_ERR_MISMATCH, "batch -2147483628"},
        {"step beyond the total", CK_STEP + 4, 0x10, 0, 1, PL_ERR_MISMATCH,
         "inconsistent run settings in the checkpoint: step 68719476738 of 10"},
        {"negative step", CK_STEP + 7, 0x80, 0, 1, PL_ERR_MISMATCH, "step -9223372036854775806"},
        {"more Adam steps than steps", CK_ADAM, 0x01, 0, 1, PL_ERR_MISMATCH,
         "3 Adam steps after 2 steps"},
        {"zero workers", CK_WORKERS, 0x01, 0, 1, PL_ERR_MISMATCH, "0 workers x 1 threads"},
        {"zero threads", CK_THREADS, 0x01, 0, 1, PL_ERR_MISMATCH, "1 workers x 0 threads"},
        {"unknown schedule", CK_SCHEDULE, 0x02, 0, 1, PL_ERR_MISMATCH, "schedule 2,"},
        {"unknown init", CK_INIT, 0x04, 0, 1, PL_ERR_MISMATCH, "init 4,"},
        {"unknown GEMM", CK_GEMM, 0x08, 0, 1, PL_ERR_MISMATCH, "GEMM 8 (unknown"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        static unsigned char copy[1 << 16];
        memcpy(copy, buf, len);
        size_t n = len;
        copy[bad[k].at] ^= bad[k].x;
        if (bad[k].keep > 0)
            n = (size_t)bad[k].keep;
        else if (bad[k].keep < 0)
            n = len - (size_t)bad[k].keep;
        if (bad[k].fix_crc)
            tu_fix_crc(copy, n);
        tu_write(path, copy, n);
        pl_ckpt_meta m;
        float *state = NULL;
        pl_status rc = pl_checkpoint_load(path, &m, &state, &err);
        printf("checkpoint, %-26s -> %s: %s\n", bad[k].what, pl_status_name(rc), err.msg);
        ck_assert_msg(rc == bad[k].want, "%s: got %s (%s)", bad[k].what, pl_status_name(rc),
                      err.msg);
        ck_assert_msg(strstr(err.msg, bad[k].fragment) != NULL, "%s: %s", bad[k].what, err.msg);
        ck_assert_msg(strncmp(err.msg, path, strlen(path)) == 0, "%s: names no file: %s",
                      bad[k].what, err.msg);
        ck_assert_ptr_null(state);
    }
    pl_ckpt_meta m;
    float *state = NULL;
    /* a model file where a checkpoint belongs */
    pl_model_info mi = {.cfg = CFG, .T = ds.T};
    ck_assert_int_eq(pl_model_save(path, &mi, pl_trainer_params(tr), NULL, &err), PL_OK);
    ck_assert_int_eq(pl_checkpoint_load(path, &m, &state, &err), PL_ERR_MAGIC);
    ck_assert_ptr_nonnull(strstr(err.msg, "this is a model file"));
    tu_write(path, "", 0);
    ck_assert_int_eq(pl_checkpoint_load(path, &m, &state, &err), PL_ERR_EMPTY);
    ck_assert_int_eq(pl_checkpoint_load(dir, &m, &state, &err), PL_ERR_NOT_FILE);
    ck_assert_int_eq(pl_checkpoint_load(tu_path(dir, "none"), &m, &state, &err),
                     PL_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "/none: cannot open the checkpoint"));
    pl_trainer_free(tr);
    pl_dataset_free(&ds);
}
END_TEST

/* The checkpoint in buf (len bytes) written to path as another version:
 * the same bytes, that version number, the CRC32 made right. */
static void write_as_version(const char *path, unsigned char *buf, size_t len, uint32_t version)
{
    memcpy(buf + CK_VERSION, &version, 4);
    tu_fix_crc(buf, len);
    tu_write(path, buf, len);
}

/* Version 2 writes zeros where version 1 kept the epoch's generator state;
 * a version 1 file (any bytes there) still loads, to the same run; version
 * 3's layer and reading fields read back, and older files mean one layer
 * read row by row; version 4's rate and decay fields read back, and a
 * version 3 file (a block of 192 bytes) means none of them; version 5's
 * normalize, version 6's precision and version 7's optimizer read back,
 * and older files mean none, fp32 and Adam; a version 6 file reads as Adam,
 * a version 5 file as fp32. */
START_TEST(test_checkpoint_version_1_still_read)
{
    const char *dir = tu_dir;
    pl_dataset ds = load_set(45);
    pl_trainer *tr = make(&ds, 1, 1, 0);
    steps(tr, &ds, 0, 2);
    pl_ckpt_meta meta = {.cfg = CFG, .T = ds.T, .opts = *pl_trainer_opts(tr), .step = 2,
                         .total = 10, .val = 7, .n_train = ds.n, .data_crc = 0xabcdef01u};
    meta.opts.warmup = 7;
    meta.opts.lr_scaling = PL_LR_SCALE_SQRT;
    meta.opts.weight_decay = 0.25f;
    meta.normalize = 1;
    meta.opts.precision = PL_PRECISION_BF16;
    meta.opts.optimizer = PL_OPT_RMSPROP;
    const char *path = tu_path(dir, "ck");
    pl_error err = {0};
    ck_assert_int_eq(pl_checkpoint_save(path, tr, &meta, NULL, &err), PL_OK);
    static unsigned char buf[1 << 16];
    size_t len = tu_read(path, buf, sizeof buf);
    uint32_t version;
    memcpy(&version, buf + CK_VERSION, 4);
    ck_assert_uint_eq(version, 7);
    pl_ckpt_meta got;
    float *state = NULL;
    ck_assert_int_eq(pl_checkpoint_load(path, &got, &state, &err), PL_OK);
    ck_assert_int_eq(got.opts.warmup, 7);
    ck_assert_int_eq(got.opts.lr_scaling, PL_LR_SCALE_SQRT);
    ck_assert_float_eq(got.opts.weight_decay, 0.25f);
    ck_assert_int_eq(got.normalize, 1);
    ck_assert_int_eq(got.opts.precision, PL_PRECISION_BF16);
    ck_assert_int_eq(got.opts.optimizer, PL_OPT_RMSPROP);
    pl_free(state);
    /* version 6: the same bytes with the version changed; its optimizer
     * bytes are reserved (zero), and a non-zero value there is ignored:
     * Adam, which is how version 6 runs trained */
    write_as_version(path, buf, len, 6);
    ck_assert_int_eq(pl_checkpoint_load(path, &got, &state, &err), PL_OK);
    ck_assert_int_eq(got.opts.optimizer, PL_OPT_ADAM);
    ck_assert_int_eq(got.opts.precision, PL_PRECISION_BF16);
    pl_free(state);
    /* version 5: the same bytes with the version changed; its precision
     * bytes are reserved (zero), and a non-zero value there is ignored */
    write_as_version(path, buf, len, 5);
    ck_assert_int_eq(pl_checkpoint_load(path, &got, &state, &err), PL_OK);
    ck_assert_int_eq(got.opts.precision, PL_PRECISION_FP32);
    ck_assert_int_eq(got.normalize, 1);
    pl_free(state);
    /* version 3: the fields of version 4 are gone, and read as none */
    len = ckpt_to_v3(buf, len);
    tu_write(path, buf, len);
    ck_assert_int_eq(pl_checkpoint_load(path, &got, &state, &err), PL_OK);
    ck_assert_int_eq(got.opts.warmup, 0);
    ck_assert_int_eq(got.opts.lr_scaling, PL_LR_SCALE_NONE);
    ck_assert_float_eq(got.opts.weight_decay, 0.0f);
    ck_assert_int_eq(got.normalize, 0);
    ck_assert_int_eq(got.step, 2);
    ck_assert_int_eq(got.cfg.layers, 1);
    ck_assert_float_eq(got.opts.dropout, 0.0f);
    ck_assert_int_eq(got.sequence, PL_SEQ_ROWS);
    pl_free(state);
    uint32_t two = 2;
    memcpy(buf + CK_SEQUENCE, &two, 4); /* version 1 ignores what lies there */
    for (int i = 0; i < 32; i++)
        ck_assert_uint_eq(buf[CK_RESERVED + i], 0);
    uint64_t adam;
    memcpy(&adam, buf + CK_ADAM, 8);
    ck_assert_uint_eq(adam, 2);
    /* the same run as a version 1 file, with a generator state in place */
    for (int i = 0; i < 32; i++)
        buf[CK_RESERVED + i] = (unsigned char)(17 * i + 3);
    write_as_version(path, buf, len, 1);
    ck_assert_int_eq(pl_checkpoint_load(path, &got, &state, &err), PL_OK);
    ck_assert_int_eq(got.step, 2);
    ck_assert_int_eq(got.sequence, PL_SEQ_ROWS);
    ck_assert_int_eq(got.total, 10);
    ck_assert_int_eq(got.val, 7);
    ck_assert_int_eq(got.adam_steps, 2);
    ck_assert_uint_eq(got.data_crc, 0xabcdef01u);
    ck_assert_uint_eq(got.n_train, ds.n);
    size_t np = pl_param_count(&CFG);
    ck_assert_int_eq(memcmp(state, pl_trainer_params(tr), sizeof(float) * np), 0);
    ck_assert_int_eq(memcmp(state + 2 * np, pl_trainer_moment2(tr), sizeof(float) * np), 0);
    pl_free(state);
    /* version 8 is not this build's */
    write_as_version(path, buf, len, 8);
    ck_assert_int_eq(pl_checkpoint_load(path, &got, &state, &err), PL_ERR_VERSION);
    ck_assert_msg(strstr(err.msg, "version 8, this build reads versions 1 to 7") != NULL, "%s",
                  err.msg);
    pl_trainer_free(tr);
    pl_dataset_free(&ds);
}
END_TEST

/* A NaN in the gradient stops the step before Adam, naming the group. */
START_TEST(test_nonfinite_stops_before_update)
{
    if (!tu_hooks("a NaN in the gradient stops the step"))
        return;
    pl_dataset ds = load_set(44);
    pl_train_opts o;
    pl_train_opts_default(&o);
    o.batch = 20;
    o.workers = 2;
    pl_error err = {0};
    pl_trainer *tr = pl_trainer_create(&CFG, ds.T, &o, &err);
    ck_assert_ptr_nonnull(tr);
    pl_trainer_set_fault(tr, 1, 4); /* step 1, w_out */
    size_t np = pl_param_count(&CFG);
    uint32_t idx[20];
    for (int i = 0; i < 20; i++)
        idx[i] = (uint32_t)i;
    ck_assert_int_eq(pl_trainer_step(tr, &ds, idx, 20, 0, 5, NULL, &err), PL_OK);
    float *before = malloc(sizeof(float) * np);
    memcpy(before, pl_trainer_params(tr), sizeof(float) * np);
    pl_step_stats st;
    ck_assert_int_eq(pl_trainer_step(tr, &ds, idx, 20, 1, 5, &st, &err), PL_ERR_NONFINITE);
    ck_assert_msg(strstr(err.msg, "first in w_out[1]") != NULL, "%s", err.msg);
    ck_assert_ptr_nonnull(strstr(err.msg, "parameters left unchanged"));
    ck_assert_int_eq(memcmp(before, pl_trainer_params(tr), sizeof(float) * np), 0);
    ck_assert_int_eq(pl_trainer_adam_steps(tr), 1);
    free(before);
    pl_trainer_free(tr);
    pl_dataset_free(&ds);
}
END_TEST

static int count_temporaries(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return n;
}

/* A destination that fills up (a file-size limit stands in for a full
 * disk): the save fails with the reason and the previous file is intact. */
START_TEST(test_full_disk_keeps_previous_file)
{
    const char *dir = tu_dir;
    const char *path = tu_path(dir, "m.bin");
    size_t np = pl_param_count(&CFG);
    float *p = pl_alloc_floats(np);
    pl_model_init(&CFG, p, PL_INIT_DEFAULT, 1);
    pl_error err = {0};
    pl_model_info mi = {.cfg = CFG, .T = 5};
    ck_assert_int_eq(pl_model_save(path, &mi, p, NULL, &err), PL_OK);
    const float first = p[0];
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = {2048, 2048};
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    p[0] += 1.0f;
    pl_status rc = pl_model_save(path, &mi, p, NULL, &err);
    printf("save into a full destination -> %s: %s\n", pl_status_name(rc), err.msg);
    ck_assert_int_eq(rc, PL_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "write failed"));
    ck_assert_ptr_nonnull(strstr(err.msg, "m.bin"));
    pl_model_info got;
    float *q = NULL;
    ck_assert_int_eq(pl_model_load(path, &got, &q, &err), PL_OK);
    ck_assert_float_eq(q[0], first);
    ck_assert_int_eq(count_temporaries(dir), 0);
    pl_free(q);
    pl_free(p);
}
END_TEST

/* ---- the durable write, observed. These two definitions take the place
 * of libc's in the test program (the library is linked into it), record
 * what they were called on while `tracing` is set, and pass the call on. */
static int tracing, ntrace;
static struct {
    char call;   /* 'f' fsync, 'r' rename */
    ino_t ino;   /* the file or directory */
    int is_dir;
} trace[32];

int fsync(int fd)
{
    struct stat st;
    if (tracing && ntrace < 32 && fstat(fd, &st) == 0) {
        trace[ntrace].call = 'f';
        trace[ntrace].ino = st.st_ino;
        trace[ntrace++].is_dir = S_ISDIR(st.st_mode);
    }
    return (int)syscall(SYS_fsync, fd);
}

int rename(const char *from, const char *to)
{
    struct stat st;
    if (tracing && ntrace < 32 && stat(from, &st) == 0) {
        trace[ntrace].call = 'r';
        trace[ntrace].ino = st.st_ino;
        trace[ntrace++].is_dir = 0;
    }
    return renameat(AT_FDCWD, from, AT_FDCWD, to);
}

/* A save writes a temporary file, fsyncs it, renames it over the file and
 * fsyncs the directory, in that order (a crash then leaves the old file or
 * the new one, whole): for models and checkpoints alike. */
START_TEST(test_write_is_synced_then_renamed)
{
    const char *dir = tu_dir;
    pl_dataset ds = load_set(46);
    pl_trainer *tr = make(&ds, 1, 1, 0);
    struct stat dst;
    ck_assert_int_eq(stat(dir, &dst), 0);
    pl_model_info mi = {.cfg = CFG, .T = ds.T};
    pl_ckpt_meta meta = {.cfg = CFG, .T = ds.T, .opts = *pl_trainer_opts(tr), .step = 0,
                         .total = 10, .n_train = ds.n};
    for (int k = 0; k < 2; k++) {
        const char *path = tu_path(dir, k == 0 ? "m.bin" : "ck");
        pl_error err = {0};
        ntrace = 0;
        tracing = 1;
        pl_status rc = k == 0 ? pl_model_save(path, &mi, pl_trainer_params(tr), NULL, &err)
                              : pl_checkpoint_save(path, tr, &meta, NULL, &err);
        tracing = 0;
        ck_assert_int_eq(rc, PL_OK);
        struct stat fst;
        ck_assert_int_eq(stat(path, &fst), 0);
        ck_assert_msg(ntrace == 3, "%d calls, expected fsync, rename, fsync", ntrace);
        ck_assert_msg(trace[0].call == 'f' && !trace[0].is_dir && trace[0].ino == fst.st_ino,
                      "first: fsync of the new file");
        ck_assert_msg(trace[1].call == 'r' && trace[1].ino == fst.st_ino,
                      "then: the rename of that file");
        ck_assert_msg(trace[2].call == 'f' && trace[2].is_dir && trace[2].ino == dst.st_ino,
                      "last: fsync of its directory");
    }
    ck_assert_int_eq(count_temporaries(dir), 0);
    pl_trainer_free(tr);
    pl_dataset_free(&ds);
}
END_TEST

/* ---- the program */

/* the last run of a program */
static tu_result res;

START_TEST(test_resume_refuses_other_settings_and_data)
{
    const char *dir = tu_dir;
    const char *other = tu_subdir("other");
    tu_make_dataset(dir, 120, 20, 6, 5, 3, 51);
    tu_make_dataset(other, 120, 20, 6, 5, 3, 52);
    char ck[4096];
    snprintf(ck, sizeof ck, "%s/ck", dir);
    const char *a1[] = {"train", "--data", dir, "--val", "20", "--batch", "20", "--steps", "6",
                        "--hidden", "16", "--checkpoint", ck, "--checkpoint-every", "3",
                        "--quiet", NULL};
    ck_assert_int_eq(tu_run_args(&res, a1), 0);
    const char *a2[] = {"train", "--data", dir, "--resume", ck, "--batch", "10", NULL};
    ck_assert_int_eq(tu_run_args(&res, a2), 2);
    ck_assert_msg(strstr(res.err, "--batch 10 differs from the checkpoint's 20") != NULL, "%s",
                  res.err);
    const char *a3[] = {"train", "--data", dir, "--resume", ck, "--lr", "0.5", NULL};
    ck_assert_int_eq(tu_run_args(&res, a3), 2);
    ck_assert_ptr_nonnull(strstr(res.err, "--lr 0.5 differs"));
    const char *a5[] = {"train", "--data", dir, "--resume", ck, "--lr-warmup", "3", NULL};
    ck_assert_int_eq(tu_run_args(&res, a5), 2);
    ck_assert_msg(strstr(res.err, "--lr-warmup 3 differs from the checkpoint's 0") != NULL,
                  "%s", res.err);
    const char *a6[] = {"train", "--data", dir, "--resume", ck, "--weight-decay", "0.1", NULL};
    ck_assert_int_eq(tu_run_args(&res, a6), 2);
    ck_assert_ptr_nonnull(strstr(res.err, "--weight-decay 0.1 differs from the checkpoint's 0"));
    const char *a7[] = {"train", "--data", dir, "--resume", ck, "--lr-scaling", "linear", NULL};
    ck_assert_int_eq(tu_run_args(&res, a7), 2);
    ck_assert_ptr_nonnull(strstr(res.err, "--lr-scaling linear differs from the checkpoint's "
                                          "none"));
    const char *a8[] = {"train", "--data", dir, "--resume", ck, "--optimizer", "rmsprop", NULL};
    ck_assert_int_eq(tu_run_args(&res, a8), 2);
    ck_assert_msg(strstr(res.err, "--optimizer rmsprop differs from the checkpoint's adam") !=
                      NULL, "%s", res.err);
    const char *a4[] = {"train", "--data", other, "--resume", ck, NULL};
    ck_assert_int_eq(tu_run_args(&res, a4), 1);
    ck_assert_msg(strstr(res.err, "was made on other data") != NULL, "%s", res.err);
}
END_TEST

/* Resuming a run that had finished trains nothing and says so; it still
 * evaluates, saves the model (a run killed between its last checkpoint
 * and --save completes that way) and prints the result line, with nan
 * (as documented), never -nan, for what it has not measured. */
START_TEST(test_resume_finished_run)
{
    const char *dir = tu_dir;
    tu_make_dataset(dir, 120, 20, 6, 5, 3, 57);
    char ck[4096], model[4096];
    snprintf(ck, sizeof ck, "%s/ck", dir);
    snprintf(model, sizeof model, "%s/m.bin", dir);
    const char *a1[] = {"train", "--data", dir, "--val", "20", "--batch", "20", "--steps", "6",
                        "--hidden", "16", "--checkpoint", ck, "--quiet", NULL};
    ck_assert_int_eq(tu_run_args(&res, a1), 0);
    double val = atof(strstr(res.out, "val_accuracy=") + 13);
    double test = atof(strstr(res.out, "test_accuracy=") + 14);
    const char *a5[] = {"train", "--data", dir, "--resume", ck, "--batch", "20", "--quiet",
                        "--save", model, NULL};
    int st = tu_run_args(&res, a5);
    ck_assert_msg(st == 0, "exit %d: %s", st, res.err);
    char want[4200];
    snprintf(want, sizeof want, "%s: the run had finished (step 6 of 6): nothing to train", ck);
    ck_assert_msg(strstr(res.err, want) != NULL, "%s", res.err);
    ck_assert_msg(strstr(res.out, "result: steps=6 train_loss=nan ") != NULL, "%s", res.out);
    ck_assert_msg(strstr(res.out, " seconds=0.0 samples_per_sec=nan ") != NULL, "%s", res.out);
    ck_assert_msg(strstr(res.out, "-nan") == NULL, "%s", res.out);
    /* the same model as the run that finished: the same accuracies */
    ck_assert_double_eq(atof(strstr(res.out, "val_accuracy=") + 13), val);
    ck_assert_double_eq(atof(strstr(res.out, "test_accuracy=") + 14), test);
    pl_model_info mi;
    float *p = NULL;
    pl_error e;
    ck_assert_int_eq(pl_model_load(model, &mi, &p, &e), PL_OK);
    pl_ckpt_meta m;
    float *state = NULL;
    ck_assert_int_eq(pl_checkpoint_load(ck, &m, &state, &e), PL_OK);
    ck_assert_int_eq(memcmp(p, state, sizeof(float) * pl_param_count(&mi.cfg)), 0);
    pl_free(p);
    pl_free(state);
}
END_TEST

/* argv = base, then the variant's options, then the NULL-terminated rest. */
static void join_args(const char **argv, const char *const *base, const char *const *variant,
                      const char *const *rest)
{
    int n = 0;
    for (const char *const *p = base; *p; p++)
        argv[n++] = *p;
    for (const char *const *p = variant; p && *p; p++)
        argv[n++] = *p;
    for (const char *const *p = rest; *p; p++)
        argv[n++] = *p;
    argv[n] = NULL;
}

/* SIGTERM mid-run: the step finishes, the checkpoint is written, the exit
 * status is 143; resuming ends bit for bit where an uninterrupted run ends.
 * Also (the second run) with two layers, dropout and permuted pixels: the
 * masks and the reading resume too; and (the third) stopped in the middle
 * of a 50-step warm-up with the rate scaled for the batch, weight decay,
 * chrono biases and RMSprop: the resumed run's rates and updates continue
 * from the checkpoint's settings alone (the signal comes once the first of
 * the 40 ms checkpoint writes is done). */
START_TEST(test_sigterm_checkpoint_and_exact_resume)
{
    if (!tu_hooks("SIGTERM during slowed checkpoint writes"))
        return;
    const char *dir = tu_dir;
    tu_make_dataset(dir, 200, 20, 6, 5, 3, 53);
    char ck[4096], ref[4096], res_bin[4096];
    snprintf(ck, sizeof ck, "%s/ck", dir);
    snprintf(ref, sizeof ref, "%s/ref.bin", dir);
    snprintf(res_bin, sizeof res_bin, "%s/res.bin", dir);
    const char *base[] = {"train", "--data", dir, "--val", "0", "--batch", "10", "--steps", "60",
                          "--hidden", "16", "--workers", "2", "--quiet", NULL};
    static const char *const deep[] = {"--layers", "2", "--dropout", "0.3", "--sequence",
                                       "pixels", "--permute", "3", NULL};
    static const char *const recipe[] = {"--lr-warmup", "50", "--lr-scaling", "sqrt",
                                         "--weight-decay", "0.3", "--init", "chrono",
                                         "--optimizer", "rmsprop", NULL};
    const char *const *variant = _i == 0 ? NULL : _i == 1 ? deep : recipe;
    const char *straight[32], *first[32], *resume[32];
    join_args(straight, base, variant, (const char *const[]){"--save", ref, NULL});
    ck_assert_int_eq(tu_run_args(&res, straight), 0);
    /* every step writes a checkpoint that takes 40 ms: a signal lands mid-run */
    const char *slow[] = {"PARLSTM_TEST_SLOW_WRITE_MS=40", NULL};
    join_args(first, base, variant, (const char *const[]){"--save", res_bin, "--checkpoint", ck,
                                                          "--checkpoint-every", "1", NULL});
    tu_job j;
    tu_start(&j, NULL, first, slow);
    /* once the first checkpoint is on disk (the handlers are in place) */
    tu_signal_when(&j, SIGTERM, ck, NULL);
    int st = tu_finish(&j, &res, 0);
    ck_assert_msg(st == 143, "exit %d (%d: killed by SIGTERM, no handler): %s", st,
                  TU_KILLED(SIGTERM), res.err);
    ck_assert_msg(strstr(res.err, "terminated after step") != NULL, "%s", res.err);
    ck_assert_ptr_nonnull(strstr(res.err, "resume with: parlstm train --resume"));
    pl_ckpt_meta m;
    float *state = NULL;
    pl_error err;
    ck_assert_int_eq(pl_checkpoint_load(ck, &m, &state, &err), PL_OK);
    printf("SIGTERM after step %ld of 60\n", m.step);
    ck_assert(m.step > 0 && m.step < 60);
    ck_assert_int_eq(m.cfg.layers, _i == 1 ? 2 : 1);
    if (_i == 2) { /* in the middle of warm-up, and the settings recorded */
        ck_assert(m.step < 50);
        ck_assert_int_eq(m.opts.warmup, 50);
        ck_assert_int_eq(m.opts.lr_scaling, PL_LR_SCALE_SQRT);
        ck_assert_float_eq(m.opts.weight_decay, 0.3f);
        ck_assert_int_eq(m.opts.init, PL_INIT_CHRONO);
        ck_assert_int_eq(m.opts.optimizer, PL_OPT_RMSPROP);
    }
    pl_free(state);
    ck_assert_int_eq(access(res_bin, F_OK), -1); /* no model saved by the stopped run */
    join_args(resume, base, NULL, (const char *const[]){"--save", res_bin, "--checkpoint", ck,
                                                        "--resume", ck, NULL});
    ck_assert_int_eq(tu_run_args(&res, resume), 0);
    char a[1 << 17], b[1 << 17];
    FILE *fa = fopen(ref, "rb"), *fb = fopen(res_bin, "rb");
    size_t la = fread(a, 1, sizeof a, fa), lb = fread(b, 1, sizeof b, fb);
    fclose(fa);
    fclose(fb);
    ck_assert_uint_eq(la, lb);
    ck_assert_int_eq(memcmp(a, b, la), 0);
    ck_assert_int_eq(count_temporaries(dir), 0);
}
END_TEST

/* A second signal during the checkpoint write exits at once: no summary,
 * no temporary file left, the previous checkpoint on disk untouched. */
START_TEST(test_second_signal_exits_at_once)
{
    if (!tu_hooks("a second signal during a slowed write"))
        return;
    const char *dir = tu_dir;
    tu_make_dataset(dir, 200, 20, 6, 5, 3, 54);
    char ck[4096], log[4096];
    snprintf(ck, sizeof ck, "%s/ck", dir);
    snprintf(log, sizeof log, "%s/log.csv", dir);
    /* a first run leaves a checkpoint */
    const char *first[] = {"train", "--data", dir, "--val", "0", "--batch", "10", "--steps",
                           "100000000", "--hidden", "16", "--checkpoint", ck,
                           "--checkpoint-every", "50", "--quiet", NULL};
    tu_job j;
    tu_start(&j, NULL, first, NULL);
    tu_signal_when(&j, SIGTERM, ck, NULL);
    ck_assert_int_eq(tu_finish(&j, &res, 0), 143); /* exited by itself, not TU_KILLED(SIGTERM) */
    pl_ckpt_meta before, after;
    float *state = NULL;
    pl_error err;
    ck_assert_int_eq(pl_checkpoint_load(ck, &before, &state, &err), PL_OK);
    pl_free(state);
    /* resume it; its final checkpoint write takes 800 ms */
    const char *second[] = {"train", "--data", dir, "--resume", ck, "--checkpoint", ck,
                            "--checkpoint-every", "100000000", "--log", log, "--log-every",
                            "1", "--quiet", NULL};
    const char *slow[] = {"PARLSTM_TEST_SLOW_WRITE_MS=800", NULL};
    tu_start(&j, NULL, second, slow);
    /* once it trains (its first log row) */
    tu_signal_when(&j, SIGINT, log, "\ntrain,");
    /* the second signal once the write's temporary file exists (within 10 s,
     * however loaded the machine is) */
    for (int waited = 0; count_temporaries(dir) == 0 && waited < 10000; waited += 5)
        tu_sleep_ms(5);
    ck_assert_msg(count_temporaries(dir) > 0, "no checkpoint write began after the first signal");
    kill(j.pid, SIGINT);
    int st = tu_finish(&j, &res, 0);
    ck_assert_msg(st == 130, "exit %d (%d: killed by SIGINT, no handler): %s", st,
                  TU_KILLED(SIGINT), res.err);
    ck_assert_msg(strstr(res.err, "interrupted after step") == NULL,
                  "the second signal did not exit at once: %s", res.err);
    ck_assert_int_eq(count_temporaries(dir), 0);
    ck_assert_int_eq(pl_checkpoint_load(ck, &after, &state, &err), PL_OK);
    ck_assert_int_eq(after.step, before.step);
    pl_free(state);
}
END_TEST

/* A NaN at step 8 (injected): exit 1 naming the step and the group; the
 * last good checkpoint (step 5) stays intact and is named. */
START_TEST(test_nan_keeps_last_good_checkpoint)
{
    if (!tu_hooks("a NaN keeps the last good checkpoint"))
        return;
    const char *dir = tu_dir;
    tu_make_dataset(dir, 200, 20, 6, 5, 3, 55);
    char ck[4096];
    snprintf(ck, sizeof ck, "%s/ck", dir);
    const char *args[] = {"train", "--data", dir, "--val", "0", "--batch", "10", "--steps", "50",
                          "--hidden", "16", "--checkpoint", ck, "--checkpoint-every", "5",
                          "--quiet", NULL};
    setenv("PARLSTM_TEST_FAULT", "7,2", 1);
    int st = tu_run_args(&res, args);
    unsetenv("PARLSTM_TEST_FAULT");
    ck_assert_int_eq(st, 1);
    ck_assert_msg(strstr(res.err, "step 8: non-finite gradient, first in w_lstm") != NULL, "%s",
                  res.err);
    ck_assert_ptr_nonnull(strstr(res.err, "the last good checkpoint is"));
    ck_assert_ptr_null(strstr(res.out, "result:"));
    pl_ckpt_meta m;
    float *state = NULL;
    pl_error err;
    ck_assert_int_eq(pl_checkpoint_load(ck, &m, &state, &err), PL_OK);
    ck_assert_int_eq(m.step, 5);
    for (size_t i = 0; i < 3 * pl_param_count(&m.cfg); i++)
        ck_assert(isfinite(state[i]));
    pl_free(state);
}
END_TEST

/* Output that cannot be written is refused before any training. */
START_TEST(test_unwritable_outputs_fail_early)
{
    const char *dir = tu_dir;
    tu_make_dataset(dir, 60, 10, 6, 5, 3, 56);
    const char *a1[] = {"train", "--data", dir, "--val", "0", "--batch", "10",
                        "--save", "/nonexistent-dir/m.bin", NULL};
    ck_assert_int_eq(tu_run_args(&res, a1), 1);
    ck_assert_msg(strstr(res.err, "/nonexistent-dir/m.bin") != NULL, "%s", res.err);
    ck_assert_ptr_null(strstr(res.err, "step "));
    const char *a2[] = {"train", "--data", dir, "--val", "0", "--batch", "10",
                        "--checkpoint", dir, NULL};
    ck_assert_int_eq(tu_run_args(&res, a2), 1);
    ck_assert_msg(strstr(res.err, "is a directory") != NULL, "%s", res.err);
}
END_TEST

/* ---- --save that fails after training: the model is rescued, never lost */

typedef enum { RESCUE_TMPDIR, RESCUE_CWD, RESCUE_NOWHERE, RESCUE_CHECKPOINT, RESCUE_FSIZE } rescue_case;

static const char *const RESCUE_NAMES[] = {
    "the save directory full: TMPDIR", "TMPDIR full too: the working directory",
    "nowhere to write", "with a checkpoint", "a file-size limit (SIGXFSZ ignored)"};

/* Trains 6 steps on dir's data (one worker, one thread: the same bits every
 * time) with --save save and, when ck is not NULL, --checkpoint ck, in the
 * environment env; returns the exit status (the output in res). */
static int rescue_train(const char *dir, const char *save, const char *ck, const char *const *env)
{
    const char *args[24] = {"train", "--data", dir, "--val", "20", "--batch", "20", "--steps",
                            "6", "--hidden", "16", "--workers", "1", "--threads", "1",
                            "--quiet", "--save", save};
    int n = 18;
    if (ck) {
        args[n++] = "--checkpoint";
        args[n++] = ck;
    }
    args[n] = NULL;
    return tu_run_env(&res, args, env);
}

static void on_xfsz(int sig) { (void)sig; }

/* Where the message says the model went ("safe in X ("), or "". */
static const char *rescued_at(char *buf, size_t len)
{
    const char *at = strstr(res.err, "the trained model is safe in ");
    buf[0] = '\0';
    if (at) {
        at += strlen("the trained model is safe in ");
        snprintf(buf, len, "%.*s", (int)strcspn(at, " "), at);
    }
    return buf;
}

START_TEST(test_save_failure_rescues_the_model)
{
    if (!tu_hooks("a full disk at the save"))
        return;
    const rescue_case k = (rescue_case)_i;
    const char *dir = tu_dir;
    tu_make_dataset(dir, 140, 20, 6, 5, 3, 61);
    char full[4200], tmp[4200], cwd[4200], ref[4200], save[4300], ck[4200], env_full[4300],
        env_tmp[4300], where[4400], want[8800];
    snprintf(full, sizeof full, "%s/full", dir);
    snprintf(tmp, sizeof tmp, "%s/tmp", dir);
    snprintf(cwd, sizeof cwd, "%s/cwd", dir);
    snprintf(ref, sizeof ref, "%s/ref.bin", dir);
    snprintf(save, sizeof save, "%s/m.bin", full);
    snprintf(ck, sizeof ck, "%s/ck", dir);
    ck_assert_int_eq(mkdir(full, 0700), 0);
    ck_assert_int_eq(mkdir(tmp, 0700), 0);
    ck_assert_int_eq(mkdir(cwd, 0700), 0);
    /* the model a run that can save writes */
    ck_assert_int_eq(rescue_train(dir, ref, NULL, NULL), 0);
    size_t ref_len, got_len;
    unsigned char *want_bytes = tu_read_all(ref, &ref_len);

    snprintf(env_full, sizeof env_full, "PARLSTM_TEST_FULL_DIR=%s", full);
    snprintf(env_tmp, sizeof env_tmp, "TMPDIR=%s", k == RESCUE_TMPDIR || k == RESCUE_CHECKPOINT
                                                        ? tmp : full);
    const char *env[] = {env_full, env_tmp, NULL};
    ck_assert_int_eq(chdir(cwd), 0);
    if (k == RESCUE_NOWHERE)
        ck_assert_int_eq(rmdir(cwd), 0); /* the working directory is gone */
    struct rlimit old;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    if (k == RESCUE_FSIZE) {
        /* a real limit: every file stops at 4 KiB. SIGXFSZ is caught here
         * (not ignored: parlstm must ignore it itself, since a handler does
         * not survive exec), and the soft limit comes back afterwards */
        env[0] = NULL;
        signal(SIGXFSZ, on_xfsz);
        struct rlimit lim = {4096, old.rlim_max};
        ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    }
    int st = rescue_train(dir, save, k == RESCUE_CHECKPOINT ? ck : NULL, env);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    ck_assert_msg(st == 1, "%s: exit %d", RESCUE_NAMES[k], st);
    snprintf(want, sizeof want, "parlstm train: %s: write failed: %s", save,
             k == RESCUE_FSIZE ? "File too large" : "No space left on device (the disk is full)");
    ck_assert_msg(strstr(res.err, want) != NULL, "%s: no '%s'", RESCUE_NAMES[k], want);
    ck_assert_msg(strstr(res.out, "result: steps=6 ") != NULL, "%s: no result line", RESCUE_NAMES[k]);
    ck_assert_int_eq(count_temporaries(full), 0);
    ck_assert_int_ne(access(save, F_OK), 0);
    rescued_at(where, sizeof where);
    char pid_suffix[64], real[PATH_MAX];
    switch (k) {
    case RESCUE_TMPDIR:
    case RESCUE_CHECKPOINT:
    case RESCUE_CWD:
        snprintf(want, sizeof want, "%s/m.bin.rescue-",
                 k == RESCUE_CWD ? realpath(cwd, real) : tmp);
        ck_assert_msg(strncmp(where, want, strlen(want)) == 0, "%s: rescued in '%s', expected "
                      "%s...", RESCUE_NAMES[k], where, want);
        snprintf(pid_suffix, sizeof pid_suffix, "%s", where + strlen(want));
        ck_assert_msg(strspn(pid_suffix, "0123456789") == strlen(pid_suffix) && *pid_suffix,
                      "%s", where);
        snprintf(want, sizeof want, "(--save %s could not be written): move it where it belongs",
                 save);
        ck_assert_msg(strstr(res.err, want) != NULL, "%s", res.err);
        /* the rescued file is the model, byte for byte */
        unsigned char *got = tu_read_all(where, &got_len);
        ck_assert_uint_eq(got_len, ref_len);
        ck_assert_msg(memcmp(got, want_bytes, ref_len) == 0, "%s: the rescued model differs",
                      RESCUE_NAMES[k]);
        free(got);
        break;
    case RESCUE_NOWHERE:
    case RESCUE_FSIZE:
        ck_assert_str_eq(where, "");
        snprintf(want, sizeof want, "parlstm train: the trained model could not be written to "
                 "--save %s, ", save);
        ck_assert_msg(strstr(res.err, want) != NULL, "%s", res.err);
        break;
    }
    if (k == RESCUE_CHECKPOINT) { /* the checkpoint holds it too, and says how to get it */
        snprintf(want, sizeof want, "the checkpoint %s holds it too: parlstm train --resume %s "
                 "--save FILE writes it", ck, ck);
        ck_assert_msg(strstr(res.err, want) != NULL, "%s", res.err);
        snprintf(save, sizeof save, "%s/from-ck.bin", dir);
        const char *resume[] = {"train", "--data", dir, "--resume", ck, "--quiet", "--save",
                                save, NULL};
        ck_assert_int_eq(tu_run_args(&res, resume), 0);
        unsigned char *got = tu_read_all(save, &got_len);
        ck_assert_uint_eq(got_len, ref_len);
        ck_assert_int_eq(memcmp(got, want_bytes, ref_len), 0);
        free(got);
    } else {
        ck_assert_ptr_null(strstr(res.err, "the checkpoint"));
    }
    free(want_bytes);
}
END_TEST

Suite *reliability_suite(void)
{
    Suite *s = suite_create("reliability");
    TCase *tc = tu_tcase_with_dir("state");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_deterministic_any_workers_threads, 0, 3 * tu_nsets);
    tcase_add_loop_test(tc, test_bf16_deterministic_any_workers_threads, 0, 2);
    tcase_add_loop_test(tc, test_checkpoint_resume_exact, 0, 2 * tu_nsets);
    tcase_add_test(tc, test_checkpoint_hostile);
    tcase_add_test(tc, test_checkpoint_version_1_still_read);
    tcase_add_test(tc, test_nonfinite_stops_before_update);
    tcase_add_test(tc, test_full_disk_keeps_previous_file);
    tcase_add_test(tc, test_write_is_synced_then_renamed);
    suite_add_tcase(s, tc);
    TCase *tp = tu_tcase_with_dir("program");
    tcase_set_timeout(tp, 120);
    tcase_add_test(tp, test_resume_refuses_other_settings_and_data);
    tcase_add_test(tp, test_resume_finished_run);
    tcase_add_loop_test(tp, test_sigterm_checkpoint_and_exact_resume, 0, 3);
    tcase_add_test(tp, test_second_signal_exits_at_once);
    tcase_add_test(tp, test_nan_keeps_last_good_checkpoint);
    tcase_add_test(tp, test_unwritable_outputs_fail_early);
    tcase_add_loop_test(tp, test_save_failure_rescues_the_model, 0,
                        (int)(sizeof RESCUE_NAMES / sizeof *RESCUE_NAMES));
    suite_add_tcase(s, tp);
    return s;
}
