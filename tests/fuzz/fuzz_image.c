/* libFuzzer harness: the PNG (libpng) and PGM readers on arbitrary bytes.
 * They must return a status with a message that starts with the file
 * name, never crash, leak or read out of bounds; on success the image has
 * sides from 1 to 65535 and every pixel is readable. */
#include <stdint.h>
#include <string.h>

#include "parlstm.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    pl_error err = {0};
    pl_image img;
    if (pl_image_read(path, &img, &err) == PL_OK) {
        if (img.rows < 1 || img.cols < 1 || img.rows > 65535 || img.cols > 65535 || !img.pixels)
            abort();
        volatile unsigned s = 0;
        for (size_t i = 0; i < (size_t)img.rows * (size_t)img.cols; i++)
            s += img.pixels[i];
        pl_image_free(&img);
    } else if (img.pixels != NULL || strncmp(err.msg, path, strlen(path)) != 0) {
        abort();
    }
    return 0;
}
