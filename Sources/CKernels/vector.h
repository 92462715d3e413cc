// Portable 16-lane float vectors (clang vector extensions): one AVX-512 register, two AVX2 registers,
// four SSE registers. The loads and stores need no alignment.
#ifndef KILN_VECTOR_H
#define KILN_VECTOR_H

#if defined(__x86_64__)
#define KILN_DISPATCH __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define KILN_DISPATCH
#endif
#define KILN_INLINE static inline __attribute__((always_inline))

enum { LANES = 16 };
typedef float vec __attribute__((vector_size(64), aligned(4), may_alias));
typedef int ivec __attribute__((vector_size(64), aligned(4), may_alias));

// Macros rather than functions: a function passing `vec` by value would change the calling
// convention between the clones, which clang rejects.
#define load(p) (*(const vec *)(p))
#define store(p, v) (*(vec *)(p) = (v))
#define splat(a) ((float)(a) - (vec){})  /* a − 0 folds away; 0 + a would not (−0) */
#define UNROLL _Pragma("clang loop unroll(full)")
#define relu(v) __builtin_elementwise_max((v), (vec){})

#endif
