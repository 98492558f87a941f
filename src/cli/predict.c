/* parlstm predict: classifies PNG, PGM and IDX images, or sequences of
 * values (.npy, .ts, .tsv), with a saved model and writes one CSV row per
 * image or sequence on stdout; a model that keeps its classes' names
 * (trained on .ts or .tsv) writes them, others the class index.
 *
 * Each input becomes a data set of its images (rows, cols) or sequences,
 * is checked against the shape the model reads, is read the way the model
 * reads them (model_reading: sequences standardised as it records), and
 * goes through the trainer's forward pass (pl_trainer_predict). An input that cannot be read or has the wrong
 * shape is named on stderr and skipped; the others are still classified
 * (exit status 1 then, 0 when every input was classified). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

static const char *const CMD = "predict";

typedef struct {
    const char *path;      /* --model */
    const char *lengths;   /* --lengths: for the one .npy input */
    pl_model_info mi;
    float *params;
    pl_train_opts o;
    pl_trainer *tr;        /* for sequences of tr_T steps, made when first needed */
    int tr_T;
    int top, probabilities;
    float *probs;          /* (n, C) of the current input */
} predictor;

/* ---- inputs */

/* Whether a file name ends in .png or .pgm (any case). */
static int image_name(const char *path)
{
    size_t n = strlen(path);
    return n > 4 && (!strcasecmp(path + n - 4, ".png") || !strcasecmp(path + n - 4, ".pgm"));
}

/* Whether an input holds sequences of values: a .npy (by its magic), a
 * .ts (by its '@' or '#' header lines), or by its name .npy, .ts or .tsv
 * (any case; an older UCR .txt or .csv is named .tsv to be taken). npy: a
 * .npy in particular. */
static int series_input(const char *path, int *npy)
{
    unsigned char head[6] = {0};
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(head, 1, sizeof head, f) : 0;
    if (f)
        fclose(f);
    const char *dot = strrchr(path, '.');
    const char *ext = dot && !strchr(dot, '/') ? dot : "";
    *npy = (got == 6 && !memcmp(head, "\x93NUMPY", 6)) || !strcasecmp(ext, ".npy");
    return *npy || (got > 0 && (head[0] == '@' || head[0] == '#')) || !strcasecmp(ext, ".ts") ||
           !strcasecmp(ext, ".tsv");
}

/* An input of sequences for the model: its width and classes checked by
 * the reader (labels not needed), standardised as the model records, read
 * as it reads them. 0, or 1 after a message. */
static int read_series(const predictor *p, const char *path, int npy, pl_dataset *ds)
{
    const pl_model_info *m = &p->mi;
    if (m->input == PL_INPUT_IMAGES && m->version >= 4) {
        fprintf(stderr, "parlstm predict: %s: sequences of values, but the model %s reads "
                "images (it was trained on IDX images)\n", path, p->path);
        return 1;
    }
    return cli_load_sequences(CMD, p->path, m, path, NULL, npy ? p->lengths : NULL, 0, ds);
}

/* An input's images, read by the format its first bytes tell: IDX (raw or
 * gzip) through the IDX reader, PNG and PGM through the image reader. A
 * file that cannot be opened goes to the image reader when its name says
 * PNG or PGM, else to the IDX reader, which also looks for FILE.gz and
 * names both. */
static pl_status read_input(const char *path, pl_dataset *ds, pl_image *img, pl_error *err)
{
    unsigned char magic[4] = {0};
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(magic, 1, 4, f) : 0;
    if (f)
        fclose(f);
    int idx = (!f && !image_name(path)) || (got == 4 && magic[0] == 0 && magic[1] == 0 && magic[2] == 8) ||
              (got >= 2 && magic[0] == 0x1f && magic[1] == 0x8b);
    int image = got >= 2 && (magic[0] == 0x89 || magic[0] == 'P');
    memset(img, 0, sizeof *img);
    memset(ds, 0, sizeof *ds);
    if (idx)
        return pl_dataset_load_images(ds, path, err);
    if (got > 0 && !image) {
        err->code = PL_ERR_MAGIC;
        snprintf(err->msg, sizeof err->msg, "%s: not a PNG or PGM image, nor an IDX images file "
                 "(it starts with neither \\x89PNG, P5/P2 nor 00 00 08 03)", path);
        return err->code;
    }
    pl_status rc = pl_image_read(path, img, err);
    if (rc)
        return rc;
    *ds = (pl_dataset){.images = img->pixels, .n = 1, .T = img->rows, .D = img->cols};
    return PL_OK;
}

/* The images have the shape the model reads: rows x cols as it records
 * them, or (a model that does not record its sequence length) rows of its
 * width. */
static int check_shape(const predictor *p, const char *input, const pl_dataset *ds)
{
    const pl_model_info *m = &p->mi;
    const char *what = ds->n == 1 && !ds->owned_images ? "an image" : "images";
    if (m->T == 0 ? ds->D == m->cfg.input : ds->T == m->rows && ds->D == m->cols)
        return 0;
    if (m->T == 0)
        fprintf(stderr, "parlstm predict: %s: %s of %d rows x %d columns, the model %s reads "
                "rows of %d pixels\n", input, what, ds->T, ds->D, p->path, m->cfg.input);
    else
        fprintf(stderr, "parlstm predict: %s: %s of %d rows x %d columns, the model %s reads "
                "%d rows x %d columns\n", input, what, ds->T, ds->D, p->path, m->rows,
                m->cols);
    return 1;
}

/* Applies the model's reading of an image to the images of ds (n, rows,
 * cols): rows, each image row a time step (as they are); pixels, each
 * pixel a time step of width 1; then, for a permuted model, its fixed
 * order of the pixels (as eval and train read them: cli_read_as). Returns
 * 0, or 1 after a message. */
static int model_reading(const predictor *p, pl_dataset *ds)
{
    const pl_model_info *m = &p->mi;
    return cli_read_as(CMD, ds, m->sequence, m->permuted, m->permute_seed);
}

/* ---- output */

/* s as a CSV field: quoted (quotes doubled) when it holds a comma, a quote
 * or a line break. */
static void csv_field(const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    putchar('"');
}

static void print_header(const predictor *p)
{
    printf("input,index,class,probability");
    for (int k = 2; k <= p->top; k++)
        printf(",class_%d,probability_%d", k, k);
    for (int c = 0; p->probabilities && c < p->mi.cfg.classes; c++)
        printf(",p_%d", c);
    printf("\n");
}

/* The classes of probs[0..C) from the most probable down; ties go to
 * the lower class. best[0..k). */
static void rank(const float *probs, int C, int k, int *best)
{
    for (int j = 0; j < k; j++) {
        int b = -1;
        for (int c = 0; c < C; c++) {
            int taken = 0;
            for (int i = 0; i < j && !taken; i++)
                taken = best[i] == c;
            if (!taken && (b < 0 || probs[c] > probs[b]))
                b = c;
        }
        best[j] = b;
    }
}

/* Class c as the model names it: its name, or its index. */
static void print_class(const predictor *p, int c)
{
    if (p->mi.class_names) {
        putchar(',');
        csv_field(p->mi.class_names[c]);
    } else {
        printf(",%d", c);
    }
}

static void print_row(const predictor *p, const char *input, size_t index, const float *probs)
{
    const int C = p->mi.cfg.classes;
    int best[256];
    rank(probs, C, p->top, best);
    csv_field(input);
    printf(",%zu", index);
    for (int j = 0; j < p->top; j++) {
        print_class(p, best[j]);
        printf(",%.6f", (double)probs[best[j]]);
    }
    for (int c = 0; p->probabilities && c < C; c++)
        printf(",%.6f", (double)probs[c]);
    printf("\n");
}

/* ---- classifying */

/* A trainer for sequences of T steps (the last one when T is the same). */
static pl_trainer *trainer_for(predictor *p, int T, pl_error *err)
{
    if (p->tr && p->tr_T == T)
        return p->tr;
    pl_trainer_free(p->tr);
    p->tr = pl_trainer_create(&p->mi.cfg, T, &p->o, err);
    p->tr_T = T;
    if (p->tr)
        memcpy(pl_trainer_params(p->tr), p->params,
               sizeof(float) * pl_param_count(&p->mi.cfg));
    return p->tr;
}

/* An input read as the model reads it: sequences of values or images.
 * 0, or 1 after naming the input and what was wrong; ds and img are the
 * caller's to free either way. */
static int read_for_model(const predictor *p, const char *input, pl_dataset *ds, pl_image *img)
{
    pl_error err = {0};
    int npy;
    memset(ds, 0, sizeof *ds);
    memset(img, 0, sizeof *img);
    if (series_input(input, &npy))
        return read_series(p, input, npy, ds);
    if (p->mi.input == PL_INPUT_VALUES) {
        fprintf(stderr, "parlstm predict: %s: the model %s reads sequences of values (.npy, "
                ".ts, .tsv), not images\n", input, p->path);
        return 1;
    }
    if (read_input(input, ds, img, &err)) {
        print_error(CMD, &err);
        return 1;
    }
    return check_shape(p, input, ds) || model_reading(p, ds);
}

/* Classifies every image or sequence of one input and prints its rows;
 * 0, or 1 after naming the input and what was wrong. */
static int classify(predictor *p, const char *input)
{
    pl_error err = {0};
    pl_dataset ds;
    pl_image img;
    int rc = read_for_model(p, input, &ds, &img);
    if (!rc) {
        pl_trainer *tr = trainer_for(p, ds.T, &err);
        const int C = p->mi.cfg.classes;
        free(p->probs);
        p->probs = tr ? malloc(sizeof(float) * ds.n * (size_t)C) : NULL;
        if (!tr || !p->probs || pl_trainer_predict(tr, &ds, p->probs, &err)) {
            fprintf(stderr, "parlstm predict: %s: %s\n", input, p->probs || !tr ? err.msg
                                                                             : "out of memory");
            rc = 1;
        }
        for (size_t i = 0; !rc && i < ds.n; i++)
            print_row(p, input, i, p->probs + i * (size_t)C);
    }
    pl_dataset_free(&ds);
    pl_image_free(&img);
    return rc;
}

/* --lengths goes with exactly one .npy input: 0, or EXIT_USAGE after
 * saying so. */
static int check_lengths(const char *lengths, char **inputs, int n)
{
    int npy = 0, is_npy;
    for (int i = 0; lengths && i < n; i++)
        npy += series_input(inputs[i], &is_npy) && is_npy;
    if (!lengths || npy == 1)
        return 0;
    fprintf(stderr, "parlstm predict: --lengths %s goes with one .npy input, and %d of the "
            "inputs are .npy files\n", lengths, npy);
    return EXIT_USAGE;
}

int cmd_predict(int argc, char **argv)
{
    cli_value v[O_COUNT];
    int first;
    int rc = cli_parse_operands(CMD_PREDICT, argc, argv, v, &first);
    if (rc)
        return rc < 0 ? 0 : rc;
    predictor p = {.path = v[O_MODEL].text, .top = (int)v[O_TOP].i,
                   .probabilities = (int)v[O_PROBS].i};
    if (!p.path)
        return cli_missing(CMD_PREDICT, O_MODEL);
    p.lengths = v[O_LENGTHS].text;
    if ((rc = check_lengths(p.lengths, argv + first, argc - first)))
        return rc;
    pl_train_opts_default(&p.o);
    p.o.workers = (int)v[O_WORKERS].i;
    p.o.threads = (int)v[O_THREADS].i;
    p.o.gemm = (pl_gemm_backend)v[O_GEMM].i;
    if (pl_gemm_resolve(p.o.gemm) == PL_GEMM_BLAS)
        cli_fix_openblas();
    if (cli_load_model(CMD, p.path, &p.mi, &p.params))
        return 1;
    p.o.hidden = p.mi.cfg.hidden;
    p.o.precision = p.mi.precision; /* the model runs as it trained */
    if (p.o.workers > p.o.batch)
        p.o.batch = p.o.workers;
    if (p.top > p.mi.cfg.classes) {
        fprintf(stderr, "parlstm predict: --top %d is more than the %d classes of %s\n", p.top,
                p.mi.cfg.classes, p.path);
        pl_model_info_free(&p.mi);
        pl_free(p.params);
        return EXIT_USAGE;
    }
    print_header(&p);
    int failed = 0;
    for (int i = first; i < argc; i++)
        failed += classify(&p, argv[i]);
    if (failed && argc - first > 1)
        fprintf(stderr, "parlstm predict: %d of %d inputs not classified\n", failed,
                argc - first);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "parlstm predict: cannot write the predictions to stdout\n");
        failed++;
    }
    pl_trainer_free(p.tr);
    free(p.probs);
    pl_model_info_free(&p.mi);
    pl_free(p.params);
    return failed ? 1 : 0;
}
