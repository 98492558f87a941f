/* Which kind of model file a path holds, told by its first bytes, and the
 * reader for it: above both formats (modelfile.c, safetensors.c), which
 * know nothing of each other. */
#include <stdio.h>
#include <string.h>

#include "files.h"

pl_status pl_model_read(const char *path, pl_model_info *m, float **params, pl_error *err)
{
    unsigned char first[9] = {0};
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(first, 1, sizeof first, f) : 0;
    if (f)
        fclose(f);
    /* too short, unreadable, or a model or checkpoint: the model reader
     * says what it is */
    if (got < sizeof first || !memcmp(first, "PLSTMMDL", 8) || !memcmp(first, "PLSTMCKP", 8))
        return pl_model_load(path, m, params, err);
    if (first[8] == '{')
        return pl_safetensors_load(path, m, params, err);
    *params = NULL;
    return pl_fail(err, PL_ERR_MAGIC, "%s: neither a parlstm model file (magic \"PLSTMMDL\") nor "
                   "a safetensors file (a header length, then a JSON object)", path);
}
