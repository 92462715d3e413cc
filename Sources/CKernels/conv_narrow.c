// Direct NHWC convolution with fewer than 16 output channels (an image's last layer: 1 or 3
// channels), where the 16-channel blocks of conv.c do not apply and im2col + GEMM would copy every
// patch for a product with one to fifteen columns. Each kernel row of a patch is `span = k_w·in_c`
// contiguous floats, dotted with (forward), scaled into (input gradient) or summed into (weight
// gradient) the same row of each output channel's weights, `wt` laid out [out_c][k_h][span].
#include "kernels.h"
#include "vector.h"

enum { MAX_C = 15 };

#define hsum(v_) ({ const vec h_ = (v_); float s_ = 0; for (int l_ = 0; l_ < LANES; ++l_) s_ += h_[l_]; s_; })

// The C pre-activation gradients of the output pixel at `at` into d (zero where a fused ReLU's output
// `mask` is not positive); whether any is non-zero.
KILN_INLINE int pixel_gradients(const float *dy, const float *mask, long at, long C, float *d) {
    int any = 0;
    for (long o = 0; o < C; ++o) any |= (d[o] = mask && mask[at + o] <= 0 ? 0.0f : dy[at + o]) != 0;
    return any;
}

KILN_INLINE void forward_pixel(const kiln_conv *g, const float *patch, const float *wt, const float *bias, float *y, int relu_out, const int C) {
    const long span = g->k_w * g->in_c, row_step = g->in_w * g->in_c, full = span / LANES * LANES;
    vec acc[MAX_C];
    float tail[MAX_C];
    UNROLL for (int o = 0; o < C; ++o) { acc[o] = (vec){}; tail[o] = bias ? bias[o] : 0; }
    for (long r = 0; r < g->k_h; ++r) {
        const float *xr = patch + r * row_step, *wr = wt + r * span;
        for (long k = 0; k < full; k += LANES) {
            const vec a = load(xr + k);
            UNROLL for (int o = 0; o < C; ++o) acc[o] += a * load(wr + o * g->k_h * span + k);
        }
        for (long k = full; k < span; ++k) UNROLL for (int o = 0; o < C; ++o) tail[o] += xr[k] * wr[o * g->k_h * span + k];
    }
    UNROLL for (int o = 0; o < C; ++o) {
        const float v = hsum(acc[o]) + tail[o];
        y[o] = relu_out && v < 0 ? 0 : v;
    }
}

#define FORWARD_CASE(C) case C: forward_pixel(g, patch, wt, bias, yp, relu_out, C); break;

KILN_DISPATCH
void kiln_conv_narrow_forward(const kiln_conv *g, const float *x, const float *wt, const float *bias, float *y,
                              int relu_out, long row_begin, long row_end) {
    for (long row = row_begin; row < row_end; ++row) {
        const float *xrow = x + (row / g->out_h * g->in_h + row % g->out_h * g->stride_h) * g->in_w * g->in_c;
        for (long ow = 0; ow < g->out_w; ++ow) {
            const float *patch = xrow + ow * g->stride_w * g->in_c;
            float *yp = y + (row * g->out_w + ow) * g->out_c;
            switch (g->out_c) {
                FORWARD_CASE(1) FORWARD_CASE(2) FORWARD_CASE(3) FORWARD_CASE(4) FORWARD_CASE(5)
                FORWARD_CASE(6) FORWARD_CASE(7) FORWARD_CASE(8) FORWARD_CASE(9) FORWARD_CASE(10)
                FORWARD_CASE(11) FORWARD_CASE(12) FORWARD_CASE(13) FORWARD_CASE(14) FORWARD_CASE(15)
            }
        }
    }
}

KILN_DISPATCH
void kiln_conv_narrow_backward_data(const kiln_conv *g, const float *dy, const float *mask, const float *wt, float *dx,
                                    long image_begin, long image_end) {
    const long span = g->k_w * g->in_c, row_step = g->in_w * g->in_c, full = span / LANES * LANES, C = g->out_c;
    for (long n = image_begin; n < image_end; ++n) {
        float *image = dx + n * g->in_h * row_step;
        for (long i = 0; i < g->in_h * row_step; ++i) image[i] = 0;
        for (long oh = 0; oh < g->out_h; ++oh)
            for (long ow = 0; ow < g->out_w; ++ow) {
                float d[MAX_C];
                if (!pixel_gradients(dy, mask, ((n * g->out_h + oh) * g->out_w + ow) * C, C, d)) continue;
                float *patch = image + oh * g->stride_h * row_step + ow * g->stride_w * g->in_c;
                for (long r = 0; r < g->k_h; ++r) {
                    float *xr = patch + r * row_step;
                    const float *wr = wt + r * span;
                    for (long k = 0; k < full; k += LANES) {
                        vec sum = load(xr + k);
                        for (long o = 0; o < C; ++o) sum += d[o] * load(wr + o * g->k_h * span + k);
                        store(xr + k, sum);
                    }
                    for (long k = full; k < span; ++k)
                        for (long o = 0; o < C; ++o) xr[k] += d[o] * wr[o * g->k_h * span + k];
                }
            }
    }
}

// Sums an image at a time into `image_sums` (the caller's scratch, as large as dwt and db), then
// adds it to the totals: rounding grows with one image's pixels, not the whole batch's.
KILN_DISPATCH
void kiln_conv_narrow_weight_grad(const kiln_conv *g, const float *x, const float *dy, const float *mask, float *dwt, float *db,
                                  float *image_sums, long image_begin, long image_end) {
    const long span = g->k_w * g->in_c, row_step = g->in_w * g->in_c, full = span / LANES * LANES, C = g->out_c;
    const long weights = C * g->k_h * span;
    for (long i = 0; i < weights; ++i) dwt[i] = 0;
    if (db) for (long o = 0; o < C; ++o) db[o] = 0;
    for (long n = image_begin; n < image_end; ++n) {
        float *sums = image_sums, *bias_sums = image_sums + weights;
        for (long i = 0; i < weights + C; ++i) sums[i] = 0;
        for (long oh = 0; oh < g->out_h; ++oh)
            for (long ow = 0; ow < g->out_w; ++ow) {
                float d[MAX_C];
                const int any = pixel_gradients(dy, mask, ((n * g->out_h + oh) * g->out_w + ow) * C, C, d);
                for (long o = 0; o < C; ++o) bias_sums[o] += d[o];
                if (!any) continue;
                const float *patch = x + (n * g->in_h + oh * g->stride_h) * row_step + ow * g->stride_w * g->in_c;
                for (long r = 0; r < g->k_h; ++r) {
                    const float *xr = patch + r * row_step;
                    for (long o = 0; o < C; ++o) {
                        float *wr = sums + (o * g->k_h + r) * span;
                        for (long k = 0; k < full; k += LANES) store(wr + k, load(wr + k) + d[o] * load(xr + k));
                        for (long k = full; k < span; ++k) wr[k] += d[o] * xr[k];
                    }
                }
            }
        for (long i = 0; i < weights; ++i) dwt[i] += sums[i];
        if (db) for (long o = 0; o < C; ++o) db[o] += bias_sums[o];
    }
}
