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

// y = (x - mean) * inv_std * gamma + beta, with inv_std = 1/sqrt(variance + epsilon) when from_variance;
// centred first, not folded into x * scale + shift, whose shift (beta - mean * scale) loses digits.
__kernel void batchnorm_apply(const int n, const int channels, const int inner, const int from_variance,
                              const float epsilon, __global const float* x, __global const float* gamma,
                              __global const float* beta, __global const float* mean, __global const float* spread,
                              __global float* y) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const int c = (i / inner) % channels;
    const float inv_std = from_variance ? 1.0f / sqrt(spread[c] + epsilon) : spread[c];
    const float scale = gamma[c] * inv_std;
    y[i] = (x[i] - mean[c]) * scale + beta[c];
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

__kernel void batchnorm_backward_input(const int n, const int channels, const int inner, const float count,
                                       __global const float* x, __global const float* dy, __global const float* gamma,
                                       __global const float* mean, __global const float* inv_std,
                                       __global const float* grad_gamma, __global const float* grad_beta,
                                       __global float* dx) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const int c = (i / inner) % channels;
    const float xhat = (x[i] - mean[c]) * inv_std[c];
    dx[i] = gamma[c] * inv_std[c] / count * (count * dy[i] - grad_beta[c] - xhat * grad_gamma[c]);
}
