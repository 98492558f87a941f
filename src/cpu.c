/* CPU facts (instruction sets, CPUs available), the monotonic clock, and the
 * floating-point mode of the threads that compute.
 *
 * Subnormal numbers: gradients that travel back through hundreds of time
 * steps shrink below FLT_MIN, and on x86 every multiply with a subnormal
 * operand or result takes a microcode assist of about a hundred cycles. At
 * 784 time steps this made the backward products 30x slower than the
 * forward one. Every thread that computes therefore runs with
 * flush-to-zero and denormals-are-zero (as MKL and oneDNN do); results stay
 * deterministic because every thread uses the same mode. */
#include <sched.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "internal.h"

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

int pl_cpu_has_avx2(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

int pl_cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
    return 1;
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
