// Parameter updates with Keras 3 semantics, multi-tensor: one launch updates up to CHUNK weights laid
// end to end (e0 ≤ … ≤ e15 are their cumulative sizes), one work-item per parameter. Reference:
// CPU/CPUTraining.swift. decay = 1 - learning_rate * weight_decay (decoupled weight decay, 1 when off).

#define CHUNK 16
#define ENDS const int e0, const int e1, const int e2, const int e3, const int e4, const int e5, const int e6, const int e7, \
             const int e8, const int e9, const int e10, const int e11, const int e12, const int e13, const int e14, const int e15
#define LIST(type, p) type p##0, type p##1, type p##2, type p##3, type p##4, type p##5, type p##6, type p##7, \
                      type p##8, type p##9, type p##10, type p##11, type p##12, type p##13, type p##14, type p##15
#define ARRAY(p) { p##0, p##1, p##2, p##3, p##4, p##5, p##6, p##7, p##8, p##9, p##10, p##11, p##12, p##13, p##14, p##15 }

// Which weight of the chunk this work-item updates (t) and its element there (j).
#define LOCATE \
    const int i = get_global_id(0); \
    const int ends[CHUNK] = { e0, e1, e2, e3, e4, e5, e6, e7, e8, e9, e10, e11, e12, e13, e14, e15 }; \
    if (i >= e15) return; \
    int t = 0; \
    while (i >= ends[t]) t++; \
    const int j = i - (t ? ends[t - 1] : 0);

__kernel void sgd(ENDS, const float lr, const float decay, const float momentum, const int nesterov, const int has_velocity,
                  LIST(__global float*, w), LIST(__global const float*, g), LIST(__global float*, v)) {
    LOCATE
    __global float* ws[CHUNK] = ARRAY(w);
    __global const float* gs[CHUNK] = ARRAY(g);
    __global float* vs[CHUNK] = ARRAY(v);
    const float gj = gs[t][j];
    float p = ws[t][j] * decay;
    if (has_velocity) {
        const float velocity = momentum * vs[t][j] - lr * gj;
        vs[t][j] = velocity;
        p += nesterov ? momentum * velocity - lr * gj : velocity;
    } else {
        p -= lr * gj;
    }
    ws[t][j] = p;
}

__kernel void rmsprop(ENDS, const float lr, const float decay, const float rho, const float momentum, const float epsilon,
                      const int has_momentum, LIST(__global float*, w), LIST(__global const float*, g),
                      LIST(__global float*, ms), LIST(__global float*, v)) {
    LOCATE
    __global float* ws[CHUNK] = ARRAY(w);
    __global const float* gs[CHUNK] = ARRAY(g);
    __global float* mss[CHUNK] = ARRAY(ms);
    __global float* vs[CHUNK] = ARRAY(v);
    const float gj = gs[t][j];
    const float s = rho * mss[t][j] + (1.0f - rho) * gj * gj;
    mss[t][j] = s;
    const float step = lr * gj / sqrt(s + epsilon);
    float p = ws[t][j] * decay;
    if (has_momentum) {
        const float velocity = momentum * vs[t][j] + step;
        vs[t][j] = velocity;
        p -= velocity;
    } else {
        p -= step;
    }
    ws[t][j] = p;
}

// step_size = lr * sqrt(1 - beta2^t) / (1 - beta1^t), computed on the host.
__kernel void adam(ENDS, const float step_size, const float decay, const float beta1, const float beta2, const float epsilon,
                   LIST(__global float*, w), LIST(__global const float*, g), LIST(__global float*, m), LIST(__global float*, v)) {
    LOCATE
    __global float* ws[CHUNK] = ARRAY(w);
    __global const float* gs[CHUNK] = ARRAY(g);
    __global float* first[CHUNK] = ARRAY(m);
    __global float* second[CHUNK] = ARRAY(v);
    const float gj = gs[t][j];
    const float mj = first[t][j] + (gj - first[t][j]) * (1.0f - beta1);
    const float vj = second[t][j] + (gj * gj - second[t][j]) * (1.0f - beta2);
    first[t][j] = mj;
    second[t][j] = vj;
    ws[t][j] = ws[t][j] * decay - step_size * mj / (sqrt(vj) + epsilon);
}
