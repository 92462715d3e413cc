// Philox-4x32-10 and dropout: the same function, bit for bit, as Sources/CKernels/random.c and the
// tests' reference (Tests/KilnTests/Philox.swift).

// The first two words of the block of counter (lo, hi, 0, 0) under key (lo, hi of seed).
inline uint2 philox_pair(const ulong seed, const ulong counter) {
    uint c0 = (uint)counter, c1 = (uint)(counter >> 32), c2 = 0, c3 = 0;
    uint k0 = (uint)seed, k1 = (uint)(seed >> 32);
    for (int round = 0; round < 10; ++round) {
        const uint hi0 = mul_hi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
        const uint hi1 = mul_hi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
        const uint n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
        if (round < 9) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }
    }
    return (uint2)(c0, c1);
}

inline uint philox_word(const ulong seed, const ulong counter) { return philox_pair(seed, counter).x; }

// 1 where element i survives dropout at `rate`: u >= rate, u = uniform(seed, offset + i).
inline int kept(const ulong seed, const ulong offset, const int i, const float rate) {
    return (float)(philox_word(seed, offset + (ulong)i) >> 8) * 0x1.0p-24f >= rate;
}

// y = kept ? x * scale : 0, scale = 1 / (1 - rate); 4 consecutive elements per work-item (one vector load and store).
__kernel void dropout(const int n, const float rate, const float scale, const ulong seed, const ulong offset,
                      __global const float* x, __global float* y) {
    const int i = get_global_id(0) * 4;
    if (i + 4 <= n) {
        const int4 mask = (int4)(kept(seed, offset, i, rate), kept(seed, offset, i + 1, rate), kept(seed, offset, i + 2, rate),
                                 kept(seed, offset, i + 3, rate));
        vstore4(select((float4)(0.0f), vload4(0, x + i) * scale, -mask), 0, y + i);
    } else {
        for (int j = i; j < n; ++j) y[j] = kept(seed, offset, j, rate) ? x[j] * scale : 0.0f;
    }
}

// y = a + b * draw(seed, offset + i): uniform in [0, 1) from Philox's first word (normal == 0), else a
// standard normal by Box–Muller from its first two words, as kiln_fill_random in random.c.
__kernel void fill_random(const int n, const int normal, const float a, const float b, const ulong seed,
                          const ulong offset, __global float* y) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const uint2 w = philox_pair(seed, offset + (ulong)i);
    if (!normal) {
        y[i] = a + b * ((float)(w.x >> 8) * 0x1.0p-24f);
    } else {
        const float u1 = (float)((w.x >> 8) + 1) * 0x1.0p-24f, u2 = (float)(w.y >> 8) * 0x1.0p-24f;
        y[i] = a + b * (sqrt(-2.0f * log(u1)) * cos(6.283185307179586f * u2));
    }
}
