/// A loss: the mean over the batch of a per-sample penalty, as a one-element tensor.
/// Called as Keras does: `loss(targets, predictions)`.
public protocol Loss {
    func callAsFunction(_ targets: Tensor, _ predictions: Tensor) throws -> Tensor
    /// Each sample's penalty, `[batch]` (averaged over the sample's other axes): what sample
    /// and class weights scale.
    func perSample(_ targets: Tensor, _ predictions: Tensor) throws -> Tensor
    /// Keras's name (`sparse_categorical_crossentropy`, …), for history and checkpoints.
    var name: String { get }
}

extension Loss {
    public func perSample(_ targets: Tensor, _ predictions: Tensor) throws -> Tensor {
        throw TrainingError.incompatible("the loss \(name) has no per-sample form (perSample), which sample and class weights need")
    }

    /// Keras's weighted loss: Σ wᵢ·lossᵢ over the batch divided by the batch size (not by Σ w).
    public func weighted(_ targets: Tensor, _ predictions: Tensor, weights: Tensor) throws -> Tensor {
        let values = try perSample(targets, predictions)
        guard weights.shape == values.shape else { throw TensorError.shape("\(name): \(weights.shape) sample weights for \(values.shape) samples") }
        return try (values * weights).sum() / Float(values.count)
    }
}

private extension Tensor {
    /// The mean over every axis but the first: `[batch]`.
    func meanPerSample() throws -> Tensor {
        rank == 1 ? self : try reshaped([shape[0], count / shape[0]]).reduce(.mean, axis: 1)
    }
}

/// Probabilities are clipped to [ε, 1 − ε] before logarithms, as Keras does.
let probabilityEpsilon: Float = 1e-7

public struct MeanSquaredError: Loss {
    public init() {}
    public var name: String { "mean_squared_error" }
    public func callAsFunction(_ targets: Tensor, _ predictions: Tensor) throws -> Tensor {
        try checkSameShape(targets, predictions, name)
        return try (predictions - targets).square().mean()
    }

    public func perSample(_ targets: Tensor, _ predictions: Tensor) throws -> Tensor {
        try checkSameShape(targets, predictions, name)
        return try (predictions - targets).square().meanPerSample()
    }
}

public struct MeanAbsoluteError: Loss {
    public init() {}
    public var name: String { "mean_absolute_error" }
    public func callAsFunction(_ targets: Tensor, _ predictions: Tensor) throws -> Tensor {
        try checkSameShape(targets, predictions, name)
        return try (predictions - targets).abs().mean()
    }

    public func perSample(_ targets: Tensor, _ predictions: Tensor) throws -> Tensor {
        try checkSameShape(targets, predictions, name)
        return try (predictions - targets).abs().meanPerSample()
    }
}

/// Keras's `KLDivergence`: Σ y·log(y / ŷ) over the last axis, both clipped to [ε, 1], averaged over
/// the rest (targets and predictions are distributions, such as softmax outputs).
public struct KLDivergence: Loss {
    public init() {}
    public var name: String { "kl_divergence" }
    public func callAsFunction(_ targets: Tensor, _ predictions: Tensor) throws -> Tensor {
        try divergences(targets, predictions).mean()
    }

    public func perSample(_ targets: Tensor, _ predictions: Tensor) throws -> Tensor {
        try divergences(targets, predictions).reshaped(Array(targets.shape.dropLast()).isEmpty ? [1] : Array(targets.shape.dropLast())).meanPerSample()
    }

    private func divergences(_ targets: Tensor, _ predictions: Tensor) throws -> Tensor {
        try checkSameShape(targets, predictions, name)
        let (t, p) = (try targets.clipped(probabilityEpsilon, 1), try predictions.clipped(probabilityEpsilon, 1))
        return try (t * (t.log() - p.log())).reduce(.sum, axis: -1)
    }
}

/// Binary cross-entropy of probabilities (or logits with `fromLogits: true`) against 0/1 targets.
/// Sigmoid outputs are turned back into their logits for the stable form.
public struct BinaryCrossentropy: Loss {
    public let fromLogits: Bool
    public init(fromLogits: Bool = false) { self.fromLogits = fromLogits }
    public var name: String { "binary_crossentropy" }

    public func callAsFunction(_ targets: Tensor, _ predictions: Tensor) throws -> Tensor {
        try elementwise(targets, predictions).mean()
    }

    public func perSample(_ targets: Tensor, _ predictions: Tensor) throws -> Tensor {
        try elementwise(targets, predictions).meanPerSample()
    }

    private func elementwise(_ targets: Tensor, _ predictions: Tensor) throws -> Tensor {
        try checkSameShape(targets, predictions, name)
        let logits = fromLogits ? predictions : predictions.logits.flatMap { $0.activation == .sigmoid ? $0.tensor : nil }
        if let z = logits {
            // max(z, 0) − z·y + log(1 + e^−|z|) = softplus(z) − z·y
            return try z.softplus() - z * targets
        }
        let p = try predictions.clipped(probabilityEpsilon, 1 - probabilityEpsilon)
        return try -(targets * p.log() + (1 - targets) * (1 - p).log())
    }
}

/// Cross-entropy against one-hot or soft targets; softmax outputs (and, with `fromLogits: false`,
/// any probabilities, via log p) go through the fused, stable softmax cross-entropy.
public struct CategoricalCrossentropy: Loss {
    public let fromLogits: Bool
    public init(fromLogits: Bool = false) { self.fromLogits = fromLogits }
    public var name: String { "categorical_crossentropy" }

    public func callAsFunction(_ targets: Tensor, _ predictions: Tensor) throws -> Tensor {
        guard targets.dtype == .float32 else { throw TensorError.dtype("\(name) takes one-hot float targets; use SparseCategoricalCrossentropy for labels") }
        return try crossEntropyLogits(predictions, fromLogits: fromLogits).softmaxCrossEntropy(targets)
    }

    public func perSample(_ targets: Tensor, _ predictions: Tensor) throws -> Tensor {
        guard targets.dtype == .float32 else { throw TensorError.dtype("\(name) takes one-hot float targets; use SparseCategoricalCrossentropy for labels") }
        return try crossEntropies(crossEntropyLogits(predictions, fromLogits: fromLogits), targets)
    }
}

/// Cross-entropy against int32 class labels.
public struct SparseCategoricalCrossentropy: Loss {
    public let fromLogits: Bool
    public init(fromLogits: Bool = false) { self.fromLogits = fromLogits }
    public var name: String { "sparse_categorical_crossentropy" }

    public func callAsFunction(_ targets: Tensor, _ predictions: Tensor) throws -> Tensor {
        guard targets.dtype == .int32 else { throw TensorError.dtype("\(name) takes int32 class labels, got \(targets.dtype)") }
        return try crossEntropyLogits(predictions, fromLogits: fromLogits).softmaxCrossEntropy(targets)
    }

    /// One-hot rows of the labels (rows of an identity matrix, gathered on the device) against log-softmax.
    public func perSample(_ targets: Tensor, _ predictions: Tensor) throws -> Tensor {
        guard targets.dtype == .int32 else { throw TensorError.dtype("\(name) takes int32 class labels, got \(targets.dtype)") }
        let classes = predictions.shape.last!, rows = predictions.count / classes
        guard targets.count == rows else { throw TensorError.shape("\(targets.count) labels for \(rows) rows of predictions \(predictions.shape)") }
        let oneHot = try Tensor.eye(classes, on: predictions.device).gathered(targets.reshaped([rows])).reshaped(predictions.shape)
        return try crossEntropies(crossEntropyLogits(predictions, fromLogits: fromLogits), oneHot)
    }
}

/// Logits whose softmax gives `predictions`: the predictions themselves, the softmax's input, or
/// log p of clipped probabilities (softmax(log p) = p / Σp, which is Keras's normalisation).
private func crossEntropyLogits(_ predictions: Tensor, fromLogits: Bool) throws -> Tensor {
    if fromLogits { return predictions }
    if let source = predictions.logits, source.activation == nil { return source.tensor }
    return try predictions.clipped(probabilityEpsilon, 1 - probabilityEpsilon).log()
}

/// −Σ t·log softmax(z) over the last axis, averaged per sample.
private func crossEntropies(_ logits: Tensor, _ targets: Tensor) throws -> Tensor {
    guard targets.shape == logits.shape else { throw TensorError.shape("targets \(targets.shape) do not match predictions \(logits.shape)") }
    let rows = Array(logits.shape.dropLast())
    return try -(targets * logits.logSoftmax()).reduce(.sum, axis: -1).reshaped(rows.isEmpty ? [1] : rows).meanPerSample()
}

private func checkSameShape(_ targets: Tensor, _ predictions: Tensor, _ loss: String) throws {
    guard targets.shape == predictions.shape, targets.dtype == .float32 else {
        throw TensorError.shape("\(loss): targets \(targets.shape) (\(targets.dtype)) do not match predictions \(predictions.shape)")
    }
}
