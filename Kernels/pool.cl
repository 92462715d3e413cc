// Max and average pooling over NHWC images. Reference: CPU/CPUConvolution.swift.
// Average pooling divides by the input pixels inside the window (padding excluded).

__kernel void pool_forward(const int n, const int is_max, WINDOW_ARGS,
                           __global const float* x, __global float* y, __global int* argmax) {
    const int i = get_global_id(0);
    if (i >= n) return;
    int image, c;
    const int4 window = output_window(i, WINDOW_NAMES, &image, &c);
    const int hs = window.s0, he = window.s1, ws = window.s2, we = window.s3;
    float best = is_max ? -INFINITY : 0.0f;
    int where = -1;
    for (int ih = hs; ih < he; ++ih) {
        for (int iw = ws; iw < we; ++iw) {
            const float v = x[((image * in_h + ih) * in_w + iw) * channels + c];
            if (!is_max) best += v;
            else if (v > best || where < 0) { best = v; where = ih * in_w + iw; }
        }
    }
    y[i] = is_max ? best : best / (float)((he - hs) * (we - ws));
    if (is_max) argmax[i] = where;
}

// Each input element gathers from the windows that cover it.
__kernel void pool_backward(const int n, const int is_max, WINDOW_ARGS,
                            __global const float* dy, __global const int* argmax, __global float* dx) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const int c = i % channels, iw = (i / channels) % in_w, ih = (i / (channels * in_w)) % in_h;
    const int image = i / (channels * in_w * in_h);
    const int oh0 = max(0, (ih + pad_top - k_h + stride_h) / stride_h), oh1 = min(out_h - 1, (ih + pad_top) / stride_h);
    const int ow0 = max(0, (iw + pad_left - k_w + stride_w) / stride_w), ow1 = min(out_w - 1, (iw + pad_left) / stride_w);
    float sum = 0.0f;
    for (int oh = oh0; oh <= oh1; ++oh) {
        for (int ow = ow0; ow <= ow1; ++ow) {
            const int out = ((image * out_h + oh) * out_w + ow) * channels + c;
            if (is_max) {
                if (argmax[out] == ih * in_w + iw) sum += dy[out];
            } else {
                const int h0 = oh * stride_h - pad_top, w0 = ow * stride_w - pad_left;
                const int area = (min(h0 + k_h, in_h) - max(h0, 0)) * (min(w0 + k_w, in_w) - max(w0, 0));
                sum += dy[out] / (float)area;
            }
        }
    }
    dx[i] = sum;
}

// Max pooling whose windows do not overlap (stride ≥ kernel): each output writes its whole window,
// the gradient at the argmax and zeros elsewhere, so no input gathers over windows. Inputs outside
// every window are zeroed beforehand by the caller.
__kernel void max_pool_backward_disjoint(const int n, WINDOW_ARGS, __global const float* dy, __global const int* argmax,
                                         __global float* dx) {
    const int i = get_global_id(0);
    if (i >= n) return;
    int image, c;
    const int4 window = output_window(i, WINDOW_NAMES, &image, &c);
    const int where = argmax[i];
    const float g = dy[i];
    for (int ih = window.s0; ih < window.s1; ++ih)
        for (int iw = window.s2; iw < window.s3; ++iw) dx[((image * in_h + ih) * in_w + iw) * channels + c] = ih * in_w + iw == where ? g : 0.0f;
}
