/* What the two halves of parlstm bench share (bench.h): the median of a
 * row's rounds, random images when no data is given, timed steps, the
 * neighbour probe of the rounds' lines and the phases of a profile. Both
 * bench.c and bench_shapes.c call these; neither calls the other's
 * internals, and only bench.c calls bench_shapes(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

double bench_median(const double *v, int n, double *lo, double *hi)
{
    double tmp[BENCH_MAX_ROUNDS];
    memcpy(tmp, v, sizeof(double) * (size_t)n);
    return pl_median_sorted(tmp, n, lo, hi);
}

int bench_random_images(pl_dataset *ds, size_t n, int T, int D)
{
    size_t px = n * (size_t)T * (size_t)D;
    uint8_t *img = malloc(px), *lab = malloc(n);
    if (!img || !lab) {
        free(img);
        free(lab);
        return -1;
    }
    pl_rng r;
    pl_rng_seed(&r, 12345);
    for (size_t i = 0; i < px; i++)
        img[i] = (uint8_t)pl_rng_below(&r, 256);
    for (size_t i = 0; i < n; i++)
        lab[i] = (uint8_t)pl_rng_below(&r, 10);
    memset(ds, 0, sizeof *ds);
    ds->images = img;
    ds->labels = lab;
    ds->owned_images = img;
    ds->owned_labels = lab;
    ds->n = n;
    ds->T = T;
    ds->D = D;
    ds->classes = 10;
    return 0;
}

double bench_run_steps(pl_trainer *tr, const pl_dataset *ds, const uint32_t *order, int batch,
                        int warmup, int steps, long *cursor)
{
    pl_error err;
    long per_epoch = (long)(ds->n / (size_t)batch);
    double t0 = 0;
    for (int s = 0; s < warmup + steps; s++) {
        if (s == warmup)
            t0 = pl_seconds();
        long at = (*cursor)++ % per_epoch;
        if (pl_trainer_step(tr, ds, order + at * batch, batch, *cursor, 1000000, NULL, &err)) {
            fprintf(stderr, "parlstm bench: %s\n", err.msg);
            exit(1);
        }
    }
    return steps * (double)batch / (pl_seconds() - t0);
}

double bench_probe(pl_gemm_backend be)
{
    double q = pl_l1_ceiling(be, 21, NULL, NULL);
    return q > 0 ? q : pl_l1_ceiling(PL_GEMM_AUTO, 21, NULL, NULL);
}

void bench_probe_end(double before, double after)
{
    fprintf(stderr, " samples/s");
    if (before > 0 && after > 0)
        fprintf(stderr, "; GEMM in L1 at %.0f%%, %.0f%% of the FMA loop", 100 * before,
                100 * after);
    fprintf(stderr, "\n");
}

void bench_profile_steps(pl_trainer *tr, bench_env *e, int batch, int steps, double *ph)
{
    long ns;
    pl_trainer_profile_reset(tr);
    bench_run_steps(tr, &e->ds, e->order, batch, 0, steps, &e->cursor);
    pl_trainer_profile(tr, ph, &ns);
    for (int p = 0; p < PL_NPHASE; p++)
        ph[p] *= 1e3 / (double)ns;
}

void bench_print_phases(const char *const *names, double (*ph)[PL_NPHASE], int n)
{
    int w = 8;
    for (int i = 0; i < n; i++)
        w = (int)strlen(names[i]) > w ? (int)strlen(names[i]) : w;
    printf("%-22s", "phase");
    for (int i = 0; i < n; i++)
        printf(" %*s", w, names[i]);
    printf("\n");
    for (int p = 0; p < PL_NPHASE; p++) {
        printf("%-22s", pl_phase_name((pl_phase)p));
        for (int i = 0; i < n; i++)
            printf(" %*.3f", w, ph[i][p]);
        printf("\n");
    }
    printf("%-22s", "total");
    for (int i = 0; i < n; i++) {
        double tot = 0;
        for (int p = 0; p < PL_NPHASE; p++)
            tot += ph[i][p];
        printf(" %*.3f", w, tot);
    }
    printf("\n");
}
