// Memory-bound elementwise loops, 16 floats per step plus a scalar tail.
#include "kernels.h"
#include "vector.h"

KILN_DISPATCH
void kiln_relu(const float *x, float *y, long count) {
    long i = 0;
    for (; i + LANES <= count; i += LANES) store(y + i, relu(load(x + i)));
    for (; i < count; ++i) y[i] = x[i] > 0 ? x[i] : 0;
}

KILN_DISPATCH
void kiln_relu_backward(const float *x, const float *dy, float *dx, long count) {
    long i = 0;
    for (; i + LANES <= count; i += LANES)
        *(ivec *)(dx + i) = *(const ivec *)(dy + i) & (load(x + i) > 0);
    for (; i < count; ++i) dx[i] = x[i] > 0 ? dy[i] : 0;
}

KILN_DISPATCH
void kiln_adam(float *w, const float *g, float *m, float *v, long count, float decay, float step,
               float beta1, float beta2, float epsilon) {
    long i = 0;
    for (; i + LANES <= count; i += LANES) {
        const vec gi = load(g + i), mi = load(m + i) + (gi - load(m + i)) * (1 - beta1);
        const vec vi = load(v + i) + (gi * gi - load(v + i)) * (1 - beta2);
        store(m + i, mi);
        store(v + i, vi);
        store(w + i, load(w + i) * decay - step * mi / (__builtin_elementwise_sqrt(vi) + epsilon));
    }
    for (; i < count; ++i) {
        m[i] += (g[i] - m[i]) * (1 - beta1);
        v[i] += (g[i] * g[i] - v[i]) * (1 - beta2);
        w[i] = w[i] * decay - step * m[i] / (__builtin_sqrtf(v[i]) + epsilon);
    }
}

KILN_DISPATCH
void kiln_accumulate(float *y, const float *x, long count) {
    long i = 0;
    for (; i + LANES <= count; i += LANES) store(y + i, load(y + i) + load(x + i));
    for (; i < count; ++i) y[i] += x[i];
}

KILN_DISPATCH
void kiln_bytes_to_floats(const unsigned char *x, float *y, long count, float scale) {
    for (long i = 0; i < count; ++i) y[i] = (float)x[i] * scale;
}

// Runs of i in [begin, end) over which x[i % xn] and z[i % zn] are both contiguous; a period of 1 is a
// scalar (both may be). The op is a macro argument, so that each op's loop compiles to straight vector code.
#define BINARY_RUNS(EXPR) \
    for (long i = begin; i < end;) { \
        const long xi = xn == 1 ? 0 : i % xn, zi = zn == 1 ? 0 : i % zn; \
        long n = end - i; \
        if (xn > 1 && xn - xi < n) n = xn - xi; \
        if (zn > 1 && zn - zi < n) n = zn - zi; \
        const float *xs = x + xi, *zs = z + zi; \
        float *ys = y + i; \
        if (xn == 1 && zn == 1) { const float u = x[0], v = z[0]; for (long k = 0; k < n; ++k) ys[k] = (EXPR); } \
        else if (xn == 1) { const float u = x[0]; for (long k = 0; k < n; ++k) { const float v = zs[k]; ys[k] = (EXPR); } } \
        else if (zn == 1) { const float v = z[0]; for (long k = 0; k < n; ++k) { const float u = xs[k]; ys[k] = (EXPR); } } \
        else for (long k = 0; k < n; ++k) { const float u = xs[k], v = zs[k]; ys[k] = (EXPR); } \
        i += n; \
    }

KILN_DISPATCH
void kiln_binary(int op, const float *x, long xn, const float *z, long zn, float *y, long begin, long end) {
    switch (op) {
    case KILN_ADD: BINARY_RUNS(u + v) break;
    case KILN_SUBTRACT: BINARY_RUNS(u - v) break;
    case KILN_MULTIPLY: BINARY_RUNS(u * v) break;
    case KILN_DIVIDE: BINARY_RUNS(u / v) break;
    case KILN_MAXIMUM: BINARY_RUNS(v >= u ? v : u) break;  // Swift's max and min, NaNs included
    case KILN_MINIMUM: BINARY_RUNS(v < u ? v : u) break;
    }
}

// The activations whose maths is a select or a product: loops clang turns into vector code.
#define UNARY_LOOP(EXPR) for (long i = 0; i < count; ++i) { const float u = x[i]; y[i] = (EXPR); }
#define UNARY_BACKWARD_LOOP(EXPR) for (long i = 0; i < count; ++i) { const float u = x[i], v = y[i], d = dy[i]; dx[i] = (EXPR); }

KILN_DISPATCH
void kiln_activation(int op, const float *x, float *y, float a, long count) {
    switch (op) {
    case KILN_LEAKY_RELU: UNARY_LOOP(u > 0 ? u : a * u) break;
    case KILN_CAPPED_RELU: UNARY_LOOP(u < 0 ? 0 : u > a ? a : u) break;  // NaN stays NaN
    }
}

KILN_DISPATCH
void kiln_activation_backward(int op, const float *x, const float *y, const float *dy, float *dx, float a, long count) {
    switch (op) {
    case KILN_LEAKY_RELU: UNARY_BACKWARD_LOOP(u > 0 ? d : a * d) break;
    case KILN_CAPPED_RELU: UNARY_BACKWARD_LOOP(u > 0 && u < a ? d : 0) break;
    case KILN_SIGMOID: UNARY_BACKWARD_LOOP(d * v * (1 - v)) break;
    case KILN_TANH: UNARY_BACKWARD_LOOP(d * (1 - v * v)) break;
    }
}
