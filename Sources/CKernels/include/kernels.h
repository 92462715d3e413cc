// The CPU backend's vectorised inner loops and its thread pool. On x86-64 each kernel is compiled
// for AVX-512, AVX2+FMA and the baseline instruction set, and the loader picks the widest one the
// CPU has (target_clones). Callers split work over threads; every kernel runs on the calling thread.
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
// `db` may be NULL). With a `mask` (the output of a forward pass with ReLU), dy counts only where
// the mask is positive. Needs out_c % 16 == 0.
void kiln_conv_weight_grad(const kiln_conv *g, const float *x, const float *dy, const float *mask, float *dw, float *db,
                           long image_begin, long image_end);

// The same three passes for out_c < 16, with the weights laid out `wt` [out_c][k_h][k_w·in_c]:
// y = bias + x ⊛ w (then max(y, 0) when `relu`) over output rows [row_begin, row_end); dx (the
// unpadded-valid input's gradient, overwritten) over images [image_begin, image_end); dwt and db
// (overwritten; `db` may be NULL) summed over those images, each first into `image_sums` (scratch of
// dwt's and db's size). `mask` as kiln_conv_weight_grad's.
void kiln_conv_narrow_forward(const kiln_conv *g, const float *x, const float *wt, const float *bias, float *y,
                              int relu, long row_begin, long row_end);
void kiln_conv_narrow_backward_data(const kiln_conv *g, const float *dy, const float *mask, const float *wt, float *dx,
                                    long image_begin, long image_end);
void kiln_conv_narrow_weight_grad(const kiln_conv *g, const float *x, const float *dy, const float *mask, float *dwt, float *db,
                                  float *image_sums, long image_begin, long image_end);

// out = w turned 180° with in and out channels swapped: out[y][x][o][i] = w[k_h−1−y][k_w−1−x][i][o]
// (the kernel of the input gradient as a convolution of the output gradient).
void kiln_flip_kernel(const float *w, float *out, long k_h, long k_w, long in_c, long out_c);

// A depthwise convolution (groups = channels, `multiplier` outputs per channel) of an NHWC batch,
// padded and dilated as its window says; weights (k_h, k_w, channels · multiplier).
typedef struct {
    long batch, in_h, in_w, channels, multiplier, out_h, out_w, k_h, k_w, stride_h, stride_w,
        dilation_h, dilation_w, pad_top, pad_left;
} kiln_depthwise;

// y = bias + x ⊛ w over output rows [row_begin, row_end) (row = image · out_h + oh), then max(y, 0)
// when `relu` is set. `bias` may be NULL.
void kiln_depthwise_forward(const kiln_depthwise *g, const float *x, const float *w, const float *bias, int relu,
                            float *y, long row_begin, long row_end);
// dx over input rows [row_begin, row_end) (row = image · in_h + ih), overwritten.
void kiln_depthwise_input_grad(const kiln_depthwise *g, const float *dy, const float *w, float *dx, long row_begin, long row_end);
// dw and db (may be NULL) from images [image_begin, image_end), overwritten.
void kiln_depthwise_weight_grad(const kiln_depthwise *g, const float *x, const float *dy, float *dw, float *db,
                                long image_begin, long image_end);

// A 2-D pooling window over an NHWC batch; windows are clipped to the image (padding excluded).
typedef struct {
    long batch, in_h, in_w, channels, out_h, out_w, k_h, k_w, stride_h, stride_w, pad_top, pad_left;
} kiln_pool;

// Max pooling over output rows [row_begin, row_end) (row = image · out_h + oh). Needs channels % 16 == 0.
void kiln_max_pool(const kiln_pool *g, const float *x, float *y, int *argmax, long row_begin, long row_end);

// kiln_conv_forward then kiln_max_pool over pooled rows [row_begin, row_end), with only the
// `pool.k_h` convolution rows of one pooled row in memory at a time (in `rows`: k_h · out_w · out_c
// floats). Needs an unpadded pool whose windows stay inside the convolution's output.
void kiln_conv_max_pool(const kiln_conv *conv, const kiln_pool *pool, const float *x, const float *w,
                        const float *bias, int relu_out, float *y, int *argmax, float *rows,
                        long row_begin, long row_end);

// dx = dy routed back to each window's argmax (overwriting dx) for images [image_begin, image_end).
void kiln_max_pool_backward(const kiln_pool *g, const float *dy, const int *argmax, float *dx,
                            long image_begin, long image_end);

// y = max(x, 0); dx = x > 0 ? dy : 0.
void kiln_relu(const float *x, float *y, long count);
void kiln_relu_backward(const float *x, const float *dy, float *dx, long count);

// y[i] = x[i % xn] ∘ z[i % zn] for i in [begin, end): each operand whole (its period the output's count),
// repeated along the leading axes (a period dividing it), or a scalar (period 1); not both scalars.
enum { KILN_ADD = 0, KILN_SUBTRACT = 1, KILN_MULTIPLY = 2, KILN_DIVIDE = 3, KILN_MAXIMUM = 4, KILN_MINIMUM = 5 };
void kiln_binary(int op, const float *x, long xn, const float *z, long zn, float *y, long begin, long end);

// y += x.
void kiln_accumulate(float *y, const float *x, long count);
// y = x · scale, bytes to floats.
void kiln_bytes_to_floats(const unsigned char *x, float *y, long count, float scale);

// One Adam step (Keras 3's form; `step` has the bias correction folded in, `decay` = 1 − lr · weight decay):
// m += (g − m)(1 − β1); v += (g² − v)(1 − β2); w = w · decay − step · m / (√v + ε).
void kiln_adam(float *w, const float *g, float *m, float *v, long count, float decay, float step,
               float beta1, float beta2, float epsilon);

// y = x / (1 − rate) where Philox-4x32-10(key seed, counter offset + i) gives a uniform ≥ rate, else 0.
void kiln_dropout(const float *x, float *y, long count, float rate, unsigned long seed, unsigned long offset);
// y[i] = a + b · draw(seed, offset + i): uniform in [0, 1) from Philox's first word when `normal` is 0,
// else a standard normal by Box–Muller from its first two words (u1 in (0, 1], u2 in [0, 1)).
void kiln_fill_random(float *y, long count, int normal, float a, float b, unsigned long seed, unsigned long offset);

// One time step of a recurrent cell over `batch` rows of `units` (Keras 3 gate orders: LSTM i, f, c, o;
// GRU z, r, h with reset_after). Forward: `gates` holds the step's pre-activations (input projection +
// bias, plus h_prev·U for SimpleRNN and LSTM) and gets the gate activations back; GRU's `recurrent`
// holds h_prev·U and gets `recurrent_bias` added. Writes h (and LSTM's c); rows whose `mask` is 0
// keep h_prev (and c_prev). `mask` may be NULL. With recurrent dropout, `dropped` gets h times the
// sequence's `dropout_mask` (what the next step's recurrent projection reads); else both are NULL.
enum { KILN_SIMPLE_RNN = 0, KILN_LSTM = 1, KILN_GRU = 2 };

// Batch normalisation over channels-last rows [begin, end) of [rows, channels]: per-channel sums
// added into `sums` (Σx; Σ(x − mean)²; or Σdy and, `channels` further on, Σdy·(x − mean)·inv_std),
// and y = a·x + shift, or with `dy` y = a·dy + b·x + shift.
enum { KILN_NORM_MEAN = 0, KILN_NORM_VARIANCE = 1, KILN_NORM_GRADIENT = 2 };
void kiln_norm_sums(int what, const float *x, const float *dy, const float *mean, const float *inv_std, float *sums,
                    long channels, long begin, long end);
void kiln_norm_apply(const float *x, const float *dy, float *y, const float *a, const float *b, const float *shift,
                     long channels, long begin, long end);

// Activations as one vector loop each: y = f(x) (leaky ReLU with slope `a`, ReLU capped at `a`), and
// dx = dy · f′ from the input x or the output y (also the sigmoid's and tanh's).
enum { KILN_LEAKY_RELU = 0, KILN_CAPPED_RELU = 1, KILN_SIGMOID = 2, KILN_TANH = 3 };
void kiln_activation(int op, const float *x, float *y, float a, long count);
void kiln_activation_backward(int op, const float *x, const float *y, const float *dy, float *dx, float a, long count);
typedef struct {
    int cell, relu;  // relu: ReLU instead of tanh as the activation
    long batch, units;
} kiln_recurrent;
void kiln_recurrent_step(const kiln_recurrent *g, float *gates, const float *input_bias, float *recurrent, const float *recurrent_bias,
                         const float *h_prev, float *h, const float *c_prev, float *c, const float *mask,
                         const float *dropout_mask, float *dropped);
// Backward of the step: dh = grad_h + grad_output + through · dropout_mask (either may be NULL; `through`
// is the next step's recurrent-projection gradient, gates·Uᵀ, under recurrent dropout) reaches h;
// grad_c (LSTM) the one reaching c, replaced by the one reaching c_prev. Writes the pre-activation
// gradients (`grad_gates`, and GRU's `grad_recurrent` of h_prev·U + bias) and replaces grad_h with
// the gradient reaching h_prev other than through U (the caller adds grad·Uᵀ).
void kiln_recurrent_step_backward(const kiln_recurrent *g, const float *gates, const float *recurrent,
                                  const float *h_prev, const float *h, const float *c_prev, const float *c,
                                  const float *mask, const float *grad_output, const float *through, const float *dropout_mask,
                                  float *grad_h, float *grad_c, float *grad_gates, float *grad_recurrent);

// Runs body(context, 0 ..< tasks) on a pool of spinning worker threads plus the caller, and returns
// when all are done. Nested or concurrent calls run their tasks serially on the calling thread.
typedef void (*kiln_task)(void *context, long index);
void kiln_parallel(long tasks, void *context, kiln_task body);
// The threads the pool runs on, the caller included: KILN_NUM_THREADS if set (at most 4 per CPU),
// else the CPUs this process may run on; fewer when the system would not start that many.
long kiln_parallel_threads(void);

// The OPENBLAS_CORETYPE this CPU could use when OpenBLAS `detected` only its generic x86 fallback
// (OpenBLAS 0.3.21 does not know CPUs newer than it, and then runs SSE3 kernels), else NULL.
const char *kiln_blas_core_hint(const char *detected);

// Runs `iterations` rounds of 8 independent FMA chains at the widest vector width the CPU has
// (x86-64: AVX-512, AVX2+FMA, else SSE mul+add; elsewhere the baseline vector unit) and returns the
// floating-point operations done.
double kiln_fma_flops(long iterations);
#endif
