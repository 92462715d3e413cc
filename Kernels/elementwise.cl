// Activations and arithmetic, one work-item per element. Reference: CPU/CPUElementwise.swift.
// Op codes follow UnaryOp.code and BinaryOp in Device/Geometry.swift.

// `slope`: the op's parameter (leaky ReLU's slope, the capped ReLU's maximum).
inline float unary_op(const int op, const float x, const float slope) {
    switch (op) {
    case 0: return fmax(x, 0.0f);
    case 1: return x > 0.0f ? x : slope * x;
    case 2: return 1.0f / (1.0f + exp(-x));
    case 3: return tanh(x);
    case 4: return exp(x);
    case 5: return log(x);
    case 6: return sqrt(x);
    case 7: return x * x;
    case 8: return fabs(x);
    case 9: return -x;
    case 10: return fmax(x, 0.0f) + log1p(exp(-fabs(x)));
    case 12: return fmin(fmax(x, 0.0f), slope);
    default: return x > 0.0f ? 1.0f : 0.0f;
    }
}

// dy * op'(x), with y = op(x) where that is cheaper.
inline float unary_grad(const int op, const float x, const float y, const float dy, const float slope) {
    switch (op) {
    case 0: return x > 0.0f ? dy : 0.0f;
    case 1: return x > 0.0f ? dy : slope * dy;
    case 2: return dy * y * (1.0f - y);
    case 3: return dy * (1.0f - y * y);
    case 4: return dy * y;
    case 5: return dy / x;
    case 6: return dy * 0.5f / y;
    case 7: return dy * 2.0f * x;
    case 8: return x > 0.0f ? dy : (x < 0.0f ? -dy : 0.0f);
    case 9: return -dy;
    case 10: return dy / (1.0f + exp(-x));
    case 12: return x > 0.0f && x < slope ? dy : 0.0f;
    default: return 0.0f;
    }
}

inline float binary_op(const int op, const float a, const float b) {
    switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    case 4: return fmax(a, b);
    default: return fmin(a, b);
    }
}

__kernel void unary(const int n, const int op, const float slope, __global const float* x, __global float* y) {
    const int i = get_global_id(0);
    if (i < n) y[i] = unary_op(op, x[i], slope);
}

__kernel void unary_backward(const int n, const int op, const float slope, __global const float* x,
                             __global const float* y, __global const float* dy, __global float* dx) {
    const int i = get_global_id(0);
    if (i < n) dx[i] = unary_grad(op, x[i], y[i], dy[i], slope);
}

__kernel void binary_same(const int n, const int op, __global const float* a, __global const float* b,
                          __global float* y) {
    const int i = get_global_id(0);
    if (i < n) y[i] = binary_op(op, a[i], b[i]);
}

__kernel void binary_broadcast(const int n, const int op, const int8 shape, const int8 a_strides,
                               const int8 b_strides, __global const float* a, __global const float* b,
                               __global float* y) {
    const int i = get_global_id(0);
    if (i < n) y[i] = binary_op(op, a[strided_offset(i, shape, a_strides)], b[strided_offset(i, shape, b_strides)]);
}

__kernel void affine(const int n, const float scale, const float shift, __global const float* x, __global float* y) {
    const int i = get_global_id(0);
    if (i < n) y[i] = scale * x[i] + shift;
}

// x seen as [outer, channels, inner]; y = x + bias[channel].
__kernel void add_bias(const int n, const int channels, const int inner, __global const float* x,
                       __global const float* bias, __global float* y) {
    const int i = get_global_id(0);
    if (i < n) y[i] = x[i] + bias[(i / inner) % channels];
}
