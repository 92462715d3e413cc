// Batch normalisation over channels-last rows ([rows, channels], NHWC images and dense rows): the
// per-channel sums and the per-channel affine maps, vectorised along the channels.
#include "kernels.h"
#include "vector.h"

// Four rows per pass over the sums: short rows (8–24 channels in MobileNets) would otherwise wait on
// the previous row's stores to the same sums.
#define ROWS4(EXPR, row0) ({ const long r_ = (row0); float t_ = 0; for (int k_ = 0; k_ < 4; ++k_) { const long at = (r_ + k_) * channels + c; t_ += (EXPR); } t_; })

KILN_DISPATCH
void kiln_norm_sums(int what, const float *x, const float *dy, const float *mean, const float *inv_std, float *sums,
                    long channels, long begin, long end) {
    long row = begin;
    for (; row + 4 <= end; row += 4) {
        switch (what) {
        case KILN_NORM_MEAN: for (long c = 0; c < channels; ++c) sums[c] += ROWS4(x[at], row); break;
        case KILN_NORM_VARIANCE:
            for (long c = 0; c < channels; ++c) sums[c] += ROWS4((x[at] - mean[c]) * (x[at] - mean[c]), row);
            break;
        case KILN_NORM_GRADIENT:
            for (long c = 0; c < channels; ++c) {
                sums[c] += ROWS4(dy[at], row);
                sums[channels + c] += ROWS4(dy[at] * (x[at] - mean[c]), row) * inv_std[c];
            }
            break;
        }
    }
    for (; row < end; ++row) {
        const float *xr = x + row * channels, *dr = dy ? dy + row * channels : 0;
        switch (what) {
        case KILN_NORM_MEAN: for (long c = 0; c < channels; ++c) sums[c] += xr[c]; break;
        case KILN_NORM_VARIANCE:
            for (long c = 0; c < channels; ++c) { const float d = xr[c] - mean[c]; sums[c] += d * d; }
            break;
        case KILN_NORM_GRADIENT:
            for (long c = 0; c < channels; ++c) {
                sums[c] += dr[c];
                sums[channels + c] += dr[c] * (xr[c] - mean[c]) * inv_std[c];
            }
            break;
        }
    }
}

KILN_DISPATCH
void kiln_norm_apply(const float *x, const float *dy, float *y, const float *a, const float *b, const float *shift,
                     long channels, long begin, long end) {
    for (long row = begin; row < end; ++row) {
        const float *xr = x + row * channels;
        float *yr = y + row * channels;
        if (dy) {
            const float *dr = dy + row * channels;
            for (long c = 0; c < channels; ++c) yr[c] = a[c] * dr[c] + b[c] * xr[c] + shift[c];
        } else {
            for (long c = 0; c < channels; ++c) yr[c] = a[c] * xr[c] + shift[c];
        }
    }
}
