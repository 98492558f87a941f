/* compare-onednn: oneDNN's LSTM training primitive against parlstm, timed
 * side by side in one run.
 *
 * What is timed
 *   oneDNN: one f32 LSTM training step of the shapes parlstm trains on MNIST:
 *   T = 28 time steps, batch N = 100, 128 input channels (--channels), 128
 *   hidden units, one unidirectional layer, zero initial states, no
 *   projection. A step: zero the weight gradients (backward accumulates into
 *   them), forward_training (which fills the workspace), backward
 *   (diff_src_layer, diff_weights_layer/iter, diff_bias), stream wait. The
 *   weights are reordered from ldigo into the layouts oneDNN chose (format
 *   tag any) once, before timing; inputs and output gradients are random.
 *   parlstm: pl_trainer_step on MNIST batches of 100, model 28-128-10: the
 *   input projection 28->128, the LSTM, the output layer, softmax
 *   cross-entropy, gradient reduction, clipping and Adam: more than oneDNN's.
 *
 * How
 *   Absolute times drift on this shared machine, so all configurations live
 *   in one process and take turns: each of R rounds runs S steps of each in
 *   a fixed order (oneDNN 1 thread, parlstm 1x1, oneDNN 2 threads, parlstm
 *   2x1, parlstm 1x2; WxT = workers x OpenMP threads per worker). Each turn
 *   gives samples/s = S * 100 / seconds (CLOCK_MONOTONIC); the table shows
 *   median, min and max over the rounds, and warns when max > 1.5 min.
 *   Debian's libdnnl runs on OpenMP: its thread count is set with
 *   omp_set_num_threads() before creating its primitives (one set per thread
 *   count) and before each turn.
 *
 * FLOPs per step
 *   oneDNN: 3 GEMM passes (forward, backward data, backward weights) of
 *   2 T N (channels + 128) (4 * 128) each. parlstm: pl_step_flops_model (the
 *   standard unfolded count of its whole model) and pl_step_flops_executed
 *   (what it runs: the input projection is folded into the gate weights).
 *
 * Other shapes: --hidden, --seq T,D, --batch (parlstm trains on MNIST seen
 * as T x D when that is 784 pixels, else on random images). --gemm chooses
 * parlstm's kernel set; ONEDNN_MAX_CPU_ISA=AVX2 restricts oneDNN likewise
 * (with --gemm avx2: both sides on 256-bit vectors).
 *
 * Exit status: 0; 1 on a failure (naming the failing call); 2 on bad
 * options. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dnnl.h>
#include <dnnl_debug.h>
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parlstm.h"
#include "tools.h"

#define GATES 4     /* i, f, c~, o */
#define NDNN 2      /* oneDNN configurations: 1 and 2 threads */
#define NPL 3       /* parlstm configurations: 1x1, 2x1, 1x2 */
#define WARMUP 3    /* untimed steps per configuration */

static int T_STEPS = 28;   /* time steps (--seq T,D) */
static int D_IN = 28;      /* parlstm's input width (--seq T,D) */
static int BATCH = 100;    /* N (--batch) */
static int HIDDEN = 128;   /* H (--hidden) */
static int channels = 0;   /* oneDNN input channels (--channels; default H) */

/* ---------------------------------------------------------------- oneDNN */

static void dn_check(const char *call, dnnl_status_t s)
{
    if (s != dnnl_success) {
        fprintf(stderr, "compare-onednn: %s failed: %s\n", call, dnnl_status2str(s));
        exit(1);
    }
}
/* DN(dnnl_f, (args)) calls dnnl_f(args) and exits naming dnnl_f on failure. */
#define DN(fn, args) dn_check(#fn, fn args)

static const dnnl_memory_desc_t *query_md(const_dnnl_primitive_desc_t pd,
                                          dnnl_query_t what, int index,
                                          const char *name)
{
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, what, index);
    if (!md || md->ndims == 0) {
        fprintf(stderr, "compare-onednn: dnnl_primitive_desc_query_md(%s) failed\n", name);
        exit(1);
    }
    return md;
}

/* The memory descriptor pd expects for execution argument `arg`. */
#define ARG_MD(pd, arg) query_md(pd, dnnl_query_exec_arg_md, arg, #pd " " #arg)

static dnnl_memory_t new_mem(const dnnl_memory_desc_t *md, dnnl_engine_t eng)
{
    dnnl_memory_t m;
    DN(dnnl_memory_create, (&m, md, eng, DNNL_MEMORY_ALLOCATE));
    return m;
}

static float *mem_ptr(dnnl_memory_t m)
{
    void *p = NULL;
    DN(dnnl_memory_get_data_handle, (m, &p));
    return p;
}

static size_t mem_bytes(dnnl_memory_t m)
{
    const dnnl_memory_desc_t *md;
    DN(dnnl_memory_get_memory_desc, (m, &md));
    return dnnl_memory_desc_get_size(md);
}

/* A new memory of layout to_md holding the contents of `from`. */
static dnnl_memory_t reorder_new(dnnl_memory_t from, const dnnl_memory_desc_t *to_md,
                                 dnnl_engine_t eng, dnnl_stream_t st)
{
    const dnnl_memory_desc_t *from_md;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t r;
    DN(dnnl_memory_get_memory_desc, (from, &from_md));
    dnnl_memory_t to = new_mem(to_md, eng);
    DN(dnnl_reorder_primitive_desc_create, (&pd, from_md, eng, to_md, eng, NULL));
    DN(dnnl_primitive_create, (&r, pd));
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    DN(dnnl_primitive_execute, (r, st, 2, args));
    DN(dnnl_stream_wait, (st));
    DN(dnnl_primitive_destroy, (r));
    DN(dnnl_primitive_desc_destroy, (pd));
    return to;
}

/* Inputs shared (read-only) by both thread counts, in user layouts. */
typedef struct {
    dnnl_memory_desc_t src_md;   /* (T, N, channels) tnc: src_layer, diff_src_layer */
    dnnl_memory_desc_t dst_md;   /* (T, N, H) tnc: dst_layer, diff_dst_layer */
    dnnl_memory_desc_t bias_md;  /* (1, 1, 4, H) ldgo */
    dnnl_memory_desc_t wl_any, wi_any; /* the weights' shapes, layout left to oneDNN */
    dnnl_memory_desc_t dwl_any, dwi_any; /* their gradients' (f32) */
    dnnl_memory_desc_t src32_md, dst32_md; /* src_md and dst_md in f32: the gradients
                                             (oneDNN's are f32 even in bf16) */
    dnnl_memory_t src;           /* (T, N, channels) */
    dnnl_memory_t wl, wi;        /* (1, 1, channels, 4, H) and (1, 1, H, 4, H) ldigo */
    dnnl_memory_t bias;          /* (1, 1, 4, H) */
    dnnl_memory_t diff_dst;      /* (T, N, H), f32 */
} dnn_inputs;

/* Primitives and outputs for one thread count. */
typedef struct {
    int threads;
    dnnl_primitive_t fwd, bwd;
    dnnl_memory_t wl_f, wi_f, wl_b, wi_b; /* weights in the fwd / bwd layouts */
    dnnl_memory_t dst, ws, diff_src, diff_wl, diff_wi, diff_bias;
    dnnl_exec_arg_t fargs[6], bargs[11];
    float *zero[3];  /* diff_wl, diff_wi, diff_bias: zeroed each step */
    size_t zero_bytes[3];
    char impl[2][64]; /* forward, backward implementation names */
} dnn_net;

static void fill_uniform(dnnl_memory_t m, pl_rng *r, double scale)
{
    float *p = mem_ptr(m);
    size_t n = mem_bytes(m) / sizeof(float);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((2.0 * pl_rng_uniform(r) - 1.0) * scale);
}

/* --bf16: oneDNN's src, dst and weights in bf16, bias and every gradient
 * in f32 (what its bf16 LSTM takes); parlstm with --precision bf16. */
static dnnl_data_type_t DT = dnnl_f32;
static pl_precision PRECISION = PL_PRECISION_FP32;

/* m as it is when DT is f32, else a DT copy in layout md. */
static dnnl_memory_t as_dt(dnnl_memory_t m, const dnnl_memory_desc_t *md, dnnl_engine_t eng,
                           dnnl_stream_t st)
{
    if (DT == dnnl_f32)
        return m;
    dnnl_memory_t c = reorder_new(m, md, eng, st);
    DN(dnnl_memory_destroy, (m));
    return c;
}

static void inputs_create(dnn_inputs *in, dnnl_engine_t eng, dnnl_stream_t st)
{
    dnnl_dims_t d_src = {T_STEPS, BATCH, channels}, d_dst = {T_STEPS, BATCH, HIDDEN};
    dnnl_dims_t d_wl = {1, 1, channels, GATES, HIDDEN};
    dnnl_dims_t d_wi = {1, 1, HIDDEN, GATES, HIDDEN};
    dnnl_dims_t d_bias = {1, 1, GATES, HIDDEN};
    dnnl_memory_desc_t wl_md, wi_md;
    DN(dnnl_memory_desc_init_by_tag, (&in->src32_md, 3, d_src, dnnl_f32, dnnl_tnc));
    DN(dnnl_memory_desc_init_by_tag, (&in->src_md, 3, d_src, DT, dnnl_tnc));
    DN(dnnl_memory_desc_init_by_tag, (&in->dst_md, 3, d_dst, DT, dnnl_tnc));
    DN(dnnl_memory_desc_init_by_tag, (&in->dst32_md, 3, d_dst, dnnl_f32, dnnl_tnc));
    DN(dnnl_memory_desc_init_by_tag, (&in->bias_md, 4, d_bias, dnnl_f32, dnnl_ldgo));
    DN(dnnl_memory_desc_init_by_tag, (&wl_md, 5, d_wl, dnnl_f32, dnnl_ldigo));
    DN(dnnl_memory_desc_init_by_tag, (&wi_md, 5, d_wi, dnnl_f32, dnnl_ldigo));
    DN(dnnl_memory_desc_init_by_tag, (&in->wl_any, 5, d_wl, DT, dnnl_format_tag_any));
    DN(dnnl_memory_desc_init_by_tag, (&in->wi_any, 5, d_wi, DT, dnnl_format_tag_any));
    DN(dnnl_memory_desc_init_by_tag, (&in->dwl_any, 5, d_wl, dnnl_f32, dnnl_format_tag_any));
    DN(dnnl_memory_desc_init_by_tag, (&in->dwi_any, 5, d_wi, dnnl_f32, dnnl_format_tag_any));
    in->src = new_mem(&in->src32_md, eng);
    in->diff_dst = new_mem(&in->dst32_md, eng);
    in->wl = new_mem(&wl_md, eng);
    in->wi = new_mem(&wi_md, eng);
    in->bias = new_mem(&in->bias_md, eng);
    pl_rng r;
    pl_rng_seed(&r, 42);
    double ws = 1.0 / sqrt((double)HIDDEN);
    fill_uniform(in->src, &r, 1.0);
    fill_uniform(in->diff_dst, &r, 0.01);
    fill_uniform(in->wl, &r, ws);
    fill_uniform(in->wi, &r, ws);
    fill_uniform(in->bias, &r, ws);
    in->src = as_dt(in->src, &in->src_md, eng, st);
}

/* Creates forward and backward primitives with `threads` OpenMP threads. */
static void net_create(dnn_net *n, int threads, const dnn_inputs *in,
                       dnnl_engine_t eng, dnnl_stream_t st)
{
    dnnl_rnn_desc_t fd, bd;
    dnnl_primitive_desc_t fpd, bpd;
    const dnnl_rnn_direction_t dir = dnnl_unidirectional_left2right;
    const dnnl_memory_desc_t *src = &in->src_md, *dst = &in->dst_md, *bias = &in->bias_md;
    const dnnl_memory_desc_t *wl_any = &in->wl_any, *wi_any = &in->wi_any;
    const dnnl_memory_desc_t *dwl_any = &in->dwl_any, *dwi_any = &in->dwi_any;

    memset(n, 0, sizeof *n);
    n->threads = threads;
    omp_set_num_threads(threads); /* oneDNN sizes its work split at creation */
    /* NULL src_iter/src_iter_c: zero initial states; NULL dst_iter: unused */
    DN(dnnl_lstm_forward_desc_init, (&fd, dnnl_forward_training, dir, src, NULL, NULL,
                                     wl_any, wi_any, bias, dst, NULL, NULL, 0));
    DN(dnnl_primitive_desc_create, (&fpd, &fd, NULL, eng, NULL));
    DN(dnnl_lstm_backward_desc_init, (&bd, dnnl_backward, dir, src, NULL, NULL,
                                      wl_any, wi_any, bias, dst, NULL, NULL,
                                      &in->src32_md, NULL, NULL, dwl_any, dwi_any, bias,
                                      &in->dst32_md, NULL, NULL, 0));
    DN(dnnl_primitive_desc_create, (&bpd, &bd, NULL, eng, fpd));

    const char *s;
    DN(dnnl_primitive_desc_query, (fpd, dnnl_query_impl_info_str, 0, &s));
    snprintf(n->impl[0], sizeof n->impl[0], "%s", s);
    DN(dnnl_primitive_desc_query, (bpd, dnnl_query_impl_info_str, 0, &s));
    snprintf(n->impl[1], sizeof n->impl[1], "%s", s);

    /* Weights into the chosen layouts, once. */
    n->wl_f = reorder_new(in->wl, ARG_MD(fpd, DNNL_ARG_WEIGHTS_LAYER), eng, st);
    n->wi_f = reorder_new(in->wi, ARG_MD(fpd, DNNL_ARG_WEIGHTS_ITER), eng, st);
    n->wl_b = reorder_new(in->wl, ARG_MD(bpd, DNNL_ARG_WEIGHTS_LAYER), eng, st);
    n->wi_b = reorder_new(in->wi, ARG_MD(bpd, DNNL_ARG_WEIGHTS_ITER), eng, st);
    const dnnl_memory_desc_t *ws_md = query_md(fpd, dnnl_query_workspace_md, 0, "workspace");
    if (!dnnl_memory_desc_equal(ws_md, query_md(bpd, dnnl_query_workspace_md, 0,
                                                "backward workspace"))) {
        fprintf(stderr, "compare-onednn: forward and backward workspaces differ\n");
        exit(1);
    }
    n->ws = new_mem(ws_md, eng);
    n->dst = new_mem(dst, eng);
    n->diff_src = new_mem(&in->src32_md, eng);
    n->diff_wl = new_mem(ARG_MD(bpd, DNNL_ARG_DIFF_WEIGHTS_LAYER), eng);
    n->diff_wi = new_mem(ARG_MD(bpd, DNNL_ARG_DIFF_WEIGHTS_ITER), eng);
    n->diff_bias = new_mem(bias, eng);
    dnnl_memory_t z[3] = {n->diff_wl, n->diff_wi, n->diff_bias};
    for (int i = 0; i < 3; i++) {
        n->zero[i] = mem_ptr(z[i]);
        n->zero_bytes[i] = mem_bytes(z[i]);
    }

    DN(dnnl_primitive_create, (&n->fwd, fpd));
    DN(dnnl_primitive_create, (&n->bwd, bpd));
    DN(dnnl_primitive_desc_destroy, (bpd));
    DN(dnnl_primitive_desc_destroy, (fpd));

    dnnl_exec_arg_t fa[6] = {
        {DNNL_ARG_SRC_LAYER, in->src},  {DNNL_ARG_WEIGHTS_LAYER, n->wl_f},
        {DNNL_ARG_WEIGHTS_ITER, n->wi_f}, {DNNL_ARG_BIAS, in->bias},
        {DNNL_ARG_DST_LAYER, n->dst},   {DNNL_ARG_WORKSPACE, n->ws}};
    dnnl_exec_arg_t ba[11] = {
        {DNNL_ARG_SRC_LAYER, in->src},  {DNNL_ARG_WEIGHTS_LAYER, n->wl_b},
        {DNNL_ARG_WEIGHTS_ITER, n->wi_b}, {DNNL_ARG_BIAS, in->bias},
        {DNNL_ARG_DST_LAYER, n->dst},   {DNNL_ARG_DIFF_DST_LAYER, in->diff_dst},
        {DNNL_ARG_WORKSPACE, n->ws},    {DNNL_ARG_DIFF_SRC_LAYER, n->diff_src},
        {DNNL_ARG_DIFF_WEIGHTS_LAYER, n->diff_wl},
        {DNNL_ARG_DIFF_WEIGHTS_ITER, n->diff_wi}, {DNNL_ARG_DIFF_BIAS, n->diff_bias}};
    memcpy(n->fargs, fa, sizeof fa);
    memcpy(n->bargs, ba, sizeof ba);
}

static void net_free(dnn_net *n)
{
    dnnl_memory_t m[10] = {n->wl_f, n->wi_f, n->wl_b, n->wi_b, n->dst,
                           n->ws, n->diff_src, n->diff_wl, n->diff_wi, n->diff_bias};
    for (int i = 0; i < 10; i++)
        DN(dnnl_memory_destroy, (m[i]));
    DN(dnnl_primitive_destroy, (n->fwd));
    DN(dnnl_primitive_destroy, (n->bwd));
}

/* One training step (see the header). */
static void net_step(dnn_net *n, dnnl_stream_t st)
{
    for (int i = 0; i < 3; i++)
        memset(n->zero[i], 0, n->zero_bytes[i]);
    DN(dnnl_primitive_execute, (n->fwd, st, 6, n->fargs));
    DN(dnnl_primitive_execute, (n->bwd, st, 11, n->bargs));
    DN(dnnl_stream_wait, (st));
}

/* ---------------------------------------------------------------- parlstm */

typedef struct {
    pl_trainer *tr;
    int workers, threads;
    uint32_t *order; /* (n) this epoch's shuffled item order */
    long epoch, pos, step, total;
    double loss;     /* of the last batch */
} pl_run;

static void pl_check(pl_status s, const char *call, const pl_error *err)
{
    if (s != PL_OK) {
        fprintf(stderr, "compare-onednn: %s failed: %s\n", call, err->msg);
        exit(1);
    }
}

static void run_steps(pl_run *r, const pl_dataset *ds, int steps)
{
    const long per_epoch = (long)(ds->n / BATCH);
    pl_step_stats st;
    pl_error err;
    for (int k = 0; k < steps; k++) {
        if (r->pos == per_epoch) {
            r->pos = 0;
            pl_epoch_order(1, ++r->epoch, r->order, ds->n);
        }
        pl_check(pl_trainer_step(r->tr, ds, r->order + r->pos * BATCH, BATCH, r->step,
                                 r->total, &st, &err), "pl_trainer_step", &err);
        r->pos++;
        r->step++;
        r->loss = st.loss;
    }
}

/* ------------------------------------------------------------------ main */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n, double *lo, double *hi)
{
    double s[n];
    memcpy(s, v, sizeof s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    *lo = s[0];
    *hi = s[n - 1];
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

static void usage(FILE *f)
{
    fprintf(f,
        "Usage: compare-onednn [--hidden H] [--seq T,D] [--batch N] [--channels C]\n"
        "                      [--rounds R] [--steps S] [--data DIR] [--gemm SET] [--bf16]\n"
        "Times oneDNN's f32 (or bf16) LSTM training step (forward_training + backward; T steps,\n"
        "batch N, C input channels, H hidden; 1 and 2 OpenMP threads) against\n"
        "parlstm's whole training step (model D-H-10, batch N, workers x threads 1x1,\n"
        "2x1, 1x2), alternating them in one run.\n"
        "\n"
        "  --hidden H    hidden units of both (default 128)\n"
        "  --seq T,D     time steps and parlstm's input width (default 28,28: MNIST by\n"
        "                rows; 784,1: by pixels). parlstm trains on MNIST seen with\n"
        "                that shape when T x D = 784, else on random images\n"
        "  --batch N     batch of both (default 100)\n"
        "  --channels C  oneDNN input channels (default H: the output of the model's\n"
        "                D->H projection, so oneDNN does the standard unfolded\n"
        "                arithmetic; D + 1 is the width parlstm's folded LSTM multiplies)\n"
        "  --rounds R    rounds; each runs every configuration once (default 5)\n"
        "  --steps S     training steps per configuration and round (default 30)\n"
        "  --data DIR    MNIST IDX files (default data/mnist)\n"
        "  --gemm SET    parlstm's kernel set: auto (default), avx512, avx2, neon, blas\n"
        "                or naive; ONEDNN_MAX_CPU_ISA=AVX2 restricts oneDNN to AVX2\n"
        "  --bf16        both in bf16: oneDNN's src, dst and weights bf16 (bias and\n"
        "                weight gradients f32), parlstm --precision bf16\n"
        "  --help        this text\n"
        "\n"
        "Prints median, min and max samples/s over the rounds, GFLOP/s and the ratios\n"
        "of parlstm to oneDNN on the same cores.\n");
}

/* "T,D" with both in range. */
static int parse_seq(const char *s)
{
    int t, d, used = 0;
    if (sscanf(s, "%d,%d%n", &t, &d, &used) != 2 || s[used] != '\0' || t < 1 || t > 65535 ||
        d < 1 || d > 65535) {
        fprintf(stderr, "compare-onednn: --seq: expected T,D (time steps, input width), "
                "each 1..65535, got '%s'\n", s);
        return -1;
    }
    T_STEPS = t;
    D_IN = d;
    return 0;
}

/* Random images of the chosen shape with labels 0..9. */
static void synthetic(pl_dataset *ds, size_t n)
{
    size_t px = n * (size_t)T_STEPS * D_IN;
    uint8_t *img = malloc(px), *lab = malloc(n);
    if (!img || !lab) {
        fprintf(stderr, "compare-onednn: cannot allocate %zu random images\n", n);
        exit(1);
    }
    pl_rng r;
    pl_rng_seed(&r, 7);
    for (size_t i = 0; i < px; i++)
        img[i] = (uint8_t)pl_rng_below(&r, 256);
    for (size_t i = 0; i < n; i++)
        lab[i] = (uint8_t)pl_rng_below(&r, 10);
    *ds = (pl_dataset){.images = img, .labels = lab, .n = n, .T = T_STEPS, .D = D_IN,
                       .classes = 10, .owned_images = img, .owned_labels = lab};
}

static int parse_int(const char *opt, const char *s, long min, long max, int *out)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "compare-onednn: %s: expected an integer from %ld to %ld, got '%s'\n",
                opt, min, max, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* h = o * tanh(c) must be finite, not all zero and inside (-1, 1), and both
 * thread counts must compute the same forward pass. */
static void check_forward(const dnn_net *net, const dnn_inputs *in, dnnl_engine_t eng,
                          dnnl_stream_t st)
{
    const size_t n = (size_t)T_STEPS * BATCH * HIDDEN;
    dnnl_memory_t f1 = reorder_new(net[0].dst, &in->dst32_md, eng, st);
    dnnl_memory_t f2 = reorder_new(net[1].dst, &in->dst32_md, eng, st);
    const float *h1 = mem_ptr(f1), *h2 = mem_ptr(f2);
    double sum = 0, sabs = 0, amax = 0, diff = 0;
    for (size_t i = 0; i < n; i++) {
        sum += h1[i];
        sabs += fabs(h1[i]);
        amax = fmax(amax, fabs(h1[i]));
        diff = fmax(diff, fabs((double)h1[i] - h2[i]));
    }
    printf("oneDNN forward dst_layer (T, N, H) = (%d, %d, %d): sum %.6f, sum|h| %.3f, "
           "max|h| %.4f, max|1 thread - 2 threads| %.2g\n",
           T_STEPS, BATCH, HIDDEN, sum, sabs, amax, diff);
    if (!isfinite(sabs) || sabs == 0 || amax >= 1 || diff > (DT == dnnl_f32 ? 1e-4 : 1e-2)) {
        fprintf(stderr, "compare-onednn: oneDNN's forward output is implausible\n");
        exit(1);
    }
    DN(dnnl_memory_destroy, (f1));
    DN(dnnl_memory_destroy, (f2));
}

int main(int argc, char **argv)
{
    int rounds = 5, steps = 30, c;
    pl_gemm_backend gemm = PL_GEMM_AUTO;
    const char *data = "data/mnist";
    static const struct option longopts[] = {
        {"rounds", required_argument, 0, 'r'},   {"steps", required_argument, 0, 's'},
        {"channels", required_argument, 0, 'c'}, {"data", required_argument, 0, 'd'},
        {"hidden", required_argument, 0, 'H'},   {"seq", required_argument, 0, 'T'},
        {"batch", required_argument, 0, 'b'},    {"gemm", required_argument, 0, 'g'},
        {"bf16", no_argument, 0, 'B'},           {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'r': if (parse_int("--rounds", optarg, 1, 1000, &rounds)) return 2; break;
        case 's': if (parse_int("--steps", optarg, 1, 100000, &steps)) return 2; break;
        case 'c': if (parse_int("--channels", optarg, 1, 4096, &channels)) return 2; break;
        case 'd': data = optarg; break;
        case 'H': if (parse_int("--hidden", optarg, 1, 8192, &HIDDEN)) return 2; break;
        case 'T': if (parse_seq(optarg)) return 2; break;
        case 'b': if (parse_int("--batch", optarg, 2, 65536, &BATCH)) return 2; break;
        case 'g':
            gemm = PL_GEMM_AUTO;
            while (gemm <= PL_GEMM_LAST && strcmp(optarg, pl_gemm_name(gemm)) != 0)
                gemm++;
            if (gemm > PL_GEMM_LAST || !pl_gemm_available(gemm)) {
                fprintf(stderr, "compare-onednn: --gemm: '%s' is no kernel set this CPU runs\n",
                        optarg);
                return 2;
            }
            break;
        case 'B': DT = dnnl_bf16; PRECISION = PL_PRECISION_BF16; break;
        case 'h': usage(stdout); return 0;
        default: fprintf(stderr, "Try 'compare-onednn --help'.\n"); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "compare-onednn: unexpected argument '%s'\nTry 'compare-onednn --help'.\n",
                argv[optind]);
        return 2;
    }

    if (channels == 0)
        channels = HIDDEN;
    /* parlstm: MNIST seen as T x D when that is 784 pixels, else random
     * images of that shape; one trainer per configuration. */
    pl_dataset ds;
    pl_error err = {PL_OK, ""};
    const char *source = "MNIST";
    if (T_STEPS * D_IN != 784 || pl_dataset_load(&ds, data, "train", 0, &err) != PL_OK) {
        synthetic(&ds, 60000);
        source = "random images";
    } else {
        ds.T = T_STEPS;
        ds.D = D_IN;
    }
    const pl_config cfg = {D_IN, HIDDEN, 10, 1};
    pl_run pr[NPL] = {{.workers = 1, .threads = 1}, {.workers = 2, .threads = 1},
                      {.workers = 1, .threads = 2}};
    for (int i = 0; i < NPL; i++) {
        pl_train_opts o;
        pl_train_opts_default(&o);
        o.precision = PRECISION;
        o.workers = pr[i].workers;
        o.threads = pr[i].threads;
        o.batch = BATCH;
        o.gemm = gemm;
        pr[i].total = WARMUP + (long)rounds * steps;
        if (!(pr[i].tr = pl_trainer_create(&cfg, ds.T, &o, &err)))
            pl_check(err.code ? err.code : PL_ERR_ARG, "pl_trainer_create", &err);
        if (!(pr[i].order = malloc(sizeof *pr[i].order * ds.n))) {
            fprintf(stderr, "compare-onednn: cannot allocate %zu indices\n", ds.n);
            return 1;
        }
        pl_epoch_order(1, 0, pr[i].order, ds.n);
        run_steps(&pr[i], &ds, WARMUP);
    }

    /* oneDNN: shared inputs, one set of primitives per thread count. */
    dnnl_engine_t eng;
    dnnl_stream_t st;
    DN(dnnl_engine_create, (&eng, dnnl_cpu, 0));
    DN(dnnl_stream_create, (&st, eng, dnnl_stream_default_flags));
    dnn_inputs in;
    inputs_create(&in, eng, st);
    dnn_net net[NDNN];
    for (int i = 0; i < NDNN; i++) {
        net_create(&net[i], i + 1, &in, eng, st);
        for (int k = 0; k < WARMUP; k++)
            net_step(&net[i], st);
    }
    const dnnl_version_t *v = dnnl_version();
    printf("compare-onednn: T=%d, D=%d, H=%d, batch %d; oneDNN %d.%d.%d %s (forward %s, "
           "backward %s; %d input channels) vs parlstm (gemm %s, %s, %s), %d CPUs\n", T_STEPS,
           D_IN, HIDDEN, BATCH, v->major, v->minor, v->patch, DT == dnnl_f32 ? "f32" : "bf16",
           net[0].impl[0], net[0].impl[1], channels, pl_gemm_name(pl_gemm_resolve(gemm)),
           PRECISION == PL_PRECISION_BF16 ? "bf16" : "fp32", source, pl_cpu_count());
    check_forward(net, &in, eng, st);

    /* Alternate in a fixed order, S steps per configuration and round.
     * Configurations k < NDNN are oneDNN's, the others parlstm's. */
    enum { NCONF = NDNN + NPL };
    const int order[NCONF] = {0, NDNN + 0, 1, NDNN + 1, NDNN + 2}; /* D1 P1x1 D2 P2x1 P1x2 */
    double sps[NCONF][rounds], med[NCONF], lo[NCONF], hi[NCONF];
    printf("timing: %d rounds x %d steps x batch %d per configuration, order oneDNN 1, "
           "parlstm 1x1, oneDNN 2, parlstm 2x1, parlstm 1x2\n", rounds, steps, BATCH);
    fflush(stdout);
    for (int r = 0; r < rounds; r++) {
        for (int j = 0; j < NCONF; j++) {
            int k = order[j];
            if (k < NDNN)
                omp_set_num_threads(net[k].threads);
            double t0 = now();
            if (k < NDNN)
                for (int i = 0; i < steps; i++)
                    net_step(&net[k], st);
            else
                run_steps(&pr[k - NDNN], &ds, steps);
            sps[k][r] = (double)steps * BATCH / (now() - t0);
        }
    }

    /* Report. */
    const double fl_dnn = 3.0 * 2 * T_STEPS * BATCH * (channels + HIDDEN) * (GATES * HIDDEN);
    const double fl_model = pl_step_flops_model(&cfg, T_STEPS, BATCH);
    const double fl_exec = pl_step_flops_executed(&cfg, T_STEPS, BATCH);
    printf("\n%-14s %-12s %12s %12s %12s   %s\n", "implementation", "threads",
           "median smp/s", "min smp/s", "max smp/s", "GFLOP/s at the median");
    char conf[NCONF][32];
    for (int k = 0; k < NCONF; k++) {
        med[k] = median(sps[k], rounds, &lo[k], &hi[k]);
        double steps_s = med[k] / BATCH;
        if (k < NDNN) {
            snprintf(conf[k], sizeof conf[k], "%d thread%s", net[k].threads,
                     net[k].threads == 1 ? "" : "s");
            printf("%-14s %-12s %12.0f %12.0f %12.0f   %.1f\n", "oneDNN", conf[k], med[k],
                   lo[k], hi[k], steps_s * fl_dnn * 1e-9);
        } else {
            const pl_run *p = &pr[k - NDNN];
            snprintf(conf[k], sizeof conf[k], "%dx%d (WxT)", p->workers, p->threads);
            printf("%-14s %-12s %12.0f %12.0f %12.0f   model %.1f, executed %.1f\n", "parlstm",
                   conf[k], med[k], lo[k], hi[k], steps_s * fl_model * 1e-9,
                   steps_s * fl_exec * 1e-9);
        }
    }
    for (int k = 0; k < NCONF; k++)
        if (hi[k] > 1.5 * lo[k])
            printf("warning: %s %s varied by a factor %.1f over the rounds: other load on "
                   "the machine? Its median is unreliable.\n", k < NDNN ? "oneDNN" : "parlstm",
                   conf[k], hi[k] / lo[k]);
    printf("\nFLOPs per step: oneDNN %.3f G (the LSTM layer alone: 3 GEMM passes of\n"
           "2*T*N*(%d+%d)*%d); parlstm model %.3f G, executed %.3f G (the input\n"
           "projection folded into the gate weights). parlstm's figures include the input\n"
           "projection (%d->%d), the output layer (%d->10), the loss and Adam; oneDNN's\n"
           "do not.\n", fl_dnn * 1e-9, channels, HIDDEN, 4 * HIDDEN, fl_model * 1e-9,
           fl_exec * 1e-9, D_IN, HIDDEN, HIDDEN);
    printf("parlstm last-batch loss: 1x1 %.3f, 2x1 %.3f, 1x2 %.3f (after %ld steps each)\n",
           pr[0].loss, pr[1].loss, pr[2].loss, pr[0].step);

    int bd = 0, bp = NDNN;
    for (int k = 1; k < NCONF; k++) {
        if (k < NDNN && med[k] > med[bd]) bd = k;
        if (k >= NDNN && med[k] > med[bp]) bp = k;
    }
    const pl_run *best = &pr[bp - NDNN];
    printf("\nshape T=%d D=%d H=%d batch %d, same cores: parlstm 1x1 / oneDNN 1 thread = "
           "%.2f; parlstm best of 2x1, 1x2 / oneDNN 2 threads = %.2f\n", T_STEPS, D_IN,
           HIDDEN, BATCH, med[NDNN] / med[0], fmax(med[NDNN + 1], med[NDNN + 2]) / med[1]);
    printf("ratio: parlstm best (%dx%d) %.0f samples/s / oneDNN best (%d thread%s) %.0f "
           "samples/s = %.2f\n", best->workers, best->threads, med[bp], net[bd].threads,
           net[bd].threads == 1 ? "" : "s", med[bd], med[bp] / med[bd]);

    for (int i = 0; i < NDNN; i++)
        net_free(&net[i]);
    dnnl_memory_t m[5] = {in.src, in.wl, in.wi, in.bias, in.diff_dst};
    for (int i = 0; i < 5; i++)
        DN(dnnl_memory_destroy, (m[i]));
    DN(dnnl_stream_destroy, (st));
    DN(dnnl_engine_destroy, (eng));
    for (int i = 0; i < NPL; i++) {
        pl_trainer_free(pr[i].tr);
        free(pr[i].order);
    }
    pl_dataset_free(&ds);
    return 0;
}
