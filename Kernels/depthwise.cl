// Depthwise convolution of NHWC images (groups = channels): output channel c·m + j filters input
// channel c with weight w[kh][kw][c·m + j]; taps `dilation` apart, padding read as zeros.
// Reference: CKernels/depthwise.c. One work-item per output, input or weight element, so that
// neighbouring items touch neighbouring channels.
#define DEPTHWISE_ARGS WINDOW_ARGS, const int multiplier, const int dilation_h, const int dilation_w

__kernel void depthwise_forward(const int n, DEPTHWISE_ARGS, __global const float* x, __global const float* w,
                                __global const float* bias, const int has_bias, const int relu_out, __global float* y) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const int oc = channels * multiplier, o = i % oc, ow = (i / oc) % out_w, oh = (i / (oc * out_w)) % out_h;
    const int image = i / (oc * out_w * out_h), c = o / multiplier;
    const int h0 = oh * stride_h - pad_top, w0 = ow * stride_w - pad_left;
    float sum = has_bias ? bias[o] : 0.0f;
    for (int kh = 0; kh < k_h; ++kh) {
        const int ih = h0 + kh * dilation_h;
        if (ih < 0 || ih >= in_h) continue;
        for (int kw = 0; kw < k_w; ++kw) {
            const int iw = w0 + kw * dilation_w;
            if (iw >= 0 && iw < in_w) sum += x[((image * in_h + ih) * in_w + iw) * channels + c] * w[(kh * k_w + kw) * oc + o];
        }
    }
    y[i] = relu_out ? fmax(sum, 0.0f) : sum;
}

// Each input element gathers the outputs its taps reach (no atomics).
__kernel void depthwise_input_grad(const int n, DEPTHWISE_ARGS, __global const float* dy, __global const float* w,
                                   __global float* dx) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const int oc = channels * multiplier, c = i % channels, iw = (i / channels) % in_w, ih = (i / (channels * in_w)) % in_h;
    const int image = i / (channels * in_w * in_h);
    float sum = 0.0f;
    for (int kh = 0; kh < k_h; ++kh) {
        const int t = ih + pad_top - kh * dilation_h;
        if (t < 0 || t % stride_h != 0 || t / stride_h >= out_h) continue;
        for (int kw = 0; kw < k_w; ++kw) {
            const int u = iw + pad_left - kw * dilation_w;
            if (u < 0 || u % stride_w != 0 || u / stride_w >= out_w) continue;
            const int at = ((image * out_h + t / stride_h) * out_w + u / stride_w) * oc, tap = (kh * k_w + kw) * oc;
            for (int j = c * multiplier; j < (c + 1) * multiplier; ++j) sum += dy[at + j] * w[tap + j];
        }
    }
    dx[i] = sum;
}

// Each weight element sums its tap over every output pixel of the batch.
__kernel void depthwise_weight_grad(const int n, const int batch, DEPTHWISE_ARGS, __global const float* x,
                                    __global const float* dy, __global float* dw) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const int oc = channels * multiplier, o = i % oc, kw = (i / oc) % k_w, kh = i / (oc * k_w), c = o / multiplier;
    float sum = 0.0f;
    for (int image = 0; image < batch; ++image)
        for (int oh = 0; oh < out_h; ++oh) {
            const int ih = oh * stride_h - pad_top + kh * dilation_h;
            if (ih < 0 || ih >= in_h) continue;
            for (int ow = 0; ow < out_w; ++ow) {
                const int iw = ow * stride_w - pad_left + kw * dilation_w;
                if (iw >= 0 && iw < in_w)
                    sum += x[((image * in_h + ih) * in_w + iw) * channels + c] * dy[((image * out_h + oh) * out_w + ow) * oc + o];
            }
        }
    dw[i] = sum;
}
