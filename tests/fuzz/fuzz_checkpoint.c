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

/* checkpoint: magic, version, the run (192), n_params, 3 x n floats, CRC */
#define CKPT_FIXED (8 + 4 + 192 + 8 + 4)

static void check_checkpoint(const char *path, size_t size)
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
    if (pl_config_check(&m.cfg, NULL) != PL_OK || m.T < 1 || m.T > 65535 || o->batch < 1 ||
        m.step < 0 || m.step > m.total || m.adam_steps < 0 || m.adam_steps > m.step ||
        o->workers < 1 || o->threads < 1 || (unsigned)o->schedule > PL_SCHED_CONSTANT ||
        (unsigned)o->init > PL_INIT_TUTORIAL || (unsigned)o->gemm > PL_GEMM_LAST ||
        size != CKPT_FIXED + 12 * np)
        abort();
    volatile float s = 0;
    for (size_t i = 0; i < 3 * np; i++)
        s += state[i];
    pl_free(state);
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
    size_t head = mi.version == 1 ? 12 + 20 : 12 + 24;
    if (pl_config_check(&mi.cfg, NULL) != PL_OK || mi.version < 1 || mi.version > 2 ||
        (mi.version == 1 && mi.T != 0) || (mi.version >= 2 && (mi.T < 1 || mi.T > 65535)) ||
        size != head + 4 * np + 4)
        abort();
    volatile float s = 0;
    for (size_t i = 0; i < np; i++)
        s += params[i];
    pl_free(params);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    check_checkpoint(path, size);
    check_model(path, size);
    if (size < 8)
        return 0;
    uint8_t *fixed = malloc(size);
    memcpy(fixed, data, size);
    uint32_t crc = (uint32_t)crc32_z(0L, fixed, size - 4);
    memcpy(fixed + size - 4, &crc, 4);
    path = fuzz_file(fixed, size);
    check_checkpoint(path, size);
    check_model(path, size);
    free(fixed);
    return 0;
}
