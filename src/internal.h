/* Declarations shared inside libparlstm (not part of the public API). */
#ifndef PARLSTM_INTERNAL_H
#define PARLSTM_INTERNAL_H

#include <string.h>

#include "parlstm.h"

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
 *   dh, dc (n, Hp) gradient wrt h_t in; wrt c_t in, c_{t-1} out (backward) */
typedef struct {
    int n, p0, p1, Hp;
    float *g;
    size_t g_ps;
    float *c, *tc;
    const float *c_prev;
    float *h;
    size_t h_rs;
    const float *dh;
    float *dc;
} pl_cell_args;

void pl_cell_forward_generic(const pl_cell_args *a);
void pl_cell_backward_generic(const pl_cell_args *a);
void pl_cell_forward_avx512(const pl_cell_args *a);
void pl_cell_backward_avx512(const pl_cell_args *a);

/* Adam's constants for one step (see pl_adam). */
typedef struct {
    float step, b1, b2, b1c, b2c, rbc2, eps, scale;
} pl_adam_k;
void pl_adam_avx512(float *params, const float *grad, float *m, float *v, size_t n,
                    const pl_adam_k *k);
void pl_adam_generic(float *params, const float *grad, float *m, float *v, size_t n,
                     const pl_adam_k *k);

float pl_fma_loop_avx512(long iters, double *flops);
float pl_fma_loop_avx2(long iters, double *flops);

void pl_gemm_naive(const pl_gemm_op *op);
void pl_gemm_blas(const pl_gemm_op *op);
void pl_gemm_avx512(const pl_gemm_op *op);

/* ---- little-endian fields of the file formats (models, checkpoints): a
 * cursor that advances over the bytes it puts or gets. The formats are
 * written in the host's order, which must be little-endian. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "parlstm's file formats are little-endian; port the pl_put/pl_get helpers first"
#endif
typedef struct {
    unsigned char *p;
} pl_wcursor;
typedef struct {
    const unsigned char *p;
} pl_rcursor;

static inline void pl_put_bytes(pl_wcursor *c, const void *v, size_t n)
{
    memcpy(c->p, v, n);
    c->p += n;
}
static inline void pl_put_u32(pl_wcursor *c, uint32_t v) { pl_put_bytes(c, &v, 4); }
static inline void pl_put_u64(pl_wcursor *c, uint64_t v) { pl_put_bytes(c, &v, 8); }
static inline void pl_put_f32(pl_wcursor *c, float v) { pl_put_bytes(c, &v, 4); }
static inline void pl_get_bytes(pl_rcursor *c, void *v, size_t n)
{
    memcpy(v, c->p, n);
    c->p += n;
}
static inline uint32_t pl_get_u32(pl_rcursor *c) { uint32_t v; pl_get_bytes(c, &v, 4); return v; }
static inline uint64_t pl_get_u64(pl_rcursor *c) { uint64_t v; pl_get_bytes(c, &v, 8); return v; }
static inline float pl_get_f32(pl_rcursor *c) { float v; pl_get_bytes(c, &v, 4); return v; }

/* Writes len bytes to path atomically (see pl_write_guard); guard may be
 * NULL. */
pl_status pl_write_atomic(const char *path, const void *data, size_t len,
                          pl_write_guard *guard, pl_error *err);

/* Reads a whole regular file of min_len..max_len bytes into *data (free
 * it); what ("model", "checkpoint") names it in errors. */
pl_status pl_read_file(const char *path, const char *what, size_t min_len, size_t max_len,
                       unsigned char **data, size_t *len, pl_error *err);

/* After a file's magic and version: the config it declares is valid, it
 * holds n parameters, it is exactly head + copies x 4n + 4 bytes long, and
 * the CRC32 in its last 4 bytes matches the rest. */
pl_status pl_check_payload(const char *path, const char *what, const pl_config *cfg,
                           uint64_t n, size_t head, int copies, const unsigned char *buf,
                           size_t len, pl_error *err);

/* Bytes a workspace of cap rows needs (before creating it). */
double pl_ws_estimate(const pl_config *cfg, int T, int cap);

/* Flush-to-zero and denormals-are-zero on the calling thread (see cpu.c);
 * returns the previous mode for pl_fp_fast_leave. Every thread that
 * computes brackets its work with these two. */
unsigned long pl_fp_fast_enter(void);
void pl_fp_fast_leave(unsigned long old);

/* 16-accumulator dot product (vectorisable, fixed summation order). */
float pl_dot(const float *a, const float *b, size_t n);

static inline size_t pl_round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

/* [lo, hi) of `total` items for part `part` of `parts` (sizes differ by at
 * most one, earlier parts larger). */
static inline void pl_split(long total, int part, int parts, long *lo, long *hi)
{
    long base = total / parts, extra = total % parts;
    *lo = part * base + (part < extra ? part : extra);
    *hi = *lo + base + (part < extra ? 1 : 0);
}

#endif
