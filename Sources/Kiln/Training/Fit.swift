import Foundation

/// What `compile` sets: how a model trains and what it reports.
public struct Compilation {
    public let optimizer: Optimizer
    public let loss: Loss
    /// Metric names: `accuracy`, `top_k_accuracy` (k = 5), `top_N_accuracy`, `binary_accuracy`.
    public let metricNames: [String]

    /// Fresh metric objects for one pass. `accuracy` means binary accuracy for binary cross-entropy, as in Keras.
    func makeMetrics() throws -> [Metric] {
        try metricNames.map { name in
            switch name {
            case "accuracy", "acc": return loss is BinaryCrossentropy ? BinaryAccuracy() : Accuracy()
            case "binary_accuracy": return BinaryAccuracy()
            case "top_k_accuracy", "sparse_top_k_categorical_accuracy", "top_k_categorical_accuracy": return TopKAccuracy(k: 5)
            default:
                if name.hasPrefix("top_"), name.hasSuffix("_accuracy"), let k = Int(name.dropFirst(4).dropLast(9)), k > 0 {
                    return TopKAccuracy(k: k)
                }
                throw TensorError.shape("unknown metric '\(name)'; known: accuracy, binary_accuracy, top_k_accuracy, top_N_accuracy")
            }
        }
    }

    /// Categorical cross-entropy wants one-hot targets; the loader makes them from labels.
    var wantsOneHot: Bool { loss is CategoricalCrossentropy }
}

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
    /// Sets the optimizer, loss and metrics for `fit` and `evaluate`.
    public func compile(optimizer: Optimizer, loss: Loss, metrics: [String] = []) throws {
        let compilation = Compilation(optimizer: optimizer, loss: loss, metricNames: metrics)
        _ = try compilation.makeMetrics()
        compiled = compilation
    }

    /// Trains for `epochs` more epochs (continuing from earlier calls) and returns the history of
    /// this call. Validation uses `validationData`, or the last `validationSplit` of `data`.
    @discardableResult
    public func fit(_ data: Dataset, epochs: Int, batchSize: Int = 32, shuffle: Bool = true, validationSplit: Double? = nil,
                    validationData: Dataset? = nil, normalization: Normalization = .unitRange, augmentation: Augmentation? = nil,
                    seed: UInt64 = 0, callbacks: [Callback] = [], progress: Bool = true, device: (any Device)? = nil) throws -> History {
        guard let compiled else { throw TrainingError.notCompiled }
        guard (0...1_000_000_000).contains(epochs) else { throw TrainingError.incompatible("epochs must be between 0 and 10^9, got \(epochs)") }
        try data.validate("training data")
        var (training, validation) = (data, validationData)
        if let validationSplit, validationData == nil { (training, validation) = try data.split(validationFraction: validationSplit) }
        try checkCompatible(training, "training data", device: device)
        if let validation {
            try validation.validate("validation data")
            try checkCompatible(validation, "validation data", device: device)
        }
        let classes = compiled.wantsOneHot ? outputs[0].shape.last : nil
        let loader = try BatchLoader(training, batchSize: batchSize, shuffle: shuffle, seed: seed, normalization: normalization,
                                     augmentation: augmentation, oneHotClasses: classes)
        let metrics = try compiled.makeMetrics()
        let lossMetric = MeanMetric(name: "loss")
        var runningLoss = (sum: 0.0, samples: 0)
        let state = TrainingState(model: self, finalEpoch: epochsTrained + epochs, stepsPerEpoch: loader.batchCount, history: History()) {
            var logs = ["loss": Float(runningLoss.sum / Double(max(runningLoss.samples, 1)))]
            for metric in metrics { logs[metric.name] = try metric.result() }
            return logs
        }
        let allCallbacks = (progress ? [ProgressBar()] : []) + callbacks
        for callback in allCallbacks { try callback.trainingWillBegin(state) }
        let device = self.device!
        epochs: for epoch in stride(from: epochsTrained + 1, through: epochsTrained + epochs, by: 1) {
            state.epoch = epoch
            for callback in allCallbacks { try callback.epochWillBegin(epoch, state) }
            metrics.forEach { $0.reset() }
            lossMetric.reset()
            runningLoss = (0, 0)
            for (step, result) in loader.batches(epoch: epoch, on: device).enumerated() {
                let batch = try result.get()
                let predictions = try self(batch.inputs, training: true)
                var loss = try compiled.loss(batch.targets, predictions)
                if let penalty = try regularizationLoss() { loss = try loss + penalty }
                try loss.backward()
                let value = try loss.item()
                guard value.isFinite else {  // before the update, so the weights stay the last finite ones
                    for weight in trainableWeights { weight.value.zeroGrad() }
                    state.stop(because: "loss became \(value) at epoch \(epoch), step \(step + 1); training stopped (TerminateOnNaN)")
                    break epochs
                }
                try compiled.optimizer.apply(to: trainableWeights)
                for metric in metrics { try metric.update(batch.targets, predictions) }
                runningLoss.sum += Double(value) * Double(batch.count)
                runningLoss.samples += batch.count
                state.samplesSeen += batch.count
                for callback in allCallbacks { try callback.batchDidEnd(step + 1, state) }
                if state.interrupted { break epochs }
            }
            var logs = try state.logs()
            if let validation {
                for (name, value) in try evaluate(validation, batchSize: batchSize, normalization: normalization, checked: true) {
                    logs["val_" + name] = value
                }
            }
            logs["learning_rate"] = compiled.optimizer.learningRate
            epochsTrained = epoch
            state.history.append(epoch: epoch, logs)
            trainingHistory.append(epoch: epoch, logs)
            for callback in allCallbacks { try callback.epochDidEnd(epoch, logs: logs, state) }
            if state.stopTraining { break }
        }
        for callback in allCallbacks { try callback.trainingDidEnd(state) }
        if let reason = state.stopReason { print(reason) }
        lastStopReason = state.stopReason
        return state.history
    }

    /// Loss and metrics over a dataset, in inference mode.
    public func evaluate(_ data: Dataset, batchSize: Int = 32, normalization: Normalization = .unitRange) throws -> [String: Float] {
        try evaluate(data, batchSize: batchSize, normalization: normalization, checked: false)
    }

    /// `checked`: `fit` validated the data once already (not again every epoch).
    private func evaluate(_ data: Dataset, batchSize: Int, normalization: Normalization, checked: Bool) throws -> [String: Float] {
        guard let compiled else { throw TrainingError.notCompiled }
        if !checked { try data.validate("evaluation data") }
        try checkCompatible(data, "evaluation data", device: nil)
        let loader = try BatchLoader(data, batchSize: batchSize, normalization: normalization,
                                     oneHotClasses: compiled.wantsOneHot ? outputs[0].shape.last : nil)
        let metrics = try compiled.makeMetrics()
        let loss = MeanMetric(name: "loss")
        try GradMode.noGrad {
            for result in loader.batches(epoch: 0, on: device!) {
                let batch = try result.get()
                let predictions = try self(batch.inputs)
                try loss.update(batch.targets, compiled.loss(batch.targets, predictions))
                for metric in metrics { try metric.update(batch.targets, predictions) }
            }
        }
        var logs = ["loss": try loss.result()]
        for metric in metrics { logs[metric.name] = try metric.result() }
        return logs
    }

    /// The model's outputs for a batch tensor, in inference mode (Keras's `predict` on an array).
    public func predict(_ batch: Tensor) throws -> Tensor { try GradMode.noGrad { try self(batch) } }

    /// The model's outputs for every sample, as one host array `[count] + outputShape`.
    public func predict(_ data: Dataset, batchSize: Int = 256, normalization: Normalization = .unitRange) throws -> [Float] {
        try data.validate("prediction data")
        try checkCompatible(data, "prediction data", device: nil, needsTargets: false)
        var unlabelled = data
        if unlabelled.labels == nil && unlabelled.targets == nil { unlabelled.labels = [Int32](repeating: 0, count: data.count) }
        let loader = try BatchLoader(unlabelled, batchSize: batchSize, normalization: normalization)
        var outputs: [Float] = []
        try GradMode.noGrad {
            for result in loader.batches(epoch: 0, on: device!) { outputs += try self(try result.get().inputs).toArray() }
        }
        return outputs
    }

    private func checkCompatible(_ data: Dataset, _ what: String, device: (any Device)?, needsTargets: Bool = true) throws {
        if let sequential = self as? Sequential, inputs.isEmpty { try sequential.build(inputShape: data.sampleShape) }
        guard inputs.count == 1, outputs.count == 1 else {
            throw TrainingError.incompatible("fit/evaluate/predict take single-input, single-output models; '\(name)' has \(inputs.count) inputs and \(outputs.count) outputs")
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
