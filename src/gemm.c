/* The portable GEMMs of pl_gemm_op (kernels.h): plain loops (the
 * reference of every kernel set) and cblas_sgemm; OpenBLAS's view of the
 * CPU; the blocking driver that our micro-kernels share, sized from this
 * CPU's caches; and a dot product. Which set runs is chosen in kernels.c;
 * the FMA peak is measured in peak.c. */
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "kernels.h"
#include "tools.h"

/* OpenBLAS extensions, declared here so that cblas.h variants without
 * them still compile. */
extern char *openblas_get_corename(void);

const char *pl_blas_corename(void)
{
    const char *s = openblas_get_corename();
    return s ? s : "unknown";
}

const char *pl_blas_better_coretype(void)
{
    const char *set = getenv("OPENBLAS_CORETYPE");
    if (set && *set)
        return NULL;
    const char *core = pl_blas_corename();
    /* The generic fallbacks OpenBLAS picks for CPUs it does not know. */
    static const char *weak[] = {"Prescott", "Core2", "Penryn", "Dunnington",
                                 "Nehalem", "Atom", "Katmai", "Coppermine",
                                 "Northwood", "Banias", "Sandybridge"};
    int is_weak = 0;
    for (size_t i = 0; i < sizeof weak / sizeof *weak; i++)
        if (strcasecmp(core, weak[i]) == 0)
            is_weak = 1;
    if (!is_weak)
        return NULL;
    if (pl_cpu_has_avx512())
        return "SkylakeX";
    if (pl_cpu_has_avx2())
        return "Haswell";
    return NULL;
}

/* Offset of column j in a row of a panelled operand (see pl_gemm_op). */
static inline size_t col(int j, size_t ps)
{
    return (size_t)(j / 64) * (ps ? ps : 64) + (size_t)(j % 64);
}

void pl_gemm_naive(const pl_gemm_op *op)
{
    for (int i = 0; i < op->M; i++)
        for (int j = 0; j < op->N; j++) {
            float *cij = op->c + i * op->ldc + col(j, op->c_ps);
            float acc = op->accumulate ? *cij : 0.0f;
            for (int blk = 0; blk < op->nb; blk++) {
                const float *a = op->a + blk * op->a_bs + i * op->a_rs;
                const float *b = op->b + blk * op->b_bs + col(j, op->b_ps);
                for (int k = 0; k < op->kb; k++)
                    acc += a[k * op->a_cs] * b[k * op->ldb];
            }
            *cij = acc;
        }
}

/* cblas_sgemm per block and per fixed piece of columns: a 64-column panel
 * when C is panelled, else PL_UNIT_BLOCK columns counted from the op's
 * first column (callers start an op at a multiple of PL_UNIT_BLOCK inside
 * one of B's panels, so a piece never crosses one). OpenBLAS's value for a
 * column depends on the width of the call that computes it (which edge
 * kernel runs; it differs by core type), and threads cut C only at
 * multiples of these pieces (lstm.c, own_panels): with one call per piece,
 * the calls, and so the bits, are the same for any number of threads. */
void pl_gemm_blas(const pl_gemm_op *op)
{
    /* A_blk is (M, kb) with row stride a_rs, or its transpose stored (kb, M)
     * with row stride a_cs. */
    int trans = op->a_cs != 1 || (op->a_rs == 1 && op->M > 1 && op->kb == 1);
    int lda = (int)(trans ? op->a_cs : op->a_rs);
    if (lda < (trans ? op->M : op->kb))
        lda = trans ? op->M : op->kb; /* degenerate 1-wide cases */
    const int width = op->c_ps ? PL_PANEL : PL_UNIT_BLOCK;
    for (int j0 = 0; j0 < op->N; j0 += width) {
        int nj = op->N - j0 < width ? op->N - j0 : width;
        for (int blk = 0; blk < op->nb; blk++) {
            float beta = (blk == 0 && !op->accumulate) ? 0.0f : 1.0f;
            cblas_sgemm(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, CblasNoTrans,
                        op->M, nj, op->kb, 1.0f, op->a + blk * op->a_bs, lda,
                        op->b + blk * op->b_bs + col(j0, op->b_ps), (int)op->ldb, beta,
                        op->c + col(j0, op->c_ps), (int)op->ldc);
        }
    }
}

/* ------------------------------------------- the micro-kernels' driver */

/* The blocking follows this CPU's caches (pl_cpu_cache_sizes): a set's kc
 * (its B chunk of kc x 64 floats, tuned for a 48 KiB L1) shrinks, in steps
 * of 16 rows, to at most 7/8 of a smaller L1 (the rest for the tile's rows
 * of A and its C; on a 32 KiB L1, avx2's step ran 4-7% faster with 112 rows
 * than with 3/4's 96: bench/results/l1-chunk.txt); A goes chunk-major when
 * it outgrows half of L2 (512 KiB when L2 is unknown), or 7/8 of L2 when A
 * is read by rows (pl_gemm_rows_limit). Chunks and order only change the
 * speed: a tile sums the same products in the same order. A_L2 set at
 * build time (bench/ab-variants) overrides the detected limit. */
int pl_gemm_kc(int set_kc, long l1d)
{
    if (l1d <= 0)
        return set_kc;
    long fit = l1d * 7 / 8 / (64 * (long)sizeof(float)) / 16 * 16;
    fit = fit < 32 ? 32 : fit;
    return fit < set_kc ? (int)fit : set_kc;
}

long pl_gemm_a_limit(long l2)
{
#ifdef A_L2
    (void)l2;
    return A_L2;
#else
    return l2 > 0 ? l2 / 2 : 512 * 1024;
#endif
}

/* The limit for an A read by rows (the forward and recurrent products),
 * from a_limit (half of L2): 7/8 of L2. Its rows stay in L2 while B and C
 * stream past them a panel at a time. On a 512 KiB L2 (Zen 3, avx2) this
 * takes the forward product's A from chunk by chunk, which passes its C
 * through memory once a chunk, to panel by panel at hidden 1024 (A 421
 * KB, C 1.6 MB) and at hidden 256, batch 256 (292 KB): that product 0.96x
 * and 0.94x the time beside the others of the same runs, the same bits
 * (bench/results/zen3-rows-limit.txt). An A read by columns (the weight
 * gradient) keeps half of L2: not measured on other CPUs. */
long pl_gemm_rows_limit(long a_limit) { return a_limit / 4 * 7; }

void pl_gemm_fit(int set_kc, int *kc, long *a_limit)
{
    const pl_cpu_caches cache = pl_cpu_cache_sizes();
    *kc = pl_gemm_kc(set_kc, cache.l1d);
    *a_limit = pl_gemm_a_limit(cache.l2);
}

/* The chunk rows for op: kc, or longer chunks for the products whose A is
 * read by rows, where B then streams from L2 while each tile sums more of
 * K before it stores its C (reloading C between chunks cost more than
 * streaming B):
 * - one block (the forward products), with isa->one_chunk: the whole inner
 *   dimension, where A and a panel of B fit L2 as A alone must to go panel
 *   by panel (pl_gemm_rows_limit) and B's panels have contiguous rows (ldb
 *   = 64): avx512 on Zen 5, that product 0.94-0.99x the time beside the
 *   other products of the same runs at hidden 128-1024 and T = 784 (avx2
 *   on that CPU: 1.03x at hidden 512, the step 1.015x at 1024: not avx2);
 * - several blocks (the recurrent and layer-input products, dG W^T), with
 *   isa->long_blocks: twice kc, unless the product warms the backward
 *   pass's inputs (op->warm with spans: hidden 128), whose prefetches the
 *   longer tiles spread thinner (at T = 784 that product 1.02x): the
 *   recurrent product 0.97x at hidden 256, 0.94x at 512, 0.95x at 1024;
 *   the layer-input product 0.87x (two layers of 256). avx2 on that CPU:
 *   the recurrent product 1.01x at hidden 512 (its step 1.01x): not avx2.
 * Measured in bench/results/one-chunk.txt. A tile sums the same products
 * in the same order: the same bits. */
int pl_gemm_chunk_rows(const pl_gemm_isa *isa, const pl_gemm_op *op, int kc, long a_limit)
{
    if (op->a_cs != 1)
        return kc;
    if (op->nb > 1)
        return isa->long_blocks && !(op->warm && op->warm->n > 0) ? 2 * kc : kc;
    if (!isa->one_chunk || op->ldb != PL_PANEL)
        return kc;
    const double bytes = 4.0 * op->kb * ((double)op->M + PL_PANEL);
    return bytes <= (double)pl_gemm_rows_limit(a_limit) ? op->kb : kc;
}

/* The chunks of the inner dimension, each at most kc rows of B in all:
 * groups of whole blocks when blocks are at most kc long, else balanced
 * pieces of one block (per_block of them). */
typedef struct {
    int nchunk, chunk_blocks, per_block, piece;
} chunking;

static chunking chunks_of(const pl_gemm_op *op, int kc)
{
    chunking c = {0, 1, 1, op->kb};
    if (op->nb > 1 && op->kb <= kc) {
        c.chunk_blocks = kc / op->kb;
        c.nchunk = (op->nb + c.chunk_blocks - 1) / c.chunk_blocks;
    } else {
        c.per_block = (op->kb + kc - 1) / kc;
        c.piece = (op->kb + c.per_block - 1) / c.per_block;
        c.nchunk = op->nb * c.per_block;
    }
    return c;
}

/* Sets t's blocks, rows and offsets for chunk ch; returns the chunk's rows
 * of B (its blocks' rows, for prefetching) through *rows. */
static void chunk_args(const pl_gemm_op *op, const chunking *c, int ch, pl_tile *t,
                       size_t *a_off, size_t *b_off, int *rows)
{
    if (c->chunk_blocks > 1) {
        int b0 = ch * c->chunk_blocks;
        t->nb = op->nb - b0 < c->chunk_blocks ? op->nb - b0 : c->chunk_blocks;
        t->kb = op->kb;
        *a_off = (size_t)b0 * op->a_bs;
        *b_off = (size_t)b0 * op->b_bs;
    } else {
        int blk = ch / c->per_block, k0 = ch % c->per_block * c->piece;
        t->nb = 1;
        t->kb = op->kb - k0 < c->piece ? op->kb - k0 : c->piece;
        *a_off = (size_t)blk * op->a_bs + (size_t)k0 * op->a_cs;
        *b_off = (size_t)blk * op->b_bs + (size_t)k0 * op->ldb;
    }
    /* rows that follow each other in memory when blocks are contiguous */
    *rows = t->nb > 1 && op->b_bs != (size_t)op->kb * op->ldb ? 0 : t->nb * t->kb;
}

/* Where the driver is in op->warm, and how many lines a tile takes. */
typedef struct {
    const pl_warm *w;
    int s, r;     /* span, piece */
    size_t o;     /* bytes into the piece, from its first line */
    long per;     /* lines a tile */
} warm_cursor;

static size_t piece_lines(const pl_warm *w, int s)
{
    const size_t lead = (uintptr_t)w->s[s].p % 64;
    return (lead + w->s[s].bytes + 63) / 64;
}

static warm_cursor warm_start(const pl_warm *w, long tiles)
{
    warm_cursor wc = {w, 0, 0, 0, 0};
    if (!w)
        return wc;
    size_t lines = 0;
    for (int s = 0; s < w->n; s++)
        lines += piece_lines(w, s) * (size_t)w->s[s].count;
    /* a few lines of slack: a tile's run stops at the end of a piece */
    wc.per = (long)((lines + (size_t)tiles - 1) / (size_t)tiles) + 4;
    return wc;
}

/* The tile's share of the spans: the next run of up to wc->per lines in one
 * piece (pl_tile.pf2). */
static void warm_step(warm_cursor *wc, pl_tile *t)
{
    t->npf2 = 0;
    if (wc->s >= wc->w->n)
        return;
    const char *piece = (const char *)wc->w->s[wc->s].p + (size_t)wc->r * wc->w->s[wc->s].stride;
    const size_t left = piece_lines(wc->w, wc->s) - wc->o / 64;
    t->pf2 = piece - (uintptr_t)piece % 64 + wc->o;
    t->npf2 = (int)(left < (size_t)wc->per ? left : (size_t)wc->per);
    wc->o += 64 * (size_t)t->npf2;
    if (wc->o >= piece_lines(wc->w, wc->s) * 64) {
        wc->o = 0;
        if (++wc->r == wc->w->s[wc->s].count) {
            wc->r = 0;
            wc->s++;
        }
    }
}

/* Every row tile of column panel jp over one chunk; each tile prefetches
 * its share of the rows of next_b (the B chunk visited next), one cache
 * line of 16 floats at a time (with isa->spread the tile itself, along its
 * k loop, then its share of op->warm: a burst before the tile filled the
 * L1's miss buffers and the core waited on them; bench/results/
 * avx512-spread-prefetch.txt), and with prefetch_c the C of the tile after
 * it (chunk by chunk, a weight gradient's C too large for L2 comes back
 * from further out at every chunk). */
static void panel_chunk(const pl_gemm_isa *isa, const pl_gemm_op *op, pl_tile *t,
                        size_t a_off, size_t b_off, int jp, const float *next_b, int rows,
                        int prefetch_c, warm_cursor *wc)
{
    const size_t b_ps = op->b_ps ? op->b_ps : 64, c_ps = op->c_ps ? op->c_ps : 64;
    const int M = op->M, ntile = (M + isa->mr - 1) / isa->mr;
    const int base = M / ntile, extra = M % ntile; /* tiles of base or base + 1 rows */
    t->cols = op->N - jp * 64 < 64 ? op->N - jp * 64 : 64;
    const int lines = (t->cols + 15) / 16;
    t->b = op->b + b_off + (size_t)jp * b_ps;
    for (int ti = 0, i0 = 0; ti < ntile; ti++) {
        t->mr = base + (ti < extra);
        const int r0 = rows * ti / ntile, r1 = rows * (ti + 1) / ntile;
        if (isa->spread && op->ldb == 64 && lines == 4) { /* rows contiguous */
            t->pf = (const char *)(next_b + (size_t)r0 * 64);
            t->npf = 4 * (r1 - r0);
        } else {
            t->npf = 0;
            for (int r = r0; r < r1; r++)
                for (int v = 0; v < lines; v++)
                    __builtin_prefetch(next_b + (size_t)r * op->ldb + 16 * v, 0, 3);
        }
        t->a = op->a + a_off + (size_t)i0 * op->a_rs;
        t->c = op->c + (size_t)i0 * op->ldc + (size_t)jp * c_ps;
        if (prefetch_c && ti + 1 < ntile) /* the next tile's C: it reads and writes it */
            for (int i = 0; i < base + (ti + 1 < extra); i++)
                for (int v = 0; v < lines; v++)
                    __builtin_prefetch(t->c + (size_t)(t->mr + i) * op->ldc + 16 * v, 1, 3);
        if (wc->w)
            warm_step(wc, t);
        isa->tile(t);
        i0 += t->mr;
    }
}

void pl_gemm_blocked(const pl_gemm_isa *isa, const pl_gemm_op *op)
{
    if (op->a_cs != 1 && op->a_rs != 1) { /* outside the contract: the reference */
        pl_gemm_naive(op);
        return;
    }
    const size_t b_ps = op->b_ps ? op->b_ps : 64;
    int kc;
    long a_limit;
    pl_gemm_fit(isa->kc, &kc, &a_limit);
    const chunking c = chunks_of(op, pl_gemm_chunk_rows(isa, op, kc, a_limit));
    const int npanel = (op->N + 63) / 64;
    const double a_bytes = 4.0 * op->M * op->nb * op->kb;
    pl_tile t = {.a_rs = op->a_rs, .a_cs = op->a_cs, .a_bs = op->a_bs, .ldb = op->ldb,
                 .b_bs = op->b_bs, .ldc = op->ldc};
    size_t a_off, b_off, a_next, b_next;
    int rows, rows_next;
    pl_tile tn = t;
    const long tiles = (long)npanel * c.nchunk * ((op->M + isa->mr - 1) / isa->mr);
    warm_cursor wc = warm_start(isa->spread ? op->warm : NULL, tiles);
    if (a_bytes <= (double)(op->a_cs == 1 ? pl_gemm_rows_limit(a_limit) : a_limit)) {
        /* panel-major: a panel's C stays in L1 across the chunks */
        for (int jp = 0; jp < npanel; jp++)
            for (int ch = 0; ch < c.nchunk; ch++) {
                chunk_args(op, &c, ch, &t, &a_off, &b_off, &rows);
                t.accumulate = op->accumulate || ch > 0;
                const float *nb = op->b;
                rows_next = 0;
                if (ch + 1 < c.nchunk) {
                    chunk_args(op, &c, ch + 1, &tn, &a_next, &b_next, &rows_next);
                    nb = op->b + b_next + (size_t)jp * b_ps;
                } else if (jp + 1 < npanel) {
                    chunk_args(op, &c, 0, &tn, &a_next, &b_next, &rows_next);
                    nb = op->b + b_next + (size_t)(jp + 1) * b_ps;
                }
                panel_chunk(isa, op, &t, a_off, b_off, jp, nb, rows_next, 0, &wc);
            }
    } else {
        /* chunk-major: each chunk of A is read once for every panel */
        const int prefetch_c =
            isa->prefetch_c && op->a_rs == 1 && 4.0 * op->M * op->N > (double)a_limit;
        for (int ch = 0; ch < c.nchunk; ch++) {
            chunk_args(op, &c, ch, &t, &a_off, &b_off, &rows);
            t.accumulate = op->accumulate || ch > 0;
            for (int jp = 0; jp < npanel; jp++) {
                const float *nb = op->b + b_off + (size_t)(jp + 1) * b_ps;
                int pr = jp + 1 < npanel ? rows : 0;
                panel_chunk(isa, op, &t, a_off, b_off, jp, nb, pr, prefetch_c, &wc);
            }
        }
    }
}
