/* Writes the committed seed corpus of the fuzz harnesses (run once; the
 * files under corpus/ are its output):
 *   cc -Iinclude -Isrc -include config.h tests/fuzz/seed_corpus.c src/.libs/libparlstm.a \
 *      $(pkg-config --libs ompi-c) -lopenblas -ljansson -lpng16 -lz -lm -fopenmp -pthread \
 *      -o /tmp/seed &&
 *   mkdir -p /tmp/corpus/idx /tmp/corpus/checkpoint /tmp/corpus/safetensors /tmp/corpus/image \
 *            /tmp/corpus/npy /tmp/corpus/ts &&
 *   /tmp/seed /tmp/corpus   (then copy what changed into tests/fuzz/corpus; older
 *   versions' files are kept under their version's name, e.g. checkpoint-v2-3-4-2)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <png.h>
#include <zlib.h>

#include "internal.h" /* the IDX magic numbers */

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void write_file(const char *dir, const char *name, const void *d, size_t n, int gz)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (gz) {
        gzFile g = gzopen(path, "wb9");
        gzwrite(g, d, (unsigned)n);
        gzclose(g);
    } else {
        FILE *f = fopen(path, "wb");
        fwrite(d, 1, n, f);
        fclose(f);
    }
}

/* A w x h PNG of the given colour type and depth from packed rows. */
static void write_png(const char *dir, const char *name, int w, int h, int color, int depth,
                      const unsigned char *data, size_t row_bytes)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (!f || !png || !info || setjmp(png_jmpbuf(png)))
        exit(1);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, color, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (color == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[4] = {{0, 0, 0}, {90, 90, 90}, {200, 10, 10}, {255, 255, 255}};
        png_set_PLTE(png, info, pal, 4);
    }
    png_write_info(png, info);
    for (int r = 0; r < h; r++)
        png_write_row(png, data + (size_t)r * row_bytes);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

/* A version ver .npy of descr and shape (dict padded to 64 bytes) with
 * data_len bytes of data. */
static void write_npy(const char *dir, const char *name, int ver, const char *descr,
                      const char *shape, const void *data, size_t data_len)
{
    char dict[160];
    unsigned char b[256 + 256];
    size_t fixed = ver == 1 ? 10 : 12;
    int d = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                     descr, shape);
    size_t total = (fixed + (size_t)d + 1 + 63) / 64 * 64, hlen = total - fixed;
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)ver;
    b[7] = 0;
    for (size_t k = 0; k < fixed - 8; k++)
        b[8 + k] = (unsigned char)(hlen >> (8 * k));
    memset(b + fixed, ' ', hlen);
    memcpy(b + fixed, dict, (size_t)d);
    b[total - 1] = '\n';
    memcpy(b + total, data, data_len);
    write_file(dir, name, b, total + data_len, 0);
}

/* Series files: .npy of versions 1-3 and a few dtypes; .tsv and .ts. */
static void series_seeds(const char *npy, const char *ts)
{
    float f[12];
    for (int i = 0; i < 12; i++)
        f[i] = (float)i * 0.5f - 2;
    unsigned char u[12];
    for (int i = 0; i < 12; i++)
        u[i] = (unsigned char)(i * 20);
    write_npy(npy, "f4-v1-3x2x2.npy", 1, "<f4", "(3, 2, 2)", f, sizeof f);
    write_npy(npy, "u1-v2-3x4.npy", 2, "|u1", "(3, 4)", u, sizeof u);
    write_npy(npy, "i2-v3-2x3.npy", 3, "<i2", "(2, 3)", u, sizeof u);
    write_npy(npy, "f8-v1-1x3x1.npy", 1, "<f8", "(1, 3, 1)", f, 24);
#define LITERAL(s) s, sizeof s - 1
    write_file(ts, "ucr.tsv", LITERAL("1\t0.5\t1.5\tNaN\n-1\t2\t3\t4\n2\t1e-3\tNaN\tNaN\n"), 0);
    write_file(ts, "ucr-commas.tsv", LITERAL("a,1,2\nb,3,4\n"), 0);
    write_file(ts, "uea.ts", LITERAL("# seed\n@problemName x\n@timeStamps false\n@missing true\n"
                                     "@univariate false\n@dimensions 2\n@equalLength false\n"
                                     "@seriesLength 3\n@classLabel true a b c\n@data\n"
                                     "1,2,3:4,5,6:b\n7,8,?:9,10,?:a\n0.5:1:c\n"), 0);
#undef LITERAL
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: seed_corpus DIR (writes DIR/idx, DIR/checkpoint, DIR/safetensors, "
                "DIR/image, DIR/npy and DIR/ts)\n");
        return 2;
    }
    char idx[4096], ck[4096], st[4096], im[4096], npy[4096], ts[4096];
    snprintf(npy, sizeof npy, "%s/npy", argv[1]);
    snprintf(ts, sizeof ts, "%s/ts", argv[1]);
    series_seeds(npy, ts);
    snprintf(im, sizeof im, "%s/image", argv[1]);
    snprintf(idx, sizeof idx, "%s/idx", argv[1]);
    snprintf(ck, sizeof ck, "%s/checkpoint", argv[1]);
    snprintf(st, sizeof st, "%s/safetensors", argv[1]);
    unsigned char b[16 + 3 * 4 * 5];
    put_be32(b, PL_IDX_IMAGES_MAGIC);
    put_be32(b + 4, 3);
    put_be32(b + 8, 4);
    put_be32(b + 12, 5);
    for (int i = 0; i < 60; i++)
        b[16 + i] = (unsigned char)(i * 41);
    write_file(idx, "images-3x4x5", b, sizeof b, 0);
    write_file(idx, "images-3x4x5.gz", b, sizeof b, 1);
    write_file(idx, "images-truncated", b, sizeof b - 7, 0);
    unsigned char l[8 + 7];
    put_be32(l, PL_IDX_LABELS_MAGIC);
    put_be32(l + 4, 7);
    for (int i = 0; i < 7; i++)
        l[8 + i] = (unsigned char)(i % 3);
    write_file(idx, "labels-7", l, sizeof l, 0);
    write_file(idx, "labels-7.gz", l, sizeof l, 1);

    /* a tiny model and a checkpoint of it */
    pl_config cfg = {3, 4, 2, 1};
    pl_train_opts o;
    pl_train_opts_default(&o);
    o.batch = 2;
    o.workers = o.threads = 1;
    pl_error err;
    pl_trainer *tr = pl_trainer_create(&cfg, 2, &o, &err);
    if (!tr) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/model-3-4-2", ck);
    pl_model_info mi = {.cfg = cfg, .T = 2};
    if (pl_model_save(path, &mi, pl_trainer_params(tr), NULL, &err))
        return 1;
    /* values with a standardisation and class names: every field of the
     * newest model version */
    float mean[3] = {0.5f, -2.0f, 10.0f}, sd[3] = {1.0f, 0.25f, 3.0f};
    char *names[2] = {"cat", "dog"};
    pl_model_info mv = {.cfg = cfg, .T = 2, .input = PL_INPUT_VALUES, .features = 3,
                        .norm_mean = mean, .norm_std = sd, .class_names = names,
                        .precision = PL_PRECISION_BF16};
    snprintf(path, sizeof path, "%s/model-3-4-2-values-names", ck);
    if (pl_model_save(path, &mv, pl_trainer_params(tr), NULL, &err))
        return 1;
    pl_ckpt_meta meta = {.cfg = cfg, .T = 2, .opts = *pl_trainer_opts(tr), .step = 1,
                         .total = 5, .n_train = 10};
    snprintf(path, sizeof path, "%s/checkpoint-3-4-2", ck);
    if (pl_checkpoint_save(path, tr, &meta, NULL, &err))
        return 1;
    /* every field of the run set away from its default */
    pl_ckpt_meta all = meta;
    all.opts.init = PL_INIT_CHRONO;
    all.opts.dropout = 0.25f;
    all.opts.warmup = 3;
    all.opts.lr_scaling = PL_LR_SCALE_SQRT;
    all.opts.weight_decay = 0.01f;
    all.sequence = PL_SEQ_PIXELS;
    all.permuted = 1;
    all.permute_seed = 7;
    all.normalize = 1;
    all.opts.precision = PL_PRECISION_BF16;
    all.opts.optimizer = PL_OPT_RMSPROP;
    snprintf(path, sizeof path, "%s/checkpoint-3-4-2-every-field", ck);
    if (pl_checkpoint_save(path, tr, &all, NULL, &err))
        return 1;
    /* the model as safetensors, and a two-layer model of the same shape */
    snprintf(path, sizeof path, "%s/model-3-4-2.safetensors", st);
    if (pl_safetensors_save(path, &mi, pl_trainer_params(tr), NULL, &err))
        return 1;
    pl_trainer_free(tr);
    pl_config two = {3, 2, 2, 2};
    float *p = pl_alloc_floats(pl_param_count(&two));
    pl_model_init(&two, p, PL_INIT_DEFAULT, 5);
    snprintf(path, sizeof path, "%s/model-3-2-2-layers2.safetensors", st);
    pl_model_info mtwo = {.cfg = two};
    if (pl_safetensors_save(path, &mtwo, p, NULL, &err))
        return 1;
    /* read pixel by pixel in a permuted order: every metadata key */
    pl_config cpx = {1, 2, 2, 1}; /* fewer parameters than two: p holds them */
    pl_model_info mpx = {.cfg = cpx, .T = 6, .rows = 2, .cols = 3, .sequence = PL_SEQ_PIXELS,
                         .permuted = 1, .permute_seed = 12345, .dropout = 0.25f};
    snprintf(path, sizeof path, "%s/model-1-2-2-pixels.safetensors", st);
    if (pl_safetensors_save(path, &mpx, p, NULL, &err))
        return 1;
    pl_model_info mst = {.cfg = cfg, .T = 2, .input = PL_INPUT_VALUES, .features = 3,
                         .norm_mean = mean, .norm_std = sd, .class_names = names};
    snprintf(path, sizeof path, "%s/model-3-4-2-values-names.safetensors", st);
    pl_free(p); /* two's parameters are fewer than cfg's */
    p = pl_alloc_floats(pl_param_count(&cfg));
    pl_model_init(&cfg, p, PL_INIT_DEFAULT, 5);
    if (pl_safetensors_save(path, &mst, p, NULL, &err))
        return 1;
    pl_free(p);

    /* images: PNG gray 8 and 16 bits, palette, RGBA; PGM P5 8 and 16 bits, P2 */
    unsigned char px[4 * 3 * 8];
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (unsigned char)(i * 29);
    write_png(im, "gray8-4x3.png", 4, 3, PNG_COLOR_TYPE_GRAY, 8, px, 4);
    write_png(im, "gray16-4x3.png", 4, 3, PNG_COLOR_TYPE_GRAY, 16, px, 8);
    unsigned char pal[] = {0x1B, 0xE4, 0x6C};
    write_png(im, "palette2-4x3.png", 4, 3, PNG_COLOR_TYPE_PALETTE, 2, pal, 1);
    write_png(im, "rgba-2x3.png", 2, 3, PNG_COLOR_TYPE_RGBA, 8, px, 8);
#define LITERAL(s) s, sizeof s - 1
    write_file(im, "p5-3x2.pgm", LITERAL("P5\n# seed\n3 2\n255\n\x00\x07\xff\x80\x01\xfe"), 0);
    write_file(im, "p5-16bit-2x1.pgm", LITERAL("P5 2 1 65535\n\x12\x34\xff\xff"), 0);
    write_file(im, "p2-3x2.pgm", LITERAL("P2\n3 2\n15\n0 15 7\n# c\n1 2 3\n"), 0);
    return 0;
}
