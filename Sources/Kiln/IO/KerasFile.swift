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

    private static func loadLegacyWeights(_ file: HDF5File, into model: Model) throws {
        let root = file.exists("model_weights") ? "model_weights" : "/"
        for layer in model.leafLayers where !layer.weights.isEmpty {
            let group = root == "/" ? layer.name : "\(root)/\(layer.name)"
            guard file.exists(group), let names = try file.strings("weight_names", of: group) else {
                throw DataError(file.path, "no weights for layer '\(layer.name)' (expected group \(group) with a weight_names attribute)")
            }
            try assign(names.map { "\(group)/\($0)" }, of: file, to: layer)
        }
    }

    private static func loadKeras3Weights(_ file: HDF5File, into model: Model, name: String) throws {
        var byLayer: [String: String] = [:]
        for group in try file.children("layers") where file.exists("layers/\(group)/vars") {
            let layerName = try file.strings("name", of: "layers/\(group)/vars")?.first ?? group
            byLayer[layerName] = "layers/\(group)/vars"
        }
        for layer in model.leafLayers where !layer.weights.isEmpty {
            guard let vars = byLayer[layer.name] else { throw DataError(name, "no weights for layer '\(layer.name)' in model.weights.h5") }
            let datasets = try file.children(vars).compactMap(Int.init).sorted().map { "\(vars)/\($0)" }
            try assign(datasets, of: file, to: layer)
        }
    }

    private static func assign(_ datasets: [String], of file: HDF5File, to layer: Layer) throws {
        guard datasets.count == layer.weights.count else {
            throw DataError(file.path, "layer '\(layer.name)' has \(layer.weights.count) weights, the file \(datasets.count) (\(datasets.joined(separator: ", ")))")
        }
        for (weight, dataset) in zip(layer.weights, datasets) {
            let (values, shape) = try file.floats(dataset)
            guard shape == weight.shape else {
                throw DataError(file.path, "'\(dataset)' has shape \(shape), \(weight.path) needs \(weight.shape)")
            }
            try weight.assign(values)
        }
    }
}
