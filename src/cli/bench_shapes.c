/* parlstm bench over shapes: training speed and efficiency for every
 * combination of sequence shape (--seq T,D/...), hidden size (--hidden
 * LIST), batch (--batch LIST) and GEMM backend (--gemm LIST), each with the
 * workers x threads of --grid. The backends (and grid configurations) of a
 * shape are measured side by side, round after round, with the FMA peak
 * measured in the same rounds; shapes follow each other (their trainers do
 * not all fit in memory at once). Steps per measurement are fitted to about
 * half a second, so that large shapes take a step or two. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* The data of one sequence shape: MNIST seen as T x D when that is 784
 * pixels and the directory holds it, else random images of that shape. */
static int shape_data(const bench_args *b, int T, int D, pl_dataset *ds, char *what, size_t len)
{
    pl_error err = {0};
    if (!b->syn && T * D == 784 && pl_dataset_load(ds, b->data, "train", 0, &err) == PL_OK &&
        ds->T * ds->D == 784) {
        ds->T = T;
        ds->D = D;
        snprintf(what, len, "MNIST from %s", b->data);
        return 0;
    }
    if (bench_random_images(ds, 4096, T, D))
        return 1;
    snprintf(what, len, "random images");
    return 0;
}

/* Steps that take about `seconds` at the speed of one step of tr (the
 * warm-up), at least 1 and at most max. */
static int fit_steps(bench_env *e, pl_trainer *tr, int batch, int max, double seconds)
{
    double t0 = pl_seconds();
    bench_run_steps(tr, &e->ds, e->order, batch, 0, 1, &e->cursor);
    double per = pl_seconds() - t0;
    int n = (int)(seconds / (per > 1e-6 ? per : 1e-6) + 0.5);
    return n < 1 ? 1 : n > max ? max : n;
}

typedef struct {
    int T, D, H, batch, W, threads;
    pl_gemm_backend be;
    pl_trainer *tr;
    int steps;
    double sps[BENCH_MAX_ROUNDS];
    double med, lo, hi, peak, exec, model;
    double ph[PL_NPHASE]; /* with --profile: ms a step in each phase */
} shape_conf;

/* One shape (T, D, H, batch): every backend x grid configuration measured
 * side by side; fills n rows of out. */
static int measure_shape(bench_args *b, bench_env *e, int H, int batch, shape_conf *out,
                         int *n)
{
    pl_error err = {0};
    int k = 0, rc = 0;
    for (int g = 0; g < b->ngemm && !rc; g++)
        for (int c = 0; c < b->nconf && !rc; c++) {
            shape_conf *q = &out[k];
            memset(q, 0, sizeof *q);
            *q = (shape_conf){.T = e->ds.T, .D = e->ds.D, .H = H, .batch = batch,
                              .W = b->confs[c].W, .threads = b->confs[c].threads, .be = b->gemms[g]};
            pl_train_opts o;
            pl_train_opts_default(&o);
            o.batch = batch;
            o.hidden = H;
            o.workers = q->W;
            o.threads = q->threads;
            o.gemm = q->be;
            o.pin = b->pin;
            o.precision = b->precision;
            o.profile = b->profile;
            pl_config cfg = {e->ds.D, H, e->ds.classes, b->layers};
            if ((size_t)batch > e->ds.n || q->W > batch) {
                fprintf(stderr, "parlstm bench: batch %d does not fit %d workers and %zu images\n",
                        batch, q->W, e->ds.n);
                rc = EXIT_USAGE;
            } else if (!(q->tr = pl_trainer_create(&cfg, e->ds.T, &o, &err))) {
                print_error("bench", &err);
                rc = err.code == PL_ERR_TOO_LARGE ? EXIT_USAGE : 1;
            } else {
                q->steps = fit_steps(e, q->tr, batch, b->steps, 0.5);
                k++;
            }
        }
    *n = k;
    if (rc)
        return rc;
    double peak[64][BENCH_MAX_ROUNDS];
    for (int r = 0; r < b->rounds; r++) {
        const double before = bench_probe(b->gemm);
        for (int i = 0; i < k; i++) {
            peak[i][r] = pl_peak_gflops(out[i].be, b->precision, out[i].W * out[i].threads, 0.1);
            pl_epoch_order(1 + r, i, e->order, e->ds.n);
            out[i].sps[r] = bench_run_steps(out[i].tr, &e->ds, e->order, batch, 0, out[i].steps,
                                            &e->cursor);
            /* the higher of the peaks before and after (see bench.c, measure) */
            peak[i][r] = fmax(peak[i][r], pl_peak_gflops(out[i].be, b->precision,
                                                         out[i].W * out[i].threads, 0.1));
        }
        fprintf(stderr, "round %d/%d (hidden %d, batch %d):", r + 1, b->rounds, H, batch);
        for (int i = 0; i < k; i++)
            fprintf(stderr, " %s %dx%d %.1f", pl_gemm_name(pl_gemm_resolve(out[i].be)), out[i].W,
                    out[i].threads, out[i].sps[r]);
        bench_probe_end(before, bench_probe(b->gemm));
    }
    for (int i = 0; i < k; i++) {
        shape_conf *q = &out[i];
        pl_config cfg = {q->D, q->H, e->ds.classes, b->layers};
        q->med = bench_median(q->sps, b->rounds, &q->lo, &q->hi);
        q->peak = bench_median(peak[i], b->rounds, NULL, NULL);
        q->exec = q->med / batch * pl_step_flops_executed(&cfg, q->T, batch) / 1e9;
        q->model = q->med / batch * pl_step_flops_model(&cfg, q->T, batch) / 1e9;
        if (b->profile)
            bench_profile_steps(q->tr, e, batch, q->steps, q->ph);
        pl_trainer_free(q->tr);
        q->tr = NULL;
    }
    return 0;
}

static void print_row(const shape_conf *q, FILE *csv, int layers)
{
    char range[40], conf_name[16];
    snprintf(range, sizeof range, "%.0f-%.0f", q->lo, q->hi);
    snprintf(conf_name, sizeof conf_name, "%dx%d", q->W, q->threads);
    printf("%5d %4d %5d %5d %-7s %-6s %10.1f %17s %9.1f %9.1f %9.1f %5.1f%%\n", q->T, q->D, q->H,
           q->batch, pl_gemm_name(pl_gemm_resolve(q->be)), conf_name, q->med, range, q->model,
           q->exec, q->peak, 100 * q->exec / q->peak);
    fflush(stdout);
    if (csv)
        fprintf(csv, "%d,%d,%d,%d,%d,%s,%d,%d,%.2f,%.2f,%.2f,%.2f,%.2f,%.1f,%.4f\n", q->T, q->D,
                q->H, layers, q->batch, pl_gemm_name(pl_gemm_resolve(q->be)), q->W, q->threads,
                q->med, q->lo, q->hi, q->model, q->exec, q->peak, q->exec / q->peak);
}

/* The phases of one shape's rows (--profile), after them: a column per
 * backend and configuration. */
static void print_profile(shape_conf *rows, int n)
{
    char cnames[64][32];
    const char *names[64];
    double ph[64][PL_NPHASE];
    for (int i = 0; i < n && i < 64; i++) {
        snprintf(cnames[i], sizeof cnames[i], "%s %dx%d", pl_gemm_name(pl_gemm_resolve(rows[i].be)),
                 rows[i].W, rows[i].threads);
        names[i] = cnames[i];
        memcpy(ph[i], rows[i].ph, sizeof ph[i]);
    }
    printf("profile of T=%d, D=%d, hidden %d, batch %d: milliseconds per step, mean over "
           "workers\n",
           rows[0].T, rows[0].D, rows[0].H, rows[0].batch);
    bench_print_phases(names, ph, n < 64 ? n : 64);
    printf("\n");
    fflush(stdout);
}

/* % of peak against the shape, one line per backend and configuration. */
static void plot_shapes(const char *png, const shape_conf *rows, int n, int layers)
{
    char dat[] = "/tmp/parlstm-shapes-XXXXXX";
    int fd = mkstemp(dat);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
    if (!f) {
        fprintf(stderr, "parlstm bench: --plot: cannot write a temporary file\n");
        return;
    }
    /* one block per series (backend, configuration), x = shape index */
    int series = 0;
    char names[16][32];
    for (int i = 0; i < n && series < 16; i++) {
        char name[32];
        snprintf(name, sizeof name, "%s %dx%d", pl_gemm_name(pl_gemm_resolve(rows[i].be)),
                 rows[i].W, rows[i].threads);
        int seen = 0;
        for (int s = 0; s < series; s++)
            seen |= strcmp(names[s], name) == 0;
        if (seen)
            continue;
        snprintf(names[series++], sizeof names[0], "%s", name);
        int x = 0;
        for (int j = 0; j < n; j++) {
            char other[32];
            snprintf(other, sizeof other, "%s %dx%d", pl_gemm_name(pl_gemm_resolve(rows[j].be)),
                     rows[j].W, rows[j].threads);
            if (strcmp(other, name) == 0)
                fprintf(f, "%d \"T%d H%d B%d\" %.2f\n", x++, rows[j].T, rows[j].H, rows[j].batch,
                        100 * rows[j].exec / rows[j].peak);
        }
        fprintf(f, "\n\n");
    }
    fclose(f);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "set title 'parlstm: executed GFLOP/s over the FMA peak, per "
             "shape (%d layer%s)'", layers, layers == 1 ? "" : "s");
    FILE *g = popen("gnuplot", "w");
    if (!g) {
        unlink(dat);
        return;
    }
    fprintf(g, "set terminal pngcairo size 1000,600 noenhanced\nset output '%s'\n%s\n"
               "set ylabel '%% of the FMA peak'\nset yrange [0:100]\nset grid\n"
               "set key left bottom\nset xtics rotate by -45\n"
               "set arrow from graph 0, first 85 to graph 1, first 85 nohead dt 2 lc rgb 'gray'\n"
               "plot ", png, cmd);
    for (int s = 0; s < series; s++)
        fprintf(g, "%s'%s' index %d using 1:3:xtic(2) title '%s' with linespoints lw 2 pt 7",
                s ? ", " : "", dat, s, names[s]);
    fprintf(g, "\n");
    int rc = pclose(g);
    unlink(dat);
    fprintf(stderr, rc == 0 ? "parlstm bench: plot written to %s\n"
                            : "parlstm bench: gnuplot failed; no plot %s\n", png);
}

int bench_shapes(bench_args *b)
{
    static shape_conf rows[4096];
    int nrows = 0, rc = 0;
    FILE *csv = NULL;
    if (b->csv && pl_dist_rank() == 0) { /* under mpirun: rank 0's */
        if (!(csv = fopen(b->csv, "w"))) {
            fprintf(stderr, "parlstm bench: cannot write %s\n", b->csv);
            return 1;
        }
        fprintf(csv, "T,D,hidden,layers,batch,gemm,workers,threads,samples_per_sec,min,max,"
                "model_gflops,exec_gflops,peak_gflops,peak_fraction\n");
    }
    printf("shapes: %d layer%s, median of %d rounds (steps fitted to about 0.5 s each); "
           "%%peak = executed GFLOP/s over the FMA peak of all the configuration's threads in the same rounds\n",
           b->layers, b->layers == 1 ? "" : "s", b->rounds);
    printf("%5s %4s %5s %5s %-7s %-6s %10s %17s %9s %9s %9s %6s\n", "T", "D", "H", "batch",
           "gemm", "config", "samples/s", "range", "model GF/s", "exec GF/s", "peak GF/s", "%peak");
    for (int s = 0; s < b->nseq && !rc; s++) {
        bench_env e;
        memset(&e, 0, sizeof e);
        char what[4200];
        if (shape_data(b, b->seqT[s], b->seqD[s], &e.ds, what, sizeof what) ||
            !(e.order = malloc(sizeof *e.order * e.ds.n))) {
            fprintf(stderr, "parlstm bench: out of memory\n");
            rc = 1;
        }
        if (!rc) {
            pl_epoch_order(1, 0, e.order, e.ds.n);
            fprintf(stderr, "parlstm bench: T=%d, D=%d: %s\n", e.ds.T, e.ds.D, what);
        }
        for (int h = 0; h < b->nhidden && !rc; h++)
            for (int bt = 0; bt < b->nbatch && !rc; bt++) {
                int n = 0;
                if (nrows + 64 > (int)(sizeof rows / sizeof *rows))
                    break;
                rc = measure_shape(b, &e, b->hiddens[h], b->batches[bt], rows + nrows, &n);
                for (int i = 0; i < n && !rc; i++)
                    print_row(&rows[nrows + i], csv, b->layers);
                if (!rc && b->profile)
                    print_profile(rows + nrows, n);
                nrows += n;
            }
        free(e.order);
        pl_dataset_free(&e.ds);
    }
    if (csv) {
        fclose(csv);
        if (!rc)
            fprintf(stderr, "parlstm bench: table written to %s\n", b->csv);
    }
    if (!rc && b->png && pl_dist_rank() == 0) {
        if (system("command -v gnuplot >/dev/null 2>&1") != 0)
            fprintf(stderr, "parlstm bench: --plot: gnuplot not found (Debian package "
                    "gnuplot-nox); no plot written\n");
        else
            plot_shapes(b->png, rows, nrows, b->layers);
    }
    return rc;
}
