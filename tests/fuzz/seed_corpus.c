/* Writes the committed seed corpus of the fuzz harnesses (run once; the
 * files under corpus/ are its output):
 *   cc -Iinclude -include config.h tests/fuzz/seed_corpus.c src/libparlstm.a \
 *      -lopenblas -lz -lm -fopenmp -pthread -o /tmp/seed && /tmp/seed tests/fuzz/corpus
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "parlstm.h"

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

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: seed_corpus DIR (writes DIR/idx and DIR/checkpoint)\n");
        return 2;
    }
    char idx[4096], ck[4096];
    snprintf(idx, sizeof idx, "%s/idx", argv[1]);
    snprintf(ck, sizeof ck, "%s/checkpoint", argv[1]);
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
    pl_ckpt_meta meta = {.cfg = cfg, .T = 2, .opts = *pl_trainer_opts(tr), .step = 1,
                         .total = 5, .n_train = 10};
    snprintf(path, sizeof path, "%s/checkpoint-3-4-2", ck);
    if (pl_checkpoint_save(path, tr, &meta, NULL, &err))
        return 1;
    pl_trainer_free(tr);
    return 0;
}
