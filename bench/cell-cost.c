/* bench/cell-cost: whether the LSTM cell is bound by arithmetic or by
 * memory. Times a kernel set's cell, forward and backward, in nanoseconds
 * per 16-unit vector of one row (every unit computes 3 sigmoids and 2
 * tanh forward), over a buffer the size of one GEMM tile (6 rows, one gate
 * panel: stays in L1) and over a whole time step's (--batch rows, all the
 * panels of --hidden units: L2). When the two agree, the cell costs its
 * arithmetic wherever its operands are, and fusing it into the products
 * (to run it on gates still in L1) cannot make it cheaper. Best of
 * --repeats, each as many calls as make about 20 ms; the gates are
 * restored before each call (a copy, timed alone and subtracted).
 *   bench/cell-cost [--batch B] [--hidden H] [--repeats R] [--kernels SET] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench-kernels.h"
#include "internal.h"

typedef struct {
    int n, np; /* rows, gate panels */
    float *g, *g0, *c, *tc, *cp, *h, *dh, *dc;
} cell_bufs;

static void bufs_make(cell_bufs *b, int n, int np)
{
    const size_t ng = (size_t)n * np * PL_PANEL, nu = (size_t)n * np * PL_UNIT_BLOCK;
    b->n = n;
    b->np = np;
    float **all[] = {&b->g, &b->g0, &b->c, &b->tc, &b->cp, &b->h, &b->dh, &b->dc};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        *all[i] = pl_alloc_floats(i < 2 ? ng : nu);
    pl_rng r;
    pl_rng_seed(&r, 3);
    for (size_t i = 0; i < ng; i++) /* pre-activations in [-4, 4] */
        b->g0[i] = (float)(8.0 * pl_rng_uniform(&r) - 4.0);
    for (size_t i = 0; i < nu; i++) { /* dc stays as allocated: zeros */
        b->cp[i] = (float)(2.0 * pl_rng_uniform(&r) - 1.0);
        b->tc[i] = (float)(2.0 * pl_rng_uniform(&r) - 1.0);
        b->dh[i] = (float)(2.0 * pl_rng_uniform(&r) - 1.0);
    }
}

static void bufs_free(cell_bufs *b)
{
    float *all[] = {b->g, b->g0, b->c, b->tc, b->cp, b->h, b->dh, b->dc};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        pl_free(all[i]);
}

/* Nanoseconds per vector-row of `cell` (forward or backward) on b. */
static double per_vector(const pl_kernels *k, cell_bufs *b, int backward, int repeats)
{
    const int Hp = b->np * PL_UNIT_BLOCK;
    const size_t ng = (size_t)b->n * b->np * PL_PANEL;
    const pl_cell_args a = {.n = b->n, .p0 = 0, .p1 = b->np, .Hp = Hp, .g = b->g,
                            .g_ps = (size_t)b->n * PL_PANEL, .c = b->c, .tc = b->tc,
                            .c_prev = b->cp, .h = b->h, .h_rs = (size_t)Hp, .dh = b->dh,
                            .dc = b->dc};
    const double vectors = (double)b->n * b->np; /* a panel's 16 units: one per row */
    const long calls = 1 + (long)(20e6 / (vectors * 25.0)); /* about 20 ms at 25 ns */
    double best = 1e30;
    for (int r = 0; r < repeats; r++) {
        double t0 = pl_seconds();
        for (long i = 0; i < calls; i++) {
            memcpy(b->g, b->g0, sizeof(float) * ng);
            (backward ? k->cell_backward : k->cell_forward)(&a);
        }
        double t1 = pl_seconds();
        for (long i = 0; i < calls; i++) {
            memcpy(b->g, b->g0, sizeof(float) * ng);
            __asm__ volatile("" ::"r"(b->g) : "memory"); /* keep every copy */
        }
        double t2 = pl_seconds();
        double ns = ((t1 - t0) - (t2 - t1)) * 1e9 / ((double)calls * vectors);
        best = ns < best ? ns : best;
    }
    return best;
}

int main(int argc, char **argv)
{
    int batch = 100, H = 256, repeats = 7;
    pl_gemm_backend be = PL_GEMM_AUTO;
    for (int i = 1; i < argc; i++) {
        int *to = !strcmp(argv[i], "--batch") ? &batch : !strcmp(argv[i], "--hidden") ? &H
                  : !strcmp(argv[i], "--repeats") ? &repeats : NULL;
        if (i + 1 < argc && !strcmp(argv[i], "--kernels")) {
            if (bench_set_named("bench/cell-cost", argv[++i], &be) != 0)
                return 2;
            continue;
        }
        if (!to || i + 1 == argc || (*to = atoi(argv[++i])) < 1) {
            fprintf(stderr, "usage: bench/cell-cost [--batch B] [--hidden H] [--repeats R] "
                            "[--kernels SET] (positive integers)\n");
            return 2;
        }
    }
    const pl_kernels *k = bench_kernels("bench/cell-cost", be);
    if (!k)
        return 1;
    const int np = (H + PL_UNIT_BLOCK - 1) / PL_UNIT_BLOCK;
    cell_bufs tile, step;
    bufs_make(&tile, 6, 1);
    bufs_make(&step, batch, np);
    printf("cell of the %s kernels, ns per 16-unit vector of a row (best of %d)\n",
           pl_gemm_name(pl_gemm_resolve(be)), repeats);
    printf("%-9s %12s %22s\n", "", "tile (6x16)", "step (batch x hidden)");
    for (int backward = 0; backward <= 1; backward++)
        printf("%-9s %12.2f %14.2f (%dx%d)\n", backward ? "backward" : "forward",
               per_vector(k, &tile, backward, repeats), per_vector(k, &step, backward, repeats),
               batch, np * PL_UNIT_BLOCK);
    bufs_free(&tile);
    bufs_free(&step);
    return 0;
}
