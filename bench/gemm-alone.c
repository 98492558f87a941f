/* bench/gemm-alone: the three products of an LSTM step, each alone, on a
 * kernel set's GEMM, with their operands in cache (the same call repeated)
 * and cold (a buffer larger than the last-level cache walked before each
 * call), against the FMA peak measured in the same rounds. Next to
 * `parlstm bench --profile` (the same products inside a training step), it
 * says how much of the gap to the peak is the kernel's and how much comes
 * from where the operands are when the step calls it.
 *
 * Shapes, as lstm.c calls them for layer 0 of the folded model (one worker,
 * all gate panels, one time step; Hp = H rounded up to 16, K = D + 1 + Hp):
 *   forward    gates (batch, 4Hp, panelled) = [x, 1, h] (batch, K) Wf (K, 4Hp)
 *   recurrent  dh (batch, Hp) = dG (batch, 4Hp in 64-wide blocks) Wh^T
 *   weight     dWf (K, 4Hp) += [x, 1, h]^T (K, rows) dG (rows, 4Hp), rows =
 *              batch when dWf is summed inside the backward loop
 *              (pl_wgrad_in_loop), else pl_wgrad_rows rows of all
 *              the steps
 * FLOPs are 2 M N K of each; %peak is GFLOP/s over the FMA peak of the
 * set's vector width measured in the same round; the median of --rounds
 * rounds (each product about 20 ms of calls), with the lowest and highest.
 *   bench/gemm-alone [--batch B] [--hidden H] [--input D] [--rounds R]
 *                    [--flush MIB] [--kernels SET] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench-kernels.h"
#include "internal.h"
#include "tools.h"

enum { FORWARD, RECURRENT, WEIGHT, NKIND };
static const char *kind_name[NKIND] = {"forward", "recurrent", "weight gradient"};

typedef struct {
    float *xh, *wf, *wt, *g, *dh, *dwf;
    pl_gemm_op op[NKIND];
    double flops[NKIND];
} step_products;

static float *random_floats(size_t n, pl_rng *r)
{
    float *p = pl_alloc_floats(n);
    for (size_t i = 0; p && i < n; i++)
        p[i] = (float)(pl_rng_uniform(r) - 0.5);
    return p;
}

/* The three products at (batch, K, Hp), the weight gradient over `rows`
 * rows; 0, or -1 when memory runs out. */
static int products_make(step_products *s, int batch, int rows, int K, int Hp)
{
    const int N = 4 * Hp, np = N / PL_PANEL, n = batch > rows ? batch : rows;
    pl_rng r;
    pl_rng_seed(&r, 7);
    s->xh = random_floats((size_t)n * K, &r);       /* (n, K) */
    s->wf = random_floats((size_t)K * N, &r);       /* np panels of (K, 64) */
    s->wt = random_floats((size_t)N * Hp, &r);      /* Wh^T: Hp/64 panels of (N, 64) */
    s->g = random_floats((size_t)n * N, &r);        /* np panels of (n, 64) */
    s->dh = random_floats((size_t)batch * Hp, &r);  /* (batch, Hp) */
    s->dwf = random_floats((size_t)K * N, &r);      /* np panels of (K, 64) */
    if (!s->xh || !s->wf || !s->wt || !s->g || !s->dh || !s->dwf)
        return -1;
    s->op[FORWARD] = (pl_gemm_op){
        .M = batch, .N = N, .nb = 1, .kb = K, .a = s->xh, .a_rs = (size_t)K, .a_cs = 1,
        .b = s->wf, .ldb = PL_PANEL, .b_ps = (size_t)K * PL_PANEL, .c = s->g,
        .ldc = PL_PANEL, .c_ps = (size_t)n * PL_PANEL};
    s->op[RECURRENT] = (pl_gemm_op){
        .M = batch, .N = Hp, .nb = np, .kb = PL_PANEL, .a = s->g, .a_rs = PL_PANEL,
        .a_cs = 1, .a_bs = (size_t)n * PL_PANEL, .b = s->wt, .ldb = PL_PANEL,
        .b_bs = (size_t)PL_PANEL * PL_PANEL, .b_ps = (size_t)N * PL_PANEL, .c = s->dh,
        .ldc = (size_t)Hp};
    s->op[WEIGHT] = (pl_gemm_op){
        .M = K, .N = N, .nb = 1, .kb = rows, .a = s->xh, .a_rs = 1, .a_cs = (size_t)K,
        .b = s->g, .ldb = PL_PANEL, .b_ps = (size_t)n * PL_PANEL, .c = s->dwf,
        .ldc = PL_PANEL, .c_ps = (size_t)K * PL_PANEL, .accumulate = 1};
    s->flops[FORWARD] = 2.0 * batch * K * N;
    s->flops[WEIGHT] = 2.0 * rows * K * N;
    s->flops[RECURRENT] = 2.0 * batch * N * Hp;
    return 0;
}

static void products_free(step_products *s)
{
    float *all[] = {s->xh, s->wf, s->wt, s->g, s->dh, s->dwf};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        pl_free(all[i]);
}

/* GFLOP/s of op: calls timed one by one, each after walking `junk` (a
 * line of every 64 bytes) when it is not NULL. */
static double gflops(const pl_kernels *k, const pl_gemm_op *op, double flops, float *junk,
                     size_t njunk)
{
    const long calls = 1 + (long)(20e6 / (flops / 80.0)); /* about 20 ms at 80 GFLOP/s */
    double busy = 0;
    pl_gemm_with(k, op);
    for (long i = 0; i < calls; i++) {
        for (size_t j = 0; junk && j < njunk; j += 16)
            junk[j] += 1.0f;
        double t0 = pl_seconds();
        pl_gemm_with(k, op);
        busy += pl_seconds() - t0;
    }
    return flops * (double)calls / busy / 1e9;
}

static int parse(int argc, char **argv, int *v[], const char *names[], int nv,
                 pl_gemm_backend *be)
{
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--kernels")) {
            if (bench_set_named("bench/gemm-alone", argv[++i], be) != 0)
                return -1;
            continue;
        }
        int *to = NULL;
        for (int j = 0; j < nv; j++)
            if (!strcmp(argv[i], names[j]))
                to = v[j];
        if (!to || i + 1 == argc || (*to = atoi(argv[++i])) < 1) {
            fprintf(stderr, "usage: bench/gemm-alone [--batch B] [--hidden H] [--input D] "
                            "[--rounds R] [--flush MIB] [--kernels SET] (positive integers)\n");
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    int batch = 100, H = 128, D = 28, rounds = 7, flush_mib = 64;
    pl_gemm_backend be = PL_GEMM_AUTO;
    int *v[] = {&batch, &H, &D, &rounds, &flush_mib};
    const char *names[] = {"--batch", "--hidden", "--input", "--rounds", "--flush"};
    if (parse(argc, argv, v, names, 5, &be) != 0)
        return 2;
    const pl_kernels *k = bench_kernels("bench/gemm-alone", be);
    if (!k)
        return 1;
    const int Hp = (H + PL_UNIT_BLOCK - 1) / PL_UNIT_BLOCK * PL_UNIT_BLOCK, K = D + 1 + Hp;
    int kc;
    long a_limit;
    pl_gemm_blocking(be, &kc, &a_limit);
    const int in_loop = pl_wgrad_in_loop(K, Hp), rows = in_loop ? batch : pl_wgrad_rows(kc, 0);
    step_products s;
    const size_t njunk = (size_t)flush_mib * 1024 * 1024 / sizeof(float);
    float *junk = pl_alloc_floats(njunk);
    if (!junk || products_make(&s, batch, rows, K, Hp) != 0) {
        fprintf(stderr, "bench/gemm-alone: out of memory\n");
        return 1;
    }
    /* per round: each product's GFLOP/s in cache and cold, and the peak */
    double *hot = malloc(sizeof(double) * NKIND * rounds);
    double *cold = malloc(sizeof(double) * NKIND * rounds), *peak = malloc(sizeof(double) * rounds);
    if (!hot || !cold || !peak) {
        fprintf(stderr, "bench/gemm-alone: out of memory\n");
        return 1;
    }
    for (int r = 0; r < rounds; r++) { /* peak, hot, cold, round after round */
        peak[r] = pl_fma_peak_gflops_of(be, 1, 0.05);
        for (int i = 0; i < NKIND; i++) {
            hot[i * rounds + r] = gflops(k, &s.op[i], s.flops[i], NULL, 0);
            cold[i * rounds + r] = gflops(k, &s.op[i], s.flops[i], junk, njunk);
        }
    }
    printf("products of one step alone, %s kernels, batch %d, hidden %d (K = %d), 1 thread; "
           "%d rounds\n",
           pl_gemm_name(pl_gemm_resolve(be)), batch, H, K, rounds);
    printf("weight gradient over %d rows (%s); cold: after walking %d MiB\n", rows,
           in_loop ? "one step's, inside the backward loop" : "one call's, of all the steps'",
           flush_mib);
    printf("%%peak: each round's GFLOP/s over the FMA peak of the same round; median "
           "(lowest-highest)\n");
    printf("%-16s %24s %24s\n", "product", "in cache", "cold");
    for (int i = 0; i < NKIND; i++) {
        double *h = hot + i * rounds, *c = cold + i * rounds, hlo, hhi, clo, chi;
        for (int r = 0; r < rounds; r++) {
            h[r] = 100 * h[r] / peak[r];
            c[r] = 100 * c[r] / peak[r];
        }
        double hm = pl_median_sorted(h, rounds, &hlo, &hhi);
        double cm = pl_median_sorted(c, rounds, &clo, &chi);
        printf("%-16s %7.1f%% (%5.1f-%5.1f) %7.1f%% (%5.1f-%5.1f)\n", kind_name[i], hm, hlo,
               hhi, cm, clo, chi);
    }
    double lo, hi, pk = pl_median_sorted(peak, rounds, &lo, &hi);
    printf("FMA peak: median %.1f GFLOP/s (%.1f-%.1f)\n", pk, lo, hi);
    free(hot);
    free(cold);
    free(peak);
    products_free(&s);
    pl_free(junk);
    return 0;
}
