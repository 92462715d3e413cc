// Batch normalisation over channels-last rows ([rows, channels], NHWC images and dense rows): the
// per-channel sums and the per-channel affine maps, vectorised along the channels.
#include "kernels.h"
#include "vector.h"

KILN_DISPATCH
void kiln_norm_sums(int what, const float *x, const float *dy, const float *mean, const float *inv_std, float *sums,
                    long channels, long begin, long end) {
    for (long row = begin; row < end; ++row) {
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
