/* safetensors export and import: the file's layout and names as PyTorch
 * expects them, an exact round trip for one and several layers, files made
 * elsewhere (bias_hh not zero, no metadata), and every kind of hostile file
 * refused with its own error. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

/* D = 3, H = 4, C = 2 */
static const pl_config CFG1 = {3, 4, 2, 1};

static float *random_params(const pl_config *cfg, uint64_t seed)
{
    size_t n = pl_param_count(cfg);
    float *p = pl_alloc_floats(n);
    tu_fill(p, n, 2.0f, seed);
    return p;
}

/* Exports cfg with T time steps (0: unknown), rows read as time steps. */
static pl_status save(const char *path, const pl_config *cfg, int T, const float *p,
                      pl_error *err)
{
    pl_model_info m = {.cfg = *cfg, .T = T};
    return pl_safetensors_save(path, &m, p, NULL, err);
}

static uint64_t header_len(const unsigned char *b)
{
    uint64_t n;
    memcpy(&n, b, 8);
    return n;
}

static float data_float(const unsigned char *b, json_t *root, const char *tensor, size_t i)
{
    json_t *e = json_object_get(root, tensor);
    ck_assert_msg(e != NULL, "no tensor %s", tensor);
    size_t begin = (size_t)json_integer_value(json_array_get(json_object_get(e, "data_offsets"), 0));
    float x;
    memcpy(&x, b + 8 + header_len(b) + begin + 4 * i, 4);
    return x;
}

/* The file says what PyTorch needs: names, shapes, F32, the transposes,
 * zero bias_hh, the metadata, and data aligned to 8 bytes. */
START_TEST(test_layout_and_names)
{
    const char *dir = tu_dir;
    const char *path = tu_path(dir, "m.safetensors");
    float *p = random_params(&CFG1, 7);
    pl_tensors t;
    pl_tensors_bind(&CFG1, p, &t);
    pl_error err = {0};
    ck_assert_int_eq(save(path, &CFG1, 9, p, &err), PL_OK);
    size_t len;
    unsigned char *b = tu_read_all(path, &len);
    uint64_t hl = header_len(b);
    ck_assert_uint_eq((8 + hl) % 8, 0);
    json_error_t je;
    json_t *root = json_loadb((const char *)b + 8, hl, 0, &je);
    ck_assert_msg(root != NULL, "header: %s", je.text);
    const struct {
        const char *name;
        json_int_t r, c;
    } want[] = {{"input.weight", 4, 3},         {"input.bias", 4, 0},
                {"lstm.weight_ih_l0", 16, 4},   {"lstm.weight_hh_l0", 16, 4},
                {"lstm.bias_ih_l0", 16, 0},     {"lstm.bias_hh_l0", 16, 0},
                {"output.weight", 2, 4},        {"output.bias", 2, 0}};
    size_t bytes = 0;
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        json_t *e = json_object_get(root, want[i].name);
        ck_assert_msg(e != NULL, "no %s", want[i].name);
        ck_assert_str_eq(json_string_value(json_object_get(e, "dtype")), "F32");
        json_t *s = json_object_get(e, "shape");
        ck_assert_uint_eq(json_array_size(s), want[i].c ? 2 : 1);
        ck_assert_int_eq(json_integer_value(json_array_get(s, 0)), want[i].r);
        if (want[i].c)
            ck_assert_int_eq(json_integer_value(json_array_get(s, 1)), want[i].c);
        bytes += 4 * (size_t)want[i].r * (size_t)(want[i].c ? want[i].c : 1);
    }
    ck_assert_uint_eq(json_object_size(root), 9); /* 8 tensors + __metadata__ */
    ck_assert_uint_eq(len, 8 + hl + bytes);
    /* PyTorch's (out, in) against parlstm's (in, out) */
    const size_t H = 4, D = 3, C = 2;
    for (size_t h = 0; h < H; h++)
        for (size_t d = 0; d < D; d++)
            ck_assert(data_float(b, root, "input.weight", h * D + d) == t.w_in[d * H + h]);
    for (size_t g = 0; g < 4 * H; g++)
        for (size_t k = 0; k < H; k++) {
            ck_assert(data_float(b, root, "lstm.weight_ih_l0", g * H + k) == t.w[0][k * 4 * H + g]);
            ck_assert(data_float(b, root, "lstm.weight_hh_l0", g * H + k) ==
                      t.w[0][(H + k) * 4 * H + g]);
        }
    for (size_t g = 0; g < 4 * H; g++) {
        ck_assert(data_float(b, root, "lstm.bias_ih_l0", g) == t.b[0][g]);
        ck_assert(data_float(b, root, "lstm.bias_hh_l0", g) == 0.0f);
    }
    for (size_t c = 0; c < C; c++) {
        ck_assert(data_float(b, root, "output.bias", c) == t.b_out[c]);
        for (size_t h = 0; h < H; h++)
            ck_assert(data_float(b, root, "output.weight", c * H + h) == t.w_out[h * C + c]);
    }
    json_t *m = json_object_get(root, "__metadata__");
    const char *kv[][2] = {{"format", "pt"},          {"input_scaling", "pixel/255"},
                           {"sequence", "rows"},      {"time_steps", "9"},
                           {"image_rows", "9"},       {"image_cols", "3"},
                           {"permuted", "no"},        {"dropout", "0"},
                           {"width", "3"},            {"hidden", "4"},
                           {"layers", "1"},           {"classes", "2"},
                           {"gate_order", "i,f,g,o"}, {"parlstm_version", PACKAGE_VERSION}};
    for (size_t i = 0; i < sizeof kv / sizeof *kv; i++) {
        const char *v = json_string_value(json_object_get(m, kv[i][0]));
        ck_assert_msg(v && !strcmp(v, kv[i][1]), "metadata %s = %s, expected %s", kv[i][0],
                      v ? v : "(none)", kv[i][1]);
    }
    ck_assert_ptr_null(json_object_get(m, "permute_seed")); /* not permuted */
    ck_assert_ptr_null(json_object_get(m, "pixel_order"));
    json_decref(root);
    free(b);
    pl_free(p);
}
END_TEST

/* Export, import: the same description and every parameter bit for bit
 * (negative zeros and subnormals included): 1 layer read by rows, 3
 * layers, 2 layers read pixel by pixel in a permuted order with dropout. */
static float RT_MEAN[3] = {-0.5f, 1e-20f, 12345.678f}, RT_STD[3] = {0.25f, 3e-7f, 1e6f};
static char *RT_NAMES[3] = {"walking", "\"up\", down", "\xc3\xa9t\xc3\xa9"};
static const pl_model_info ROUND_TRIP[] = {
    {.cfg = {3, 4, 2, 1}, .T = 28},
    {.cfg = {3, 4, 3, 1}, .T = 9, .input = PL_INPUT_VALUES, .features = 3, .norm_mean = RT_MEAN,
     .norm_std = RT_STD, .class_names = RT_NAMES},
    {.cfg = {3, 4, 2, 1}, .T = 9, .input = PL_INPUT_VALUES},
    {.cfg = {5, 6, 3, 3}, .T = 28, .rows = 28, .cols = 5, .dropout = 0.5f},
    {.cfg = {1, 6, 3, 2}, .T = 12, .rows = 3, .cols = 4, .sequence = PL_SEQ_PIXELS,
     .permuted = 1, .permute_seed = UINT64_MAX, .dropout = 0.3f},
};

START_TEST(test_round_trip_exact)
{
    const pl_model_info *m = &ROUND_TRIP[_i];
    const pl_config *cfg = &m->cfg;
    const char *dir = tu_dir;
    const char *path = tu_path(dir, "m.safetensors");
    float *p = random_params(cfg, 11 + (uint64_t)_i);
    size_t n = pl_param_count(cfg);
    p[0] = -0.0f;
    p[n - 1] = 1e-41f; /* subnormal */
    pl_tensors t;
    pl_tensors_bind(cfg, p, &t);
    t.b[cfg->layers - 1][3] = -0.0f;
    pl_error err = {0};
    ck_assert_int_eq(pl_safetensors_save(path, m, p, NULL, &err), PL_OK);
    pl_model_info got;
    float *q = NULL;
    ck_assert_msg(pl_safetensors_load(path, &got, &q, &err) == PL_OK, "%s", err.msg);
    ck_assert_int_eq(got.cfg.input, cfg->input);
    ck_assert_int_eq(got.cfg.hidden, cfg->hidden);
    ck_assert_int_eq(got.cfg.classes, cfg->classes);
    ck_assert_int_eq(got.cfg.layers, cfg->layers);
    ck_assert_int_eq(got.T, m->T);
    ck_assert_int_eq(got.rows, m->rows ? m->rows : m->T); /* 0 x 0: T x D */
    ck_assert_int_eq(got.cols, m->cols ? m->cols : cfg->input);
    ck_assert_int_eq(got.sequence, m->sequence);
    ck_assert_int_eq(got.permuted, m->permuted);
    ck_assert_uint_eq(got.permute_seed, m->permute_seed);
    ck_assert_int_eq(memcmp(&got.dropout, &m->dropout, 4), 0);
    ck_assert_int_eq(got.version, 0);
    ck_assert_int_eq(got.input, m->input);
    ck_assert_int_eq(got.features, m->features);
    if (m->features) {
        ck_assert_mem_eq(got.norm_mean, m->norm_mean, 4 * (size_t)m->features);
        ck_assert_mem_eq(got.norm_std, m->norm_std, 4 * (size_t)m->features);
    }
    ck_assert_int_eq(!got.class_names, !m->class_names);
    for (int c = 0; m->class_names && c < cfg->classes; c++)
        ck_assert_str_eq(got.class_names[c], m->class_names[c]);
    ck_assert_int_eq(memcmp(p, q, 4 * n), 0);
    pl_model_info_free(&got);
    pl_free(q);
    if (m->input == PL_INPUT_VALUES) { /* the metadata as PyTorch's side reads it */
        size_t len;
        unsigned char *b = tu_read_all(path, &len);
        json_t *root = json_loadb((const char *)b + 8, header_len(b), 0, NULL);
        json_t *meta = json_object_get(root, "__metadata__");
        const char *kv[][2] = {
            {"input_scaling", m->features ? "standard" : "none"},
            {"normalize_mean", m->features ? "[-0.5,9.99999968e-21,12345.6777]" : NULL},
            {"normalize_std", m->features ? "[0.25,3.00000011e-07,1000000]" : NULL},
            {"class_names", m->class_names ? "[\"walking\",\"\\\"up\\\", down\",\"\xc3\xa9t\xc3\xa9\"]"
                                           : NULL}};
        for (size_t k = 0; k < sizeof kv / sizeof *kv; k++) {
            const char *v = json_string_value(json_object_get(meta, kv[k][0]));
            ck_assert_msg(kv[k][1] ? v && !strcmp(v, kv[k][1]) : !v, "metadata %s = %s, "
                          "expected %s", kv[k][0], v ? v : "(none)", kv[k][1] ? kv[k][1] : "none");
        }
        json_decref(root);
        free(b);
    }
    /* T = 0 (a version 1 model file): no time_steps or shape in the file,
     * none read back */
    if (m->sequence == PL_SEQ_ROWS) {
        ck_assert_int_eq(save(path, cfg, 0, p, &err), PL_OK);
        ck_assert_int_eq(pl_safetensors_load(path, &got, &q, &err), PL_OK);
        ck_assert_int_eq(got.T, 0);
        ck_assert_int_eq(got.rows, 0);
        ck_assert_int_eq(got.cols, 0);
        pl_free(q);
    }
    pl_free(p);
}
END_TEST

/* A file in the layout parlstm writes, built here from a JSON tree (so the
 * hostile cases can edit it): the header of the tree, padded or not, then
 * the data. */
static void write_tree(const char *path, json_t *root, const unsigned char *data, size_t dlen,
                       int pad)
{
    char *h = json_dumps(root, JSON_COMPACT);
    size_t hl = strlen(h), padded = pad ? (hl + 8 + 7) / 8 * 8 - 8 : hl;
    unsigned char *b = malloc(8 + padded + dlen);
    uint64_t n = padded;
    memcpy(b, &n, 8);
    memcpy(b + 8, h, hl);
    memset(b + 8 + hl, ' ', padded - hl);
    memcpy(b + 8 + padded, data, dlen);
    tu_write(path, b, 8 + padded + dlen);
    free(b);
    free(h);
}

/* A file as PyTorch users would make it: no metadata, keys in another
 * order, no padding, and a bias_hh that is not zero. */
START_TEST(test_foreign_file)
{
    const char *dir = tu_dir;
    const char *path = tu_path(dir, "torch.safetensors");
    float *p = random_params(&CFG1, 5);
    pl_error err = {0};
    ck_assert_int_eq(save(path, &CFG1, 0, p, &err), PL_OK);
    size_t len;
    unsigned char *b = tu_read_all(path, &len);
    uint64_t hl = header_len(b);
    json_t *root = json_loadb((const char *)b + 8, hl, 0, NULL), *rev = json_object();
    json_object_del(root, "__metadata__");
    const char *key;
    json_t *v;
    void *tmp;
    /* reversed key order */
    const char *keys[16];
    int nk = 0;
    json_object_foreach_safe(root, tmp, key, v) keys[nk++] = key;
    for (int i = nk - 1; i >= 0; i--)
        json_object_set(rev, keys[i], json_object_get(root, keys[i]));
    /* bias_hh = 0.5 everywhere */
    json_t *e = json_object_get(root, "lstm.bias_hh_l0");
    size_t begin = (size_t)json_integer_value(json_array_get(json_object_get(e, "data_offsets"), 0));
    unsigned char *data = b + 8 + hl;
    for (int g = 0; g < 16; g++) {
        float half = 0.5f;
        memcpy(data + begin + 4 * g, &half, 4);
    }
    write_tree(path, rev, data, len - 8 - hl, 0);
    pl_model_info got;
    float *q = NULL;
    ck_assert_msg(pl_safetensors_load(path, &got, &q, &err) == PL_OK, "%s", err.msg);
    ck_assert_int_eq(got.T, 0);
    ck_assert_int_eq(got.sequence, PL_SEQ_ROWS);
    ck_assert_int_eq(got.permuted, 0);
    pl_tensors a, c;
    pl_tensors_bind(&CFG1, p, &a);
    pl_tensors_bind(&CFG1, q, &c);
    for (int g = 0; g < 16; g++)
        ck_assert_float_eq(c.b[0][g], a.b[0][g] + 0.5f);
    ck_assert_int_eq(memcmp(a.w[0], c.w[0], 4 * 8 * 16), 0);
    ck_assert_int_eq(memcmp(a.w_out, c.w_out, 4 * 8), 0);
    pl_free(q);
    json_decref(root);
    json_decref(rev);
    free(b);
    pl_free(p);
}
END_TEST

START_TEST(test_export_refuses)
{
    const char *dir = tu_dir;
    float *p = random_params(&CFG1, 3);
    pl_tensors t;
    pl_tensors_bind(&CFG1, p, &t);
    t.w[0][4 * 4 * 5 + 2] = NAN; /* row 5 = h row 1, gate column 2 */
    pl_error err = {0};
    const char *path = tu_path(dir, "nan.safetensors");
    ck_assert_int_eq(save(path, &CFG1, 0, p, &err), PL_ERR_NONFINITE);
    ck_assert_msg(strstr(err.msg, "nan.safetensors: cannot export: tensor 'lstm.weight_hh_l0' "
                                  "holds a NaN at [2, 1]") != NULL,
                  "%s", err.msg);
    struct stat st;
    ck_assert_int_ne(stat(path, &st), 0);
    t.w[0][4 * 4 * 5 + 2] = 0;
    ck_assert_int_eq(save(tu_path(dir, "no/such/dir/m.safetensors"), &CFG1, 0, p, &err),
                     PL_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "no/such/dir/m.safetensors"));
    static char *LATIN1[2] = {"ok", "\xe9t\xe9"};
    pl_config bad = CFG1;
    bad.classes = 1;
    ck_assert_int_eq(save(path, &bad, 0, p, &err), PL_ERR_ARG);
    /* a description that does not fit the config or itself */
    static const struct {
        pl_model_info m;
        const char *fragment;
    } wrong[] = {
        {{.cfg = {3, 4, 2, 1}, .T = 7, .rows = 7, .cols = 4},
         "cannot export: images of 7x4 read as rows cannot make 7 time steps of width 3"},
        {{.cfg = {3, 4, 2, 1}, .T = 6, .rows = 2, .cols = 3, .sequence = PL_SEQ_PIXELS},
         "images of 2x3 read as pixels cannot make 6 time steps of width 3"},
        {{.cfg = {3, 4, 2, 1}, .T = 0, .permuted = 1},
         "cannot export: an image shape, sequence mode or permutation without the sequence"},
        {{.cfg = {3, 4, 2, 1}, .T = 0, .sequence = PL_SEQ_PIXELS}, "without the sequence length"},
        {{.cfg = {3, 4, 2, 1}, .T = 7, .dropout = 1.0f}, "dropout 1 (0 to below 1)"},
        {{.cfg = {3, 4, 2, 1}, .T = 0, .dropout = -0.5f}, "dropout -0.5 (0 to below 1)"},
        {{.cfg = {3, 4, 2, 1}, .T = 70000}, "cannot export: 70000 time steps"},
        {{.cfg = {3, 4, 2, 1}, .T = 7, .permuted = 2}, "permuted 2 (0 or 1)"},
        {{.cfg = {3, 4, 2, 1}, .T = 0, .input = PL_INPUT_VALUES, .features = 3,
          .norm_mean = RT_MEAN, .norm_std = RT_STD},
         "cannot export: a standardisation without the sequence length"},
        {{.cfg = {3, 4, 2, 1}, .T = 7, .features = 3, .norm_mean = RT_MEAN, .norm_std = RT_STD},
         "a standardisation of 3 features for a model that reads images"},
        {{.cfg = {3, 4, 2, 1}, .T = 7, .input = PL_INPUT_VALUES, .class_names = LATIN1},
         "cannot export: class 1's name is not UTF-8 text"},
    };
    for (size_t k = 0; k < sizeof wrong / sizeof *wrong; k++) {
        pl_status rc = pl_safetensors_save(path, &wrong[k].m, p, NULL, &err);
        printf("export of a wrong description %zu -> %s: %s\n", k, pl_status_name(rc), err.msg);
        ck_assert_int_eq(rc, PL_ERR_ARG);
        ck_assert_msg(strstr(err.msg, wrong[k].fragment) != NULL, "case %zu: %s", k, err.msg);
        ck_assert_msg(strncmp(err.msg, path, strlen(path)) == 0, "names no file: %s", err.msg);
        ck_assert_int_ne(stat(path, &st), 0);
    }
    pl_free(p);
}
END_TEST

/* Runs examples/load_in_pytorch.py with args after the script; its exit
 * status, its output in r. */
static int run_script(const char *py, const char *const *args, tu_result *r)
{
    const char *src = getenv("PARLSTM_SRCDIR");
    ck_assert_msg(src != NULL, "PARLSTM_SRCDIR is not set (run the tests with make check)");
    char script[4096];
    snprintf(script, sizeof script, "%s/examples/load_in_pytorch.py", src);
    const char *argv[16] = {script};
    for (int i = 0; args[i] && i < 14; i++)
        argv[i + 1] = args[i];
    return tu_run_program(r, py, argv, NULL, 0);
}

/* load_in_pytorch.py's --predictions CSV against parlstm's logits (n, 3)
 * and labels: every row there, the same class; the largest logit
 * difference. */
static double compare_predictions(const char *csv, const float *logits, const uint8_t *labels,
                                  int n)
{
    FILE *f = fopen(csv, "r");
    ck_assert_ptr_nonnull(f);
    char line[1024];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_str_eq(line, "index,label,class,logit_0,logit_1,logit_2\n");
    double worst = 0;
    int rows = 0;
    for (int i = 0; fgets(line, sizeof line, f); i++, rows++) {
        int index, label, cls;
        double l[3];
        ck_assert_int_eq(sscanf(line, "%d,%d,%d,%lf,%lf,%lf", &index, &label, &cls, &l[0], &l[1],
                                &l[2]),
                         6);
        ck_assert_int_eq(index, i);
        ck_assert_int_eq(label, labels[i]);
        int mine = 0;
        for (int c = 0; c < 3; c++) {
            if (logits[i * 3 + c] > logits[i * 3 + mine])
                mine = c;
            double d = fabs(l[c] - logits[i * 3 + c]);
            worst = d > worst ? d : worst;
        }
        ck_assert_msg(cls == mine, "item %d: PyTorch says class %d, parlstm %d", i, cls, mine);
    }
    fclose(f);
    ck_assert_int_eq(rows, n);
    return worst;
}

/* parlstm's forward pass over the n items of ds with parameters p, as
 * eval runs it: the logits (n, C) and the right answers. */
static int forward_logits(const pl_config *cfg, int T, const float *p, const pl_dataset *ds,
                          int n, float *logits)
{
    pl_packed *pk = pl_packed_create(cfg, PL_GEMM_AUTO);
    pl_ws *ws = pl_ws_create(cfg, T, n, 1, PL_GEMM_AUTO);
    ck_assert(pk && ws);
    pl_packed_update(pk, p, 0, 1);
    uint32_t idx[64];
    ck_assert_int_le(n, 64);
    for (int i = 0; i < n; i++)
        idx[i] = (uint32_t)i;
    pl_ws_load(ws, ds, idx, n);
    int correct;
    pl_lstm_forward(ws, pk, p, &correct, logits);
    pl_ws_free(ws);
    pl_packed_free(pk);
    return correct;
}

/* PyTorch loads the export with examples/load_in_pytorch.py and computes
 * the same logits as parlstm's own forward pass on a synthetic IDX set:
 * the same class for every image, logits within 1e-4; for 1, 2 and 3
 * layers. */
START_TEST(test_pytorch_agrees)
{
    const char *py = getenv("PARLSTM_PYTHON");
    if (!py || !*py) {
        tu_skip("the PyTorch export test", "no python3 that can import torch (configure "
                "looked for one; apt-get install python3-torch)");
        return;
    }
    /* 1, 2, 3 layers reading rows; 2 layers reading pixels in a permuted order */
    const int pixels = _i == 3;
    const pl_config cfg = {pixels ? 1 : 6, 20, 3, pixels ? 2 : 1 + _i};
    const int ROWS = 7, COLS = 6, T = pixels ? ROWS * COLS : ROWS, N = 64;
    const char *dir = tu_dir;
    tu_make_dataset(dir, 10, N, ROWS, COLS, cfg.classes, 77);
    pl_dataset ds;
    pl_error err = {0};
    ck_assert_int_eq(pl_dataset_load(&ds, dir, "t10k", cfg.classes, &err), PL_OK);
    pl_model_info mi = {.cfg = cfg, .T = T};
    if (pixels) { /* as parlstm eval reads them */
        mi = (pl_model_info){.cfg = cfg, .T = T, .rows = ROWS, .cols = COLS,
                             .sequence = PL_SEQ_PIXELS, .permuted = 1, .permute_seed = 5};
        pl_dataset_as_pixels(&ds);
        ck_assert_int_eq(pl_dataset_permute(&ds, 5, &err), PL_OK);
    }
    /* parameters with every tensor away from zero, biases included */
    size_t n = pl_param_count(&cfg);
    float *p = pl_alloc_floats(n);
    tu_fill(p, n, 0.6f, 13 + (uint64_t)_i);
    float logits[64 * 3];
    int correct = forward_logits(&cfg, T, p, &ds, N, logits);
    const char *model = tu_path(dir, "m.safetensors"), *csv = tu_path(dir, "pred.csv");
    ck_assert_int_eq(pl_safetensors_save(model, &mi, p, NULL, &err), PL_OK);
    const char *args[] = {model, "--images", tu_path(dir, "t10k-images-idx3-ubyte"), "--labels",
                          tu_path(dir, "t10k-labels-idx1-ubyte"), "--predictions", csv, NULL};
    static tu_result res;
    int st = run_script(py, args, &res);
    ck_assert_msg(st == 0, "load_in_pytorch.py exited %d: %s", st, res.err);
    char want[128];
    snprintf(want, sizeof want, "model %d-20-3, %d layer(s)", cfg.input, cfg.layers);
    ck_assert_msg(strstr(res.err, want) != NULL, "stderr '%s' lacks '%s'", res.err, want);
    snprintf(want, sizeof want, "result: test_accuracy=%.4f images=%d\n", (double)correct / N, N);
    ck_assert_msg(strstr(res.out, want) != NULL, "stdout '%s' lacks '%s'", res.out, want);
    double worst = compare_predictions(csv, logits, ds.labels, N);
    printf("PyTorch against parlstm, %d layer(s): %d images, largest logit difference %.3g\n",
           cfg.layers, N, worst);
    ck_assert_msg(worst < 1e-4, "logits differ by %g", worst);

    /* --data DIR finds t10k-* there */
    const char *args2[] = {model, "--data", dir, NULL};
    st = run_script(py, args2, &res);
    ck_assert_msg(st == 0, "--data: load_in_pytorch.py exited %d: %s", st, res.err);
    snprintf(want, sizeof want, "result: test_accuracy=%.4f images=%d\n", (double)correct / N, N);
    ck_assert_msg(strstr(res.out, want) != NULL, "stdout '%s' lacks '%s'", res.out, want);
    pl_free(p);
    pl_dataset_free(&ds);
}
END_TEST

/* A .npy of n sequences (n, T, D) float32, or of n int64 labels (D = 0). */
static void write_npy(const char *path, const void *data, int n, int T, int D)
{
    char head[128];
    if (D)
        snprintf(head, sizeof head, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d, "
                 "%d), }", n, T, D);
    else
        snprintf(head, sizeof head, "{'descr': '<i8', 'fortran_order': False, 'shape': (%d,), }",
                 n);
    unsigned char pre[128] = "\x93NUMPY\x01\x00";
    size_t hl = strlen(head);
    memset(pre + 10, ' ', 118);
    memcpy(pre + 10, head, hl);
    pre[127] = '\n';
    pre[8] = 118; /* 10 + 118: the data starts at 128 */
    pre[9] = 0;
    size_t bytes = D ? 4 * (size_t)n * T * D : 8 * (size_t)n;
    unsigned char *b = malloc(128 + bytes);
    memcpy(b, pre, 128);
    memcpy(b + 128, data, bytes);
    tu_write(path, b, 128 + bytes);
    free(b);
}

/* A model of real values standardised with its statistics: PyTorch
 * applies normalize_mean and normalize_std from the metadata to the raw
 * .npy and computes the logits parlstm computes on the standardised
 * values (features far from mean 0 and deviation 1, so that forgetting
 * the standardisation changes them), and names the classes; with _i = 1
 * the sequences have lengths 1..7 and PyTorch packs them (--lengths). */
START_TEST(test_pytorch_standardises)
{
    const char *py = getenv("PARLSTM_PYTHON");
    if (!py || !*py) {
        tu_skip("the PyTorch standardisation test", "no python3 that can import torch "
                "(configure looked for one; apt-get install python3-torch)");
        return;
    }
    enum { N = 64, T = 7, D = 6 };
    const pl_config cfg = {D, 20, 3, 1};
    static float x[N * T * D];
    int64_t lab[N];
    tu_fill(x, N * T * D, 1.0f, 41);
    for (int k = 0; k < N * T * D; k++)
        x[k] = x[k] * (float)(1 + k % D) + 10.0f * (float)(k % D) - 20.0f;
    int64_t len[N];
    for (int i = 0; i < N; i++) {
        lab[i] = i % 3;
        len[i] = 1 + (i * 3) % T;
    }
    const char *vals = tu_path(tu_dir, "x.npy"), *labs = tu_path(tu_dir, "y.npy");
    const char *lens = _i ? tu_path(tu_dir, "len.npy") : NULL;
    write_npy(vals, x, N, T, D);
    write_npy(labs, lab, N, T, 0);
    if (lens)
        write_npy(lens, len, N, T, 0);
    pl_dataset ds;
    pl_error err = {0};
    float mean[D], sd[D];
    ck_assert_msg(pl_dataset_load_series(&ds, vals, labs, lens, NULL, &err) == PL_OK, "%s",
                  err.msg);
    ck_assert(_i ? ds.lengths != NULL : ds.lengths == NULL);
    ck_assert_int_eq(pl_dataset_norm_stats(&ds, D, mean, sd, &err), PL_OK);
    ck_assert_int_eq(pl_dataset_standardize(&ds, D, mean, sd, &err), PL_OK);
    size_t n = pl_param_count(&cfg);
    float *p = pl_alloc_floats(n), logits[N * 3];
    tu_fill(p, n, 0.6f, 17);
    int correct = forward_logits(&cfg, T, p, &ds, N, logits);
    char *names[3] = {"rest", "walk", "run"};
    pl_model_info mi = {.cfg = cfg, .T = T, .input = PL_INPUT_VALUES, .features = D,
                        .norm_mean = mean, .norm_std = sd, .class_names = names};
    const char *model = tu_path(tu_dir, "m.safetensors"), *csv = tu_path(tu_dir, "pred.csv");
    ck_assert_int_eq(pl_safetensors_save(model, &mi, p, NULL, &err), PL_OK);
    const char *args[] = {model, "--values", vals, "--labels", labs, "--predictions", csv,
                          lens ? "--lengths" : NULL, lens, NULL};
    static tu_result res;
    int st = run_script(py, args, &res);
    ck_assert_msg(st == 0, "load_in_pytorch.py exited %d: %s", st, res.err);
    ck_assert_msg(strstr(res.err, "classes: 0 rest, 1 walk, 2 run") != NULL, "%s", res.err);
    char want[128];
    snprintf(want, sizeof want, "result: test_accuracy=%.4f images=%d\n", (double)correct / N, N);
    ck_assert_msg(strstr(res.out, want) != NULL, "stdout '%s' lacks '%s'", res.out, want);
    double worst = compare_predictions(csv, logits, ds.labels, N);
    printf("PyTorch against parlstm, standardised values%s: largest logit difference %.3g\n",
           _i ? " of lengths 1..7" : "", worst);
    ck_assert_msg(worst < 1e-4, "logits differ by %g", worst);
    pl_free(p);
    pl_dataset_free(&ds);
}
END_TEST

/* ---------------------------------------------------------------- hostile */

typedef enum {
    ED_NONE,
    ED_SET,    /* key.field (or key when field is NULL) = JSON value */
    ED_DEL,    /* delete key (field NULL) or key.field */
    ED_HEADER, /* the whole header text is value */
    ED_HLEN,   /* the header length field is value (decimal) */
    ED_CUT,    /* the file keeps its first value bytes */
    ED_APPEND, /* value bytes of zeros after the data */
    ED_FLOAT,  /* float number field (index) of tensor key is value */
    ED_MANY,   /* value extra tensor entries */
    ED_MERGE   /* the members of JSON object value set in key */
} edit_op;

typedef struct {
    edit_op op;
    const char *key, *field, *value;
} edit;

typedef struct {
    const char *name;
    edit ed[4];
    pl_status code;
    const char *fragment;
} hostile_case;

#define E1(...) {{__VA_ARGS__}}

/* pl_pixel_permutation(5, perm, 21): the order of 7x3 images (the hostile
 * cases' model) under permute_seed 5, and all of it but the last entry. */
#define PERM5_7x3_HEAD "17,8,13,4,10,18,1,11,12,20,5,6,19,16,9,7,15,0,14,3"
#define PERM5_7x3 PERM5_7x3_HEAD ",2"

static const hostile_case HOSTILE[] = {
    {"file shorter than the length field", E1(ED_CUT, 0, 0, "5"), PL_ERR_TRUNCATED,
     "a safetensors file has at least 8"},
    {"header length 1", E1(ED_HLEN, 0, 0, "1"), PL_ERR_CORRUPT, "header length 1 is too short"},
    {"header length 2^40", E1(ED_HLEN, 0, 0, "1099511627776"), PL_ERR_TOO_LARGE,
     "header length 1099511627776 is over the limit"},
    {"header length beyond the file", E1(ED_HLEN, 0, 0, "4000"), PL_ERR_TRUNCATED,
     "header length 4000 goes beyond the end of the file"},
    {"header cut short", E1(ED_CUT, 0, 0, "40"), PL_ERR_TRUNCATED,
     "goes beyond the end of the file (40 bytes)"},
    {"header not JSON", E1(ED_HEADER, 0, 0, "{\"input.weight\": {\"dtype\": "),
     PL_ERR_CORRUPT, "the header is not valid JSON"},
    {"header with trailing garbage", E1(ED_HEADER, 0, 0, "{} x"), PL_ERR_CORRUPT,
     "the header is not valid JSON"},
    {"header a JSON array", E1(ED_HEADER, 0, 0, "[1, 2, 3]"), PL_ERR_CORRUPT,
     "the header is JSON but not an object"},
    {"header a JSON string", E1(ED_HEADER, 0, 0, "\"input.weight\""), PL_ERR_CORRUPT,
     "the header is JSON but not an object"},
    {"header with a NUL byte", E1(ED_HEADER, 0, 0, "{\"a\\u0000b\": 1}"), PL_ERR_CORRUPT,
     "the header is not valid JSON"},
    {"duplicate tensor", E1(ED_HEADER, 0, 0, "{\"input.bias\": {}, \"input.bias\": {}}"),
     PL_ERR_CORRUPT, "duplicate object key"},
    {"tensor entry not an object", E1(ED_SET, "input.bias", 0, "[4]"), PL_ERR_CORRUPT,
     "tensor 'input.bias' is not a JSON object"},
    {"tensor with an unknown field", E1(ED_SET, "input.bias", "device", "\"cuda\""),
     PL_ERR_CORRUPT, "tensor 'input.bias' has an unknown field 'device'"},
    {"tensor without dtype", E1(ED_DEL, "input.bias", "dtype", 0), PL_ERR_CORRUPT,
     "tensor 'input.bias' has no dtype string"},
    {"tensor without shape", E1(ED_DEL, "output.bias", "shape", 0), PL_ERR_CORRUPT,
     "tensor 'output.bias' has no shape"},
    {"shape with a negative size", E1(ED_SET, "output.bias", "shape", "[-2]"), PL_ERR_CORRUPT,
     "tensor 'output.bias': shape entry 0 is not a size"},
    {"shape of 9 dimensions", E1(ED_SET, "output.bias", "shape", "[1,1,1,1,1,1,1,1,2]"),
     PL_ERR_CORRUPT, "tensor 'output.bias' has no shape (an array of at most 8"},
    {"missing tensor", E1(ED_DEL, "output.bias", 0, 0), PL_ERR_MISMATCH,
     "missing tensor 'output.bias'"},
    {"missing bias_hh", E1(ED_DEL, "lstm.bias_hh_l0", 0, 0), PL_ERR_MISMATCH,
     "missing tensor 'lstm.bias_hh_l0'"},
    {"missing input.weight", E1(ED_DEL, "input.weight", 0, 0), PL_ERR_MISMATCH,
     "missing tensor 'input.weight'"},
    {"missing every LSTM layer", E1(ED_DEL, "lstm.weight_ih_l0", 0, 0), PL_ERR_MISMATCH,
     "missing tensor 'lstm.weight_ih_l0'"},
    {"extra tensor",
     E1(ED_SET, "extra.weight", 0, "{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}"),
     PL_ERR_MISMATCH, "unexpected tensor 'extra.weight'"},
    {"half of a second layer",
     E1(ED_SET, "lstm.weight_hh_l1", 0, "{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}"),
     PL_ERR_MISMATCH, "unexpected tensor 'lstm.weight_hh_l1' (a model of 1 LSTM layer"},
    {"too many tensors", E1(ED_MANY, 0, 0, "40"), PL_ERR_MISMATCH, "more than 36 tensors"},
    {"dtype F16", E1(ED_SET, "input.bias", "dtype", "\"F16\""), PL_ERR_MISMATCH,
     "tensor 'input.bias' has dtype F16, expected F32"},
    {"dtype F64", E1(ED_SET, "output.weight", "dtype", "\"F64\""), PL_ERR_MISMATCH,
     "tensor 'output.weight' has dtype F64, expected F32"},
    {"dtype not a string", E1(ED_SET, "output.weight", "dtype", "32"), PL_ERR_CORRUPT,
     "tensor 'output.weight' has no dtype string"},
    {"bias of the wrong size", E1(ED_SET, "input.bias", "shape", "[5]"), PL_ERR_DIMS,
     "tensor 'input.bias' has shape [5], expected [4]"},
    {"bias as a matrix", E1(ED_SET, "output.bias", "shape", "[1, 2]"), PL_ERR_DIMS,
     "tensor 'output.bias' has shape [1, 2], expected [2]"},
    {"weight_hh transposed", E1(ED_SET, "lstm.weight_hh_l0", "shape", "[4, 16]"), PL_ERR_DIMS,
     "tensor 'lstm.weight_hh_l0' has shape [4, 16], expected [16, 4]"},
    {"input.weight 3-D", E1(ED_SET, "input.weight", "shape", "[4, 3, 1]"), PL_ERR_DIMS,
     "tensor 'input.weight' has 3 dimensions, expected 2"},
    {"hidden units beyond parlstm", E1(ED_SET, "input.weight", "shape", "[9000, 3]"),
     PL_ERR_DIMS, "the tensors describe no parlstm model: hidden units must be between 1 and 8192"},
    {"one class", E1(ED_SET, "output.weight", "shape", "[1, 4]"), PL_ERR_DIMS,
     "classes must be between 2 and 256, got 1"},
    {"offsets missing", E1(ED_DEL, "input.bias", "data_offsets", 0), PL_ERR_CORRUPT,
     "tensor 'input.bias' has no data_offsets [begin, end]"},
    {"offsets of three numbers", E1(ED_SET, "input.bias", "data_offsets", "[48, 64, 80]"),
     PL_ERR_CORRUPT, "tensor 'input.bias' has no data_offsets [begin, end]"},
    {"offsets negative", E1(ED_SET, "input.bias", "data_offsets", "[-16, 0]"), PL_ERR_CORRUPT,
     "tensor 'input.bias': data_offsets must be two non-negative integers"},
    {"offsets fractional", E1(ED_SET, "input.bias", "data_offsets", "[48.5, 64]"),
     PL_ERR_CORRUPT, "data_offsets must be two non-negative integers"},
    {"offsets reversed", E1(ED_SET, "input.bias", "data_offsets", "[64, 48]"), PL_ERR_CORRUPT,
     "tensor 'input.bias': data_offsets [64, 48] end before they begin"},
    {"offsets beyond the data", E1(ED_SET, "output.bias", "data_offsets", "[744, 752]"),
     PL_ERR_TRUNCATED, "tensor 'output.bias': data_offsets [744, 752] go beyond the data (744"},
    {"offsets huge", E1(ED_SET, "output.bias", "data_offsets", "[9223372036854775800, 9223372036854775807]"),
     PL_ERR_TRUNCATED, "go beyond the data"},
    {"offsets holding the wrong byte count", E1(ED_SET, "input.bias", "data_offsets", "[48, 60]"),
     PL_ERR_MISMATCH, "tensor 'input.bias': data_offsets [48, 60] hold 12 bytes, its shape needs 16"},
    {"overlapping tensors", E1(ED_SET, "output.bias", "data_offsets", "[48, 56]"),
     PL_ERR_CORRUPT, "tensors 'output.bias' [48, 56] and 'input.bias' [48, 64] overlap"},
    {"a hole between tensors",
     {{ED_SET, "output.bias", "data_offsets", "[740, 748]"}, {ED_APPEND, 0, 0, "4"}},
     PL_ERR_CORRUPT, "data bytes [736, 740) belong to no tensor (before 'output.bias')"},
    {"bytes after the last tensor", E1(ED_APPEND, 0, 0, "4"), PL_ERR_TRAILING,
     "4 data bytes after the last tensor (which ends at 744 of 748)"},
    {"NaN weight", E1(ED_FLOAT, "lstm.weight_hh_l0", "9", "nan"), PL_ERR_NONFINITE,
     "tensor 'lstm.weight_hh_l0' holds a NaN at [2, 1]"},
    {"infinite bias", E1(ED_FLOAT, "output.bias", "1", "inf"), PL_ERR_NONFINITE,
     "tensor 'output.bias' holds an infinity at [1]"},
    {"NaN in bias_hh", E1(ED_FLOAT, "lstm.bias_hh_l0", "0", "nan"), PL_ERR_NONFINITE,
     "tensor 'lstm.bias_hh_l0' holds a NaN at [0]"},
    {"bias_ih + bias_hh overflowing",
     {{ED_FLOAT, "lstm.bias_ih_l0", "3", "3e38"}, {ED_FLOAT, "lstm.bias_hh_l0", "3", "3e38"}},
     PL_ERR_NONFINITE, "the sum of 'lstm.bias_hh_l0' and the input bias overflows at [3]"},
    {"metadata not an object", E1(ED_SET, "__metadata__", 0, "[\"pt\"]"), PL_ERR_CORRUPT,
     "__metadata__ is not a JSON object"},
    {"metadata value not a string", E1(ED_SET, "__metadata__", "classes", "2"), PL_ERR_CORRUPT,
     "metadata 'classes' is not a string"},
    {"metadata classes against the shapes", E1(ED_SET, "__metadata__", "classes", "\"3\""),
     PL_ERR_MISMATCH, "metadata classes is 3 but the tensors' shapes say 2"},
    {"metadata layers against the shapes", E1(ED_SET, "__metadata__", "layers", "\"2\""),
     PL_ERR_MISMATCH, "metadata layers is 2 but the tensors' shapes say 1"},
    {"metadata time_steps not a number", E1(ED_SET, "__metadata__", "time_steps", "\"28x\""),
     PL_ERR_CORRUPT, "metadata time_steps is \"28x\", expected an integer from 1 to 65535"},
    {"metadata time_steps 0", E1(ED_SET, "__metadata__", "time_steps", "\"0\""), PL_ERR_CORRUPT,
     "metadata time_steps is \"0\""},
    {"another input scaling", E1(ED_SET, "__metadata__", "input_scaling", "\"pixel/127.5-1\""),
     PL_ERR_MISMATCH, "metadata input_scaling is \"pixel/127.5-1\", parlstm models use \"pixel/255\""},
    {"standard without its statistics", E1(ED_SET, "__metadata__", "input_scaling",
     "\"standard\""), PL_ERR_MISMATCH, "input_scaling is \"standard\" without normalize_mean "
     "and normalize_std"},
    {"statistics for values as they are",
     E1(ED_MERGE, "__metadata__", 0, "{\"input_scaling\": \"none\", \"normalize_mean\": "
        "\"[0,0,0]\"}"), PL_ERR_MISMATCH, "input_scaling is \"none\" with one of normalize_mean"},
    {"statistics against the width",
     E1(ED_MERGE, "__metadata__", 0, "{\"input_scaling\": \"standard\", \"normalize_mean\": "
        "\"[0,0]\", \"normalize_std\": \"[1,1]\"}"), PL_ERR_MISMATCH,
     "metadata: a standardisation of 2 features for a model that reads steps of 3"},
    {"fewer deviations than means",
     E1(ED_MERGE, "__metadata__", 0, "{\"input_scaling\": \"standard\", \"normalize_mean\": "
        "\"[0,0,0]\", \"normalize_std\": \"[1,1]\"}"), PL_ERR_MISMATCH,
     "metadata normalize_std has 2 numbers, normalize_mean 3"},
    {"means not an array",
     E1(ED_MERGE, "__metadata__", 0, "{\"input_scaling\": \"standard\", \"normalize_mean\": "
        "\"{}\", \"normalize_std\": \"[1,1,1]\"}"), PL_ERR_CORRUPT,
     "metadata normalize_mean is \"{}\", expected a JSON array of 1 to 65535 numbers"},
    {"a mean that is no number",
     E1(ED_MERGE, "__metadata__", 0, "{\"input_scaling\": \"standard\", \"normalize_mean\": "
        "\"[0,\\\"a\\\",0]\", \"normalize_std\": \"[1,1,1]\"}"), PL_ERR_CORRUPT,
     "metadata normalize_mean: entry 1 is not a number"},
    {"a deviation of 0",
     E1(ED_MERGE, "__metadata__", 0, "{\"input_scaling\": \"standard\", \"normalize_mean\": "
        "\"[0,0,0]\", \"normalize_std\": \"[1,0,1]\"}"), PL_ERR_MISMATCH,
     "feature 1 standardised with mean 0 and standard deviation 0"},
    {"statistics for images",
     E1(ED_MERGE, "__metadata__", 0, "{\"input_scaling\": \"pixel/255\", \"normalize_mean\": "
        "\"[0,0,0]\", \"normalize_std\": \"[1,1,1]\"}"), PL_ERR_MISMATCH,
     "input_scaling is \"pixel/255\" with normalize_mean and normalize_std"},
    {"one class name of two", E1(ED_SET, "__metadata__", "class_names", "\"[\\\"a\\\"]\""),
     PL_ERR_MISMATCH, "expected a JSON array of the 2 classes' names"},
    {"a class name that is no string",
     E1(ED_SET, "__metadata__", "class_names", "\"[\\\"a\\\",1]\""), PL_ERR_CORRUPT,
     "metadata class_names: entry 1 is not a string"},
    {"an empty class name", E1(ED_SET, "__metadata__", "class_names", "\"[\\\"a\\\",\\\"\\\"]\""),
     PL_ERR_MISMATCH, "metadata: class 1's name is 0 bytes long"},
    {"another sequence mode", E1(ED_SET, "__metadata__", "sequence", "\"columns\""),
     PL_ERR_MISMATCH, "metadata sequence is \"columns\", parlstm models use \"rows\" or "
     "\"pixels\""},
    {"another gate order", E1(ED_SET, "__metadata__", "gate_order", "\"i,g,f,o\""),
     PL_ERR_MISMATCH, "metadata gate_order is \"i,g,f,o\", parlstm models use \"i,f,g,o\""},
    {"pixels of a model that reads rows of 3",
     E1(ED_SET, "__metadata__", "sequence", "\"pixels\""), PL_ERR_MISMATCH,
     "metadata: images of 7x3 read as pixels cannot make 7 time steps of width 3"},
    {"image_cols without image_rows", E1(ED_DEL, "__metadata__", "image_rows", 0),
     PL_ERR_MISMATCH, "metadata has image_cols without image_rows"},
    {"pixels without the image shape",
     {{ED_SET, "__metadata__", "sequence", "\"pixels\""}, {ED_DEL, "__metadata__", "image_rows", 0},
      {ED_DEL, "__metadata__", "image_cols", 0}},
     PL_ERR_MISMATCH, "metadata sequence is \"pixels\" but there is no image_rows and image_cols"},
    {"an image shape against the time steps", E1(ED_SET, "__metadata__", "image_rows", "\"8\""),
     PL_ERR_MISMATCH, "metadata: images of 8x3 read as rows cannot make 7 time steps of width 3"},
    {"an image shape against the width", E1(ED_SET, "__metadata__", "image_cols", "\"4\""),
     PL_ERR_MISMATCH, "images of 7x4 read as rows cannot make 7 time steps of width 3"},
    {"image_cols 0", E1(ED_SET, "__metadata__", "image_cols", "\"0\""), PL_ERR_CORRUPT,
     "metadata image_cols is \"0\", expected an integer from 1 to 65535"},
    {"an image shape without time steps", E1(ED_DEL, "__metadata__", "time_steps", 0),
     PL_ERR_MISMATCH, "metadata has an image shape but no time_steps"},
    {"permuted without time steps",
     {{ED_DEL, "__metadata__", "time_steps", 0}, {ED_DEL, "__metadata__", "image_rows", 0},
      {ED_DEL, "__metadata__", "image_cols", 0}, {ED_SET, "__metadata__", "permuted", "\"yes\""}},
     PL_ERR_MISMATCH, "permuted is \"yes\" but there is no permute_seed"},
    {"permuted with its seed, without time steps",
     {{ED_DEL, "__metadata__", "time_steps", 0}, {ED_DEL, "__metadata__", "image_rows", 0},
      {ED_DEL, "__metadata__", "image_cols", 0}, {ED_MERGE, "__metadata__", 0,
      "{\"permuted\": \"yes\", \"permute_seed\": \"3\"}"}},
     PL_ERR_MISMATCH, "metadata has a permutation but no time_steps"},
    {"pixels without time steps",
     {{ED_DEL, "__metadata__", "time_steps", 0}, {ED_DEL, "__metadata__", "image_rows", 0},
      {ED_DEL, "__metadata__", "image_cols", 0}, {ED_SET, "__metadata__", "sequence", "\"pixels\""}},
     PL_ERR_MISMATCH, "metadata has sequence \"pixels\" but no time_steps"},
    {"permuted without its seed", E1(ED_SET, "__metadata__", "permuted", "\"yes\""),
     PL_ERR_MISMATCH, "metadata permuted is \"yes\" but there is no permute_seed"},
    {"a seed without permuted", E1(ED_SET, "__metadata__", "permute_seed", "\"5\""),
     PL_ERR_MISMATCH, "metadata permute_seed without permuted \"yes\""},
    {"permuted neither yes nor no", E1(ED_SET, "__metadata__", "permuted", "\"true\""),
     PL_ERR_MISMATCH, "metadata permuted is \"true\", parlstm models use \"no\" or \"yes\""},
    {"a negative seed",
     {{ED_SET, "__metadata__", "permuted", "\"yes\""}, {ED_SET, "__metadata__", "permute_seed", "\"-1\""}},
     PL_ERR_CORRUPT, "metadata permute_seed is \"-1\", expected an integer from 0 to 2^64 - 1"},
    {"a seed of 2^64",
     {{ED_SET, "__metadata__", "permuted", "\"yes\""},
      {ED_SET, "__metadata__", "permute_seed", "\"18446744073709551616\""}},
     PL_ERR_CORRUPT, "metadata permute_seed is \"18446744073709551616\""},
    {"dropout 1", E1(ED_SET, "__metadata__", "dropout", "\"1\""), PL_ERR_CORRUPT,
     "metadata dropout is \"1\", expected a number from 0 to below 1"},
    {"dropout not a number", E1(ED_SET, "__metadata__", "dropout", "\"0.5x\""), PL_ERR_CORRUPT,
     "metadata dropout is \"0.5x\""},
    {"dropout NaN", E1(ED_SET, "__metadata__", "dropout", "\"nan\""), PL_ERR_CORRUPT,
     "metadata dropout is \"nan\""},
    {"pixel_order without permuted", E1(ED_SET, "__metadata__", "pixel_order", "\"0,1\""),
     PL_ERR_MISMATCH, "metadata pixel_order without permuted \"yes\""},
    {"pixel_order of another seed",
     E1(ED_MERGE, "__metadata__", 0, "{\"permuted\": \"yes\", \"permute_seed\": \"5\", "
        "\"pixel_order\": \"0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20\"}"),
     PL_ERR_MISMATCH, "metadata pixel_order is not the order of permute_seed 5: entry "},
    {"pixel_order not numbers",
     E1(ED_MERGE, "__metadata__", 0, "{\"permuted\": \"yes\", \"permute_seed\": \"5\", "
        "\"pixel_order\": \"a,b\"}"),
     PL_ERR_CORRUPT, "metadata pixel_order: entry 0 is not a number"},
    {"pixel_order with a trailing comma",
     E1(ED_MERGE, "__metadata__", 0, "{\"permuted\": \"yes\", \"permute_seed\": \"5\", "
        "\"pixel_order\": \"1,\"}"),
     PL_ERR_CORRUPT, "metadata pixel_order: entry 0 is not a number"},
    {"pixel_order too long",
     E1(ED_MERGE, "__metadata__", 0, "{\"permuted\": \"yes\", \"permute_seed\": \"5\", "
        "\"pixel_order\": \"" PERM5_7x3 ",0\"}"),
     PL_ERR_MISMATCH, "metadata pixel_order has more than the 21 entries of 7x3 images"},
    {"pixel_order too short",
     E1(ED_MERGE, "__metadata__", 0, "{\"permuted\": \"yes\", \"permute_seed\": \"5\", "
        "\"pixel_order\": \"" PERM5_7x3_HEAD "\"}"),
     PL_ERR_MISMATCH, "metadata pixel_order has 20 entries, 7x3 images have 21 pixels"},
    {"a bidirectional LSTM",
     E1(ED_SET, "lstm.weight_ih_l0_reverse", 0, "{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}"),
     PL_ERR_MISMATCH, "tensor 'lstm.weight_ih_l0_reverse' belongs to a bidirectional LSTM"},
    {"an LSTM with projections",
     E1(ED_SET, "lstm.weight_hr_l0", 0, "{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}"),
     PL_ERR_MISMATCH, "tensor 'lstm.weight_hr_l0' belongs to an LSTM with projections"},
};

static void apply(const edit *ed, json_t *root, unsigned char *file, size_t *len,
                  char **header_text)
{
    uint64_t hl = header_len(file);
    json_error_t je;
    json_t *v = NULL;
    if (ed->op == ED_SET || ed->op == ED_MERGE) {
        v = json_loads(ed->value, JSON_DECODE_ANY, &je);
        ck_assert_msg(v != NULL, "test value %s: %s", ed->value, je.text);
    }
    switch (ed->op) {
    case ED_NONE:
        break;
    case ED_SET:
        if (ed->field)
            json_object_set_new(json_object_get(root, ed->key), ed->field, v);
        else
            json_object_set_new(root, ed->key, v);
        break;
    case ED_DEL:
        if (ed->field)
            json_object_del(json_object_get(root, ed->key), ed->field);
        else
            json_object_del(root, ed->key);
        break;
    case ED_HEADER:
        *header_text = strdup(ed->value);
        break;
    case ED_MERGE:
        json_object_update(json_object_get(root, ed->key), v);
        json_decref(v);
        break;
    case ED_MANY:
        for (int i = 0; i < atoi(ed->value); i++) {
            char name[32];
            snprintf(name, sizeof name, "extra.%d", i);
            json_object_set_new(root, name, json_pack("{s:s,s:[i],s:[i,i]}", "dtype", "F32",
                                                      "shape", 0, "data_offsets", 0, 0));
        }
        break;
    case ED_APPEND:
        *len += (size_t)atoi(ed->value);
        break;
    case ED_FLOAT: {
        json_t *e = json_object_get(root, ed->key);
        size_t begin =
            (size_t)json_integer_value(json_array_get(json_object_get(e, "data_offsets"), 0));
        float x = strtof(ed->value, NULL);
        memcpy(file + 8 + hl + begin + 4 * (size_t)atoi(ed->field), &x, 4);
        break;
    }
    case ED_HLEN: case ED_CUT:
        break; /* after the file is rebuilt */
    }
}

START_TEST(test_hostile)
{
    const hostile_case *c = &HOSTILE[_i];
    const char *dir = tu_dir;
    const char *path = tu_path(dir, "hostile.safetensors");
    float *p = random_params(&CFG1, 1);
    pl_error err = {0};
    ck_assert_int_eq(save(path, &CFG1, 7, p, &err), PL_OK);
    size_t len;
    unsigned char *b = tu_read_all(path, &len);
    b = realloc(b, len + 4096);
    memset(b + len, 0, 4096);
    uint64_t hl = header_len(b);
    json_t *root = json_loadb((const char *)b + 8, hl, 0, NULL);
    char *text = NULL;
    size_t dlen = len - 8 - hl;
    for (int k = 0; k < 4; k++)
        apply(&c->ed[k], root, b, &dlen, &text);
    if (text) {
        size_t tl = strlen(text);
        unsigned char *f = malloc(8 + tl + dlen);
        uint64_t n = tl;
        memcpy(f, &n, 8);
        memcpy(f + 8, text, tl);
        memcpy(f + 8 + tl, b + 8 + hl, dlen);
        tu_write(path, f, 8 + tl + dlen);
        free(f);
        free(text);
    } else {
        write_tree(path, root, b + 8 + hl, dlen, 1);
    }
    for (int k = 0; k < 4; k++) {
        if (c->ed[k].op == ED_HLEN || c->ed[k].op == ED_CUT) {
            size_t flen;
            unsigned char *f = tu_read_all(path, &flen);
            if (c->ed[k].op == ED_HLEN) {
                uint64_t n = strtoull(c->ed[k].value, NULL, 10);
                memcpy(f, &n, 8);
            } else {
                flen = (size_t)atoi(c->ed[k].value);
            }
            tu_write(path, f, flen);
            free(f);
        }
    }
    pl_model_info m, untouched;
    memset(&m, 0x5A, sizeof m);
    untouched = m;
    float *q = (float *)&m; /* must come back NULL */
    pl_status rc = pl_safetensors_load(path, &m, &q, &err);
    tu_assert_refused(c->name, path, rc, &err, c->code, c->fragment);
    ck_assert_ptr_null(q);
    ck_assert_msg(memcmp(&m, &untouched, sizeof m) == 0, "a refused file changed the model info");
    json_decref(root);
    free(b);
    pl_free(p);
}
END_TEST

START_TEST(test_not_a_file)
{
    const char *dir = tu_dir;
    pl_model_info m;
    float *q;
    pl_error err = {0};
    ck_assert_int_eq(pl_safetensors_load(tu_path(dir, "none.safetensors"), &m, &q, &err),
                     PL_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "none.safetensors: cannot open the safetensors"));
    ck_assert_int_eq(pl_safetensors_load(dir, &m, &q, &err), PL_ERR_NOT_FILE);
    tu_write(tu_path(dir, "empty"), "", 0);
    ck_assert_int_eq(pl_safetensors_load(tu_path(dir, "empty"), &m, &q, &err),
                     PL_ERR_EMPTY);
}
END_TEST

Suite *safetensors_suite(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tu_tcase_with_dir("safetensors");
    tcase_add_test(tc, test_layout_and_names);
    tcase_add_loop_test(tc, test_round_trip_exact, 0,
                        (int)(sizeof ROUND_TRIP / sizeof *ROUND_TRIP));
    tcase_add_test(tc, test_foreign_file);
    tcase_add_test(tc, test_export_refuses);
    tcase_add_loop_test(tc, test_hostile, 0, (int)(sizeof HOSTILE / sizeof *HOSTILE));
    tcase_add_test(tc, test_not_a_file);
    suite_add_tcase(s, tc);
    /* PyTorch's start-up alone takes seconds: more than Check's default 4 */
    TCase *tp = tu_tcase_with_dir("pytorch");
    tcase_set_timeout(tp, 180);
    tcase_add_loop_test(tp, test_pytorch_agrees, 0, 4);
    tcase_add_loop_test(tp, test_pytorch_standardises, 0, 2);
    suite_add_tcase(s, tp);
    return s;
}
