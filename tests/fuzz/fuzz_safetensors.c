/* libFuzzer harness: the safetensors reader on arbitrary bytes. It must
 * return a status with a message that starts with the file name, never
 * crash, leak or read out of bounds; on success the config is valid, the
 * time steps in range and every parameter finite. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "parlstm.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    pl_error err = {0};
    pl_config cfg;
    float *params = NULL;
    int T = -1;
    if (pl_safetensors_load(path, &cfg, &T, &params, &err) == PL_OK) {
        if (pl_config_check(&cfg, NULL) != PL_OK || T < 0 || T > 65535 || !params)
            abort();
        for (size_t i = 0; i < pl_param_count(&cfg); i++)
            if (!isfinite(params[i]))
                abort();
        pl_free(params);
    } else if (params != NULL || strncmp(err.msg, path, strlen(path)) != 0 || T != -1) {
        abort();
    }
    return 0;
}
