// The FP32 fused multiply-add peak of this machine, for benchmarks to compare against.
#include "kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f"))) static double avx512(long n) {
    __m512 a[8], x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (int j = 0; j < 8; ++j) a[j] = _mm512_set1_ps((float)j);
    for (long i = 0; i < n; ++i)
        for (int j = 0; j < 8; ++j) a[j] = _mm512_fmadd_ps(a[j], x, y);
    volatile float sink = 0;
    for (int j = 0; j < 8; ++j) sink += _mm512_reduce_add_ps(a[j]);
    return (double)n * 8 * 16 * 2;
}

__attribute__((target("avx2,fma"))) static double avx2(long n) {
    __m256 a[8], x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int j = 0; j < 8; ++j) a[j] = _mm256_set1_ps((float)j);
    for (long i = 0; i < n; ++i)
        for (int j = 0; j < 8; ++j) a[j] = _mm256_fmadd_ps(a[j], x, y);
    float out[8];
    volatile float sink = 0;
    for (int j = 0; j < 8; ++j) { _mm256_storeu_ps(out, a[j]); sink += out[0]; }
    return (double)n * 8 * 8 * 2;
}

static double sse(long n) {
    __m128 a[8], x = _mm_set1_ps(0.999999f), y = _mm_set1_ps(1e-7f);
    for (int j = 0; j < 8; ++j) a[j] = _mm_set1_ps((float)j);
    for (long i = 0; i < n; ++i)
        for (int j = 0; j < 8; ++j) a[j] = _mm_add_ps(_mm_mul_ps(a[j], x), y);
    volatile float sink = _mm_cvtss_f32(a[0]);
    (void)sink;
    return (double)n * 8 * 4 * 2;
}

double kiln_fma_flops(long iterations) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return avx512(iterations);
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return avx2(iterations);
    return sse(iterations);
}
#else
#include "vector.h"

// Other architectures: 8 chains of 16-lane vectors, compiled for the baseline vector unit.
double kiln_fma_flops(long iterations) {
    vec a[8];
    const vec x = splat(0.999999f), y = splat(1e-7f);
    for (int j = 0; j < 8; ++j) a[j] = splat((float)j);
    for (long i = 0; i < iterations; ++i)
        for (int j = 0; j < 8; ++j) a[j] = a[j] * x + y;
    volatile float sink = 0;
    for (int j = 0; j < 8; ++j) sink += a[j][0];
    return (double)iterations * 8 * LANES * 2;
}
#endif
