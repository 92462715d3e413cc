// Max pooling over NHWC images, 16 channels per vector. Argmax holds each maximum's position in
// its image (row · width + column), as the Swift and OpenCL backends write it.
#include "conv_rows.h"

// Output row `oh` of one image (at y, argmax); `rows` holds the image's input rows from `first_row` on.
KILN_INLINE void pool_row(const kiln_pool *g, const float *rows, long first_row, long oh, float *y, int *argmax) {
    const long c = g->channels, h0 = oh * g->stride_h - g->pad_top;
    const long hs = h0 > 0 ? h0 : 0, he = h0 + g->k_h < g->in_h ? h0 + g->k_h : g->in_h;
    for (long ow = 0; ow < g->out_w; ++ow) {
        const long w0 = ow * g->stride_w - g->pad_left;
        const long ws = w0 > 0 ? w0 : 0, we = w0 + g->k_w < g->in_w ? w0 + g->k_w : g->in_w;
        for (long ch = 0; ch < c; ch += LANES) {
            vec best = splat(-__builtin_inff());
            ivec index = (ivec){} + (int)(hs * g->in_w + ws);
            for (long ih = hs; ih < he; ++ih)
                for (long iw = ws; iw < we; ++iw) {
                    vec v = load(rows + ((ih - first_row) * g->in_w + iw) * c + ch);
                    ivec greater = v > best;  // all ones where a new maximum appears
                    index = (index & ~greater) | (((ivec){} + (int)(ih * g->in_w + iw)) & greater);
                    best = __builtin_elementwise_max(best, v);
                }
            store(y + ow * c + ch, best);
            *(ivec *)(argmax + ow * c + ch) = index;
        }
    }
}

KILN_DISPATCH
void kiln_max_pool(const kiln_pool *g, const float *x, float *y, int *argmax, long row_begin, long row_end) {
    for (long row = row_begin; row < row_end; ++row) {
        const long n = row / g->out_h, at = row * g->out_w * g->channels;
        pool_row(g, x + n * g->in_h * g->in_w * g->channels, 0, row % g->out_h, y + at, argmax + at);
    }
}

KILN_DISPATCH
void kiln_conv_max_pool(const kiln_conv *conv, const kiln_pool *pool, const float *x, const float *w,
                        const float *bias, int relu_out, float *y, int *argmax, float *rows,
                        long row_begin, long row_end) {
    const long row_floats = conv->out_w * conv->out_c;
    for (long row = row_begin; row < row_end; ++row) {
        const long n = row / pool->out_h, oh = row % pool->out_h, first = oh * pool->stride_h;
        for (long r = 0; r < pool->k_h; ++r) conv_row(conv, x, w, bias, relu_out, n, first + r, rows + r * row_floats);
        const long at = row * pool->out_w * pool->channels;
        pool_row(pool, rows, first, oh, y + at, argmax + at);
    }
}

KILN_DISPATCH
void kiln_max_pool_backward(const kiln_pool *g, const float *dy, const int *argmax, float *dx,
                            long image_begin, long image_end) {
    const long c = g->channels, pixels = g->in_h * g->in_w;
    // Windows that tile the image exactly (as 2×2 pooling of an even image does) write every
    // pixel once; otherwise the image is zeroed first and each window adds its share.
    const int tiles = g->k_h == g->stride_h && g->k_w == g->stride_w && g->pad_top == 0 && g->pad_left == 0
        && g->out_h * g->k_h == g->in_h && g->out_w * g->k_w == g->in_w;
    for (long n = image_begin; n < image_end; ++n) {
        float *image = dx + n * pixels * c;
        if (!tiles) for (long i = 0; i < pixels * c; i += LANES) store(image + i, (vec){});
        for (long oh = 0; oh < g->out_h; ++oh) {
            const long h0 = oh * g->stride_h - g->pad_top;
            const long hs = h0 > 0 ? h0 : 0, he = h0 + g->k_h < g->in_h ? h0 + g->k_h : g->in_h;
            for (long ow = 0; ow < g->out_w; ++ow) {
                const long w0 = ow * g->stride_w - g->pad_left;
                const long ws = w0 > 0 ? w0 : 0, we = w0 + g->k_w < g->in_w ? w0 + g->k_w : g->in_w;
                const long out = ((n * g->out_h + oh) * g->out_w + ow) * c;
                for (long ch = 0; ch < c; ch += LANES) {
                    const ivec index = *(const ivec *)(argmax + out + ch);
                    const ivec d = *(const ivec *)(dy + out + ch);
                    for (long ih = hs; ih < he; ++ih)
                        for (long iw = ws; iw < we; ++iw) {
                            float *p = image + (ih * g->in_w + iw) * c + ch;
                            ivec hit = index == ((ivec){} + (int)(ih * g->in_w + iw));
                            store(p, tiles ? (vec)(d & hit) : load(p) + (vec)(d & hit));
                        }
                }
            }
        }
    }
}
