/* libFuzzer harness: the checkpoint and model readers on arbitrary bytes,
 * each twice: as given, and with the CRC32 in the last four bytes made
 * right, so that the checks behind the CRC (the run's settings, the
 * header's fields) see the mutations too. They must return a status, never
 * crash, leak or read out of bounds; what they accept must hold every
 * promise the formats make (checkpoint.c, modelfile.c), and the file must
 * be exactly as long as its header says. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "internal.h"
#include "fuzz_common.h"

/* checkpoint: magic, version, the run (192 bytes up to version 3, 256
 * from 4), n_params, 3 x n floats, CRC (checkpoint.c's layout) */
static size_t ckpt_fixed(int version) { return 8 + 4 + (version >= 4 ? 256 : 192) + 8 + 4; }

static void check_checkpoint(const char *path, const uint8_t *data, size_t size)
{
    pl_error err;
    pl_ckpt_meta m;
    float *state = NULL;
    if (pl_checkpoint_load(path, &m, &state, &err) != PL_OK) {
        if (state != NULL || err.msg[0] == '\0')
            abort();
        return;
    }
    const pl_train_opts *o = &m.opts;
    size_t np = pl_param_count(&m.cfg);
    uint32_t version;
    memcpy(&version, data + 8, 4);
    /* every promise of check_run, and the length the version gives */
    if (pl_config_check(&m.cfg, NULL) != PL_OK || m.T < 1 || m.T > 65535 || o->batch < 1 ||
        m.step < 0 || m.step > m.total || m.adam_steps < 0 || m.adam_steps > m.step ||
        o->workers < 1 || o->threads < 1 || !(o->dropout >= 0 && o->dropout < 1) ||
        (unsigned)m.sequence > PL_SEQ_PIXELS || (unsigned)m.permuted > 1 ||
        (unsigned)m.normalize > 1 || o->warmup < 0 || (unsigned)o->lr_scaling > PL_LR_SCALE_SQRT ||
        !(o->weight_decay >= 0 && o->weight_decay <= 1) ||
        (unsigned)o->schedule > PL_SCHED_CONSTANT || (unsigned)o->init > PL_INIT_LAST ||
        (unsigned)o->gemm > PL_GEMM_LAST || (unsigned)o->precision > PL_PRECISION_BF16 ||
        (unsigned)o->optimizer > PL_OPT_RMSPROP || version < 1 || version > 7 ||
        size != ckpt_fixed((int)version) + 12 * np)
        abort();
    /* what older versions lack reads as its default */
    if ((version < 3 && (m.cfg.layers != 1 || o->dropout != 0 || m.sequence != PL_SEQ_ROWS ||
                         m.permuted)) ||
        (version < 4 && (o->warmup || o->weight_decay != 0)) || (version < 5 && m.normalize) ||
        (version < 6 && o->precision != PL_PRECISION_FP32) ||
        (version < 7 && o->optimizer != PL_OPT_ADAM))
        abort();
    volatile float s = 0;
    for (size_t i = 0; i < 3 * np; i++)
        s += state[i];
    pl_free(state);
}

/* model file: magic and version (12), the header's fields of the version,
 * the extras of versions 4 on (8 bytes a feature and the class names),
 * params, CRC */
static size_t model_fixed(int version)
{
    static const size_t head[6] = {0, 20, 24, 56, 68, 72};
    return 12 + head[version] + 4;
}

static void check_model(const char *path, size_t size)
{
    pl_error err;
    pl_model_info mi;
    float *params = NULL;
    if (pl_model_load(path, &mi, &params, &err) != PL_OK) {
        if (params != NULL || err.msg[0] == '\0')
            abort();
        return;
    }
    size_t np = pl_param_count(&mi.cfg);
    if (pl_config_check(&mi.cfg, NULL) != PL_OK || mi.version < 1 || mi.version > 5 ||
        (unsigned)mi.precision > PL_PRECISION_BF16 ||
        (mi.version < 5 && mi.precision != PL_PRECISION_FP32) ||
        (mi.version == 1 && mi.T != 0) || (mi.version >= 2 && (mi.T < 1 || mi.T > 65535)) ||
        (mi.version < 4 && (mi.features || mi.class_names)))
        abort();
    if (mi.version >= 2 && pl_model_shape_check("x", "x", &mi, NULL) != PL_OK)
        abort();
    size_t names = 0;
    for (int c = 0; mi.class_names && c < mi.cfg.classes; c++)
        names += strlen(mi.class_names[c]) + 1;
    if (size != model_fixed(mi.version) + 8 * (size_t)mi.features + names + 4 * np)
        abort();
    volatile float s = 0;
    for (size_t i = 0; i < np; i++)
        s += params[i];
    for (int d = 0; d < mi.features; d++)
        s += mi.norm_mean[d] + mi.norm_std[d];
    pl_model_info_free(&mi);
    pl_free(params);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    check_checkpoint(path, data, size);
    check_model(path, size);
    if (size < 8)
        return 0;
    uint8_t *fixed = malloc(size);
    memcpy(fixed, data, size);
    uint32_t crc = (uint32_t)crc32_z(0L, fixed, size - 4);
    memcpy(fixed + size - 4, &crc, 4);
    path = fuzz_file(fixed, size);
    check_checkpoint(path, fixed, size);
    check_model(path, size);
    free(fixed);
    return 0;
}
