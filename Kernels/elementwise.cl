// Activations and arithmetic. Reference: CPU/CPUElementwise.swift. Op codes follow UnaryOp.code and
// BinaryOp in Device/Geometry.swift. The same-shape kernels take VECTOR consecutive elements per
// work-item (one vector load and store each; the last item does the tail one by one).

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

#define VECTOR 4

__kernel void unary(const int n, const int op, const float slope, __global const float* x, __global float* y) {
    const int i = get_global_id(0) * VECTOR;
    if (i + VECTOR <= n) {
        const float4 v = vload4(0, x + i);
        vstore4((float4)(unary_op(op, v.s0, slope), unary_op(op, v.s1, slope), unary_op(op, v.s2, slope), unary_op(op, v.s3, slope)), 0, y + i);
    } else {
        for (int j = i; j < n; ++j) y[j] = unary_op(op, x[j], slope);
    }
}

__kernel void unary_backward(const int n, const int op, const float slope, __global const float* x,
                             __global const float* y, __global const float* dy, __global float* dx) {
    const int i = get_global_id(0) * VECTOR;
    if (i + VECTOR <= n) {
        const float4 a = vload4(0, x + i), b = vload4(0, y + i), g = vload4(0, dy + i);
        vstore4((float4)(unary_grad(op, a.s0, b.s0, g.s0, slope), unary_grad(op, a.s1, b.s1, g.s1, slope),
                         unary_grad(op, a.s2, b.s2, g.s2, slope), unary_grad(op, a.s3, b.s3, g.s3, slope)), 0, dx + i);
    } else {
        for (int j = i; j < n; ++j) dx[j] = unary_grad(op, x[j], y[j], dy[j], slope);
    }
}

__kernel void binary_same(const int n, const int op, __global const float* a, __global const float* b,
                          __global float* y) {
    const int i = get_global_id(0) * VECTOR;
    if (i + VECTOR <= n) {
        const float4 u = vload4(0, a + i), v = vload4(0, b + i);
        vstore4((float4)(binary_op(op, u.s0, v.s0), binary_op(op, u.s1, v.s1), binary_op(op, u.s2, v.s2), binary_op(op, u.s3, v.s3)), 0, y + i);
    } else {
        for (int j = i; j < n; ++j) y[j] = binary_op(op, a[j], b[j]);
    }
}

__kernel void binary_broadcast(const int n, const int op, const int8 shape, const int8 a_strides,
                               const int8 b_strides, __global const float* a, __global const float* b,
                               __global float* y) {
    const int i = get_global_id(0);
    if (i < n) y[i] = binary_op(op, a[strided_offset(i, shape, a_strides)], b[strided_offset(i, shape, b_strides)]);
}

__kernel void affine(const int n, const float scale, const float shift, __global const float* x, __global float* y) {
    const int i = get_global_id(0) * VECTOR;
    if (i + VECTOR <= n) vstore4(scale * vload4(0, x + i) + shift, 0, y + i);
    else for (int j = i; j < n; ++j) y[j] = scale * x[j] + shift;
}

// x seen as [outer, channels, inner]; y = x + bias[channel].
__kernel void add_bias(const int n, const int channels, const int inner, __global const float* x,
                       __global const float* bias, __global float* y) {
    const int i = get_global_id(0) * VECTOR;
    if (i + VECTOR <= n) {
        vstore4(vload4(0, x + i) + (float4)(bias[(i / inner) % channels], bias[((i + 1) / inner) % channels],
                                            bias[((i + 2) / inner) % channels], bias[((i + 3) / inner) % channels]), 0, y + i);
    } else {
        for (int j = i; j < n; ++j) y[j] = x[j] + bias[(j / inner) % channels];
    }
}
