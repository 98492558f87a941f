/* Helpers shared by the test suites. */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <png.h>

#include "testing.h"
#include "testutil.h"

void tu_skip(const char *what, const char *why)
{
    fprintf(stderr, "SKIP: %s: %s\n", what, why);
    if (fcntl(9, F_GETFD) != -1) /* the terminal, under make check (see main.c) */
        dprintf(9, "SKIP: %s: %s\n", what, why);
    const char *log = getenv(TU_SKIP_LOG_ENV);
    FILE *f = log ? fopen(log, "a") : NULL;
    ck_assert_msg(f != NULL, "cannot count the skip of %s (%s=%s)", what, TU_SKIP_LOG_ENV,
                  log ? log : "(unset)");
    fprintf(f, "%s: %s\n", what, why);
    fclose(f);
}

int tu_hooks(const char *what)
{
    if (pl_test_hooks_built())
        return 1;
    tu_skip(what, "it injects a fault through a test hook, and ./configure "
                  "--disable-test-hooks compiled them out");
    return 0;
}

void tu_gemm(pl_gemm_backend be, const pl_gemm_op *op)
{
    const pl_kernels *k = pl_kernels_of(be);
    ck_assert_msg(k != NULL, "the %s kernels cannot run on this CPU: the test asked for "
                  "them without tu_set_runs", pl_gemm_name(be));
    pl_gemm_with(k, op);
}

const pl_gemm_backend tu_sets[] = {PL_GEMM_NAIVE, PL_GEMM_BLAS, PL_GEMM_AVX512, PL_GEMM_AVX2,
                                   PL_GEMM_NEON};
const int tu_nsets = (int)(sizeof tu_sets / sizeof *tu_sets);

int tu_set_runs(pl_gemm_backend be, const char *what)
{
    if (pl_gemm_available(be))
        return 1;
    if (what) {
        char full[256], why[256];
        snprintf(full, sizeof full, "%s on the %s kernels", what, pl_gemm_name(be));
        snprintf(why, sizeof why, "they need %s", pl_gemm_requires(be));
        tu_skip(full, why);
    }
    return 0;
}

/* The run's root directory (tu_root_begin), or "" */
static char root[4096];

/* A fresh directory under $TMPDIR (or /tmp) named prefix-XXXXXX, in buf;
 * NULL when it cannot be made. */
static char *fresh_dir(char *buf, size_t len, const char *prefix)
{
    const char *base = getenv("TMPDIR");
    snprintf(buf, len, "%s/%s-XXXXXX", base && *base ? base : "/tmp", prefix);
    return mkdtemp(buf);
}

char *tu_tmpdir(void)
{
    char tmpl[4200];
    char *d = tmpl;
    if (root[0]) {
        snprintf(tmpl, sizeof tmpl, "%s/test-XXXXXX", root);
        d = mkdtemp(tmpl);
    } else {
        d = fresh_dir(tmpl, sizeof tmpl, "parlstm-test");
    }
    ck_assert_msg(d != NULL, "mkdtemp failed");
    return strdup(d);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st; (void)flag; (void)f;
    return remove(p);
}

void tu_rmtree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void tu_root_begin(void)
{
    /* outside any test: no ck_assert here */
    if (!fresh_dir(root, sizeof root, "parlstm-tests")) {
        perror("parlstm tests: mkdtemp");
        exit(EXIT_FAILURE);
    }
}

void tu_root_end(void)
{
    if (root[0])
        tu_rmtree(root);
    root[0] = '\0';
}

char *tu_dir;

void tu_dir_setup(void)
{
    tu_dir = tu_tmpdir();
}

void tu_dir_teardown(void)
{
    tu_rmtree(tu_dir);
    free(tu_dir);
    tu_dir = NULL;
}

TCase *tu_tcase_with_dir(const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, tu_dir_setup, tu_dir_teardown);
    return tc;
}

const char *tu_subdir(const char *name)
{
    static char bufs[4][4096];
    static int next;
    ck_assert_msg(tu_dir != NULL, "tu_subdir(%s) outside a TCase with a directory", name);
    char *b = bufs[next++ % 4];
    snprintf(b, 4096, "%s/%s", tu_dir, name);
    ck_assert_msg(mkdir(b, 0700) == 0, "cannot make %s", b);
    return b;
}

const char *tu_path(const char *dir, const char *name)
{
    static char bufs[8][4096];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 4096, "%s/%s", dir, name);
    return b;
}

void tu_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

void tu_write_gz(const char *path, const void *data, size_t len)
{
    gzFile g = gzopen(path, "wb");
    ck_assert_msg(g != NULL, "cannot create %s", path);
    ck_assert_int_eq(gzwrite(g, data, (unsigned)len), (int)len);
    gzclose(g);
}

unsigned char *tu_read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*len + 1);
    ck_assert_uint_eq(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

int tu_same_file(const char *a, const char *b)
{
    size_t la, lb;
    unsigned char *x = tu_read_all(a, &la), *y = tu_read_all(b, &lb);
    int same = x && y && la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

void tu_assert_refused(const char *name, const char *path, pl_status rc, const pl_error *err,
                       pl_status want, const char *fragment)
{
    printf("%-40s -> %s: %s\n", name, pl_status_name(rc), err->msg);
    ck_assert_msg(rc == want, "%s: expected %s, got %s (%s)", name, pl_status_name(want),
                  pl_status_name(rc), err->msg);
    ck_assert_int_eq(err->code, want);
    size_t n = strlen(path);
    ck_assert_msg(strncmp(err->msg, path, n) == 0 && err->msg[n] == ':',
                  "%s: the message does not start with the file name: %s", name, err->msg);
    ck_assert_msg(strstr(err->msg, fragment) != NULL, "%s: message '%s' lacks '%s'", name,
                  err->msg, fragment);
}

void tu_put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

unsigned char *tu_idx_images(uint32_t n, uint32_t rows, uint32_t cols,
                             const uint8_t *pixels, size_t *len)
{
    size_t payload = (size_t)n * rows * cols;
    unsigned char *b = malloc(16 + payload);
    tu_put_be32(b, PL_IDX_IMAGES_MAGIC);
    tu_put_be32(b + 4, n);
    tu_put_be32(b + 8, rows);
    tu_put_be32(b + 12, cols);
    if (pixels)
        memcpy(b + 16, pixels, payload);
    else
        for (size_t i = 0; i < payload; i++)
            b[16 + i] = (unsigned char)(i * 37 % 256);
    *len = 16 + payload;
    return b;
}

unsigned char *tu_idx_labels(uint32_t n, const uint8_t *labels, size_t *len)
{
    unsigned char *b = malloc(8 + (size_t)n);
    tu_put_be32(b, PL_IDX_LABELS_MAGIC);
    tu_put_be32(b + 4, n);
    for (uint32_t i = 0; i < n; i++)
        b[8 + i] = labels ? labels[i] : (unsigned char)(i % 10);
    *len = 8 + (size_t)n;
    return b;
}

static void make_set(const char *dir, const char *prefix, int n, int T, int D,
                     int classes, pl_rng *r)
{
    uint8_t *px = calloc((size_t)n * T * D, 1), *lb = malloc((size_t)n);
    for (int i = 0; i < n; i++) {
        int c = (int)pl_rng_below(r, (uint64_t)classes);
        lb[i] = (uint8_t)c;
        uint8_t *img = px + (size_t)i * T * D;
        for (int k = 0; k < T * D; k++)
            img[k] = (uint8_t)pl_rng_below(r, 60);
        /* class c: a bright vertical stroke at column c * D / classes on the
         * upper or lower half, so the label is only known late in the
         * sequence for some classes */
        int col = c * D / classes;
        for (int t = 0; t < T; t++)
            if ((c % 2 == 0) == (t < T / 2))
                img[t * D + col] = 255;
    }
    char ip[4096], lp[4096];
    snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte", dir, prefix);
    snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte", dir, prefix);
    size_t len;
    unsigned char *b = tu_idx_images((uint32_t)n, (uint32_t)T, (uint32_t)D, px, &len);
    tu_write(ip, b, len);
    free(b);
    b = tu_idx_labels((uint32_t)n, lb, &len);
    tu_write(lp, b, len);
    free(b);
    free(px);
    free(lb);
}

void tu_make_dataset(const char *dir, int n_train, int n_test, int T, int D,
                     int classes, uint64_t seed)
{
    pl_rng r;
    pl_rng_seed(&r, seed);
    make_set(dir, "train", n_train, T, D, classes, &r);
    make_set(dir, "t10k", n_test, T, D, classes, &r);
}

pl_dataset tu_dataset(const char *dir, int n_train, int n_test, int T, int D, int classes,
                      uint64_t seed)
{
    tu_make_dataset(dir, n_train, n_test, T, D, classes, seed);
    pl_dataset ds;
    pl_error err = {0};
    ck_assert_msg(pl_dataset_load(&ds, dir, "train", 0, &err) == PL_OK, "%s", err.msg);
    return ds;
}

pl_train_opts tu_opts(int batch, int workers, int threads, int deterministic, uint64_t seed)
{
    pl_train_opts o;
    pl_train_opts_default(&o);
    o.batch = batch;
    o.workers = workers;
    o.threads = threads;
    o.deterministic = deterministic;
    o.seed = seed;
    return o;
}

pl_trainer *tu_trainer(const pl_config *cfg, const pl_dataset *ds, const pl_train_opts *o)
{
    pl_error err = {0};
    pl_trainer *tr = pl_trainer_create(cfg, ds->T, o, &err);
    ck_assert_msg(tr != NULL, "%s", err.msg);
    return tr;
}

void tu_steps(pl_trainer *tr, const pl_dataset *ds, uint64_t seed, int batch, long from,
              long to, long total, double *loss)
{
    const long per_epoch = (long)ds->n / batch;
    uint32_t *order = malloc(sizeof *order * ds->n);
    pl_error err = {0};
    for (long s = from; s < to; s++) {
        if (s == from || s % per_epoch == 0)
            pl_epoch_order(seed, s / per_epoch, order, ds->n);
        pl_step_stats st;
        pl_status rc = pl_trainer_step(tr, ds, order + (s % per_epoch) * batch, batch, s, total,
                                       loss ? &st : NULL, &err);
        ck_assert_msg(rc == PL_OK, "step %ld: %s", s, err.msg);
        if (loss)
            loss[s - from] = st.loss;
    }
    free(order);
}

void tu_fill(float *x, size_t n, float scale, uint64_t seed)
{
    pl_rng r;
    pl_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((2 * pl_rng_uniform(&r) - 1) * scale);
}

static void slurp(int fd, char *buf, size_t len)
{
    size_t have = 0;
    ssize_t got;
    while ((got = read(fd, buf + have, len - 1 - have)) > 0) {
        have += (size_t)got;
        if (have == len - 1) {
            char sink[4096];
            while (read(fd, sink, sizeof sink) > 0) {
            }
            break;
        }
    }
    buf[have] = '\0';
}

int tu_spawn(const char *const *args, const char *const *env, const char *out_path,
             const char *err_path)
{
    const char *bin = getenv("PARLSTM_BIN");
    ck_assert_msg(bin != NULL, "PARLSTM_BIN is not set (run the tests with make check)");
    return tu_spawn_program(bin, args, env, out_path, err_path);
}

int tu_spawn_program(const char *bin, const char *const *args, const char *const *env,
                     const char *out_path, const char *err_path)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* nothing to read: a program (mpirun forwards its stdin to rank 0)
         * never takes what the test runner's caller feeds it */
        int i0 = open("/dev/null", O_RDONLY);
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(i0, 0);
        dup2(o, 1);
        dup2(e, 2);
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        const char *argv[64];
        int k = 0;
        argv[k++] = bin;
        for (int i = 0; args[i] && k < 63; i++)
            argv[k++] = args[i];
        argv[k] = NULL;
        execvp(bin, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

int tu_wait(int pid)
{
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    ck_assert_msg(WIFSIGNALED(status), "child %d neither exited nor was killed", pid);
    return TU_KILLED(WTERMSIG(status));
}

void tu_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int tu_children(int pid, int *kids, int max)
{
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL && n < max) {
        char path[300], buf[512];
        int child = atoi(e->d_name), ppid;
        if (child <= 0)
            continue;
        snprintf(path, sizeof path, "/proc/%d/stat", child);
        if (tu_slurp(path, buf, sizeof buf) == 0)
            continue;
        const char *close = strrchr(buf, ')'); /* after the command name */
        if (close && sscanf(close + 1, " %*c %d", &ppid) == 1 && ppid == pid)
            kids[n++] = child;
    }
    if (d)
        closedir(d);
    return n;
}

static void kill_tree(int pid)
{
    int kids[64], n = tu_children(pid, kids, 64);
    kill(pid, SIGSTOP); /* no new children meanwhile */
    for (int i = 0; i < n; i++)
        kill_tree(kids[i]);
    kill(pid, SIGKILL);
}

int tu_wait_timeout(int pid, double seconds)
{
    int status = 0;
    for (double waited = 0; waited < seconds; waited += 0.02) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : TU_KILLED(WTERMSIG(status));
        tu_sleep_ms(20);
    }
    kill_tree(pid);
    waitpid(pid, &status, 0);
    return TU_HUNG;
}

size_t tu_read(const char *path, void *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    size_t len = fread(buf, 1, cap, f);
    int more = fgetc(f) != EOF;
    fclose(f);
    ck_assert_msg(!more, "%s is larger than %zu bytes", path, cap);
    return len;
}

void tu_fix_crc(unsigned char *buf, size_t n)
{
    uint32_t crc = (uint32_t)crc32(0L, buf, (uInt)(n - 4));
    memcpy(buf + n - 4, &crc, 4);
}

/* Offsets in a version 5 file without a standardisation or class names:
 * the version 1 header ends at 32, version 2's at 36 (time steps), version
 * 3's at 68 (layers, rows, cols, sequence, permuted: u32; permute seed:
 * u64; dropout: u32), version 4's at 80 (input, features, names_bytes:
 * u32, all 0), version 5's at 84 (precision: u32). Cuts [from,
 * V5_HEAD_END) and sets the version. */
static size_t model_cut(unsigned char *buf, size_t len, size_t from, unsigned char version)
{
    enum { AT_VERSION = 8, AT_FEATURES = 72, V5_HEAD_END = 84 };
    ck_assert_int_eq(buf[AT_VERSION], 5);
    for (int k = 0; k < 8; k++) /* nothing in the extras: the cut loses nothing */
        ck_assert_int_eq(buf[AT_FEATURES + k], 0);
    memmove(buf + from, buf + V5_HEAD_END, len - V5_HEAD_END);
    len -= V5_HEAD_END - from;
    buf[AT_VERSION] = version;
    tu_fix_crc(buf, len);
    return len;
}

size_t tu_model_to_v1(unsigned char *buf, size_t len) { return model_cut(buf, len, 32, 1); }
size_t tu_model_to_v2(unsigned char *buf, size_t len) { return model_cut(buf, len, 36, 2); }
size_t tu_model_to_v3(unsigned char *buf, size_t len) { return model_cut(buf, len, 68, 3); }
size_t tu_model_to_v4(unsigned char *buf, size_t len) { return model_cut(buf, len, 80, 4); }

size_t tu_slurp(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        buf[0] = '\0';
        return 0;
    }
    slurp(fd, buf, len);
    close(fd);
    return strlen(buf);
}

/* Whether path exists and (text not NULL) holds text, looked for in its
 * first 64 KiB (a log that grows is not read to its end at every poll),
 * within `seconds` of the clock. */
static int wait_for(const char *path, const char *text, double seconds)
{
    enum { CAP = 1 << 16 };
    char *buf = malloc(CAP);
    ck_assert_ptr_nonnull(buf);
    const double end = pl_seconds() + seconds;
    int found = 0;
    while (!found && pl_seconds() < end) {
        const int fd = open(path, O_RDONLY);
        if (fd >= 0) {
            const ssize_t got = pread(fd, buf, CAP - 1, 0);
            close(fd);
            buf[got > 0 ? got : 0] = '\0';
            found = !text || strstr(buf, text) != NULL;
        }
        if (!found)
            tu_sleep_ms(10);
    }
    free(buf);
    return found;
}

void tu_signal_when(const tu_job *j, int sig, const char *path, const char *text)
{
    const int ready = wait_for(path, text, 30);
    kill(j->pid, sig);
    if (!ready && text)
        ck_abort_msg("%s: no \"%s\" within 30 s", path, text + (text[0] == '\n'));
    ck_assert_msg(ready, "%s: not written within 30 s", path);
}

void tu_start(tu_job *j, const char *bin, const char *const *args, const char *const *env)
{
    char *dir = tu_tmpdir();
    snprintf(j->dir, sizeof j->dir, "%s", dir);
    free(dir);
    snprintf(j->out_path, sizeof j->out_path, "%s/out", j->dir);
    snprintf(j->err_path, sizeof j->err_path, "%s/err", j->dir);
    j->name = bin ? bin : "parlstm";
    if (bin)
        j->pid = tu_spawn_program(bin, args, env, j->out_path, j->err_path);
    else
        j->pid = tu_spawn(args, env, j->out_path, j->err_path);
}

int tu_finish(tu_job *j, tu_result *r, double seconds)
{
    r->status = seconds > 0 ? tu_wait_timeout(j->pid, seconds) : tu_wait(j->pid);
    tu_slurp(j->out_path, r->out, sizeof r->out);
    tu_slurp(j->err_path, r->err, sizeof r->err);
    tu_rmtree(j->dir);
    printf("%s -> %d\n%s", j->name, r->status, r->err);
    ck_assert_msg(r->status != TU_HUNG, "%s hung (killed after %.0f s): %s", j->name, seconds,
                  r->err);
    return r->status;
}

int tu_run_program(tu_result *r, const char *bin, const char *const *args,
                   const char *const *env, double seconds)
{
    tu_job j;
    tu_start(&j, bin, args, env);
    return tu_finish(&j, r, seconds);
}

int tu_run_args(tu_result *r, const char *const *args)
{
    return tu_run_program(r, NULL, args, NULL, 0);
}

int tu_run_env(tu_result *r, const char *const *args, const char *const *env)
{
    return tu_run_program(r, NULL, args, env, 0);
}

void tu_write_png(const char *path, int w, int h, int color, int depth, int interlace,
                  const unsigned char *data, size_t row_bytes, const void *palette,
                  int n_palette)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_le(h, 64);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert(png && info);
    if (setjmp(png_jmpbuf(png)))
        ck_abort_msg("libpng could not write %s", path);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, color,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (palette)
        png_set_PLTE(png, info, (png_const_colorp)palette, n_palette);
    png_write_info(png, info);
    png_bytep rows[64];
    for (int r = 0; r < h; r++)
        rows[r] = (png_bytep)data + (size_t)r * row_bytes;
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

int tu_read_log(const char *path, tu_log_row *rows, int max)
{
    static char text[1 << 16];
    tu_slurp(path, text, sizeof text);
    char *save = NULL, *line = strtok_r(text, "\n", &save);
    ck_assert_ptr_nonnull(line);
    ck_assert_str_eq(line, "kind,step,epoch,lr,loss,accuracy,grad_norm,samples_per_sec,seconds");
    int n = 0;
    while ((line = strtok_r(NULL, "\n", &save)) != NULL && n < max) {
        tu_log_row *r = &rows[n++];
        memset(r, 0, sizeof *r);
        char *f[9], *p = line;
        for (int i = 0; i < 9; i++) {
            f[i] = p;
            p = strchr(p, ',');
            ck_assert_msg(p || i == 8, "a short row: %s", line);
            if (p)
                *p++ = '\0';
        }
        snprintf(r->kind, sizeof r->kind, "%s", f[0]);
        r->step = atol(f[1]);
        r->epoch = atol(f[2]);
        snprintf(r->lr, sizeof r->lr, "%s", f[3]);
        r->loss = atof(f[4]);
        r->accuracy = atof(f[5]);
        snprintf(r->grad_norm, sizeof r->grad_norm, "%s", f[6]);
        snprintf(r->rate, sizeof r->rate, "%s", f[7]);
        r->seconds = atof(f[8]);
    }
    return n;
}
