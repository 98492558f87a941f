/* bench/ranks-comm: what a training step's communication costs between
 * ranks, alone: the step's exchanges (dist.c) without its computation, so
 * that no rank waits for a slower one. For each model size, per step:
 *   exchange   every rank sends each other rank that rank's slice of its
 *              gradient and receives its own slice from every other rank
 *              (the trainer's reduce-scatter, point to point);
 *   agreement  the all-reduce of chunk norms, losses, stop flags and
 *              checksums (PL_CHUNKS + 4 R doubles);
 *   all-gather the updated parameter slices to every rank.
 * All ranks start each step together (an agreement first), and the time is
 * rank 0's, the median over steps. Run it under mpirun:
 *   mpirun -np 2 bench/ranks-comm --hidden 128,512,1024
 *   mpirun -np 2 --mca btl tcp,self bench/ranks-comm      (over TCP) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* One model size: the medians (ms) of the three parts over `steps` steps. */
static int measure(int hidden, int steps, double ms[3], size_t *np_out)
{
    const int R = pl_dist_ranks(), r = pl_dist_rank();
    pl_config cfg = {28, hidden, 10, 1};
    size_t np = pl_param_count(&cfg), chunk[PL_CHUNKS + 1];
    int *schunk = calloc((size_t)R + 1, sizeof *schunk);
    size_t *soff = calloc((size_t)R + 1, sizeof *soff);
    pl_chunks(np, chunk);
    if (!schunk || !soff)
        return -1;
    pl_rank_slices(chunk, R, schunk, soff);
    const size_t mine = soff[r + 1] - soff[r], n_agree = PL_CHUNKS + 4 * (size_t)R;
    float *grad = pl_alloc_floats(np), *params = pl_alloc_floats(np);
    float *slots = pl_alloc_floats(mine * (size_t)(R > 1 ? R - 1 : 1) + 1);
    double *agree = calloc(n_agree, sizeof *agree), *t[3];
    pl_xfer *sends = pl_xfer_create(R), *recvs = pl_xfer_create(R);
    for (int k = 0; k < 3; k++)
        t[k] = calloc((size_t)steps, sizeof(double));
    if (!grad || !params || !slots || !agree || !sends || !recvs || !t[0] || !t[1] || !t[2])
        return -1;
    for (size_t i = 0; i < np; i++)
        grad[i] = params[i] = (float)i;
    for (int s = -3; s < steps; s++) { /* 3 warm-up steps */
        pl_dist_agree(0, NULL);
        double t0 = pl_seconds();
        for (int q = 0, k = 0; q < R; q++)
            if (q != r && mine > 0)
                pl_xfer_recv(recvs, slots + mine * (size_t)k++, mine, q, 0);
        for (int q = 0; q < R; q++)
            if (q != r && soff[q + 1] > soff[q])
                pl_xfer_send(sends, grad + soff[q], soff[q + 1] - soff[q], q, 0);
        pl_xfer_wait(recvs);
        pl_xfer_wait(sends);
        double t1 = pl_seconds();
        pl_dist_sum(agree, n_agree);
        double t2 = pl_seconds();
        pl_dist_allgather(params, soff);
        double t3 = pl_seconds();
        if (s >= 0) {
            t[0][s] = 1e3 * (t1 - t0);
            t[1][s] = 1e3 * (t2 - t1);
            t[2][s] = 1e3 * (t3 - t2);
        }
    }
    for (int k = 0; k < 3; k++) {
        ms[k] = pl_median_sorted(t[k], steps, NULL, NULL);
        free(t[k]);
    }
    *np_out = np;
    pl_xfer_free(sends);
    pl_xfer_free(recvs);
    pl_free(grad);
    pl_free(params);
    pl_free(slots);
    free(agree);
    free(schunk);
    free(soff);
    return 0;
}

int main(int argc, char **argv)
{
    pl_error err = {0};
    if (pl_dist_init(&argc, &argv, &err)) {
        fprintf(stderr, "ranks-comm: %s\n", err.msg);
        return 1;
    }
    const char *list = "128,512,1024";
    int steps = 100;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--hidden") && i + 1 < argc)
            list = argv[++i];
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else {
            if (pl_dist_rank() == 0)
                fprintf(stderr, "usage: mpirun -np R bench/ranks-comm [--hidden N,N,...] "
                        "[--steps N]\n");
            pl_dist_finalize();
            return 2;
        }
    }
    if (steps < 1)
        steps = 1;
    int rc = 0, R = pl_dist_ranks();
    if (pl_dist_rank() == 0)
        printf("ranks-comm: %d ranks, median of %d steps, rank 0's milliseconds per step\n"
               "%7s %10s %9s %10s %11s %10s %9s %12s\n", R, steps, "hidden", "params",
               "MB grad", "exchange", "agreement", "all-gather", "total", "MB/s sent");
    for (const char *p = list; *p && !rc;) {
        int hidden = atoi(p);
        double ms[3];
        size_t np = 0;
        if (hidden < 1 || measure(hidden, steps, ms, &np)) {
            fprintf(stderr, "ranks-comm: bad --hidden or out of memory\n");
            rc = 1;
            break;
        }
        double total = ms[0] + ms[1] + ms[2];
        /* each rank sends (R - 1)/R of the gradient and of the parameters */
        double sent = 2.0 * 4.0 * (double)np * (R - 1) / R / 1e6;
        if (pl_dist_rank() == 0)
            printf("%7d %10zu %9.2f %10.3f %11.3f %10.3f %9.3f %12.0f\n", hidden, np,
                   4.0 * (double)np / 1e6, ms[0], ms[1], ms[2], total,
                   total > 0 ? sent / (total / 1e3) : 0);
        p += strcspn(p, ",");
        p += *p == ',';
    }
    fflush(stdout);
    pl_dist_finalize();
    return rc;
}
