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
