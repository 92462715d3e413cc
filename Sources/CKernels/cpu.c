// Which OpenBLAS kernels this CPU can run, for when OpenBLAS does not know the CPU.
#include "kernels.h"
#include <string.h>

const char *kiln_blas_core_hint(const char *detected) {
#if defined(__x86_64__)
    if (!detected || strcmp(detected, "Prescott") != 0) return 0;  // Prescott: OpenBLAS's fallback for unknown Intel CPUs
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512dq")) return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
    (void)detected;
    return 0;
}
