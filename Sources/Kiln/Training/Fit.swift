import Foundation

/// Errors that stop `fit` or `evaluate` before they start.
public enum TrainingError: Error, CustomStringConvertible {
    case notCompiled
    case incompatible(String)

    public var description: String {
        switch self {
        case .notCompiled: "the model is not compiled: call compile(optimizer:loss:metrics:) first"
        case .incompatible(let message): message
        }
    }
}

extension Model {
    /// Sets the optimizer, loss and metrics for `fit` and `evaluate`; `weightedMetrics` are weighted
    /// by sample or class weights (Keras's `weighted_metrics`, reported as `weighted_<name>`).
    public func compile(optimizer: Optimizer, loss: Loss, metrics: [String] = [], weightedMetrics: [String] = []) throws {
        try compile(optimizer: optimizer, losses: [loss], metrics: [metrics], weightedMetrics: weightedMetrics.isEmpty ? [] : [weightedMetrics])
    }

    /// One loss per output, in `outputs` order, minimised as their sum weighted by `lossWeights`
    /// (1 each by default), and a list of metrics per output (or none), as Keras's
    /// `compile(loss=[…], loss_weights=[…], metrics=[[…], […]])`.
    public func compile(optimizer: Optimizer, losses: [Loss], lossWeights: [Float]? = nil, metrics: [[String]] = [],
                        weightedMetrics: [[String]] = []) throws {
        let metrics = metrics.isEmpty ? [[String]](repeating: [], count: losses.count) : metrics
        guard metrics.count == losses.count, weightedMetrics.isEmpty || weightedMetrics.count == losses.count else {
            throw TrainingError.incompatible("compile: \(losses.count) losses need a list of metrics each, got \(metrics.count) and \(weightedMetrics.count) lists")
        }
        let weights = lossWeights ?? [Float](repeating: 1, count: losses.count)
        guard !losses.isEmpty, weights.count == losses.count, weights.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
            throw TrainingError.incompatible("compile: \(losses.count) losses need as many finite, non-negative loss weights, got \(weights)")
        }
        if !outputs.isEmpty, losses.count != outputs.count {
            throw TrainingError.incompatible("compile: model '\(name)' has \(outputs.count) outputs, got \(losses.count) losses")
        }
        var compilation = Compilation(optimizer: optimizer, losses: losses, lossWeights: weights, outputMetrics: metrics)
        compilation.weightedMetrics = weightedMetrics
        _ = try compilation.makeMetrics(outputNames: losses.indices.map { "output_\($0)" })
        compiled = compilation
    }

    /// Trains for `epochs` more epochs (continuing from earlier calls) and returns the history of
    /// this call. Validation uses `validationData`, or the last `validationSplit` of `data`. The
    /// data's `sampleWeights`, or `classWeight` (class → weight, 1 for classes it omits; training
    /// only, as Keras), weight each sample's loss. With `distributed`, every rank of its MPI world
    /// calls `fit` alike and trains on its share of each batch of `batchSize` (the global batch);
    /// `BatchNormalization(synchronized: true)` layers then normalise over the global batch.
    @discardableResult
    public func fit(_ data: Dataset, epochs: Int, batchSize: Int = 32, shuffle: Bool = true, validationSplit: Double? = nil,
                    validationData: Dataset? = nil, normalization: Preprocessing = .unitRange, augmentation: Augmentation? = nil,
                    classWeight: [Int: Float]? = nil, seed: UInt64 = 0, callbacks: [Callback] = [], progress: Bool = true,
                    device: (any Device)? = nil, distributed: DataParallel? = nil) throws -> History {
        guard let compiled else { throw TrainingError.notCompiled }
        try checkEpochs(epochs)
        try data.validate("training data")
        var (training, validation) = (data, validationData)
        if let validationSplit, validationData == nil { (training, validation) = try data.split(validationFraction: validationSplit) }
        if let classWeight { training.sampleWeights = try ClassWeight.sampleWeights(classWeight, for: training) }
        try checkCompatible(training, "training data", device: device)
        if let validation {
            try validation.validate("validation data")
            try checkCompatible(validation, "validation data", device: device)
        }
        let loader = try BatchLoader(training, batchSize: batchSize, shuffle: shuffle, seed: seed, normalization: normalization,
                                     augmentation: augmentation, oneHotClasses: compiled.wantsOneHot ? outputs[0].shape.last : nil)
        let device = self.device!
        try distributed?.synchronize(weights)
        let synchronizedNorms = distributed == nil ? [] : leafLayers.compactMap { $0 as? BatchNormalization }.filter(\.synchronized)
        for layer in synchronizedNorms { layer.replicas = distributed }
        defer { for layer in synchronizedNorms { layer.replicas = nil } }
        return try train(epochs: epochs, stepsPerEpoch: loader.batchCount, batches: { loader.batches(epoch: $0, on: device) },
                         parallel: distributed,
                         validate: validation.map { data in {
                             guard let distributed else { return try self.evaluate(data, batchSize: batchSize, normalization: normalization, checked: true) }
                             // Each rank evaluates its share; the means are combined weighted by the shares' sizes.
                             let rows = distributed.rows(of: data.count)
                             let logs = try self.evaluate(rows.isEmpty ? data : data.subset(Array(rows)), batchSize: batchSize,
                                                          normalization: normalization, checked: true)
                             return try distributed.average(logs, weight: Double(rows.count))
                         } },
                         callbacks: callbacks, progress: progress)
    }

    /// Trains on tensors, a batch per input and a target per output (Keras's `fit([x1, x2], [y1, y2])`):
    /// float targets, or int32 labels for sparse cross-entropy. Validation uses `validationData`, or the
    /// last `validationSplit` of the samples. Batches are cut on the tensors' device.
    @discardableResult
    public func fit(x: [Tensor], y: [Tensor], sampleWeight: Tensor? = nil, epochs: Int, batchSize: Int = 32, shuffle: Bool = true,
                    validationSplit: Double? = nil, validationData: (x: [Tensor], y: [Tensor])? = nil, seed: UInt64 = 0,
                    callbacks: [Callback] = [], progress: Bool = true) throws -> History {
        try checkEpochs(epochs)
        var training = try TensorBatches(inputs: x, targets: y, sampleWeights: sampleWeight, batchSize: batchSize, shuffle: shuffle, seed: seed)
        var validation = try validationData.map { try TensorBatches(inputs: $0.x, targets: $0.y, batchSize: batchSize) }
        if let validationSplit, validationData == nil { (training, validation) = try training.split(validationFraction: validationSplit) }
        try checkCompatible(training, "training data")
        if let validation { try checkCompatible(validation, "validation data") }
        return try train(epochs: epochs, stepsPerEpoch: training.batchCount, batches: training.batches(epoch:),
                         validate: validation.map { data in { try self.evaluate(data) } }, callbacks: callbacks, progress: progress)
    }

    /// `fit(x:y:)` for a single-input, single-output model.
    @discardableResult
    public func fit(x: Tensor, y: Tensor, sampleWeight: Tensor? = nil, epochs: Int, batchSize: Int = 32, shuffle: Bool = true,
                    validationSplit: Double? = nil, validationData: (x: Tensor, y: Tensor)? = nil, seed: UInt64 = 0,
                    callbacks: [Callback] = [], progress: Bool = true) throws -> History {
        try fit(x: [x], y: [y], sampleWeight: sampleWeight, epochs: epochs, batchSize: batchSize, shuffle: shuffle, validationSplit: validationSplit,
                validationData: validationData.map { ([$0.x], [$0.y]) }, seed: seed, callbacks: callbacks, progress: progress)
    }

    private func checkEpochs(_ epochs: Int, compiled needed: Bool = true) throws {
        guard compiled != nil || !needed else { throw TrainingError.notCompiled }
        guard (0...1_000_000_000).contains(epochs) else { throw TrainingError.incompatible("epochs must be between 0 and 10^9, got \(epochs)") }
    }

    /// Keras's overridden `train_step`, as a closure: `fit` runs `trainStep` on each batch of the
    /// tensors (cut on their device, in a seeded order) instead of the compiled loss and optimizer, with
    /// the progress bar, callbacks and history as usual; no `compile` is needed. The step returns what
    /// to report, one-element tensors such as `["d_loss": …, "g_loss": …]`, which the epoch's logs
    /// average over the samples, on the device.
    @discardableResult
    public func fit(x: [Tensor], y: [Tensor] = [], epochs: Int, batchSize: Int = 32, shuffle: Bool = true, seed: UInt64 = 0,
                    callbacks: [Callback] = [], progress: Bool = true, trainStep: @escaping (Batch) throws -> [String: Tensor]) throws -> History {
        try checkEpochs(epochs, compiled: false)
        let data = try TensorBatches(inputs: x, targets: y, batchSize: batchSize, shuffle: shuffle, seed: seed)
        var meters: [String: MeanMetric] = [:]
        let steps = EpochSteps(step: { batch in
            for (name, value) in try trainStep(batch) {
                guard value.count == 1 else { throw TrainingError.incompatible("trainStep: '\(name)' has shape \(value.shape); report one-element tensors") }
                let meter = meters[name] ?? MeanMetric(name: name)
                meters[name] = meter
                try meter.update(batch.inputs[0], value)
            }
        }, check: { nil }, logs: { try meters.mapValues { try $0.result() } }, reset: { meters.removeAll() })
        return try train(epochs: epochs, stepsPerEpoch: data.batchCount, batches: data.batches(epoch:), steps: steps, validate: nil,
                         callbacks: callbacks, progress: progress)
    }

    /// What the epoch loop does with each batch, how it learns of a non-finite loss, and what it reports.
    private struct EpochSteps {
        let step: (Batch) throws -> Void
        /// Reads the loss of the steps since the last check (one device read): nil when finite, else the
        /// value, the weights and optimizer state having been put back to those of the last finite check.
        let check: () throws -> Float?
        let logs: () throws -> [String: Float]
        let reset: () -> Void
    }

    /// Steps between reads of the loss from the device (and at the end of each epoch): a step itself
    /// never waits for the device.
    static let lossCheckInterval = 32

    /// A step of the compiled loss (with the weight penalties and the layers' added losses) and optimizer.
    /// The loss stays on the device: summed for the epoch's mean and for the window `check` reads.
    /// With `parallel`, a step trains on this rank's share of the batch and steps with the gradients
    /// reduced over the ranks; the loss checks are reduced too, so every rank decides alike.
    private func compiledSteps(tap: GradientTap, parallel: DataParallel? = nil) throws -> EpochSteps {
        let compiled = compiled!
        let meters = try PassMeters(compiled, outputNames: outputNames)
        let lossMeter = MeanMetric(name: "loss")
        var window: Tensor?
        var lastFinite: (weights: [Tensor], optimizer: [String: Tensor], iterations: Int)?
        func keepLastFinite() throws {
            lastFinite = (try weights.map { try $0.value.copy() }, try compiled.optimizer.stateTensors().mapValues { try $0.copy() },
                          compiled.optimizer.iterations)
        }
        try keepLastFinite()
        return EpochSteps(step: { global in
            // A rank that gets no rows of a small last batch runs all of it with share 0.
            let (local, share) = try parallel.map { try $0.shard(global) } ?? (global, 1)
            let batch = local ?? global
            let run = try self.run(batch.inputs, training: true)
            let (targets, predictions, weights) = try Compilation.unmasked(batch.targets, run.outputs, masks: run.masks, weights: batch.weights)
            let losses = try compiled.loss(targets, predictions, weights: weights)
            var loss = losses.total
            if let penalty = try self.regularizationLoss() { loss = try loss + penalty }
            for added in self.addedLosses { loss = try loss + added.reshaped(loss.shape) }
            let reduced = try parallel.map { try $0.backwardReducing(loss, self.trainableWeights, share: share) }
            if parallel == nil { try loss.backward() }
            if tap.enabled { tap.gradients = Dictionary(self.trainableWeights.compactMap { w in w.value.grad.map { (w.path, $0) } }) { a, _ in a } }
            if let reduced {
                try compiled.optimizer.apply(reduced, to: self.trainableWeights)
                for weight in self.trainableWeights { weight.value.zeroGrad() }
            } else {
                try compiled.optimizer.apply(to: self.trainableWeights)
            }
            try meters.update(targets, predictions, weights: weights, loss: losses, includingTotal: false)
            try lossMeter.update(batch.inputs[0], loss)
            let value = loss.detached()
            window = try window.map { try $0 + value } ?? value
        }, check: {
            guard let pending = window else { return nil }
            window = nil
            let value = try parallel.map { try $0.sum(try pending.item()) } ?? pending.item()
            if value.isFinite {
                try keepLastFinite()
                return nil
            }
            if let saved = lastFinite {
                for (weight, copy) in zip(self.weights, saved.weights) { try weight.value.device.copy(copy.buffer, to: weight.value.buffer, count: weight.count) }
                try compiled.optimizer.restore(state: saved.optimizer, iterations: saved.iterations, for: self.weights)
            }
            return value
        }, logs: {
            var logs = try meters.logs(includingTotal: false)
            logs["loss"] = try lossMeter.result()
            logs["learning_rate"] = compiled.optimizer.learningRate
            return logs
        }, reset: {
            meters.reset()
            lossMeter.reset()
        })
    }

    /// The epoch loop shared by the `fit`s: a step per batch, callbacks, history, and validation after each epoch.
    private func train(epochs: Int, stepsPerEpoch: Int, batches: (Int) -> AnySequence<Result<Batch, Error>>, steps: EpochSteps? = nil,
                       parallel: DataParallel? = nil, validate: (() throws -> [String: Float])?, callbacks: [Callback],
                       progress: Bool) throws -> History {
        let tap = GradientTap()
        let steps = try steps ?? compiledSteps(tap: tap, parallel: parallel)
        let state = TrainingState(model: self, finalEpoch: epochsTrained + epochs, stepsPerEpoch: stepsPerEpoch, history: History(), tap: tap) {
            try steps.logs().filter { $0.key != "learning_rate" }
        }
        let allCallbacks = (progress ? [ProgressBar()] : []) + callbacks
        /// Whether `flag` is set here or, with replicas, on any of them: they meet to decide alike.
        func anywhere(_ flag: Bool) throws -> Bool { try parallel.map { try $0.sum(flag ? 1 : 0) > 0 } ?? flag }
        for callback in allCallbacks { try callback.trainingWillBegin(state) }
        epochs: for epoch in stride(from: epochsTrained + 1, through: epochsTrained + epochs, by: 1) {
            state.epoch = epoch
            for callback in allCallbacks { try callback.epochWillBegin(epoch, state) }
            steps.reset()
            var (checked, done) = (0, 0)
            func diverged() throws -> Bool {
                defer { checked = done }
                guard done > checked, let value = try steps.check() else { return false }
                state.stop(because: "loss became \(value) at epoch \(epoch) within steps \(checked + 1)–\(done); the weights are put back to "
                           + "those after step \(checked); training stopped (TerminateOnNaN)")
                return true
            }
            for (step, result) in batches(epoch).enumerated() {
                let batch = try result.get()
                try steps.step(batch)
                done = step + 1
                if done % Self.lossCheckInterval == 0, try diverged() { break epochs }
                state.samplesSeen += batch.count
                for callback in allCallbacks { try callback.batchDidEnd(done, state) }
                // Replicas learn of an interruption (Ctrl-C on one of them) where they meet for the loss checks.
                if parallel == nil || done % Self.lossCheckInterval == 0, try anywhere(state.interrupted) {
                    if !state.interrupted { state.interrupt(because: "another replica was interrupted") }
                    break epochs
                }
            }
            if try diverged() { break epochs }
            if parallel != nil, try anywhere(state.interrupted) {
                if !state.interrupted { state.interrupt(because: "another replica was interrupted") }
                break epochs
            }
            // Mid-epoch logs (the progress bar's) are this rank's; the epoch's are over every rank.
            var logs = try parallel.map { try $0.average(try steps.logs()) } ?? steps.logs()
            #if DEBUG
            try parallel?.verifyReplicas(weights.filter(\.isVariable))  // moving statistics stay per replica unless synchronized
            #endif
            if let validate {
                for (name, value) in try validate() { logs["val_" + name] = value }
            }
            epochsTrained = epoch
            state.history.append(epoch: epoch, logs)
            trainingHistory.append(epoch: epoch, logs)
            for callback in allCallbacks { try callback.epochDidEnd(epoch, logs: logs, state) }
            if try anywhere(state.stopTraining) {
                if !state.stopTraining { state.stop(because: "another replica stopped training") }
                break
            }
        }
        for callback in allCallbacks { try callback.trainingDidEnd(state) }
        if let reason = state.stopReason, parallel?.communicator.rank ?? 0 == 0 { print(reason) }
        lastStopReason = state.stopReason
        return state.history
    }

    /// The names outputs are reported under: their layers' names.
    var outputNames: [String] { outputs.map(\.layer.name) }

    /// Loss and metrics over a dataset, in inference mode.
    public func evaluate(_ data: Dataset, batchSize: Int = 32, normalization: Preprocessing = .unitRange) throws -> [String: Float] {
        try evaluate(data, batchSize: batchSize, normalization: normalization, checked: false)
    }

    /// Loss (in total and per output) and metrics over tensors, as `fit(x:y:)` takes them.
    public func evaluate(x: [Tensor], y: [Tensor], sampleWeight: Tensor? = nil, batchSize: Int = 32) throws -> [String: Float] {
        guard compiled != nil else { throw TrainingError.notCompiled }
        let data = try TensorBatches(inputs: x, targets: y, sampleWeights: sampleWeight, batchSize: batchSize)
        try checkCompatible(data, "evaluation data")
        return try evaluate(data)
    }

    /// `checked`: `fit` validated the data once already (not again every epoch).
    private func evaluate(_ data: Dataset, batchSize: Int, normalization: Preprocessing, checked: Bool) throws -> [String: Float] {
        guard let compiled else { throw TrainingError.notCompiled }
        if !checked { try data.validate("evaluation data") }
        try checkCompatible(data, "evaluation data", device: nil)
        let loader = try BatchLoader(data, batchSize: batchSize, normalization: normalization,
                                     oneHotClasses: compiled.wantsOneHot ? outputs[0].shape.last : nil)
        return try evaluate(loader.batches(epoch: 0, on: device!))
    }

    private func evaluate(_ data: TensorBatches) throws -> [String: Float] { try evaluate(data.batches(epoch: 0)) }

    private func evaluate(_ batches: AnySequence<Result<Batch, Error>>) throws -> [String: Float] {
        let compiled = compiled!
        let meters = try PassMeters(compiled, outputNames: outputNames)
        try GradMode.noGrad {
            for result in batches {
                let batch = try result.get()
                let run = try self.run(batch.inputs, training: false)
                let (targets, predictions, weights) = try Compilation.unmasked(batch.targets, run.outputs, masks: run.masks, weights: batch.weights)
                var losses = try compiled.loss(targets, predictions, weights: weights)
                for added in addedLosses { losses.total = try losses.total + added.reshaped(losses.total.shape) }
                try meters.update(targets, predictions, weights: weights, loss: losses, includingTotal: true)
            }
        }
        return try meters.logs(includingTotal: true)
    }

    /// The model's outputs for a batch tensor, in inference mode (Keras's `predict` on an array).
    public func predict(_ batch: Tensor) throws -> Tensor { try GradMode.noGrad { try self(batch) } }

    /// The outputs for samples in one flat host array (`count × inputShape` values, a single-input model,
    /// as Keras's `predict` on a NumPy array), as one flat array `[count] + outputShape` of the first output.
    public func predict(_ samples: [Float], batchSize: Int = 256) throws -> [Float] {
        guard inputs.count == 1 else {
            throw TrainingError.incompatible("predict([Float]) needs a model with one known input shape; '\(name)' has \(inputs.count) inputs (give it an Input, or pass tensors)")
        }
        let sampleSize = inputs[0].shape.reduce(1, *)
        guard !samples.isEmpty, samples.count % sampleSize == 0 else {
            throw TrainingError.incompatible("predict: \(samples.count) values are not whole samples of shape \(inputs[0].shape) (\(sampleSize) values each)")
        }
        let batch = try Tensor(samples, shape: [samples.count / sampleSize] + inputs[0].shape, on: device ?? CPUDevice.shared)
        return try predict([batch], batchSize: batchSize)[0].toArray()
    }

    /// The outputs of a model with several inputs (or outputs) for whole tensors, in batches of `batchSize`.
    public func predict(_ inputs: [Tensor], batchSize: Int = 256) throws -> [Tensor] {
        let data = try TensorBatches(inputs: inputs, targets: [], batchSize: batchSize)
        try checkCompatible(data, "prediction data", needsTargets: false)
        let parts = try GradMode.noGrad { try data.batches(epoch: 0).map { try self(try $0.get().inputs) } }
        return try outputs.indices.map { output in parts.count == 1 ? parts[0][output] : try Tensor.concatenate(parts.map { $0[output] }, axis: 0) }
    }

    /// The model's outputs for every sample, as one host array `[count] + outputShape`.
    public func predict(_ data: Dataset, batchSize: Int = 256, normalization: Preprocessing = .unitRange) throws -> [Float] {
        try data.validate("prediction data")
        try checkCompatible(data, "prediction data", device: nil, needsTargets: false)
        var unlabelled = data
        if unlabelled.labels == nil && unlabelled.targets == nil { unlabelled.labels = [Int32](repeating: 0, count: data.count) }
        let loader = try BatchLoader(unlabelled, batchSize: batchSize, normalization: normalization)
        var outputs: [Float] = []
        try GradMode.noGrad {
            for result in loader.batches(epoch: 0, on: device!) { outputs += try self(try result.get().inputs)[0].toArray() }
        }
        return outputs
    }

    /// Tensors for `fit(x:y:)`, `evaluate(x:y:)` and `predict(_:)`: one per input (and output), each of
    /// the model's sample shape, labels within the classes; places the model on their device.
    private func checkCompatible(_ data: TensorBatches, _ what: String, needsTargets: Bool = true) throws {
        if let sequential = self as? Sequential, inputs.isEmpty, data.inputs.count == 1 { try sequential.build(inputShape: Array(data.inputs[0].shape.dropFirst())) }
        guard data.inputs.count == inputs.count else { throw TrainingError.incompatible("\(what): model '\(name)' takes \(inputs.count) inputs, got \(data.inputs.count)") }
        for (input, tensor) in zip(inputs, data.inputs) where Array(tensor.shape.dropFirst()) != input.shape {
            throw TrainingError.incompatible("\(what): input '\(input.name)' expects samples of shape \(input.shape), got tensor \(tensor.shape)")
        }
        if needsTargets {
            guard data.targets.count == outputs.count, let compiled, compiled.losses.count == outputs.count else {
                throw TrainingError.incompatible("\(what): model '\(name)' has \(outputs.count) outputs and \(compiled?.losses.count ?? 0) losses, got \(data.targets.count) targets")
            }
            for (output, (target, loss)) in zip(outputs, zip(data.targets, compiled.losses)) {
                guard loss is SparseCategoricalCrossentropy, let classes = output.shape.last else { continue }
                guard target.dtype == .int32 else { throw TrainingError.incompatible("\(what): output '\(output.layer.name)' uses \(loss.name), which takes int32 labels, got \(target.dtype)") }
                if let bad = try target.toLabels().first(where: { $0 < 0 || Int($0) >= classes }) {
                    throw TrainingError.incompatible("\(what): label \(bad) for output '\(output.layer.name)' is outside its \(classes) classes")
                }
            }
        }
        if device == nil { try place(on: data.inputs[0].device) }
        guard device === data.inputs[0].device else {
            throw TrainingError.incompatible("\(what): model '\(name)' lives on \(device!.info.name), the tensors on \(data.inputs[0].device.info.name); move them with to(_:)")
        }
    }

    private func checkCompatible(_ data: Dataset, _ what: String, device: (any Device)?, needsTargets: Bool = true) throws {
        if let sequential = self as? Sequential, inputs.isEmpty { try sequential.build(inputShape: data.sampleShape) }
        guard inputs.count == 1, outputs.count == 1 else {
            throw TrainingError.incompatible("datasets feed single-input, single-output models; '\(name)' has \(inputs.count) inputs and \(outputs.count) outputs: pass tensors to fit(x:y:)")
        }
        guard data.sampleShape == inputs[0].shape else {
            throw TrainingError.incompatible("\(what): samples have shape \(data.sampleShape), model '\(name)' expects \(inputs[0].shape)")
        }
        if needsTargets, let labels = data.labels, compiled?.loss is SparseCategoricalCrossentropy || compiled?.loss is CategoricalCrossentropy {
            let classes = outputs[0].shape.last ?? 0
            if let bad = labels.first(where: { $0 < 0 || Int($0) >= classes }) {
                throw TrainingError.incompatible("\(what): label \(bad) is outside the model's \(classes) output classes")
            }
        }
        if self.device == nil { try place(on: device) }
    }
}
