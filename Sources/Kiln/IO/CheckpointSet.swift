import Foundation

/// Several models and optimizers in one checkpoint (a GAN's generator, discriminator and their two
/// optimizers), as `tf.train.Checkpoint(generator=…, …)` or a PyTorch dict of state dicts: each model's
/// weights, epoch count, history and noise streams, each optimizer's step count and slots, written
/// atomically and restored into the same objects rebuilt by the caller, so a custom training loop
/// resumes exactly. Tensors are stored as `<key>/weights/<path>` and `<key>/optimizer/<path>/slot_i`.
extension Checkpoint {
    static let setKey = "kiln-set"

    struct SavedSet: Codable {
        var version = 1
        var models: [String: SavedModel]
        var optimizers: [String: OptimizerState]
    }

    struct SavedModel: Codable {
        var architecture: String
        var epoch: Int
        var history: History
        /// [seed, offset] of each `StochasticLayer`, in `leafLayers` order, as decimal strings.
        var noise: [[String]]
    }

    /// Writes `models` (placed on a device) and `optimizers` under their keys, atomically.
    public static func save(models: [String: Model], optimizers: [String: Optimizer] = [:], metadata: [String: String] = [:],
                            to url: URL) throws {
        let keys = Array(models.keys) + Array(optimizers.keys)
        guard !models.isEmpty, Set(keys).count == keys.count, keys.allSatisfy({ !$0.isEmpty && !$0.contains("/") }) else {
            throw TrainingError.incompatible("save: give at least one model, and distinct keys without '/' for models and optimizers (got \(keys.sorted()))")
        }
        var tensors: [(name: String, shape: [Int], values: [Float])] = []
        var saved = SavedSet(models: [:], optimizers: [:])
        for (key, model) in models.sorted(by: { $0.key < $1.key }) {
            guard model.device != nil else { throw TrainingError.incompatible("save: model '\(key)' has no weights yet (place it on a device first)") }
            for weight in model.weights {
                let values = try weight.value.toArray()
                guard values.allSatisfy(\.isFinite) else {
                    throw TrainingError.incompatible("\(url.path): not written, \(key)/\(weight.path) holds NaN or infinity (training diverged)")
                }
                tensors.append((key + "/weights/" + weight.path, weight.shape, values))
            }
            let architecture = try JSONSerialization.data(withJSONObject: try KerasConfig.json(of: model), options: [.sortedKeys])
            saved.models[key] = SavedModel(architecture: String(decoding: architecture, as: UTF8.self), epoch: model.epochsTrained,
                                           history: model.trainingHistory, noise: noiseLayers(of: model).map { [String($0.seed), String($0.offset)] })
        }
        for (key, o) in optimizers.sorted(by: { $0.key < $1.key }) {
            saved.optimizers[key] = OptimizerState(rule: o.rule, schedule: o.schedule, weightDecay: o.weightDecay, clipNorm: o.clipNorm,
                                                   globalClipNorm: o.globalClipNorm, clipValue: o.clipValue, iterations: o.iterations)
            for (name, t) in o.stateTensors().sorted(by: { $0.key < $1.key }) { tensors.append((key + "/optimizer/" + name, t.shape, try t.toArray())) }
        }
        var all = metadata
        all["format"] = "kiln"
        all[setKey] = String(decoding: try JSONEncoder().encode(saved), as: UTF8.self)
        try SafeTensors.write(tensors, metadata: all, to: url)
    }

    /// Restores a checkpoint written by `save(models:optimizers:)` into models (placed, of the same
    /// architectures) and optimizers (of the same kinds) under the same keys; returns its metadata.
    /// Models rebuilt in another process, whose layers got other automatic names, match by position.
    @discardableResult
    public static func restore(_ url: URL, models: [String: Model], optimizers: [String: Optimizer] = [:]) throws -> [String: String] {
        let file = try SafeTensors(contentsOf: url)
        guard let set = file.metadata[setKey] else {
            throw DataError(url.path, "not a checkpoint of several models (a single model's checkpoint loads with Checkpoint.load)")
        }
        let saved: SavedSet
        do { saved = try JSONDecoder().decode(SavedSet.self, from: Data(set.utf8)) } catch {
            throw DataError(url.path, "checkpoint metadata is damaged: \(error)")
        }
        guard Set(models.keys) == Set(saved.models.keys), Set(optimizers.keys) == Set(saved.optimizers.keys) else {
            throw DataError(url.path, "holds models \(saved.models.keys.sorted()) and optimizers \(saved.optimizers.keys.sorted()); "
                                      + "got models \(models.keys.sorted()) and optimizers \(optimizers.keys.sorted())")
        }
        var paths: [String: String] = [:]  // stored weight path → the rebuilt weight's path
        var byPath: [String: Weight] = [:]
        for (key, model) in models {
            guard model.device != nil else { throw TrainingError.incompatible("restore: place model '\(key)' on a device first") }
            let entry = saved.models[key]!
            let names = try storedNames(of: model, in: file, prefix: key + "/", architecture: entry.architecture, url: url)
            let noise = noiseLayers(of: model)
            guard noise.count == entry.noise.count else {
                throw DataError(url.path, "model '\(key)' has \(noise.count) noise layers, the checkpoint \(entry.noise.count)")
            }
            for (weight, name) in zip(model.weights, names) {
                try weight.assign(try file.floats(name))
                paths[String(name.dropFirst(key.count + "/weights/".count))] = weight.path
                byPath[weight.path] = weight
            }
            for (layer, state) in zip(noise, entry.noise) {
                guard state.count == 2, let seed = UInt64(state[0]), let offset = UInt64(state[1]) else {
                    throw DataError(url.path, "model '\(key)': damaged noise stream \(state)")
                }
                (layer.seed, layer.offset) = (seed, offset)
            }
            (model.epochsTrained, model.trainingHistory) = (entry.epoch, entry.history)
        }
        for (key, optimizer) in optimizers {
            let entry = saved.optimizers[key]!
            guard entry.rule == optimizer.rule else {
                throw DataError(url.path, "optimizer '\(key)' was saved as \(entry.rule), got \(optimizer.rule)")
            }
            var state: [String: Tensor] = [:]
            let prefix = key + "/optimizer/"
            for (name, stored) in file.entries where name.hasPrefix(prefix) {
                let slot = String(name.dropFirst(prefix.count))
                guard let cut = slot.range(of: "/slot_", options: .backwards), let path = paths[String(slot[..<cut.lowerBound])],
                      let weight = byPath[path] else {
                    throw DataError(url.path, "optimizer state '\(name)' belongs to no weight of the models")
                }
                state[path + slot[cut.lowerBound...]] = try Tensor(try file.floats(name), shape: stored.shape, on: weight.value.device)
            }
            do { try optimizer.restore(state: state, iterations: entry.iterations, for: Array(byPath.values)) } catch {
                throw DataError(url.path, "optimizer '\(key)': \(error)")
            }
        }
        return file.metadata
    }

    private static func noiseLayers(of model: Model) -> [StochasticLayer] { model.leafLayers.compactMap { $0 as? StochasticLayer } }
}
