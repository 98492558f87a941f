/* Images for predict: PNG of every colour type and depth (written here with
 * libpng) and PGM (P5, P2, 8 and 16 bits) come back as the expected 8-bit
 * gray pixels; each malformed file is refused with its own error, naming
 * the file. */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "testutil.h"

static void expect_pixels(const char *path, int rows, int cols, const uint8_t *want)
{
    pl_image img;
    pl_error err = {0};
    pl_status rc = pl_image_read(path, &img, &err);
    ck_assert_msg(rc == PL_OK, "%s: %s", path, err.msg);
    ck_assert_int_eq(img.rows, rows);
    ck_assert_int_eq(img.cols, cols);
    for (int i = 0; i < rows * cols; i++)
        ck_assert_msg(img.pixels[i] == want[i], "%s: pixel %d is %d, expected %d", path, i,
                      img.pixels[i], want[i]);
    pl_image_free(&img);
    ck_assert_ptr_null(img.pixels);
}

START_TEST(test_png_kinds)
{
    const char *dir = tu_dir;
    const char *p = tu_path(dir, "a.png");
    /* 8-bit gray, 3 x 2 */
    const uint8_t g8[] = {0, 7, 255, 128, 1, 254};
    tu_write_png(p, 3, 2, PNG_COLOR_TYPE_GRAY, 8, 0, g8, 3, NULL, 0);
    expect_pixels(p, 2, 3, g8);
    /* 1-bit gray: 1 -> 255 */
    const uint8_t g1[] = {0xA0, 0x40}; /* rows 1010 and 0100 */
    tu_write_png(p, 4, 2, PNG_COLOR_TYPE_GRAY, 1, 0, g1, 1, NULL, 0);
    expect_pixels(p, 2, 4, (const uint8_t[]){255, 0, 255, 0, 0, 255, 0, 0});
    /* 2-bit and 4-bit gray: scaled to 0..255 */
    const uint8_t g2[] = {0x1B}; /* 0 1 2 3 */
    tu_write_png(p, 4, 1, PNG_COLOR_TYPE_GRAY, 2, 0, g2, 1, NULL, 0);
    expect_pixels(p, 1, 4, (const uint8_t[]){0, 85, 170, 255});
    const uint8_t g4[] = {0x0F, 0x83};
    tu_write_png(p, 4, 1, PNG_COLOR_TYPE_GRAY, 4, 0, g4, 2, NULL, 0);
    expect_pixels(p, 1, 4, (const uint8_t[]){0, 255, 136, 51});
    /* 16-bit gray, big-endian samples: rounded to 8 bits */
    const uint8_t g16[] = {0x00, 0x00, 0xFF, 0xFF, 0x80, 0x00, 0x01, 0x01, 0x7F, 0x7F};
    tu_write_png(p, 5, 1, PNG_COLOR_TYPE_GRAY, 16, 0, g16, 10, NULL, 0);
    expect_pixels(p, 1, 5, (const uint8_t[]){0, 255, 128, 1, 127});
    /* RGB: gray pixels stay, colours weighted 0.2126, 0.7152, 0.0722 */
    const uint8_t rgb[] = {9, 9, 9, 255, 0, 0, 0, 255, 0, 0, 0, 255, 200, 200, 200};
    tu_write_png(p, 5, 1, PNG_COLOR_TYPE_RGB, 8, 0, rgb, 15, NULL, 0);
    pl_image img;
    pl_error err = {0};
    ck_assert_int_eq(pl_image_read(p, &img, &err), PL_OK);
    const int want_rgb[] = {9, 54, 182, 18, 200};
    for (int i = 0; i < 5; i++)
        ck_assert_msg(abs(img.pixels[i] - want_rgb[i]) <= 1, "RGB pixel %d: %d, expected %d", i,
                      img.pixels[i], want_rgb[i]);
    pl_image_free(&img);
    /* RGBA and gray + alpha: alpha dropped */
    const uint8_t rgba[] = {10, 10, 10, 0, 250, 250, 250, 255};
    tu_write_png(p, 2, 1, PNG_COLOR_TYPE_RGBA, 8, 0, rgba, 8, NULL, 0);
    expect_pixels(p, 1, 2, (const uint8_t[]){10, 250});
    const uint8_t ga[] = {33, 0, 44, 128, 55, 255};
    tu_write_png(p, 3, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0, ga, 6, NULL, 0);
    expect_pixels(p, 1, 3, (const uint8_t[]){33, 44, 55});
    /* 16-bit RGB */
    const uint8_t rgb16[] = {0x12, 0x34, 0x12, 0x34, 0x12, 0x34};
    tu_write_png(p, 1, 1, PNG_COLOR_TYPE_RGB, 16, 0, rgb16, 6, NULL, 0);
    expect_pixels(p, 1, 1, (const uint8_t[]){0x12});
    /* palette, 8 and 4 bits: through the palette's gray entries */
    const png_color pal[] = {{0, 0, 0}, {100, 100, 100}, {255, 255, 255}};
    const uint8_t idx8[] = {2, 1, 0, 1};
    tu_write_png(p, 2, 2, PNG_COLOR_TYPE_PALETTE, 8, 0, idx8, 2, pal, 3);
    expect_pixels(p, 2, 2, (const uint8_t[]){255, 100, 0, 100});
    const uint8_t idx4[] = {0x21, 0x00};
    tu_write_png(p, 3, 1, PNG_COLOR_TYPE_PALETTE, 4, 0, idx4, 2, pal, 3);
    expect_pixels(p, 1, 3, (const uint8_t[]){255, 100, 0});
    /* interlaced (Adam7), 9 x 7 */
    uint8_t il[63];
    for (int i = 0; i < 63; i++)
        il[i] = (uint8_t)(i * 4);
    tu_write_png(p, 9, 7, PNG_COLOR_TYPE_GRAY, 8, 1, il, 9, NULL, 0);
    expect_pixels(p, 7, 9, il);
}
END_TEST

START_TEST(test_pgm_kinds)
{
    const char *dir = tu_dir;
    const char *p = tu_path(dir, "a.pgm");
    /* P5 8 bits, with comments and CRLF in the header */
    const char p5[] = "P5\r\n# a comment\n3 # another\n2\n255\n\x00\x07\xff\x80\x01\xfe";
    tu_write(p, p5, sizeof p5 - 1);
    expect_pixels(p, 2, 3, (const uint8_t[]){0, 7, 255, 128, 1, 254});
    /* P5 16 bits (maxval 65535), big-endian */
    const char p16[] = "P5 4 1 65535\n\x00\x00\xff\xff\x80\x00\x01\x01";
    tu_write(p, p16, sizeof p16 - 1);
    expect_pixels(p, 1, 4, (const uint8_t[]){0, 255, 128, 1});
    /* P5 maxval 1 and maxval 1000 (two bytes per pixel) */
    const char p1[] = "P5 3 1 1\n\x00\x01\x00";
    tu_write(p, p1, sizeof p1 - 1);
    expect_pixels(p, 1, 3, (const uint8_t[]){0, 255, 0});
    const char pk[] = "P5 2 1 1000\n\x03\xe8\x01\xf4";
    tu_write(p, pk, sizeof pk - 1);
    expect_pixels(p, 1, 2, (const uint8_t[]){255, 128});
    /* P2 text, maxval 15, free spacing and a comment between numbers */
    const char p2[] = "P2\n4 2\n15\n0 15 5\n# c\n 10\n1 2   3 4\n";
    tu_write(p, p2, sizeof p2 - 1);
    expect_pixels(p, 2, 4, (const uint8_t[]){0, 255, 85, 170, 17, 34, 51, 68});
    /* P2 without a final newline */
    const char p2b[] = "P2 2 1 255 9 200";
    tu_write(p, p2b, sizeof p2b - 1);
    expect_pixels(p, 1, 2, (const uint8_t[]){9, 200});
}
END_TEST

/* A valid 4 x 3 8-bit gray PNG in memory. */
static unsigned char *good_png(const char *dir, size_t *len)
{
    const char *p = tu_path(dir, "good.png");
    uint8_t px[12];
    for (int i = 0; i < 12; i++)
        px[i] = (uint8_t)(i * 20);
    tu_write_png(p, 4, 3, PNG_COLOR_TYPE_GRAY, 8, 0, px, 4, NULL, 0);
    return tu_read_all(p, len);
}

/* IHDR sits at bytes 8..32: length, "IHDR", 13 bytes of data, CRC. */
static void fix_ihdr_crc(unsigned char *b)
{
    tu_put_be32(b + 29, (uint32_t)crc32(0, b + 12, 17));
}

typedef enum { PNG_CUT, PNG_WIDTH, PNG_HEIGHT, PNG_SIDES, PNG_DEPTH, PNG_CRC, PNG_IDAT, PNG_NONE } png_edit;

typedef struct {
    const char *name;
    png_edit edit; /* on the good PNG; PNG_NONE: bytes below */
    long value;
    const char *bytes;
    size_t len;
    pl_status code;
    const char *fragment;
} image_case;

#define RAW(s) PNG_NONE, 0, s, sizeof s - 1

static const image_case BAD[] = {
    {"neither PNG nor PGM", RAW("hello, world"), PL_ERR_MAGIC, "not a PNG or PGM image"},
    {"a JPEG", RAW("\xff\xd8\xff\xe0\x00\x10JFIF"), PL_ERR_MAGIC, "not a PNG or PGM image"},
    {"a colour PPM", RAW("P6 1 1 255\n\x01\x02\x03"), PL_ERR_MAGIC,
     "a Netpbm P6 image; only gray PGM (P5, P2) and PNG are read"},
    {"a bitmap PBM", RAW("P1 1 1 1"), PL_ERR_MAGIC, "a Netpbm P1 image"},
    {"PNG signature alone", PNG_CUT, 8, NULL, 0, PL_ERR_TRUNCATED,
     "bad PNG: truncated: the file ends at byte 8"},
    {"PNG cut in the image data", PNG_CUT, -20, NULL, 0, PL_ERR_TRUNCATED,
     "bad PNG: truncated"},
    {"PNG with a damaged header CRC", PNG_CRC, 0, NULL, 0, PL_ERR_CORRUPT, "bad PNG: IHDR: CRC error"},
    {"PNG of width 0", PNG_WIDTH, 0, NULL, 0, PL_ERR_CORRUPT, "bad PNG: Invalid IHDR data (Image width is zero in IHDR)"},
    {"PNG of height 0", PNG_HEIGHT, 0, NULL, 0, PL_ERR_CORRUPT, "bad PNG: Invalid IHDR data (Image height is zero in IHDR)"},
    {"PNG wider than 65535", PNG_WIDTH, 70000, NULL, 0, PL_ERR_CORRUPT,
     "bad PNG: Invalid IHDR data (Image width exceeds user limit in IHDR)"},
    {"PNG of 2^31 rows", PNG_HEIGHT, 0x80000000L, NULL, 0, PL_ERR_CORRUPT,
     "bad PNG: PNG unsigned integer out of range"},
    {"PNG of 30000 x 30000", PNG_SIDES, 30000, NULL, 0, PL_ERR_DIMS,
     "a PNG of 30000 x 30000 pixels: sides from 1 to 65535 and at most 268435456 pixels"},
    {"PNG of 2 x 2 with 4 x 3 of data", PNG_SIDES, 2, NULL, 0, PL_ERR_CORRUPT, "bad PNG: "},
    {"PNG of bit depth 3", PNG_DEPTH, 3, NULL, 0, PL_ERR_CORRUPT, "bad PNG: Invalid IHDR data"},
    {"PNG with damaged image data", PNG_IDAT, 0, NULL, 0, PL_ERR_CORRUPT, "bad PNG: "},
    {"PGM magic alone", RAW("P5"), PL_ERR_TRUNCATED, "bad PGM header: width missing (the file ends)"},
    {"PGM without height", RAW("P5 3\n"), PL_ERR_TRUNCATED, "height missing"},
    {"PGM height not a number", RAW("P5 3 x 255\n"), PL_ERR_CORRUPT,
     "bad PGM header: height is not a number after whitespace"},
    {"PGM glued header", RAW("P53 2 255\n"), PL_ERR_CORRUPT, "width is not a number after whitespace"},
    {"PGM negative width", RAW("P5 -3 2 255\n"), PL_ERR_CORRUPT, "width is not a number"},
    {"PGM width with 10 digits", RAW("P5 1234567890 2 255\n"), PL_ERR_CORRUPT,
     "width has too many digits"},
    {"PGM maxval 0", RAW("P5 3 2 0\n"), PL_ERR_CORRUPT, "maxval 0, expected 1 to 65535"},
    {"PGM maxval 65536", RAW("P5 3 2 65536\n"), PL_ERR_CORRUPT, "maxval 65536, expected 1 to 65535"},
    {"PGM width 0", RAW("P5 0 2 255\n"), PL_ERR_DIMS, "a PGM of 0 x 2 pixels"},
    {"PGM width 70000", RAW("P5 70000 1 255\n"), PL_ERR_DIMS, "a PGM of 70000 x 1 pixels"},
    {"PGM of 2^30 pixels", RAW("P5 32768 32768 255\n"), PL_ERR_DIMS,
     "a PGM of 32768 x 32768 pixels"},
    {"PGM header ends at maxval", RAW("P5 3 2 255"), PL_ERR_TRUNCATED,
     "no whitespace after maxval"},
    {"PGM comment glued to maxval", RAW("P5 1 1 255#x\n\x01"), PL_ERR_CORRUPT,
     "no whitespace after maxval"},
    {"P5 short of pixels", RAW("P5 3 2 255\n\x01\x02\x03\x04\x05"), PL_ERR_TRUNCATED,
     "truncated: 3 x 2 pixels of 1 byte need 6 bytes after the header, the file has 5"},
    {"P5 16 bits short", RAW("P5 2 1 65535\n\x01\x02\x03"), PL_ERR_TRUNCATED,
     "of 2 bytes need 4 bytes"},
    {"P5 with a byte too many", RAW("P5 1 1 255\n\x01\x02"), PL_ERR_TRAILING,
     "1 bytes after the PGM image"},
    {"P5 pixel above maxval", RAW("P5 2 1 100\n\x05\x65"), PL_ERR_CORRUPT,
     "PGM pixel 1 (row 0, column 1) is 101, above maxval 100"},
    {"P5 16-bit pixel above maxval", RAW("P5 1 1 1000\n\x03\xe9"), PL_ERR_CORRUPT,
     "is 1001, above maxval 1000"},
    {"P2 short of pixels", RAW("P2 2 2 255\n1 2 3\n"), PL_ERR_TRUNCATED,
     "bad P2 PGM: pixel 3 of 4 is missing"},
    {"P2 with a word", RAW("P2 2 1 255\n1 two\n"), PL_ERR_CORRUPT,
     "bad P2 PGM: pixel 1 of 2 is not a number"},
    {"P2 glued numbers", RAW("P2 2 1 255\n1,2\n"), PL_ERR_CORRUPT, "pixel 1 of 2 is not a number"},
    {"P2 pixel above maxval", RAW("P2 2 1 15\n1 16\n"), PL_ERR_CORRUPT, "is 16, above maxval 15"},
    {"P2 a number too many", RAW("P2 1 1 255\n1 2\n"), PL_ERR_TRAILING, "after the PGM image"},
};

START_TEST(test_bad_images)
{
    const image_case *c = &BAD[_i];
    const char *dir = tu_dir;
    const char *path = tu_path(dir, "hostile-image");
    size_t len;
    unsigned char *b;
    if (c->edit == PNG_NONE) {
        len = c->len;
        b = malloc(len);
        memcpy(b, c->bytes, len);
    } else {
        b = good_png(dir, &len);
        switch (c->edit) {
        case PNG_CUT: len = c->value > 0 ? (size_t)c->value : len - (size_t)-c->value; break;
        case PNG_WIDTH: tu_put_be32(b + 16, (uint32_t)c->value); fix_ihdr_crc(b); break;
        case PNG_HEIGHT: tu_put_be32(b + 20, (uint32_t)c->value); fix_ihdr_crc(b); break;
        case PNG_SIDES:
            tu_put_be32(b + 16, (uint32_t)c->value);
            tu_put_be32(b + 20, (uint32_t)c->value);
            fix_ihdr_crc(b);
            break;
        case PNG_DEPTH: b[24] = (unsigned char)c->value; fix_ihdr_crc(b); break;
        case PNG_CRC: b[29] ^= 0x55; break;
        case PNG_IDAT: { /* the zlib stream inside IDAT, after its 2-byte header */
            unsigned char *idat = memmem(b, len, "IDAT", 4);
            ck_assert_ptr_nonnull(idat);
            uint32_t n = (uint32_t)idat[-4] << 24 | (uint32_t)idat[-3] << 16 |
                         (uint32_t)idat[-2] << 8 | idat[-1];
            for (uint32_t k = 2; k < n; k++)
                idat[4 + k] ^= 0xA5;
            tu_put_be32(idat + 4 + n, (uint32_t)crc32(0, idat, 4 + n));
            break;
        }
        case PNG_NONE: break;
        }
    }
    tu_write(path, b, len);
    pl_image img = {7, 7, (uint8_t *)b};
    pl_error err = {0};
    pl_status rc = pl_image_read(path, &img, &err);
    tu_assert_refused(c->name, path, rc, &err, c->code, c->fragment);
    ck_assert_ptr_null(img.pixels);
    free(b);
}
END_TEST

START_TEST(test_not_an_image_file)
{
    const char *dir = tu_dir;
    pl_image img;
    pl_error err = {0};
    ck_assert_int_eq(pl_image_read(tu_path(dir, "none.png"), &img, &err), PL_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "none.png: cannot open the image"));
    ck_assert_int_eq(pl_image_read(dir, &img, &err), PL_ERR_NOT_FILE);
    tu_write(tu_path(dir, "empty.pgm"), "", 0);
    ck_assert_int_eq(pl_image_read(tu_path(dir, "empty.pgm"), &img, &err), PL_ERR_EMPTY);
    ck_assert_ptr_nonnull(strstr(err.msg, "empty.pgm: the image file is empty"));
}
END_TEST

Suite *image_suite(void)
{
    Suite *s = suite_create("image");
    TCase *tc = tu_tcase_with_dir("image");
    tcase_add_test(tc, test_png_kinds);
    tcase_add_test(tc, test_pgm_kinds);
    tcase_add_loop_test(tc, test_bad_images, 0, (int)(sizeof BAD / sizeof *BAD));
    tcase_add_test(tc, test_not_an_image_file);
    suite_add_tcase(s, tc);
    return s;
}
