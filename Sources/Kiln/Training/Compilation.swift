/// What `compile` sets: how a model trains and what it reports.
public struct Compilation {
    public let optimizer: Optimizer
    /// One loss per model output, in `outputs` order.
    public let losses: [Loss]
    /// What each output's loss counts for in the total that is minimised (Keras's `loss_weights`).
    public let lossWeights: [Float]
    /// Metric names per output: `accuracy`, `top_k_accuracy` (k = 5), `top_N_accuracy`, `binary_accuracy`, `mae`.
    public let outputMetrics: [[String]]
    /// Metrics per output weighted by the sample (or class) weights, reported as `weighted_<name>`
    /// (Keras's `weighted_metrics`); without weights they equal the plain ones.
    public var weightedMetrics: [[String]] = []

    /// The first output's metric names.
    public var metricNames: [String] { outputMetrics[0] }

    /// The loss of the first (for most models the only) output.
    public var loss: Loss { losses[0] }

    /// Fresh metric objects for one pass, per output: the plain metrics, then the weighted ones. With
    /// several outputs each is named after its output (`digits_accuracy`), as Keras does. `accuracy`
    /// means binary accuracy for binary cross-entropy, reported as `accuracy` (Keras's name for what was asked).
    func makeMetrics(outputNames: [String]) throws -> [(plain: [Metric], weighted: [WeightedMetric])] {
        try losses.indices.map { output in
            func named(_ name: String, prefix: String) throws -> (metric: Metric, name: String) {
                let metric = try Self.metric(name, for: losses[output])
                let reported = prefix + (["accuracy", "acc"].contains(name) ? "accuracy" : metric.name)
                return (metric, losses.count > 1 ? "\(outputNames[output])_\(reported)" : reported)
            }
            let plain = try outputMetrics[output].map { name -> Metric in
                let (metric, reported) = try named(name, prefix: "")
                return reported == metric.name ? metric : RenamedMetric(metric, name: reported)
            }
            let weighted = try (weightedMetrics.isEmpty ? [] : weightedMetrics[output]).map { name -> WeightedMetric in
                let (metric, reported) = try named(name, prefix: "weighted_")
                guard let values = metric as? PerSampleMetric else { throw TensorError.shape("metric '\(name)' cannot be weighted") }
                return WeightedMetric(values, name: reported)
            }
            return (plain, weighted)
        }
    }

    private static func metric(_ name: String, for loss: Loss) throws -> Metric {
        switch name {
        case "accuracy", "acc": return loss is BinaryCrossentropy ? BinaryAccuracy() : Accuracy()
        case "binary_accuracy": return BinaryAccuracy()
        case "mae", "mean_absolute_error": return MeanAbsoluteErrorMetric()
        case "top_k_accuracy", "sparse_top_k_categorical_accuracy", "top_k_categorical_accuracy": return TopKAccuracy(k: 5)
        default:
            if name.hasPrefix("top_"), name.hasSuffix("_accuracy"), let k = Int(name.dropFirst(4).dropLast(9)), k > 0 {
                return TopKAccuracy(k: k)
            }
            throw TensorError.shape("unknown metric '\(name)'; known: accuracy, binary_accuracy, top_k_accuracy, top_N_accuracy, mae")
        }
    }

    /// The steps of each output its mask keeps (`[batch, time]` masks, as Keras leaves padded steps out of
    /// the loss and metrics): targets and predictions with the batch and time axes merged and only those
    /// rows kept, and the sample weights repeated for each kept step. Outputs without a mask stay as they are.
    static func unmasked(_ targets: [Tensor], _ predictions: [Tensor], masks: [Tensor?],
                         weights: Tensor? = nil) throws -> (targets: [Tensor], predictions: [Tensor], weights: [Tensor?]) {
        var (t, p, w) = (targets, predictions, [Tensor?](repeating: weights, count: predictions.count))
        for (i, mask) in masks.enumerated() {
            guard let mask, p[i].rank >= 2, Array(p[i].shape.prefix(2)) == mask.shape, Array(t[i].shape.prefix(2)) == mask.shape else { continue }
            let rows = mask.count
            let keep = try mask.reshaped([rows])
            p[i] = try p[i].reshaped([rows] + p[i].shape.dropFirst(2)).masked(by: keep)
            t[i] = try t[i].reshaped([rows] + t[i].shape.dropFirst(2)).masked(by: keep)
            w[i] = try weights.map { try $0.reshaped([mask.shape[0], 1]).broadcast(to: mask.shape).reshaped([rows]).masked(by: keep) }
        }
        return (t, p, w)
    }

    /// The weighted sum of the outputs' losses, and each output's own; with sample weights, each is
    /// Keras's weighted loss (Σ w·loss over the batch, divided by the batch size).
    func loss(_ targets: [Tensor], _ predictions: [Tensor], weights: [Tensor?] = []) throws -> (total: Tensor, parts: [Tensor]) {
        let parts = try losses.indices.map { i in
            if i < weights.count, let w = weights[i] { return try losses[i].weighted(targets[i], predictions[i], weights: w) }
            return try losses[i](targets[i], predictions[i])
        }
        guard parts.count > 1 || lossWeights[0] != 1 else { return (parts[0], parts) }
        var total = try parts[0] * lossWeights[0]
        for (part, weight) in zip(parts, lossWeights).dropFirst() { total = try total + part * weight }
        return (total, parts)
    }

    /// Categorical cross-entropy wants one-hot targets; the loader makes them from labels.
    var wantsOneHot: Bool { loss is CategoricalCrossentropy }
}

/// A metric reported under another name (an output's name in front).
private final class RenamedMetric: Metric {
    let base: Metric
    let name: String
    init(_ base: Metric, name: String) { (self.base, self.name) = (base, name) }
    func update(_ targets: Tensor, _ predictions: Tensor) throws { try base.update(targets, predictions) }
    func result() throws -> Float { try base.result() }
    func reset() { base.reset() }
}

/// The loss (in total and per output) and the metrics of one pass over the data, kept on the device.
final class PassMeters {
    private let loss = MeanMetric(name: "loss")
    private let parts: [MeanMetric]
    private let metrics: [(plain: [Metric], weighted: [WeightedMetric])]

    init(_ compiled: Compilation, outputNames: [String]) throws {
        parts = compiled.losses.count == 1 ? [] : outputNames.map { MeanMetric(name: "\($0)_loss") }
        metrics = try compiled.makeMetrics(outputNames: outputNames)
    }

    private var all: [Metric] { [loss] + parts + metrics.flatMap { $0.plain + $0.weighted } }

    /// Adds one batch; `total` only when the caller does not keep the loss itself.
    func update(_ targets: [Tensor], _ predictions: [Tensor], weights: [Tensor?], loss: (total: Tensor, parts: [Tensor]), includingTotal: Bool) throws {
        if includingTotal { try self.loss.update(targets[0], loss.total) }
        for (meter, part) in zip(parts, loss.parts) { try meter.update(targets[0], part) }
        for (output, (plain, weighted)) in metrics.enumerated() {
            for metric in plain { try metric.update(targets[output], predictions[output]) }
            for metric in weighted { try metric.update(targets[output], predictions[output], weights: output < weights.count ? weights[output] : nil) }
        }
    }

    func reset() { all.forEach { $0.reset() } }

    /// Per-output losses and metrics, plus the total loss when this pass kept it.
    func logs(includingTotal: Bool) throws -> [String: Float] {
        var logs: [String: Float] = [:]
        for metric in all.dropFirst(includingTotal ? 0 : 1) { logs[metric.name] = try metric.result() }
        return logs
    }
}
