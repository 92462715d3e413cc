// Dropout with Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"),
// 16 counters at a time. Element i keeps its value when the first word of the block of counter
// (offset + i) under key (seed) gives a uniform ≥ rate: the same numbers as Kernels/random.cl.
// Random fills draw from the same stream.
#include <math.h>
#include "kernels.h"
#include "vector.h"

typedef unsigned uvec __attribute__((vector_size(64), aligned(4)));
typedef unsigned long wide __attribute__((vector_size(128), aligned(8)));

KILN_DISPATCH
void kiln_dropout(const float *x, float *y, long count, float rate, unsigned long seed, unsigned long offset) {
    const float scale = 1 / (1 - rate);
    for (long i = 0; i < count; i += LANES) {
        uvec c0, c1, c2 = {}, c3 = {};
        UNROLL for (int lane = 0; lane < LANES; ++lane) {
            const unsigned long counter = offset + (unsigned long)(i + lane);
            c0[lane] = (unsigned)counter;
            c1[lane] = (unsigned)(counter >> 32);
        }
        unsigned k0 = (unsigned)seed, k1 = (unsigned)(seed >> 32);
        for (int round = 0; round < 10; ++round) {
            const wide p0 = __builtin_convertvector(c0, wide) * 0xD2511F53UL;
            const wide p1 = __builtin_convertvector(c2, wide) * 0xCD9E8D57UL;
            const uvec hi0 = __builtin_convertvector(p0 >> 32, uvec), lo0 = __builtin_convertvector(p0, uvec);
            const uvec hi1 = __builtin_convertvector(p1 >> 32, uvec), lo1 = __builtin_convertvector(p1, uvec);
            c0 = hi1 ^ c1 ^ k0; c1 = lo1; c2 = hi0 ^ c3 ^ k1; c3 = lo0;
            k0 += 0x9E3779B9u; k1 += 0xBB67AE85u;
        }
        const vec u = __builtin_convertvector(c0 >> 8, vec) * 0x1p-24f;
        if (count - i >= LANES) {
            *(ivec *)(y + i) = (ivec)(load(x + i) * scale) & (u >= rate);
        } else {
            for (long lane = 0; lane < count - i; ++lane) y[i + lane] = u[lane] >= rate ? x[i + lane] * scale : 0;
        }
    }
}

// The first two words of the Philox-4x32-10 block of counter (lo, hi, 0, 0) under key (lo, hi of seed).
static void philox_pair(unsigned long seed, unsigned long counter, unsigned *w0, unsigned *w1) {
    unsigned c0 = (unsigned)counter, c1 = (unsigned)(counter >> 32), c2 = 0, c3 = 0;
    unsigned k0 = (unsigned)seed, k1 = (unsigned)(seed >> 32);
    for (int round = 0; round < 10; ++round) {
        const unsigned long p0 = (unsigned long)c0 * 0xD2511F53UL, p1 = (unsigned long)c2 * 0xCD9E8D57UL;
        const unsigned n0 = (unsigned)(p1 >> 32) ^ c1 ^ k0, n2 = (unsigned)(p0 >> 32) ^ c3 ^ k1;
        c0 = n0; c1 = (unsigned)p1; c2 = n2; c3 = (unsigned)p0;
        k0 += 0x9E3779B9u; k1 += 0xBB67AE85u;
    }
    *w0 = c0;
    *w1 = c1;
}

void kiln_fill_random(float *y, long count, int normal, float a, float b, unsigned long seed, unsigned long offset) {
    for (long i = 0; i < count; ++i) {
        unsigned w0, w1;
        philox_pair(seed, offset + (unsigned long)i, &w0, &w1);
        if (!normal) {
            y[i] = a + b * ((float)(w0 >> 8) * 0x1p-24f);
        } else {
            const float u1 = (float)((w0 >> 8) + 1) * 0x1p-24f, u2 = (float)(w1 >> 8) * 0x1p-24f;
            y[i] = a + b * (sqrtf(-2 * logf(u1)) * cosf(6.283185307179586f * u2));
        }
    }
}
