// The CPU backend's vectorised inner loops. Each entry point is compiled for AVX-512, AVX2+FMA and
// the baseline instruction set, and the loader picks the widest one the CPU has (target_clones).
// Callers split work over threads; every function here runs on the calling thread.
#ifndef KILN_KERNELS_H
#define KILN_KERNELS_H

// A valid (unpadded) 2-D convolution of an NHWC batch with an HWIO kernel. Callers pad the input
// themselves when the layer pads.
typedef struct {
    long batch, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, stride_h, stride_w;
} kiln_conv;

// y = bias + x ⊛ w over output rows [row_begin, row_end) of the batch (row = image · out_h + oh),
// then max(y, 0) when `relu` is set. `bias` may be NULL. Needs out_c % 16 == 0.
void kiln_conv_forward(const kiln_conv *g, const float *x, const float *w, const float *bias, float *y,
                       int relu, long row_begin, long row_end);

// dw = Σ x-patch ⊗ dy and db = Σ dy over images [image_begin, image_end) (overwriting both;
// `db` may be NULL). Needs out_c % 16 == 0.
void kiln_conv_weight_grad(const kiln_conv *g, const float *x, const float *dy, float *dw, float *db,
                           long image_begin, long image_end);

// Runs `iterations` rounds of 8 independent FMA chains at the widest vector width the CPU has
// (AVX-512, AVX2+FMA, else SSE mul+add) and returns the floating-point operations done.
double kiln_fma_flops(long iterations);
#endif
