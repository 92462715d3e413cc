// Max pooling over NHWC images, 16 channels per vector. Argmax holds each maximum's position in
// its image (row · width + column), as the Swift and OpenCL backends write it.
#include "kernels.h"
#include "vector.h"

KILN_DISPATCH
void kiln_max_pool(const kiln_pool *g, const float *x, float *y, int *argmax, long row_begin, long row_end) {
    const long c = g->channels;
    for (long row = row_begin; row < row_end; ++row) {
        const long n = row / g->out_h, oh = row % g->out_h, h0 = oh * g->stride_h - g->pad_top;
        const long hs = h0 > 0 ? h0 : 0, he = h0 + g->k_h < g->in_h ? h0 + g->k_h : g->in_h;
        for (long ow = 0; ow < g->out_w; ++ow) {
            const long w0 = ow * g->stride_w - g->pad_left;
            const long ws = w0 > 0 ? w0 : 0, we = w0 + g->k_w < g->in_w ? w0 + g->k_w : g->in_w;
            const long out = (row * g->out_w + ow) * c;
            for (long ch = 0; ch < c; ch += LANES) {
                vec best = splat(-__builtin_inff());
                ivec index = (ivec){} + (int)(hs * g->in_w + ws);
                for (long ih = hs; ih < he; ++ih)
                    for (long iw = ws; iw < we; ++iw) {
                        vec v = load(x + ((n * g->in_h + ih) * g->in_w + iw) * c + ch);
                        ivec greater = v > best;  // all ones where a new maximum appears
                        index = (index & ~greater) | (((ivec){} + (int)(ih * g->in_w + iw)) & greater);
                        best = __builtin_elementwise_max(best, v);
                    }
                store(y + out + ch, best);
                *(ivec *)(argmax + out + ch) = index;
            }
        }
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
