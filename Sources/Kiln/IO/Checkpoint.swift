import Foundation

/// Kiln's native checkpoint: one safetensors file with the weights (`weights/<layer>/<name>`), the
/// optimizer's state (`optimizer/<layer>/<name>/slot_i`) and, in the metadata, the architecture as
/// Keras JSON plus the epoch, history, compile settings and dropout streams, so that training
/// resumes exactly where it stopped. Python reads it with `safetensors.safe_open`.
public enum Checkpoint {
    static let formatKey = "kiln"

    struct Saved: Codable {
        var version = 1
        var epoch: Int
        var history: History
        var loss: String?
        var fromLogits: Bool?
        /// Models with several outputs: every output's loss, whether it takes logits, and its weight.
        var losses: [String]?
        var lossesFromLogits: [Bool]?
        var lossWeights: [Float]?
        var outputMetrics: [[String]]?
        var metrics: [String]?
        var weightedMetrics: [[String]]?
        var optimizer: OptimizerState?
        /// Dropout (any `StochasticLayer`) name → [seed, offset], as decimal strings (JSON numbers lose 64-bit precision).
        var dropout: [String: [String]]
    }

    struct OptimizerState: Codable {
        var rule: UpdateRule
        var schedule: LearningRateSchedule
        var weightDecay: Float
        var clipNorm: Float?, globalClipNorm: Float?, clipValue: Float?
        var iterations: Int
    }

    /// Writes the model (placed on a device) atomically; `metadata` is stored beside Kiln's own.
    public static func save(_ model: Model, metadata: [String: String] = [:], to url: URL) throws {
        guard model.device != nil else { throw TrainingError.incompatible("save: the model has no weights yet (place it on a device or train it first)") }
        var tensors = try model.weights.map { (name: "weights/" + $0.path, shape: $0.shape, values: try $0.value.toArray()) }
        if let bad = tensors.first(where: { $0.values.contains { !$0.isFinite } }) {
            throw TrainingError.incompatible("\(url.path): not written, \(bad.name.dropFirst("weights/".count)) holds NaN or infinity (training diverged)")
        }
        var saved = Saved(epoch: model.epochsTrained, history: model.trainingHistory, dropout: [:])
        if let compiled = model.compiled {
            saved.loss = compiled.loss.name
            saved.fromLogits = takesLogits(compiled.loss)
            if compiled.losses.count > 1 || compiled.lossWeights != [1] {
                (saved.losses, saved.lossWeights) = (compiled.losses.map(\.name), compiled.lossWeights)
                saved.lossesFromLogits = compiled.losses.map { takesLogits($0) ?? false }
                saved.outputMetrics = compiled.outputMetrics
            }
            saved.metrics = compiled.metricNames
            if !compiled.weightedMetrics.isEmpty { saved.weightedMetrics = compiled.weightedMetrics }
            let o = compiled.optimizer
            saved.optimizer = OptimizerState(rule: o.rule, schedule: o.schedule, weightDecay: o.weightDecay, clipNorm: o.clipNorm,
                                             globalClipNorm: o.globalClipNorm, clipValue: o.clipValue, iterations: o.iterations)
            for (name, t) in o.stateTensors() { tensors.append((name: "optimizer/" + name, shape: t.shape, values: try t.toArray())) }
        }
        for case let dropout as StochasticLayer in model.leafLayers { saved.dropout[dropout.name] = [String(dropout.seed), String(dropout.offset)] }
        let architecture = try JSONSerialization.data(withJSONObject: try KerasConfig.json(of: model), options: [.sortedKeys])
        var all = metadata
        all["format"] = "kiln"
        all["architecture"] = String(decoding: architecture, as: UTF8.self)
        all[formatKey] = String(decoding: try JSONEncoder().encode(saved), as: UTF8.self)
        try SafeTensors.write(tensors, metadata: all, to: url)
    }

    /// A checkpoint's model on `device` (default `Devices.select()`) with its epoch count and history,
    /// compiled when it was saved compiled, and the caller's metadata. The optimizer's state is read
    /// only with `optimizerState` (to resume training); inference never needs it.
    public static func load(_ url: URL, device: (any Device)? = nil,
                            optimizerState: Bool = true) throws -> (model: Model, metadata: [String: String]) {
        let file = try SafeTensors(contentsOf: url)
        if let set = file.metadata[setKey] {
            let keys = (try? JSONDecoder().decode(SavedSet.self, from: Data(set.utf8)))?.models.keys.sorted() ?? []
            throw DataError(url.path, "holds several models (\(keys.joined(separator: ", "))): restore them with Checkpoint.restore(_:models:optimizers:)")
        }
        guard file.metadata["format"] == "kiln", let architecture = file.metadata["architecture"], let kiln = file.metadata[formatKey] else {
            throw DataError(url.path, "not a Kiln checkpoint (no 'kiln' metadata; for other safetensors files use the import commands)")
        }
        let saved: Saved
        do { saved = try JSONDecoder().decode(Saved.self, from: Data(kiln.utf8)) } catch {
            throw DataError(url.path, "checkpoint metadata is damaged: \(error)")
        }
        guard saved.epoch >= 0, saved.epoch == saved.history.epochs.last ?? saved.epoch, saved.epoch <= 1_000_000_000 else {
            throw DataError(url.path, "checkpoint metadata is damaged: epoch \(saved.epoch) does not match its history (\(saved.history.epochs.count) epochs)")
        }
        let model = try KerasConfig.model(fromJSON: Data(architecture.utf8), file: url.path)
        if let sequential = model as? Sequential, sequential.inputs.isEmpty {
            throw DataError(url.path, "the stored architecture has no input shape")
        }
        try model.place(on: device)
        for weight in model.weights {
            let name = "weights/" + weight.path
            guard let entry = file.entries[name] else { throw DataError(url.path, "missing tensor '\(name)'") }
            guard entry.shape == weight.shape else { throw DataError(url.path, "tensor '\(name)' has shape \(entry.shape), the layer needs \(weight.shape)") }
            try weight.assign(try file.floats(name))
        }
        for case let dropout as StochasticLayer in model.leafLayers {
            if let state = saved.dropout[dropout.name], state.count == 2, let seed = UInt64(state[0]), let offset = UInt64(state[1]) {
                (dropout.seed, dropout.offset) = (seed, offset)
            }
        }
        model.epochsTrained = saved.epoch
        model.trainingHistory = saved.history
        if let lossName = saved.loss, let o = saved.optimizer {
            let optimizer = Optimizer(rule: o.rule, learningRate: o.schedule, weightDecay: o.weightDecay)
            (optimizer.clipNorm, optimizer.globalClipNorm, optimizer.clipValue) = (o.clipNorm, o.globalClipNorm, o.clipValue)
            var state: [String: Tensor] = [:]
            for (name, entry) in file.entries where optimizerState && name.hasPrefix("optimizer/") {
                state[String(name.dropFirst("optimizer/".count))] = try Tensor(try file.floats(name), shape: entry.shape, on: model.device!)
            }
            do { try optimizer.restore(state: state, iterations: o.iterations, for: model.weights) } catch {
                throw DataError(url.path, "\(error)")
            }
            if let names = saved.losses, let weights = saved.lossWeights, let logits = saved.lossesFromLogits, logits.count == names.count {
                try model.compile(optimizer: optimizer, losses: try zip(names, logits).map { try loss(named: $0, fromLogits: $1) },
                                  lossWeights: weights, metrics: saved.outputMetrics ?? [])
            } else {
                try model.compile(optimizer: optimizer, loss: try loss(named: lossName, fromLogits: saved.fromLogits ?? false), metrics: saved.metrics ?? [])
            }
            model.compiled?.weightedMetrics = saved.weightedMetrics ?? []
        }
        return (model, file.metadata)
    }

    /// A checkpoint's weights into a placed `model` of the same architecture: matched by name, or,
    /// when the names differ (a model rebuilt in another process gets other automatic names), by
    /// their position in the stored architecture, as Keras 3's `load_weights`; shapes are checked.
    public static func loadWeights(_ url: URL, into model: Model) throws {
        guard model.device != nil else { throw TrainingError.incompatible("place the model on a device before loading weights") }
        let file = try SafeTensors(contentsOf: url)
        let names = try storedNames(of: model, in: file, prefix: "", architecture: file.metadata["architecture"], url: url)
        for (weight, name) in zip(model.weights, names) { try weight.assign(try file.floats(name)) }
    }

    /// The names (`prefix` + `weights/<path>`) under which `file` holds `model`'s weights, in
    /// `model.weights` order, shapes checked: the model's own paths, or when those differ, the paths of
    /// the stored `architecture` at the same positions.
    static func storedNames(of model: Model, in file: SafeTensors, prefix: String, architecture: String?, url: URL) throws -> [String] {
        let stored = Set(file.entries.keys.filter { $0.hasPrefix(prefix + "weights/") })
        var names = model.weights.map { prefix + "weights/" + $0.path }
        if Set(names) != stored {
            guard let architecture else {
                throw DataError(url.path, "its weight names differ from model '\(model.name)''s and it stores no architecture to match them by")
            }
            let saved = try KerasConfig.model(fromJSON: Data(architecture.utf8), file: url.path)
            names = withExtendedLifetime(saved) { saved.weights.map { prefix + "weights/" + $0.path } }  // weights hold their layers unowned
            guard names.count == model.weights.count, Set(names) == stored else {
                throw DataError(url.path, "holds \(stored.count) weights in another structure than model '\(model.name)' (\(model.weights.count) weights)")
            }
        }
        for (weight, name) in zip(model.weights, names) where file.entries[name]!.shape != weight.shape {
            throw DataError(url.path, "'\(name)' has shape \(file.entries[name]!.shape), \(weight.path) needs \(weight.shape)")
        }
        return names
    }

    /// A loss from its Keras name.
    private static func takesLogits(_ loss: Loss) -> Bool? {
        (loss as? SparseCategoricalCrossentropy)?.fromLogits ?? (loss as? CategoricalCrossentropy)?.fromLogits ?? (loss as? BinaryCrossentropy)?.fromLogits
    }

    public static func loss(named name: String, fromLogits: Bool) throws -> Loss {
        switch name {
        case "sparse_categorical_crossentropy": SparseCategoricalCrossentropy(fromLogits: fromLogits)
        case "categorical_crossentropy": CategoricalCrossentropy(fromLogits: fromLogits)
        case "binary_crossentropy": BinaryCrossentropy(fromLogits: fromLogits)
        case "mean_squared_error", "mse": MeanSquaredError()
        case "mean_absolute_error", "mae": MeanAbsoluteError()
        case "kl_divergence", "kld", "kullback_leibler_divergence": KLDivergence()
        default: throw TrainingError.incompatible("unknown loss '\(name)'")
        }
    }
}
