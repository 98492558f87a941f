/* Files: atomic replacement, whole-file reads, and the payload check that
 * model and checkpoint files share. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "files.h"
#include "testing.h"

/* ---- test hook (testing.h): a full disk under one directory */
#ifdef PL_TEST_HOOKS
static char full_dir[4096];
#endif

int pl_test_hooks_built(void)
{
#ifdef PL_TEST_HOOKS
    return 1;
#else
    return 0;
#endif
}

void pl_test_set_full_dir(const char *dir)
{
#ifdef PL_TEST_HOOKS
    snprintf(full_dir, sizeof full_dir, "%s", dir ? dir : "");
#else
    (void)dir;
#endif
}

/* How many bytes of a write of len to path fit on the disk. */
static size_t room(const char *path, size_t len)
{
#ifndef PL_TEST_HOOKS
    (void)path;
    return len;
#else
    size_t n = strlen(full_dir);
    const char *slash = strrchr(path, '/');
    if (!n || !slash || (size_t)(slash - path) != n || strncmp(path, full_dir, n) != 0)
        return len;
    return len / 2;
#endif
}

static pl_status write_all(int fd, const void *data, size_t len,
                           const char *path, pl_error *err)
{
    const char *p = data;
    size_t fits = room(path, len);
    while (len > 0) {
        if (fits == 0) {
            errno = ENOSPC;
            return pl_fail(err, PL_ERR_IO, "%s: write failed: %s (the disk is full)", path,
                           strerror(errno));
        }
        size_t chunk = len > fits ? fits : len;
        ssize_t w = write(fd, p, chunk > (1u << 30) ? (1u << 30) : chunk);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return pl_fail(err, PL_ERR_IO, "%s: write failed: %s%s", path,
                           w < 0 ? strerror(errno) : "no progress",
                           w < 0 && errno == ENOSPC ? " (the disk is full)" : "");
        p += w;
        len -= (size_t)w;
        fits -= (size_t)w;
    }
    return PL_OK;
}

void pl_write_abandon(pl_write_guard *g)
{
    if (g && g->active)
        unlink(g->tmp);
    if (g)
        g->active = 0;
}

/* Arms the guard with the temporary's name: the name is complete before
 * `active` says so, even to a signal handler on this thread. */
static void guard_arm(pl_write_guard *g, const char *tmp)
{
    if (!g || strlen(tmp) >= sizeof g->tmp)
        return;
    memcpy(g->tmp, tmp, strlen(tmp) + 1);
    atomic_signal_fence(memory_order_seq_cst);
    g->active = 1;
}

static void guard_disarm(pl_write_guard *g)
{
    if (g)
        g->active = 0;
}

/* ---- test hook (testing.h): a pause before the rename */
#ifdef PL_TEST_HOOKS
static int write_delay_ms;
#else
enum { write_delay_ms = 0 };
#endif

void pl_test_set_write_delay(int ms)
{
#ifdef PL_TEST_HOOKS
    write_delay_ms = ms > 0 ? ms : 0;
#else
    (void)ms;
#endif
}

static void test_delay(void)
{
    if (write_delay_ms > 0) {
        struct timespec ts = {write_delay_ms / 1000, (long)(write_delay_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        } /* signals do not shorten it */
    }
}

/* Creates PATH.tmp.XXXXXX (six letters or digits, the pattern that
 * pl_remove_stale_temporaries recognises) with O_EXCL and mode 0666 less
 * the umask, as a plain create would. mkstemp's 0600 would need the umask
 * read back and reset, which is not safe with other threads. Returns the
 * descriptor, or -1 with errno set; tmp holds strlen(path) + 12 bytes. */
static int create_temporary(const char *path, char *tmp, size_t tmp_len)
{
    static const char letters[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    static unsigned long calls;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pl_rng r;
    pl_rng_seed(&r, ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)ts.tv_nsec ^
                        ((uint64_t)getpid() << 40) ^
                        __atomic_add_fetch(&calls, 1, __ATOMIC_RELAXED) * 0x9e3779b97f4a7c15ull);
    for (int attempt = 0; attempt < 100; attempt++) {
        char suffix[7];
        for (int i = 0; i < 6; i++)
            suffix[i] = letters[pl_rng_below(&r, sizeof letters - 1)];
        suffix[6] = '\0';
        snprintf(tmp, tmp_len, "%s.tmp.%s", path, suffix);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    errno = EEXIST;
    return -1;
}

int pl_remove_stale_temporaries(const char *path)
{
    char *dcopy = strdup(path), *bcopy = strdup(path);
    if (!dcopy || !bcopy) {
        free(dcopy);
        free(bcopy);
        return 0;
    }
    const char *dir = dirname(dcopy), *base = basename(bcopy);
    size_t blen = strlen(base);
    int removed = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        /* exactly BASE.tmp.XXXXXX, as create_temporary makes them */
        if (strncmp(e->d_name, base, blen) == 0 && strncmp(e->d_name + blen, ".tmp.", 5) == 0 &&
            strlen(e->d_name + blen + 5) == 6) {
            char full[8192];
            snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
            if (unlink(full) == 0)
                removed++;
        }
    }
    if (d)
        closedir(d);
    free(dcopy);
    free(bcopy);
    return removed;
}

/* The first step of a write at path: refuse a directory there, then
 * create the temporary beside it. On success *fd is open, *tmp its name
 * (free it), *exists says whether path exists (st its status). */
static pl_status begin_write(const char *path, const char *cannot, int *fd, char **tmp,
                             struct stat *st, int *exists, pl_error *err)
{
    *exists = stat(path, st) == 0;
    if (*exists && S_ISDIR(st->st_mode))
        return pl_fail(err, PL_ERR_NOT_FILE, "%s: is a directory, expected a file name", path);
    size_t tlen = strlen(path) + 12;
    if (!(*tmp = malloc(tlen)))
        return pl_fail(err, PL_ERR_NOMEM, "%s: out of memory", path);
    if ((*fd = create_temporary(path, *tmp, tlen)) < 0) {
        pl_status rc = pl_fail(err, PL_ERR_IO, "%s: %s: %s", path, cannot, strerror(errno));
        free(*tmp);
        *tmp = NULL;
        return rc;
    }
    return PL_OK;
}

pl_status pl_check_writable(const char *path, pl_error *err)
{
    struct stat st;
    int exists, fd;
    char *tmp;
    pl_status rc = begin_write(path, "cannot create a file there", &fd, &tmp, &st, &exists, err);
    if (rc)
        return rc;
    close(fd);
    unlink(tmp);
    free(tmp);
    return PL_OK;
}

/* The durable part of a write: the bytes, fsync, close, rename over path. */
static pl_status write_and_rename(int fd, const char *tmp, const char *path, const void *data,
                                  size_t len, pl_error *err)
{
    pl_status rc = write_all(fd, data, len, path, err);
    if (!rc)
        test_delay();
    if (!rc && fsync(fd) != 0)
        rc = pl_fail(err, PL_ERR_IO, "%s: fsync failed: %s", path, strerror(errno));
    if (close(fd) != 0 && !rc)
        rc = pl_fail(err, PL_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    if (!rc && rename(tmp, path) != 0)
        rc = pl_fail(err, PL_ERR_IO, "%s: rename failed: %s", path, strerror(errno));
    return rc;
}

/* After the rename: the directory entry itself reaches the disk. */
static void sync_directory(const char *path)
{
    char *dirbuf = strdup(path);
    if (!dirbuf)
        return;
    int dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd); /* best effort: some file systems refuse */
        close(dfd);
    }
    free(dirbuf);
}

pl_status pl_write_atomic(const char *path, const void *data, size_t len,
                          pl_write_guard *guard, pl_error *err)
{
    struct stat st;
    int exists, fd;
    char *tmp;
    /* signals wait while the temporary is created and the guard learns its
     * name: a handler that abandons the write never misses the file */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pl_status rc = begin_write(path, "cannot create a file beside it", &fd, &tmp, &st, &exists,
                               err);
    if (!rc)
        guard_arm(guard, tmp);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc)
        return rc;
    if (exists) /* the new file keeps the mode of the one it replaces */
        fchmod(fd, st.st_mode & 07777);
    rc = write_and_rename(fd, tmp, path, data, len, err);
    guard_disarm(guard);
    if (rc)
        unlink(tmp);
    else
        sync_directory(path);
    free(tmp);
    return rc;
}

pl_status pl_read_file(const char *path, const char *what, size_t min_len, size_t max_len,
                       unsigned char **data, size_t *len, pl_error *err)
{
    *data = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return pl_fail(err, errno == ENOENT ? PL_ERR_NOT_FOUND : PL_ERR_IO,
                       "%s: cannot open the %s: %s", path, what, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return pl_fail(err, PL_ERR_NOT_FILE, "%s: expected a %s file, found a %s", path, what,
                       S_ISDIR(st.st_mode) ? "directory" : "special file");
    if (st.st_size == 0)
        return pl_fail(err, PL_ERR_EMPTY, "%s: the %s file is empty", path, what);
    if ((size_t)st.st_size < min_len)
        return pl_fail(err, PL_ERR_TRUNCATED, "%s: truncated: %lld bytes, a %s file has at least %zu",
                       path, (long long)st.st_size, what, min_len);
    if ((unsigned long long)st.st_size > max_len)
        return pl_fail(err, PL_ERR_TOO_LARGE, "%s: %lld bytes is no %s file", path,
                       (long long)st.st_size, what);
    size_t n = (size_t)st.st_size;
    unsigned char *buf = malloc(n);
    if (!buf)
        return pl_fail(err, PL_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, n);
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(buf, 1, n, f) : 0;
    if (f)
        fclose(f);
    if (got != n) {
        free(buf);
        return pl_fail(err, PL_ERR_IO, "%s: read %zu of %zu bytes", path, got, n);
    }
    *data = buf;
    *len = n;
    return PL_OK;
}

pl_status pl_check_payload(const char *path, const char *what, const pl_config *cfg,
                           uint64_t n, size_t head, int copies, const unsigned char *buf,
                           size_t len, pl_error *err)
{
    if (pl_config_check(cfg, err)) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err ? err->msg : "");
        return pl_fail(err, PL_ERR_MISMATCH, "%s: bad model config: %s", path, why);
    }
    if (n != pl_param_count(cfg))
        return pl_fail(err, PL_ERR_MISMATCH, "%s: %llu parameters, a %d-%d-%d model%s%.0d%s "
                       "has %zu", path, (unsigned long long)n, cfg->input, cfg->hidden,
                       cfg->classes, cfg->layers > 1 ? " of " : "",
                       cfg->layers > 1 ? cfg->layers : 0, cfg->layers > 1 ? " layers" : "",
                       pl_param_count(cfg));
    size_t want = head + (size_t)copies * 4 * (size_t)n + 4;
    if (len != want)
        return pl_fail(err, len < want ? PL_ERR_TRUNCATED : PL_ERR_TRAILING,
                       "%s: %s: expected %zu bytes, found %zu", path,
                       len < want ? "truncated" : "trailing bytes", want, len);
    uint32_t crc = (uint32_t)crc32_z(0L, buf, len - 4), stored;
    memcpy(&stored, buf + len - 4, 4);
    if (crc != stored)
        return pl_fail(err, PL_ERR_CORRUPT,
                       "%s: CRC32 mismatch: stored %08x, computed %08x (the %s is damaged)",
                       path, stored, crc, what);
    return PL_OK;
}
