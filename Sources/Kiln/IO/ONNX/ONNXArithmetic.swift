/// ONNX's elementwise math, casts, reductions, constant padding and slicing, as Kiln tensor ops.
extension ONNXOp {
    func arithmetic(_ x: Tensor, _ arguments: [Tensor?]) throws -> Tensor {
        switch node.opType {
        case "Exp": return try x.exp()
        case "Log": return try x.log()
        case "Sqrt": return try x.sqrt()
        case "Pow":  // a constant scalar exponent exactly (any base for whole ones); a tensor of them as exp(y·log x), positive bases
            if let exponent = try hostValues(1, arguments), exponent.count == 1 { return try x.pow(exponent[0]) }
            guard arguments.count > 1, let y = arguments[1] else { throw fail("needs an exponent") }
            return try (y * x.log()).exp()
        case "Cast": return try cast(x)
        case "ReduceMean", "ReduceSum": return try reduced(x, arguments)
        case "Pad": return try padded(x, arguments)
        case "Slice": return try slice(x, arguments)
        default: throw fail("unsupported op")
        }
    }

    /// Kiln computes in float32: casts to floating types keep the values; casts to integer types
    /// (shape arithmetic) truncate toward zero, on small tensors read back to the host.
    private func cast(_ x: Tensor) throws -> Tensor {
        let to = int("to", 1)
        if [1, 10, 11, 16].contains(to) { return x }
        guard [2, 3, 4, 5, 6, 7, 12, 13].contains(to) else { throw fail("cast to ONNX type \(to) is not supported") }
        guard x.count <= 4096 else { throw fail("cast of \(x.count) values to an integer type is not supported (only shape-sized ones)") }
        return try Tensor(try x.toArray().map { $0.rounded(.towardZero) }, shape: x.shape, on: x.device)
    }

    /// ReduceMean/ReduceSum over `axes` (an attribute before opset 18, or ReduceSum's input from opset 13).
    private func reduced(_ x: Tensor, _ arguments: [Tensor?]) throws -> Tensor {
        let fromInput = opset >= 18 || (node.opType == "ReduceSum" && opset >= 13)
        let given = fromInput ? try hostValues(1, arguments)?.map { Int($0) } : ints("axes")
        if given?.isEmpty ?? true, int("noop_with_empty_axes", 0) != 0 { return x }
        let axes = try (given?.isEmpty == false ? given! : Array(0..<x.rank)).map { try x.normalized($0) }
        guard Set(axes).count == axes.count else { throw fail("repeated axes \(axes)") }
        let reduced = try x.reduce(node.opType == "ReduceMean" ? .mean : .sum, axes: axes.sorted(), keepDims: int("keepdims", 1) != 0)
        return int("keepdims", 1) != 0 || axes.count < x.rank ? reduced : try reduced.reshaped([1])
    }

    /// Constant padding (opset 11+: pads and value as inputs; before: attributes); negative pads crop.
    private func padded(_ x: Tensor, _ arguments: [Tensor?]) throws -> Tensor {
        guard (string("mode") ?? "constant") == "constant" else { throw fail("mode '\(string("mode") ?? "")' is not supported (constant is)") }
        guard opset < 18 || node.input.count < 4 || node.input[3].isEmpty else { throw fail("the axes input is not supported") }
        let pads = opset >= 11 ? try hostValues(1, arguments)?.map { Int($0) } : ints("pads")
        let value = opset >= 11 ? try hostValues(2, arguments)?.first ?? 0 : float("value", 0)
        guard let pads, pads.count == 2 * x.rank else { throw fail("pads must give a start and an end for each of the \(x.rank) axes") }
        var y = x
        for axis in 0..<x.rank {
            let (before, after) = (pads[axis], pads[axis + x.rank])
            func filler(_ size: Int) throws -> Tensor {
                var shape = y.shape
                shape[axis] = size
                return try Tensor.full(value, shape: shape, on: x.device)
            }
            if before < 0 || after < 0 {
                guard y.shape[axis] + min(before, 0) + min(after, 0) > 0 else { throw fail("pads \(pads) crop axis \(axis) of \(x.shape) away") }
                y = try y.sliced(max(-before, 0)..<y.shape[axis] - max(-after, 0), axis: axis)
            }
            let parts = (before > 0 ? [try filler(before)] : []) + [y] + (after > 0 ? [try filler(after)] : [])
            if parts.count > 1 { y = try Tensor.concatenate(parts, axis: axis) }
        }
        return y
    }

    /// Slice (opset 10+: starts, ends, axes, steps as inputs; before: attributes), any step but 0,
    /// bounds clamped as ONNX says.
    private func slice(_ x: Tensor, _ arguments: [Tensor?]) throws -> Tensor {
        func values(_ index: Int, _ attribute: String) throws -> [Int]? {
            opset >= 10 ? try hostValues(index, arguments)?.map { $0 >= 0x1p62 ? Int.max / 2 : $0 <= -0x1p62 ? Int.min / 2 : Int($0) } : ints(attribute)
        }
        guard let starts = try values(1, "starts"), let ends = try values(2, "ends"), starts.count == ends.count else { throw fail("needs starts and ends of one length") }
        let axes = try values(3, "axes") ?? Array(0..<starts.count), steps = try values(4, "steps") ?? starts.map { _ in 1 }
        guard axes.count == starts.count, steps.count == starts.count, steps.allSatisfy({ $0 != 0 }) else { throw fail("axes \(axes) and steps \(steps) do not fit starts \(starts)") }
        var y = x
        for (i, axis) in axes.enumerated() {
            let a = try x.normalized(axis), n = x.shape[a], step = steps[i]
            func resolved(_ v: Int) -> Int { v < 0 ? v + n : v }
            let (start, end) = step > 0 ? (min(max(resolved(starts[i]), 0), n), min(max(resolved(ends[i]), 0), n))
                                        : (min(max(resolved(starts[i]), -1), n - 1), min(max(resolved(ends[i]), -1), n - 1))
            let picked = Array(Swift.stride(from: start, to: end, by: step))
            guard !picked.isEmpty else { throw fail("the slice of axis \(a) is empty (empty tensors are not supported)") }
            if picked != Array(0..<n) { y = try y.gathered(picked, axis: a) }
        }
        return y
    }
}
