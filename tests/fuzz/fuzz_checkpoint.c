/* libFuzzer harness: the checkpoint and model readers on arbitrary bytes.
 * They must return a status, never crash, leak or read out of bounds; on
 * success every loaded float is readable and the config is valid. */
#include <stdint.h>
#include <string.h>

#include "parlstm.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    pl_error err;
    pl_ckpt_meta meta;
    float *state = NULL;
    if (pl_checkpoint_load(path, &meta, &state, &err) == PL_OK) {
        if (pl_config_check(&meta.cfg, NULL) != PL_OK || meta.step > meta.total)
            abort();
        volatile float s = 0;
        for (size_t i = 0; i < 3 * pl_param_count(&meta.cfg); i++)
            s += state[i];
        pl_free(state);
    } else if (state != NULL || err.msg[0] == '\0') {
        abort();
    }
    pl_model_info mi;
    float *params = NULL;
    if (pl_model_load(path, &mi, &params, &err) == PL_OK) {
        volatile float s = 0;
        for (size_t i = 0; i < pl_param_count(&mi.cfg); i++)
            s += params[i];
        pl_free(params);
    } else if (params != NULL) {
        abort();
    }
    return 0;
}
