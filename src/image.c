/* Images as 8-bit gray (rows, cols): PNG through libpng, PGM (P5 binary and
 * P2 text) parsed here. The format is told by the file's first bytes, not
 * by its name. The whole file is read first (pl_read_file), so a file that
 * ends early is a clear "truncated", never a short read. */
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"

#define IMG_MAX_SIDE 65535
#define IMG_MAX_PIXELS ((size_t)1 << 28)
#define IMG_MAX_FILE ((size_t)1 << 31)

void pl_image_free(pl_image *img)
{
    if (img) {
        free(img->pixels);
        memset(img, 0, sizeof *img);
    }
}

/* Width and height within the limits, and the pixel buffer for them. */
static pl_status new_pixels(const char *path, const char *what, unsigned long cols,
                            unsigned long rows, pl_image *img, pl_error *err)
{
    if (cols < 1 || rows < 1 || cols > IMG_MAX_SIDE || rows > IMG_MAX_SIDE ||
        (size_t)cols * rows > IMG_MAX_PIXELS)
        return pl_fail(err, PL_ERR_DIMS,
                       "%s: %s of %lu x %lu pixels: sides from 1 to %d and at most %zu pixels "
                       "are read",
                       path, what, cols, rows, IMG_MAX_SIDE, IMG_MAX_PIXELS);
    img->pixels = malloc((size_t)cols * rows);
    if (!img->pixels)
        return pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate %lu x %lu pixels", path, cols,
                       rows);
    img->cols = (int)cols;
    img->rows = (int)rows;
    return PL_OK;
}

/* ------------------------------------------------------------------ PNG */

typedef struct {
    const unsigned char *data;
    size_t len, at;
    char msg[256];
    char warning[128]; /* libpng says what is wrong in a warning before some errors */
} png_source;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_source *src = png_get_error_ptr(png);
    snprintf(src->msg, sizeof src->msg, src->warning[0] ? "%s (%s)" : "%s", msg, src->warning);
    png_longjmp(png, 1);
}

/* Kept for the error that may follow; the library does not print. */
static void png_on_warning(png_structp png, png_const_charp msg)
{
    png_source *src = png_get_error_ptr(png);
    snprintf(src->warning, sizeof src->warning, "%s", msg);
}

static void png_from_memory(png_structp png, png_bytep out, size_t n)
{
    png_source *src = png_get_io_ptr(png);
    if (n > src->len - src->at) {
        char m[96];
        snprintf(m, sizeof m, "truncated: the file ends at byte %zu", src->len);
        png_error(png, m);
    }
    memcpy(out, src->data + src->at, n);
    src->at += n;
}

static pl_status read_png(const char *path, const unsigned char *data, size_t len,
                          pl_image *img, pl_error *err)
{
    png_source src = {data, len, 0, "", ""};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error,
                                             png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return pl_fail(err, PL_ERR_NOMEM, "%s: out of memory starting libpng", path);
    }
    /* changed after setjmp, read after a longjmp: volatile */
    png_bytep *volatile rows = NULL;
    volatile pl_status rc = PL_OK;
    if (setjmp(png_jmpbuf(png))) {
        if (rc == PL_OK)
            rc = pl_fail(err, strstr(src.msg, "truncated") ? PL_ERR_TRUNCATED : PL_ERR_CORRUPT,
                         "%s: bad PNG: %s", path, src.msg);
        goto out;
    }
    png_set_read_fn(png, &src, png_from_memory);
    png_set_user_limits(png, IMG_MAX_SIDE, IMG_MAX_SIDE);
    png_read_info(png, info);
    png_uint_32 w, h;
    int depth, color, interlace;
    png_get_IHDR(png, info, &w, &h, &depth, &color, &interlace, NULL, NULL);
    if ((rc = new_pixels(path, "a PNG", w, h, img, err)))
        goto out;
    /* to 8-bit gray: palette to RGB, low gray depths expanded to 0..255,
     * 16 bits scaled (rounded), alpha dropped, colour to gray with libpng's
     * default weights (0.2126 R + 0.7152 G + 0.0722 B) */
    if (color == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16)
        png_set_scale_16(png);
    if (color & PNG_COLOR_MASK_ALPHA)
        png_set_strip_alpha(png);
    if (color & PNG_COLOR_MASK_COLOR)
        png_set_rgb_to_gray(png, PNG_ERROR_ACTION_NONE, PNG_RGB_TO_GRAY_DEFAULT,
                            PNG_RGB_TO_GRAY_DEFAULT);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != w || png_get_channels(png, info) != 1) {
        rc = pl_fail(err, PL_ERR_CORRUPT, "%s: this PNG (colour type %d, %d bits) does not "
                     "convert to 8-bit gray", path, color, depth);
        goto out;
    }
    if (!(rows = malloc(sizeof *rows * h))) {
        rc = pl_fail(err, PL_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    for (png_uint_32 r = 0; r < h; r++)
        rows[r] = img->pixels + (size_t)r * w;
    png_read_image(png, rows);
    png_read_end(png, NULL);
out:
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    if (rc)
        pl_image_free(img);
    return rc;
}

/* ------------------------------------------------------------------ PGM */

/* Skips whitespace and # comments (to the end of the line). */
static void pgm_skip(const unsigned char *d, size_t len, size_t *at)
{
    while (*at < len) {
        if (d[*at] == '#') {
            while (*at < len && d[*at] != '\n' && d[*at] != '\r')
                (*at)++;
        } else if (d[*at] == ' ' || d[*at] == '\t' || d[*at] == '\n' || d[*at] == '\r' ||
                   d[*at] == '\v' || d[*at] == '\f') {
            (*at)++;
        } else {
            return;
        }
    }
}

/* A decimal number of at most 9 digits at *at; -1 when there is none, -2
 * when it is longer. */
static long pgm_number(const unsigned char *d, size_t len, size_t *at)
{
    long v = 0;
    int digits = 0;
    while (*at < len && d[*at] >= '0' && d[*at] <= '9') {
        if (++digits > 9)
            return -2;
        v = v * 10 + (d[*at] - '0');
        (*at)++;
    }
    return digits ? v : -1;
}

static pl_status read_pgm(const char *path, const unsigned char *d, size_t len, pl_image *img,
                          pl_error *err)
{
    static const char *const field[] = {"width", "height", "maxval"};
    int text = d[1] == '2';
    size_t at = 2;
    long v[3];
    for (int k = 0; k < 3; k++) {
        size_t before = at;
        pgm_skip(d, len, &at);
        v[k] = at > before ? pgm_number(d, len, &at) : -1;
        if (v[k] < 0)
            return pl_fail(err, at >= len ? PL_ERR_TRUNCATED : PL_ERR_CORRUPT,
                           "%s: bad PGM header: %s %s", path, field[k],
                           at >= len ? "missing (the file ends)"
                           : v[k] == -2 ? "has too many digits"
                                        : "is not a number after whitespace");
    }
    if (v[2] < 1 || v[2] > 65535)
        return pl_fail(err, PL_ERR_CORRUPT, "%s: bad PGM header: maxval %ld, expected 1 to 65535",
                       path, v[2]);
    if (at >= len || !(d[at] == ' ' || d[at] == '\t' || d[at] == '\n' || d[at] == '\r'))
        return pl_fail(err, at >= len ? PL_ERR_TRUNCATED : PL_ERR_CORRUPT,
                       "%s: bad PGM header: no whitespace after maxval", path);
    at++;
    pl_status rc = new_pixels(path, "a PGM", (unsigned long)v[0], (unsigned long)v[1], img, err);
    if (rc)
        return rc;
    const long maxval = v[2];
    const size_t n = (size_t)v[0] * (size_t)v[1], bytes = maxval > 255 ? 2 : 1;
    if (!text && len - at < n * bytes) {
        rc = pl_fail(err, PL_ERR_TRUNCATED, "%s: truncated: %zu x %zu pixels of %zu byte%s need "
                     "%zu bytes after the header, the file has %zu",
                     path, (size_t)v[0], (size_t)v[1], bytes, bytes > 1 ? "s" : "", n * bytes,
                     len - at);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        long x;
        if (text) {
            size_t before = at;
            pgm_skip(d, len, &at);
            x = (at > before || i == 0) ? pgm_number(d, len, &at) : -1;
            if (x < 0) {
                rc = pl_fail(err, at >= len ? PL_ERR_TRUNCATED : PL_ERR_CORRUPT,
                             "%s: bad P2 PGM: pixel %zu of %zu is %s", path, i, n,
                             at >= len ? "missing (the file ends)" : "not a number");
                goto out;
            }
        } else {
            x = bytes == 2 ? (long)d[at] << 8 | d[at + 1] : d[at];
            at += bytes;
        }
        if (x > maxval) {
            rc = pl_fail(err, PL_ERR_CORRUPT, "%s: PGM pixel %zu (row %zu, column %zu) is %ld, "
                         "above maxval %ld",
                         path, i, i / (size_t)v[0], i % (size_t)v[0], x, maxval);
            goto out;
        }
        img->pixels[i] = (uint8_t)((x * 255 + maxval / 2) / maxval);
    }
    if (text)
        pgm_skip(d, len, &at);
    if (at != len)
        rc = pl_fail(err, PL_ERR_TRAILING, "%s: %zu bytes after the PGM image (one image per "
                     "file is read)",
                     path, len - at);
out:
    if (rc)
        pl_image_free(img);
    return rc;
}

/* ----------------------------------------------------------------- both */

pl_status pl_image_read(const char *path, pl_image *img, pl_error *err)
{
    memset(img, 0, sizeof *img);
    unsigned char *d;
    size_t len;
    pl_status rc = pl_read_file(path, "image", 1, IMG_MAX_FILE, &d, &len, err);
    if (rc)
        return rc;
    static const unsigned char png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len >= 8 && memcmp(d, png_magic, 8) == 0)
        rc = read_png(path, d, len, img, err);
    else if (len >= 2 && d[0] == 'P' && (d[1] == '5' || d[1] == '2'))
        rc = read_pgm(path, d, len, img, err);
    else if (len >= 2 && d[0] == 'P' && d[1] >= '1' && d[1] <= '7')
        rc = pl_fail(err, PL_ERR_MAGIC,
                     "%s: a Netpbm P%c image; only gray PGM (P5, P2) and PNG are read "
                     "(convert it, e.g. with pamtopnm or ppmtopgm)",
                     path, d[1]);
    else
        rc = pl_fail(err, PL_ERR_MAGIC,
                     "%s: not a PNG or PGM image (it starts with neither \\x89PNG nor P5/P2)",
                     path);
    free(d);
    return rc;
}
