/* parlstm bench: training speed over a grid of workers x threads, measured
 * side by side (every configuration once per round, rounds repeated, medians
 * reported) together with this machine's own FMA peak, measured in the same
 * rounds so that the efficiency ratio holds on a noisy machine. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"

#define MAX_CONF BENCH_MAX_CONF
#define MAX_ROUNDS BENCH_MAX_ROUNDS

static const char *const CMD = "bench";

static double median(const double *v, int n) { return bench_median(v, n, NULL, NULL); }

static int parse_grid(const char *s, conf *out, int max)
{
    int n = 0;
    const char *p = s;
    while (*p) {
        int w, t, used = 0;
        if (sscanf(p, "%dx%d%n", &w, &t, &used) != 2 || w < 1 || t < 1 || w > 1024 || t > 1024 ||
            n >= max) {
            fprintf(stderr, "parlstm bench: --grid: expected a list like 1x1,2x1,1x2 "
                    "(workers x threads, each 1..1024, at most %d), got '%s'\n", max, s);
            return -1;
        }
        out[n].W = w;
        out[n].threads = t;
        n++;
        p += used;
        if (*p == ',')
            p++;
        else if (*p) {
            fprintf(stderr, "parlstm bench: --grid: unexpected '%s' in '%s'\n", p, s);
            return -1;
        }
    }
    if (n == 0) {
        fprintf(stderr, "parlstm bench: --grid: empty list\n");
        return -1;
    }
    return n;
}

static int default_grid(conf *out, int cpus)
{
    int n = 0;
    for (int P = 1; P <= cpus && n < MAX_CONF; P = P * 2 > cpus && P < cpus ? cpus : P * 2)
        for (int th = 1; th <= 4 && th <= P && n < MAX_CONF; th *= 2)
            if (P % th == 0) {
                out[n].W = P / th;
                out[n].threads = th;
                n++;
            }
    return n;
}

static void plot(const char *png, const conf *c, int n, const char *title)
{
    if (!cli_have_gnuplot("bench", "plot"))
        return;
    char dat[] = "/tmp/parlstm-plot-XXXXXX";
    int fd = mkstemp(dat);
    if (fd < 0)
        return;
    FILE *f = fdopen(fd, "w");
    int maxp = 1;
    for (int th = 1; th <= 1024; th *= 2) {
        int any = 0;
        for (int i = 0; i < n; i++)
            if (c[i].threads == th && !c[i].det) {
                fprintf(f, "%d %g\n", c[i].W * c[i].threads, c[i].med / c[0].med);
                maxp = c[i].W * c[i].threads > maxp ? c[i].W * c[i].threads : maxp;
                any = 1;
            }
        if (any)
            fprintf(f, "\n\n");
        else if (th > 4)
            break;
    }
    fclose(f);
    FILE *g = popen("gnuplot", "w");
    if (!g) {
        unlink(dat);
        return;
    }
    fprintf(g, "set terminal pngcairo size 800,560 noenhanced\n"
               "set output '%s'\n"
               "set title '%s'\n"
               "set xlabel 'threads in all (workers x OpenMP threads)'\n"
               "set ylabel 'speed-up over 1x1 (samples/s)'\n"
               "set key left top\nset grid\n"
               "set xrange [0.8:%d]\nset yrange [0:%d]\n"
               "plot x title 'ideal' with lines dashtype 2 lc rgb 'gray'",
            png, title, maxp + 1, maxp + 1);
    int idx = 0;
    for (int th = 1; th <= 4; th *= 2) {
        int any = 0;
        for (int i = 0; i < n; i++)
            any |= c[i].threads == th && !c[i].det;
        if (any)
            fprintf(g, ", '%s' index %d title 'W workers x %d thread%s' with linespoints lw 2 pt 7",
                    dat, idx++, th, th > 1 ? "s" : "");
    }
    fprintf(g, "\n");
    int rc = pclose(g);
    unlink(dat);
    if (rc == 0)
        fprintf(stderr, "parlstm bench: plot written to %s\n", png);
    else
        fprintf(stderr, "parlstm bench: gnuplot failed; no plot\n");
}

/* One scaling mode's measurements: the FMA peak of each distinct thread
 * total, per round. */
typedef struct {
    int ptot[MAX_CONF], np;
    double peak[MAX_CONF][MAX_ROUNDS];
} peaks;

/* --seq T,D/T,D...: the sequence shapes of the grid. */
static int parse_seq(const char *s, bench_args *b)
{
    const char *p = s;
    b->nseq = 0;
    do {
        int t, d, used = 0;
        if (b->nseq == BENCH_MAX_LIST || sscanf(p, "%d,%d%n", &t, &d, &used) != 2 || t < 1 ||
            t > 65535 || d < 1 || d > 65535 || (p[used] && p[used] != '/')) {
            fprintf(stderr, "parlstm bench: --seq: expected T,D (time steps, input width, each "
                    "1 to 65535), or a list like 28,28/784,1 of at most %d; got '%s'\n",
                    BENCH_MAX_LIST, s);
            return -1;
        }
        b->seqT[b->nseq] = t;
        b->seqD[b->nseq++] = d;
        p += used;
    } while (*p++ == '/');
    return 0;
}

static int bench_parse(int argc, char **argv, bench_args *b)
{
    cli_value v[O_COUNT];
    int rc = cli_parse(CMD_BENCH, argc, argv, v);
    if (rc)
        return rc;
    memset(b, 0, sizeof *b);
    b->steps = (int)v[O_BENCH_STEPS].i;
    b->warmup = (int)v[O_WARMUP].i;
    b->rounds = (int)v[O_ROUNDS].i;
    b->batch = (int)v[O_BENCH_BATCH].i;
    b->hidden = (int)v[O_BENCH_HIDDEN].i;
    b->nbatch = v[O_BENCH_BATCH].n;
    b->nhidden = v[O_BENCH_HIDDEN].n;
    for (int k = 0; k < b->nbatch; k++)
        b->batches[k] = (int)v[O_BENCH_BATCH].list[k];
    for (int k = 0; k < b->nhidden; k++)
        b->hiddens[k] = (int)v[O_BENCH_HIDDEN].list[k];
    b->ngemm = v[O_BENCH_GEMM].n;
    for (int k = 0; k < b->ngemm; k++)
        b->gemms[k] = (pl_gemm_backend)v[O_BENCH_GEMM].list[k];
    b->layers = (int)v[O_LAYERS].i;
    if (v[O_BENCH_SEQ].text && parse_seq(v[O_BENCH_SEQ].text, b))
        return EXIT_USAGE;
    b->scaling = (int)v[O_SCALING].i;
    b->syn = (int)v[O_SYNTHETIC].i;
    b->profile = (int)v[O_PROFILE].i;
    b->shards = (int)v[O_SHARDS].i;
    b->pin = (int)v[O_PIN].i;
    b->det = (int)v[O_BENCH_DET].i;
    b->precision = (pl_precision)v[O_PRECISION].i;
    b->gemm = b->gemms[0];
    b->data = v[O_DATA].text;
    b->csv = v[O_CSV].text;
    b->png = v[O_PLOT].text;
    b->cpus = pl_cpu_count();
    /* under mpirun every rank runs every configuration in step with the
     * others (each batch split across them); rank 0 prints and writes files */
    if (b->shards && pl_dist_ranks() > 1) {
        fprintf(stderr, "parlstm bench: --shards measures one process: run it without mpirun\n");
        return EXIT_USAGE;
    }
    if (cli_same_file(b->csv, b->png)) {
        fprintf(stderr, "parlstm bench: --csv %s and --plot %s are the same file (give each a "
                "file of its own)\n", b->csv, b->png);
        return EXIT_USAGE;
    }
    if (v[O_GRID].text) {
        if ((b->nconf = parse_grid(v[O_GRID].text, b->confs, MAX_CONF)) < 0)
            return EXIT_USAGE;
    } else {
        b->nconf = default_grid(b->confs, b->cpus);
    }
    if (b->det) {
        if (2 * b->nconf > MAX_CONF) {
            fprintf(stderr, "parlstm bench: --deterministic doubles the grid: at most %d "
                    "configurations\n", MAX_CONF / 2);
            return EXIT_USAGE;
        }
        for (int i = 0; i < b->nconf; i++) {
            b->confs[b->nconf + i] = b->confs[i];
            b->confs[b->nconf + i].det = 1;
        }
        b->nconf *= 2;
    }
    return 0;
}

/* The training images of --data, or random ones (--synthetic, or when the
 * directory's cannot be read); the order of the first epoch. */
static int bench_data(const bench_args *b, bench_env *e)
{
    pl_error err = {0};
    if (!b->syn && pl_dataset_load(&e->ds, b->data, "train", 0, &err) == PL_OK) {
        snprintf(e->source, sizeof e->source, "%zu images of %dx%d from %s", e->ds.n, e->ds.T,
                 e->ds.D, b->data);
    } else {
        if (!b->syn)
            fprintf(stderr, "parlstm bench: %s; using random 28x28 images\n", err.msg);
        if (bench_random_images(&e->ds, 60000, 28, 28)) {
            fprintf(stderr, "parlstm bench: out of memory\n");
            return 1;
        }
        snprintf(e->source, sizeof e->source, "%zu random images of 28x28", e->ds.n);
    }
    if (!(e->order = malloc(sizeof *e->order * e->ds.n))) {
        fprintf(stderr, "parlstm bench: out of memory\n");
        return 1;
    }
    pl_epoch_order(1, 0, e->order, e->ds.n);
    e->cfg = (pl_config){e->ds.D, b->hidden, e->ds.classes, b->layers};
    return 0;
}

static int open_csv(const bench_args *b, bench_env *e)
{
    if (!b->csv || pl_dist_rank() != 0)
        return 0;
    if (!(e->csvf = fopen(b->csv, "w"))) {
        fprintf(stderr, "parlstm bench: cannot write %s\n", b->csv);
        return 1;
    }
    fprintf(e->csvf, "scaling,workers,threads,deterministic,batch,samples_per_sec,min,max,"
            "model_gflops,exec_gflops,speedup,parallel_efficiency,peak_gflops,peak_fraction\n");
    return 0;
}

/* A trainer for every configuration of this mode (0 strong, 1 weak). */
static int make_trainers(bench_args *b, const bench_env *e, int mode)
{
    pl_error err = {0};
    for (int i = 0; i < b->nconf; i++) {
        conf *q = &b->confs[i];
        pl_train_opts o;
        pl_train_opts_default(&o);
        q->batch = mode == 0 ? b->batch : b->batch * q->W * q->threads * pl_dist_ranks();
        o.batch = q->batch;
        o.hidden = b->hidden;
        o.workers = q->W;
        o.threads = q->threads;
        o.gemm = b->gemm;
        o.pin = b->pin;
        o.profile = b->profile;
        o.deterministic = q->det;
        o.precision = b->precision;
        if ((size_t)o.batch > e->ds.n) {
            fprintf(stderr, "parlstm bench: %dx%d: batch %d is more than the %zu images (%s)\n",
                    q->W, q->threads, o.batch, e->ds.n, e->source);
            return EXIT_USAGE;
        }
        if (o.workers > o.batch) {
            fprintf(stderr, "parlstm bench: %dx%d: batch %d leaves some of the %d workers "
                    "without an image\n", q->W, q->threads, o.batch, o.workers);
            return EXIT_USAGE;
        }
        if (!(q->tr = pl_trainer_create(&e->cfg, e->ds.T, &o, &err))) {
            print_error(CMD, &err);
            return 1;
        }
    }
    return 0;
}

static void free_trainers(bench_args *b)
{
    for (int i = 0; i < b->nconf; i++) {
        pl_trainer_free(b->confs[i].tr);
        b->confs[i].tr = NULL;
    }
}

/* The FMA peak of `threads` threads now: a round measures it before its
 * steps and again after them, and keeps the higher. */
static double peak_now(const bench_args *b, int threads)
{
    return pl_peak_gflops(b->gemm, b->precision, threads, 0.15);
}

/* Round after round: the FMA peak of each thread total, then every
 * configuration once, then the peaks again (a round keeps the higher: a
 * neighbour's burst during one measurement would otherwise lower the
 * peak and lift that round's %peak, at times over 100%), the neighbour
 * probe before and after. */
static void measure(bench_args *b, bench_env *e, peaks *pk)
{
    pk->np = 0;
    for (int i = 0; i < b->nconf; i++) {
        int P = b->confs[i].W * b->confs[i].threads, seen = 0;
        for (int j = 0; j < pk->np; j++)
            seen |= pk->ptot[j] == P;
        if (!seen)
            pk->ptot[pk->np++] = P;
    }
    for (int r = 0; r < b->rounds; r++) {
        const double before = bench_probe(b->gemm);
        for (int j = 0; j < pk->np; j++)
            pk->peak[j][r] = peak_now(b, pk->ptot[j]);
        for (int i = 0; i < b->nconf; i++) {
            pl_epoch_order(1 + r, i, e->order, e->ds.n);
            b->confs[i].sps[r] = bench_run_steps(b->confs[i].tr, &e->ds, e->order, b->confs[i].batch,
                                           b->warmup, b->steps, &e->cursor);
        }
        for (int j = 0; j < pk->np; j++)
            pk->peak[j][r] = fmax(pk->peak[j][r], peak_now(b, pk->ptot[j]));
        fprintf(stderr, "round %d/%d:", r + 1, b->rounds);
        for (int i = 0; i < b->nconf; i++)
            fprintf(stderr, " %dx%d%s %.0f", b->confs[i].W, b->confs[i].threads,
                    b->confs[i].det ? "det" : "", b->confs[i].sps[r]);
        bench_probe_end(before, bench_probe(b->gemm));
    }
}

/* One row of the table (and of the CSV). */
static void report_row(const bench_args *b, const bench_env *e, const peaks *pk, conf *q,
                       const char *mname)
{
    q->med = median(q->sps, b->rounds);
    q->lo = q->hi = q->sps[0];
    for (int r = 1; r < b->rounds; r++) {
        q->lo = fmin(q->lo, q->sps[r]);
        q->hi = fmax(q->hi, q->sps[r]);
    }
    int P = q->W * q->threads;
    double peak = 0;
    for (int j = 0; j < pk->np; j++)
        if (pk->ptot[j] == P)
            peak = median(pk->peak[j], b->rounds) * pl_dist_ranks(); /* every rank's, alike */
    P *= pl_dist_ranks();
    double per_step = q->med / q->batch;
    double mg = per_step * pl_step_flops_model(&e->cfg, e->ds.T, q->batch) / 1e9;
    double eg = per_step * pl_step_flops_executed(&e->cfg, e->ds.T, q->batch) / 1e9;
    double su = q->med / b->confs[0].med;
    char cname[32], range[40];
    snprintf(cname, sizeof cname, "%dx%d%s", q->W, q->threads, q->det ? " det" : "");
    snprintf(range, sizeof range, "%.0f-%.0f", q->lo, q->hi);
    printf("%-8s %4d %10.0f %19s %9.1f %9.1f %8.2f %7.2f %9.1f %5.1f%%\n", cname, q->batch,
           q->med, range, mg, eg, su, su / P, peak, 100 * eg / peak);
    if (e->csvf)
        fprintf(e->csvf, "%s,%d,%d,%d,%d,%.1f,%.1f,%.1f,%.2f,%.2f,%.3f,%.3f,%.1f,%.4f\n", mname,
                q->W, q->threads, q->det, q->batch, q->med, q->lo, q->hi, mg, eg, su, su / P, peak,
                eg / peak);
}

static void report_table(bench_args *b, const bench_env *e, const peaks *pk, int mode)
{
    const char *mname = mode == 0 ? "strong" : "weak";
    printf("\n%s scaling (%s): batch %s, median of %d rounds of %d steps\n", mname, e->source,
           mode == 0 ? "fixed" : "grows with workers x threads", b->rounds, b->steps);
    if (pl_dist_ranks() > 1)
        printf("ranks: %d (MPI), each running every configuration; samples/s count the "
               "whole job, speed-up, efficiency and peak its %d x workers x threads\n",
               pl_dist_ranks(), pl_dist_ranks());
    printf("%-8s %4s %10s %19s %9s %9s %8s %7s %9s %6s\n", "config", "batch", "samples/s",
           "range", "model GF/s", "exec GF/s", "speed-up", "par.eff", "peak GF/s", "%peak");
    /* the first row first: the others' speed-up is over its median */
    for (int i = 0; i < b->nconf; i++)
        report_row(b, e, pk, &b->confs[i], mname);
    if (b->confs[0].W * b->confs[0].threads != 1)
        printf("(speed-up is over the first configuration, %dx%d)\n", b->confs[0].W,
               b->confs[0].threads);
    fflush(stdout);
    if (b->png && pl_dist_rank() == 0 && mode == (b->scaling == 1 ? 1 : 0)) {
        char title[128];
        snprintf(title, sizeof title, "parlstm %s scaling, batch %d, %d CPUs", mname, b->batch,
                 b->cpus);
        plot(b->png, b->confs, b->nconf, title);
    }
}

/* Milliseconds per step in each phase, one more set of steps per
 * configuration with the profile reset. */
static void report_profile(bench_args *b, bench_env *e, int mode)
{
    printf("\nprofile (%s scaling): milliseconds per step, mean over workers%s\n",
           mode == 0 ? "strong" : "weak",
           pl_dist_ranks() > 1 ? " of rank 0; communication: exchanging gradient slices, the "
                                 "step's agreement and the all-gather, waits for the other "
                                 "ranks included" : "");
    char cnames[MAX_CONF][32];
    const char *names[MAX_CONF];
    double ph[MAX_CONF][PL_NPHASE];
    for (int i = 0; i < b->nconf; i++) {
        snprintf(cnames[i], sizeof cnames[i], "%dx%d%s", b->confs[i].W, b->confs[i].threads,
                 b->confs[i].det ? "d" : "");
        names[i] = cnames[i];
        bench_profile_steps(b->confs[i].tr, e, b->confs[i].batch, b->steps, ph[i]);
    }
    bench_print_phases(names, ph, b->nconf);
}

static int run_mode(bench_args *b, bench_env *e, int mode)
{
    peaks pk;
    int rc = make_trainers(b, e, mode);
    if (!rc) {
        measure(b, e, &pk);
        report_table(b, e, &pk, mode);
        if (b->profile)
            report_profile(b, e, mode);
    }
    free_trainers(b);
    return rc;
}

/* One worker at the shard size each of P workers gets in strong scaling:
 * the GEMM efficiency left when the batch is spread thin. */
static void measure_shards(const bench_args *b, bench_env *e, pl_trainer *const *tr,
                           const int *sizes, int ns)
{
    double sps[16][MAX_ROUNDS], pk1[MAX_ROUNDS];
    for (int r = 0; r < b->rounds; r++) {
        pk1[r] = peak_now(b, 1);
        for (int i = 0; i < ns; i++)
            sps[i][r] = bench_run_steps(tr[i], &e->ds, e->order, sizes[i], b->warmup, b->steps,
                                  &e->cursor);
        pk1[r] = fmax(pk1[r], peak_now(b, 1));
    }
    double pk = median(pk1, b->rounds);
    printf("\nshard sizes (one worker, one thread): the work each of P workers does\n");
    printf("%4s %6s %10s %12s %9s %6s\n", "P", "shard", "samples/s", "ms per step", "exec GF/s",
           "%peak");
    for (int i = 0; i < ns; i++) {
        double m = median(sps[i], b->rounds);
        double eg = m / sizes[i] * pl_step_flops_executed(&e->cfg, e->ds.T, sizes[i]) / 1e9;
        printf("%4d %6d %10.0f %12.3f %9.1f %5.1f%%\n", 1 << i, sizes[i], m, 1e3 * sizes[i] / m,
               eg, 100 * eg / pk);
    }
    printf("(%s peak of one thread, measured in the same rounds: %.1f GFLOP/s)\n",
           b->precision == PL_PRECISION_BF16 ? "the bf16 products'" : "FMA", pk);
}

static int run_shards(const bench_args *b, bench_env *e)
{
    int sizes[16], ns = 0, rc = 0;
    for (int P = 1; P <= 64 && ns < 16; P *= 2)
        sizes[ns++] = (b->batch + P - 1) / P;
    pl_trainer *tr[16] = {0};
    pl_error err = {0};
    for (int i = 0; i < ns && !rc; i++) {
        pl_train_opts o;
        pl_train_opts_default(&o);
        o.batch = sizes[i];
        o.hidden = b->hidden;
        o.workers = o.threads = 1;
        o.gemm = b->gemm;
        o.precision = b->precision;
        if (!(tr[i] = pl_trainer_create(&e->cfg, e->ds.T, &o, &err))) {
            print_error(CMD, &err);
            rc = 1;
        }
    }
    if (!rc)
        measure_shards(b, e, tr, sizes, ns);
    for (int i = 0; i < ns; i++)
        pl_trainer_free(tr[i]);
    return rc;
}

int cmd_bench(int argc, char **argv)
{
    bench_args b;
    bench_env e;
    memset(&e, 0, sizeof e);
    int rc = bench_parse(argc, argv, &b);
    if (rc)
        return rc < 0 ? 0 : rc;
    for (int k = 0; k < b.ngemm; k++)
        if (pl_gemm_resolve(b.gemms[k]) == PL_GEMM_BLAS)
            cli_fix_openblas();
    if (b.nseq > 0 || b.nhidden > 1 || b.nbatch > 1 || b.ngemm > 1) {
        if (b.nseq == 0) { /* the data's shape: MNIST by rows */
            b.seqT[0] = b.seqD[0] = 28;
            b.nseq = 1;
        }
        return bench_shapes(&b);
    }
    if (!(rc = bench_data(&b, &e))) {
        char ranks[48] = "";
        if (pl_dist_ranks() > 1)
            snprintf(ranks, sizeof ranks, " per rank, %d ranks (MPI)", pl_dist_ranks());
        fprintf(stderr, "parlstm bench: %s, model %d-%d-%d, %d CPUs%s, GEMM %s, %d rounds x %d "
                "steps (+%d warm-up)\n", e.source, e.cfg.input, e.cfg.hidden, e.cfg.classes,
                b.cpus, ranks, pl_gemm_name(pl_gemm_resolve(b.gemm)), b.rounds, b.steps,
                b.warmup);
        rc = open_csv(&b, &e);
    }
    /* scaling 0: strong, 1: weak, 2: both */
    for (int mode = 0; mode < 2 && !rc; mode++)
        if (b.scaling == 2 || b.scaling == mode)
            rc = run_mode(&b, &e, mode);
    if (!rc && b.shards)
        rc = run_shards(&b, &e);
    if (!rc) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("\npeak RSS of this process: %.1f MiB\n", ru.ru_maxrss / 1024.0);
    }
    if (e.csvf) {
        fclose(e.csvf);
        if (!rc)
            fprintf(stderr, "parlstm bench: table written to %s\n", b.csv);
    }
    free(e.order);
    pl_dataset_free(&e.ds);
    return rc;
}
