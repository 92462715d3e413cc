import Foundation

/// A tensor stored in an ONNX file (initializer or Constant), kept on the host.
struct ONNXConstant {
    enum Storage { case floats([Float]), ints([Int64]) }
    let shape: [Int]
    let storage: Storage

    init(_ t: Onnx_TensorProto, file: String) throws {
        shape = t.dims.map { Int($0) }
        guard let count = Memory.count(shape) else { throw DataError(file, "tensor '\(t.name)' has dims \(t.dims), which are not a valid size") }
        guard t.dataLocation != .external else { throw DataError(file, "tensor '\(t.name)' keeps its data in an external file, which Kiln does not read") }
        let raw = [UInt8](t.rawData)
        func little<T: FixedWidthInteger>(_: T.Type) -> [T] {
            (0..<raw.count / MemoryLayout<T>.size).map { i in raw[(i * MemoryLayout<T>.size)..<((i + 1) * MemoryLayout<T>.size)].reversed().reduce(T(0)) { $0 << 8 | T($1) } }
        }
        switch t.dataType {
        case 1: storage = .floats(raw.isEmpty ? t.floatData : little(UInt32.self).map(Float.init(bitPattern:)))
        case 11: storage = .floats(raw.isEmpty ? t.doubleData.map(Float.init) : little(UInt64.self).map { Float(Double(bitPattern: $0)) })
        case 10: storage = .floats(raw.isEmpty ? t.int32Data.map { Float(Float16(bitPattern: UInt16($0))) } : little(UInt16.self).map { Float(Float16(bitPattern: $0)) })
        case 7: storage = .ints(raw.isEmpty ? t.int64Data : little(UInt64.self).map { Int64(bitPattern: $0) })
        case 6, 5, 3: storage = .ints(raw.isEmpty ? t.int32Data.map(Int64.init) : little(UInt32.self).map { Int64(Int32(bitPattern: $0)) })
        case 2, 9: storage = .ints(raw.isEmpty ? t.int32Data.map(Int64.init) : raw.map(Int64.init))
        default: throw DataError(file, "tensor '\(t.name)' has ONNX data type \(t.dataType), which Kiln does not read")
        }
        let stored: Int
        switch storage { case .floats(let v): stored = v.count; case .ints(let v): stored = v.count }
        guard stored == count else { throw DataError(file, "tensor '\(t.name)' of shape \(shape) holds \(stored) values") }
    }

    init(shape: [Int], storage: Storage) { (self.shape, self.storage) = (shape, storage) }

    var floats: [Float] {
        switch storage { case .floats(let v): v; case .ints(let v): v.map(Float.init) }
    }

    /// As a device tensor (a scalar becomes shape [1]).
    func tensor(on device: any Device) throws -> Tensor {
        try Tensor(floats, shape: shape.isEmpty ? [1] : shape, on: device)
    }
}

/// One ONNX node, run with Kiln's tensor ops (differentiable, on the inputs' device).
struct ONNXOp {
    let node: Onnx_NodeProto
    let opset: Int
    let file: String
    let constants: [String: ONNXConstant]

    func attribute(_ name: String) -> Onnx_AttributeProto? { node.attribute.first { $0.name == name } }
    func int(_ name: String, _ fallback: Int) -> Int { attribute(name).map { Int($0.i) } ?? fallback }
    func float(_ name: String, _ fallback: Float) -> Float { attribute(name)?.f ?? fallback }
    func ints(_ name: String) -> [Int]? { attribute(name).map { $0.ints.map { Int($0) } } }
    func string(_ name: String) -> String? { attribute(name).map { String(decoding: $0.s, as: UTF8.self) } }

    func fail(_ message: String) -> DataError {
        DataError(file, "node '\(node.name.isEmpty ? node.output.first { !$0.isEmpty } ?? "?" : node.name)' (\(node.opType)): \(message)")
    }

    func constantValue() throws -> ONNXConstant {
        if let t = attribute("value") { return try ONNXConstant(t.t, file: file) }
        if let f = attribute("value_float") { return ONNXConstant(shape: [], storage: .floats([f.f])) }
        if let f = attribute("value_floats") { return ONNXConstant(shape: [f.floats.count], storage: .floats(f.floats)) }
        if let i = attribute("value_int") { return ONNXConstant(shape: [], storage: .ints([i.i])) }
        if let i = attribute("value_ints") { return ONNXConstant(shape: [i.ints.count], storage: .ints(i.ints)) }
        throw fail("Constant without a supported value attribute")
    }

    /// A host constant input (Reshape's shape, Clip's bounds): from the file, or read from the device.
    func hostValues(_ index: Int, _ arguments: [Tensor?]) throws -> [Float]? {
        guard index < node.input.count, !node.input[index].isEmpty else { return nil }
        if let c = constants[node.input[index]] { return c.floats }
        return try arguments[index]?.toArray()
    }

    /// The node's outputs in order (LSTM, GRU and RNN have three: Y, Y_h, Y_c).
    func outputs(_ arguments: [Tensor?]) throws -> [Tensor?] {
        ["LSTM", "GRU", "RNN"].contains(node.opType) ? try recurrent(arguments) : [try run(arguments)]
    }

    private func input(_ arguments: [Tensor?], _ i: Int) throws -> Tensor {
        guard i < arguments.count, let t = arguments[i] else { throw fail("input \(i) is missing") }
        return t
    }

    func run(_ arguments: [Tensor?]) throws -> Tensor {
        func input(_ i: Int) throws -> Tensor { try self.input(arguments, i) }
        if node.output.count > 1, node.output.dropFirst().contains(where: { !$0.isEmpty }) {
            throw fail("extra outputs (\(node.output.dropFirst().joined(separator: ", "))) are not supported")
        }
        switch node.opType {
        case "Identity", "Dropout": return try input(0)
        case "Transpose":
            let x = try input(0)
            return try x.permuted(ints("perm") ?? Array((0..<x.rank).reversed()))
        case "Add": return try input(0) + input(1)
        case "Sub": return try input(0) - input(1)
        case "Mul": return try input(0) * input(1)
        case "Div": return try input(0) / input(1)
        case "Relu": return try input(0).relu()
        case "LeakyRelu": return try input(0).leakyRelu(negativeSlope: float("alpha", 0.01))
        case "Sigmoid": return try input(0).sigmoid()
        case "Tanh": return try input(0).tanh()
        case "HardSigmoid": return try (input(0) * float("alpha", 0.2) + float("beta", 0.5)).clamped(min: 0, max: 1)
        case "HardSwish": return try input(0) * (input(0) / 6 + 0.5).clamped(min: 0, max: 1)
        case "Elu", "Selu":
            let x = try input(0), selu = node.opType == "Selu"
            let alpha = float("alpha", selu ? 1.673_263_2 : 1), gamma = selu ? float("gamma", 1.050_701) : 1
            let positive = try x.greater(than: Tensor.zeros([1], on: x.device))
            return try Tensor.where(positive, x, (x.clamped(min: -80, max: 0).exp() - 1) * alpha) * gamma
        case "Mean", "Max", "Min":
            let parts = try (0..<arguments.count).map { try input($0) }
            let combined = try parts.dropFirst().reduce(parts[0]) {
                try node.opType == "Mean" ? $0 + $1 : node.opType == "Max" ? Tensor.maximum($0, $1) : Tensor.minimum($0, $1)
            }
            return node.opType == "Mean" ? try combined / Float(parts.count) : combined
        case "Clip":
            let low = opset >= 11 ? try hostValues(1, arguments)?.first : attribute("min")?.f
            let high = opset >= 11 ? try hostValues(2, arguments)?.first : attribute("max")?.f
            return try input(0).clipped(low ?? -.greatestFiniteMagnitude, high ?? .greatestFiniteMagnitude)
        case "MatMul": return try input(0).matmul(input(1))
        case "Gemm":
            var y = try input(0).matmul(input(1), transposeSelf: int("transA", 0) != 0, transposeOther: int("transB", 0) != 0)
            let (alpha, beta) = (float("alpha", 1), float("beta", 1))
            if alpha != 1 { y = try y * alpha }
            if arguments.count > 2, let c = arguments[2] { y = try y + (beta == 1 ? c : c * beta) }
            return y
        case "Flatten":
            let x = try input(0)
            let axis = int("axis", 1) < 0 ? int("axis", 1) + x.rank : int("axis", 1)
            guard (0...x.rank).contains(axis) else { throw fail("axis \(int("axis", 1)) for rank \(x.rank)") }
            return try x.reshaped([x.shape[..<axis].reduce(1, *), x.shape[axis...].reduce(1, *)])
        case "Reshape":
            let x = try input(0)
            guard let values = try hostValues(1, arguments) else { throw fail("needs a shape input") }
            let target = values.compactMap { $0 == $0.rounded() && Swift.abs($0) <= 0x1p40 ? Int($0) : nil }
            let allowZero = int("allowzero", 0) != 0
            guard target.count == values.count, target.enumerated().allSatisfy({ $0.element != 0 || allowZero || $0.offset < x.rank }) else {
                throw fail("shape \(values) does not fit input \(x.shape)")
            }
            return try x.reshaped(target.enumerated().map { $0.element == 0 && !allowZero ? x.shape[$0.offset] : $0.element })
        case "Concat":
            let parts = try (0..<arguments.count).map { try input($0) }
            return try Tensor.concatenate(parts, axis: int("axis", 1))
        case "Softmax", "LogSoftmax":
            return try softmax(input(0), log: node.opType == "LogSoftmax")
        case "BatchNormalization":
            guard int("training_mode", 0) == 0 else { throw fail("training_mode=1 is not supported (import runs inference statistics)") }
            let x = try input(0)
            guard x.rank >= 2 else { throw fail("input of shape \(x.shape) has no channel axis") }
            let broadcast = [x.shape[1]] + [Int](repeating: 1, count: max(x.rank - 2, 0))
            let (scale, bias, mean, variance) = (try input(1).reshaped(broadcast), try input(2).reshaped(broadcast),
                                                 try input(3).reshaped(broadcast), try input(4).reshaped(broadcast))
            let factor = try scale / (variance + float("epsilon", 1e-5)).sqrt()
            return try (x - mean) * factor + bias
        case "GlobalAveragePool", "GlobalMaxPool":
            let x = try input(0)
            guard x.rank == 4 else { throw fail("pooling over other than 2-D images (rank 4) is not supported, got \(x.shape)") }
            return try x.reshaped([x.shape[0], x.shape[1], x.shape[2] * x.shape[3]])
                .reduce(node.opType == "GlobalMaxPool" ? .max : .mean, axis: 2).reshaped([x.shape[0], x.shape[1], 1, 1])
        case "Conv": return try convolution(input(0), input(1), arguments.count > 2 ? arguments[2] : nil)
        case "MaxPool", "AveragePool": return try pooling(input(0))
        case "ConvTranspose": return try transposedConvolution(input(0), input(1), arguments.count > 2 ? arguments[2] : nil)
        case "Resize", "Upsample": return try resized(input(0), arguments)
        case "Exp", "Log", "Sqrt", "Pow", "Cast", "ReduceMean", "ReduceSum", "Pad", "Slice": return try arithmetic(input(0), arguments)
        case "Shape":
            let x = try input(0)
            return try Tensor(x.shape.map(Float.init), shape: [x.rank], on: x.device)
        case "Unsqueeze", "Squeeze":
            let x = try input(0)
            let given = opset >= 13 ? try hostValues(1, arguments)?.map { Int($0) } : ints("axes")
            if node.opType == "Unsqueeze" {
                guard let given else { throw fail("needs axes") }
                var shape = x.shape
                let rank = x.rank + given.count
                for axis in given.map({ $0 < 0 ? $0 + rank : $0 }).sorted() {
                    guard (0...shape.count).contains(axis) else { throw fail("axis \(axis) for rank \(rank)") }
                    shape.insert(1, at: axis)
                }
                return try x.reshaped(shape)
            }
            let axes = Set((given ?? x.shape.indices.filter { x.shape[$0] == 1 }).map { $0 < 0 ? $0 + x.rank : $0 })
            guard axes.allSatisfy({ (0..<x.rank).contains($0) && x.shape[$0] == 1 }) else { throw fail("cannot squeeze axes \(axes.sorted()) of \(x.shape)") }
            return try x.reshaped(x.shape.indices.filter { !axes.contains($0) }.map { x.shape[$0] })
        case "Expand":
            let x = try input(0)
            guard let target = try hostValues(1, arguments)?.map({ Int($0) }), target.allSatisfy({ $0 >= 1 }) else { throw fail("needs a shape of positive sizes") }
            let rank = max(x.rank, target.count)
            let padded = [Int](repeating: 1, count: rank - x.rank) + x.shape, wanted = [Int](repeating: 1, count: rank - target.count) + target
            let shape = zip(padded, wanted).map { max($0, $1) }
            guard zip(padded, shape).allSatisfy({ $0 == $1 || $0 == 1 }) else { throw fail("cannot expand \(x.shape) to \(target)") }
            return try x.reshaped(padded).broadcast(to: shape)
        case "Gather":
            let (x, axis) = (try input(0), try input(0).normalized(int("axis", 0)))
            guard let values = try hostValues(1, arguments), !values.isEmpty,
                  values.allSatisfy({ $0 == $0.rounded() && $0 >= -Float(x.shape[axis]) && $0 < Float(x.shape[axis]) }) else {
                throw fail("indices must be whole numbers within axis \(axis) of \(x.shape)")
            }
            let indexShape = constants[node.input[1]]?.shape ?? arguments[1]?.shape ?? [values.count]
            let picked = try x.gathered(values.map { Int($0) < 0 ? Int($0) + x.shape[axis] : Int($0) }, axis: axis)
            return try picked.reshaped(Array(x.shape[..<axis]) + indexShape + Array(x.shape[(axis + 1)...]))
        default: throw fail("unsupported op")
        }
    }

    /// ONNX's LSTM (gates i, o, f, c), GRU (z, r, h; either `linear_before_reset`) and RNN, forward,
    /// reverse or bidirectional, with `sequence_lens` and initial states, as Kiln's fused recurrent op.
    private func recurrent(_ arguments: [Tensor?]) throws -> [Tensor?] {
        let cell: RecurrentStep.Cell = node.opType == "LSTM" ? .lstm : node.opType == "GRU" ? .gru : .simpleRNN
        let defaults = ["LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]][node.opType]!
        let activations = attribute("activations").map { $0.strings.map { String(decoding: $0, as: UTF8.self) } } ?? defaults
        let relu = cell == .simpleRNN && activations == ["Relu"]
        guard activations == defaults || relu else { throw fail("activations \(activations) are not supported (only \(defaults.joined(separator: ", ")))") }
        guard attribute("clip") == nil, int("input_forget", 0) == 0 else { throw fail("clip and input_forget are not supported") }
        guard arguments.count < 8 || arguments[7] == nil else { throw fail("peepholes are not supported") }
        let batchMajor = int("layout", 0) == 1
        let x = try input(arguments, 0), w = try input(arguments, 1), r = try input(arguments, 2)
        let sequences = batchMajor ? x : try x.permuted([1, 0, 2])  // [batch, time, features]
        let (batch, time) = (sequences.shape[0], sequences.shape[1])
        let gates = cell == .lstm ? 4 : cell == .gru ? 3 : 1, hidden = r.shape.last ?? 0
        let directions = string("direction") == "bidirectional" ? 2 : 1
        guard w.rank == 3, r.rank == 3, w.shape[0] == directions, w.shape[1] == gates * hidden, r.shape == [directions, gates * hidden, hidden] else {
            throw fail("W \(w.shape) and R \(r.shape) do not fit \(directions) direction(s) of \(gates) gates")
        }
        let order = cell == .lstm ? [0, 2, 3, 1] : Array(0..<gates)  // Kiln's gate k is ONNX's order[k]
        func kilnMatrix(_ m: Tensor, _ d: Int) throws -> Tensor {
            let columns = m.shape[2]
            return try m.selected(d).reshaped([gates, hidden, columns]).gathered(order, axis: 0).reshaped([gates * hidden, columns]).permuted([1, 0])
        }
        func kilnVector(_ v: Tensor) throws -> Tensor { try v.reshaped([gates, hidden]).gathered(order, axis: 0).reshaped([gates * hidden]) }
        var mask: Tensor?
        if let lengths = try hostValues(4, arguments) {
            mask = try Tensor((0..<batch).flatMap { b in (0..<time).map { Float($0) < lengths[b] ? 1 : 0 } }, shape: [batch, time], on: x.device)
        }
        var outputs: [Tensor] = [], lastHidden: [Tensor] = [], lastCell: [Tensor] = []
        for d in 0..<directions {
            let reverse = d == 1 || string("direction") == "reverse"
            var weights = RecurrentWeights(cell: cell, relu: relu, kernel: try kilnMatrix(w, d), recurrentKernel: try kilnMatrix(r, d), bias: nil)
            weights.resetAfter = int("linear_before_reset", 0) == 1
            if arguments.count > 3, let b = arguments[3] {
                let (input, recurrent) = (try kilnVector(b.selected(d).sliced(0..<gates * hidden, axis: 0)),
                                          try kilnVector(b.selected(d).sliced(gates * hidden..<2 * gates * hidden, axis: 0)))
                (weights.bias, weights.recurrentBias) = cell == .gru ? (input, recurrent) : (try input + recurrent, nil)
            } else if cell == .gru {
                weights.recurrentBias = try Tensor.zeros([gates * hidden], on: x.device)
            }
            let initial = { (i: Int) in arguments.count > i ? try arguments[i].map { try ($0.rank == 3 && batchMajor ? $0.permuted([1, 0, 2]) : $0).selected(d) } : nil }
            let steps = Array((0..<time).reversed())
            let states = try (reverse ? sequences.gathered(steps, axis: 1) : sequences).recurrentStates(
                weights, initialHidden: try initial(5), initialCell: try initial(6), mask: try mask.map { reverse ? try $0.gathered(steps, axis: 1) : $0 })
            var y = try states.sliced(1..<time + 1, axis: 0)  // [time, batch, hidden]
            if reverse { y = try y.gathered(steps, axis: 0) }
            if let mask { y = try y * mask.permuted([1, 0]).reshaped([time, batch, 1]) }  // ONNX zeroes the padding
            outputs.append(y)
            lastHidden.append(try states.selected(time))
            if cell == .lstm { lastCell.append(try states.selected(time + 1)) }
        }
        var y = try Tensor.stack(outputs, axis: 1)  // [time, directions, batch, hidden]
        if batchMajor { y = try y.permuted([2, 0, 1, 3]) }
        func last(_ states: [Tensor]) throws -> Tensor? {
            guard !states.isEmpty else { return nil }
            let stacked = try Tensor.stack(states, axis: 0)  // [directions, batch, hidden]
            return batchMajor ? try stacked.permuted([1, 0, 2]) : stacked
        }
        return [y, try last(lastHidden), try last(lastCell)]
    }

    private func softmax(_ x: Tensor, log: Bool) throws -> Tensor {
        if opset < 13 {  // coerced to 2-D at `axis` (default 1)
            let axis = int("axis", 1) < 0 ? int("axis", 1) + x.rank : int("axis", 1)
            guard (0..<x.rank).contains(axis) else { throw fail("axis \(int("axis", 1)) for rank \(x.rank)") }
            let rows = x.shape[..<axis].reduce(1, *)
            return try x.reshaped([rows, x.count / rows]).softmax(log: log).reshaped(x.shape)
        }
        let axis = try x.normalized(int("axis", -1))
        guard axis != x.rank - 1 else { return try x.softmax(log: log) }
        var order = Array(0..<x.rank)
        order.swapAt(axis, x.rank - 1)
        return try x.permuted(order).softmax(log: log).permuted(order)
    }

    /// The window of a 2-D conv or pool from `kernel_shape`, `strides`, `pads`, `auto_pad`, `ceil_mode`;
    /// 1-D ones (rank-3 inputs) run as height-1 images.
    /// `kernel` is the extent of a dilated convolution's kernel; pooling's `dilations` are not supported.
    private func window(_ x: Tensor, kernel: [Int], dilated: Bool = false) throws -> Window2D {
        let spatial = x.rank - 2
        guard spatial == 1 || spatial == 2, kernel.count == spatial else {
            throw fail("other than 1-D or 2-D inputs (rank 3 or 4, NCHW) is not supported, got \(x.shape) and kernel \(kernel)")
        }
        guard dilated || (ints("dilations") ?? []).allSatisfy({ $0 == 1 }) else { throw fail("dilations are not supported") }
        let lifted = spatial == 2 ? kernel : [1] + kernel
        var strides = ints("strides") ?? [Int](repeating: 1, count: spatial)
        var pads = ints("pads") ?? [Int](repeating: 0, count: 2 * spatial)
        guard strides.count == spatial, pads.count == 2 * spatial else { throw fail("strides \(strides) and pads \(pads) do not fit \(spatial)-D") }
        if spatial == 1 { (strides, pads) = ([1] + strides, [0, pads[0], 0, pads[1]]) }
        let kernel = (lifted[0], lifted[1])
        let (h, w) = spatial == 2 ? (x.shape[2], x.shape[3]) : (1, x.shape[2])
        guard (strides + [kernel.0, kernel.1]).allSatisfy({ (1...1 << 31).contains($0) }), pads.allSatisfy({ (0...1 << 31).contains($0) }) else {
            throw fail("strides \(strides), pads \(pads) and kernel \(kernel) are not sizes in range")
        }
        switch string("auto_pad") ?? "NOTSET" {
        case "SAME_UPPER", "SAME_LOWER":
            let lower = string("auto_pad") == "SAME_LOWER"
            func split(_ size: Int, _ k: Int, _ s: Int) -> (Int, Int) {
                let total = max(((size + s - 1) / s - 1) * s + k - size, 0)
                return lower ? (total - total / 2, total / 2) : (total / 2, total - total / 2)
            }
            let (top, bottom) = split(h, kernel.0, strides[0]), (left, right) = split(w, kernel.1, strides[1])
            pads = [top, left, bottom, right]
        case "VALID": pads = [0, 0, 0, 0]
        default: break
        }
        do {
            return try Window2D(input: (h, w), kernel: kernel, stride: (strides[0], strides[1]),
                                pads: (pads[0], pads[1], pads[2], pads[3]), ceilMode: int("ceil_mode", 0) != 0)
        } catch { throw fail("\(error)") }
    }

    /// A 1-D input `[N, C, L]` as images `[N, C, 1, L]`, run by `body`, and its result back to rank 3.
    func asImages(_ x: Tensor, _ body: (Tensor) throws -> Tensor) throws -> Tensor {
        guard x.rank == 3 else { return try body(x) }
        let y = try body(x.reshaped([x.shape[0], x.shape[1], 1, x.shape[2]]))
        return try y.reshaped([y.shape[0], y.shape[1], y.shape[3]])
    }

    private func convolution(_ x: Tensor, _ w: Tensor, _ bias: Tensor?) throws -> Tensor {
        guard w.rank == 3 || w.rank == 4, x.rank == w.rank else { throw fail("other than 1-D or 2-D convolution is not supported, kernel shape \(w.shape)") }
        let taps = Array(w.shape.dropFirst(2)), rates = ints("dilations") ?? taps.map { _ in 1 }
        guard rates.count == taps.count, rates.allSatisfy({ $0 >= 1 }) else { throw fail("dilations \(rates) do not fit kernel \(w.shape)") }
        let window = try self.window(x, kernel: zip(taps, rates).map { ($0 - 1) * $1 + 1 }, dilated: true)
        let rate = rates.count == 2 ? (rates[0], rates[1]) : (1, rates[0])
        let images = x.rank == 3 ? try w.reshaped([w.shape[0], w.shape[1], 1, w.shape[2]]) : w
        return try asImages(x) { try convolution2D($0, images, rate, bias, window) }
    }

    private func convolution2D(_ x: Tensor, _ w: Tensor, _ rate: (Int, Int), _ bias: Tensor?, _ window: Window2D) throws -> Tensor {
        let groups = int("group", 1)
        let (outputs, perGroup) = (w.shape[0], w.shape[1])
        guard groups >= 1, x.rank == 4, x.shape[1] == perGroup * groups, outputs % groups == 0 else {
            throw fail("input \(x.shape), kernel \(w.shape) and group \(groups) do not fit")
        }
        let image = try x.permuted([0, 2, 3, 1])
        let kernel = try w.permuted([2, 3, 1, 0]).dilatedKernel(rate)  // OIHW → HWIO
        if groups > 1, perGroup == 1 {  // depthwise: output c·m + j filters input channel c
            let depthwise = try kernel.reshaped([kernel.shape[0], kernel.shape[1], groups, outputs / groups])
            return try image.depthwiseConv2d(depthwise, bias: bias, window: window).permuted([0, 3, 1, 2])
        }
        let per = outputs / groups
        let parts = try (0..<groups).map { g -> Tensor in
            let xs = groups == 1 ? image : try image.sliced(lastAxis: g * perGroup ..< (g + 1) * perGroup)
            let ks = groups == 1 ? kernel : try kernel.sliced(lastAxis: g * per ..< (g + 1) * per)
            return try xs.conv2d(ks, window: window)
        }
        var y = groups == 1 ? parts[0] : try Tensor.concatenate(parts, axis: -1)
        if let bias { y = try y.addingBias(bias) }
        return try y.permuted([0, 3, 1, 2])
    }

    private func pooling(_ x: Tensor) throws -> Tensor {
        guard let kernel = ints("kernel_shape"), kernel.count == x.rank - 2 else { throw fail("kernel_shape does not fit input \(x.shape)") }
        let window = try self.window(x, kernel: kernel)
        let average = node.opType == "AveragePool"
        if average, int("count_include_pad", 0) != 0, window.padTop > 0 || window.padLeft > 0 || (ints("pads") ?? []).contains(where: { $0 > 0 }) {
            throw fail("count_include_pad=1 with padding is not supported")
        }
        return try asImages(x) { try $0.permuted([0, 2, 3, 1]).pool2d(average ? .average : .max, window: window).permuted([0, 3, 1, 2]) }
    }
}
