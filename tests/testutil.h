/* Helpers shared by the test suites. */
#ifndef PARLSTM_TESTUTIL_H
#define PARLSTM_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

Suite *idx_suite(void);
Suite *gemm_suite(void);
Suite *lstm_suite(void);
Suite *parallel_suite(void);
Suite *optim_suite(void);
Suite *cli_suite(void);
Suite *train_suite(void);
Suite *reliability_suite(void);
Suite *torch_suite(void);
Suite *safetensors_suite(void);
Suite *image_suite(void);
Suite *tools_suite(void);
Suite *dist_suite(void);
Suite *series_suite(void);
Suite *bf16_suite(void);

/* Reports that a test, or a part of it, cannot run here (Check has no skip
 * status): a "SKIP: what: why" line on stderr (and, under make check, on
 * the terminal), counted by the runner, which lists the skips after
 * Check's summary. Never a silent pass. */
void tu_skip(const char *what, const char *why);
/* 1 when the library's test hooks are built in (src/testing.h); else
 * reports `what` as a skip (./configure --disable-test-hooks) and
 * returns 0. */
int tu_hooks(const char *what);
/* The file the runner counts skips in ($PARLSTM_SKIP_LOG). */
#define TU_SKIP_LOG_ENV "PARLSTM_SKIP_LOG"

/* C (+)= A B with kernel set be, which must run on this CPU: a set that
 * cannot fails the test (it never falls back to another). */
void tu_gemm(pl_gemm_backend be, const pl_gemm_op *op);
/* Every concrete kernel set (naive, blas, avx512, avx2, neon): tests of a
 * guarantee that every set must keep loop over them. */
extern const pl_gemm_backend tu_sets[];
extern const int tu_nsets;
/* Whether this CPU runs kernel set be; when it does not, reports the skip
 * ("<what> on the <set> kernels: they need ..."; nothing when what is
 * NULL: loop tests report it once). */
int tu_set_runs(pl_gemm_backend be, const char *what);

/* A fresh directory (caller frees the name); removed by tu_rmtree. It is
 * made under the run's root directory when the runner made one
 * (tu_root_begin), else under $TMPDIR (or /tmp). */
char *tu_tmpdir(void);
void tu_rmtree(const char *dir);
/* The run's root directory: tu_root_begin makes it under $TMPDIR (or
 * /tmp), and every later tu_tmpdir, in the runner or in the test
 * processes it forks, is made under it; tu_root_end removes it with
 * whatever is left. That catches the directories of tests that never
 * reached their teardown: Check's forked test process leaves with _exit
 * when an assertion fails (neither the checked teardown nor atexit
 * handlers run), and a test past its time is killed. */
void tu_root_begin(void);
void tu_root_end(void);

/* The test's own directory: a checked fixture (tu_dir_setup before, and
 * tu_dir_teardown after, every test of the TCase, in the test's forked
 * process) makes it fresh and removes it when the test passes; a failed
 * test's is removed by tu_root_end. NULL outside such a TCase. */
extern char *tu_dir;
void tu_dir_setup(void);
void tu_dir_teardown(void);
/* A TCase whose every test gets a fresh tu_dir. */
TCase *tu_tcase_with_dir(const char *name);
/* tu_dir/name made as a directory; its path (one of 4 rotating static
 * buffers). For tests that need more than one directory. */
const char *tu_subdir(const char *name);
/* dir/name into a static buffer (one of 8 rotating). */
const char *tu_path(const char *dir, const char *name);
void tu_write(const char *path, const void *data, size_t len);
/* The whole of path (at least len + 1 bytes allocated; caller frees). */
unsigned char *tu_read_all(const char *path, size_t *len);
/* 1 when the files at a and b hold the same bytes. */
int tu_same_file(const char *a, const char *b);
/* Big-endian u32 at p. */
void tu_put_be32(unsigned char *p, uint32_t v);
/* A refused input: rc and err->code are want, and err->msg starts with
 * "path:" and contains fragment; name says which case failed. */
void tu_assert_refused(const char *name, const char *path, pl_status rc, const pl_error *err,
                       pl_status want, const char *fragment);
/* gzip-compresses data into path. */
void tu_write_gz(const char *path, const void *data, size_t len);
/* An IDX file image: header + payload (caller frees). */
unsigned char *tu_idx_images(uint32_t n, uint32_t rows, uint32_t cols,
                             const uint8_t *pixels, size_t *len);
unsigned char *tu_idx_labels(uint32_t n, const uint8_t *labels, size_t *len);
/* A learnable synthetic set in dir: DIR/{train,t10k}-*: class c puts a bright
 * stroke on rows depending on c, with noise. */
void tu_make_dataset(const char *dir, int n_train, int n_test, int T, int D,
                     int classes, uint64_t seed);
/* tu_make_dataset's set in dir, its training part loaded (caller frees
 * it with pl_dataset_free). */
pl_dataset tu_dataset(const char *dir, int n_train, int n_test, int T, int D, int classes,
                      uint64_t seed);
/* The default options with batch, workers, threads, deterministic and
 * seed set. */
pl_train_opts tu_opts(int batch, int workers, int threads, int deterministic, uint64_t seed);
/* A trainer for cfg on ds's sequence length (the test fails when it
 * cannot be made). */
pl_trainer *tu_trainer(const pl_config *cfg, const pl_dataset *ds, const pl_train_opts *o);
/* Steps [from, to) of a run of `total` steps (the learning-rate
 * schedule's length) in batches of `batch`: epoch e visits ds in
 * pl_epoch_order(seed, e). Each step's loss into loss[s - from] when loss
 * is not NULL (the step reports no statistics when it is). */
void tu_steps(pl_trainer *tr, const pl_dataset *ds, uint64_t seed, int batch, long from,
              long to, long total, double *loss);
/* |a - b|, infinite when either is NaN (fmax(worst, NaN) would keep worst:
 * a NaN result must fail a tolerance, never pass it). */
static inline double tu_absdiff(double a, double b)
{
    return a != a || b != b ? 1.0 / 0.0 : (a > b ? a - b : b - a);
}
/* Uniform(-scale, scale) floats. */
void tu_fill(float *x, size_t n, float scale, uint64_t seed);
/* What tu_wait and tu_finish return for a child killed by signal sig: a
 * negative number, never one that a program's own exit status could be
 * (the program exits 130 after SIGINT itself; killed by SIGINT it is -2). */
#define TU_KILLED(sig) (-(sig))

/* What a program run left: its exit status, and its stdout and stderr
 * (NUL-terminated; what does not fit is dropped). */
typedef struct {
    int status;         /* the exit status, TU_KILLED(signal) or TU_HUNG */
    char out[1 << 20];
    char err[1 << 16];
} tu_result;

/* A program started by tu_start: its pid, and the files its stdout and
 * stderr go to (in a fresh directory of their own). */
typedef struct {
    int pid;
    char dir[4096], out_path[4200], err_path[4200];
    const char *name; /* the program, for the test's log */
} tu_job;

/* Starts bin ($PARLSTM_BIN when NULL; found on PATH when it has no slash)
 * with args (NULL-terminated) and extra environment entries ("K=V",
 * NULL-terminated, may be NULL). */
void tu_start(tu_job *j, const char *bin, const char *const *args, const char *const *env);
/* Sends sig to j once path exists and (text not NULL) holds text in its
 * first 64 KiB: the program's sign of life (a checkpoint, a log row), so
 * that the signal comes when it is ready for it however slow the machine
 * (an emulator, a loaded host). Waits at most 30 s (within the shortest
 * test case's limit, 60 s), then sends it anyway and fails the test. */
void tu_signal_when(const tu_job *j, int sig, const char *path, const char *text);
/* Waits for j (at most `seconds` when above 0: a program still running
 * then is killed with everything under it and fails the test, so a hang
 * never blocks), reads its output into r, removes its files, writes the
 * status and stderr to the test's log; returns r->status. */
int tu_finish(tu_job *j, tu_result *r, double seconds);
/* tu_start, then tu_finish. */
int tu_run_program(tu_result *r, const char *bin, const char *const *args,
                   const char *const *env, double seconds);
/* Runs $PARLSTM_BIN with args: r->status. */
int tu_run_args(tu_result *r, const char *const *args);
/* The same with extra environment entries ("K=V", NULL-terminated). */
int tu_run_env(tu_result *r, const char *const *args, const char *const *env);

/* Starts $PARLSTM_BIN with args and extra environment entries ("K=V",
 * NULL-terminated, may be NULL), stdout/stderr to files; returns the pid. */
int tu_spawn(const char *const *args, const char *const *env, const char *out_path,
             const char *err_path);
/* The same for any program (found on PATH when bin has no slash). */
int tu_spawn_program(const char *bin, const char *const *args, const char *const *env,
                     const char *out_path, const char *err_path);
/* Waits for pid: its exit status, or TU_KILLED(signal). */
int tu_wait(int pid);
/* Waits at most `seconds` for pid: as tu_wait, or -1000 after killing it
 * and every process under it (a hang fails instead of blocking). */
#define TU_HUNG (-1000)
int tu_wait_timeout(int pid, double seconds);
/* Children of pid (from /proc), up to max; returns how many. */
int tu_children(int pid, int *kids, int max);
void tu_sleep_ms(int ms);
/* Reads the whole of path (at most cap bytes; it must fit) into buf;
 * returns its length. */
size_t tu_read(const char *path, void *buf, size_t cap);
/* Writes the CRC32 of buf[0, n - 4) into its last 4 bytes, as the model
 * and checkpoint formats keep it. */
void tu_fix_crc(unsigned char *buf, size_t n);
/* A version 5 model file in buf (len bytes), without a standardisation or
 * class names (the test fails otherwise), made version 1: the fields of
 * versions 2 to 5 dropped, the CRC32 made right; returns the new length. */
size_t tu_model_to_v1(unsigned char *buf, size_t len);
/* The same, made version 2 (the fields of versions 3 to 5 dropped). */
size_t tu_model_to_v2(unsigned char *buf, size_t len);
/* The same, made version 3 (the fields of versions 4 and 5 dropped). */
size_t tu_model_to_v3(unsigned char *buf, size_t len);
/* The same, made version 4 (version 5's precision dropped). */
size_t tu_model_to_v4(unsigned char *buf, size_t len);
/* Writes a PNG of w x h (libpng's colour type and bit depth) from rows of
 * packed samples (depths below 8 packed, 16 bits big-endian); palette:
 * n_palette png_color entries (r, g, b bytes) or NULL. At most 64 rows. */
void tu_write_png(const char *path, int w, int h, int color, int depth, int interlace,
                  const unsigned char *data, size_t row_bytes, const void *palette,
                  int n_palette);
/* Reads up to len - 1 bytes of path into buf (NUL-terminated); returns bytes. */
size_t tu_slurp(const char *path, char *buf, size_t len);

/* A row of a training log (parlstm train --log): lr, grad_norm and
 * samples_per_sec as written (empty in evaluation rows). */
typedef struct {
    char kind[8];
    long step, epoch;
    char lr[32], grad_norm[32], rate[32];
    double loss, accuracy, seconds;
} tu_log_row;
/* The rows of a log file, at most max (its header checked); returns how
 * many. */
int tu_read_log(const char *path, tu_log_row *rows, int max);

#endif
