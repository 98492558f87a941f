/* bench/l1-ceiling: the share of the FMA peak that a kernel set's GEMM
 * reaches with every operand in L1, on this core, now: its ceiling, and a
 * check of the host before measuring anything else (pl_l1_ceiling, which
 * `parlstm bench` also runs at the start and end of every round).
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
 * nothing: on a 2-core Zen 3 guest, the avx2 set's 93% of the loop quietly
 * and 74% beside such a neighbour (91% and 65% before its k loop took two
 * steps a pass), from one to the other within seconds. A
 * `parlstm bench` round taken at the low level understates its % of the
 * peak by as much; run this first, pinned to the CPU the measurement will
 * use (taskset -c N).
 *   bench/l1-ceiling [--kernels SET] [--pairs N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench-kernels.h"
#include "internal.h"

int main(int argc, char **argv)
{
    int pairs = 61;
    pl_gemm_backend be = PL_GEMM_AUTO;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--kernels")) {
            if (bench_set_named("bench/l1-ceiling", argv[++i], &be) != 0)
                return 2;
        } else if (!(i + 1 < argc && !strcmp(argv[i], "--pairs") &&
                     (pairs = atoi(argv[++i])) > 0)) {
            fprintf(stderr, "usage: bench/l1-ceiling [--kernels SET] [--pairs N] (N > 0)\n");
            return 2;
        }
    }
    if (!bench_kernels("bench/l1-ceiling", be))
        return 1;
    int kc;
    long a_limit;
    pl_gemm_blocking(be, &kc, &a_limit);
    if (kc <= 0) {
        fprintf(stderr, "bench/l1-ceiling: the %s set has no blocked micro-kernel of ours "
                        "to measure\n",
                pl_gemm_name(pl_gemm_resolve(be)));
        return 1;
    }
    double q1, q3, med = pl_l1_ceiling(be, pairs, &q1, &q3);
    if (med <= 0) {
        fprintf(stderr, "bench/l1-ceiling: out of memory\n");
        return 1;
    }
    printf("%s GEMM with its operands in L1 (24 x 32 over a chunk of B) against its FMA "
           "loop,\n%d pairs of about 0.2 and 0.1 ms: median %.1f%% (quartiles %.1f-%.1f)\n",
           pl_gemm_name(pl_gemm_resolve(be)), pairs, 100 * med, 100 * q1, 100 * q3);
    return 0;
}
