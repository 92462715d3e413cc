// Batch normalization along the channel axis of [outer, channels, inner]: one GROUP-sized
// work-group per channel for the statistics. Reference: CPU/CPUTraining.swift.

inline int channel_element(const int e, const int c, const int channels, const int inner) {
    return ((e / inner) * channels + c) * inner + e % inner;
}

__kernel void batchnorm_statistics(const int outer, const int channels, const int inner, const float momentum,
                                   const float epsilon, __global const float* x, __global float* running_mean,
                                   __global float* running_variance, __global float* saved_mean,
                                   __global float* saved_inv_std) {
    __local float scratch[GROUP];
    const int c = get_group_id(0), count = outer * inner;
    float sum = 0.0f;
    for (int e = get_local_id(0); e < count; e += GROUP) sum += x[channel_element(e, c, channels, inner)];
    const float mean = group_reduce(scratch, sum, 0) / count;
    float squares = 0.0f;
    for (int e = get_local_id(0); e < count; e += GROUP) {
        const float d = x[channel_element(e, c, channels, inner)] - mean;
        squares += d * d;
    }
    const float variance = group_reduce(scratch, squares, 0) / count;
    if (get_local_id(0) == 0) {
        saved_mean[c] = mean;
        saved_inv_std[c] = 1.0f / sqrt(variance + epsilon);
        running_mean[c] = momentum * running_mean[c] + (1.0f - momentum) * mean;
        running_variance[c] = momentum * running_variance[c] + (1.0f - momentum) * variance;
    }
}

// The element-wise passes take VECTOR (4) consecutive elements per work-item, as elementwise.cl.
#define VECTOR 4
#define APPLY_ARGS const int channels, const int inner, const int from_variance, const float epsilon, \
    __global const float* gamma, __global const float* beta, __global const float* mean, __global const float* spread
#define APPLY_NAMES channels, inner, from_variance, epsilon, gamma, beta, mean, spread

// Channels last ([rows, channels], inner = 1): the per-channel sums in two stages whose reads are
// unit-stride across a work-group (a group's items take GROUP consecutive channels), where the
// kernels above, one group per channel, read a column `channels` apart. `partial` holds two sums per
// (row block, channel):
//   SUM_X        Σ x                                     (the mean)
//   SUM_SQUARES  Σ (x − mean)²                           (the variance, about the finished mean)
//   SUM_GRADS    Σ dy and Σ dy · (x − mean) · inv_std    (the bias and scale gradients)
#define SUM_X 0
#define SUM_SQUARES 1
#define SUM_GRADS 2

__kernel void channel_partial_sums(const int rows, const int channels, const int block_rows, const int mode,
                                   __global const float* x, __global const float* dy, __global const float* mean,
                                   __global const float* inv_std, __global float* partial) {
    const int blocks = (channels + GROUP - 1) / GROUP, block = get_group_id(0) / blocks;
    const int c = get_group_id(0) % blocks * GROUP + get_local_id(0);
    if (c >= channels) return;
    const int first = block * block_rows, last = min(rows, first + block_rows);
    const float m = mode == SUM_X ? 0.0f : mean[c];
    float a = 0.0f, b = 0.0f;
    for (int r = first; r < last; ++r) {
        const float v = x[r * channels + c] - m;
        if (mode == SUM_X) {
            a += v;
        } else if (mode == SUM_SQUARES) {
            a += v * v;
        } else {
            const float g = dy[r * channels + c];
            a += g;
            b += g * v;
        }
    }
    partial[2 * (block * channels + c)] = a;
    partial[2 * (block * channels + c) + 1] = mode == SUM_GRADS ? b * inv_std[c] : 0.0f;
}

// Adds each channel's block sums in order and finishes what `mode` computes (see above).
__kernel void channel_sums_finish(const int channels, const int blocks, const int mode, const float count, const float momentum,
                                  const float epsilon, __global const float* partial, __global float* saved_mean,
                                  __global float* saved_inv_std, __global float* running_mean, __global float* running_variance,
                                  __global float* grad_gamma, __global float* grad_beta) {
    const int c = get_global_id(0);
    if (c >= channels) return;
    float a = 0.0f, b = 0.0f;
    for (int block = 0; block < blocks; ++block) {
        a += partial[2 * (block * channels + c)];
        b += partial[2 * (block * channels + c) + 1];
    }
    if (mode == SUM_X) {
        saved_mean[c] = a / count;
    } else if (mode == SUM_SQUARES) {
        const float variance = a / count;
        saved_inv_std[c] = 1.0f / sqrt(variance + epsilon);
        running_mean[c] = momentum * running_mean[c] + (1.0f - momentum) * saved_mean[c];
        running_variance[c] = momentum * running_variance[c] + (1.0f - momentum) * variance;
    } else {
        grad_beta[c] = a;
        grad_gamma[c] = b;
    }
}

// y = (x - mean) * inv_std * gamma + beta at element i, with inv_std = 1/sqrt(variance + epsilon) when
// from_variance; centred first, not folded into x * scale + shift, whose shift (beta - mean * scale) loses digits.
inline float normalized(const float x, const int i, APPLY_ARGS) {
    const int c = (i / inner) % channels;
    const float inv_std = from_variance ? 1.0f / sqrt(spread[c] + epsilon) : spread[c];
    return (x - mean[c]) * (gamma[c] * inv_std) + beta[c];
}

__kernel void batchnorm_apply(const int n, APPLY_ARGS, __global const float* x, __global float* y) {
    const int i = get_global_id(0) * VECTOR;
    if (i + VECTOR <= n) {
        const float4 v = vload4(0, x + i);
        vstore4((float4)(normalized(v.s0, i, APPLY_NAMES), normalized(v.s1, i + 1, APPLY_NAMES),
                         normalized(v.s2, i + 2, APPLY_NAMES), normalized(v.s3, i + 3, APPLY_NAMES)), 0, y + i);
    } else {
        for (int j = i; j < n; ++j) y[j] = normalized(x[j], j, APPLY_NAMES);
    }
}

__kernel void batchnorm_backward_sums(const int outer, const int channels, const int inner,
                                      __global const float* x, __global const float* dy,
                                      __global const float* mean, __global const float* inv_std,
                                      __global float* grad_gamma, __global float* grad_beta) {
    __local float scratch[GROUP];
    const int c = get_group_id(0);
    float sum_dy = 0.0f, sum_dy_xhat = 0.0f;
    for (int e = get_local_id(0); e < outer * inner; e += GROUP) {
        const int i = channel_element(e, c, channels, inner);
        sum_dy += dy[i];
        sum_dy_xhat += dy[i] * (x[i] - mean[c]) * inv_std[c];
    }
    sum_dy = group_reduce(scratch, sum_dy, 0);
    sum_dy_xhat = group_reduce(scratch, sum_dy_xhat, 0);
    if (get_local_id(0) == 0) { grad_beta[c] = sum_dy; grad_gamma[c] = sum_dy_xhat; }
}

#define INPUT_GRAD_ARGS const int channels, const int inner, const float count, __global const float* gamma, \
    __global const float* mean, __global const float* inv_std, __global const float* grad_gamma, __global const float* grad_beta
#define INPUT_GRAD_NAMES channels, inner, count, gamma, mean, inv_std, grad_gamma, grad_beta

inline float input_grad(const float x, const float dy, const int i, INPUT_GRAD_ARGS) {
    const int c = (i / inner) % channels;
    const float xhat = (x - mean[c]) * inv_std[c];
    return gamma[c] * inv_std[c] / count * (count * dy - grad_beta[c] - xhat * grad_gamma[c]);
}

__kernel void batchnorm_backward_input(const int n, INPUT_GRAD_ARGS, __global const float* x, __global const float* dy,
                                       __global float* dx) {
    const int i = get_global_id(0) * VECTOR;
    if (i + VECTOR <= n) {
        const float4 a = vload4(0, x + i), g = vload4(0, dy + i);
        vstore4((float4)(input_grad(a.s0, g.s0, i, INPUT_GRAD_NAMES), input_grad(a.s1, g.s1, i + 1, INPUT_GRAD_NAMES),
                         input_grad(a.s2, g.s2, i + 2, INPUT_GRAD_NAMES), input_grad(a.s3, g.s3, i + 3, INPUT_GRAD_NAMES)), 0, dx + i);
    } else {
        for (int j = i; j < n; ++j) dx[j] = input_grad(x[j], dy[j], j, INPUT_GRAD_NAMES);
    }
}
