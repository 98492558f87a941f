/* parlstm bench: training speed over a grid of workers x threads, measured
 * side by side (every configuration once per round, rounds repeated, medians
 * reported) together with this machine's own FMA peak, measured in the same
 * rounds so that the efficiency ratio holds on a noisy machine. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"

#define MAX_CONF 64
#define MAX_ROUNDS 100

static void bench_usage(FILE *f)
{
    fprintf(f,
        "Usage: parlstm bench [OPTIONS]\n"
        "Measures training steps per second for each workers x threads configuration,\n"
        "alternating the configurations round after round (A B C A B C ...) and\n"
        "reporting medians, with the CPU's FMA peak measured in the same rounds.\n"
        "\n"
        "  --grid LIST         configurations WxT, comma-separated (default: every\n"
        "                      W x T with T in 1,2,4 and W x T = 1, 2, 4, ... up to\n"
        "                      the CPUs this process may use)\n"
        "  --steps N           timed steps per configuration per round (40)\n"
        "  --warmup N          untimed steps before each measurement (3)\n"
        "  --rounds R          rounds (3)\n"
        "  --batch N           batch for strong scaling; weak scaling uses N x W x T (100)\n"
        "  --hidden N          LSTM units (128)\n"
        "  --scaling S         strong, weak or both (strong)\n"
        "  --data DIR          MNIST training images (random 28x28 images when absent,\n"
        "                      or with --synthetic)\n"
        CLI_DATA_RULE
        "  --synthetic         random images instead of MNIST (same shapes)\n"
        "  --profile           also split a step's time into phases, per configuration\n"
        "  --shards            also measure one worker at the shard sizes that strong\n"
        "                      scaling gives each worker (batch / P), for projections\n"
        "  --csv FILE          write the table as CSV\n"
        "  --plot FILE.png     draw speed-up against threads (needs gnuplot)\n"
        "  --deterministic     also run every configuration with --deterministic, in\n"
        "                      the same rounds (rows marked 'det'): its cost, measured\n"
        "  --gemm B, --pin     as for train\n"
        "  -h, --help          this help\n"
        "\n"
        "Columns: samples/s (median, and the range over rounds); model GFLOP/s counts\n"
        "the matrix products of the standard unfolded computation (%.2f GFLOP per step\n"
        "at batch 100); exec GFLOP/s counts what parlstm executes (it folds the input\n"
        "projection into the gate weights: %.2f GFLOP); speed-up over 1x1; parallel\n"
        "efficiency = speed-up / (W x T); %%peak = exec GFLOP/s over the FMA peak of W x T\n"
        "threads measured in the same rounds.\n",
        pl_step_flops_model(&(pl_config){28, 128, 10, 1}, 28, 100) / 1e9,
        pl_step_flops_executed(&(pl_config){28, 128, 10, 1}, 28, 100) / 1e9);
}

typedef struct {
    int W, T, batch, det;
    pl_trainer *tr;
    double sps[MAX_ROUNDS];
    double med, lo, hi;
} conf;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    double tmp[MAX_ROUNDS];
    memcpy(tmp, v, sizeof(double) * (size_t)n);
    qsort(tmp, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? tmp[n / 2] : 0.5 * (tmp[n / 2 - 1] + tmp[n / 2]);
}

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
        out[n].T = t;
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
        for (int T = 1; T <= 4 && T <= P && n < MAX_CONF; T *= 2)
            if (P % T == 0) {
                out[n].W = P / T;
                out[n].T = T;
                n++;
            }
    return n;
}

/* Random 28x28 images with labels, for when MNIST is absent. */
static int synthetic(pl_dataset *ds, size_t n)
{
    uint8_t *img = malloc(n * 28 * 28), *lab = malloc(n);
    if (!img || !lab) {
        free(img);
        free(lab);
        return -1;
    }
    pl_rng r;
    pl_rng_seed(&r, 12345);
    for (size_t i = 0; i < n * 28 * 28; i++)
        img[i] = (uint8_t)pl_rng_below(&r, 256);
    for (size_t i = 0; i < n; i++)
        lab[i] = (uint8_t)pl_rng_below(&r, 10);
    memset(ds, 0, sizeof *ds);
    ds->images = img;
    ds->labels = lab;
    ds->owned_images = img;
    ds->owned_labels = lab;
    ds->n = n;
    ds->T = 28;
    ds->D = 28;
    ds->classes = 10;
    return 0;
}

/* Runs steps on tr; returns samples per second. */
static double run_steps(pl_trainer *tr, const pl_dataset *ds, const uint32_t *order, int batch,
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

static void plot(const char *png, const conf *c, int n, const char *title)
{
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        fprintf(stderr, "parlstm bench: --plot: gnuplot not found (Debian package gnuplot-nox); "
                "no plot written\n");
        return;
    }
    char dat[] = "/tmp/parlstm-plot-XXXXXX";
    int fd = mkstemp(dat);
    if (fd < 0)
        return;
    FILE *f = fdopen(fd, "w");
    int maxp = 1;
    for (int T = 1; T <= 1024; T *= 2) {
        int any = 0;
        for (int i = 0; i < n; i++)
            if (c[i].T == T && !c[i].det) {
                fprintf(f, "%d %g\n", c[i].W * c[i].T, c[i].med / c[0].med);
                maxp = c[i].W * c[i].T > maxp ? c[i].W * c[i].T : maxp;
                any = 1;
            }
        if (any)
            fprintf(f, "\n\n");
        else if (T > 4)
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
    for (int T = 1; T <= 4; T *= 2) {
        int any = 0;
        for (int i = 0; i < n; i++)
            any |= c[i].T == T && !c[i].det;
        if (any)
            fprintf(g, ", '%s' index %d title 'W workers x %d thread%s' with linespoints lw 2 pt 7",
                    dat, idx++, T, T > 1 ? "s" : "");
    }
    fprintf(g, "\n");
    int rc = pclose(g);
    unlink(dat);
    if (rc == 0)
        fprintf(stderr, "parlstm bench: plot written to %s\n", png);
    else
        fprintf(stderr, "parlstm bench: gnuplot failed; no plot\n");
}

int cmd_bench(int argc, char **argv)
{
    enum { O_GRID = 256, O_STEPS, O_WARM, O_ROUNDS, O_BATCH, O_HIDDEN, O_SCALING, O_DATA,
           O_SYN, O_PROFILE, O_SHARDS, O_CSV, O_PLOT, O_GEMM, O_PIN, O_DET };
    static const struct option longopts[] = {
        {"grid", required_argument, 0, O_GRID},   {"steps", required_argument, 0, O_STEPS},
        {"warmup", required_argument, 0, O_WARM}, {"rounds", required_argument, 0, O_ROUNDS},
        {"batch", required_argument, 0, O_BATCH}, {"hidden", required_argument, 0, O_HIDDEN},
        {"scaling", required_argument, 0, O_SCALING}, {"data", required_argument, 0, O_DATA},
        {"synthetic", no_argument, 0, O_SYN},     {"profile", no_argument, 0, O_PROFILE},
        {"shards", no_argument, 0, O_SHARDS},     {"csv", required_argument, 0, O_CSV},
        {"plot", required_argument, 0, O_PLOT},   {"gemm", required_argument, 0, O_GEMM},
        {"pin", no_argument, 0, O_PIN},           {"help", no_argument, 0, 'h'},
        {"deterministic", no_argument, 0, O_DET},
        {0, 0, 0, 0}};
    static const char *const scalings[] = {"strong", "weak", "both", NULL};
    const char *cmd = "bench", *data = cli_default_data(), *csv = NULL, *png = NULL;
    conf confs[MAX_CONF];
    int nconf = 0, syn = 0, profile = 0, shards = 0, scaling = 0, pin = 0, det = 0, k;
    long long steps = 40, warmup = 3, rounds = 3, batch = 100, hidden = 128;
    pl_gemm_backend gemm = PL_GEMM_AUTO;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_GRID:
            if ((nconf = parse_grid(optarg, confs, MAX_CONF)) < 0) return EXIT_USAGE;
            break;
        case O_STEPS: if (opt_long(cmd, "--steps", optarg, 1, 1000000, &steps)) return EXIT_USAGE; break;
        case O_WARM: if (opt_long(cmd, "--warmup", optarg, 0, 1000000, &warmup)) return EXIT_USAGE; break;
        case O_ROUNDS: if (opt_long(cmd, "--rounds", optarg, 1, MAX_ROUNDS, &rounds)) return EXIT_USAGE; break;
        case O_BATCH: if (opt_long(cmd, "--batch", optarg, 1, 65536, &batch)) return EXIT_USAGE; break;
        case O_HIDDEN: if (opt_long(cmd, "--hidden", optarg, 1, 8192, &hidden)) return EXIT_USAGE; break;
        case O_SCALING:
            if ((k = opt_word(cmd, "--scaling", optarg, scalings)) < 0) return EXIT_USAGE;
            scaling = k;
            break;
        case O_DATA: data = optarg; break;
        case O_SYN: syn = 1; break;
        case O_PROFILE: profile = 1; break;
        case O_SHARDS: shards = 1; break;
        case O_CSV: csv = optarg; break;
        case O_PLOT: png = optarg; break;
        case O_GEMM: if (opt_gemm(cmd, optarg, &gemm)) return EXIT_USAGE; break;
        case O_PIN: pin = 1; break;
        case O_DET: det = 1; break;
        case 'h': bench_usage(stdout); return 0;
        default:
            fprintf(stderr, "parlstm bench: %s option '%s' (see parlstm bench --help)\n",
                    optopt ? "missing value for" : "unknown", argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "parlstm bench: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    int cpus = pl_cpu_count();
    if (nconf == 0)
        nconf = default_grid(confs, cpus);
    for (int i = 0; i < nconf; i++)
        confs[i].det = 0;
    if (det) {
        if (2 * nconf > MAX_CONF) {
            fprintf(stderr, "parlstm bench: --deterministic doubles the grid: at most %d configurations\n",
                    MAX_CONF / 2);
            return EXIT_USAGE;
        }
        for (int i = 0; i < nconf; i++) {
            confs[nconf + i] = confs[i];
            confs[nconf + i].det = 1;
        }
        nconf *= 2;
    }
    if (pl_gemm_resolve(gemm) == PL_GEMM_BLAS)
        cli_fix_openblas();

    pl_dataset ds;
    pl_error err = {0};
    const char *source = "MNIST";
    if (syn || pl_dataset_load(&ds, data, "train", 10, &err) != PL_OK) {
        if (!syn)
            fprintf(stderr, "parlstm bench: %s; using random 28x28 images\n", err.msg);
        if (synthetic(&ds, 60000)) {
            fprintf(stderr, "parlstm bench: out of memory\n");
            return 1;
        }
        source = "random images";
    }
    uint32_t *order = malloc(sizeof *order * ds.n);
    if (!order) {
        pl_dataset_free(&ds);
        return 1;
    }
    pl_epoch_order(1, 0, order, ds.n);
    pl_config cfg = {ds.D, (int)hidden, 10, 1};

    fprintf(stderr, "parlstm bench: %s, model %d-%d-%d, %d CPUs, GEMM %s, %lld rounds x %lld steps "
            "(+%lld warm-up)\n", source, cfg.input, cfg.hidden, cfg.classes, cpus,
            pl_gemm_name(pl_gemm_resolve(gemm)), rounds, steps, warmup);
    FILE *csvf = NULL;
    if (csv && !(csvf = fopen(csv, "w"))) {
        fprintf(stderr, "parlstm bench: cannot write %s\n", csv);
        return 1;
    }
    if (csvf)
        fprintf(csvf, "scaling,workers,threads,deterministic,batch,samples_per_sec,min,max,model_gflops,"
                "exec_gflops,speedup,parallel_efficiency,peak_gflops,peak_fraction\n");

    for (int mode = 0; mode < 2; mode++) {
        if ((scaling == 0 && mode == 1) || (scaling == 1 && mode == 0))
            continue;
        const char *mname = mode == 0 ? "strong" : "weak";
        int ok = 1;
        for (int i = 0; i < nconf; i++) {
            pl_train_opts o;
            pl_train_opts_default(&o);
            confs[i].batch = (int)(mode == 0 ? batch : batch * confs[i].W * confs[i].T);
            o.batch = confs[i].batch;
            o.hidden = (int)hidden;
            o.workers = confs[i].W;
            o.threads = confs[i].T;
            o.gemm = gemm;
            o.pin = pin;
            o.profile = profile;
            o.deterministic = confs[i].det;
            if ((size_t)o.batch > ds.n || o.workers > o.batch) {
                fprintf(stderr, "parlstm bench: %dx%d: batch %d does not fit\n", confs[i].W,
                        confs[i].T, o.batch);
                ok = 0;
                break;
            }
            if (!(confs[i].tr = pl_trainer_create(&cfg, ds.T, &o, &err))) {
                print_error(cmd, &err);
                ok = 0;
                break;
            }
        }
        if (!ok)
            return 1;
        /* distinct thread totals for the peak */
        int ptot[MAX_CONF], np = 0;
        double peak[MAX_CONF][MAX_ROUNDS];
        for (int i = 0; i < nconf; i++) {
            int P = confs[i].W * confs[i].T, seen = 0;
            for (int j = 0; j < np; j++)
                seen |= ptot[j] == P;
            if (!seen)
                ptot[np++] = P;
        }
        long cursor = 0;
        for (int r = 0; r < rounds; r++) {
            for (int j = 0; j < np; j++)
                peak[j][r] = pl_fma_peak_gflops(ptot[j], 0.15);
            for (int i = 0; i < nconf; i++) {
                pl_epoch_order(1 + r, i, order, ds.n);
                confs[i].sps[r] = run_steps(confs[i].tr, &ds, order, confs[i].batch,
                                            (int)warmup, (int)steps, &cursor);
            }
            fprintf(stderr, "round %d/%lld:", r + 1, rounds);
            for (int i = 0; i < nconf; i++)
                fprintf(stderr, " %dx%d%s %.0f", confs[i].W, confs[i].T,
                        confs[i].det ? "det" : "", confs[i].sps[r]);
            fprintf(stderr, " samples/s\n");
        }
        printf("\n%s scaling (%s): batch %s, median of %lld rounds of %lld steps\n", mname,
               source, mode == 0 ? "fixed" : "grows with W x T", rounds, steps);
        printf("%-8s %4s %10s %19s %9s %9s %8s %7s %9s %6s\n", "config", "batch", "samples/s",
               "range", "model GF/s", "exec GF/s", "speed-up", "par.eff", "peak GF/s", "%peak");
        for (int i = 0; i < nconf; i++) {
            conf *q = &confs[i];
            q->med = median(q->sps, (int)rounds);
            q->lo = q->hi = q->sps[0];
            for (int r = 1; r < rounds; r++) {
                q->lo = fmin(q->lo, q->sps[r]);
                q->hi = fmax(q->hi, q->sps[r]);
            }
            int P = q->W * q->T;
            double pk = 0;
            for (int j = 0; j < np; j++)
                if (ptot[j] == P)
                    pk = median(peak[j], (int)rounds);
            double per_step = q->med / q->batch;
            double mg = per_step * pl_step_flops_model(&cfg, ds.T, q->batch) / 1e9;
            double eg = per_step * pl_step_flops_executed(&cfg, ds.T, q->batch) / 1e9;
            double su = q->med / confs[0].med;
            char cname[32], range[40];
            snprintf(cname, sizeof cname, "%dx%d%s", q->W, q->T, q->det ? " det" : "");
            snprintf(range, sizeof range, "%.0f-%.0f", q->lo, q->hi);
            printf("%-8s %4d %10.0f %19s %9.1f %9.1f %8.2f %7.2f %9.1f %5.1f%%\n", cname, q->batch,
                   q->med, range, mg, eg, su, su / P, pk, 100 * eg / pk);
            if (csvf)
                fprintf(csvf, "%s,%d,%d,%d,%d,%.1f,%.1f,%.1f,%.2f,%.2f,%.3f,%.3f,%.1f,%.4f\n",
                        mname, q->W, q->T, q->det, q->batch, q->med, q->lo, q->hi, mg, eg, su, su / P, pk,
                        eg / pk);
        }
        if (confs[0].W * confs[0].T != 1)
            printf("(speed-up is over the first configuration, %dx%d)\n", confs[0].W, confs[0].T);
        fflush(stdout);
        if (png && mode == (scaling == 1 ? 1 : 0)) {
            char title[128];
            snprintf(title, sizeof title, "parlstm %s scaling, batch %lld, %d CPUs", mname, batch,
                     cpus);
            plot(png, confs, nconf, title);
        }
        if (profile) {
            printf("\nprofile (%s scaling): milliseconds per step, mean over workers\n", mname);
            printf("%-22s", "phase");
            for (int i = 0; i < nconf; i++) {
                char cname[32];
                snprintf(cname, sizeof cname, "%dx%d%s", confs[i].W, confs[i].T,
                         confs[i].det ? "d" : "");
                printf(" %8s", cname);
            }
            printf("\n");
            double ph[MAX_CONF][PL_NPHASE], tot[MAX_CONF] = {0};
            for (int i = 0; i < nconf; i++) {
                pl_trainer_profile_reset(confs[i].tr);
                run_steps(confs[i].tr, &ds, order, confs[i].batch, 0, (int)steps, &cursor);
                long ns;
                pl_trainer_profile(confs[i].tr, ph[i], &ns);
                for (int p = 0; p < PL_NPHASE; p++) {
                    ph[i][p] *= 1e3 / (double)ns;
                    tot[i] += ph[i][p];
                }
            }
            for (int p = 0; p < PL_NPHASE; p++) {
                printf("%-22s", pl_phase_name((pl_phase)p));
                for (int i = 0; i < nconf; i++)
                    printf(" %8.3f", ph[i][p]);
                printf("\n");
            }
            printf("%-22s", "total");
            for (int i = 0; i < nconf; i++)
                printf(" %8.3f", tot[i]);
            printf("\n");
        }
        for (int i = 0; i < nconf; i++) {
            pl_trainer_free(confs[i].tr);
            confs[i].tr = NULL;
        }
    }

    if (shards) {
        /* One worker at the shard size each of P workers gets in strong
         * scaling: the GEMM efficiency left when the batch is spread thin. */
        int sizes[16], ns = 0;
        for (int P = 1; P <= 64 && ns < 16; P *= 2)
            sizes[ns++] = (int)((batch + P - 1) / P);
        pl_trainer *tr[16];
        double sps[16][MAX_ROUNDS];
        for (int i = 0; i < ns; i++) {
            pl_train_opts o;
            pl_train_opts_default(&o);
            o.batch = sizes[i];
            o.hidden = (int)hidden;
            o.workers = o.threads = 1;
            o.gemm = gemm;
            if (!(tr[i] = pl_trainer_create(&cfg, ds.T, &o, &err))) {
                print_error(cmd, &err);
                return 1;
            }
        }
        double pk1[MAX_ROUNDS];
        long cursor = 0;
        for (int r = 0; r < rounds; r++) {
            pk1[r] = pl_fma_peak_gflops(1, 0.15);
            for (int i = 0; i < ns; i++)
                sps[i][r] = run_steps(tr[i], &ds, order, sizes[i], (int)warmup, (int)steps, &cursor);
        }
        double pk = median(pk1, (int)rounds);
        printf("\nshard sizes (one worker, one thread): the work each of P workers does\n");
        printf("%4s %6s %10s %12s %9s %6s\n", "P", "shard", "samples/s", "ms per step", "exec GF/s",
               "%peak");
        for (int i = 0; i < ns; i++) {
            double m = median(sps[i], (int)rounds);
            double eg = m / sizes[i] * pl_step_flops_executed(&cfg, ds.T, sizes[i]) / 1e9;
            printf("%4d %6d %10.0f %12.3f %9.1f %5.1f%%\n", 1 << i, sizes[i], m,
                   1e3 * sizes[i] / m, eg, 100 * eg / pk);
            pl_trainer_free(tr[i]);
        }
        printf("(FMA peak of one thread, measured in the same rounds: %.1f GFLOP/s)\n", pk);
    }

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("\npeak RSS of this process: %.1f MiB\n", ru.ru_maxrss / 1024.0);
    if (csvf) {
        fclose(csvf);
        fprintf(stderr, "parlstm bench: table written to %s\n", csv);
    }
    free(order);
    pl_dataset_free(&ds);
    return 0;
}
