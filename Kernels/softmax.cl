// Softmax, log-softmax and fused softmax cross-entropy along the rows of [rows, columns];
// one work-item per row, reading it 4 columns at a time (vector loads) and the rest one by one.
// Reference: CPU/CPUElementwise.swift.

// log Σ_j exp(row[j]), shifted by the row's maximum.
inline float row_log_sum_exp(__global const float* row, const int columns) {
    float4 peaks = -INFINITY, sums = 0.0f;
    int j = 0;
    for (; j + 4 <= columns; j += 4) peaks = fmax(peaks, vload4(0, row + j));
    float peak = fmax(fmax(peaks.s0, peaks.s1), fmax(peaks.s2, peaks.s3));
    for (int t = j; t < columns; ++t) peak = fmax(peak, row[t]);
    for (j = 0; j + 4 <= columns; j += 4) sums += exp(vload4(0, row + j) - peak);
    float sum = (sums.s0 + sums.s1) + (sums.s2 + sums.s3);
    for (; j < columns; ++j) sum += exp(row[j] - peak);
    return peak + log(sum);
}

__kernel void softmax(const int rows, const int columns, const int is_log, __global const float* x, __global float* y) {
    const int r = get_global_id(0);
    if (r >= rows) return;
    __global const float* row = x + r * columns;
    __global float* out = y + r * columns;
    const float shift = row_log_sum_exp(row, columns);
    int j = 0;
    for (; j + 4 <= columns; j += 4) {
        const float4 v = vload4(0, row + j) - shift;
        vstore4(is_log ? v : exp(v), 0, out + j);
    }
    for (; j < columns; ++j) out[j] = is_log ? row[j] - shift : exp(row[j] - shift);
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
    const float log_sum = row_log_sum_exp(row, columns);
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
    __global float* out = dx + r * columns;
    int j = 0;
    for (; j + 4 <= columns; j += 4) {
        const float4 t = is_sparse ? convert_float4(-((int4)(j, j + 1, j + 2, j + 3) == label)) : vload4(0, targets + r * columns + j);
        vstore4((exp(vload4(0, row + j) - log_sum) - t) / (float)rows, 0, out + j);
    }
    for (; j < columns; ++j) {
        const float t = is_sparse ? (j == label ? 1.0f : 0.0f) : targets[r * columns + j];
        out[j] = (exp(row[j] - log_sum) - t) / (float)rows;
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
