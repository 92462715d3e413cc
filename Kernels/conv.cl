// im2col and its adjoint for NHWC images; the GEMM between them is CLBlast's.
// Reference: CPU/CPUConvolution.swift. Column matrix: row (n, oh, ow), column (kh, kw, c).

// x points at the first image of the chunk: x + x_offset.
__kernel void im2col(const int n, WINDOW_ARGS, __global const float* x, const int x_offset, __global float* col) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const int patch = k_h * k_w * channels;
    const int row = i / patch, k = i % patch;
    const int c = k % channels, kw = (k / channels) % k_w, kh = k / (channels * k_w);
    const int ow = row % out_w, oh = (row / out_w) % out_h, image = row / (out_w * out_h);
    const int ih = oh * stride_h - pad_top + kh, iw = ow * stride_w - pad_left + kw;
    col[i] = (ih >= 0 && ih < in_h && iw >= 0 && iw < in_w) ? x[x_offset + ((image * in_h + ih) * in_w + iw) * channels + c] : 0.0f;
}

// Each input element gathers the column entries that came from it (no atomics needed).
__kernel void col2im(const int n, WINDOW_ARGS, __global const float* col, __global float* x, const int x_offset) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const int c = i % channels, iw = (i / channels) % in_w, ih = (i / (channels * in_w)) % in_h;
    const int image = i / (channels * in_w * in_h);
    const int patch = k_h * k_w * channels;
    float sum = 0.0f;
    for (int kh = 0; kh < k_h; ++kh) {
        const int h = ih + pad_top - kh;
        if (h < 0 || h % stride_h != 0 || h / stride_h >= out_h) continue;
        for (int kw = 0; kw < k_w; ++kw) {
            const int w = iw + pad_left - kw;
            if (w < 0 || w % stride_w != 0 || w / stride_w >= out_w) continue;
            const int row = (image * out_h + h / stride_h) * out_w + w / stride_w;
            sum += col[row * patch + (kh * k_w + kw) * channels + c];
        }
    }
    x[x_offset + i] = sum;
}
