/* The series readers (src/series.h): .npy of every version and dtype
 * written byte by byte, UCR .tsv and UEA .ts text, variable lengths, one
 * class mapping for a training set and its test sets, the mapped and the
 * copied .npy alike; every hostile file refused with its own status and a
 * message that names it, leaving nothing behind. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "series.h"
#include "testutil.h"

/* ---- .npy files made by hand */

/* A .npy image: the preamble of version ver, dict padded with spaces and
 * '\n' so that preamble + header is a multiple of 64 bytes, then data. */
static unsigned char *npy_image(int ver, const char *dict, const void *data, size_t data_len,
                                size_t *len)
{
    size_t fixed = ver == 1 ? 10 : 12, d = strlen(dict);
    size_t total = (fixed + d + 1 + 63) / 64 * 64, hlen = total - fixed;
    unsigned char *b = malloc(total + data_len + 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)ver;
    b[7] = 0;
    for (size_t k = 0; k < fixed - 8; k++)
        b[8 + k] = (unsigned char)(hlen >> (8 * k));
    memset(b + fixed, ' ', hlen);
    memcpy(b + fixed, dict, d);
    b[total - 1] = '\n';
    if (data_len)
        memcpy(b + total, data, data_len);
    *len = total + data_len;
    return b;
}

static void write_npy(const char *path, int ver, const char *descr, const char *shape,
                      const void *data, size_t data_len)
{
    char dict[256];
    snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
             descr, shape);
    size_t len;
    unsigned char *b = npy_image(ver, dict, data, data_len, &len);
    tu_write(path, b, len);
    free(b);
}

/* Labels (n) as little-endian int64. */
static void write_labels(const char *path, const int64_t *labels, size_t n)
{
    char shape[32];
    snprintf(shape, sizeof shape, "(%zu,)", n);
    write_npy(path, 1, "<i8", shape, labels, n * 8);
}

/* Item k of a dtype holding value v (small integers: exact in every type). */
static void put_item(unsigned char *p, const char *descr, double v)
{
    char kind = descr[1];
    int size = descr[2] - '0';
    if (kind == 'f' && size == 4) {
        float x = (float)v;
        memcpy(p, &x, 4);
    } else if (kind == 'f') {
        memcpy(p, &v, 8);
    } else {
        int64_t x = (int64_t)v; /* two's complement: the low bytes are the narrower value */
        memcpy(p, &x, (size_t)size);
    }
}

static const char *const DTYPES[] = {"<f4", "<f8", "|u1", "|i1", "<i2", "<i4",
                                     "<i8", "<u2", "<u4", "<u8"};
#define NDTYPES (int)(sizeof DTYPES / sizeof *DTYPES)

static void assert_empty(const pl_series *s)
{
    ck_assert_ptr_null(s->values);
    ck_assert_ptr_null(s->labels);
    ck_assert_ptr_null(s->lengths);
    ck_assert_ptr_null(s->class_names);
    ck_assert_uint_eq(s->n, 0);
}

/* Every version x dtype: (3, 4, 2) values v = k - 5 (k, for unsigned
 * types) read back exactly, labels of three classes. */
START_TEST(test_npy_versions_and_dtypes)
{
    const char *descr = DTYPES[_i % NDTYPES];
    int ver = 1 + _i / NDTYPES, size = descr[2] - '0', sign = descr[1] != 'u';
    unsigned char data[24 * 8];
    for (int k = 0; k < 24; k++)
        put_item(data + k * size, descr, k - 5 * sign);
    const char *vp = tu_path(tu_dir, "v.npy"), *lp = tu_path(tu_dir, "l.npy");
    write_npy(vp, ver, descr, "(3, 4, 2)", data, 24 * (size_t)size);
    const int64_t labels[3] = {2, 0, 1};
    write_labels(lp, labels, 3);
    pl_series s;
    pl_error err = {0};
    pl_status rc = pl_npy_read_series(vp, lp, NULL, NULL, PL_NPY_COPY, &s, &err);
    ck_assert_msg(rc == PL_OK, "%s v%d: %s", descr, ver, err.msg);
    ck_assert_uint_eq(s.n, 3);
    ck_assert_int_eq(s.T, 4);
    ck_assert_int_eq(s.D, 2);
    ck_assert_int_eq(s.classes, 3);
    ck_assert_ptr_null(s.class_names);
    for (int k = 0; k < 24; k++)
        ck_assert_msg(s.values[k] == (float)(k - 5 * sign), "%s: item %d", descr, k);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(s.labels[i], labels[i]);
        ck_assert_int_eq(s.lengths[i], 4);
    }
    pl_series_free(&s);
    assert_empty(&s);
}
END_TEST

/* (N, T) is D = 1; labels and lengths in other integer types; no labels
 * file: labels NULL. */
START_TEST(test_npy_two_dims_and_int_files)
{
    const char *vp = tu_path(tu_dir, "v.npy"), *lp = tu_path(tu_dir, "l.npy"),
               *np = tu_path(tu_dir, "n.npy");
    const double vals[6] = {1.5, -2, 3, 4, 5e10, -6};
    write_npy(vp, 2, "<f8", "(2, 3)", vals, sizeof vals);
    const uint8_t lab[2] = {1, 0};
    write_npy(lp, 3, "|u1", "(2,)", lab, 2);
    const int16_t len[2] = {3, 2};
    write_npy(np, 1, "<i2", "(2,)", len, 4);
    pl_series s;
    pl_error err = {0};
    ck_assert_int_eq(pl_npy_read_series(vp, lp, np, NULL, PL_NPY_AUTO, &s, &err), PL_OK);
    ck_assert_int_eq(s.D, 1);
    ck_assert_int_eq(s.T, 3);
    ck_assert_int_eq(s.classes, 2);
    ck_assert_int_eq(s.lengths[1], 2);
    ck_assert(s.values[4] == 5e10f && s.values[5] == 0.0f); /* beyond row 1's length: 0 */
    ck_assert(s.values[2] == 3.0f);
    pl_series_free(&s);
    ck_assert_int_eq(pl_npy_read_series(vp, NULL, NULL, NULL, PL_NPY_AUTO, &s, &err), PL_OK);
    ck_assert_ptr_null(s.labels);
    ck_assert_int_eq(s.classes, 0);
    ck_assert(s.values[5] == -6.0f);
    pl_series_free(&s);
}
END_TEST

/* A hostile .npy set: which file is bad, and how. */
typedef struct {
    const char *name;
    int which;          /* the bad file: 0 values, 1 labels, 2 lengths */
    const char *dict;   /* its header dict (NULL: a good one) */
    const char *raw;    /* or its whole preamble + header (raw_len bytes) */
    size_t raw_len;
    long delta;         /* data bytes beyond (+) or short of (-) the good ones */
    int64_t bad_int;    /* labels/lengths: item 1 (when not 0) */
    double poison;      /* values: item 9 (when not 0) */
    pl_status want;
    const char *fragment;
} npy_case;

#define GOOD_VALUES "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4, 2), }"
#define GOOD_INTS "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }"

static const npy_case NPY_BAD[] = {
    {"bad magic", 0, NULL, "\x93NUMPZ\x01\x00\x10\x00", 10, 0, 0, 0, PL_ERR_MAGIC,
     "not a NumPy .npy file"},
    {"version 4.0", 0, NULL, "\x93NUMPY\x04\x00\x10\x00\x00\x00", 12, 0, 0, 0, PL_ERR_VERSION,
     "version 4.0"},
    {"version 1.1", 0, NULL, "\x93NUMPY\x01\x01\x10\x00", 10, 0, 0, 0, PL_ERR_VERSION,
     "version 1.1"},
    {"cut preamble", 0, NULL, "\x93NUMPY\x02\x00\x10", 9, 0, 0, 0, PL_ERR_TRUNCATED,
     "not a whole .npy preamble"},
    {"header beyond the file", 0, NULL, "\x93NUMPY\x01\x00\xff\x00{", 11, 0, 0, 0,
     PL_ERR_TRUNCATED, "the header needs 265 bytes"},
    {"huge header", 0, NULL, "\x93NUMPY\x02\x00\x00\x00\x00\x7f", 12, 0, 0, 0,
     PL_ERR_TOO_LARGE, "a .npy header of"},
    {"fortran order", 0, "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 4, 2), }", NULL,
     0, 0, 0, 0, PL_ERR_VERSION, "Fortran order"},
    {"big-endian", 0, "{'descr': '>f4', 'fortran_order': False, 'shape': (3, 4, 2), }", NULL,
     0, 0, 0, 0, PL_ERR_VERSION, "big-endian dtype '>f4'"},
    {"object array", 0, "{'descr': '|O', 'fortran_order': False, 'shape': (3, 4, 2), }", NULL,
     0, 0, 0, 0, PL_ERR_VERSION, "an object array ('|O')"},
    {"complex", 0, "{'descr': '<c8', 'fortran_order': False, 'shape': (3, 4, 2), }", NULL, 0,
     0, 0, 0, PL_ERR_VERSION, "unsupported dtype '<c8'"},
    {"float16", 0, "{'descr': '<f2', 'fortran_order': False, 'shape': (3, 4, 2), }", NULL, 0,
     0, 0, 0, PL_ERR_VERSION, "unsupported dtype '<f2'"},
    {"no byte order", 0, "{'descr': '|f4', 'fortran_order': False, 'shape': (3, 4, 2), }",
     NULL, 0, 0, 0, 0, PL_ERR_VERSION, "does not say its byte order"},
    {"structured", 0, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }",
     NULL, 0, 0, 0, 0, PL_ERR_VERSION, "structured dtype"},
    {"missing key", 0, "{'descr': '<f4', 'shape': (3, 4, 2), }", NULL, 0, 0, 0, 0,
     PL_ERR_CORRUPT, "lacks 'fortran_order'"},
    {"unknown key", 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4, 2), 'x': 1}",
     NULL, 0, 0, 0, 0, PL_ERR_CORRUPT, "unknown key 'x'"},
    {"key twice", 0, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False}", NULL, 0, 0,
     0, 0, PL_ERR_CORRUPT, "'descr' twice"},
    {"not a dict", 0, "['descr', '<f4']", NULL, 0, 0, 0, 0, PL_ERR_CORRUPT, "expected '{'"},
    {"one side without comma", 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (24)}",
     NULL, 0, 0, 0, 0, PL_ERR_CORRUPT, "a tuple of one side has a comma"},
    {"text after the dict", 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4, 2)} x",
     NULL, 0, 0, 0, 0, PL_ERR_CORRUPT, "only spaces after the dict"},
    {"rank 1 values", 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (24,), }", NULL, 0,
     0, 0, 0, PL_ERR_DIMS, "values of 1 dimension"},
    {"rank 4 values", 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4, 2, 1), }",
     NULL, 0, 0, 0, 0, PL_ERR_DIMS, "values of 4 dimensions"},
    {"zero side", 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 0, 2), }", NULL, 0,
     0, 0, 0, PL_ERR_DIMS, "a side of 0"},
    {"shape overflows", 0,
     "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 1073741824, 1024), }",
     NULL, 0, 0, 0, 0, PL_ERR_TOO_LARGE, "overflows"},
    {"truncated data", 0, NULL, NULL, 0, -1, 0, 0, PL_ERR_TRUNCATED,
     "the shape says 24 items of 4 bytes (96 bytes"},
    {"huge claim, small file", 0,
     "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000, 1000, 10), }", NULL, 0, 0,
     0, 0, PL_ERR_TRUNCATED, "the shape says 1000000000000 items"},
    {"trailing bytes", 0, NULL, NULL, 0, 3, 0, 0, PL_ERR_TRAILING, "the file has 99"},
    {"NaN", 0, NULL, NULL, 0, 0, 0, NAN, PL_ERR_NONFINITE, "at series 1, step 0, feature 1"},
    {"infinity", 0, NULL, NULL, 0, 0, 0, INFINITY, PL_ERR_NONFINITE, "non-finite value inf"},
    {"label out of range", 1, NULL, NULL, 0, 0, 65536, 0, PL_ERR_LABEL,
     "label 65536 at row 1; expected 0..65535"},
    {"negative label", 1, NULL, NULL, 0, 0, -1, 0, PL_ERR_LABEL, "label -1 at row 1"},
    {"float labels", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", NULL, 0, 0,
     0, 0, PL_ERR_VERSION, "labels must be integers, found dtype '<f8'"},
    {"labels of another N", 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }",
     NULL, 0, -8, 0, 0, PL_ERR_MISMATCH, "2 labels for 3 series"},
    {"labels (N, 1)", 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3, 1), }", NULL, 0,
     0, 0, 0, PL_ERR_DIMS, "labels of 2 dimensions; expected 1"},
    {"labels truncated", 1, NULL, NULL, 0, -2, 0, 0, PL_ERR_TRUNCATED, "truncated"},
    {"length 0", 2, NULL, NULL, 0, 0, 0, 0, PL_ERR_DIMS, "length 0 at row 1; expected 1..4"},
    {"length beyond T", 2, NULL, NULL, 0, 0, 5, 0, PL_ERR_DIMS, "length 5 at row 1"},
    {"uint64 beyond int64", 2, "{'descr': '<u8', 'fortran_order': False, 'shape': (3,), }",
     NULL, 0, 0, -1, 0, PL_ERR_DIMS, "length beyond"},
};

/* The three files of a good set, with the case's one bad file. */
static void write_npy_case(const npy_case *c, const char *paths[3])
{
    float v[24 + 8] = {0}; /* (3, 4, 2), and room for the trailing bytes of a case */
    for (int k = 0; k < 24; k++)
        v[k] = (float)k;
    if (c->poison != 0)
        v[9] = (float)c->poison;
    int64_t ints[2][3 + 1] = {{0, 1, 1}, {4, 2, 3}}; /* labels, lengths (and room) */
    if (c->which > 0 && c->bad_int != 0)
        ints[c->which - 1][1] = c->bad_int;
    else if (c->which == 2 && !c->dict)
        ints[1][1] = 0;
    for (int w = 0; w < 3; w++) {
        const char *dict = w == c->which && c->dict ? c->dict : w ? GOOD_INTS : GOOD_VALUES;
        const void *data = w ? (const void *)ints[w - 1] : v;
        long bytes = (w ? 24 : 96) + (w == c->which ? c->delta : 0);
        size_t len;
        unsigned char *b = npy_image(1, dict, data, (size_t)bytes, &len);
        if (w == c->which && c->raw)
            tu_write(paths[w], c->raw, c->raw_len);
        else
            tu_write(paths[w], b, len);
        free(b);
    }
}

START_TEST(test_npy_hostile)
{
    const npy_case *c = &NPY_BAD[_i];
    const char *paths[3] = {tu_path(tu_dir, "v.npy"), tu_path(tu_dir, "l.npy"),
                            tu_path(tu_dir, "n.npy")};
    write_npy_case(c, paths);
    for (int mode = PL_NPY_COPY; mode <= PL_NPY_MAP; mode++) {
        pl_series s;
        pl_error err = {0};
        pl_status rc = pl_npy_read_series(paths[0], paths[1], paths[2], NULL, (pl_npy_mode)mode,
                                          &s, &err);
        tu_assert_refused(c->name, paths[c->which], rc, &err, c->want, c->fragment);
        assert_empty(&s);
    }
}
END_TEST

/* Mapped and copied: the same values within each row's length; the copy
 * zeroes the rest, the mapping is the file's; freeing unmaps. */
START_TEST(test_npy_map_and_copy_agree)
{
    enum { N = 5, T = 7, D = 3 };
    float v[N * T * D];
    tu_fill(v, N * T * D, 2.0f, 11);
    const int32_t len[N] = {7, 1, 4, 7, 2};
    const char *vp = tu_path(tu_dir, "v.npy"), *np = tu_path(tu_dir, "n.npy");
    write_npy(vp, 1, "<f4", "(5, 7, 3)", v, sizeof v);
    write_npy(np, 1, "<i4", "(5,)", len, sizeof len);
    pl_series a, b, c;
    pl_error err = {0};
    ck_assert_int_eq(pl_npy_read_series(vp, NULL, np, NULL, PL_NPY_COPY, &a, &err), PL_OK);
    ck_assert_int_eq(pl_npy_read_series(vp, NULL, np, NULL, PL_NPY_MAP, &b, &err), PL_OK);
    ck_assert_int_eq(pl_npy_read_series(vp, NULL, np, NULL, PL_NPY_AUTO, &c, &err), PL_OK);
    ck_assert_ptr_null(a.mapped);
    ck_assert_ptr_nonnull(b.mapped);
    ck_assert_ptr_null(c.mapped); /* small: copied */
    for (int i = 0; i < N; i++) {
        size_t row = (size_t)i * T * D, valid = (size_t)len[i] * D;
        ck_assert_int_eq(memcmp(a.values + row, b.values + row, valid * 4), 0);
        ck_assert_int_eq(memcmp(a.values + row, v + row, valid * 4), 0);
        ck_assert_int_eq(memcmp(b.values + row, v + row, T * D * 4), 0);
        for (size_t k = valid; k < (size_t)T * D; k++)
            ck_assert(a.values[row + k] == 0.0f);
        ck_assert_int_eq(a.lengths[i], len[i]);
        ck_assert_int_eq(b.lengths[i], len[i]);
    }
    b.values[0] = 99.0f; /* a private mapping: the file stays as it was */
    pl_series_free(&b);
    assert_empty(&b);
    ck_assert_int_eq(pl_npy_read_series(vp, NULL, np, NULL, PL_NPY_MAP, &b, &err), PL_OK);
    ck_assert(b.values[0] == v[0]);
    pl_series_free(&a);
    pl_series_free(&b);
    pl_series_free(&c);
}
END_TEST

/* A test set's labels are below the training set's classes, whatever its
 * own largest label; its D must be the training set's. */
START_TEST(test_npy_test_set_classes)
{
    const char *vp = tu_path(tu_dir, "v.npy"), *lp = tu_path(tu_dir, "l.npy"),
               *wp = tu_path(tu_dir, "w.npy");
    float v[3 * 2 * 2] = {0};
    write_npy(vp, 1, "<f4", "(3, 2, 2)", v, sizeof v);
    write_npy(wp, 1, "<f4", "(3, 4)", v, sizeof v);
    const int64_t train_labels[3] = {0, 4, 1}, test_labels[3] = {0, 0, 0};
    write_labels(lp, train_labels, 3);
    pl_series tr, te;
    pl_error err = {0};
    ck_assert_int_eq(pl_npy_read_series(vp, lp, NULL, NULL, PL_NPY_COPY, &tr, &err), PL_OK);
    ck_assert_int_eq(tr.classes, 5);
    write_labels(lp, test_labels, 3); /* one class: fine for a test set */
    ck_assert_int_eq(pl_npy_read_series(vp, lp, NULL, &tr, PL_NPY_COPY, &te, &err), PL_OK);
    ck_assert_int_eq(te.classes, 5);
    pl_series_free(&te);
    ck_assert_int_eq(pl_npy_read_series(vp, lp, NULL, NULL, PL_NPY_COPY, &te, &err),
                     PL_ERR_LABEL); /* ...not for a training set */
    tu_assert_refused("one class", lp, PL_ERR_LABEL, &err, PL_ERR_LABEL, "at least 2 classes");
    const int64_t beyond[3] = {0, 5, 1};
    write_labels(lp, beyond, 3);
    pl_status rc = pl_npy_read_series(vp, lp, NULL, &tr, PL_NPY_COPY, &te, &err);
    tu_assert_refused("test label beyond the training classes", lp, rc, &err, PL_ERR_LABEL,
                      "label 5 at row 1; expected 0..4");
    rc = pl_npy_read_series(wp, lp, NULL, &tr, PL_NPY_COPY, &te, &err);
    tu_assert_refused("test set of another D", wp, rc, &err, PL_ERR_MISMATCH,
                      "1 features a step, the training set has 2");
    assert_empty(&te);
    pl_series_free(&tr);
}
END_TEST

/* ---- text formats */

static void write_text(const char *path, const char *text)
{
    tu_write(path, text, strlen(text));
}

/* Reads text as a .tsv or .ts training file; fails the test if refused. */
static pl_series read_text(const char *name, const char *text, const pl_series *train)
{
    const char *p = tu_path(tu_dir, name);
    write_text(p, text);
    pl_series s;
    pl_error err = {0};
    pl_status rc = strstr(name, ".tsv") ? pl_tsv_read(p, train, &s, &err)
                                        : pl_ts_read(p, train, &s, &err);
    ck_assert_msg(rc == PL_OK, "%s: %s", name, err.msg);
    return s;
}

/* Row i of s is the values want (its length), zero after. */
static void assert_row(const pl_series *s, size_t i, int label, const float *want, int len)
{
    ck_assert_int_eq(s->labels[i], label);
    ck_assert_int_eq(s->lengths[i], len);
    const float *v = s->values + i * (size_t)s->T * (size_t)s->D;
    for (int k = 0; k < s->T * s->D; k++)
        ck_assert_msg(v[k] == (k < len * s->D ? want[k] : 0.0f), "row %zu item %d: %g", i, k,
                      (double)v[k]);
}

/* Variable lengths padded with NaN; numeric labels sorted as numbers;
 * CRLF endings, spaces around values, blank lines; commas when the file
 * has no tab. */
START_TEST(test_tsv_good)
{
    pl_series s = read_text("a.tsv", "10\t1\t2.5\t-3\r\n"
                                     "-1\t4\tNaN\tNaN\r\n"
                                     "\n"
                                     "2\t 5 \t6\tnan\n"
                                     "10\t7\t8\t9", NULL);
    ck_assert_uint_eq(s.n, 4);
    ck_assert_int_eq(s.T, 3);
    ck_assert_int_eq(s.D, 1);
    ck_assert_int_eq(s.classes, 3);
    ck_assert_str_eq(s.class_names[0], "-1");
    ck_assert_str_eq(s.class_names[1], "2");
    ck_assert_str_eq(s.class_names[2], "10");
    assert_row(&s, 0, 2, (const float[]){1, 2.5f, -3}, 3);
    assert_row(&s, 1, 0, (const float[]){4}, 1);
    assert_row(&s, 2, 1, (const float[]){5, 6}, 2);
    pl_series_free(&s);
    /* one label that is not a number: every label sorted as text */
    s = read_text("b.tsv", "10,1\nwalk,2\n9,3\n", NULL);
    ck_assert_str_eq(s.class_names[0], "10");
    ck_assert_str_eq(s.class_names[1], "9");
    ck_assert_str_eq(s.class_names[2], "walk");
    assert_row(&s, 1, 2, (const float[]){2}, 1);
    pl_series_free(&s);
}
END_TEST

/* A line of 20000 values, more than any fixed buffer would hold. */
START_TEST(test_tsv_long_line)
{
    enum { T = 20000 };
    char *text = malloc((size_t)T * 12 + 64), *p = text;
    for (int r = 0; r < 2; r++) {
        p += sprintf(p, "%d", r);
        for (int t = 0; t < T; t++)
            p += sprintf(p, "\t%d", (t * 7 + r) % 1000 - 500);
        *p++ = '\n';
    }
    *p = '\0';
    pl_series s = read_text("long.tsv", text, NULL);
    ck_assert_int_eq(s.T, T);
    for (int r = 0; r < 2; r++)
        for (int t = 0; t < T; t += 997)
            ck_assert(s.values[(size_t)r * T + t] == (float)((t * 7 + r) % 1000 - 500));
    ck_assert(s.values[2 * (size_t)T - 1] == (float)(((T - 1) * 7 + 1) % 1000 - 500));
    pl_series_free(&s);
    free(text);
}
END_TEST

/* A multivariate .ts: comments, keywords in any case, classes in
 * @classLabel's order, cases of different lengths, '?' padding the end
 * of every dimension. */
START_TEST(test_ts_good)
{
    pl_series s = read_text("a.ts", "# a comment\n"
                                    "@problemName Walk\n"
                                    "@TIMESTAMPS false\n"
                                    "@missing true\n"
                                    "@univariate false\n"
                                    "@dimensions 2\n"
                                    "@equalLength false\n"
                                    "@classLabel true walking 1 -1\n"
                                    "@data\n"
                                    "1,2,3:4,5,6:-1\n"
                                    "# between cases\n"
                                    "7, 8 ,?:9,10,?:walking\n"
                                    "0.5:1e-3:1\n", NULL);
    ck_assert_uint_eq(s.n, 3);
    ck_assert_int_eq(s.T, 3);
    ck_assert_int_eq(s.D, 2);
    ck_assert_int_eq(s.classes, 3);
    ck_assert_str_eq(s.class_names[0], "walking");
    ck_assert_str_eq(s.class_names[2], "-1");
    assert_row(&s, 0, 2, (const float[]){1, 4, 2, 5, 3, 6}, 3);
    assert_row(&s, 1, 0, (const float[]){7, 9, 8, 10}, 2);
    assert_row(&s, 2, 1, (const float[]){0.5f, 1e-3f}, 1);
    pl_series_free(&s);
}
END_TEST

/* A hostile text file: its format, text, whether it is read as a test
 * set of a training set (a, b, c), the status and a fragment. */
typedef struct {
    const char *name, *file, *text;
    int test;
    pl_status want;
    const char *fragment;
} text_case;

#define TS_HEAD "@problemName x\n@classLabel true a b c\n@data\n"

static const text_case TEXT_BAD[] = {
    {"NaN in the middle", "x.tsv", "1\t1\t2\n2\t3\tNaN\t4\n", 0, PL_ERR_CORRUPT,
     ":2:5: a missing value ('NaN') before the series' end"},
    {"fewer fields", "x.tsv", "1\t1\t2\t3\n2\t3\t4\n", 0, PL_ERR_MISMATCH,
     ":2: 2 values, line 1 has 3"},
    {"a label alone", "x.tsv", "1\n", 0, PL_ERR_CORRUPT, ":1: a label and no values"},
    {"not a number", "x.tsv", "1\t1\t2\n2\t3\tabc\n", 0, PL_ERR_CORRUPT,
     ":2:5: expected a number, found 'abc'"},
    {"number then text", "x.tsv", "1\t1\t2x\n", 0, PL_ERR_CORRUPT,
     ":1:5: expected a number, found '2x'"},
    {"empty field", "x.tsv", "1\t1\t\t2\n", 0, PL_ERR_CORRUPT, ":1:5: expected a number"},
    {"infinity", "x.tsv", "1\t1\t2\n2\tinf\t3\n", 0, PL_ERR_NONFINITE,
     ":2:3: non-finite value 'inf'"},
    {"beyond float", "x.tsv", "1\t1\t2\n2\t1e39\t3\n", 0, PL_ERR_NONFINITE,
     ":2:3: non-finite value '1e39'"},
    {"all missing", "x.tsv", "1\t1\t2\n2\tNaN\tNaN\n", 0, PL_ERR_DIMS,
     ":2: a series without values"},
    {"one class", "x.tsv", "1\t1\n1\t2\n", 0, PL_ERR_LABEL, "at least 2 classes"},
    {"no series", "x.tsv", "\n\n", 0, PL_ERR_DIMS, "no series in the file"},
    {"NUL byte", "x.tsv", "1\t1\n2\t2\0\n", 0, PL_ERR_CORRUPT, ":2: a NUL byte"},
    {"empty label", "x.tsv", "\t1\n", 0, PL_ERR_CORRUPT, ":1:1: an empty class label"},
    {"test label not in training", "x.tsv", "a\t1\nd\t2\n", 1, PL_ERR_LABEL,
     ":2:1: label 'd' is not a class of the training set"},
    {"timestamps", "x.ts", "@timeStamps true\n" TS_HEAD "1:a\n", 0, PL_ERR_VERSION,
     ":1: @timeStamps true"},
    {"regression", "x.ts", "@classLabel false\n@data\n1:2.5\n", 0, PL_ERR_VERSION,
     ":1: @classLabel false: regression"},
    {"target label", "x.ts", "@targetLabel true\n@data\n1:2.5\n", 0, PL_ERR_VERSION,
     ":1: @targetLabel"},
    {"no class label", "x.ts", "@problemName x\n@data\n1:a\n", 0, PL_ERR_CORRUPT,
     ":2: @data before @classLabel"},
    {"unknown header", "x.ts", "@colour blue\n" TS_HEAD "1:a\n", 0, PL_ERR_CORRUPT,
     ":1: unknown header line '@colour'"},
    {"bad boolean", "x.ts", "@missing perhaps\n" TS_HEAD "1:a\n", 0, PL_ERR_CORRUPT,
     ":1: @missing takes true or false, found 'perhaps'"},
    {"bad dimensions", "x.ts", "@dimensions 0\n" TS_HEAD "1:a\n", 0, PL_ERR_CORRUPT,
     ":1: @dimensions takes a count"},
    {"univariate with 2 dimensions", "x.ts", "@univariate true\n@dimensions 2\n" TS_HEAD, 0,
     PL_ERR_MISMATCH, ":2: 2 dimensions, an earlier line says 1"},
    {"case before @data", "x.ts", "@classLabel true a b\n1:a\n", 0, PL_ERR_CORRUPT,
     ":2: a case before @data"},
    {"header after @data", "x.ts", TS_HEAD "1:a\n@dimensions 1\n", 0, PL_ERR_CORRUPT,
     ":5: a header line after @data"},
    {"no @data", "x.ts", "@classLabel true a b\n", 0, PL_ERR_CORRUPT, "no @data line"},
    {"no cases", "x.ts", TS_HEAD, 0, PL_ERR_DIMS, "no series in the file"},
    {"undeclared label", "x.ts", TS_HEAD "1,2:a\n3,4:d\n", 0, PL_ERR_LABEL,
     ":5:5: label 'd' is not one of @classLabel's"},
    {"dimensions of two lengths", "x.ts", TS_HEAD "1,2:3,4:a\n1,2:3:b\n", 0, PL_ERR_MISMATCH,
     ":5: dimension 2 has 1 values, dimension 1 has 2"},
    {"another dimension count", "x.ts", TS_HEAD "1,2:3,4:a\n1,2:b\n", 0, PL_ERR_MISMATCH,
     ":5: 1 dimensions, expected 2"},
    {"fewer than @dimensions", "x.ts", "@dimensions 3\n" TS_HEAD "1,2:3,4:a\n", 0,
     PL_ERR_MISMATCH, ":5: 2 dimensions, expected 3"},
    {"'?' in the middle", "x.ts", TS_HEAD "1,?,3:a\n", 0, PL_ERR_CORRUPT,
     ":4:3: a missing value ('?') before the series' end"},
    {"no label", "x.ts", TS_HEAD "1,2,3\n", 0, PL_ERR_CORRUPT,
     ":4: expected dimensions separated by ':'"},
    {"equal length broken", "x.ts", "@equalLength true\n" TS_HEAD "1,2:a\n1,2,3:b\n", 0,
     PL_ERR_MISMATCH, ":6: a case of 3 steps, the first has 2"},
    {"series length broken", "x.ts", "@equalLength true\n@seriesLength 3\n" TS_HEAD "1,2:a\n", 0,
     PL_ERR_MISMATCH, ":6: a case of 2 steps; @seriesLength says 3"},
    {"class named twice", "x.ts", "@classLabel true a b a\n@data\n1:a\n", 0, PL_ERR_CORRUPT,
     ":1: @classLabel names 'a' twice"},
    {"no class names", "x.ts", "@classLabel true\n@data\n1:a\n", 0, PL_ERR_CORRUPT,
     ":1: @classLabel true with no classes"},
    {"one class in training", "x.ts", "@classLabel true a\n@data\n1:a\n", 0, PL_ERR_LABEL,
     "@classLabel names 1 class"},
    {"test label not in training", "x.ts", "@classLabel true a d\n@data\n1:d\n", 1,
     PL_ERR_LABEL, ":3:3: label 'd' is not a class of the training set"},
    {"test of another D", "x.ts", "@classLabel true a b\n@data\n1:2:a\n", 1, PL_ERR_MISMATCH,
     "2 features a step, the training set has 1"},
};

START_TEST(test_text_hostile)
{
    const text_case *c = &TEXT_BAD[_i];
    pl_series train = {0};
    if (c->test)
        train = read_text("train.tsv", "a\t1\nb\t2\nc\t3\n", NULL);
    const char *p = tu_path(tu_dir, c->file);
    size_t len = strlen(c->text);
    if (strstr(c->name, "NUL"))
        len = 9; /* the text has a NUL byte */
    tu_write(p, c->text, len);
    pl_series s;
    pl_error err = {0};
    pl_status rc = strstr(c->file, ".tsv") ? pl_tsv_read(p, c->test ? &train : NULL, &s, &err)
                                           : pl_ts_read(p, c->test ? &train : NULL, &s, &err);
    tu_assert_refused(c->name, p, rc, &err, c->want, c->fragment);
    assert_empty(&s);
    pl_series_free(&train);
}
END_TEST

/* ---- one class mapping for a training set and its test sets */

START_TEST(test_shared_class_mapping)
{
    /* .ts: the test file lists its classes in another order */
    pl_series tr = read_text("train.ts", "@classLabel true up down left\n@data\n1:up\n2:down\n"
                                         "3:left\n", NULL);
    pl_series te = read_text("test.ts", "@classLabel true left up\n@data\n1:left\n2:up\n", &tr);
    ck_assert_int_eq(te.classes, 3);
    ck_assert_int_eq(te.labels[0], 2);
    ck_assert_int_eq(te.labels[1], 0);
    ck_assert_str_eq(te.class_names[2], "left");
    pl_series_free(&te);
    /* a .tsv test set of a .ts training set, with fewer classes */
    te = read_text("test.tsv", "down\t1\ndown\t2\n", &tr);
    ck_assert_int_eq(te.labels[1], 1);
    ck_assert_int_eq(te.classes, 3);
    pl_series_free(&te);
    pl_series_free(&tr);
    /* .tsv: sorted numerically in the training set, looked up in the test set */
    tr = read_text("train.tsv", "3\t1\n-1\t2\n20\t3\n", NULL);
    te = read_text("test2.tsv", "20\t1\n-1\t2\n", &tr);
    ck_assert_int_eq(te.labels[0], 2);
    ck_assert_int_eq(te.labels[1], 0);
    pl_series_free(&te);
    pl_series_free(&tr);
    /* a .npy training set: the index is the name */
    const char *vp = tu_path(tu_dir, "v.npy"), *lp = tu_path(tu_dir, "l.npy");
    const float v[3] = {1, 2, 3};
    write_npy(vp, 1, "<f4", "(3, 1)", v, sizeof v);
    write_labels(lp, (const int64_t[]){0, 1, 2}, 3);
    pl_error err = {0};
    ck_assert_int_eq(pl_npy_read_series(vp, lp, NULL, NULL, PL_NPY_COPY, &tr, &err), PL_OK);
    te = read_text("test3.tsv", "2\t1\n0\t2\n", &tr);
    ck_assert_int_eq(te.labels[0], 2);
    ck_assert_ptr_null(te.class_names);
    pl_series_free(&te);
    const char *p = tu_path(tu_dir, "test4.tsv");
    write_text(p, "1\t1\n3\t2\n");
    pl_status rc = pl_tsv_read(p, &tr, &te, &err);
    tu_assert_refused("class 3 of a .npy set of 3", p, rc, &err, PL_ERR_LABEL, ":2:1: label '3'");
    pl_series_free(&tr);
}
END_TEST

/* ---- pl_series_read: the kind told by content, then extension */

START_TEST(test_dispatch)
{
    const char *npy = tu_path(tu_dir, "values.bin"), *lp = tu_path(tu_dir, "l.npy");
    const float v[4] = {1, 2, 3, 4};
    write_npy(npy, 1, "<f4", "(2, 2)", v, sizeof v);
    write_labels(lp, (const int64_t[]){1, 0}, 2);
    pl_series s;
    pl_error err = {0};
    ck_assert_int_eq(pl_series_read(npy, lp, NULL, NULL, &s, &err), PL_OK);
    ck_assert_int_eq(s.classes, 2);
    pl_series_free(&s);
    const char *ts = tu_path(tu_dir, "cases.txt"); /* '@' lines: a .ts whatever its name */
    write_text(ts, "\n# made by hand\n@classLabel true x y\n@data\n1:x\n2:y\n");
    ck_assert_int_eq(pl_series_read(ts, NULL, NULL, NULL, &s, &err), PL_OK);
    ck_assert_str_eq(s.class_names[1], "y");
    pl_series_free(&s);
    const char *tsv = tu_path(tu_dir, "a.tsv");
    write_text(tsv, "1\t1\n2\t2\n");
    ck_assert_int_eq(pl_series_read(tsv, NULL, NULL, NULL, &s, &err), PL_OK);
    ck_assert_int_eq(s.T, 1);
    pl_series_free(&s);
    pl_status rc = pl_series_read(tsv, lp, NULL, NULL, &s, &err);
    tu_assert_refused("labels file for a .tsv", tsv, rc, &err, PL_ERR_ARG, "a separate labels");
    const char *bin = tu_path(tu_dir, "a.dat");
    write_text(bin, "1\t1\n2\t2\n");
    rc = pl_series_read(bin, NULL, NULL, NULL, &s, &err);
    tu_assert_refused("unknown kind", bin, rc, &err, PL_ERR_MAGIC, "unknown kind of series file");
    const char *fake = tu_path(tu_dir, "fake.npy");
    write_text(fake, "1\t1\n2\t2\n");
    rc = pl_series_read(fake, NULL, NULL, NULL, &s, &err);
    tu_assert_refused(".npy without magic", fake, rc, &err, PL_ERR_MAGIC, "no \\x93NUMPY magic");
    const char *none = tu_path(tu_dir, "none.npy");
    rc = pl_series_read(none, NULL, NULL, NULL, &s, &err);
    tu_assert_refused("missing", none, rc, &err, PL_ERR_NOT_FOUND, "no such file");
    const char *empty = tu_path(tu_dir, "empty.tsv");
    write_text(empty, "");
    rc = pl_series_read(empty, NULL, NULL, NULL, &s, &err);
    tu_assert_refused("empty", empty, rc, &err, PL_ERR_EMPTY, "the file is empty");
    const char *dir = tu_subdir("d.ts");
    rc = pl_series_read(dir, NULL, NULL, NULL, &s, &err);
    tu_assert_refused("directory", dir, rc, &err, PL_ERR_NOT_FILE, "found a directory");
    assert_empty(&s);
}
END_TEST

/* ---- files that Python writes */

static const char *const PYTHONS[] = {"python3", "/usr/bin/python3"};

/* Runs python (each of PYTHONS until one exits other than `next`, or 127:
 * none there) with args; its status (r->status), or -1 when none did. */
static int run_python(tu_result *r, const char *const *args, int next)
{
    for (size_t k = 0; k < sizeof PYTHONS / sizeof *PYTHONS; k++) {
        int st = tu_run_program(r, PYTHONS[k], args, NULL, 120);
        if (st != next && st != 127)
            return st;
    }
    return -1;
}

/* Reads values (and labels) and checks them against want (n floats). */
static void assert_npy_values(const char *vp, const char *lp, const float *want, size_t n)
{
    pl_series s;
    pl_error err = {0};
    ck_assert_msg(pl_npy_read_series(vp, lp, NULL, NULL, PL_NPY_COPY, &s, &err) == PL_OK, "%s",
                  err.msg);
    ck_assert_uint_eq(s.n * (size_t)s.T * (size_t)s.D, n);
    ck_assert_int_eq(memcmp(s.values, want, n * 4), 0);
    pl_series_free(&s);
}

#define NUMPY_WRITER \
    "import numpy as np, sys, os\n" \
    "from numpy.lib import format as fmt\n" \
    "d = sys.argv[1]\n" \
    "x = (np.arange(60).reshape(5, 4, 3) * 0.37 - 9).astype('<f8')\n" \
    "x.astype('<f4').tofile(os.path.join(d, 'want.raw'))\n" \
    "np.save(os.path.join(d, 'labels.npy'), np.array([0, 2, 1, 1, 0], dtype=np.int32))\n" \
    "for ver in (1, 2, 3):\n" \
    "    for t in ('<f4', '<f8', '<i2', '|u1'):\n" \
    "        y = x if t[1] == 'f' else np.abs(x).astype(t)\n" \
    "        with open(os.path.join(d, 'v%d%s.npy' % (ver, t[1:])), 'wb') as f:\n" \
    "            fmt.write_array(f, y.astype(t), version=(ver, 0))\n" \
    "        y.astype(t).astype('<f4').tofile(os.path.join(d, 'v%d%s.raw' % (ver, t[1:])))\n"

/* numpy's own .npy of each version and dtype read to what numpy makes of
 * them as float32. */
START_TEST(test_numpy_files)
{
    tu_result *r = malloc(sizeof *r);
    const char *args[] = {"-c", NUMPY_WRITER, tu_dir, NULL};
    int st = run_python(r, args, 1);
    if (st < 0) {
        tu_skip("numpy's .npy files", "no python3 that can import numpy (apt-get install "
                "python3-numpy)");
        free(r);
        return;
    }
    ck_assert_msg(st == 0, "the numpy writer failed: %s", r->err);
    free(r);
    const char *types[] = {"f4", "f8", "i2", "u1"};
    for (int ver = 1; ver <= 3; ver++)
        for (int k = 0; k < 4; k++) {
            char name[32];
            snprintf(name, sizeof name, "v%d%s.raw", ver, types[k]);
            float want[60];
            ck_assert_uint_eq(tu_read(tu_path(tu_dir, name), want, sizeof want), sizeof want);
            snprintf(name, sizeof name, "v%d%s.npy", ver, types[k]);
            assert_npy_values(tu_path(tu_dir, name), tu_path(tu_dir, "labels.npy"), want, 60);
        }
}
END_TEST

/* data/digits-to-series.py: the .npy and the .ts of each split read to
 * bitwise the same (8, 8) values and the same labels; the .tsv to the
 * same pixels as 64 steps of 1. */
START_TEST(test_digits_script)
{
    const char *src = getenv("PARLSTM_SRCDIR");
    ck_assert_msg(src != NULL, "PARLSTM_SRCDIR is not set (run the tests with make check)");
    char script[4096];
    snprintf(script, sizeof script, "%s/data/digits-to-series.py", src);
    tu_result *r = malloc(sizeof *r);
    const char *args[] = {script, tu_dir, NULL};
    int st = run_python(r, args, 3);
    if (st < 0) {
        tu_skip("data/digits-to-series.py", "no python3 with scikit-learn's digits.csv.gz "
                "(apt-get install python3-sklearn)");
        free(r);
        return;
    }
    ck_assert_msg(st == 0, "digits-to-series.py failed: %s", r->err);
    free(r);
    const char *splits[2] = {"TRAIN", "TEST"};
    pl_series tr = {0};
    for (int k = 0; k < 2; k++) {
        char v[64], l[64], ts[64], tsv[64];
        snprintf(v, sizeof v, "digits_%s.npy", splits[k]);
        snprintf(l, sizeof l, "digits_%s_labels.npy", splits[k]);
        snprintf(ts, sizeof ts, "digits_%s.ts", splits[k]);
        snprintf(tsv, sizeof tsv, "digits_%s.tsv", splits[k]);
        pl_series a, b, c;
        pl_error err = {0};
        const pl_series *train = k ? &tr : NULL;
        ck_assert_int_eq(pl_series_read(tu_path(tu_dir, v), tu_path(tu_dir, l), NULL, train, &a,
                                        &err), PL_OK);
        ck_assert_msg(pl_series_read(tu_path(tu_dir, ts), NULL, NULL, train, &b, &err) == PL_OK,
                      "%s", err.msg);
        ck_assert_int_eq(pl_series_read(tu_path(tu_dir, tsv), NULL, NULL, NULL, &c, &err), PL_OK);
        ck_assert_uint_eq(a.n, k ? 450 : 1347);
        ck_assert(a.n == b.n && a.T == 8 && a.D == 8 && b.T == 8 && b.D == 8);
        ck_assert(a.classes == 10 && b.classes == 10 && c.T == 64 && c.D == 1);
        ck_assert_int_eq(memcmp(a.values, b.values, a.n * 64 * 4), 0);
        ck_assert_int_eq(memcmp(a.values, c.values, a.n * 64 * 4), 0);
        ck_assert_int_eq(memcmp(a.labels, b.labels, a.n * 4), 0);
        ck_assert_int_eq(memcmp(a.labels, c.labels, a.n * 4), 0);
        pl_series_free(&a);
        pl_series_free(&c);
        if (k)
            pl_series_free(&b);
        else
            tr = b;
    }
    pl_series_free(&tr);
}
END_TEST

/* A .ts read as a data set: values, byte labels, views and the split
 * that point into the values, the data CRC that sees them, what the
 * trainer cannot take (an image set as the training set), and lengths. */
START_TEST(test_dataset_of_sequences)
{
    const char *ts = "@problemName p\n@timeStamps false\n@univariate false\n@dimensions 2\n"
                     "@equalLength true\n@classLabel true b a c\n@data\n"
                     "1,2:3,4:a\n5,6:7,8:b\n9,10:11,12:c\n13,14:15,16:b\n";
    const char *path = tu_path(tu_dir, "set.ts");
    write_text(path, ts);
    pl_dataset ds, train, val;
    pl_error err = {0};
    ck_assert_int_eq(pl_dataset_load_series(&ds, path, NULL, NULL, NULL, &err), PL_OK);
    ck_assert_ptr_null(ds.images);
    ck_assert_uint_eq(ds.n, 4);
    ck_assert_int_eq(ds.T, 2);
    ck_assert_int_eq(ds.D, 2);
    ck_assert_int_eq(ds.classes, 3);
    ck_assert_int_eq(ds.labels[0], 1); /* "a": the second of @classLabel */
    ck_assert_int_eq(ds.labels[1], 0);
    ck_assert_int_eq(ds.labels[2], 2);
    ck_assert(ds.values[1] == 3.0f && ds.values[7] == 8.0f); /* (n, T, D): step 0 is (1, 3) */
    ck_assert_int_eq(pl_dataset_split(&ds, 1, &train, &val, &err), PL_OK);
    ck_assert_ptr_eq(train.values, ds.values + 4);
    ck_assert_ptr_eq(train.labels, ds.labels + 1);
    ck_assert_ptr_eq(val.values, ds.values);
    ck_assert_ptr_null(train.owned_series);
    const uint32_t crc = pl_dataset_crc(&ds);
    ((float *)ds.values)[5] = 6.5f;
    ck_assert_uint_ne(pl_dataset_crc(&ds), crc);

    /* a test file with the training set's classes; an image set cannot be
     * the training set of sequences */
    pl_dataset test, images = {0};
    ck_assert_int_eq(pl_dataset_load_series(&test, path, NULL, NULL, &ds, &err), PL_OK);
    ck_assert_mem_eq(test.labels, ds.labels, 4);
    pl_dataset_free(&test);
    ck_assert_int_eq(pl_dataset_load_series(&test, path, NULL, NULL, &images, &err),
                     PL_ERR_MISMATCH);
    ck_assert_ptr_nonnull(strstr(err.msg, "the training set is images"));
    ck_assert_int_eq(pl_dataset_permute(&ds, 1, &err), PL_ERR_ARG);
    pl_dataset_free(&ds);
    ck_assert_ptr_null(ds.values);

    /* a shorter case keeps its length (one length: no lengths); the data
     * CRC sees the lengths */
    write_text(path, "@problemName p\n@timeStamps false\n@univariate true\n"
                     "@equalLength false\n@classLabel true a b\n@data\n1,2,3:a\n4,5:b\n");
    ck_assert_int_eq(pl_dataset_load_series(&ds, path, NULL, NULL, NULL, &err), PL_OK);
    ck_assert_int_eq(ds.T, 3);
    ck_assert_ptr_nonnull(ds.lengths);
    ck_assert_int_eq(ds.lengths[0], 3);
    ck_assert_int_eq(ds.lengths[1], 2);
    pl_dataset view = pl_dataset_view(&ds, 1, 1);
    ck_assert_ptr_eq(view.lengths, ds.lengths + 1);
    const uint32_t with = pl_dataset_crc(&ds);
    ((int32_t *)ds.lengths)[1] = 3;
    ck_assert_uint_ne(pl_dataset_crc(&ds), with);
    pl_dataset_free(&ds);
    write_text(path, "@problemName p\n@timeStamps false\n@univariate true\n"
                     "@equalLength true\n@classLabel true a b\n@data\n1,2,3:a\n4,5,6:b\n");
    ck_assert_int_eq(pl_dataset_load_series(&ds, path, NULL, NULL, NULL, &err), PL_OK);
    ck_assert_ptr_null(ds.lengths);
    pl_dataset_free(&ds);
}
END_TEST

/* ---- per-feature standardisation (normalize.c), against values worked
 * out by hand */

/* Two rows of 3 steps x 3 features; row 1 is 1 step long, its padding 999.
 * Feature 0: 1, 2, 3, 5: mean 2.75, variance (1.75^2 + 0.75^2 + 0.25^2 +
 * 2.25^2) / 4 = 8.75 / 4. Feature 1: 10, 20, 30, -4: mean 14, variance
 * (16 + 36 + 256 + 324) / 4 = 158. Feature 2: 7 throughout: mean 7, std 1. */
static const float NORM_X[2 * 3 * 3] = {1, 10, 7, 2, 20, 7, 3, 30, 7,
                                        5, -4, 7, 999, 999, 999, 999, 999, 999};
static const int32_t NORM_LEN[2] = {3, 1};

START_TEST(test_norm_stats_by_hand)
{
    float mean[3], sd[3], x[18];
    pl_error err = {0};
    ck_assert_int_eq(pl_norm_stats("set", NORM_X, NORM_LEN, 2, 3, 3, mean, sd, &err), PL_OK);
    ck_assert_float_eq(mean[0], 2.75f);
    ck_assert_float_eq(mean[1], 14.0f);
    ck_assert_float_eq(mean[2], 7.0f);
    ck_assert_float_eq(sd[0], (float)sqrt(8.75 / 4));
    ck_assert_float_eq(sd[1], (float)sqrt(158.0));
    ck_assert_float_eq(sd[2], 1.0f); /* never varies: only centred */

    /* without lengths every step counts, the padding too */
    ck_assert_int_eq(pl_norm_stats("set", NORM_X, NULL, 2, 3, 3, mean, sd, &err), PL_OK);
    ck_assert_float_eq(mean[2], (float)((7.0 * 4 + 999 * 2) / 6));

    /* applied: (x - mean) / std in float on the valid steps, the padding as it was */
    ck_assert_int_eq(pl_norm_stats("set", NORM_X, NORM_LEN, 2, 3, 3, mean, sd, &err), PL_OK);
    memcpy(x, NORM_X, sizeof x);
    pl_norm_apply(x, NORM_LEN, 2, 3, 3, mean, sd);
    ck_assert_float_eq(x[0], (1.0f - 2.75f) / (float)sqrt(8.75 / 4));
    ck_assert_float_eq(x[4], (20.0f - 14.0f) / (float)sqrt(158.0));
    ck_assert_float_eq(x[9], (5.0f - 2.75f) / (float)sqrt(8.75 / 4));
    ck_assert_float_eq(x[10], -18.0f / (float)sqrt(158.0));
    ck_assert_float_eq(x[2], 0.0f);
    for (int k = 12; k < 18; k++)
        ck_assert_float_eq(x[k], 999.0f);

    /* no step at all: refused, naming the set */
    ck_assert_int_eq(pl_norm_stats("the training set", NORM_X, NORM_LEN, 0, 3, 3, mean, sd,
                                   &err), PL_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "the training set: no steps"));
}
END_TEST

/* The same through a data set: a view (the training part of a split)
 * finds its rows' lengths, the statistics cover its rows alone, and
 * standardising the whole set changes every view; images, a wrong feature
 * count and a zero standard deviation are refused. */
START_TEST(test_dataset_standardize)
{
    float vals[3 * 9]; /* row 0 (2 steps): 100 + k, held out; rows 1, 2: NORM_X */
    const int32_t lens[3] = {2, 3, 1};
    for (int k = 0; k < 9; k++)
        vals[k] = 100.0f + (float)k;
    memcpy(vals + 9, NORM_X, sizeof NORM_X);
    pl_series s = {.values = vals, .lengths = (int32_t *)lens, .n = 3, .T = 3, .D = 3};
    pl_dataset all = {.values = vals, .n = 3, .T = 3, .D = 3, .series = &s}, train, val;
    pl_error err = {0};
    float mean[3], sd[3];
    ck_assert_int_eq(pl_dataset_split(&all, 1, &train, &val, &err), PL_OK);
    ck_assert_int_eq(pl_dataset_norm_stats(&train, 3, mean, sd, &err), PL_OK);
    ck_assert_float_eq(mean[0], 2.75f);
    ck_assert_float_eq(sd[1], (float)sqrt(158.0));
    ck_assert_int_eq(pl_dataset_standardize(&all, 3, mean, sd, &err), PL_OK);
    ck_assert_float_eq(train.values[0], (1.0f - 2.75f) / (float)sqrt(8.75 / 4));
    ck_assert_float_eq(val.values[1], (101.0f - 14.0f) / (float)sqrt(158.0));
    ck_assert_float_eq(val.values[6], 106.0f); /* row 0 is 2 steps long: step 2 untouched */
    ck_assert_float_eq(vals[18 + 3], 999.0f); /* row 2's padding */
    ck_assert_ptr_null(pl_dataset_class_names(&all));

    pl_dataset images = {.images = (const uint8_t *)vals, .n = 1, .T = 3, .D = 3};
    ck_assert_int_eq(pl_dataset_norm_stats(&images, 3, mean, sd, &err), PL_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "not images"));
    ck_assert_int_eq(pl_dataset_norm_stats(&train, 2, mean, sd, &err), PL_ERR_MISMATCH);
    ck_assert_ptr_nonnull(strstr(err.msg, "2 features, the sequences have 3"));
    sd[2] = 0;
    ck_assert_int_eq(pl_dataset_standardize(&all, 3, mean, sd, &err), PL_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "feature 2"));
}
END_TEST

Suite *series_suite(void)
{
    Suite *s = suite_create("series");
    TCase *tc = tu_tcase_with_dir("npy");
    tcase_add_loop_test(tc, test_npy_versions_and_dtypes, 0, 3 * NDTYPES);
    tcase_add_test(tc, test_npy_two_dims_and_int_files);
    tcase_add_loop_test(tc, test_npy_hostile, 0, (int)(sizeof NPY_BAD / sizeof *NPY_BAD));
    tcase_add_test(tc, test_npy_map_and_copy_agree);
    tcase_add_test(tc, test_npy_test_set_classes);
    suite_add_tcase(s, tc);
    tc = tu_tcase_with_dir("text");
    tcase_add_test(tc, test_tsv_good);
    tcase_add_test(tc, test_tsv_long_line);
    tcase_add_test(tc, test_ts_good);
    tcase_add_loop_test(tc, test_text_hostile, 0, (int)(sizeof TEXT_BAD / sizeof *TEXT_BAD));
    tcase_add_test(tc, test_shared_class_mapping);
    tcase_add_test(tc, test_dispatch);
    tcase_add_test(tc, test_dataset_of_sequences);
    suite_add_tcase(s, tc);
    tc = tcase_create("standardisation");
    tcase_add_test(tc, test_norm_stats_by_hand);
    tcase_add_test(tc, test_dataset_standardize);
    suite_add_tcase(s, tc);
    tc = tu_tcase_with_dir("python");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_numpy_files);
    tcase_add_test(tc, test_digits_script);
    suite_add_tcase(s, tc);
    return s;
}
