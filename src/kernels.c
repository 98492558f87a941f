/* Kernel sets: which one this CPU runs, and the one place that chooses.
 *
 * A set (pl_kernels, internal.h) is the GEMM, the LSTM cell forward and
 * backward, the 16 x 16 transpose, Adam and the FMA calibration loop of one
 * instruction set. The portable sets are defined here; each vector set is
 * defined in its own file, compiled with target attributes for that
 * instruction set only, so that one binary runs on any CPU of its
 * architecture and picks its kernels at run time:
 *
 *   naive    plain loops everywhere: the reference of every kernel
 *   blas     OpenBLAS sgemm; the plain cell, transpose and Adam
 *   avx512   kernels_avx512.c   x86-64 with AVX-512 F, DQ, BW and VL
 *   avx2     kernels_avx2.c     x86-64 with AVX2 and FMA
 *   neon     kernels_neon.c     AArch64 (NEON is part of the architecture)
 *
 * auto takes the first of avx512, avx2, neon that the CPU runs, else blas.
 *
 * As BLIS installs its reference kernels and then a CPU's tuned ones, a
 * set's table names only what it overrides; pl_kernels_of hands out the
 * set completed from the naive set. */
#include <pthread.h>
#include <string.h>

#include "kernels.h"
#include "tools.h"

static const pl_kernels naive_set = {
    .be = PL_GEMM_NAIVE,
    .gemm = pl_gemm_naive,
    .cell_forward = pl_cell_forward_generic,
    .cell_backward = pl_cell_backward_generic,
    .transpose16 = pl_transpose16_generic,
    .adam = pl_adam_generic,
    .fma_loop = NULL,
};

static const pl_kernels blas_set = {
    .be = PL_GEMM_BLAS,
    .gemm = pl_gemm_blas,
};

/* The overrides of each set (NULL: none on this architecture). */
static const pl_kernels *const overrides[PL_GEMM_LAST + 1] = {
    [PL_GEMM_NAIVE] = &naive_set,
    [PL_GEMM_BLAS] = &blas_set,
#if defined(__x86_64__)
    [PL_GEMM_AVX512] = &pl_kernels_avx512,
    [PL_GEMM_AVX2] = &pl_kernels_avx2,
#endif
#if defined(__aarch64__)
    [PL_GEMM_NEON] = &pl_kernels_neon,
#endif
};

static pl_kernels completed[PL_GEMM_LAST + 1];
static pthread_once_t completed_once = PTHREAD_ONCE_INIT;

/* Every set: its overrides, the naive set's kernels for the rest. */
static void complete_sets(void)
{
    for (int be = 0; be <= PL_GEMM_LAST; be++) {
        if (!overrides[be])
            continue;
        pl_kernels k = *overrides[be];
        if (!k.cell_forward)
            k.cell_forward = naive_set.cell_forward;
        if (!k.cell_backward)
            k.cell_backward = naive_set.cell_backward;
        if (!k.transpose16)
            k.transpose16 = naive_set.transpose16;
        if (!k.adam)
            k.adam = naive_set.adam;
        k.gemm_bf16 = pl_gemm_bf16_soft;
#if defined(__x86_64__)
        if (be == PL_GEMM_AVX512 && pl_cpu_has_avx512_bf16())
            k.gemm_bf16 = pl_gemm_bf16_avx512;
#endif
        completed[be] = k;
    }
}

const char *pl_gemm_name(pl_gemm_backend be)
{
    switch (be) {
    case PL_GEMM_AUTO: return "auto";
    case PL_GEMM_NAIVE: return "naive";
    case PL_GEMM_BLAS: return "blas";
    case PL_GEMM_AVX512: return "avx512";
    case PL_GEMM_AVX2: return "avx2";
    case PL_GEMM_NEON: return "neon";
    }
    return "?";
}

int pl_gemm_by_name(const char *name)
{
    for (int b = PL_GEMM_AUTO; b <= PL_GEMM_LAST; b++)
        if (strcmp(pl_gemm_name((pl_gemm_backend)b), name) == 0)
            return b;
    return -1;
}

const char *pl_gemm_requires(pl_gemm_backend be)
{
    switch (be) {
    case PL_GEMM_AVX512: return "an x86-64 CPU with AVX-512 (F, DQ, BW, VL)";
    case PL_GEMM_AVX2: return "an x86-64 CPU with AVX2 and FMA";
    case PL_GEMM_NEON: return "a 64-bit ARM (AArch64) CPU";
    default: return "any CPU";
    }
}

/* Whether this CPU runs set be (which this architecture has). */
static int cpu_runs(pl_gemm_backend be)
{
    switch (be) {
    case PL_GEMM_AVX512: return pl_cpu_has_avx512();
    case PL_GEMM_AVX2: return pl_cpu_has_avx2();
    default: return 1;
    }
}

const pl_kernels *pl_kernels_of(pl_gemm_backend be)
{
    be = pl_gemm_resolve(be);
    if ((int)be < 0 || be > PL_GEMM_LAST || !overrides[be] || !cpu_runs(be))
        return NULL;
    pthread_once(&completed_once, complete_sets);
    return &completed[be];
}

/* Set be's micro-kernel and rules, or NULL (not ours, or not on this CPU). */
static const pl_gemm_isa *isa_of(pl_gemm_backend be)
{
    const pl_kernels *k = pl_kernels_of(be);
    return k ? k->gemm_isa : NULL;
}

void pl_gemm_blocking(pl_gemm_backend be, int *kc, long *a_limit)
{
    const pl_gemm_isa *isa = isa_of(be);
    *kc = 0;
    *a_limit = 0;
    if (isa)
        pl_gemm_fit(isa->kc, kc, a_limit);
}

pl_gemm_rules pl_gemm_rules_of(pl_gemm_backend be)
{
    const pl_gemm_isa *isa = isa_of(be);
    return isa ? (pl_gemm_rules){isa->one_chunk, isa->long_blocks} : (pl_gemm_rules){0, 0};
}

int pl_gemm_available(pl_gemm_backend be)
{
    return pl_kernels_of(be) != NULL;
}

pl_gemm_backend pl_gemm_auto_for(int has_avx512, int has_avx2)
{
    if (has_avx512)
        return PL_GEMM_AVX512;
    if (has_avx2)
        return PL_GEMM_AVX2;
#if defined(__aarch64__)
    return PL_GEMM_NEON;
#else
    return PL_GEMM_BLAS;
#endif
}

pl_gemm_backend pl_gemm_resolve(pl_gemm_backend be)
{
    if (be != PL_GEMM_AUTO)
        return be;
    return pl_gemm_auto_for(pl_cpu_has_avx512(), pl_cpu_has_avx2());
}

const char *pl_gemm_auto_reason(void)
{
    switch (pl_gemm_resolve(PL_GEMM_AUTO)) {
    case PL_GEMM_AVX512: return "avx512: the CPU has AVX-512 F, DQ, BW and VL";
    case PL_GEMM_AVX2: return "avx2: the CPU has AVX2 and FMA but not AVX-512";
    case PL_GEMM_NEON: return "neon: an AArch64 CPU (NEON is part of the architecture)";
    default:
#if defined(__x86_64__)
        return "blas: the CPU has neither AVX-512 nor AVX2 with FMA";
#else
        return "blas: no kernels of ours for this architecture";
#endif
    }
}

void pl_gemm_with(const pl_kernels *k, const pl_gemm_op *op)
{
    if (op->M <= 0 || op->N <= 0)
        return;
    if (op->nb <= 0 || op->kb <= 0) { /* C = 0, or C unchanged */
        if (!op->accumulate)
            for (int i = 0; i < op->M; i++)
                for (int j = 0; j < op->N; j += 64) {
                    size_t ps = op->c_ps ? op->c_ps : 64;
                    memset(op->c + i * op->ldc + (size_t)(j / 64) * ps, 0,
                           sizeof(float) * (size_t)(op->N - j < 64 ? op->N - j : 64));
                }
        return;
    }
    if (op->bf16)
        k->gemm_bf16(op);
    else
        k->gemm(op);
}
