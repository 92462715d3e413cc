// Parameter updates with Keras 3 semantics; one work-item per parameter. Reference: CPU/CPUTraining.swift.
// decay = 1 - learning_rate * weight_decay (decoupled weight decay, 1 when off).

__kernel void sgd(const int n, const float lr, const float decay, const float momentum, const int nesterov,
                  const int has_velocity, __global float* w, __global const float* g, __global float* velocity) {
    const int i = get_global_id(0);
    if (i >= n) return;
    float p = w[i] * decay;
    if (has_velocity) {
        const float v = momentum * velocity[i] - lr * g[i];
        velocity[i] = v;
        p += nesterov ? momentum * v - lr * g[i] : v;
    } else {
        p -= lr * g[i];
    }
    w[i] = p;
}

__kernel void rmsprop(const int n, const float lr, const float decay, const float rho, const float momentum,
                      const float epsilon, const int has_momentum, __global float* w, __global const float* g,
                      __global float* mean_square, __global float* velocity) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const float s = rho * mean_square[i] + (1.0f - rho) * g[i] * g[i];
    mean_square[i] = s;
    const float step = lr * g[i] / sqrt(s + epsilon);
    float p = w[i] * decay;
    if (has_momentum) {
        const float v = momentum * velocity[i] + step;
        velocity[i] = v;
        p -= v;
    } else {
        p -= step;
    }
    w[i] = p;
}

// step_size = lr * sqrt(1 - beta2^t) / (1 - beta1^t), computed on the host.
__kernel void adam(const int n, const float step_size, const float decay, const float beta1, const float beta2,
                   const float epsilon, __global float* w, __global const float* g, __global float* m,
                   __global float* v) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const float mi = m[i] + (g[i] - m[i]) * (1.0f - beta1);
    const float vi = v[i] + (g[i] * g[i] - v[i]) * (1.0f - beta2);
    m[i] = mi;
    v[i] = vi;
    w[i] = w[i] * decay - step_size * mi / (sqrt(vi) + epsilon);
}
