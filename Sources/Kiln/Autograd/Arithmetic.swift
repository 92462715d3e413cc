/// Elementwise arithmetic, activations, reductions and reshapes with their gradients.
extension Tensor {
    func requireFloat(_ op: String) throws {
        guard dtype == .float32 else { throw TensorError.dtype("\(op) takes float32 tensors, got \(dtype) of shape \(shape)") }
    }

    // MARK: Broadcasting arithmetic

    static func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        try a.requireFloat("\(op)"); try b.requireFloat("\(op)")
        let shape: [Int]
        do { shape = try StridedIndex.broadcastShape(a.shape, b.shape) } catch {
            throw TensorError.shape("\(op): shapes \(a.shape) and \(b.shape) do not broadcast")
        }
        return try make(shape, from: [a, b], { try a.device.binary(op, a.buffer, shape: a.shape, b.buffer, shape: b.shape, into: $0, shape: shape) }) { g in
            switch op {
            case .add: return [try g.sum(to: a.shape), try g.sum(to: b.shape)]
            case .subtract: return [try g.sum(to: a.shape), try (-g).sum(to: b.shape)]
            case .multiply: return [try (g * b).sum(to: a.shape), try (g * a).sum(to: b.shape)]
            case .divide: return [try (g / b).sum(to: a.shape), try (-(g * a) / (b * b)).sum(to: b.shape)]
            case .maximum, .minimum:
                // The gradient goes to whichever operand was chosen (to `a` on ties), and only to operands that need one.
                let toA = try 1 - (op == .maximum ? b - a : a - b).unary(.step, differentiable: false)
                return [a.requiresGrad ? try (g * toA).sum(to: a.shape) : nil, b.requiresGrad ? try (g * (1 - toA)).sum(to: b.shape) : nil]
            }
        }
    }

    public static func + (a: Tensor, b: Tensor) throws -> Tensor { try binary(.add, a, b) }
    public static func - (a: Tensor, b: Tensor) throws -> Tensor { try binary(.subtract, a, b) }
    public static func * (a: Tensor, b: Tensor) throws -> Tensor { try binary(.multiply, a, b) }
    public static func / (a: Tensor, b: Tensor) throws -> Tensor { try binary(.divide, a, b) }
    public static func maximum(_ a: Tensor, _ b: Tensor) throws -> Tensor { try binary(.maximum, a, b) }
    public static func minimum(_ a: Tensor, _ b: Tensor) throws -> Tensor { try binary(.minimum, a, b) }

    /// `scale * self + shift`.
    public func affine(scale: Float, shift: Float = 0) throws -> Tensor {
        try requireFloat("affine")
        return try Tensor.make(shape, from: [self], { try device.affine(buffer, scale: scale, shift: shift, into: $0, count: count) }) { g in
            [try g.affine(scale: scale)]
        }
    }

    public static func * (a: Tensor, b: Float) throws -> Tensor { try a.affine(scale: b) }
    public static func * (a: Float, b: Tensor) throws -> Tensor { try b.affine(scale: a) }
    public static func + (a: Tensor, b: Float) throws -> Tensor { try a.affine(scale: 1, shift: b) }
    public static func - (a: Tensor, b: Float) throws -> Tensor { try a.affine(scale: 1, shift: -b) }
    public static func - (a: Float, b: Tensor) throws -> Tensor { try b.affine(scale: -1, shift: a) }
    public static func + (a: Float, b: Tensor) throws -> Tensor { try b.affine(scale: 1, shift: a) }
    public static func / (a: Tensor, b: Float) throws -> Tensor { try a.affine(scale: 1 / b) }
    public static func / (a: Float, b: Tensor) throws -> Tensor { try Tensor.full(a, shape: [1], on: b.device) / b }
    public static prefix func - (a: Tensor) throws -> Tensor { try a.affine(scale: -1) }

    /// Elements clipped to `[low, high]` (no gradient outside).
    public func clipped(_ low: Float, _ high: Float) throws -> Tensor {
        if low == 0, high < .greatestFiniteMagnitude { return try unary(.cappedRelu(max: high)) }  // ReLU6: one pass each way
        return try Tensor.minimum(Tensor.maximum(self, .full(low, shape: [1], on: device)), .full(high, shape: [1], on: device))
    }

    // MARK: Activations and other unary functions

    func unary(_ op: UnaryOp, differentiable: Bool = true) throws -> Tensor {
        try requireFloat("\(op)")
        let input = self
        let output = try device.makeBuffer(count: count)
        try device.unary(op, buffer, into: output, count: count)
        return Tensor.record(shape, buffer: output, from: [self], backward: differentiable ? { g in
            try [Tensor.make(input.shape, from: [g]) {
                try input.device.unaryBackward(op, input: input.buffer, output: output, gradOutput: g.buffer, gradInput: $0, count: input.count)
            }]
        } : nil)
    }

    public func relu() throws -> Tensor { try unary(.relu) }
    public func leakyRelu(negativeSlope: Float = 0.3) throws -> Tensor { try unary(.leakyRelu(slope: negativeSlope)) }
    public func tanh() throws -> Tensor { try unary(.tanh) }
    public func exp() throws -> Tensor { try unary(.exp) }
    public func log() throws -> Tensor { try unary(.log) }
    public func sqrt() throws -> Tensor { try unary(.sqrt) }
    public func square() throws -> Tensor { try unary(.square) }
    public func abs() throws -> Tensor { try unary(.abs) }
    public func softplus() throws -> Tensor { try unary(.softplus) }

    public func sigmoid() throws -> Tensor {
        let result = try unary(.sigmoid)
        result.logits = (self, .sigmoid)
        return result
    }

    // MARK: Reductions

    /// Sum (or mean, max) along one axis, dropping it.
    public func reduce(_ op: ReduceOp, axis: Int) throws -> Tensor {
        try requireFloat("reduce")
        let axis = try normalized(axis)
        let view = AxisView(outer: shape[..<axis].reduce(1, *), axis: shape[axis], inner: shape[(axis + 1)...].reduce(1, *))
        var reduced = shape
        reduced.remove(at: axis)
        if reduced.isEmpty { reduced = [1] }
        let input = self
        return try Tensor.make(reduced, from: [self], { try device.reduce(op, buffer, view: view, into: $0) }) { g in
            var kept = input.shape
            kept[axis] = 1
            let spread = try g.reshaped(kept).broadcast(to: input.shape)
            switch op {
            case .sum: return [spread]
            case .mean: return [try spread.affine(scale: 1 / Float(view.axis))]
            case .max:
                // Shared by the elements equal to the maximum, as TensorFlow and PyTorch do.
                let peak = try Tensor.make(kept, from: [input]) { try input.device.reduce(.max, input.buffer, view: view, into: $0) }
                let hit = try 1 - (peak - input).unary(.step, differentiable: false)
                let ties = try hit.reduce(.sum, axis: axis).reshaped(kept).broadcast(to: input.shape)
                return [try spread * hit / ties]
            }
        }
    }

    /// Sum of all elements, as a one-element tensor.
    public func sum() throws -> Tensor { try reshaped([count]).reduce(.sum, axis: 0) }
    /// Mean of all elements, as a one-element tensor.
    public func mean() throws -> Tensor { try reshaped([count]).reduce(.mean, axis: 0) }

    func normalized(_ axis: Int) throws -> Int {
        let resolved = axis < 0 ? axis + rank : axis
        guard (0..<rank).contains(resolved) else { throw TensorError.shape("axis \(axis) is out of range for shape \(shape)") }
        return resolved
    }

    /// Sums a broadcast gradient back to `target` (the shape of the operand that was broadcast).
    func sum(to target: [Int]) throws -> Tensor {
        if shape == target { return self }
        var current = self
        let padded = [Int](repeating: 1, count: rank - target.count) + target
        for axis in 0..<rank where padded[axis] == 1 && shape[axis] != 1 {
            var kept = current.shape
            kept[axis] = 1
            current = try current.reduce(.sum, axis: axis).reshaped(kept)
        }
        return try current.reshaped(target)
    }

    /// This tensor repeated along the axes where it has size 1 (NumPy broadcasting).
    public func broadcast(to target: [Int]) throws -> Tensor {
        if shape == target { return self }
        let zero = try Tensor.zeros([1], on: device)
        return try Tensor.make(target, from: [self], {
            try device.binary(.add, buffer, shape: shape, zero.buffer, shape: [1], into: $0, shape: target)
        }) { [shape] g in [try g.sum(to: shape)] }
    }

    // MARK: Shapes

    /// The same values with another shape; one dimension may be -1. Shares the buffer.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var resolved = newShape
        if let unknown = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != unknown }.reduce(1) { $0 * $1.element }
            guard known > 0, count % known == 0 else { throw TensorError.shape("cannot reshape \(shape) to \(newShape)") }
            resolved[unknown] = count / known
        }
        guard resolved.allSatisfy({ $0 > 0 }), Memory.count(resolved) == count else {
            throw TensorError.shape("cannot reshape \(shape) (\(count) elements) to \(newShape)")
        }
        if resolved == shape { return self }
        let tracked = GradMode.isEnabled && requiresGrad
        let result = Tensor(shape: resolved, dtype: dtype, buffer: buffer, device: device, requiresGrad: tracked)
        if tracked { result.node = Node(inputs: [self]) { [shape] g in [try g.reshaped(shape)] } }
        // A sigmoid is elementwise, a softmax acts on the last axis: where that survives, so does the stable loss form.
        if let (source, activation) = logits, activation == .sigmoid || resolved.last == shape.last {
            result.logits = (try source.reshaped(resolved), activation)
        }
        return result
    }

    /// The last two axes swapped: a matrix's transpose (`x.T`), or that of each matrix of a batch (`x.mT`).
    public func transposed() throws -> Tensor {
        guard rank >= 2 else { throw TensorError.shape("transposed() needs at least 2 axes, got shape \(shape)") }
        var order = Array(0..<rank)
        order.swapAt(rank - 2, rank - 1)
        return try permuted(order)
    }

    /// Axes reordered: `result.shape[i] = shape[permutation[i]]`.
    public func permuted(_ permutation: [Int]) throws -> Tensor {
        try requireFloat("permute")
        guard permutation.sorted() == Array(0..<rank) else { throw TensorError.shape("\(permutation) is not a permutation of the axes of \(shape)") }
        var inverse = permutation
        for (i, p) in permutation.enumerated() { inverse[p] = i }
        return try Tensor.make(permutation.map { shape[$0] }, from: [self], {
            try device.permute(buffer, shape: shape, permutation: permutation, into: $0)
        }) { g in [try g.permuted(inverse)] }
    }
}
