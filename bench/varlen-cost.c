/* bench/varlen-cost: what variable lengths cost beside the arithmetic
 * they save. One worker's shard of sequences of lengths uniform in
 * [T/10, T] (seeded), H units, one layer, D inputs a step:
 *   balance    pl_balance_rows over a whole batch (the order of its rows
 *              that gives shards of about the same cost)
 *   load       pl_ws_load_f32_lengths (with its counting sort of the
 *              shard's rows by length) against pl_ws_load_f32 (all T steps)
 *   step       forward + backward of the shard, packed against padded
 * Medians over the repeats, alternating packed and padded; one thread.
 *   bench/varlen-cost [--batch B] [--rows N] [--T T] [--D D] [--hidden H] [--repeats R] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct {
    int batch, rows, T, D, H, repeats;
} opts;

static int parse(int argc, char **argv, opts *o)
{
    *o = (opts){100, 50, 784, 1, 128, 9};
    for (int i = 1; i < argc; i++) {
        int *to = !strcmp(argv[i], "--batch") ? &o->batch : !strcmp(argv[i], "--rows") ? &o->rows
                  : !strcmp(argv[i], "--T") ? &o->T : !strcmp(argv[i], "--D") ? &o->D
                  : !strcmp(argv[i], "--hidden") ? &o->H : !strcmp(argv[i], "--repeats")
                  ? &o->repeats : NULL;
        if (!to || i + 1 == argc || (*to = atoi(argv[++i])) < 1) {
            fprintf(stderr, "usage: bench/varlen-cost [--batch B] [--rows N] [--T T] [--D D] "
                            "[--hidden H] [--repeats R] (positive integers)\n");
            return 2;
        }
    }
    if (o->rows > o->batch) {
        fprintf(stderr, "bench/varlen-cost: --rows %d is more than --batch %d\n", o->rows,
                o->batch);
        return 2;
    }
    return 0;
}

/* Microseconds per call of pl_balance_rows on the batch, median of runs
 * of 1000 calls. */
static double balance_us(const opts *o, const int32_t *len, int repeats)
{
    uint32_t *idx = malloc(sizeof *idx * (size_t)o->batch), *out = malloc(sizeof *out * (size_t)o->batch);
    uint32_t *sorted = malloc(sizeof *sorted * (size_t)o->batch);
    int *cnt = malloc(sizeof *cnt * (size_t)(o->T + 1));
    double *t = malloc(sizeof *t * (size_t)repeats);
    pl_epoch_order(1, 0, idx, (size_t)o->batch);
    for (int r = 0; r < repeats; r++) {
        double t0 = pl_seconds();
        for (int k = 0; k < 1000; k++)
            pl_balance_rows(idx, o->batch, len, o->T, out, sorted, cnt);
        t[r] = (pl_seconds() - t0) * 1e3;
    }
    double m = pl_median_sorted(t, repeats, NULL, NULL);
    free(idx);
    free(out);
    free(sorted);
    free(cnt);
    free(t);
    return m;
}

int main(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc;
    const pl_config cfg = {o.D, o.H, 10, 1};
    const pl_gemm_backend be = pl_gemm_resolve(PL_GEMM_AUTO);
    const size_t np = pl_param_count(&cfg), nx = (size_t)o.batch * o.T * o.D;
    float *params = pl_alloc_floats(np), *grad = pl_alloc_floats(np), *x = malloc(sizeof *x * nx);
    int32_t *len = malloc(sizeof *len * (size_t)o.batch);
    uint8_t *labels = malloc((size_t)o.batch);
    pl_rng r;
    pl_rng_seed(&r, 1);
    const int lo = o.T / 10 > 0 ? o.T / 10 : 1;
    double mean = 0;
    for (int b = 0; b < o.batch; b++) {
        len[b] = lo + (int32_t)pl_rng_below(&r, (uint64_t)(o.T - lo + 1));
        labels[b] = (uint8_t)(b % 10);
        mean += len[b] / (double)o.batch;
    }
    for (size_t i = 0; i < nx; i++)
        x[i] = (float)pl_rng_uniform(&r);
    pl_model_init(&cfg, params, PL_INIT_DEFAULT, 1);
    pl_packed *pk = pl_packed_create(&cfg, be);
    pl_ws *ws = pl_ws_create(&cfg, o.T, o.rows, 1, be);
    if (!params || !grad || !x || !len || !labels || !pk || !ws) {
        fprintf(stderr, "bench/varlen-cost: cannot allocate\n");
        return 1;
    }
    pl_packed_update(pk, params, 0, 1);
    double *load[2], *step[2];
    for (int k = 0; k < 2; k++) {
        load[k] = malloc(sizeof(double) * (size_t)o.repeats);
        step[k] = malloc(sizeof(double) * (size_t)o.repeats);
    }
    for (int rep = 0; rep < o.repeats; rep++)
        for (int k = 0; k < 2; k++) { /* 0 packed, 1 padded */
            double t0 = pl_seconds();
            pl_ws_load_f32_lengths(ws, x, labels, k == 0 ? len : NULL, o.rows);
            double t1 = pl_seconds();
            pl_lstm_forward(ws, pk, params, NULL, NULL);
            pl_lstm_backward(ws, pk, params, (float)o.rows, grad);
            load[k][rep] = (t1 - t0) * 1e6;
            step[k][rep] = (pl_seconds() - t1) * 1e3;
        }
    double shard_mean = 0;
    for (int b = 0; b < o.rows; b++)
        shard_mean += len[b] / (double)o.rows;
    const double lp = pl_median_sorted(load[0], o.repeats, NULL, NULL);
    const double lq = pl_median_sorted(load[1], o.repeats, NULL, NULL);
    const double sp = pl_median_sorted(step[0], o.repeats, NULL, NULL);
    const double sq = pl_median_sorted(step[1], o.repeats, NULL, NULL);
    printf("varlen-cost: T %d, D %d, H %d, kernels %s; lengths uniform in [%d, %d]: batch of %d "
           "(mean %.1f), shard of its first %d (mean %.1f, ideal %.2f); medians of %d\n",
           o.T, o.D, o.H, pl_gemm_name(be), lo, o.T, o.batch, mean, o.rows, shard_mean,
           o.T / shard_mean, o.repeats);
    const double bal = balance_us(&o, len, o.repeats);
    printf("balance  %8.2f us per batch (pl_balance_rows)\n", bal);
    printf("load     %8.1f us packed (its counting sort included), %8.1f us padded\n", lp, lq);
    printf("step     %8.2f ms packed, %8.2f ms padded (forward + backward): %.2fx\n", sp, sq,
           sq / sp);
    printf("balance and the whole packed load: %.3f%% of the packed shard's step\n",
           100 * (bal + lp) / (1e3 * sp));
    for (int k = 0; k < 2; k++) {
        free(load[k]);
        free(step[k]);
    }
    pl_ws_free(ws);
    pl_packed_free(pk);
    pl_free(params);
    pl_free(grad);
    free(x);
    free(len);
    free(labels);
    return 0;
}
