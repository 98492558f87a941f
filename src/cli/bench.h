/* parlstm bench: what bench.c (workers x threads scaling) and
 * bench_shapes.c (the grid over shapes and backends) share. */
#ifndef PARLSTM_BENCH_H
#define PARLSTM_BENCH_H

#include "cli.h"

#define BENCH_MAX_CONF 64
#define BENCH_MAX_ROUNDS 100 /* the --rounds range in the option table */
#define BENCH_MAX_LIST CLI_MAX_LIST

/* One workers x threads configuration of the scaling grid. */
typedef struct {
    int W, threads, batch, det; /* workers, OpenMP threads each */
    pl_trainer *tr;
    double sps[BENCH_MAX_ROUNDS];
    double med, lo, hi;
} conf;

/* What the command line asked for. */
typedef struct {
    conf confs[BENCH_MAX_CONF];
    int nconf;
    int steps, warmup, rounds, batch, hidden, scaling, profile, shards, pin, det, syn, layers;
    pl_precision precision; /* --precision: every configuration */
    int hiddens[BENCH_MAX_LIST], nhidden;   /* --hidden LIST */
    int batches[BENCH_MAX_LIST], nbatch;    /* --batch LIST */
    int seqT[BENCH_MAX_LIST], seqD[BENCH_MAX_LIST], nseq; /* --seq T,D/... (0: none) */
    pl_gemm_backend gemms[BENCH_MAX_LIST];  /* --gemm LIST */
    int ngemm;
    const char *data, *csv, *png;
    pl_gemm_backend gemm;                   /* the first of gemms */
    int cpus;
} bench_args;

/* The data measured on, and what the stages share. */
typedef struct {
    pl_dataset ds;
    char source[4200]; /* the data, in words */
    uint32_t *order;
    pl_config cfg;
    FILE *csvf;
    long cursor;       /* steps taken, across configurations */
} bench_env;

/* Median of v[0..n) (n <= BENCH_MAX_ROUNDS); *lo, *hi (when not NULL)
 * the smallest and largest. */
double bench_median(const double *v, int n, double *lo, double *hi);
/* n random images of T x D with labels 0..9 (a fixed seed). 0 or -1. */
int bench_random_images(pl_dataset *ds, size_t n, int T, int D);
/* warmup + steps training steps of tr on batches of ds in order, from
 * step *cursor on; samples per second of the timed steps. */
double bench_run_steps(pl_trainer *tr, const pl_dataset *ds, const uint32_t *order, int batch,
                       int warmup, int steps, long *cursor);
/* The GEMM's rate in L1 over the FMA loop's on this thread's core, with
 * set be or, for sets whose GEMM is not ours, auto's: a busy neighbour on
 * the core lowers it (pl_l1_ceiling); 0 where no set of ours runs. */
double bench_probe(pl_gemm_backend be);
/* The end of a round's line on stderr: " samples/s", then the probe
 * before and after the round where it ran, and a newline. */
void bench_probe_end(double before, double after);
/* The phases of `steps` steps of tr (made with opts.profile) on batches
 * of e's data: milliseconds a step into ph[PL_NPHASE]. */
void bench_profile_steps(pl_trainer *tr, bench_env *e, int batch, int steps, double *ph);
/* The phases of n runs side by side, a column each headed by names[i],
 * and their totals. */
void bench_print_phases(const char *const *names, double (*ph)[PL_NPHASE], int n);
/* The grid over --seq, --hidden, --batch and --gemm (bench_shapes.c). */
int bench_shapes(bench_args *b);

#endif
