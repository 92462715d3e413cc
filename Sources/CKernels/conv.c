// Direct NHWC convolution: no im2col copy (the forward loops are in conv_rows.h).
#include "conv_rows.h"

// dy[at ..< at + 16], zeroed where a fused ReLU's output `mask` is not positive.
#define masked(dy, mask, at) \
    ((mask) ? (vec)(*(const ivec *)((dy) + (at)) & (load((mask) + (at)) > 0)) : load((dy) + (at)))

enum { MAX_R = 12, CHUNK_FLOATS = 64 * 1024 };  // 256 KB of a core's L2

KILN_DISPATCH
void kiln_conv_forward(const kiln_conv *g, const float *x, const float *w, const float *bias, float *y,
                       int relu_out, long row_begin, long row_end) {
    for (long row = row_begin; row < row_end; ++row)
        conv_row(g, x, w, bias, relu_out, row / g->out_h, row % g->out_h, y + row * g->out_w * g->out_c);
}

void kiln_flip_kernel(const float *w, float *out, long k_h, long k_w, long in_c, long out_c) {
    for (long y = 0; y < k_h; ++y)
        for (long x = 0; x < k_w; ++x) {
            const float *tap = w + ((k_h - 1 - y) * k_w + k_w - 1 - x) * in_c * out_c;
            for (long o = 0; o < out_c; ++o)
                for (long i = 0; i < in_c; ++i) *out++ = tap[i * out_c + o];
        }
}

// R rows of dw (kernel taps at `offsets` from a patch's corner) × 16·V channels, summed over the
// output pixels of images [begin, end) and added onto dw when `accumulate` is set.
KILN_INLINE void weight_block(const kiln_conv *g, const float *x, const float *dy, const float *mask, const long *offsets,
                              float *dw, long begin, long end, int accumulate, const int R, const int V) {
    vec acc[MAX_R][2];
    UNROLL for (int r = 0; r < R; ++r)
        UNROLL for (int v = 0; v < 2; ++v) acc[r][v] = accumulate && v < V ? load(dw + r * g->out_c + v * LANES) : (vec){};
    for (long n = begin; n < end; ++n)
        for (long oh = 0; oh < g->out_h; ++oh) {
            const float *xrow = x + (n * g->in_h + oh * g->stride_h) * g->in_w * g->in_c;
            const long first = (n * g->out_h + oh) * g->out_w * g->out_c;
            for (long ow = 0; ow < g->out_w; ++ow) {
                const float *patch = xrow + ow * g->stride_w * g->in_c;
                const long at = first + ow * g->out_c;
                vec d0 = masked(dy, mask, at), d1 = V > 1 ? masked(dy, mask, at + LANES) : (vec){};
                UNROLL for (int r = 0; r < R; ++r) {
                    vec a = splat(patch[offsets[r]]);
                    acc[r][0] += a * d0;
                    if (V > 1) acc[r][1] += a * d1;
                }
            }
        }
    UNROLL for (int r = 0; r < R; ++r)
        UNROLL for (int v = 0; v < V; ++v) store(dw + r * g->out_c + v * LANES, acc[r][v]);
}

#define WEIGHT_CASE(R) case R: \
    if (V == 2) weight_block(g, x, dy, mask, offsets, dw, begin, end, accumulate, R, 2); \
    else weight_block(g, x, dy, mask, offsets, dw, begin, end, accumulate, R, 1); \
    break;

KILN_INLINE void weight_rows(const kiln_conv *g, const float *x, const float *dy, const float *mask, const long *offsets,
                             float *dw, long begin, long end, int accumulate, int rows, int V) {
    switch (rows) {
        WEIGHT_CASE(1) WEIGHT_CASE(2) WEIGHT_CASE(3) WEIGHT_CASE(4) WEIGHT_CASE(5) WEIGHT_CASE(6)
        WEIGHT_CASE(7) WEIGHT_CASE(8) WEIGHT_CASE(9) WEIGHT_CASE(10) WEIGHT_CASE(11) WEIGHT_CASE(12)
    }
}

KILN_DISPATCH
void kiln_conv_weight_grad(const kiln_conv *g, const float *x, const float *dy, const float *mask, float *dw, float *db,
                           long image_begin, long image_end) {
    const long taps = g->k_h * g->k_w * g->in_c, blocks = (taps + MAX_R - 1) / MAX_R;
    // Images a chunk at a time, so that a chunk's x and dy stay in cache across the tap blocks.
    const long floats = g->in_h * g->in_w * g->in_c + g->out_h * g->out_w * g->out_c;
    const long chunk = floats < CHUNK_FLOATS ? CHUNK_FLOATS / floats : 1;
    for (long begin = image_begin; begin < image_end; begin += chunk) {
        const long end = begin + chunk < image_end ? begin + chunk : image_end;
        for (long b = 0; b < blocks; ++b) {  // near-equal blocks of ≤ MAX_R taps
            const long first = taps * b / blocks, rows = taps * (b + 1) / blocks - first;
            long offsets[MAX_R];
            for (long r = 0; r < rows; ++r) {
                const long t = first + r, ky = t / (g->k_w * g->in_c), rest = t % (g->k_w * g->in_c);
                offsets[r] = ky * g->in_w * g->in_c + rest;  // rest = kx · in_c + ci
            }
            for (long c = 0; c < g->out_c; c += 2 * LANES)
                weight_rows(g, x, dy + c, mask ? mask + c : 0, offsets, dw + first * g->out_c + c, begin, end, begin > image_begin,
                            (int)rows, g->out_c - c >= 2 * LANES ? 2 : 1);
        }
    }
    if (!db) return;
    for (long c = 0; c < g->out_c; c += LANES) {
        vec sum = {};
        const long first = image_begin * g->out_h * g->out_w * g->out_c + c;
        for (long p = 0; p < (image_end - image_begin) * g->out_h * g->out_w; ++p) sum += masked(dy, mask, first + p * g->out_c);
        store(db + c, sum);
    }
}
