/* The IDX reader and the data set loader: good files read the same raw
 * and gzipped; every malformed file gets its own specific error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

START_TEST(test_raw_and_gz_read_the_same)
{
    const char *dir = tu_dir;
    size_t len;
    unsigned char *img = tu_idx_images(5, 3, 4, NULL, &len);
    tu_write(tu_path(dir, "a-images"), img, len);
    tu_write_gz(tu_path(dir, "b-images.gz"), img, len);
    pl_idx a, b;
    pl_error err;
    ck_assert_int_eq(pl_idx_read(tu_path(dir, "a-images"), PL_IDX_IMAGES_MAGIC, &a, &err), PL_OK);
    /* NAME finds NAME.gz */
    ck_assert_int_eq(pl_idx_read(tu_path(dir, "b-images"), PL_IDX_IMAGES_MAGIC, &b, &err), PL_OK);
    ck_assert_uint_eq(a.n, 5);
    ck_assert_int_eq(a.rows, 3);
    ck_assert_int_eq(a.cols, 4);
    ck_assert_uint_eq(b.n, a.n);
    ck_assert_int_eq(b.rows, a.rows);
    ck_assert_int_eq(b.cols, a.cols);
    ck_assert_int_eq(memcmp(a.data, img + 16, 60), 0);
    ck_assert_int_eq(memcmp(a.data, b.data, 60), 0);
    pl_idx_free(&a);
    pl_idx_free(&b);
    free(img);

    unsigned char *lb = tu_idx_labels(5, NULL, &len);
    tu_write_gz(tu_path(dir, "l.gz"), lb, len);
    ck_assert_int_eq(pl_idx_read(tu_path(dir, "l.gz"), PL_IDX_LABELS_MAGIC, &a, &err), PL_OK);
    ck_assert_uint_eq(a.n, 5);
    ck_assert_int_eq(a.data[3], 3);
    pl_idx_free(&a);
    free(lb);
}
END_TEST

/* A file past the reader's first 16 MiB: every byte arrives (the buffer
 * grows once, copying what it holds), on a 2 MiB boundary (huge pages for
 * the batches' random reads: pl_alloc_data). */
START_TEST(test_large_file_grows_aligned)
{
    const uint32_t n = 24000, side = 28; /* 18.8 MB */
    const size_t payload = (size_t)n * side * side;
    uint8_t *px = malloc(payload);
    for (size_t i = 0; i < payload; i++)
        px[i] = (uint8_t)((i * 2654435761u) >> 24);
    size_t len;
    unsigned char *img = tu_idx_images(n, side, side, px, &len);
    tu_write(tu_path(tu_dir, "big-images"), img, len);
    pl_idx a;
    pl_error err;
    ck_assert_int_eq(pl_idx_read(tu_path(tu_dir, "big-images"), PL_IDX_IMAGES_MAGIC, &a, &err),
                     PL_OK);
    ck_assert_uint_eq(a.n, n);
    ck_assert_int_eq(memcmp(a.data, px, payload), 0);
    ck_assert_uint_eq((uintptr_t)a.data % ((uintptr_t)2 << 20), 0);
    pl_idx_free(&a);
    free(img);
    free(px);
}
END_TEST

/* One malformed file per row: how to make it, the status and a fragment
 * the message must contain. */
typedef struct {
    const char *name;
    int gz;              /* write it gzip-compressed */
    uint32_t magic, n, rows, cols;
    long payload_delta;  /* bytes of payload beyond (+) or short of (-) the header's */
    long header_keep;    /* > 0: keep only this many bytes of the whole file */
    uint32_t expect_magic;
    pl_status want;
    const char *fragment;
} bad_case;

static const bad_case BAD[] = {
    {"bad magic", 0, 0x12345678, 2, 2, 2, 0, 0, PL_IDX_IMAGES_MAGIC, PL_ERR_MAGIC,
     "expected 2051"},
    {"wrong dimension count", 0, 0x00000804, 2, 2, 2, 0, 0, PL_IDX_IMAGES_MAGIC, PL_ERR_DIMS,
     "expected 3 dimensions"},
    {"labels file as images", 0, PL_IDX_LABELS_MAGIC, 2, 0, 0, 0, 0, PL_IDX_IMAGES_MAGIC,
     PL_ERR_DIMS, "a labels file"},
    {"images file as labels", 0, PL_IDX_IMAGES_MAGIC, 2, 2, 2, 0, 0, PL_IDX_LABELS_MAGIC,
     PL_ERR_DIMS, "an images file"},
    {"truncated payload", 0, PL_IDX_IMAGES_MAGIC, 3, 4, 4, -5, 0, PL_IDX_IMAGES_MAGIC,
     PL_ERR_TRUNCATED, "the file has 59 bytes"},
    {"truncated payload, gzip", 1, PL_IDX_IMAGES_MAGIC, 3, 4, 4, -5, 0, PL_IDX_IMAGES_MAGIC,
     PL_ERR_TRUNCATED, "the data ends after 43"},
    {"truncated header", 0, PL_IDX_IMAGES_MAGIC, 3, 4, 4, 0, 10, PL_IDX_IMAGES_MAGIC,
     PL_ERR_TRUNCATED, "truncated header"},
    {"truncated magic", 0, PL_IDX_IMAGES_MAGIC, 3, 4, 4, 0, 3, PL_IDX_IMAGES_MAGIC,
     PL_ERR_TRUNCATED, "found 3 bytes"},
    {"signed-byte type", 0, 0x00000903, 2, 2, 2, 0, 0, PL_IDX_IMAGES_MAGIC, PL_ERR_MAGIC,
     "found 2307 (0x00000903)"},
    {"trailing bytes", 0, PL_IDX_IMAGES_MAGIC, 3, 4, 4, 7, 0, PL_IDX_IMAGES_MAGIC,
     PL_ERR_TRAILING, "7 trailing bytes: the header says 3 images (64 bytes in all), the file "
     "has 71"},
    {"trailing bytes, gzip", 1, PL_IDX_LABELS_MAGIC, 3, 0, 0, 2, 0, PL_IDX_LABELS_MAGIC,
     PL_ERR_TRAILING, "2 trailing bytes"},
    {"zero images", 0, PL_IDX_IMAGES_MAGIC, 0, 4, 4, 0, 0, PL_IDX_IMAGES_MAGIC, PL_ERR_DIMS,
     "says 0 images"},
    {"zero columns", 0, PL_IDX_IMAGES_MAGIC, 2, 4, 0, 0, 0, PL_IDX_IMAGES_MAGIC, PL_ERR_DIMS,
     "4 x 0"},
    {"rows beyond 65535", 0, PL_IDX_IMAGES_MAGIC, 1, 70000, 1, 0, 0, PL_IDX_IMAGES_MAGIC,
     PL_ERR_TOO_LARGE, "(sides up to 65535"},
    {"size overflows", 0, PL_IDX_IMAGES_MAGIC, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0, 0,
     PL_IDX_IMAGES_MAGIC, PL_ERR_TOO_LARGE, "beyond this program's limit"},
    {"claims more images than the file holds", 0, PL_IDX_IMAGES_MAGIC, 10000000u, 28, 28,
     0, 0, PL_IDX_IMAGES_MAGIC, PL_ERR_TRUNCATED, "the header says 10000000 images"},
    {"claims more images than the gzip holds", 1, PL_IDX_IMAGES_MAGIC, 10000000u, 28, 28,
     0, 0, PL_IDX_IMAGES_MAGIC, PL_ERR_TRUNCATED, "the data ends after"},
    {"claims more than the machine's memory", 1, PL_IDX_IMAGES_MAGIC, 100000000u, 280, 28,
     0, 0, PL_IDX_IMAGES_MAGIC, PL_ERR_TOO_LARGE, "more than this machine's memory"},
};

/* The message starts with the file's name. */
static void assert_names(const pl_error *err, const char *path)
{
    ck_assert_msg(strncmp(err->msg, path, strlen(path)) == 0, "message names no file %s: %s",
                  path, err->msg);
}

START_TEST(test_malformed_files)
{
    const bad_case *c = &BAD[_i];
    const char *dir = tu_dir;
    /* the payload actually written: what the header claims plus the case's
     * delta, or 100 bytes when the claim is huge */
    size_t hdr = (c->magic & 0xff) == 1 ? 8 : 16;
    double claimed = (double)c->n;
    if (hdr == 16)
        claimed *= (double)(c->rows ? c->rows : 1) * (double)(c->cols ? c->cols : 1);
    long long payload = claimed > 100000 ? 100 : (long long)claimed + c->payload_delta;
    size_t len = hdr + (size_t)payload;
    unsigned char *b = calloc(1, len + 16);
    put_be32(b, c->magic);
    put_be32(b + 4, c->n);
    if (hdr == 16) {
        put_be32(b + 8, c->rows);
        put_be32(b + 12, c->cols);
    }
    if (c->header_keep > 0)
        len = (size_t)c->header_keep;
    const char *path = tu_path(dir, c->gz ? "bad.gz" : "bad");
    if (c->gz)
        tu_write_gz(path, b, len);
    else
        tu_write(path, b, len);
    pl_idx out;
    pl_error err = {0};
    pl_status rc = pl_idx_read(path, c->expect_magic, &out, &err);
    printf("%-40s -> %s: %s\n", c->name, pl_status_name(rc), err.msg);
    ck_assert_msg(rc == c->want, "%s: expected %s, got %s (%s)", c->name,
                  pl_status_name(c->want), pl_status_name(rc), err.msg);
    ck_assert_int_eq(err.code, c->want);
    ck_assert_msg(strstr(err.msg, c->fragment) != NULL, "%s: message '%s' lacks '%s'",
                  c->name, err.msg, c->fragment);
    assert_names(&err, path);
    ck_assert_ptr_null(out.data);
    free(b);
}
END_TEST

START_TEST(test_missing_empty_dir_fifo_corrupt)
{
    const char *dir = tu_dir;
    pl_idx out;
    pl_error err = {0};
    const char *p = tu_path(dir, "nothing");
    ck_assert_int_eq(pl_idx_read(p, PL_IDX_IMAGES_MAGIC, &out, &err), PL_ERR_NOT_FOUND);
    assert_names(&err, p);
    ck_assert_ptr_nonnull(strstr(err.msg, "no such file (nor "));
    ck_assert_ptr_nonnull(strstr(err.msg, "nothing.gz)"));

    p = tu_path(dir, "f0");
    tu_write(p, "", 0);
    ck_assert_int_eq(pl_idx_read(p, PL_IDX_IMAGES_MAGIC, &out, &err), PL_ERR_EMPTY);
    assert_names(&err, p);
    ck_assert_ptr_nonnull(strstr(err.msg, "the file is empty"));

    p = tu_path(dir, "f1");
    mkdir(p, 0700);
    ck_assert_int_eq(pl_idx_read(p, PL_IDX_IMAGES_MAGIC, &out, &err), PL_ERR_NOT_FILE);
    assert_names(&err, p);
    ck_assert_ptr_nonnull(strstr(err.msg, "found a directory"));

    p = tu_path(dir, "f2");
    ck_assert_int_eq(mkfifo(p, 0600), 0);
    ck_assert_int_eq(pl_idx_read(p, PL_IDX_IMAGES_MAGIC, &out, &err), PL_ERR_NOT_FILE);
    assert_names(&err, p);
    ck_assert_ptr_nonnull(strstr(err.msg, "found a FIFO"));

    /* a gzip stream with damaged deflate data */
    size_t len;
    unsigned char *img = tu_idx_images(50, 10, 10, NULL, &len);
    p = tu_path(dir, "f3.gz");
    tu_write_gz(p, img, len);
    FILE *f = fopen(p, "r+b");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    for (long at = 20; at < size - 12; at += 7) {
        fseek(f, at, SEEK_SET);
        fputc(0x5a, f);
    }
    fclose(f);
    pl_status rc = pl_idx_read(p, PL_IDX_IMAGES_MAGIC, &out, &err);
    ck_assert_msg(rc == PL_ERR_CORRUPT, "got %s: %s", pl_status_name(rc), err.msg);
    assert_names(&err, p);
    ck_assert_ptr_nonnull(strstr(err.msg, "corrupt compressed stream"));
    free(img);
}
END_TEST

/* A gzip file cut inside its 8-byte trailer (CRC32 and length) holds the
 * whole payload, but nothing vouches for it: truncated. */
START_TEST(test_gzip_trailer_cut)
{
    const char *dir = tu_dir;
    size_t len;
    unsigned char *img = tu_idx_images(3, 4, 5, NULL, &len);
    const char *whole = tu_path(dir, "whole.gz");
    tu_write_gz(whole, img, len);
    static unsigned char gz[4096];
    FILE *f = fopen(whole, "rb");
    size_t n = fread(gz, 1, sizeof gz, f);
    fclose(f);
    pl_idx out;
    pl_error err = {0};
    ck_assert_int_eq(pl_idx_read(whole, PL_IDX_IMAGES_MAGIC, &out, &err), PL_OK);
    pl_idx_free(&out);
    const size_t cuts[] = {1, 4, 8};
    for (size_t k = 0; k < 3; k++) {
        const char *p = tu_path(dir, "cut.gz");
        tu_write(p, gz, n - cuts[k]);
        pl_status rc = pl_idx_read(p, PL_IDX_IMAGES_MAGIC, &out, &err);
        printf("gzip without the last %zu bytes -> %s: %s\n", cuts[k], pl_status_name(rc),
               err.msg);
        ck_assert_int_eq(rc, PL_ERR_TRUNCATED);
        assert_names(&err, p);
        ck_assert_ptr_nonnull(strstr(err.msg, "the gzip stream ends before its trailer"));
        ck_assert_ptr_null(out.data);
    }
    free(img);
}
END_TEST

static void write_pair(const char *dir, const char *prefix, uint32_t ni, uint32_t nl,
                       const uint8_t *labels)
{
    char p[4096];
    size_t len;
    unsigned char *b = tu_idx_images(ni, 4, 3, NULL, &len);
    snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte", dir, prefix);
    tu_write(p, b, len);
    free(b);
    b = tu_idx_labels(nl, labels, &len);
    snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    tu_write_gz(p, b, len);
    free(b);
}

START_TEST(test_dataset_checks)
{
    const char *dir = tu_dir;
    pl_dataset ds;
    pl_error err = {0};
    const uint8_t labels[6] = {0, 2, 1, 2, 0, 1};
    write_pair(dir, "train", 6, 6, labels);
    ck_assert_int_eq(pl_dataset_load(&ds, dir, "train", 0, &err), PL_OK);
    ck_assert_uint_eq(ds.n, 6);
    ck_assert_int_eq(ds.T, 4);
    ck_assert_int_eq(ds.D, 3);
    ck_assert_int_eq(ds.classes, 3); /* largest label + 1 */
    pl_dataset v = pl_dataset_view(&ds, 2, 3);
    ck_assert_uint_eq(v.n, 3);
    ck_assert_int_eq(v.labels[0], 1);
    ck_assert_ptr_eq(v.images, ds.images + 2 * 12);
    pl_dataset_free(&ds);
    /* an explicit class count below a label */
    ck_assert_int_eq(pl_dataset_load(&ds, dir, "train", 2, &err), PL_ERR_LABEL);
    ck_assert_ptr_nonnull(strstr(err.msg, "label 2 at item 1"));
    ck_assert_ptr_nonnull(strstr(err.msg, "below 2"));
    /* counts that disagree */
    write_pair(dir, "t10k", 6, 5, labels);
    ck_assert_int_eq(pl_dataset_load(&ds, dir, "t10k", 0, &err), PL_ERR_MISMATCH);
    ck_assert_ptr_nonnull(strstr(err.msg, "6 images but"));
    ck_assert_ptr_nonnull(strstr(err.msg, "5 labels"));
}
END_TEST

/* Labels of one class are refused when the class count comes from them,
 * naming the labels file and what is wrong with them; an explicit class
 * count accepts them. */
START_TEST(test_one_class_labels)
{
    const char *dir = tu_dir;
    pl_dataset ds;
    pl_error err = {0};
    const uint8_t zeros[6] = {0}, threes[6] = {3, 3, 3, 3, 3, 3};
    char want[4200];
    write_pair(dir, "train", 6, 6, zeros);
    ck_assert_int_eq(pl_dataset_load(&ds, dir, "train", 0, &err), PL_ERR_LABEL);
    snprintf(want, sizeof want, "%s/train-labels-idx1-ubyte: all 6 labels are 0: a classifier "
             "needs at least two classes", dir);
    ck_assert_msg(strstr(err.msg, want) != NULL, "%s", err.msg);
    write_pair(dir, "train", 6, 6, threes);
    ck_assert_int_eq(pl_dataset_load(&ds, dir, "train", 0, &err), PL_ERR_LABEL);
    ck_assert_ptr_nonnull(strstr(err.msg, "all 6 labels are 3"));
    ck_assert_int_eq(pl_dataset_load(&ds, dir, "train", 4, &err), PL_OK);
    ck_assert_int_eq(ds.classes, 4);
    pl_dataset_free(&ds);
}
END_TEST

/* The validation split: the first val items, and the training view after
 * them, disjoint and together the whole set. */
START_TEST(test_validation_split)
{
    const char *dir = tu_dir;
    pl_dataset ds, tr, va;
    pl_error err = {0};
    const uint8_t labels[6] = {0, 2, 1, 2, 0, 1};
    write_pair(dir, "train", 6, 6, labels);
    ck_assert_int_eq(pl_dataset_load(&ds, dir, "train", 0, &err), PL_OK);
    const size_t item = 4 * 3;
    for (size_t val = 0; val < 6; val++) {
        ck_assert_int_eq(pl_dataset_split(&ds, val, &tr, &va, &err), PL_OK);
        ck_assert_uint_eq(va.n, val);
        ck_assert_uint_eq(tr.n, 6 - val);
        ck_assert_ptr_eq(va.images, ds.images);
        ck_assert_ptr_eq(va.labels, ds.labels);
        ck_assert_ptr_eq(tr.images, ds.images + val * item);
        ck_assert_ptr_eq(tr.labels, ds.labels + val);
        /* disjoint: the validation bytes end where the training bytes start */
        ck_assert(va.images + va.n * item <= tr.images);
        ck_assert_int_eq(tr.T, 4);
        ck_assert_int_eq(tr.D, 3);
        ck_assert_int_eq(tr.classes, 3);
        ck_assert_ptr_null(tr.owned_images);
        ck_assert_ptr_null(va.owned_labels);
    }
    ck_assert_int_eq(pl_dataset_split(&ds, 6, &tr, &va, &err), PL_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "holding out 6 images for validation leaves none"));
    pl_dataset_free(&ds);
}
END_TEST

/* Images and labels come in pairs: one without the other (raw or .gz) is
 * refused, naming the missing file; neither is "not found" (the caller
 * may go on without the set); both load. */
static const struct {
    const char *name;
    int images, labels; /* 0 absent, 1 raw, 2 .gz */
    pl_status want;
    const char *missing; /* the file the message names first */
} PAIRS[] = {
    {"both raw", 1, 1, PL_OK, NULL},
    {"images raw, labels .gz", 1, 2, PL_OK, NULL},
    {"images .gz, labels raw", 2, 1, PL_OK, NULL},
    {"images without labels", 1, 0, PL_ERR_MISMATCH, "labels-idx1-ubyte"},
    {"images .gz without labels", 2, 0, PL_ERR_MISMATCH, "labels-idx1-ubyte"},
    {"labels without images", 0, 1, PL_ERR_MISMATCH, "images-idx3-ubyte"},
    {"labels .gz without images", 0, 2, PL_ERR_MISMATCH, "images-idx3-ubyte"},
    {"neither", 0, 0, PL_ERR_NOT_FOUND, "images-idx3-ubyte"},
};

START_TEST(test_pairs)
{
    const char *prefix = _i % 2 ? "t10k" : "train";
    const int k = _i / 2;
    const char *dir = tu_dir;
    const uint8_t labels[6] = {0, 2, 1, 2, 0, 1};
    char ip[4096], lp[4096];
    size_t len;
    unsigned char *b = tu_idx_images(6, 4, 3, NULL, &len);
    snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte%s", dir, prefix, PAIRS[k].images == 2 ? ".gz" : "");
    if (PAIRS[k].images == 1)
        tu_write(ip, b, len);
    else if (PAIRS[k].images == 2)
        tu_write_gz(ip, b, len);
    free(b);
    b = tu_idx_labels(6, labels, &len);
    snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte%s", dir, prefix, PAIRS[k].labels == 2 ? ".gz" : "");
    if (PAIRS[k].labels == 1)
        tu_write(lp, b, len);
    else if (PAIRS[k].labels == 2)
        tu_write_gz(lp, b, len);
    free(b);
    pl_dataset ds;
    pl_error err = {0};
    pl_status rc = pl_dataset_load(&ds, dir, prefix, 0, &err);
    printf("%s, %s -> %s: %s\n", prefix, PAIRS[k].name, pl_status_name(rc), rc ? err.msg : "");
    ck_assert_msg(rc == PAIRS[k].want, "%s: %s", PAIRS[k].name, pl_status_name(rc));
    if (rc == PL_OK) {
        ck_assert_uint_eq(ds.n, 6);
        ck_assert_int_eq(ds.labels[1], 2);
        pl_dataset_free(&ds);
    } else {
        char want[4200];
        snprintf(want, sizeof want, "%s/%s-%s: no such file", dir, prefix, PAIRS[k].missing);
        ck_assert_msg(strncmp(err.msg, want, strlen(want)) == 0, "%s: '%s' does not start with "
                      "'%s'", PAIRS[k].name, err.msg, want);
        ck_assert_ptr_null(ds.images);
    }
    if (rc == PL_ERR_MISMATCH) { /* and names the one that is there */
        ck_assert_msg(strstr(err.msg, PAIRS[k].images ? ip : lp) != NULL, "%s", err.msg);
        ck_assert_ptr_nonnull(strstr(err.msg, "a set needs both its images and its labels"));
    }
}
END_TEST

/* An images file alone, for classifying: no labels. */
START_TEST(test_images_alone)
{
    const char *dir = tu_dir;
    const char *path = tu_path(dir, "x-images.gz");
    uint8_t px[5 * 4 * 3];
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)(i * 7);
    size_t len;
    unsigned char *b = tu_idx_images(5, 4, 3, px, &len);
    tu_write_gz(path, b, len);
    pl_dataset ds;
    pl_error err = {0};
    ck_assert_int_eq(pl_dataset_load_images(&ds, path, &err), PL_OK);
    ck_assert_uint_eq(ds.n, 5);
    ck_assert_int_eq(ds.T, 4);
    ck_assert_int_eq(ds.D, 3);
    ck_assert_ptr_null(ds.labels);
    ck_assert_int_eq(ds.classes, 0);
    ck_assert_int_eq(memcmp(ds.images, px, sizeof px), 0);
    pl_dataset_free(&ds);
    /* a labels file is no images file */
    unsigned char *l = tu_idx_labels(5, px, &len);
    tu_write(path, l, len);
    ck_assert_int_eq(pl_dataset_load_images(&ds, path, &err), PL_ERR_DIMS);
    ck_assert_msg(strncmp(err.msg, path, strlen(path)) == 0, "%s", err.msg);
    ck_assert_ptr_nonnull(strstr(err.msg, ": a labels file"));
    free(l);
    free(b);
}
END_TEST

Suite *idx_suite(void)
{
    Suite *s = suite_create("idx");
    TCase *tc = tu_tcase_with_dir("reader");
    tcase_add_test(tc, test_raw_and_gz_read_the_same);
    tcase_add_test(tc, test_large_file_grows_aligned);
    tcase_add_loop_test(tc, test_malformed_files, 0, (int)(sizeof BAD / sizeof *BAD));
    tcase_add_test(tc, test_missing_empty_dir_fifo_corrupt);
    tcase_add_test(tc, test_gzip_trailer_cut);
    tcase_add_test(tc, test_dataset_checks);
    tcase_add_test(tc, test_one_class_labels);
    tcase_add_test(tc, test_validation_split);
    tcase_add_loop_test(tc, test_pairs, 0, 2 * (int)(sizeof PAIRS / sizeof *PAIRS));
    tcase_add_test(tc, test_images_alone);
    suite_add_tcase(s, tc);
    return s;
}
