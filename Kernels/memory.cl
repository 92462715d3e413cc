// Fills, strided 2-D copies, permutations and row gathers. Reference: CPU/CPUDevice.swift.

__kernel void fill_float(__global float* x, const int offset, const int n, const float value) {
    const int i = get_global_id(0);
    if (i < n) x[offset + i] = value;
}

__kernel void fill_int(__global int* x, const int offset, const int n, const int value) {
    const int i = get_global_id(0);
    if (i < n) x[offset + i] = value;
}

// dst[r * dst_stride + c] = src[r * src_stride + c] for r < rows, c < columns.
__kernel void copy_2d(const int rows, const int columns,
                      __global const float* src, const int src_offset, const int src_stride,
                      __global float* dst, const int dst_offset, const int dst_stride) {
    const int i = get_global_id(0);
    if (i >= rows * columns) return;
    const int r = i / columns, c = i % columns;
    dst[dst_offset + r * dst_stride + c] = src[src_offset + r * src_stride + c];
}

__kernel void permute(const int n, const int8 shape, const int8 strides,
                      __global const float* x, __global float* y) {
    const int i = get_global_id(0);
    if (i < n) y[i] = x[strided_offset(i, shape, strides)];
}

// The table row of index r (int32, or a float holding a whole number), or -1 outside the table.
inline int table_row(__global const int* indices, const int r, const int float_indices, const int table_rows) {
    if (float_indices) {
        const float value = as_float(indices[r]);
        return value >= 0.0f && value < (float)table_rows ? (int)value : -1;
    }
    return indices[r] >= 0 && indices[r] < table_rows ? indices[r] : -1;
}

// y[r, c] = table[indices[r], c], zero for an index outside the table; copied as bits, so int32
// tables (labels) gather too.
__kernel void gather_rows(const int table_rows, const int columns, const int count, const int float_indices,
                          __global const uint* table, __global const int* indices, __global uint* y) {
    const int i = get_global_id(0);
    if (i >= count * columns) return;
    const int r = i / columns, c = i % columns, row = table_row(indices, r, float_indices, table_rows);
    y[i] = row >= 0 ? table[row * columns + c] : 0u;
}

// table[indices[r], c] += x[r, c]: one work-item per column walks the rows in order (no atomics,
// the CPU's order of summation).
__kernel void scatter_add_rows(const int table_rows, const int columns, const int count, const int float_indices,
                               __global const float* x, __global const int* indices, __global float* table) {
    const int c = get_global_id(0);
    if (c >= columns) return;
    for (int r = 0; r < count; ++r) {
        const int row = table_row(indices, r, float_indices, table_rows);
        if (row >= 0) table[row * columns + c] += x[r * columns + c];
    }
}
