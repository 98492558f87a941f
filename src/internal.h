/* Declarations shared inside libparlstm (not part of the public API). */
#ifndef PARLSTM_INTERNAL_H
#define PARLSTM_INTERNAL_H

#include <string.h>

#include "parlstm.h"

/* ---- what the library shares inside itself and with its tests (moved
 * from the public header: a library user needs none of it) */

/* Sets err (when not NULL) and returns code. printf-style message. */
pl_status pl_fail(pl_error *err, pl_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* IDX files */
#define PL_IDX_IMAGES_MAGIC 2051u /* 0x00000803: unsigned byte, 3 dims */
#define PL_IDX_LABELS_MAGIC 2049u /* 0x00000801: unsigned byte, 1 dim */

typedef struct {
    uint32_t magic;  /* PL_IDX_IMAGES_MAGIC or PL_IDX_LABELS_MAGIC */
    size_t n;        /* items */
    int rows, cols;  /* images only: each item is (rows, cols); labels: 1, 1 */
    uint8_t *data;   /* (n, rows, cols) or (n), owned */
} pl_idx;

/* Reads an IDX file of the expected magic through zlib (raw or gzip).
 * When path does not exist and path.gz does, reads that. */
pl_status pl_idx_read(const char *path, uint32_t expect_magic, pl_idx *out,
                      pl_error *err);
void pl_idx_free(pl_idx *idx);

void *pl_alloc_aligned(size_t bytes);
int pl_cpu_has_avx2(void);

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
} pl_gemm_op;

/* ---- LSTM */

/* Weights prepared once per step from the flat parameters and shared
 * read-only by all workers (internal gate-interleaved, padded layout; the
 * input projection is folded into the gate weights). */
typedef struct pl_packed pl_packed;
/* A worker's private activations and scratch for up to cap rows. */
typedef struct pl_ws pl_ws;

pl_packed *pl_packed_create(const pl_config *cfg, pl_gemm_backend be);
void pl_packed_free(pl_packed *pk);
/* Prepares part `part` of `parts` (callable concurrently for every part). */
void pl_packed_update(pl_packed *pk, const float *params, int part, int parts);

pl_ws *pl_ws_create(const pl_config *cfg, int T, int cap, int threads,
                    pl_gemm_backend be);
void pl_ws_free(pl_ws *ws);
size_t pl_ws_bytes(const pl_ws *ws);
/* Loads rows b < n (n <= cap): item idx[b] of ds, pixels scaled by 1/255,
 * and its label. */
void pl_ws_load_u8(pl_ws *ws, const pl_dataset *ds, const uint32_t *idx, int n);
/* Loads rows from floats x (n, T, D) and labels (n). */
void pl_ws_load_f32(pl_ws *ws, const float *x, const uint8_t *labels, int n);

/* Forward over the loaded rows. Returns the summed cross-entropy (not
 * divided); *correct = rows whose arg-max logit equals the label. logits
 * (n, C) may be NULL. */
double pl_lstm_forward(pl_ws *ws, const pl_packed *pk, const float *params,
                       int *correct, float *logits);
/* Backward after pl_lstm_forward: writes (assigns) the gradient of
 * (summed loss / norm) into grad (n_params, same layout as params). */
void pl_lstm_backward(pl_ws *ws, const pl_packed *pk, const float *params,
                      float norm, float *grad);

/* The reference: plain loops in double, canonical layout, no folding.
 * x (n, T, D). Returns the summed loss / norm; grad (n_params) and
 * logits (n, C) may be NULL. */
double pl_ref_loss_grad(const pl_config *cfg, const float *params,
                        const float *x, const uint8_t *labels, int n, int T,
                        double norm, double *grad, double *logits);

/* Sets where the workspace adds its phase times (seconds); NULL = off. */
void pl_ws_set_profile(pl_ws *ws, double *seconds /* [PL_NPHASE] */);

/* ---- optimiser */

/* Learning rate of step `step` (0-based) of `total`. */
float pl_lr_at(pl_schedule s, float base, long step, long total);
/* Adam with bias correction on params[0..n); t = 1-based step number. */
void pl_adam(float *params, const float *grad, float *m, float *v, size_t n,
             float lr, float beta1, float beta2, float eps, long t,
             float grad_scale);
double pl_sum_squares(const float *x, size_t n);

/* ---- thread pool */

typedef struct pl_pool pl_pool;
typedef void (*pl_pool_fn)(void *ctx, int worker);

/* n workers: the calling thread is worker 0, n - 1 threads are created
 * once and wait on a condition variable between runs. */
pl_pool *pl_pool_create(int n, pl_error *err);
void pl_pool_free(pl_pool *p);
int pl_pool_size(const pl_pool *p);
/* Runs fn(ctx, w) on every worker w and returns when all are done. */
void pl_pool_run(pl_pool *p, pl_pool_fn fn, void *ctx);
/* A barrier among the workers of a run (call from inside fn). */
void pl_pool_barrier(pl_pool *p);

/* The epoch generator state that pl_epoch_order uses. */
void pl_epoch_rng(uint64_t seed, long epoch, pl_rng *r);

#define PL_UNIT_BLOCK 16 /* hidden units per gate panel (one AVX-512 vector) */
#define PL_PANEL 64      /* columns per gate panel: [i f g o] x 16 units */
/* Gate weights (bytes, all layers) above which the automatic choice puts
 * OpenMP threads before workers (pl_resolve_parallelism). */
#define PL_L2_WEIGHTS (1024.0 * 1024.0)

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

/* Adam's constants for one step (see pl_adam). */
typedef struct {
    float step, b1, b2, b1c, b2c, rbc2, eps, scale;
} pl_adam_k;
pl_adam_k pl_adam_constants(float lr, float beta1, float beta2, float eps, long t,
                            float grad_scale);

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
    /* rows of B per L1 chunk of our GEMM, for a 48 KiB L1 (pl_gemm_kc
     * fits it to this CPU's); 0 for sets whose GEMM is not ours */
    int gemm_kc;
} pl_kernels;

/* The set for be (AUTO resolved), or NULL when this CPU cannot run it. */
const pl_kernels *pl_kernels_of(pl_gemm_backend be);
/* pl_gemm through a set (the empty cases handled here). */
void pl_gemm_with(const pl_kernels *k, const pl_gemm_op *op);

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
} pl_tile;

typedef struct {
    int mr, kc;
    void (*tile)(const pl_tile *t);
} pl_gemm_isa;

void pl_gemm_blocked(const pl_gemm_isa *isa, const pl_gemm_op *op);
/* The driver's blocking for this CPU (gemm.c): the chunk rows of a set
 * whose own are set_kc on an L1 data cache of l1d bytes, and the size of A
 * above which it goes chunk by chunk on an L2 of l2 bytes (0: unknown). */
int pl_gemm_kc(int set_kc, long l1d);
long pl_gemm_a_limit(long l2);

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

/* Inverted dropout with probability p between layers for the next
 * forward/backward (0: off); key identifies the masks (the run's seed and
 * the step): each row's mask is a function of key and its item in the data
 * set (pl_ws_load_u8's idx; pl_ws_load_f32: its row). */
void pl_ws_set_dropout(pl_ws *ws, float p, uint64_t key);
/* pl_ref_loss_grad with that dropout (rows' items: their index). */
double pl_ref_loss_grad_dropout(const pl_config *cfg, const float *params, const float *x,
                                const uint8_t *labels, int n, int T, double norm,
                                double *grad, double *logits, float drop, uint64_t key);

/* The dropout multiplier of unit u of row item `id` at step t between
 * layers l and l + 1: 0 with probability p, else 1 / (1 - p); a hash of
 * (key, l, t, id, u), so the same wherever and whenever it is computed. */
static inline uint32_t pl_dropout_hash(uint64_t key, int l, int t, uint32_t id, int u)
{
    uint64_t h = (key ^ (((uint64_t)id << 32 | (uint32_t)(l * 65536 + t)) *
                         0x9E3779B97F4A7C15ull)) +
                 (uint64_t)u * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
    h *= 0x94D049BB133111EBull;
    h ^= h >> 29;
    return (uint32_t)(h >> 32);
}
static inline uint32_t pl_dropout_cut(float p) { return (uint32_t)((double)p * 4294967296.0); }

/* A model's description (pl_model_info) beyond its config: the image
 * shape and the sequence mode agree with T and the input width, permuted
 * is 0 or 1, dropout in [0, 1). Otherwise err says "PATH: WHAT: why". */
pl_status pl_model_shape_check(const char *path, const char *what, const pl_model_info *m,
                               pl_error *err);
/* rows = cols = 0 in rows mode means the shape T x D: fills it in. */
void pl_model_info_complete(pl_model_info *m);

/* Bytes a workspace of cap rows needs (before creating it). */
double pl_ws_estimate(const pl_config *cfg, int T, int cap, int threads);

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

/* q (rows, cols) row-major, rows <= cols: orthonormalises the rows in place
 * (LAPACK QR of q^T, signs as Gram-Schmidt would give them); 0 or -1. */
int pl_orthonormalise_rows(double *q, int rows, int cols);

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

/* 16-accumulator dot product (vectorisable, fixed summation order). */
float pl_dot(const float *a, const float *b, size_t n);

/* ---- dist.c: what the trainer and the checkpoints exchange between ranks.
 * Every call is collective (all ranks, same order) and returns at once with
 * one rank. Slices: rank r's is [offset[r], offset[r + 1]) of a float array. */
void pl_dist_sum(double *buf, size_t n);      /* element-wise sum over ranks, in place */
int pl_dist_local_ranks(void);                /* ranks on this host (1 without MPI) */
long pl_dist_min(long value);                 /* the smallest over ranks */
void pl_dist_allgather(float *buf, const size_t *offset /* (R + 1) */); /* in place */
/* rank r's `mine` (its slice's length) into all[offset[r] ...] on rank 0 */
void pl_dist_gather(const float *mine, float *all, const size_t *offset);

/* Outstanding point-to-point transfers of floats (MPI_Isend/Irecv): posted,
 * progressed while computing, waited for. At most max at a time. */
typedef struct pl_xfer pl_xfer;
pl_xfer *pl_xfer_create(int max);
void pl_xfer_free(pl_xfer *x);
void pl_xfer_send(pl_xfer *x, const float *buf, size_t n, int to, int tag);
void pl_xfer_recv(pl_xfer *x, float *buf, size_t n, int from, int tag);
int pl_xfer_progress(pl_xfer *x); /* lets them advance; 1 when all are done */
void pl_xfer_wait(pl_xfer *x);    /* all done; the set is empty again */

/* ---- trainer.c: the step's fixed parameter chunks (norms, Adam, rank
 * slices): chunk c is [chunk[c], chunk[c + 1]) of np parameters, whole
 * multiples of 16 but the last. Rank q of R owns chunks [schunk[q],
 * schunk[q + 1]), the parameters [soff[q], soff[q + 1]). */
#define PL_CHUNKS 256
void pl_chunks(size_t np, size_t *chunk /* (PL_CHUNKS + 1) */);
void pl_rank_slices(const size_t *chunk, int R, int *schunk /* (R + 1) */,
                    size_t *soff /* (R + 1) */);

/* ---- trainer.c: the fixed summation tree of --deterministic over S shard
 * gradients. Node (lo, size): size a power of two, lo a multiple of it, the
 * sum of shards [lo, min(lo + size, S)) = left child + right child (when
 * the right one holds a shard); the root is (0, pl_tree_root(S)). */
int pl_tree_root(int S);
/* Cuts shards [lo, hi) into the fewest whole nodes, in order: node k is
 * (blo[k], bsize[k]) and covers [blo[k], bhi[k]). Returns how many (at most
 * 2 log2 S). */
int pl_tree_blocks(int lo, int hi, int S, int *blo, int *bhi, int *bsize);
/* Evaluates node (lo, size) over n floats from nodes already summed: have[k]
 * = h when p[k] holds the node covering [k, h) (0 otherwise). Adds in place
 * into the leftmost node's floats and returns them. */
float *pl_tree_node(float *const *p, const int *have, int lo, int size, int S, size_t n);
/* Every rank: this rank's slice of the Adam moments into m and v (n_params
 * each) on rank 0 (NULL elsewhere). */
void pl_trainer_gather_moments(pl_trainer *tr, float *m, float *v);

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
