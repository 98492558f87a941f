/* Seeded pseudo-random numbers: xoshiro256** (Blackman and Vigna), state
 * filled from the seed by splitmix64; the orders they make (an epoch's),
 * and the balanced order of a batch of several lengths. */
#include <math.h>
#include <string.h>

#include "common.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void pl_rng_seed(pl_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t pl_rng_next(pl_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double pl_rng_uniform(pl_rng *r)
{
    return (double)(pl_rng_next(r) >> 11) * 0x1.0p-53;
}

double pl_rng_normal(pl_rng *r)
{
    double u1 = 1.0 - pl_rng_uniform(r); /* (0, 1]: log is finite */
    double u2 = pl_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

uint64_t pl_rng_below(pl_rng *r, uint64_t n)
{
    /* rejection sampling: drop the top values that would bias the modulo */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = pl_rng_next(r);
    } while (x >= limit);
    return x % n;
}

void pl_rng_permutation(pl_rng *r, uint32_t *order, size_t n)
{
    for (size_t i = 0; i < n; i++)
        order[i] = (uint32_t)i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)pl_rng_below(r, i);
        uint32_t tmp = order[i - 1];
        order[i - 1] = order[j];
        order[j] = tmp;
    }
}

/* The order of epoch `epoch`: a permutation drawn from the seed and the
 * epoch alone, so that a resumed run sees the same order. */
void pl_epoch_rng(uint64_t seed, long epoch, pl_rng *r)
{
    pl_rng_seed(r, seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(epoch + 1)));
}

/* i's lowest `bits` bits in reverse order. */
static unsigned bit_reverse(unsigned i, int bits)
{
    unsigned r = 0;
    for (int b = 0; b < bits; b++, i >>= 1)
        r = r << 1 | (i & 1u);
    return r;
}

void pl_order_by_length(const uint32_t *idx, const int32_t *lengths, int n, int T,
                        uint32_t *order, int *cnt)
{
    memset(cnt, 0, sizeof *cnt * (size_t)(T + 1));
    for (int b = 0; b < n; b++) /* bucket T - length: longest first */
        cnt[T - lengths[idx ? idx[b] : (uint32_t)b]]++;
    for (int k = 0, at = 0; k <= T; k++) {
        const int here = cnt[k];
        cnt[k] = at;
        at += here;
    }
    for (int b = 0; b < n; b++)
        order[cnt[T - lengths[idx ? idx[b] : (uint32_t)b]]++] = (uint32_t)b;
}

void pl_balance_rows(const uint32_t *idx, int n, const int32_t *lengths, int T, uint32_t *out,
                     uint32_t *sorted, int *cnt)
{
    pl_order_by_length(idx, lengths, n, T, sorted, cnt); /* places of idx */
    int bits = 0;
    while ((1L << bits) < n)
        bits++;
    for (unsigned i = 0, j = 0; i < 1u << bits; i++) {
        const unsigned r = bit_reverse(i, bits);
        if (r < (unsigned)n)
            out[j++] = idx[sorted[r]];
    }
}

void pl_epoch_order(uint64_t seed, long epoch, uint32_t *order, size_t n)
{
    pl_rng r;
    pl_epoch_rng(seed, epoch, &r);
    pl_rng_permutation(&r, order, n);
}
