/* The parameter chunks, the ranks' slices and the summation tree of
 * --deterministic (reduce.c): pure functions of the sizes. */
#ifndef PARLSTM_REDUCE_H
#define PARLSTM_REDUCE_H

#include "common.h"

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

#endif
