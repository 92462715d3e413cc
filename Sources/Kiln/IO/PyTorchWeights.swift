import Foundation

/// PyTorch state dicts (`.safetensors`) in and out of Kiln models, with torchvision-style names:
/// a Kiln layer named `conv1` takes `conv1.weight` (Conv2d, OIHW → HWIO) and `conv1.bias`; a Dense
/// layer a Linear's `weight` (out, in) transposed; BatchNormalization `weight`, `bias`,
/// `running_mean`, `running_var` (build it with PyTorch's `momentum: 0.9, epsilon: 1e-5`).
/// A Linear after a flatten of (C, H, W) feature maps has its input columns reordered to Kiln's
/// (H, W, C) flatten, so the numbers agree whatever the layout. The weights of an imported ONNX graph
/// keep their initializer names and layouts (a PyTorch export's own state-dict keys).
public enum PyTorchWeights {
    /// Loads `file` into a placed `model`. `names` maps Kiln layer names to state-dict prefixes
    /// (default: the same name; `/` in names becomes `.`). With `strict`, keys the model does not
    /// use are an error, as in `load_state_dict`.
    public static func load(_ url: URL, into model: Model, names: [String: String] = [:], strict: Bool = true) throws {
        let file = try SafeTensors(contentsOf: url)
        guard model.device != nil else { throw TrainingError.incompatible("place the model on a device before loading weights") }
        var used = Set<String>()
        for layer in model.leafLayers where !layer.weights.isEmpty {
            for (weight, key, layout) in try mapping(layer, in: model, names: names) {
                guard let entry = file.entries[key] else {
                    throw DataError(url.path, "no tensor '\(key)' for \(weight.path) (state dict has \(file.entries.keys.sorted().prefix(12).joined(separator: ", "))…)")
                }
                guard entry.shape.reduce(1, *) == weight.count, layout.torchShape(weight.shape) == entry.shape else {
                    throw DataError(url.path, "tensor '\(key)' has shape \(entry.shape); \(weight.path) \(weight.shape) needs \(layout.torchShape(weight.shape))")
                }
                try weight.assign(layout.toKiln(try file.floats(key), kilnShape: weight.shape))
                used.insert(key)
            }
        }
        let unused = file.entries.keys.filter { !used.contains($0) && !$0.hasSuffix("num_batches_tracked") }.sorted()
        if strict, !unused.isEmpty { throw DataError(url.path, "tensors the model has no place for: \(unused.joined(separator: ", "))") }
    }

    /// Writes the model's weights as a PyTorch-style state dict.
    public static func save(_ model: Model, to url: URL, names: [String: String] = [:]) throws {
        var tensors: [(name: String, shape: [Int], values: [Float])] = []
        for layer in model.leafLayers where !layer.weights.isEmpty {
            for (weight, key, layout) in try mapping(layer, in: model, names: names) {
                tensors.append((key, layout.torchShape(weight.shape), layout.toTorch(try weight.value.toArray(), kilnShape: weight.shape)))
            }
        }
        try SafeTensors.write(tensors, metadata: ["format": "pt"], to: url)
    }

    /// How a Kiln weight's values sit in the PyTorch tensor.
    enum Layout {
        case same
        /// HWIO ↔ OIHW.
        case convolution
        /// (in, out) ↔ (out, in), with the input index reordered from (H, W, C) to (C, H, W) when the
        /// layer reads flattened feature maps of that shape.
        case linear(flattened: [Int]?)

        func torchShape(_ shape: [Int]) -> [Int] {
            switch self {
            case .same: shape
            case .convolution: [shape[3], shape[2], shape[0], shape[1]]
            case .linear: [shape[1], shape[0]]
            }
        }

        /// Index in the PyTorch tensor of each Kiln element.
        private func torchIndex(_ shape: [Int]) -> [Int] {
            switch self {
            case .same:
                return Array(0..<shape.reduce(1, *))
            case .convolution:
                let (kh, kw, i, o) = (shape[0], shape[1], shape[2], shape[3])
                return (0..<kh * kw * i * o).map { index in
                    let (rest, out) = index.quotientAndRemainder(dividingBy: o)
                    let (pixel, input) = rest.quotientAndRemainder(dividingBy: i)
                    return ((out * i + input) * kh + pixel / kw) * kw + pixel % kw
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
            }
        }

        func toKiln(_ torch: [Float], kilnShape: [Int]) -> [Float] { torchIndex(kilnShape).map { torch[$0] } }

        func toTorch(_ kiln: [Float], kilnShape: [Int]) -> [Float] {
            var torch = kiln
            for (k, t) in torchIndex(kilnShape).enumerated() { torch[t] = kiln[k] }
            return torch
        }
    }

    private static func mapping(_ layer: Layer, in model: Model, names: [String: String]) throws -> [(Weight, String, Layout)] {
        let prefix = names[layer.name] ?? layer.name.replacingOccurrences(of: "/", with: ".")
        return try layer.weights.map { weight in
            switch (layer, weight.name) {
            case (is ONNXGraph, _): return (weight, weight.name, .same)  // an ONNX initializer keeps its name and layout
            case (is Conv2D, "kernel"): return (weight, prefix + ".weight", .convolution)
            case (is Dense, "kernel"): return (weight, prefix + ".weight", .linear(flattened: flattenedInput(of: layer, in: model)))
            case (_, "bias"), (_, "beta"): return (weight, prefix + ".bias", .same)
            case (_, "gamma"): return (weight, prefix + ".weight", .same)
            case (_, "moving_mean"): return (weight, prefix + ".running_mean", .same)
            case (_, "moving_variance"): return (weight, prefix + ".running_var", .same)
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
