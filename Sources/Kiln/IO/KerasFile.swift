import Foundation

/// Keras model files: legacy `.h5` (`model.save` with a `model_config` attribute and
/// `model_weights/<layer>/…` listed by `weight_names`, or `save_weights` output) and Keras 3
/// `.keras` (a zip of `config.json` and `model.weights.h5` with `layers/<layer>/vars/<i>`).
/// Kiln's layers keep Keras's weight layouts and order, so values load as stored.
public enum KerasFile {
    /// Architecture and weights, placed on `device`.
    public static func load(_ url: URL, device: (any Device)? = nil) throws -> Model {
        switch url.pathExtension.lowercased() {
        case "keras":
            let entries = Dictionary(try Zip.entries(url).map { ($0.name, $0.data) }, uniquingKeysWith: { a, _ in a })
            guard let config = entries["config.json"], let weights = entries["model.weights.h5"] else {
                throw DataError(url.path, "a .keras file holds config.json and model.weights.h5; found \(entries.keys.sorted().joined(separator: ", "))")
            }
            let model = try KerasConfig.model(fromJSON: config, file: "\(url.path)[config.json]")
            try model.place(on: device)
            let temporary = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-\(UUID()).weights.h5")
            try weights.write(to: temporary)
            defer { try? FileManager.default.removeItem(at: temporary) }
            try loadKeras3Weights(HDF5File(temporary, name: "\(url.path)[model.weights.h5]"), into: model, name: url.path)
            return model
        default:
            let file = try HDF5File(url)
            guard let config = try file.strings("model_config")?.first else {
                throw DataError(url.path, "no model_config attribute: this holds weights only; build the model and use loadWeights")
            }
            let model = try KerasConfig.model(fromJSON: Data(config.utf8), file: url.path)
            try model.place(on: device)
            try loadLegacyWeights(file, into: model)
            return model
        }
    }

    /// Weights of a `.h5` (either layout) into a placed model, matched by layer name.
    public static func loadWeights(_ url: URL, into model: Model) throws {
        guard model.device != nil else { throw TrainingError.incompatible("place the model on a device before loading weights") }
        let file = try HDF5File(url)
        if file.exists("layers") { try loadKeras3Weights(file, into: model, name: url.path) } else { try loadLegacyWeights(file, into: model) }
    }

    /// One group per top-level layer; a nested model's group lists all of its weights.
    private static func loadLegacyWeights(_ file: HDF5File, into model: Model) throws {
        let root = file.exists("model_weights") ? "model_weights" : "/"
        for layer in model.layers {
            let weights = (layer as? NestedModel)?.model.weights ?? layer.allWeights
            guard !weights.isEmpty else { continue }
            let group = root == "/" ? layer.name : "\(root)/\(layer.name)"
            guard file.exists(group), let names = try file.strings("weight_names", of: group) else {
                throw DataError(file.path, "no weights for layer '\(layer.name)' (expected group \(group) with a weight_names attribute)")
            }
            let datasets = names.map { "\(group)/\($0)" }
            guard layer is NestedModel else { try assign(datasets, of: file, to: weights, of: layer.name); continue }
            // Named `discriminator/bn/gamma` (Kiln's paths), listed trainable first as Keras's `model.weights`.
            let byName = Dictionary(zip(names.map { $0.hasSuffix(":0") ? String($0.dropLast(2)) : $0 }, datasets)) { a, _ in a }
            let ordered = weights.allSatisfy { byName[$0.path] != nil } ? weights.map { byName[$0.path]! } : nil
            try assign(ordered ?? datasets, of: file, to: ordered == nil ? weights.filter(\.isVariable) + weights.filter { !$0.isVariable } : weights,
                       of: layer.name)
        }
    }

    /// Groups named by class (`layers/sequential/layers/dense_1/vars`) whose `vars` carry the layer's
    /// name; recurrent layers keep their weights in `cell/vars`; nested models hold their layers'
    /// groups under `layers`, and wrappers theirs under `forward_layer`, `backward_layer` or `layer`.
    private static func loadKeras3Weights(_ file: HDF5File, into model: Model, name: String) throws {
        var byPath: [String: String] = [:]
        func visit(_ group: String, scope: [String]) throws {
            guard file.exists("\(group)/vars") else { return }
            let layerName = try file.strings("name", of: "\(group)/vars")?.first ?? String(group.split(separator: "/").last ?? "")
            let own = try file.children("\(group)/vars").isEmpty && file.exists("\(group)/cell/vars") ? "\(group)/cell/vars" : "\(group)/vars"
            byPath[(scope + [layerName]).joined(separator: "/")] = own
            if file.exists("\(group)/layers") { try collect("\(group)/layers", scope: scope + [layerName]) }
            for wrapped in ["forward_layer", "backward_layer", "layer"] { try visit("\(group)/\(wrapped)", scope: scope + [layerName]) }
        }
        func collect(_ group: String, scope: [String]) throws {
            for child in try file.children(group) { try visit("\(group)/\(child)", scope: scope) }
        }
        try collect("layers", scope: [])
        for layer in model.leafLayers where !layer.weights.isEmpty {
            let path = (layer.scope + [layer.name]).joined(separator: "/")
            guard let vars = byPath[path] else { throw DataError(name, "no weights for layer '\(path)' in model.weights.h5") }
            let datasets = try file.children(vars).compactMap(Int.init).sorted().map { "\(vars)/\($0)" }
            try assign(datasets, of: file, to: layer.weights, of: path)
        }
    }

    private static func assign(_ datasets: [String], of file: HDF5File, to weights: [Weight], of layer: String) throws {
        guard datasets.count == weights.count else {
            throw DataError(file.path, "layer '\(layer)' has \(weights.count) weights, the file \(datasets.count) (\(datasets.joined(separator: ", ")))")
        }
        for (weight, dataset) in zip(weights, datasets) {
            let (values, shape) = try file.floats(dataset)
            guard shape == weight.shape else {
                throw DataError(file.path, "'\(dataset)' has shape \(shape), \(weight.path) needs \(weight.shape)")
            }
            try weight.assign(values)
        }
    }
}
