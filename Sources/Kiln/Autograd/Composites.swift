/// Tensor ops researchers reach for, composed from the device ops (tier 3 of docs' op design: no
/// device code, gradients from the parts).
extension Tensor {
    // MARK: Comparisons, as 0/1 floats (Keras `ops.greater`, …)

    /// 1 where `self > other`, else 0 (broadcasting); no gradient.
    public func greater(than other: Tensor) throws -> Tensor { try (self - other).unary(.step, differentiable: false) }
    /// 1 where `self < other`, else 0.
    public func less(than other: Tensor) throws -> Tensor { try other.greater(than: self) }
    /// 1 where `self == other`, else 0.
    public func equal(to other: Tensor) throws -> Tensor { try 1 - greater(than: other) - less(than: other) }
    /// −1, 0 or 1 by the sign of each element; no gradient.
    public func sign() throws -> Tensor {
        try unary(.step, differentiable: false) - (-self).unary(.step, differentiable: false)
    }

    /// `a` where `condition` is 1, `b` where it is 0 (broadcasting), as `torch.where`; differentiable
    /// in `a` and `b`. Computed as `b + condition · (a − b)`, so both must be finite.
    public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        try b + condition * (a - b)
    }

    /// `min(max(self, low), high)`, as `torch.clamp`.
    public func clamped(min low: Float = -.greatestFiniteMagnitude, max high: Float = .greatestFiniteMagnitude) throws -> Tensor {
        try clipped(low, high)
    }

    // MARK: Reductions over several axes

    /// The sum along `axis`, as PyTorch's `x.sum(dim, keepdim)` and Keras's `ops.sum(x, axis)`.
    public func sum(axis: Int, keepDims: Bool = false) throws -> Tensor { try reduce(.sum, axes: [axis], keepDims: keepDims) }
    /// The mean along `axis`, as PyTorch's `x.mean(dim, keepdim)` and Keras's `ops.mean(x, axis)`.
    public func mean(axis: Int, keepDims: Bool = false) throws -> Tensor { try reduce(.mean, axes: [axis], keepDims: keepDims) }

    /// The reduction over `axes` (all when empty), keeping them as size 1 with `keepDims`.
    public func reduce(_ op: ReduceOp, axes: [Int], keepDims: Bool = false) throws -> Tensor {
        let chosen = axes.isEmpty ? Array(0..<rank) : try Set(axes.map(normalized)).sorted()
        var result = self
        for axis in chosen.reversed() { result = try result.reduce(op, axis: axis) }
        let kept = shape.enumerated().map { chosen.contains($0.offset) ? 1 : $0.element }
        return try result.reshaped(keepDims ? kept : shape.enumerated().filter { !chosen.contains($0.offset) }.map(\.element).nonEmpty)
    }

    /// `log Σ exp` along `axis`, computed stably (the maximum taken out first).
    public func logSumExp(axis: Int = -1, keepDims: Bool = false) throws -> Tensor {
        let peak = try GradMode.noGrad { try reduce(.max, axes: [axis], keepDims: true) }
        let sum = try (self - peak).exp().reduce(.sum, axes: [axis], keepDims: true).log() + peak
        return keepDims ? sum : try sum.reduce(.sum, axes: [axis])
    }

    /// The index of the largest element along `axis` (the first on ties), as floats; no gradient.
    public func argmax(axis: Int = -1) throws -> Tensor {
        try GradMode.noGrad {
            let axis = try normalized(axis)
            var indexShape = [Int](repeating: 1, count: rank)
            indexShape[axis] = shape[axis]
            let index = try Tensor.arange(Float(shape[axis]), on: device).reshaped(indexShape)
            let hit = try equal(to: try reduce(.max, axes: [axis], keepDims: true))
            // Non-maxima score −n; the maximum with the smallest index scores highest as −index.
            let score = try Tensor.where(hit, try -index.broadcast(to: shape), try Tensor.full(-Float(shape[axis]), shape: shape, on: device))
            return try -score.reduce(.max, axis: axis)
        }
    }

    /// The index of the smallest element along `axis` (the first on ties), as floats; no gradient.
    public func argmin(axis: Int = -1) throws -> Tensor { try (-self).argmax(axis: axis) }

    /// Each element to the power `p`, as `torch.pow`: exact repeated products for integer `p` up to
    /// 16 in size (negative bases fine), `exp(p · log x)` otherwise (positive bases).
    public func pow(_ p: Float) throws -> Tensor {
        guard p == p.rounded(), Swift.abs(p) <= 16 else { return try (p * log()).exp() }
        var (result, base, n) = (try Tensor.ones(like: self), self, Int(Swift.abs(p)))
        while n > 0 {
            if n & 1 == 1 { result = try result * base }
            n >>= 1
            if n > 0 { base = try base * base }
        }
        return p < 0 ? try 1 / result : result
    }

    /// Zeros and ones drawn with probability `p` of a one, on `device`, from Philox (dropout's
    /// generator) keyed by `seed`, else by the next draw of `seed(_:)`'s generator, as `torch.bernoulli`.
    public static func bernoulli(_ shape: [Int], probability p: Float, seed: UInt64? = nil,
                                 on device: any Device = CPUDevice.shared) throws -> Tensor {
        guard (0...1).contains(p) else { throw TensorError.shape("bernoulli: probability \(p) is not in [0, 1]") }
        guard p > 0 else { return try zeros(shape, on: device) }
        return try GradMode.noGrad { try ones(shape, on: device).dropout(rate: 1 - p, seed: randomKey(seed)) * p }
    }

    /// Uniform draws in `[low, high)` made on `device` from Philox keyed by `seed`, else by the next
    /// draw of `seed(_:)`'s generator, as `torch.rand` and `keras.random.uniform`.
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1, seed: UInt64? = nil,
                               on device: any Device = CPUDevice.shared) throws -> Tensor {
        try random(shape, .uniform(low: low, high: high), seed: seed, on: device)
    }

    /// Normal draws made on `device` from Philox (Box–Muller), keyed as `uniform`'s, as `torch.randn`
    /// and `keras.random.normal`.
    public static func normal(_ shape: [Int], mean: Float = 0, standardDeviation: Float = 1, seed: UInt64? = nil,
                              on device: any Device = CPUDevice.shared) throws -> Tensor {
        try random(shape, .normal(mean: mean, standardDeviation: standardDeviation), seed: seed, on: device)
    }

    /// Standard normal draws of `other`'s shape on its device (a VAE's noise), as `torch.randn_like`.
    public static func normal(like other: Tensor, seed: UInt64? = nil) throws -> Tensor {
        try normal(other.shape, seed: seed, on: other.device)
    }

    /// Draws `offset`, `offset + 1`, … of the stream keyed by `seed` (the global generator's next draw when nil).
    static func random(_ shape: [Int], _ distribution: RandomDistribution, seed: UInt64?, offset: UInt64 = 0,
                       on device: any Device) throws -> Tensor {
        try checkCount(nil, shape)
        let count = shape.reduce(1, *)
        let buffer = try device.makeBuffer(count: count)
        try device.fillRandom(buffer, distribution: distribution, seed: randomKey(seed), offset: offset, count: count)
        return Tensor(shape: shape, buffer: buffer, device: device)
    }

    private static func randomKey(_ seed: UInt64?) -> UInt64 { seed ?? RandomGenerator.shared.withLock { $0.next() } }

    /// This HWIO convolution kernel with `rate − 1` zero taps between neighbouring taps, of shape
    /// ((kh − 1)·rh + 1, (kw − 1)·rw + 1, in, out): the plain convolution with it is the dilated
    /// (atrous) convolution with this kernel. The gradient reaches only the real taps.
    public func dilatedKernel(_ rate: (Int, Int)) throws -> Tensor {
        guard rank == 4, rate.0 >= 1, rate.1 >= 1 else { throw TensorError.shape("dilatedKernel takes an HWIO kernel and rates ≥ 1, got \(shape) and \(rate)") }
        var kernel = self
        for (axis, r) in [(0, rate.0), (1, rate.1)] where r > 1 {
            let n = kernel.shape[axis]
            var zeroShape = kernel.shape
            zeroShape[axis] = 1
            let padded = try Tensor.concatenate([kernel, Tensor.zeros(zeroShape, on: device)], axis: axis)  // index n is the zero tap
            kernel = try padded.gathered((0..<(n - 1) * r + 1).map { $0 % r == 0 ? $0 / r : n }, axis: axis)
        }
        return kernel
    }

    /// Tensors of one shape joined along a new `axis`, as `torch.stack`.
    public static func stack(_ tensors: [Tensor], axis: Int = 0) throws -> Tensor {
        guard let first = tensors.first, tensors.allSatisfy({ $0.shape == first.shape }) else {
            throw TensorError.shape("stack needs tensors of one shape, got \(tensors.map(\.shape))")
        }
        let at = axis < 0 ? axis + first.rank + 1 : axis
        guard (0...first.rank).contains(at) else { throw TensorError.shape("stack: axis \(axis) for rank-\(first.rank) tensors") }
        var expanded = first.shape
        expanded.insert(1, at: at)
        return try concatenate(try tensors.map { try $0.reshaped(expanded) }, axis: at)
    }
}

private extension Array where Element == Int {
    /// A reduced shape that kept nothing is a one-element tensor.
    var nonEmpty: [Int] { isEmpty ? [1] : self }
}
