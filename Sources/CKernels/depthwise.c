// Depthwise convolution of NHWC images (Keras DepthwiseConv2D): output channel c·m + j filters input
// channel c alone with weight w[kh][kw][c·m + j]. Padding is read as zeros by clipping each window's
// taps to the image, so no padded copy is made. Channels run 16 at a time when m = 1 (MobileNet's
// case); other multipliers and the channels past the last full vector run one at a time.
#include "kernels.h"
#include "vector.h"

// The taps [*first, *end) of a window starting at `origin` whose positions origin + k·dilation fall in [0, size).
KILN_INLINE void clip(long origin, long dilation, long taps, long size, long *first, long *end) {
    long f = origin < 0 ? (-origin + dilation - 1) / dilation : 0, e = 0;
    if (size > origin) e = (size - origin + dilation - 1) / dilation;
    if (e > taps) e = taps;
    *first = f;
    *end = e > f ? e : f;
}

// The window of output pixel (oh, ow): its top-left input position and the taps inside the image.
typedef struct { long ih0, iw0, kh0, kh1, kw0, kw1; } window;

KILN_INLINE window output_window(const kiln_depthwise *g, long oh, long ow) {
    window v = {oh * g->stride_h - g->pad_top, ow * g->stride_w - g->pad_left};
    clip(v.ih0, g->dilation_h, g->k_h, g->in_h, &v.kh0, &v.kh1);
    clip(v.iw0, g->dilation_w, g->k_w, g->in_w, &v.kw0, &v.kw1);
    return v;
}

KILN_DISPATCH
void kiln_depthwise_forward(const kiln_depthwise *g, const float *x, const float *w, const float *bias, int relu_out,
                            float *y, long row_begin, long row_end) {
    const long C = g->channels, M = g->multiplier, OC = C * M, vectors = M == 1 ? C / LANES * LANES : 0;
    for (long row = row_begin; row < row_end; ++row) {
        const float *image = x + row / g->out_h * g->in_h * g->in_w * C;
        for (long ow = 0; ow < g->out_w; ++ow) {
            const window v = output_window(g, row % g->out_h, ow);
            const long ih0 = v.ih0, iw0 = v.iw0, kh0 = v.kh0, kh1 = v.kh1, kw0 = v.kw0, kw1 = v.kw1;
            float *out = y + (row * g->out_w + ow) * OC;
            for (long c = 0; c < vectors; c += LANES) {
                vec acc = bias ? load(bias + c) : (vec){};
                for (long kh = kh0; kh < kh1; ++kh) {
                    const float *xr = image + ((ih0 + kh * g->dilation_h) * g->in_w + iw0) * C + c, *wr = w + kh * g->k_w * OC + c;
                    for (long kw = kw0; kw < kw1; ++kw) acc += load(xr + kw * g->dilation_w * C) * load(wr + kw * OC);
                }
                store(out + c, relu_out ? relu(acc) : acc);
            }
            for (long o = vectors; o < OC; ++o) {
                float acc = bias ? bias[o] : 0;
                for (long kh = kh0; kh < kh1; ++kh)
                    for (long kw = kw0; kw < kw1; ++kw)
                        acc += image[((ih0 + kh * g->dilation_h) * g->in_w + iw0 + kw * g->dilation_w) * C + o / M] * w[(kh * g->k_w + kw) * OC + o];
                out[o] = relu_out && acc < 0 ? 0 : acc;
            }
        }
    }
}

// The output position that tap k of an axis reads input position i from, or −1 when none does.
KILN_INLINE long source(long i, long k, long pad, long dilation, long stride, long out) {
    const long t = i + pad - k * dilation;
    return t < 0 || t % stride || t / stride >= out ? -1 : t / stride;
}

KILN_DISPATCH
void kiln_depthwise_input_grad(const kiln_depthwise *g, const float *dy, const float *w, float *dx, long row_begin, long row_end) {
    const long C = g->channels, M = g->multiplier, OC = C * M, vectors = M == 1 ? C / LANES * LANES : 0;
    for (long row = row_begin; row < row_end; ++row) {  // row = image · in_h + ih
        const long n = row / g->in_h, ih = row % g->in_h;
        for (long iw = 0; iw < g->in_w; ++iw) {
            float *d = dx + (row * g->in_w + iw) * C;
            for (long c = 0; c < C; ++c) d[c] = 0;
            for (long kh = 0; kh < g->k_h; ++kh) {
                const long oh = source(ih, kh, g->pad_top, g->dilation_h, g->stride_h, g->out_h);
                if (oh < 0) continue;
                for (long kw = 0; kw < g->k_w; ++kw) {
                    const long ow = source(iw, kw, g->pad_left, g->dilation_w, g->stride_w, g->out_w);
                    if (ow < 0) continue;
                    const float *grad = dy + ((n * g->out_h + oh) * g->out_w + ow) * OC, *tap = w + (kh * g->k_w + kw) * OC;
                    for (long c = 0; c < vectors; c += LANES) store(d + c, load(d + c) + load(grad + c) * load(tap + c));
                    for (long o = vectors; o < OC; ++o) d[o / M] += grad[o] * tap[o];
                }
            }
        }
    }
}

KILN_DISPATCH
void kiln_depthwise_weight_grad(const kiln_depthwise *g, const float *x, const float *dy, float *dw, float *db,
                                long image_begin, long image_end) {
    const long C = g->channels, M = g->multiplier, OC = C * M, vectors = M == 1 ? C / LANES * LANES : 0;
    for (long i = 0; i < g->k_h * g->k_w * OC; ++i) dw[i] = 0;
    if (db) for (long o = 0; o < OC; ++o) db[o] = 0;
    for (long n = image_begin; n < image_end; ++n) {
        const float *image = x + n * g->in_h * g->in_w * C;
        for (long oh = 0; oh < g->out_h; ++oh) {
            for (long ow = 0; ow < g->out_w; ++ow) {
                const window v = output_window(g, oh, ow);
                const long ih0 = v.ih0, iw0 = v.iw0, kh0 = v.kh0, kh1 = v.kh1, kw0 = v.kw0, kw1 = v.kw1;
                const float *grad = dy + ((n * g->out_h + oh) * g->out_w + ow) * OC;
                if (db) {
                    for (long c = 0; c < vectors; c += LANES) store(db + c, load(db + c) + load(grad + c));
                    for (long o = vectors; o < OC; ++o) db[o] += grad[o];
                }
                for (long kh = kh0; kh < kh1; ++kh)
                    for (long kw = kw0; kw < kw1; ++kw) {
                        const float *pixel = image + ((ih0 + kh * g->dilation_h) * g->in_w + iw0 + kw * g->dilation_w) * C;
                        float *tap = dw + (kh * g->k_w + kw) * OC;
                        for (long c = 0; c < vectors; c += LANES) store(tap + c, load(tap + c) + load(pixel + c) * load(grad + c));
                        for (long o = vectors; o < OC; ++o) tap[o] += pixel[o / M] * grad[o];
                    }
            }
        }
    }
}
