/* The kernels: the GEMM operation, the cell's and Adam's arguments, the
 * kernel-set table and the blocking driver our GEMMs share. */
#ifndef PARLSTM_KERNELS_H
#define PARLSTM_KERNELS_H

#include "common.h"

/* count pieces of bytes each, the first at p, stride bytes apart. */
typedef struct {
    const void *p;
    size_t bytes, stride;
    int count;
} pl_span;

/* Memory a caller reads after a product (pl_gemm_op.warm): n spans. */
typedef struct {
    pl_span s[4];
    int n;
} pl_warm;

/* One GEMM over blocks of the inner dimension:
 *   C(M, N) (+)= sum_{blk < nb} A_blk(M, kb) * B_blk(kb, N)
 *   A_blk(i, k) = a[blk * a_bs + i * a_rs + k * a_cs]
 *   B_blk(k, j) = b[blk * b_bs + k * ldb + col(j, b_ps)]
 *   C(i, j)     = c[i * ldc + col(j, c_ps)]
 *   col(j, ps)  = (j / 64) * ps + j % 64, with ps = 0 meaning 64 (plain
 *                 columns); otherwise the columns lie in panels of 64 that
 *                 are ps floats apart (the gate-panel layouts of lstm.c)
 * accumulate = 0 assigns, 1 adds. Either a_rs or a_cs must be 1. */
typedef struct {
    int M, N, nb, kb;
    const float *a;
    size_t a_rs, a_cs, a_bs;
    const float *b;
    size_t ldb, b_bs;
    float *c;
    size_t ldc;
    int accumulate;
    size_t b_ps, c_ps;
    int bf16; /* 1: A and B rounded to bf16, sums in fp32 (pl_gemm_bf16_soft) */
    /* With bf16, optionally: B already rounded, in pairs of rows (its
     * blocks contiguous, b_bs = kb ldb): pair p of column j, bf16 B(2p, j)
     * in the low half and B(2p + 1, j) in the high half (0 past K), at
     * b16[col(j, b16_ps) + 64 p], readable up to 64 entries past the last.
     * The kernels that convert B use it instead (pl_bf16_pairs makes it);
     * the bits are the same either way. */
    const uint32_t *b16;
    size_t b16_ps;
    /* Optionally (NULL: none), what the caller reads next: the fp32 driver
     * (pl_gemm_blocked) has each tile prefetch a share of it, so that it
     * arrives while the product computes. A hint only. */
    const pl_warm *warm;
} pl_gemm_op;

#define PL_UNIT_BLOCK 16 /* hidden units per gate panel (one AVX-512 vector) */
#define PL_PANEL 64      /* columns per gate panel: [i f g o] x 16 units */

/* The LSTM cell over one time step, for rows [0, n) and gate panels
 * [p0, p1). Buffers as in pl_ws (see lstm.c):
 *   g      (n, 64) rows of panel p at g + p * g_ps, row stride 64:
 *          pre-activations in, activations out (forward);
 *          activations in, gate gradients out (backward)
 *   c, tc  (n, Hp) cell state and tanh(cell) at this step
 *   c_prev (n, Hp) previous cell state, NULL at t = 0
 *   h      h_t out, row stride h_rs (forward)
 *   h2     NULL, or a second copy of h_t (the next layer's input), row
 *          stride h2_rs
 *   dh, dc (n, Hp) gradient wrt h_t in; wrt c_t in, c_{t-1} out (backward) */
typedef struct {
    int n, p0, p1, Hp;
    float *g;
    size_t g_ps;
    float *c, *tc;
    const float *c_prev;
    float *h, *h2;
    size_t h_rs, h2_rs;
    const float *dh;
    float *dc;
} pl_cell_args;

/* Adam's constants for one step (see pl_adam); keep = 1 - lr x weight
 * decay multiplies the parameters before the step (1: no decay). */
typedef struct {
    float step, b1, b2, b1c, b2c, rbc2, eps, scale, keep;
} pl_adam_k;
pl_adam_k pl_adam_constants(float lr, float beta1, float beta2, float eps, long t,
                            float grad_scale, float weight_decay);
/* RMSprop's constants for the same kernels (optim.c) */
pl_adam_k pl_rmsprop_constants(float lr, float alpha, float eps, float grad_scale,
                               float weight_decay);

/* The blocking driver that our GEMM micro-kernels share (gemm.c). C is cut
 * into column panels of 64 and tiles of up to mr rows; the inner dimension
 * into chunks of at most kc rows of B (nb x kb <= kc in every tile; the
 * kc x 64 floats stay in L1 while every row tile passes over them), and
 * each tile prefetches its share of the chunk that comes next. Panels are
 * visited one after the other (a panel's C stays in L1 across chunks)
 * unless A is too large for L2, then chunk by chunk (each chunk of A is
 * read once for all panels). tile() computes one
 * tile: C(mr, cols) (+)= sum over nb blocks of A(mr, kb) B(kb, cols), with
 * cols <= 64 and the operands' strides as in pl_gemm_op. */
typedef struct {
    const float *a;
    size_t a_rs, a_cs, a_bs; /* a_cs = 1 (A row-major) or a_rs = 1 (transposed) */
    int nb, kb;
    const float *b;
    size_t ldb, b_bs;
    float *c;
    size_t ldc;
    int accumulate;
    int mr, cols;
    /* with pl_gemm_isa.spread, lines the tile prefetches along its k loop:
     * npf from pf (its share of the next B chunk), then npf2 from pf2 (its
     * share of pl_gemm_op.warm) */
    const char *pf, *pf2;
    int npf, npf2;
} pl_tile;

typedef struct {
    int mr, kc;
    void (*tile)(const pl_tile *t);
    /* 1: chunk by chunk, with A transposed (the weight gradient), a C
     * larger than half of L2 is prefetched a tile ahead (measured on avx2,
     * Zen 3: bench/results/prefetch-c.txt; avx512, Zen 5: the weight
     * gradient 0.82x at hidden 1024, avx512-prefetch-c.txt) */
    int prefetch_c;
    /* 1: the tile prefetches its share of the next B chunk itself, a line
     * every other k (pl_tile.pf), where the chunk's rows are contiguous,
     * then its share of pl_gemm_op.warm (pf2); 0: the driver prefetches
     * the B share before the tile and ignores warm */
    int spread;
    /* 1: the forward products (A one block read by rows) in one chunk
     * where A and a panel of B fit L2 (pl_gemm_chunk_rows) */
    int one_chunk;
    /* 1: the products of several blocks with A read by rows (dG W^T) in
     * chunks of twice kc, unless they warm spans (pl_gemm_chunk_rows) */
    int long_blocks;
} pl_gemm_isa;

/* ------------------------------------------------------------ kernel sets
 *
 * A kernel set is every hot kernel for one instruction set, chosen once
 * (pl_kernels_of) and called through this table; nothing else in the
 * library tests which set is in use. Each fast kernel has a plain twin in
 * the "naive" set (pl_gemm_naive, pl_cell_*_generic, pl_transpose16_generic,
 * pl_adam_generic) that the tests compare it with. */
typedef struct {
    pl_gemm_backend be;
    /* C (+)= A B as pl_gemm_op says; only called with M, N, nb, kb > 0 */
    void (*gemm)(const pl_gemm_op *op);
    void (*cell_forward)(const pl_cell_args *a);
    void (*cell_backward)(const pl_cell_args *a);
    /* dst[i * ldd + u] = src[u * lds + i] for i, u < 16 */
    void (*transpose16)(const float *src, size_t lds, float *dst, size_t ldd);
    /* bitwise equal to pl_adam_generic */
    void (*adam)(float *params, const float *grad, float *m, float *v, size_t n,
                 const pl_adam_k *k);
    /* independent FMA chains of the set's vector width, for the peak:
     * returns a value that depends on every chain, *flops the work done;
     * NULL = the widest this CPU has (sets whose GEMM is not ours) */
    float (*fma_loop)(long iters, double *flops);
    /* our GEMM's micro-kernel and the rules of its blocking (its kc for a
     * 48 KiB L1, which pl_gemm_kc fits to this CPU's); NULL for sets whose
     * GEMM is not ours */
    const pl_gemm_isa *gemm_isa;
    /* the GEMM for ops with bf16 set: the AVX512_BF16 kernel where the
     * set is avx512 and the CPU has it, else the software path; the two
     * give the same bits */
    void (*gemm_bf16)(const pl_gemm_op *op);
} pl_kernels;

/* The set for be (AUTO resolved), or NULL when this CPU cannot run it. */
const pl_kernels *pl_kernels_of(pl_gemm_backend be);
/* pl_gemm through a set (the empty cases handled here). */
void pl_gemm_with(const pl_kernels *k, const pl_gemm_op *op);

/* The driver, for the micro-kernel and rules of isa. */
void pl_gemm_blocked(const pl_gemm_isa *isa, const pl_gemm_op *op);
/* The driver's blocking for this CPU (gemm.c): the chunk rows of a set
 * whose own are set_kc on an L1 data cache of l1d bytes, and the size of A
 * above which it goes chunk by chunk on an L2 of l2 bytes (0: unknown). */
int pl_gemm_kc(int set_kc, long l1d);
long pl_gemm_a_limit(long l2);
/* The chunk rows the driver uses for op, given the fitted kc and a_limit
 * (longer for the products isa->one_chunk and long_blocks cover: gemm.c) */
int pl_gemm_chunk_rows(const pl_gemm_isa *isa, const pl_gemm_op *op, int kc, long a_limit);
/* Both for this CPU's caches: what the driver runs with. */
void pl_gemm_fit(int set_kc, int *kc, long *a_limit);

/* The portable kernels (cell.c, optim.c, gemm.c). */
void pl_gemm_naive(const pl_gemm_op *op);
void pl_gemm_blas(const pl_gemm_op *op);
void pl_cell_forward_generic(const pl_cell_args *a);
void pl_cell_backward_generic(const pl_cell_args *a);
void pl_transpose16_generic(const float *src, size_t lds, float *dst, size_t ldd);
void pl_adam_generic(float *params, const float *grad, float *m, float *v, size_t n,
                     const pl_adam_k *k);
float pl_fma_loop_scalar(long iters, double *flops);

/* Each instruction set's table lives in its own file, compiled with target
 * attributes for that set only (never -march), its kernels static there:
 * kernels_avx512.c and kernels_avx2.c on x86-64, kernels_neon.c on
 * AArch64. */
#if defined(__x86_64__)
extern const pl_kernels pl_kernels_avx512, pl_kernels_avx2;
#endif
#if defined(__aarch64__)
extern const pl_kernels pl_kernels_neon;
#endif

/* ------------------------------------------------------------------ bf16
 *
 * bf16 is the upper half of an fp32 (8 exponent bits, 7 of mantissa). The
 * rounding is AVX512_BF16's vcvtneps2bf16: to nearest, ties to even;
 * subnormal inputs become zero of their sign (DAZ); a NaN stays a NaN of
 * its sign, made quiet. pl_gemm_bf16_soft defines the products:
 *   C(i, j) = s_P with s_0 = daz(accumulate ? C(i, j) : 0),
 *   s_{p+1} = ftz(ftz(s_p + a_{2p+1} b_{2p+1}) + a_{2p} b_{2p})
 * over the pairs p of the inner dimension (K odd: a zero pair member last),
 * a_k = bf16(A(i, k)), b_k = bf16(B(k, j)); each product of two bf16 is
 * exact in fp32, each sum rounded to nearest; ftz turns a subnormal sum
 * into zero of its sign. That is what one vdpbf16ps computes per lane
 * (Intel's definition, the odd element first; measured bit for bit on
 * Zen 5), so the AVX512_BF16 kernel gives the same bits. */
uint16_t pl_bf16_round(float x);
float pl_bf16_float(uint16_t h);
void pl_gemm_bf16_soft(const pl_gemm_op *op);
/* Rows [0, rows) of a panel of 64 columns (row stride 64) as bf16 pairs:
 * out[p * 64 + j] for p < ceil(rows / 2) (pl_gemm_op.b16's layout). */
void pl_bf16_pairs(const float *panel, int rows, uint32_t *out);
#if defined(__x86_64__)
void pl_gemm_bf16_avx512(const pl_gemm_op *op); /* CPUs with AVX512_BF16 only */
float pl_bf16_dot_loop(long iters, double *flops); /* its peak loop, likewise */
#endif
/* The calling thread's scratch buffer `slot` (0 to 3) of at least `bytes`
 * bytes, 64-byte aligned: kept between calls, grown when too small, freed
 * when the thread ends (NULL when out of memory). */
void *pl_thread_scratch(int slot, size_t bytes);

#endif
