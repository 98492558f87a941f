/* bench/l1-ceiling: the share of the FMA peak that a kernel set's GEMM
 * reaches with every operand in L1, on this core, now: its ceiling, and a
 * check of the host before measuring anything else.
 *
 * The set's GEMM (a 24 x 32 product over one chunk of B: A, B and C
 * together about 28 KiB, called for about 0.2 ms) and its FMA loop (the
 * peak's, about 0.1 ms) alternate --pairs times; the ratio of each pair's
 * two rates, median and quartiles. Alternating this finely, a change of the
 * clock or of the host's load falls on both sides of a pair.
 *
 * On a shared host the figure has two levels. A busy neighbour on the same
 * core (its SMT sibling, another guest's) slows a GEMM, which loads two
 * values for every three FMAs, far more than the FMA loop, which loads
 * nothing: on a 2-core Zen 3 guest, 90-91% of the loop quietly and 64-67%
 * beside such a neighbour, from one to the other within seconds. A
 * `parlstm bench` round taken at the low level understates its % of the
 * peak by as much; run this first, pinned to the CPU the measurement will
 * use (taskset -c N).
 *   bench/l1-ceiling [--kernels SET] [--pairs N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench-kernels.h"
#include "internal.h"

enum { ROWS = 24, COLS = 32 };

/* GFLOP/s of `calls` calls of op */
static double gemm_rate(const pl_kernels *k, const pl_gemm_op *op, long calls)
{
    double t = pl_seconds();
    for (long i = 0; i < calls; i++)
        pl_gemm_with(k, op);
    return 2.0 * op->M * op->N * op->kb * (double)calls / (pl_seconds() - t) / 1e9;
}

static double loop_rate(const pl_kernels *k, long iters, volatile float *sink)
{
    double flops, t = pl_seconds();
    *sink = k->fma_loop(iters, &flops);
    return flops / (pl_seconds() - t) / 1e9;
}

int main(int argc, char **argv)
{
    int pairs = 61;
    pl_gemm_backend be = PL_GEMM_AUTO;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--kernels")) {
            if (bench_set_named("bench/l1-ceiling", argv[++i], &be) != 0)
                return 2;
        } else if (i + 1 < argc && !strcmp(argv[i], "--pairs") && (pairs = atoi(argv[++i])) > 0) {
            continue;
        } else {
            fprintf(stderr, "usage: bench/l1-ceiling [--kernels SET] [--pairs N] (N > 0)\n");
            return 2;
        }
    }
    const pl_kernels *k = bench_kernels("bench/l1-ceiling", be);
    if (!k)
        return 1;
    int kc;
    long a_limit;
    pl_gemm_blocking(be, &kc, &a_limit);
    if (kc <= 0 || !k->fma_loop) {
        fprintf(stderr, "bench/l1-ceiling: the %s set has no blocked micro-kernel of ours "
                        "to measure\n",
                pl_gemm_name(pl_gemm_resolve(be)));
        return 1;
    }
    /* A (ROWS, kc), B (kc, COLS), C (ROWS, COLS), one after the other */
    float *buf = pl_alloc_floats((size_t)(ROWS + COLS) * kc + ROWS * COLS);
    double *ratio = malloc(sizeof(double) * (size_t)pairs);
    if (!buf || !ratio) {
        fprintf(stderr, "bench/l1-ceiling: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < (size_t)(ROWS + COLS) * kc + ROWS * COLS; i++)
        buf[i] = 1e-3f * (float)(i % 7);
    const pl_gemm_op op = {.M = ROWS, .N = COLS, .nb = 1, .kb = kc, .a = buf,
                           .a_rs = (size_t)kc, .a_cs = 1, .b = buf + (size_t)ROWS * kc,
                           .ldb = COLS, .c = buf + (size_t)(ROWS + COLS) * kc, .ldc = COLS,
                           .accumulate = 1};
    volatile float sink;
    /* size both sides from a first try: about 0.2 ms of calls, 0.1 ms of loop */
    double g = gemm_rate(k, &op, 50), f = loop_rate(k, 100000, &sink);
    double flops_one;
    k->fma_loop(1, &flops_one);
    const long calls = 1 + (long)(0.2e-3 * g * 1e9 / (2.0 * ROWS * COLS * kc));
    const long iters = 1 + (long)(0.1e-3 * f * 1e9 / flops_one);
    for (int p = 0; p < pairs; p++) {
        f = loop_rate(k, iters, &sink);
        g = gemm_rate(k, &op, calls);
        ratio[p] = 100 * g / f;
    }
    double lo, hi, med = pl_median_sorted(ratio, pairs, &lo, &hi);
    printf("%s GEMM with its operands in L1 (%d x %d over %d rows of B) against its FMA "
           "loop,\n%d pairs of about 0.2 and 0.1 ms: median %.1f%% (quartiles %.1f-%.1f, "
           "range %.1f-%.1f)\n",
           pl_gemm_name(pl_gemm_resolve(be)), ROWS, COLS, kc, pairs, med,
           ratio[pairs / 4], ratio[(3 * pairs) / 4], lo, hi);
    pl_free(buf);
    free(ratio);
    return 0;
}
