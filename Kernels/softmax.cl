// Softmax, log-softmax and fused softmax cross-entropy along the rows of [rows, columns];
// one work-item per row. Reference: CPU/CPUElementwise.swift.

__kernel void softmax(const int rows, const int columns, const int is_log, __global const float* x, __global float* y) {
    const int r = get_global_id(0);
    if (r >= rows) return;
    __global const float* row = x + r * columns;
    __global float* out = y + r * columns;
    float peak = -INFINITY, sum = 0.0f;
    for (int j = 0; j < columns; ++j) peak = fmax(peak, row[j]);
    for (int j = 0; j < columns; ++j) sum += exp(row[j] - peak);
    const float shift = peak + log(sum);
    for (int j = 0; j < columns; ++j) out[j] = is_log ? row[j] - shift : exp(row[j] - shift);
}

__kernel void softmax_backward(const int rows, const int columns, const int is_log, __global const float* y,
                               __global const float* dy, __global float* dx) {
    const int r = get_global_id(0);
    if (r >= rows) return;
    const int base = r * columns;
    float dot = 0.0f;
    for (int j = base; j < base + columns; ++j) dot += is_log ? dy[j] : dy[j] * y[j];
    for (int j = base; j < base + columns; ++j) dx[j] = is_log ? dy[j] - exp(y[j]) * dot : y[j] * (dy[j] - dot);
}

// Per-row loss -sum_j t_j log softmax(x)_j into row_loss, and (softmax - t) / rows into dx when wanted.
// Targets are Int32 labels (is_sparse) or probability rows.
__kernel void softmax_cross_entropy(const int rows, const int columns, const int is_sparse, const int want_grad,
                                    __global const float* x, __global const int* labels,
                                    __global const float* targets, __global float* row_loss, __global float* dx) {
    const int r = get_global_id(0);
    if (r >= rows) return;
    __global const float* row = x + r * columns;
    float peak = -INFINITY, sum = 0.0f;
    for (int j = 0; j < columns; ++j) peak = fmax(peak, row[j]);
    for (int j = 0; j < columns; ++j) sum += exp(row[j] - peak);
    const float log_sum = peak + log(sum);
    const int label = is_sparse ? labels[r] : -1;
    float loss = 0.0f;
    if (is_sparse) {
        loss = (label >= 0 && label < columns) ? log_sum - row[label] : NAN;
    } else {
        for (int j = 0; j < columns; ++j) {
            const float t = targets[r * columns + j];
            if (t != 0.0f) loss += t * (log_sum - row[j]);
        }
    }
    row_loss[r] = loss;
    if (!want_grad) return;
    for (int j = 0; j < columns; ++j) {
        const float t = is_sparse ? (j == label ? 1.0f : 0.0f) : targets[r * columns + j];
        dx[r * columns + j] = (exp(row[j] - log_sum) - t) / (float)rows;
    }
}

// 1 where the target class (label, or argmax of the target row) has fewer than k larger scores.
__kernel void top_k_hits(const int rows, const int columns, const int k, const int is_sparse, __global const float* x,
                         __global const int* labels, __global const float* targets, __global float* hits) {
    const int r = get_global_id(0);
    if (r >= rows) return;
    int target = 0;
    if (is_sparse) {
        target = labels[r];
    } else {
        for (int j = 1; j < columns; ++j) if (targets[r * columns + j] > targets[r * columns + target]) target = j;
    }
    if (target < 0 || target >= columns) { hits[r] = 0.0f; return; }
    int above = 0;
    for (int j = 0; j < columns; ++j) above += x[r * columns + j] > x[r * columns + target];
    hits[r] = above < k ? 1.0f : 0.0f;
}
