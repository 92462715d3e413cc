// The FP32 fused multiply-add peak of one core, for benchmarks to compare against.
#ifndef KILN_PEAK_H
#define KILN_PEAK_H
// Runs `iterations` rounds of 8 independent FMA chains at the widest vector width the CPU has
// (AVX-512, AVX2+FMA, else SSE mul+add) and returns the floating-point operations done.
double kiln_fma_flops(long iterations);
#endif
