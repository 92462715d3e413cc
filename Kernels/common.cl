// Helpers compiled in front of every other kernel file.

// Offset of output element i in an operand with the given strides (8 axes, row-major shape).
inline int strided_offset(int i, const int8 shape, const int8 strides) {
    const int s[8] = {shape.s0, shape.s1, shape.s2, shape.s3, shape.s4, shape.s5, shape.s6, shape.s7};
    const int t[8] = {strides.s0, strides.s1, strides.s2, strides.s3, strides.s4, strides.s5, strides.s6, strides.s7};
    int offset = 0;
    for (int axis = 7; axis >= 0; --axis) {
        offset += (i % s[axis]) * t[axis];
        i /= s[axis];
    }
    return offset;
}

// Work-group size of the reduction kernels (one group per reduced output).
#define GROUP 64

// Sum (or max when is_max) of each work-item's value over a GROUP-sized work-group; every item gets it.
inline float group_reduce(__local float* scratch, float value, const int is_max) {
    const int lid = get_local_id(0);
    scratch[lid] = value;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int width = GROUP / 2; width > 0; width >>= 1) {
        if (lid < width) scratch[lid] = is_max ? fmax(scratch[lid], scratch[lid + width]) : scratch[lid] + scratch[lid + width];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float result = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return result;
}

// A sliding window over NHWC images (Window2D in Device/Geometry.swift).
#define WINDOW_ARGS const int in_h, const int in_w, const int channels, const int k_h, const int k_w, \
    const int stride_h, const int stride_w, const int pad_top, const int pad_left, const int out_h, const int out_w
#define WINDOW_NAMES in_h, in_w, channels, k_h, k_w, stride_h, stride_w, pad_top, pad_left, out_h, out_w

// Output element i's window clipped to the image (rows s0 ≤ ih < s1, columns s2 ≤ iw < s3), its image and channel.
inline int4 output_window(const int i, WINDOW_ARGS, int* image, int* c) {
    *c = i % channels;
    *image = i / (channels * out_w * out_h);
    const int h0 = (i / (channels * out_w)) % out_h * stride_h - pad_top, w0 = (i / channels) % out_w * stride_w - pad_left;
    return (int4)(max(h0, 0), min(h0 + k_h, in_h), max(w0, 0), min(w0 + k_w, in_w));
}
