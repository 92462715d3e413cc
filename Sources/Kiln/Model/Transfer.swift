import Foundation

/// The transfer-learning workflow: cut a pretrained model, freeze it, put a new head on top,
/// train, then unfreeze and fine-tune with a small learning rate.
public enum TransferLearning {
    /// Layers from a spec like `gap,dense:128:relu,dropout:0.3,dense:N` (N: the number of classes).
    /// Items: `dense:UNITS[:ACTIVATION]`, `dropout:RATE`, `flatten`, `gap` (global average pooling),
    /// `gmp` (global max pooling), `bn` (batch normalisation), `relu`.
    public static func head(_ spec: String, classes: Int) throws -> [Layer] {
        try spec.split(separator: ",").map { item in
            let parts = item.split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces) }
            func fail() -> Error {
                DataError("--head", "cannot read '\(item)'; expected dense:UNITS[:ACTIVATION], dropout:RATE, flatten, gap, gmp, bn or relu")
            }
            switch parts[0].lowercased() {
            case "dense":
                guard parts.count >= 2, let units = parts[1] == "N" ? classes : Int(parts[1]), units > 0 else { throw fail() }
                guard let activation = parts.count > 2 ? ActivationFunction(kerasName: parts[2]) : .linear else { throw fail() }
                return Dense(units, activation: activation)
            case "dropout":
                guard parts.count == 2, let rate = Float(parts[1]), rate >= 0, rate < 1 else { throw fail() }
                return Dropout(rate)
            case "flatten": return Flatten()
            case "gap": return GlobalAveragePooling2D()
            case "gmp": return GlobalMaxPooling2D()
            case "bn": return BatchNormalization()
            case "relu": return ReLU()
            default: throw fail()
            }
        }
    }

    /// `base` cut after layer `cut` (default: its output), optionally frozen, with `head` on top.
    /// The new model shares the base's layers and weights; head weights are created when placed.
    public static func attach(_ head: [Layer], to base: Model, cut: String? = nil, freezeBase: Bool = true) throws -> Model {
        guard base.inputs.count == 1, base.outputs.count == 1 else {
            throw TensorError.shape("transfer learning takes a single-input, single-output base; '\(base.name)' has \(base.inputs.count) and \(base.outputs.count)")
        }
        let trunk = try cut.map { try base.truncated(at: $0) } ?? base
        if freezeBase { try trunk.setTrainable(false) }
        var x = trunk.outputs[0]
        for layer in head { x = try layer(x) }
        return try Model(inputs: trunk.inputs, outputs: [x], name: "\(base.name)_transfer")
    }

    /// Unfreezes layers for fine-tuning: `all`, the last `N` layers (Keras's `model.layers[-N:]`), or
    /// comma-separated layer names. `all` and `N` leave batch normalisation frozen, so it keeps using
    /// the moving statistics the base was trained with (as Keras's fine-tuning guide advises: batch
    /// statistics of small fine-tuning batches would undo them); name such a layer to unfreeze it too.
    public static func unfreeze(_ model: Model, _ which: String) throws {
        if which == "all" || Int(which) != nil {
            guard let count = which == "all" ? model.layers.count : Int(which), count > 0 else {
                throw DataError("--unfreeze", "takes all, a positive number of layers or layer names, got '\(which)'")
            }
            for layer in model.layers.suffix(count) where !(layer is BatchNormalization) { layer.trainable = true }
        } else {
            try model.setTrainable(true, layers: which.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        }
    }

    /// The base's outputs for every sample, computed once in inference mode, as a float dataset with
    /// the same labels and sample weights: the head then trains on them alone (the workshops' speed-up). With a cache
    /// file they are stored as `.npy` and read back on the next run when the sample count matches.
    public static func features(of base: Model, for data: Dataset, batchSize: Int = 128, normalization: Preprocessing = .unitRange,
                                cache: URL? = nil) throws -> Dataset {
        let shape = base.outputs[0].shape
        var result = data
        (result.features, result.sampleShape) = (.floats([]), shape)
        if let cache, FileManager.default.fileExists(atPath: cache.path) {
            let stored = try NumPy.read(cache)
            if stored.shape == [data.count] + shape {
                result.features = .floats(stored.values)
                return result
            }
        }
        let values = try base.predict(data, batchSize: batchSize, normalization: normalization)
        if let cache { try NumPy.write(values, shape: [data.count] + shape, to: cache) }
        result.features = .floats(values)
        return result
    }
}

extension TransferLearning {
    /// Trains `head` (already attached to `trunk` in `model`) on the trunk's cached features, then
    /// records the epochs in `model`, which shares the head's weights and optimizer.
    @discardableResult
    public static func fitHead(of model: Model, trunk: Model, head: [Layer], training: Dataset, validation: Dataset?, epochs: Int,
                               batchSize: Int, normalization: Preprocessing, seed: UInt64, callbacks: [Callback] = [],
                               cacheDirectory: URL?) throws -> History {
        guard let compiled = model.compiled, let device = model.device else { throw TrainingError.notCompiled }
        guard trunk.trainableWeights.isEmpty else {
            throw TrainingError.incompatible("cached features need a frozen base (its weights must not change while the head trains)")
        }
        let features = try self.features(of: trunk, for: training, normalization: normalization,
                                         cache: cacheDirectory?.appendingPathComponent("features-train.npy"))
        let validationFeatures = try validation.map {
            try self.features(of: trunk, for: $0, normalization: normalization, cache: cacheDirectory?.appendingPathComponent("features-validation.npy"))
        }
        let headModel = try Sequential([Input(shape: trunk.outputs[0].shape)] + head, name: "\(model.name)_head")
        try headModel.place(on: device)
        headModel.compiled = compiled
        (headModel.epochsTrained, headModel.trainingHistory) = (model.epochsTrained, model.trainingHistory)
        let history = try headModel.fit(features, epochs: epochs, batchSize: batchSize, validationData: validationFeatures,
                                        normalization: .none, seed: seed, callbacks: callbacks)
        (model.epochsTrained, model.trainingHistory, model.lastStopReason) = (headModel.epochsTrained, headModel.trainingHistory, headModel.lastStopReason)
        return history
    }
}
