/// A running metric over batches. Totals stay on the device; `result()` reads them.
public protocol Metric: AnyObject {
    /// Keras's name: `accuracy`, `top_5_accuracy`, `binary_accuracy`, `loss`.
    var name: String { get }
    func update(_ targets: Tensor, _ predictions: Tensor) throws
    func result() throws -> Float
    func reset()
}

/// A metric whose batch value is a mean of per-sample values, so sample weights can weight it.
public protocol PerSampleMetric: Metric {
    /// Each sample's value, `[batch]` (averaged over the sample's other axes).
    func perSample(_ targets: Tensor, _ predictions: Tensor) throws -> Tensor
}

/// Keras's `weighted_metrics`: Σ w·value / Σ w over the pass, totals kept on the device. Without
/// weights it is the plain mean over samples.
public final class WeightedMetric: Metric {
    public let base: PerSampleMetric
    public let name: String
    private var total: Tensor?, weightTotal: Tensor?
    private var samples = 0

    public init(_ base: PerSampleMetric, name: String? = nil) { (self.base, self.name) = (base, name ?? "weighted_" + base.name) }

    public func update(_ targets: Tensor, _ predictions: Tensor) throws { try update(targets, predictions, weights: nil) }

    public func update(_ targets: Tensor, _ predictions: Tensor, weights: Tensor?) throws {
        try GradMode.noGrad {
            let values = try base.perSample(targets, predictions)
            let sum = try weights.map { try (values * $0).sum() } ?? values.sum()
            total = try total.map { try $0 + sum } ?? sum
            if let weights { weightTotal = try weightTotal.map { try $0 + weights.sum() } ?? weights.sum() }
            samples += values.count
        }
    }

    public func result() throws -> Float {
        guard let total else { return 0 }
        let denominator = try weightTotal?.item() ?? Float(samples)
        return denominator == 0 ? 0 : try total.item() / denominator
    }

    public func reset() { (total, weightTotal, samples) = (nil, nil, 0) }
}

/// The mean over every axis but the first: `[batch]`.
private func meanPerSample(_ values: Tensor, batch: Int) throws -> Tensor {
    values.shape == [batch] ? values : try values.reshaped([batch, values.count / batch]).reduce(.mean, axis: 1)
}

/// Sums of per-sample values kept on the device, and how many samples they cover.
final class RunningMean {
    private var total: Tensor?
    private(set) var samples = 0

    func add(_ values: Tensor, samples: Int) throws {
        let sum = try values.sum()
        total = try total.map { try $0 + sum } ?? sum
        self.samples += samples
    }

    var mean: Float { get throws { samples == 0 ? 0 : try total!.item() / Float(samples) } }
    func reset() { (total, samples) = (nil, 0) }
}

/// Whether the target class is among the top `k` scores. Targets: int32 labels (sparse) or
/// one-hot/probability rows (categorical); Keras's `accuracy` for softmax classifiers is k = 1.
public class TopKAccuracy: PerSampleMetric {
    public let k: Int
    public let name: String
    private let running = RunningMean()

    public init(k: Int = 5, name: String? = nil) {
        self.k = k
        self.name = name ?? (k == 1 ? "accuracy" : "top_\(k)_accuracy")
    }

    public func update(_ targets: Tensor, _ predictions: Tensor) throws {
        let hits = try self.hits(targets, predictions)
        try running.add(hits, samples: hits.count)
    }

    public func perSample(_ targets: Tensor, _ predictions: Tensor) throws -> Tensor {
        try meanPerSample(hits(targets, predictions), batch: predictions.shape[0])
    }

    /// 1 or 0 per row of scores.
    private func hits(_ targets: Tensor, _ predictions: Tensor) throws -> Tensor {
        try GradMode.noGrad {
            let columns = predictions.shape.last!, rows = predictions.count / columns
            let target: Targets = targets.dtype == .int32 ? .sparse(targets.buffer) : .dense(targets.buffer)
            guard targets.dtype == .int32 ? targets.count == rows : targets.shape == predictions.shape else {
                throw TensorError.shape("\(name): targets \(targets.shape) do not match predictions \(predictions.shape)")
            }
            return try Tensor.make([rows], from: [predictions]) {
                try predictions.device.topKHits(scores: predictions.buffer, targets: target, rows: rows, columns: columns, k: k, into: $0)
            }
        }
    }

    public func result() throws -> Float { try running.mean }
    public func reset() { running.reset() }
}

/// Classification accuracy: the target class has the highest score.
public final class Accuracy: TopKAccuracy {
    public init() { super.init(k: 1) }
}

/// Fraction of outputs on the same side of `threshold` as their 0/1 targets.
public final class BinaryAccuracy: PerSampleMetric {
    public let threshold: Float
    public let name = "binary_accuracy"
    private let running = RunningMean()

    public init(threshold: Float = 0.5) { self.threshold = threshold }

    public func update(_ targets: Tensor, _ predictions: Tensor) throws {
        try running.add(try agreements(targets, predictions), samples: predictions.count)
    }

    public func perSample(_ targets: Tensor, _ predictions: Tensor) throws -> Tensor {
        try meanPerSample(agreements(targets, predictions), batch: predictions.shape[0])
    }

    private func agreements(_ targets: Tensor, _ predictions: Tensor) throws -> Tensor {
        guard targets.shape == predictions.shape else {
            throw TensorError.shape("\(name): targets \(targets.shape) do not match predictions \(predictions.shape)")
        }
        return try GradMode.noGrad {
            let predicted = try (predictions - threshold).unary(.step, differentiable: false)
            let actual = try (targets - 0.5).unary(.step, differentiable: false)
            return try 1 - (predicted - actual).abs()
        }
    }

    public func result() throws -> Float { try running.mean }
    public func reset() { running.reset() }
}

/// Mean absolute error over all outputs (Keras's `mae`), in the targets' units.
public final class MeanAbsoluteErrorMetric: PerSampleMetric {
    public let name = "mae"
    private let running = RunningMean()

    public init() {}

    public func update(_ targets: Tensor, _ predictions: Tensor) throws {
        try running.add(try errors(targets, predictions), samples: predictions.count)
    }

    public func perSample(_ targets: Tensor, _ predictions: Tensor) throws -> Tensor {
        try meanPerSample(errors(targets, predictions), batch: predictions.shape[0])
    }

    private func errors(_ targets: Tensor, _ predictions: Tensor) throws -> Tensor {
        guard targets.shape == predictions.shape else {
            throw TensorError.shape("\(name): targets \(targets.shape) do not match predictions \(predictions.shape)")
        }
        return try GradMode.noGrad { try (predictions - targets).abs() }
    }

    public func result() throws -> Float { try running.mean }
    public func reset() { running.reset() }
}

/// The mean of a scalar per batch, weighted by batch size (the `loss` column of the history).
public final class MeanMetric: Metric {
    public let name: String
    private let running = RunningMean()

    public init(name: String = "loss") { self.name = name }

    /// Adds a batch's mean value (`predictions`, one element) for `targets.shape[0]` samples.
    public func update(_ targets: Tensor, _ predictions: Tensor) throws {
        try GradMode.noGrad { try running.add(predictions.detached() * Float(targets.shape[0]), samples: targets.shape[0]) }
    }

    public func result() throws -> Float { try running.mean }
    public func reset() { running.reset() }
}
