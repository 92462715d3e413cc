import Foundation

/// PyTorch state dicts (`.pt`/`.pth` checkpoints or `.safetensors`) in and out of Kiln models, with torchvision-style names:
/// a Kiln layer named `conv1` takes `conv1.weight` (Conv2d, OIHW → HWIO) and `conv1.bias`; a Dense
/// layer a Linear's `weight` (out, in) transposed; BatchNormalization `weight`, `bias`,
/// `running_mean`, `running_var` (build it with PyTorch's `momentum: 0.9, epsilon: 1e-5`); Embedding
/// `weight`; Conv1D a Conv1d's `weight` (out, in, k); SimpleRNN/LSTM/GRU an nn.RNN/LSTM/GRU's
/// `weight_ih_l0`, `weight_hh_l0` and the two biases (GRU gates reordered from r, z, n).
/// A Linear after a flatten of (C, H, W) feature maps has its input columns reordered to Kiln's
/// (H, W, C) flatten, so the numbers agree whatever the layout. The weights of an imported ONNX graph
/// keep their initializer names and layouts (a PyTorch export's own state-dict keys).
public enum PyTorchWeights {
    /// Loads `file` into a placed `model`. `names` maps Kiln layer names to state-dict prefixes
    /// (default: the same name; `/` in names becomes `.`). With `strict`, keys the model does not
    /// use are an error, as in `load_state_dict`.
    public static func load(_ url: URL, into model: Model, names: [String: String] = [:], strict: Bool = true) throws {
        let file = try openTensorFile(url)
        let shapes = file.shapes
        guard model.device != nil else { throw TrainingError.incompatible("place the model on a device before loading weights") }
        var used = Set<String>()
        for layer in model.leafLayers where !layer.weights.isEmpty {
            for (weight, keys, layout) in try mapping(layer, in: model, names: names) {
                let tensors = try zip(keys, layout.torchShapes(weight.shape)).map { key, shape in
                    guard let found = shapes[key] else {
                        throw DataError(url.path, "no tensor '\(key)' for \(weight.path) (state dict has \(shapes.keys.sorted().prefix(12).joined(separator: ", "))…)")
                    }
                    guard found == shape else {
                        throw DataError(url.path, "tensor '\(key)' has shape \(found); \(weight.path) \(weight.shape) needs \(shape)")
                    }
                    used.insert(key)
                    return try file.floats(key)
                }
                try weight.assign(layout.toKiln(tensors, kilnShape: weight.shape))
            }
        }
        let unused = shapes.keys.filter { !used.contains($0) && !$0.hasSuffix("num_batches_tracked") }.sorted()
        if strict, !unused.isEmpty { throw DataError(url.path, "tensors the model has no place for: \(unused.joined(separator: ", "))") }
    }

    /// Writes the model's weights as a PyTorch-style state dict.
    public static func save(_ model: Model, to url: URL, names: [String: String] = [:]) throws {
        var tensors: [(name: String, shape: [Int], values: [Float])] = []
        for layer in model.leafLayers where !layer.weights.isEmpty {
            for (weight, keys, layout) in try mapping(layer, in: model, names: names) {
                let values = layout.toTorch(try weight.value.toArray(), kilnShape: weight.shape)
                for (key, (shape, part)) in zip(keys, zip(layout.torchShapes(weight.shape), values)) { tensors.append((key, shape, part)) }
            }
        }
        try SafeTensors.write(tensors, metadata: ["format": "pt"], to: url)
    }

    /// How a Kiln weight's values sit in the PyTorch tensors (one, or two for a recurrent bias).
    enum Layout {
        case same
        /// HWIO ↔ OIHW.
        case convolution
        /// (k, in, out) ↔ (out, in, k).
        case convolution1D
        /// A depthwise kernel (kh, kw, channels, multiplier) ↔ a grouped Conv2d's (channels·multiplier, 1, kh, kw).
        case depthwise
        /// (in, out) ↔ (out, in), with the input index reordered from (H, W, C) to (C, H, W) when the
        /// layer reads flattened feature maps of that shape.
        case linear(flattened: [Int]?)
        /// (rows, gates·units) ↔ (gates·units, rows), Kiln's gate block b being PyTorch's `order[b]`
        /// (GRU: Keras z, r, h from PyTorch r, z, n).
        case recurrentKernel(order: [Int])
        /// PyTorch's `bias_ih` and `bias_hh` (gate blocks in `order`): summed into one Kiln bias, or
        /// (GRU) its two rows.
        case recurrentBias(order: [Int], separate: Bool)

        func torchShapes(_ shape: [Int]) -> [[Int]] {
            switch self {
            case .same: [shape]
            case .convolution: [[shape[3], shape[2], shape[0], shape[1]]]
            case .convolution1D: [[shape[2], shape[1], shape[0]]]
            case .depthwise: [[shape[2] * shape[3], 1, shape[0], shape[1]]]
            case .linear, .recurrentKernel: [[shape[1], shape[0]]]
            case .recurrentBias: [[shape.last!], [shape.last!]]
            }
        }

        /// Index in the (first) PyTorch tensor of each Kiln element.
        private func torchIndex(_ shape: [Int]) -> [Int] {
            switch self {
            case .same, .recurrentBias:
                return Array(0..<shape.reduce(1, *))
            case .convolution:
                let (kh, kw, i, o) = (shape[0], shape[1], shape[2], shape[3])
                return (0..<kh * kw * i * o).map { index in
                    let (rest, out) = index.quotientAndRemainder(dividingBy: o)
                    let (pixel, input) = rest.quotientAndRemainder(dividingBy: i)
                    return ((out * i + input) * kh + pixel / kw) * kw + pixel % kw
                }
            case .convolution1D:
                let (k, i, o) = (shape[0], shape[1], shape[2])
                return (0..<k * i * o).map { index in
                    let (rest, out) = index.quotientAndRemainder(dividingBy: o)
                    let (tap, input) = rest.quotientAndRemainder(dividingBy: i)
                    return (out * i + input) * k + tap
                }
            case .depthwise:  // Kiln (p·C + c)·m + j ← PyTorch (c·m + j)·kh·kw + p
                let (pixels, channels) = (shape[0] * shape[1], shape[2] * shape[3])
                return (0..<pixels * channels).map { index in
                    let (pixel, channel) = index.quotientAndRemainder(dividingBy: channels)
                    return channel * pixels + pixel
                }
            case .linear(let flattened):
                let (inputs, outputs) = (shape[0], shape[1])
                return (0..<inputs * outputs).map { index in
                    let (row, out) = index.quotientAndRemainder(dividingBy: outputs)
                    var column = row
                    if let f = flattened {  // row = (h·W + w)·C + c  →  column = c·H·W + h·W + w
                        let (pixel, c) = row.quotientAndRemainder(dividingBy: f[2])
                        column = c * f[0] * f[1] + pixel
                    }
                    return out * inputs + column
                }
            case .recurrentKernel(let order):
                let (rows, columns) = (shape[0], shape[1]), units = columns / order.count
                return (0..<rows * columns).map { index in
                    let (row, column) = index.quotientAndRemainder(dividingBy: columns)
                    return (order[column / units] * units + column % units) * rows + row
                }
            }
        }

        /// A vector of gate blocks in Kiln's order from one in PyTorch's.
        private func reordered(_ torch: [Float], _ order: [Int]) -> [Float] {
            let units = torch.count / order.count
            return order.flatMap { torch[$0 * units ..< ($0 + 1) * units] }
        }

        func toKiln(_ torch: [[Float]], kilnShape: [Int]) -> [Float] {
            guard case .recurrentBias(let order, let separate) = self else { return torchIndex(kilnShape).map { torch[0][$0] } }
            let (input, recurrent) = (reordered(torch[0], order), reordered(torch[1], order))
            return separate ? input + recurrent : zip(input, recurrent).map(+)
        }

        func toTorch(_ kiln: [Float], kilnShape: [Int]) -> [[Float]] {
            if case .recurrentBias(let order, let separate) = self {
                let inverse = order.indices.map { order.firstIndex(of: $0)! }
                let width = kilnShape.last!
                let (input, recurrent) = separate ? (Array(kiln[..<width]), Array(kiln[width...])) : (kiln, [Float](repeating: 0, count: width))
                return [reordered(input, inverse), reordered(recurrent, inverse)]
            }
            var torch = kiln
            for (k, t) in torchIndex(kilnShape).enumerated() { torch[t] = kiln[k] }
            return [torch]
        }
    }

    /// Each weight of `layer` with its state-dict keys. Recurrent layers are single-layer `nn.RNN`,
    /// `nn.LSTM` or `nn.GRU` (`weight_ih_l0`, …); the two directions of a `Bidirectional` are one
    /// bidirectional module named after it (`…_l0` and `…_l0_reverse`).
    private static func mapping(_ layer: Layer, in model: Model, names: [String: String]) throws -> [(Weight, [String], Layout)] {
        var module = layer.name, suffix = ""
        if layer is RecurrentLayer, let wrapper = layer.scope.last, layer.name.hasPrefix("forward_") || layer.name.hasPrefix("backward_") {
            (module, suffix) = (wrapper, layer.name.hasPrefix("backward_") ? "_reverse" : "")
        }
        let prefix = names[module] ?? module.replacingOccurrences(of: "/", with: ".")
        return try layer.weights.map { weight in
            if let recurrent = layer as? RecurrentLayer {
                let order = recurrent.cell == .gru ? [1, 0, 2] : Array(0..<(recurrent.cell == .lstm ? 4 : 1))
                switch weight.name {
                case "kernel": return (weight, [prefix + ".weight_ih_l0" + suffix], .recurrentKernel(order: order))
                case "recurrent_kernel": return (weight, [prefix + ".weight_hh_l0" + suffix], .recurrentKernel(order: order))
                default: return (weight, [prefix + ".bias_ih_l0" + suffix, prefix + ".bias_hh_l0" + suffix], .recurrentBias(order: order, separate: recurrent.cell == .gru))
                }
            }
            switch (layer, weight.name) {
            case (is ONNXGraph, _): return (weight, [weight.name], .same)  // an ONNX initializer keeps its name and layout
            // Conv2d's (out, in, kh, kw) and ConvTranspose2d's (in, out, kh, kw) both permute to the Keras layouts.
            case (is Conv2D, "kernel"), (is Conv2DTranspose, "kernel"): return (weight, [prefix + ".weight"], .convolution)
            case (is Conv1D, "kernel"): return (weight, [prefix + ".weight"], .convolution1D)
            case (is DepthwiseConv2D, "kernel"): return (weight, [prefix + ".weight"], .depthwise)
            case (is Dense, "kernel"): return (weight, [prefix + ".weight"], .linear(flattened: flattenedInput(of: layer, in: model)))
            case (is Embedding, "embeddings"): return (weight, [prefix + ".weight"], .same)
            case (_, "bias"), (_, "beta"): return (weight, [prefix + ".bias"], .same)
            case (_, "gamma"): return (weight, [prefix + ".weight"], .same)
            case (_, "moving_mean"): return (weight, [prefix + ".running_mean"], .same)
            case (_, "moving_variance"): return (weight, [prefix + ".running_var"], .same)
            default: throw TrainingError.incompatible("no PyTorch equivalent for \(weight.path)")
            }
        }
    }

    /// (H, W, C) when `layer` reads a Flatten of feature maps with more than one pixel.
    private static func flattenedInput(of layer: Layer, in model: Model) -> [Int]? {
        guard let node = model.nodes.first(where: { $0.layer === layer }), let source = node.inputs.first,
              source.layer is Flatten, let shape = source.inputs.first?.shape, shape.count == 3, shape[0] * shape[1] > 1 else { return nil }
        return shape
    }
}
