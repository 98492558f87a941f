/* CPU facts (instruction sets, CPUs available, cache sizes), the monotonic clock, and the
 * floating-point mode of the threads that compute.
 *
 * Subnormal numbers: gradients that travel back through hundreds of time
 * steps shrink below FLT_MIN, and on x86 every multiply with a subnormal
 * operand or result takes a microcode assist of about a hundred cycles. At
 * 784 time steps this made the backward products 30x slower than the
 * forward one. Every thread that computes therefore runs with
 * flush-to-zero and denormals-are-zero (as MKL and oneDNN do); results stay
 * deterministic because every thread uses the same mode. */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "common.h"
#include "kernels.h"
#include "tools.h"

int pl_cpu_has_avx512(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

int pl_cpu_has_avx512_bf16(void)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    return pl_cpu_has_avx512() && __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

int pl_cpu_has_avx2(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

/* The CPUs the process may use, as it started: --pin later ties threads
 * (the caller's too) to single CPUs, which must not shrink what the next
 * trainer in the same process sees. */
static cpu_set_t start_set;
static int start_ok;

__attribute__((constructor)) static void remember_cpus(void)
{
    start_ok = sched_getaffinity(0, sizeof start_set, &start_set) == 0 &&
               CPU_COUNT(&start_set) > 0;
}

int pl_cpu_list(int *cpus, int max)
{
    int n = 0;
    if (!start_ok) {
        if (max > 0)
            cpus[n++] = 0;
        return n;
    }
    for (int c = 0; c < CPU_SETSIZE && n < max; c++)
        if (CPU_ISSET(c, &start_set))
            cpus[n++] = c;
    return n;
}

int pl_cpu_thread_attr(pthread_attr_t *attr)
{
    return start_ok ? pthread_attr_setaffinity_np(attr, sizeof start_set, &start_set) : 0;
}

int pl_cpu_count(void)
{
    return start_ok ? CPU_COUNT(&start_set) : 1;
}

/* Linux's description of cpu0's cache of this level and type ("Data" or
 * "Unified"), in bytes; 0 when there is none. */
static long sysfs_cache(int level, const char *type)
{
    for (int i = 0; i < 8; i++) {
        char path[96], buf[32] = "", kind[32] = "";
        long lv = 0, size = 0;
        char unit = 0;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        FILE *f = fopen(path, "r");
        if (!f)
            return 0;
        if (fgets(buf, sizeof buf, f))
            lv = strtol(buf, NULL, 10);
        fclose(f);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
        if ((f = fopen(path, "r"))) {
            if (!fgets(kind, sizeof kind, f))
                kind[0] = 0;
            fclose(f);
        }
        if (lv != level || strncmp(kind, type, strlen(type)) != 0)
            continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        if ((f = fopen(path, "r"))) {
            if (fscanf(f, "%ld%c", &size, &unit) < 1)
                size = 0;
            fclose(f);
        }
        return unit == 'K' ? size * 1024 : unit == 'M' ? size * 1048576 : size;
    }
    return 0;
}

static pl_cpu_caches caches;
static pthread_once_t caches_once = PTHREAD_ONCE_INIT;

/* glibc reads the sizes from the CPU (CPUID leaf 4 on Intel, 0x8000001D on
 * AMD); where it cannot (0 or -1, as on many ARM systems), sysfs. */
static void read_caches(void)
{
    long l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE), l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    caches.l1d = l1 > 0 ? l1 : sysfs_cache(1, "Data");
    caches.l2 = l2 > 0 ? l2 : sysfs_cache(2, "Unified");
}

pl_cpu_caches pl_cpu_cache_sizes(void)
{
    pthread_once(&caches_once, read_caches);
    return caches;
}

double pl_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* x86: MXCSR bits FTZ (15) and DAZ (6). AArch64: FPCR bit FZ (24), which
 * flushes both inputs and outputs. */
unsigned long pl_fp_fast_enter(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned old = _mm_getcsr();
    _mm_setcsr(old | 0x8040u);
    return old;
#elif defined(__aarch64__)
    unsigned long old;
    __asm__ volatile("mrs %0, fpcr" : "=r"(old));
    __asm__ volatile("msr fpcr, %0" ::"r"(old | (1ul << 24)));
    return old;
#else
    return 0;
#endif
}

void pl_fp_fast_leave(unsigned long old)
{
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr((unsigned)old);
#elif defined(__aarch64__)
    __asm__ volatile("msr fpcr, %0" ::"r"(old));
#else
    (void)old;
#endif
}
