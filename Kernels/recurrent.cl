// One time step of SimpleRNN, LSTM and GRU cells, forward and backward: one work-item per (row, unit),
// the same maths as Sources/CKernels/recurrent.c. Buffers hold whole time-major sequences; the
// offsets select the step.
#define SIMPLE_RNN 0
#define LSTM 1
#define GRU 2

inline float act(const float x, const int use_relu) { return use_relu ? fmax(x, 0.0f) : tanh(x); }
inline float act_grad(const float a, const int use_relu) { return use_relu ? (a > 0.0f ? 1.0f : 0.0f) : 1.0f - a * a; }
inline float sigm(const float x) { return 1.0f / (1.0f + exp(-x)); }

// The forward maths of unit j of one row; `bias` (the input projection's, when has_bias) is added to z here.
inline void step(const int cell, const int use_relu, const int u, const int j, __global float* z, __global const float* bias,
                 const int has_bias, __global float* rec, __global const float* recurrent_bias, __global const float* hp,
                 __global float* hn, __global const float* cp, __global float* cn) {
#define ZB(k) (z[(k) * u + j] + (has_bias ? bias[(k) * u + j] : 0.0f))
    if (cell == SIMPLE_RNN) {
        hn[j] = act(ZB(0), use_relu);
    } else if (cell == LSTM) {
        const float i = sigm(ZB(0)), f = sigm(ZB(1)), cand = act(ZB(2), use_relu), o = sigm(ZB(3));
        const float next = f * cp[j] + i * cand;
        z[j] = i; z[u + j] = f; z[2 * u + j] = cand; z[3 * u + j] = o;
        cn[j] = next;
        hn[j] = o * act(next, use_relu);
    } else {
        const float rz = rec[j] + recurrent_bias[j], rr = rec[u + j] + recurrent_bias[u + j];
        const float rh = rec[2 * u + j] + recurrent_bias[2 * u + j];
        rec[j] = rz; rec[u + j] = rr; rec[2 * u + j] = rh;
        const float update = sigm(ZB(0) + rz), reset = sigm(ZB(1) + rr), cand = act(ZB(2) + reset * rh, use_relu);
        z[j] = update; z[u + j] = reset; z[2 * u + j] = cand;
        hn[j] = update * hp[j] + (1.0f - update) * cand;
    }
#undef ZB
}

__kernel void recurrent_step(const int cell, const int use_relu, const int batch, const int units,
                             __global float* gates, const int gates_offset, __global const float* input_bias, const int has_bias,
                             __global float* recurrent, const int recurrent_offset, __global const float* recurrent_bias,
                             __global float* h, const int h_offset, __global float* c, const int c_offset,
                             __global const float* mask, const int mask_offset, const int has_mask,
                             __global const float* dropout_mask, __global float* dropped, const int has_dropout) {
    const int id = get_global_id(0);
    if (id >= batch * units) return;
    const int b = id / units, j = id % units, u = units;
    const int width = cell == LSTM ? 4 * u : cell == GRU ? 3 * u : u;
    __global float* z = gates + gates_offset + b * width;
    __global const float* hp = h + h_offset + b * u;
    __global float* hn = h + h_offset + batch * u + b * u;
    if (has_mask && mask[mask_offset + b] == 0.0f) {
        hn[j] = hp[j];
        if (cell == LSTM) c[c_offset + batch * u + b * u + j] = c[c_offset + b * u + j];
    } else {
        step(cell, use_relu, u, j, z, input_bias, has_bias, recurrent + recurrent_offset + b * width, recurrent_bias, hp, hn,
             c + c_offset + b * u, c + c_offset + batch * u + b * u);
    }
    if (has_dropout) dropped[h_offset + batch * u + b * u + j] = hn[j] * dropout_mask[b * u + j];
}

__kernel void recurrent_step_backward(const int cell, const int use_relu, const int batch, const int units,
                                      __global const float* gates, const int gates_offset,
                                      __global const float* recurrent, const int recurrent_offset,
                                      __global const float* h, const int h_offset, __global const float* c, const int c_offset,
                                      __global const float* mask, const int mask_offset, const int has_mask,
                                      __global const float* grad_output, const int grad_output_offset, const int has_grad_output,
                                      __global const float* through, __global const float* dropout_mask, const int has_dropout,
                                      __global float* grad_h, __global float* grad_c,
                                      __global float* grad_gates, const int grad_gates_offset,
                                      __global float* grad_recurrent, const int grad_recurrent_offset) {
    const int id = get_global_id(0);
    if (id >= batch * units) return;
    const int b = id / units, j = id % units, u = units;
    const int width = cell == LSTM ? 4 * u : cell == GRU ? 3 * u : u;
    __global const float* a = gates + gates_offset + b * width;
    __global float* dz = grad_gates + grad_gates_offset + b * width;
    const float dh = grad_h[b * u + j] + (has_grad_output ? grad_output[grad_output_offset + b * u + j] : 0.0f)
        + (has_dropout ? through[b * u + j] * dropout_mask[b * u + j] : 0.0f);
    if (has_mask && mask[mask_offset + b] == 0.0f) {
        grad_h[b * u + j] = dh;
        for (int k = j; k < width; k += u) dz[k] = 0.0f;
        if (cell == GRU) for (int k = j; k < width; k += u) grad_recurrent[grad_recurrent_offset + b * width + k] = 0.0f;
        return;
    }
    if (cell == SIMPLE_RNN) {
        dz[j] = dh * act_grad(h[h_offset + batch * u + b * u + j], use_relu);
        grad_h[b * u + j] = 0.0f;
    } else if (cell == LSTM) {
        const float i = a[j], f = a[u + j], cand = a[2 * u + j], o = a[3 * u + j];
        const float squashed = act(c[c_offset + batch * u + b * u + j], use_relu);
        const float dc = grad_c[b * u + j] + dh * o * act_grad(squashed, use_relu);
        dz[j] = dc * cand * i * (1.0f - i);
        dz[u + j] = dc * c[c_offset + b * u + j] * f * (1.0f - f);
        dz[2 * u + j] = dc * i * act_grad(cand, use_relu);
        dz[3 * u + j] = dh * squashed * o * (1.0f - o);
        grad_c[b * u + j] = dc * f;
        grad_h[b * u + j] = 0.0f;
    } else {
        const float update = a[j], reset = a[u + j], cand = a[2 * u + j];
        const float rh = recurrent[recurrent_offset + b * width + 2 * u + j];
        const float dcand = dh * (1.0f - update) * act_grad(cand, use_relu);
        const float dupdate = dh * (h[h_offset + b * u + j] - cand) * update * (1.0f - update);
        const float dreset = dcand * rh * reset * (1.0f - reset);
        __global float* dr = grad_recurrent + grad_recurrent_offset + b * width;
        dz[j] = dupdate; dz[u + j] = dreset; dz[2 * u + j] = dcand;
        dr[j] = dupdate; dr[u + j] = dreset; dr[2 * u + j] = dcand * reset;
        grad_h[b * u + j] = dh * update;
    }
}
