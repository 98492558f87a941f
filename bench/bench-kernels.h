/* What the benchmark programs under bench/ share about choosing a kernel
 * set (--kernels SET). */
#ifndef PARLSTM_BENCH_KERNELS_H
#define PARLSTM_BENCH_KERNELS_H

#include <stdio.h>

#include "internal.h"
#include "tools.h"

/* The set called `name` into *be: 0, or -1 after saying so on stderr. */
static inline int bench_set_named(const char *prog, const char *name, pl_gemm_backend *be)
{
    const int b = pl_gemm_by_name(name);
    if (b < 0) {
        fprintf(stderr, "%s: unknown kernel set '%s'\n", prog, name);
        return -1;
    }
    *be = (pl_gemm_backend)b;
    return 0;
}

/* The table of set be, or NULL after saying on stderr that this CPU cannot
 * run it. */
static inline const pl_kernels *bench_kernels(const char *prog, pl_gemm_backend be)
{
    const pl_kernels *k = pl_kernels_of(be);
    if (!k)
        fprintf(stderr, "%s: this CPU cannot run the %s kernels\n", prog, pl_gemm_name(be));
    return k;
}

#endif
