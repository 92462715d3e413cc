// One time step of SimpleRNN, LSTM and GRU cells (Keras 3 semantics), forward and backward, over
// a batch of rows: the gate maths after the projections, which the caller does as GEMMs. The
// OpenCL twin is Kernels/recurrent.cl; the float64 reference is in Tests/KilnTests/RecurrentTests.swift.
#include "kernels.h"
#include "vector.h"

// e^x to about 2 ulp (Cephes expf: x = n·ln 2 + r, a degree-6 polynomial for e^r, 2^n by the exponent bits).
#define vexp(x_) ({                                                                                   \
    const vec x = __builtin_elementwise_min(__builtin_elementwise_max((x_), splat(-87.3f)), splat(88.7f)); \
    const vec n = __builtin_elementwise_floor(x * 1.44269504088896341f + 0.5f);                        \
    const vec r = x - n * 0.693359375f + n * 2.12194440e-4f;                                          \
    vec p = splat(1.9875691500e-4f);                                                                  \
    p = p * r + 1.3981999507e-3f; p = p * r + 8.3334519073e-3f; p = p * r + 4.1665795894e-2f;          \
    p = p * r + 1.6666665459e-1f; p = p * r + 5.0000001201e-1f;                                        \
    (p * r * r + r + 1) * (vec)((__builtin_convertvector(n, ivec) + 127) << 23);                       \
})
#define vsigmoid(x) (1 / (1 + vexp(-(x))))
#define vtanh(x_) ({ const vec v = (x_), e = vexp(-2 * __builtin_elementwise_abs(v));                  \
                     __builtin_elementwise_copysign((1 - e) / (1 + e), v); })
// The cell's activation (tanh, or ReLU when `relu`), and its derivative from its output `a`.
#define vact(x, relu_) ((relu_) ? relu(x) : vtanh(x))
#define vact_grad(a, relu_) ((relu_) ? (vec)((ivec)splat(1) & ((a) > 0)) : 1 - (a) * (a))

// Loads and stores of the first `n` lanes (n ≤ LANES), for the last chunk of a row.
#define LD(p) (n == LANES ? load(p) : ({ vec v_ = {}; for (long l_ = 0; l_ < n; ++l_) v_[l_] = (p)[l_]; v_; }))
#define ST(p, v) do { const vec s_ = (v); if (n == LANES) store(p, s_); else for (long l_ = 0; l_ < n; ++l_) (p)[l_] = s_[l_]; } while (0)

static void copy_row(float *to, const float *from, long count) {
    for (long j = 0; j < count; ++j) to[j] = from[j];
}

// The forward maths of one row; `bias` (the input projection's, or null) is added to z here.
KILN_INLINE void step_row(const kiln_recurrent *g, float *z, const float *bias, float *rec, const float *recurrent_bias, const float *hp,
                          float *hb, const float *cp, float *cb) {
    const long u = g->units;
#define ZB(k) (LD(z + (k) * u + j) + (bias ? LD(bias + (k) * u + j) : splat(0)))
    for (long j = 0; j < u; j += LANES) {
        const long n = u - j < LANES ? u - j : LANES;
        if (g->cell == KILN_SIMPLE_RNN) {
            ST(hb + j, vact(ZB(0), g->relu));
        } else if (g->cell == KILN_LSTM) {
            const vec i = vsigmoid(ZB(0)), f = vsigmoid(ZB(1)), o = vsigmoid(ZB(3));
            const vec cand = vact(ZB(2), g->relu);
            const vec cell = f * LD(cp + j) + i * cand;
            ST(z + j, i); ST(z + u + j, f); ST(z + 2 * u + j, cand); ST(z + 3 * u + j, o);
            ST(cb + j, cell);
            ST(hb + j, o * vact(cell, g->relu));
        } else {
            const vec rz = LD(rec + j) + LD(recurrent_bias + j), rr = LD(rec + u + j) + LD(recurrent_bias + u + j);
            const vec rh = LD(rec + 2 * u + j) + LD(recurrent_bias + 2 * u + j);
            ST(rec + j, rz); ST(rec + u + j, rr); ST(rec + 2 * u + j, rh);
            const vec update = vsigmoid(ZB(0) + rz), reset = vsigmoid(ZB(1) + rr);
            const vec cand = vact(ZB(2) + reset * rh, g->relu);
            ST(z + j, update); ST(z + u + j, reset); ST(z + 2 * u + j, cand);
            ST(hb + j, update * LD(hp + j) + (1 - update) * cand);
        }
    }
#undef ZB
}

KILN_DISPATCH
void kiln_recurrent_step(const kiln_recurrent *g, float *gates, const float *input_bias, float *recurrent, const float *recurrent_bias,
                         const float *h_prev, float *h, const float *c_prev, float *c, const float *mask,
                         const float *dropout_mask, float *dropped) {
    const long u = g->units, width = g->cell == KILN_LSTM ? 4 * u : g->cell == KILN_GRU ? 3 * u : u;
    for (long b = 0; b < g->batch; ++b) {
        float *z = gates + b * width, *hb = h + b * u;
        const float *hp = h_prev + b * u;
        if (mask && mask[b] == 0) {  // a padded step keeps the state
            copy_row(hb, hp, u);
            if (c) copy_row(c + b * u, c_prev + b * u, u);
        } else {
            step_row(g, z, input_bias, recurrent ? recurrent + b * width : 0, recurrent_bias, hp, hb, c_prev ? c_prev + b * u : 0,
                     c ? c + b * u : 0);
        }
        if (dropped) for (long j = 0; j < u; ++j) dropped[b * u + j] = hb[j] * dropout_mask[b * u + j];
    }
}

KILN_DISPATCH
void kiln_recurrent_step_backward(const kiln_recurrent *g, const float *gates, const float *recurrent,
                                  const float *h_prev, const float *h, const float *c_prev, const float *c,
                                  const float *mask, const float *grad_output, const float *through, const float *dropout_mask,
                                  float *grad_h, float *grad_c, float *grad_gates, float *grad_recurrent) {
    const long u = g->units, width = g->cell == KILN_LSTM ? 4 * u : g->cell == KILN_GRU ? 3 * u : u;
    for (long b = 0; b < g->batch; ++b) {
        const float *a = gates + b * width, *go = grad_output ? grad_output + b * u : 0;
        const float *tb = through ? through + b * u : 0, *mb = through ? dropout_mask + b * u : 0;
        float *dh = grad_h + b * u, *dz = grad_gates + b * width;
        const int kept = mask && mask[b] == 0;
        for (long j = 0; j < u; j += LANES) {
            const long n = u - j < LANES ? u - j : LANES;
            const vec dhj = LD(dh + j) + (go ? LD(go + j) : (vec){}) + (tb ? LD(tb + j) * LD(mb + j) : (vec){});
            if (kept) {  // the state passed through unchanged: so does its gradient
                ST(dh + j, dhj);
                for (long k = j; k < width; k += u) ST(dz + k, (vec){});
                if (grad_recurrent) for (long k = j; k < width; k += u) ST(grad_recurrent + b * width + k, (vec){});
                continue;
            }
            if (g->cell == KILN_SIMPLE_RNN) {
                ST(dz + j, dhj * vact_grad(LD(h + b * u + j), g->relu));
                ST(dh + j, (vec){});
            } else if (g->cell == KILN_LSTM) {
                const vec i = LD(a + j), f = LD(a + u + j), cand = LD(a + 2 * u + j), o = LD(a + 3 * u + j);
                const vec squashed = vact(LD(c + b * u + j), g->relu);
                const vec dc = LD(grad_c + b * u + j) + dhj * o * vact_grad(squashed, g->relu);
                ST(dz + j, dc * cand * i * (1 - i));
                ST(dz + u + j, dc * LD(c_prev + b * u + j) * f * (1 - f));
                ST(dz + 2 * u + j, dc * i * vact_grad(cand, g->relu));
                ST(dz + 3 * u + j, dhj * squashed * o * (1 - o));
                ST(grad_c + b * u + j, dc * f);
                ST(dh + j, (vec){});
            } else {
                const vec update = LD(a + j), reset = LD(a + u + j), cand = LD(a + 2 * u + j);
                const vec rh = LD(recurrent + b * width + 2 * u + j);
                const vec dcand = dhj * (1 - update) * vact_grad(cand, g->relu);
                const vec dupdate = dhj * (LD(h_prev + b * u + j) - cand) * update * (1 - update);
                const vec dreset = dcand * rh * reset * (1 - reset);
                float *dr = grad_recurrent + b * width;
                ST(dz + j, dupdate); ST(dz + u + j, dreset); ST(dz + 2 * u + j, dcand);
                ST(dr + j, dupdate); ST(dr + u + j, dreset); ST(dr + 2 * u + j, dcand * reset);
                ST(dh + j, dhj * update);
            }
        }
    }
}
