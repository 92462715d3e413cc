// im2col and its adjoint for NHWC images; the GEMM between them is CLBlast's.
// Reference: CPU/CPUConvolution.swift. Column matrix: row (n, oh, ow), column (kh, kw, c).

// x points at the first image of the chunk: x + x_offset.
__kernel void im2col(const int n, WINDOW_ARGS, __global const float* x, const int x_offset, __global float* col) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const int patch = k_h * k_w * channels;
    const int row = i / patch, k = i % patch;
    const int c = k % channels, kw = (k / channels) % k_w, kh = k / (channels * k_w);
    const int ow = row % out_w, oh = (row / out_w) % out_h, image = row / (out_w * out_h);
    const int ih = oh * stride_h - pad_top + kh, iw = ow * stride_w - pad_left + kw;
    col[i] = (ih >= 0 && ih < in_h && iw >= 0 && iw < in_w) ? x[x_offset + ((image * in_h + ih) * in_w + iw) * channels + c] : 0.0f;
}

// Each input element gathers the column entries that came from it (no atomics needed).
__kernel void col2im(const int n, WINDOW_ARGS, __global const float* col, __global float* x, const int x_offset) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const int c = i % channels, iw = (i / channels) % in_w, ih = (i / (channels * in_w)) % in_h;
    const int image = i / (channels * in_w * in_h);
    const int patch = k_h * k_w * channels;
    float sum = 0.0f;
    for (int kh = 0; kh < k_h; ++kh) {
        const int h = ih + pad_top - kh;
        if (h < 0 || h % stride_h != 0 || h / stride_h >= out_h) continue;
        for (int kw = 0; kw < k_w; ++kw) {
            const int w = iw + pad_left - kw;
            if (w < 0 || w % stride_w != 0 || w / stride_w >= out_w) continue;
            const int row = (image * out_h + h / stride_h) * out_w + w / stride_w;
            sum += col[row * patch + (kh * k_w + kw) * channels + c];
        }
    }
    x[x_offset + i] = sum;
}

// Convolutions as tiled implicit GEMMs: the im2col matrix is never stored. A work-group computes a
// TM × TN tile of C = A·B, staging TK-deep slices of A and B in local memory; each work-item keeps a
// WM × WN block of C in registers (rows i·TM/WM + r, columns j·TN/WN + c: unit-stride across items).
// Tile sizes are build options chosen per device by the tuner (OpenCL/ConvTuning.swift).
//   forward       C[(n, oh, ow), o] = Σ_(kh, kw, c)  x[n, ih, iw, c] · w[kh, kw, c, o]
//   input_grad    C[(n, ih, iw), c] = Σ_(kh, kw, o)  dy[n, oh, ow, o] · w[kh, kw, c, o]   (oh·stride = ih + pad − kh)
//   weight_grad   C[(kh, kw, c), o] = Σ_(n, oh, ow)  x[n, ih, iw, c] · dy[n, oh, ow, o]   (split along the sum)
//   forward_pool  forward, its rows ordered so that each work-item holds whole max-pooling windows:
//                 register row i is pixel i % Q of window i / Q (Q = pool k_h · k_w, which divides WM),
//                 and only the windows' maxima and their argmax reach memory.
// dy is masked by relu_out > 0 when a fused ReLU's output is given.
#ifndef TM
#define TM 32
#define TN 32
#define TK 16
#define WM 4
#define WN 4
#endif
#define THREADS ((TM / WM) * (TN / WN))
#define FORWARD 0
#define INPUT_GRAD 1
#define WEIGHT_GRAD 2
#define FORWARD_POOL 3

struct window { int in_h, in_w, channels, k_h, k_w, stride_h, stride_w, pad_top, pad_left, out_h, out_w, out_c; };
// Disjoint max-pooling windows over the convolution's output (out_h × out_w pooled pixels).
struct pool { int k_h, k_w, stride_h, stride_w, out_h, out_w; };

#define A_SLOTS (TM * TK / THREADS)
#define B_SLOTS (TN * TK / THREADS)
#if THREADS % TK != 0 || (TM * TK) % THREADS != 0 || (TN * TK) % THREADS != 0
#error "conv tiling: the work-items must split both tiles evenly, TK columns at a time"
#endif

// dy at output element i, through the fused ReLU's mask.
inline float grad_at(__global const float* dy, __global const float* relu_out, const int masked, const int i) {
    return (!masked || relu_out[i] > 0.0f) ? dy[i] : 0.0f;
}

// One work-group per TM × TN tile of C (groups ordered row tile by row tile, then split); split s
// sums k in [s·k_chunk, (s + 1)·k_chunk) into c + s·M·N (only without bias and ReLU, which need the whole sum,
// or pooling).
// Each work-item stages A_SLOTS rows of A at one column kk = lid % TK of every k-tile, so the rows are
// decoded once and k (as three coordinates) is advanced by TK per tile: no division in the loads.
inline void conv_tiled(const int mode, const int M, const int N, const int K, const int k_chunk, const struct window g,
                       __global const float* a, __global const float* b, __global const float* relu_out, const int masked,
                       __global const float* bias, const int has_bias, const int relu, __global float* c,
                       const struct pool pl, __global int* argmax, __local float* as, __local float* bs) {
    const int tiles_n = (N + TN - 1) / TN, tiles = tiles_n * ((M + TM - 1) / TM);
    const int group = get_group_id(0), split = group / tiles, tile = group % tiles;
    const int m0 = tile / tiles_n * TM, n0 = tile % tiles_n * TN;
    const int k_begin = split * k_chunk, k_end = min(K, k_begin + k_chunk);
    const int lid = get_local_id(0), kk = lid % TK, row = lid / (TN / WN), col = lid % (TN / WN);
    const int forward = mode == FORWARD || mode == FORWARD_POOL, Q = pl.k_h * pl.k_w, P = M / Q;

    // The rows m this work-item stages: forward (image, oh, ow), input gradient (image, ih, iw),
    // weight gradient (kh, kw, c); kept as an image base and the window's offsets.
    int base[A_SLOTS], top[A_SLOTS], left[A_SLOTS], valid[A_SLOTS];
    for (int u = 0; u < A_SLOTS; ++u) {
        const int r = lid / TK + u * (THREADS / TK), m = m0 + r;
        valid[u] = m < M;
        if (mode == FORWARD_POOL) {  // tile row r is register row i = r / (TM / WM) of item row r % (TM / WM)
            const int i = r / (TM / WM), p = m0 / Q + i / Q * (TM / WM) + r % (TM / WM), q = i % Q;
            valid[u] = p < P;
            base[u] = p / (pl.out_w * pl.out_h) * g.in_h;
            top[u] = ((p / pl.out_w) % pl.out_h * pl.stride_h + q / pl.k_w) * g.stride_h - g.pad_top;
            left[u] = (p % pl.out_w * pl.stride_w + q % pl.k_w) * g.stride_w - g.pad_left;
        } else if (mode == FORWARD) {
            base[u] = m / (g.out_w * g.out_h) * g.in_h;
            top[u] = (m / g.out_w) % g.out_h * g.stride_h - g.pad_top;
            left[u] = m % g.out_w * g.stride_w - g.pad_left;
        } else if (mode == INPUT_GRAD) {
            base[u] = m / (g.in_w * g.in_h) * g.out_h;
            top[u] = (m / g.in_w) % g.in_h + g.pad_top;
            left[u] = m % g.in_w + g.pad_left;
        } else {
            base[u] = m % g.channels;
            top[u] = m / (g.channels * g.k_w) - g.pad_top;
            left[u] = (m / g.channels) % g.k_w - g.pad_left;
        }
    }
    // k = (outer, mid, inner): forward (kh, kw, c), input gradient (kh, kw, o), weight gradient (image, oh, ow).
    const int mid_n = mode == WEIGHT_GRAD ? g.out_h : g.k_w;
    const int inner_n = forward ? g.channels : mode == INPUT_GRAD ? g.out_c : g.out_w;
    int k = k_begin + kk, inner = k % inner_n, mid = (k / inner_n) % mid_n, outer = k / (inner_n * mid_n);

    float acc[WM][WN];
    for (int i = 0; i < WM; ++i)
        for (int j = 0; j < WN; ++j) acc[i][j] = 0.0f;
    for (int k0 = k_begin; k0 < k_end; k0 += TK, k += TK) {
        for (int u = 0; u < A_SLOTS; ++u) {
            const int r = lid / TK + u * (THREADS / TK);
            float v = 0.0f;
            if (k < k_end && valid[u]) {
                if (forward) {
                    const int ih = top[u] + outer, iw = left[u] + mid;
                    if (ih >= 0 && ih < g.in_h && iw >= 0 && iw < g.in_w) v = a[((base[u] + ih) * g.in_w + iw) * g.channels + inner];
                } else if (mode == INPUT_GRAD) {
                    int oh = top[u] - outer, ow = left[u] - mid;
                    if (oh >= 0 && ow >= 0 && (g.stride_h == 1 || oh % g.stride_h == 0) && (g.stride_w == 1 || ow % g.stride_w == 0)) {
                        oh /= g.stride_h;
                        ow /= g.stride_w;
                        if (oh < g.out_h && ow < g.out_w) v = grad_at(a, relu_out, masked, ((base[u] + oh) * g.out_w + ow) * g.out_c + inner);
                    }
                } else {
                    const int ih = mid * g.stride_h + top[u], iw = inner * g.stride_w + left[u];
                    if (ih >= 0 && ih < g.in_h && iw >= 0 && iw < g.in_w) v = a[((outer * g.in_h + ih) * g.in_w + iw) * g.channels + base[u]];
                }
            }
            as[kk * TM + r] = v;
        }
        for (int u = 0; u < B_SLOTS; ++u) {
            if (mode == INPUT_GRAD) {  // w[kh, kw, n, o] at this item's column kk
                const int cb = lid / TK + u * (THREADS / TK), n = n0 + cb;
                bs[kk * TN + cb] = (k < k_end && n < N) ? b[((outer * g.k_w + mid) * g.channels + n) * g.out_c + inner] : 0.0f;
            } else {  // rows of w (forward) or dy (weight gradient), n fastest
                const int t = lid + u * THREADS, cb = t % TN, kb = t / TN, n = n0 + cb, kg = k0 + kb;
                bs[kb * TN + cb] = (kg < k_end && n < N) ? (forward ? b[kg * N + n] : grad_at(b, relu_out, masked, kg * N + n)) : 0.0f;
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int t = 0; t < TK; ++t) {
            float av[WM], bv[WN];
            for (int i = 0; i < WM; ++i) av[i] = as[t * TM + row + i * (TM / WM)];
            for (int j = 0; j < WN; ++j) bv[j] = bs[t * TN + col + j * (TN / WN)];
            for (int i = 0; i < WM; ++i)
                for (int j = 0; j < WN; ++j) acc[i][j] = mad(av[i], bv[j], acc[i][j]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        inner += TK;
        const int carry = inner / inner_n;
        inner -= carry * inner_n;
        mid += carry;
        outer += mid / mid_n;
        mid %= mid_n;
    }
    if (mode == FORWARD_POOL) {  // the maximum over each window's Q register rows, first one on ties (as pool_forward)
        for (int j = 0; j < WN; ++j) {
            const int n = n0 + col + j * (TN / WN);
            float best = 0.0f;
            int where = -1;
            for (int i = 0; i < WM; ++i) {
                const int q = i % Q, p = m0 / Q + i / Q * (TM / WM) + row;
                float v = acc[i][j] + (has_bias && n < N ? bias[n] : 0.0f);
                if (relu) v = fmax(v, 0.0f);
                if (q == 0 || v > best) { best = v; where = q; }
                if (q == Q - 1 && p < P && n < N) {
                    const int oh = (p / pl.out_w) % pl.out_h * pl.stride_h + where / pl.k_w;
                    const int ow = p % pl.out_w * pl.stride_w + where % pl.k_w;
                    c[p * N + n] = best;
                    argmax[p * N + n] = oh * g.out_w + ow;
                }
            }
        }
        return;
    }
    __global float* out = c + split * M * N;
    for (int i = 0; i < WM; ++i) {
        for (int j = 0; j < WN; ++j) {
            const int m = m0 + row + i * (TM / WM), n = n0 + col + j * (TN / WN);
            if (m < M && n < N) {
                float v = acc[i][j];
                if (has_bias) v += bias[n];
                out[m * N + n] = relu ? fmax(v, 0.0f) : v;
            }
        }
    }
}

#define TILED_ARGS const int M, const int N, const int K, const int k_chunk, WINDOW_ARGS, const int out_c, \
    __global const float* a, __global const float* b, __global const float* relu_out, const int masked, \
    __global const float* bias, const int has_bias, const int relu, __global float* c
#define TILED_CALL(mode, pl, argmax) conv_tiled(mode, M, N, K, k_chunk, (struct window){ in_h, in_w, channels, k_h, k_w, \
    stride_h, stride_w, pad_top, pad_left, out_h, out_w, out_c }, a, b, relu_out, masked, bias, has_bias, relu, c, pl, argmax, as, bs)
#define TILED_KERNEL(name, mode) __kernel __attribute__((reqd_work_group_size(THREADS, 1, 1))) void name(TILED_ARGS) { \
    __local float as[TK * TM], bs[TK * TN]; /* local memory belongs to the kernel's scope in OpenCL 1.2 */ \
    TILED_CALL(mode, ((struct pool){ 1, 1, 1, 1, 1, 1 }), 0); }

TILED_KERNEL(conv_forward_tiled, FORWARD)
TILED_KERNEL(conv_input_grad_tiled, INPUT_GRAD)
TILED_KERNEL(conv_weight_grad_tiled, WEIGHT_GRAD)

// M = pooled pixels · Q; c holds the pooled output.
__kernel __attribute__((reqd_work_group_size(THREADS, 1, 1))) void conv_forward_max_pool_tiled(TILED_ARGS,
        const int pool_k_h, const int pool_k_w, const int pool_stride_h, const int pool_stride_w, const int pool_out_h,
        const int pool_out_w, __global int* argmax) {
    __local float as[TK * TM], bs[TK * TN];
    TILED_CALL(FORWARD_POOL, ((struct pool){ pool_k_h, pool_k_w, pool_stride_h, pool_stride_w, pool_out_h, pool_out_w }), argmax);
}

// c[i] = Σ_s partial[s·n + i]: the weight gradient's split sums, added in order.
__kernel void sum_splits(const int n, const int splits, __global const float* partial, __global float* c) {
    const int i = get_global_id(0);
    if (i >= n) return;
    float sum = 0.0f;
    for (int s = 0; s < splits; ++s) sum += partial[s * n + i];
    c[i] = sum;
}
