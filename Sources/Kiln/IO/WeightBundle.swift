import Foundation

/// NumPy `.npz` weight bundles by name: an array `<layer>/<weight>` (e.g. `conv2d/kernel`,
/// `batch_normalization/moving_mean`) per weight, in Kiln's (Keras's) layouts.
public enum WeightBundle {
    /// Loads every weight of a placed model from `url`; a missing or misshapen array is an error
    /// naming it. With `strict`, arrays the model has no weight for are an error too.
    public static func load(_ url: URL, into model: Model, strict: Bool = true) throws {
        let arrays = try NumPy.readArchive(url)
        guard model.device != nil else { throw TrainingError.incompatible("place the model on a device before loading weights") }
        for weight in model.weights {
            guard let array = arrays[weight.path] else {
                throw DataError(url.path, "no array '\(weight.path)' (bundle has \(arrays.keys.sorted().prefix(12).joined(separator: ", ")))")
            }
            guard array.shape == weight.shape else {
                throw DataError(url.path, "array '\(weight.path)' has shape \(array.shape), the layer needs \(weight.shape)")
            }
            try weight.assign(array.values)
        }
        let unused = Set(arrays.keys).subtracting(model.weights.map(\.path)).sorted()
        if strict, !unused.isEmpty { throw DataError(url.path, "arrays the model has no weight for: \(unused.joined(separator: ", "))") }
    }

    /// Writes every weight as `<layer>/<weight>.npy` in a stored (uncompressed) `.npz`.
    public static func save(_ model: Model, to url: URL) throws {
        let entries = try model.weights.map { (name: $0.path + ".npy", data: NumPy.encode(try $0.value.toArray(), shape: $0.shape)) }
        try writeAtomically(Zip.archive(entries), to: url)
    }
}
