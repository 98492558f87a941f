/* libFuzzer harness: the safetensors reader on arbitrary bytes. It must
 * return a status with a message that starts with the file name, never
 * crash, leak or read out of bounds; on success the description is one a
 * model file can hold (or has T = 0, unknown) and every parameter finite. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    pl_error err = {0};
    pl_model_info m;
    memset(&m, 0xAB, sizeof m);
    const pl_model_info untouched = m;
    float *params = NULL;
    if (pl_safetensors_load(path, &m, &params, &err) == PL_OK) {
        const pl_config *cfg = &m.cfg;
        if (pl_config_check(cfg, NULL) != PL_OK || m.T < 0 || m.T > 65535 || !params)
            abort();
        /* what a model file would refuse to hold, never accepted */
        if (m.T > 0 && pl_model_shape_check("x", "x", &m, NULL) != PL_OK)
            abort();
        if (m.T == 0 && (m.rows || m.cols || m.sequence || m.permuted))
            abort();
        for (size_t i = 0; i < pl_param_count(cfg); i++)
            if (!isfinite(params[i]))
                abort();
        pl_model_info_free(&m);
        pl_free(params);
    } else if (params != NULL || strncmp(err.msg, path, strlen(path)) != 0 ||
               memcmp(&m, &untouched, sizeof m) != 0) {
        abort();
    }
    return 0;
}
