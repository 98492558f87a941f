/* The model's forward and backward over a worker's shard (lstm.c), its
 * reference (lstm_ref.c), dropout masks and initialisation helpers. */
#ifndef PARLSTM_LSTM_H
#define PARLSTM_LSTM_H

#include "kernels.h"

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
/* With bf16 operands (fp32 after pl_packed_create): keeps the gate
 * weights also in bf16 pairs, which pl_packed_pair makes after every part
 * of pl_packed_update is done (again callable concurrently for every part;
 * nothing with fp32). */
pl_status pl_packed_set_precision(pl_packed *pk, pl_precision p, pl_error *err);
void pl_packed_pair(pl_packed *pk, int part, int parts);

pl_ws *pl_ws_create(const pl_config *cfg, int T, int cap, int threads,
                    pl_gemm_backend be);
void pl_ws_free(pl_ws *ws);
size_t pl_ws_bytes(const pl_ws *ws);
/* Loads rows b < n (n <= cap): item idx[b] of ds (image pixels scaled by
 * 1/255, real values as they are) and its label. */
void pl_ws_load(pl_ws *ws, const pl_dataset *ds, const uint32_t *idx, int n);
/* Loads rows from floats x (n, T, D) and labels (n), every row T steps. */
void pl_ws_load_f32(pl_ws *ws, const float *x, const uint8_t *labels, int n);
/* The same with each row's length (1..T; NULL: T): steps at or beyond a
 * row's length are not read. */
void pl_ws_load_f32_lengths(pl_ws *ws, const float *x, const uint8_t *labels,
                            const int32_t *lengths, int n);

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
/* The operands of the gate products, forward and backward (fp32 after
 * pl_ws_create). */
void pl_ws_set_precision(pl_ws *ws, pl_precision p);

/* A core's L2 as the weight-gradient order assumes it (wgrad_in_loop). */
#define PL_L2_WEIGHTS (1024.0 * 1024.0)
/* Whether the weight gradient of a layer with K inputs ([in, 1, h]) and Hp
 * units is summed step by step inside the backward loop (1), or after it
 * over all steps in calls of pl_wgrad_rows rows (0); see lstm.c. */
int pl_wgrad_in_loop(int K, int Hp);
/* Rows of [in_t, 1, h_{t-1}] per call of the weight-gradient GEMM when it
 * runs after the backward loop: two of the driver's B chunks when the set
 * has one (kc rows, pl_gemm_blocking; its C passes over dWf once a chunk,
 * and 256 rows cut into chunks of 86 on a 112-row chunk), else
 * WGRAD_ROWS (BLAS, whose sums depend on the calls' shape; bf16, whose
 * chunk is 256 rows). On our sets any even count gives the same bits: the
 * rows are summed in order, bf16's pairs start at even rows.
 * bench/gemm-alone times the same calls. */
#ifndef WGRAD_ROWS
#define WGRAD_ROWS 256
#endif
int pl_wgrad_rows(int kc, int bf16);
/* pl_resolve_parallelism for weights of weight_bytes each as the products
 * read them: 4 in fp32, 2 in bf16. */
void pl_resolve_parallelism_bytes(const pl_config *cfg, int weight_bytes, int batch, int cpus,
                                  int *workers, int *threads);

/* Inverted dropout with probability p between layers for the next
 * forward/backward (0: off); key identifies the masks (the run's seed and
 * the step): each row's mask is a function of key and its item in the data
 * set (pl_ws_load's idx; pl_ws_load_f32: its row). */
void pl_ws_set_dropout(pl_ws *ws, float p, uint64_t key);
/* pl_ref_loss_grad with that dropout (rows' items: their index). */
double pl_ref_loss_grad_dropout(const pl_config *cfg, const float *params, const float *x,
                                const uint8_t *labels, int n, int T, double norm,
                                double *grad, double *logits, float drop, uint64_t key);
/* The same, each row s run alone over its first lengths[s] steps (1..T;
 * lengths NULL: T), the output on its last one: what PyTorch's packed
 * sequences compute. */
double pl_ref_loss_grad_lengths(const pl_config *cfg, const float *params, const float *x,
                                const uint8_t *labels, const int32_t *lengths, int n, int T,
                                double norm, double *grad, double *logits, float drop,
                                uint64_t key);

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

/* Bytes a workspace of cap rows needs (before creating it). */
double pl_ws_estimate(const pl_config *cfg, int T, int cap, int threads);

/* q (rows, cols) row-major, rows <= cols: orthonormalises the rows in place
 * (LAPACK QR of q^T, signs as Gram-Schmidt would give them); 0 or -1. */
int pl_orthonormalise_rows(double *q, int rows, int cols);

#endif
