// Max and average pooling over NHWC images. Reference: CPU/CPUConvolution.swift.
// Average pooling divides by the input pixels inside the window (padding excluded).

// Each work-item takes `lanes` consecutive channels of one pixel: 4 (one vector load and store per
// pixel of the window) when the channels are a multiple of 4, else 1 (the vectors' lane 0).
inline float4 load_lanes(__global const float* p, const int lanes) { return lanes == 4 ? vload4(0, p) : (float4)(*p); }
inline int4 load_int_lanes(__global const int* p, const int lanes) { return lanes == 4 ? vload4(0, p) : (int4)(*p); }
inline void store_lanes(const float4 v, __global float* p, const int lanes) { if (lanes == 4) vstore4(v, 0, p); else *p = v.s0; }

__kernel void pool_forward(const int n, const int lanes, const int is_max, WINDOW_ARGS,
                           __global const float* x, __global float* y, __global int* argmax) {
    const int i = get_global_id(0) * lanes;
    if (i >= n) return;
    int image, c;
    const int4 window = output_window(i, WINDOW_NAMES, &image, &c);
    const int hs = window.s0, he = window.s1, ws = window.s2, we = window.s3;
    float4 best = is_max ? -INFINITY : 0.0f;
    int4 where = -1;
    for (int ih = hs; ih < he; ++ih) {
        for (int iw = ws; iw < we; ++iw) {
            const float4 v = load_lanes(x + ((image * in_h + ih) * in_w + iw) * channels + c, lanes);
            if (!is_max) {
                best += v;
            } else {
                const int4 take = v > best || where < 0;
                best = select(best, v, take);
                where = select(where, (int4)(ih * in_w + iw), take);
            }
        }
    }
    store_lanes(is_max ? best : best / (float)((he - hs) * (we - ws)), y + i, lanes);
    if (is_max && lanes == 4) vstore4(where, 0, argmax + i);
    else if (is_max) argmax[i] = where.s0;
}

// Each input element gathers from the windows that cover it (`lanes` channels per work-item, as above).
__kernel void pool_backward(const int n, const int lanes, const int is_max, WINDOW_ARGS,
                            __global const float* dy, __global const int* argmax, __global float* dx) {
    const int i = get_global_id(0) * lanes;
    if (i >= n) return;
    const int c = i % channels, iw = (i / channels) % in_w, ih = (i / (channels * in_w)) % in_h;
    const int image = i / (channels * in_w * in_h);
    const int oh0 = max(0, (ih + pad_top - k_h + stride_h) / stride_h), oh1 = min(out_h - 1, (ih + pad_top) / stride_h);
    const int ow0 = max(0, (iw + pad_left - k_w + stride_w) / stride_w), ow1 = min(out_w - 1, (iw + pad_left) / stride_w);
    float4 sum = 0.0f;
    for (int oh = oh0; oh <= oh1; ++oh) {
        for (int ow = ow0; ow <= ow1; ++ow) {
            const int out = ((image * out_h + oh) * out_w + ow) * channels + c;
            const float4 g = load_lanes(dy + out, lanes);
            if (is_max) {
                sum += select((float4)(0.0f), g, load_int_lanes(argmax + out, lanes) == (int4)(ih * in_w + iw));
            } else {
                const int h0 = oh * stride_h - pad_top, w0 = ow * stride_w - pad_left;
                const int area = (min(h0 + k_h, in_h) - max(h0, 0)) * (min(w0 + k_w, in_w) - max(w0, 0));
                sum += g / (float)area;
            }
        }
    }
    store_lanes(sum, dx + i, lanes);
}

// Max pooling whose windows do not overlap (stride ≥ kernel): each output writes its whole window,
// the gradient at the argmax and zeros elsewhere, so no input gathers over windows. Inputs outside
// every window are zeroed beforehand by the caller.
__kernel void max_pool_backward_disjoint(const int n, const int lanes, WINDOW_ARGS, __global const float* dy,
                                         __global const int* argmax, __global float* dx) {
    const int i = get_global_id(0) * lanes;
    if (i >= n) return;
    int image, c;
    const int4 window = output_window(i, WINDOW_NAMES, &image, &c);
    const int4 where = load_int_lanes(argmax + i, lanes);
    const float4 g = load_lanes(dy + i, lanes);
    for (int ih = window.s0; ih < window.s1; ++ih)
        for (int iw = window.s2; iw < window.s3; ++iw)
            store_lanes(select((float4)(0.0f), g, where == (int4)(ih * in_w + iw)), dx + ((image * in_h + ih) * in_w + iw) * channels + c, lanes);
}
