/* What the parlstm program's bench and advice, the benchmarks under bench/
 * and the tests use from the library, and a library user does not: not
 * installed, not exported from libparlstm.so (they link the library's
 * static core). */
#ifndef PARLSTM_TOOLS_H
#define PARLSTM_TOOLS_H

#include "parlstm.h"

/* Measured FMA throughput of `threads` threads running at once, in GFLOP/s
 * (AVX-512 when the CPU has it, else AVX2/FMA, else NEON, else scalar),
 * each thread for about `seconds`. */
double pl_fma_peak_gflops(int threads, double seconds);
/* The same with the vector width of kernel set be: the ceiling of its
 * kernels (avx2 on an AVX-512 CPU measures 256-bit FMAs). naive and blas
 * measure the widest this CPU has; 0 when the CPU cannot run be. */
double pl_fma_peak_gflops_of(pl_gemm_backend be, int threads, double seconds);
/* The same for the products of `precision`: with bf16 on the AVX512_BF16
 * kernel, vdpbf16ps's throughput (64 operations an instruction); otherwise
 * the FMA peak (the software path multiplies in fp32 and double). */
double pl_peak_gflops(pl_gemm_backend be, pl_precision precision, int threads, double seconds);

/* The rate of kernel set be's GEMM with every operand in L1 (a 24 x 32
 * product over one chunk of B) over the rate of its FMA loop, on the
 * calling thread's core: `pairs` alternations of about 0.2 ms of the one
 * and 0.1 ms of the other, the median of their ratios (quartiles into *q1
 * and *q3 when not NULL). On a shared host it falls while a busy neighbour
 * shares the core, which slows the GEMM's loads and hardly the FMA loop
 * (bench/l1-ceiling). 0 for sets without a blocked GEMM of ours, for a CPU
 * that cannot run be, or when memory runs out. */
double pl_l1_ceiling(pl_gemm_backend be, int pairs, double *q1, double *q3);

/* Floating-point operations of one training step, as executed by parlstm
 * and as a standard unfolded implementation counts them. */
double pl_step_flops_executed(const pl_config *cfg, int T, int batch);
double pl_step_flops_model(const pl_config *cfg, int T, int batch);

/* The kernel set that pl_gemm_name calls name, or -1 when none is. */
int pl_gemm_by_name(const char *name);

/* What auto runs on a CPU with (1) or without (0) AVX-512 (F, DQ, BW, VL)
 * and AVX2 with FMA: pl_gemm_resolve's choice, apart from the CPU it runs
 * on, so that a test can ask about CPUs it is not on. */
pl_gemm_backend pl_gemm_auto_for(int has_avx512, int has_avx2);

/* The median of v[0..n) (n >= 1), sorting v in place; the smallest and
 * largest into *lo and *hi when they are not NULL. */
double pl_median_sorted(double *v, int n, double *lo, double *hi);

/* The data caches of one core, in bytes (0: the system does not say). */
typedef struct {
    long l1d, l2;
} pl_cpu_caches;
pl_cpu_caches pl_cpu_cache_sizes(void);
/* How kernel set be blocks its GEMM on this CPU: rows of B per chunk that
 * stays in L1 (*kc), and the size of A in bytes above which it goes chunk
 * by chunk rather than panel by panel (*a_limit); both 0 for the sets
 * whose GEMM is not ours (naive, blas) or that this CPU cannot run. */
void pl_gemm_blocking(pl_gemm_backend be, int *kc, long *a_limit);
/* Set be's chunks beyond kc (gemm.c, pl_gemm_chunk_rows), both 0 for the
 * sets whose GEMM is not ours or that this CPU cannot run: one_chunk, the
 * forward products (A one block read by rows) in one chunk while A and a
 * 64-column panel of B fit the rows limit; long_blocks, the products of
 * several blocks with A read by rows (dG W^T) in chunks of twice kc,
 * unless they warm the backward pass. */
typedef struct {
    int one_chunk, long_blocks;
} pl_gemm_rules;
pl_gemm_rules pl_gemm_rules_of(pl_gemm_backend be);
/* The same limit for an A read by rows (the forward and recurrent
 * products), from *a_limit: 7/8 of L2 where a_limit is half of it. */
long pl_gemm_rows_limit(long a_limit);

/* The OPENBLAS_CORETYPE this CPU deserves when OpenBLAS misdetects it
 * (e.g. "SkylakeX" for an AVX-512 CPU that OpenBLAS calls "Prescott"), or
 * NULL when OpenBLAS already chose well or the variable is set. */
const char *pl_blas_better_coretype(void);

#endif
