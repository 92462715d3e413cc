/// Indexing beyond contiguous slices: gathers along an axis, strided slices, single indices and
/// boolean masks, all as row gathers (`Device.gatherRows`) whose gradient scatter-adds.
extension Tensor {
    /// The slices at `indices` along `axis`, in that order (repeats allowed), as `torch.index_select`;
    /// the gradient of a repeated index adds up.
    public func gathered(_ indices: [Int], axis: Int = 0) throws -> Tensor {
        let at = try normalized(axis)
        guard !indices.isEmpty, indices.allSatisfy({ (0..<shape[at]).contains($0) }) else {
            throw TensorError.shape("gather: indices \(indices.prefix(8)) out of 0..<\(shape[at]) on axis \(axis) of \(shape)")
        }
        return try gathered(Tensor(labels: indices.map(Int32.init), shape: [indices.count], on: device), axis: at)
    }

    /// `gathered` with `indices` already on the device: a 1-D int32 tensor, or float32 holding whole
    /// numbers (token ids from a dataset); an index outside the axis reads zeros, never memory outside
    /// the tensor. Int32 tensors (labels) gather along axis 0.
    public func gathered(_ indices: Tensor, axis: Int = 0) throws -> Tensor {
        if dtype == .int32 && axis != 0 { try requireFloat("gather on an axis other than 0") }
        guard indices.rank == 1 else { throw TensorError.shape("gather takes a 1-D index tensor, got shape \(indices.shape)") }
        let at = try normalized(axis)
        guard at != 0 else { return try gatheredRows(indices) }
        var order = Array(0..<rank)
        order.remove(at: at)
        order.insert(at, at: 0)
        var inverse = order
        for (i, p) in order.enumerated() { inverse[p] = i }
        return try permuted(order).gatheredRows(indices).permuted(inverse)
    }

    /// Linear interpolation along `axis` at fractional `positions` (in elements, clamped to the first
    /// and last), as image resizing does per axis; the gradient splits between the two neighbours.
    public func interpolated(at positions: [Float], axis: Int) throws -> Tensor {
        let at = try normalized(axis), n = shape[at]
        guard !positions.isEmpty, positions.allSatisfy(\.isFinite) else { throw TensorError.shape("interpolate: positions must be finite, got \(positions.prefix(8))") }
        let clamped = positions.map { Swift.min(Swift.max($0, 0), Float(n - 1)) }
        let lower = clamped.map { Int($0) }
        var weightShape = [Int](repeating: 1, count: rank)
        weightShape[at] = positions.count
        let weight = try Tensor(zip(clamped, lower).map { $0 - Float($1) }, shape: weightShape, on: device)
        let low = try gathered(lower, axis: at)
        return try low + (gathered(lower.map { Swift.min($0 + 1, n - 1) }, axis: at) - low) * weight
    }

    /// Every `step`-th element of `range` along `axis`, as `x[:, 1:9:2]` (`sliced(1..<9, step: 2, axis: 1)`).
    public func sliced(_ range: Range<Int>, step: Int, axis: Int) throws -> Tensor {
        guard step > 0 else { throw TensorError.shape("slice step must be positive, got \(step)") }
        if step == 1 { return try sliced(range, axis: axis) }
        let at = try normalized(axis)
        guard range.lowerBound >= 0, range.upperBound <= shape[at], !range.isEmpty else {
            throw TensorError.shape("slice \(range) of axis \(axis) of \(shape)")
        }
        return try gathered(Array(Swift.stride(from: range.lowerBound, to: range.upperBound, by: step)), axis: at)
    }

    /// The slice at `index` along `axis`, without that axis, as `x[i]` or `x.select(dim, i)`;
    /// negative indices count from the end.
    public func selected(_ index: Int, axis: Int = 0) throws -> Tensor {
        let at = try normalized(axis)
        let resolved = index < 0 ? index + shape[at] : index
        guard (0..<shape[at]).contains(resolved) else { throw TensorError.shape("index \(index) is out of range for axis \(axis) of \(shape)") }
        var reduced = shape
        reduced.remove(at: at)
        return try sliced(resolved..<resolved + 1, axis: at).reshaped(reduced.isEmpty ? [1] : reduced)
    }

    /// The elements (or, for a mask over the leading axes, the slices) where `mask` is non-zero,
    /// stacked along a new first axis in row-major order, as `x[mask]`. The mask is read on the host:
    /// the result's shape depends on it.
    public func masked(by mask: Tensor) throws -> Tensor {
        guard mask.rank <= rank, Array(shape.prefix(mask.rank)) == mask.shape else {
            throw TensorError.shape("a mask of shape \(mask.shape) does not cover the leading axes of \(shape)")
        }
        let flags = mask.dtype == .int32 ? try mask.toLabels().map { $0 != 0 } : try mask.toArray().map { $0 != 0 }
        let picked = flags.indices.filter { flags[$0] }
        guard !picked.isEmpty else { throw TensorError.shape("the mask selects nothing from \(shape)") }
        return try reshaped([mask.count] + shape.dropFirst(mask.rank)).gathered(picked)
    }

    /// Rows `indices` of this tensor viewed as `[shape[0], rest]`.
    private func gatheredRows(_ indices: Tensor) throws -> Tensor {
        let gather = RowGather(tableRows: shape[0], columns: count / shape[0], count: indices.count, floatIndices: indices.dtype == .float32)
        let input = self
        return try Tensor.make([indices.count] + shape.dropFirst(), dtype: dtype, from: [self, indices], {
            try device.gatherRows(gather, table: buffer, indices: indices.buffer, into: $0)
        }) { g in
            [try Tensor.make(input.shape, from: [g]) {
                try g.device.fill($0, with: 0, offset: 0, count: input.count)
                try g.device.scatterAddRows(gather, rows: g.buffer, indices: indices.buffer, into: $0)
            }, nil]
        }
    }
}
