// The forward convolution's inner loops, shared by the plain kernel (conv.c) and the one fused
// with max pooling (pool.c). Output pixels are taken P at a time along a row and output channels
// 16·V at a time, so that P·V vector accumulators stay in registers while the loop runs over the
// kernel; the kernel's weights for those channels stay in L1.
#ifndef KILN_CONV_ROWS_H
#define KILN_CONV_ROWS_H
#include "kernels.h"
#include "vector.h"

enum { MAX_P = 8 };

// P output pixels (input pointers `stride` apart) × 16·V channels. For each kernel row the patch
// (kx, ci) is contiguous in NHWC, `span` floats long; `rows` of them lie `row_step` apart.
KILN_INLINE void forward_block(const float *x, long stride, long rows, long row_step, long span,
                               const float *w, long ldw, const float *bias, float *y, long ldy,
                               int relu_out, const int P, const int V) {
    vec acc[MAX_P][2];
    UNROLL for (int v = 0; v < V; ++v) {
        vec b = bias ? load(bias + v * LANES) : (vec){};
        UNROLL for (int p = 0; p < P; ++p) acc[p][v] = b;
    }
    for (long r = 0; r < rows; ++r) {
        const float *xr = x + r * row_step, *wr = w + r * span * ldw;
        for (long k = 0; k < span; ++k) {
            vec b0 = load(wr + k * ldw), b1 = V > 1 ? load(wr + k * ldw + LANES) : (vec){};
            UNROLL for (int p = 0; p < P; ++p) {
                vec a = splat(xr[p * stride + k]);
                acc[p][0] += a * b0;
                if (V > 1) acc[p][1] += a * b1;
            }
        }
    }
    UNROLL for (int p = 0; p < P; ++p)
        UNROLL for (int v = 0; v < V; ++v) store(y + p * ldy + v * LANES, relu_out ? relu(acc[p][v]) : acc[p][v]);
}

#define FORWARD_CASE(P) case P: \
    if (V == 2) forward_block(x, stride, g->k_h, row_step, span, w, g->out_c, bias, y, g->out_c, relu_out, P, 2); \
    else forward_block(x, stride, g->k_h, row_step, span, w, g->out_c, bias, y, g->out_c, relu_out, P, 1); \
    break;

KILN_INLINE void forward_pixels(const kiln_conv *g, const float *x, const float *w, const float *bias, float *y,
                                int relu_out, int pixels, int V) {
    const long stride = g->stride_w * g->in_c, row_step = g->in_w * g->in_c, span = g->k_w * g->in_c;
    switch (pixels) {
        FORWARD_CASE(1) FORWARD_CASE(2) FORWARD_CASE(3) FORWARD_CASE(4)
        FORWARD_CASE(5) FORWARD_CASE(6) FORWARD_CASE(7) FORWARD_CASE(8)
    }
}

// Output row `oh` of image `n` (out_w × out_c floats at `yrow`).
KILN_INLINE void conv_row(const kiln_conv *g, const float *x, const float *w, const float *bias, int relu_out,
                          long n, long oh, float *yrow) {
    const float *xrow = x + (n * g->in_h + oh * g->stride_h) * g->in_w * g->in_c;
    for (long c = 0; c < g->out_c; c += 2 * LANES) {
        const int V = g->out_c - c >= 2 * LANES ? 2 : 1;
        // Near-equal blocks of ≤ MAX_P pixels (26 = 7 + 7 + 6 + 6, not 8 + 8 + 8 + 2): a short
        // block has too few accumulators to hide the FMA latency.
        const long blocks = (g->out_w + MAX_P - 1) / MAX_P;
        for (long b = 0; b < blocks; ++b) {
            const long ow = g->out_w * b / blocks;
            forward_pixels(g, xrow + ow * g->stride_w * g->in_c, w + c, bias ? bias + c : 0,
                           yrow + ow * g->out_c + c, relu_out, (int)(g->out_w * (b + 1) / blocks - ow), V);
        }
    }
}
#endif
