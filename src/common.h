/* What every file of libparlstm uses: errors, memory, splits, profiling
 * laps, the CPUs and the floating-point mode (not part of the public API). */
#ifndef PARLSTM_COMMON_H
#define PARLSTM_COMMON_H

#include <pthread.h>
#include <string.h>

#include "parlstm.h"

/* Sets err (when not NULL) and returns code. printf-style message. */
pl_status pl_fail(pl_error *err, pl_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Zeroed, 64-byte aligned; from 4 MiB on through pl_alloc_data (huge pages:
 * at T=784 the step's buffers on 4 KiB pages ran 1-4% slower depending on
 * how the kernel had laid them out, bench/results/hugepages.txt). free()
 * releases it. */
void *pl_alloc_aligned(size_t bytes);
/* A data set's buffer, read at random every step (a batch's items): from 4
 * MiB on, 2 MiB-aligned with huge pages asked for, else malloc; not zeroed;
 * free() releases it. On 4 KiB pages a batch's items cost a TLB miss each:
 * MNIST's batches loaded 3-4x slower from a buffer that read() had filled
 * (bench/results/load-hugepages.txt). */
void *pl_alloc_data(size_t bytes);
int pl_cpu_has_avx2(void);

/* Profiling: adds the time since *t0 to prof[ph] and restarts the clock;
 * nothing when prof is NULL. */
static inline void pl_lap(double *prof, int ph, double *t0)
{
    if (prof) {
        double t = pl_seconds();
        prof[ph] += t - *t0;
        *t0 = t;
    }
}

/* The CPUs this process could use when it started (before any pinning):
 * up to max of their numbers into cpus; returns how many. */
int pl_cpu_list(int *cpus, int max);
/* Sets attr's CPU affinity to those CPUs: a thread it creates may run on
 * any of them, whatever its creator is pinned to. 0 or an error number. */
#include <pthread.h>
int pl_cpu_thread_attr(pthread_attr_t *attr);

/* Flush-to-zero and denormals-are-zero on the calling thread (see cpu.c);
 * returns the previous mode for pl_fp_fast_leave. Every thread that
 * computes brackets its work with these two. */
unsigned long pl_fp_fast_enter(void);
void pl_fp_fast_leave(unsigned long old);

static inline size_t pl_round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

/* Rows 0..n-1 ordered by length, longest first, into order (order[k] = the
 * row in place k): a stable counting sort, so rows of one length keep
 * their order. Row b's length is lengths[idx[b]] (lengths[b] when idx is
 * NULL), 1..T; cnt: T + 1 ints of scratch. O(n + T). (rng.c) */
void pl_order_by_length(const uint32_t *idx, const int32_t *lengths, int n, int T,
                        uint32_t *order, int *cnt);

/* [lo, hi) of `total` items for part `part` of `parts` (sizes differ by at
 * most one, earlier parts larger). */
static inline void pl_split(long total, int part, int parts, long *lo, long *hi)
{
    long base = total / parts, extra = total % parts;
    *lo = part * base + (part < extra ? part : extra);
    *hi = *lo + base + (part < extra ? 1 : 0);
}

#endif
