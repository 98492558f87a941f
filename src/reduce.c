/* The fixed summation tree of --deterministic, the parameter chunks and
 * the ranks' slices of them: pure functions of the sizes, which the tests
 * call directly. */
#include "reduce.h"

#define NCHUNK PL_CHUNKS /* fixed parameter chunks (norm and update) */

/* ------------------------------------------- the fixed summation tree */

/* Under --deterministic the S shard gradients of a batch are summed in one
 * binary tree, whatever the ranks, workers and threads: node (lo, size),
 * size a power of two and lo a multiple of it, is the sum of shards
 * [lo, min(lo + size, S)): its left child plus its right child when the
 * right one holds any shard. The root is (0, pl_tree_root(S)). */
int pl_tree_root(int S)
{
    int P = 1;
    while (P < S)
        P *= 2;
    return P;
}

int pl_tree_blocks(int lo, int hi, int S, int *blo, int *bhi, int *bsize)
{
    const int P = pl_tree_root(S);
    int n = 0;
    while (lo < hi) {
        int size = 1;
        /* grow while the node stays aligned, inside [lo, hi), and its right
         * half holds a shard */
        while (2 * size <= P && lo % (2 * size) == 0 && lo + size < S &&
               (lo + 2 * size < S ? lo + 2 * size : S) <= hi)
            size *= 2;
        blo[n] = lo;
        bhi[n] = lo + size < S ? lo + size : S;
        bsize[n] = size;
        lo = bhi[n++];
    }
    return n;
}

float *pl_tree_node(float *const *p, const int *have, int lo, int size, int S, size_t n)
{
    int hi = lo + size < S ? lo + size : S;
    if (have[lo] == hi || size == 1)
        return p[lo];
    int half = size / 2;
    float *left = pl_tree_node(p, have, lo, half, S, n);
    if (lo + half < S) {
        const float *right = pl_tree_node(p, have, lo + half, half, S, n);
        for (size_t i = 0; i < n; i++)
            left[i] += right[i];
    }
    return left;
}

/* ------------------------------------------------------ the rank plan */

void pl_chunks(size_t np, size_t *chunk)
{
    for (int c = 0; c <= NCHUNK; c++)
        chunk[c] = c == NCHUNK ? np : (np * (size_t)c / NCHUNK) & ~(size_t)15;
}

void pl_rank_slices(const size_t *chunk, int R, int *schunk, size_t *soff)
{
    for (int q = 0; q <= R; q++) {
        long lo, hi;
        pl_split(NCHUNK, q < R ? q : R - 1, R, &lo, &hi);
        schunk[q] = (int)(q < R ? lo : hi);
        soff[q] = chunk[schunk[q]];
    }
}
