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
