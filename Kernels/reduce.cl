// Reductions along the middle axis of [outer, axis, inner]: one GROUP-sized work-group per output.
// Reference: CPU/CPUElementwise.swift. Op codes: 0 sum, 1 mean, 2 max.

__kernel void reduce(const int op, const int axis, const int inner, __global const float* x, __global float* y) {
    __local float scratch[GROUP];
    const int out = get_group_id(0), lid = get_local_id(0);
    const int o = out / inner, i = out % inner;
    __global const float* row = x + o * axis * inner + i;
    float acc = op == 2 ? -INFINITY : 0.0f;
    for (int a = lid; a < axis; a += GROUP) acc = op == 2 ? fmax(acc, row[a * inner]) : acc + row[a * inner];
    acc = group_reduce(scratch, acc, op == 2);
    if (lid == 0) y[out] = op == 1 ? acc / axis : acc;
}

// First index of the maximum along the axis; one work-item per output.
__kernel void argmax(const int n, const int axis, const int inner, __global const float* x, __global int* y) {
    const int out = get_global_id(0);
    if (out >= n) return;
    const int o = out / inner, i = out % inner;
    __global const float* row = x + o * axis * inner + i;
    int best = 0;
    for (int a = 1; a < axis; ++a) if (row[a * inner] > row[best * inner]) best = a;
    y[out] = best;
}
