/// Batch normalisation along the last axis (channels), with Keras defaults (momentum 0.99,
/// epsilon 1e-3). Training uses batch statistics and moves the averages; inference, or a frozen
/// layer, uses the moving averages.
public final class BatchNormalization: Layer {
    override public var propagatesMask: Bool { true }
    public let momentum: Float, epsilon: Float
    public let center: Bool, scale: Bool
    /// Under data-parallel training, normalises with the statistics of the global batch, summed over
    /// the replicas each step, instead of each replica's own (Keras's `synchronized`, PyTorch's
    /// `SyncBatchNorm`); elsewhere it changes nothing.
    public var synchronized: Bool
    /// The replicas of the data-parallel training under way, set by `fit`.
    var replicas: (any CrossReplicaSum)?
    private var gamma: Weight!, beta: Weight!, movingMean: Weight!, movingVariance: Weight!

    public init(momentum: Float = 0.99, epsilon: Float = 1e-3, center: Bool = true, scale: Bool = true, synchronized: Bool = false,
                name: String? = nil) {
        (self.momentum, self.epsilon, self.center, self.scale, self.synchronized) = (momentum, epsilon, center, scale, synchronized)
        super.init(name: name, kind: "batch_normalization")
    }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        let input = try single(inputShapes)
        guard let channels = input.last else { throw shapeError("needs at least one axis") }
        // Without center/scale, beta/gamma are fixed constants that are not weights.
        gamma = scale ? addWeight("gamma", shape: [channels], initializer: .ones) : nil
        beta = center ? addWeight("beta", shape: [channels], initializer: .zeros) : nil
        movingMean = addWeight("moving_mean", shape: [channels], initializer: .zeros, isVariable: false)
        movingVariance = addWeight("moving_variance", shape: [channels], initializer: .ones, isVariable: false)
        return input
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try requirePlaced()
        let x = inputs[0], channels = x.shape.last!
        let g = try gamma?.value ?? .full(1, shape: [channels], on: x.device)
        let b = try beta?.value ?? .zeros([channels], on: x.device)
        if training, trainable, synchronized, let replicas {
            let (y, mean, variance) = try x.synchronizedBatchNorm(gamma: g, beta: b, epsilon: epsilon, replicas: replicas)
            try GradMode.noGrad {
                for (moving, batch) in [(movingMean.value!, mean), (movingVariance.value!, variance)] {
                    let updated = try moving * momentum + batch.detached() * (1 - momentum)
                    try x.device.copy(updated.buffer, to: moving.buffer, count: channels)
                }
            }
            return y
        }
        return try x.batchNorm(gamma: g, beta: b, movingMean: movingMean.value, movingVariance: movingVariance.value,
                               training: training && trainable, momentum: momentum, epsilon: epsilon)
    }
}

/// Keras's `LayerNormalization` over the last axis: each sample's features to mean 0 and variance 1,
/// then scaled by `gamma` and shifted by `beta` (per feature).
public final class LayerNormalization: Layer {
    override public var propagatesMask: Bool { true }
    public let epsilon: Float
    public let center: Bool, scale: Bool
    private var gamma: Weight?, beta: Weight?

    public init(epsilon: Float = 1e-3, center: Bool = true, scale: Bool = true, name: String? = nil) {
        (self.epsilon, self.center, self.scale) = (epsilon, center, scale)
        super.init(name: name, kind: "layer_normalization")
    }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        let input = try single(inputShapes)
        guard let features = input.last else { throw shapeError("needs inputs with at least one axis") }
        if scale { gamma = addWeight("gamma", shape: [features], initializer: .ones) }
        if center { beta = addWeight("beta", shape: [features], initializer: .zeros) }
        return input
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try requirePlaced()
        let x = inputs[0]
        let centered = try x - x.reduce(.mean, axes: [-1], keepDims: true)
        var y = try centered / (centered.square().reduce(.mean, axes: [-1], keepDims: true) + epsilon).sqrt()
        if let gamma { y = try y * gamma.value }
        if let beta { y = try y + beta.value }
        return y
    }
}

/// Keras's `Normalization` preprocessing layer over the last axis: (x − mean) / max(√variance, 1e-7)
/// (or its inverse with `invert`), from `mean` and `variance` given here or stored as the layer's
/// non-trainable weights (`mean`, `variance` and Keras's `count`), which `adapt(_:)` fits to data.
public final class Normalization: Layer {
    /// The channel axis (Keras counts the batch axis): -1 or its positive equal; only the last is supported.
    public let axis: Int
    public let invert: Bool
    let given: (mean: [Float], variance: [Float])?
    private var mean: Weight?, variance: Weight?

    public init(axis: Int = -1, mean: [Float]? = nil, variance: [Float]? = nil, invert: Bool = false, name: String? = nil) {
        given = mean.flatMap { m in variance.map { (m, $0) } }
        (self.axis, self.invert) = (axis, invert)
        super.init(name: name, kind: "normalization")
    }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        let input = try single(inputShapes)
        guard let channels = input.last, axis == -1 || axis == input.count else {
            throw shapeError("normalizes the last axis of its inputs (axis -1 or \(input.count)), got axis \(axis) for \(input)")
        }
        if let given {
            guard [1, channels].contains(given.mean.count), given.mean.count == given.variance.count else {
                throw shapeError("mean and variance must have 1 or \(channels) values, got \(given.mean.count) and \(given.variance.count)")
            }
        } else {
            mean = addWeight("mean", shape: [channels], initializer: .zeros, isVariable: false)
            variance = addWeight("variance", shape: [channels], initializer: .ones, isVariable: false)
            _ = addWeight("count", shape: [], initializer: .zeros, isVariable: false)
        }
        return input
    }

    /// Sets the stored mean and variance to those of `data` per channel (its last axis), as Keras's `adapt`.
    public func adapt(_ data: Tensor) throws {
        try requirePlaced()
        guard let mean, let variance, data.shape.last == mean.shape[0] else {
            throw shapeError("adapt takes data whose last axis has the layer's channels, on a layer built without a given mean; got \(data.shape)")
        }
        let rows = try data.reshaped([data.count / mean.shape[0], mean.shape[0]])
        let m = try rows.reduce(.mean, axis: 0)
        try mean.assign(try m.toArray())
        try variance.assign(try (rows - m).square().reduce(.mean, axis: 0).toArray())
    }

    /// The mean and variance in use (given, or the stored weights).
    func statistics() throws -> (mean: [Float], variance: [Float]) {
        try given ?? (try mean!.value.toArray(), try variance!.value.toArray())
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try requirePlaced()
        let x = inputs[0]
        let (m, v): (Tensor, Tensor) = try given.map { (try Tensor($0.mean, shape: [$0.mean.count], on: x.device),
                                                        try Tensor($0.variance, shape: [$0.variance.count], on: x.device)) }
            ?? (mean!.value!, variance!.value!)
        let scale = try v.sqrt().clamped(min: 1e-7, max: .greatestFiniteMagnitude)
        return try invert ? x * scale + m : (x - m) / scale
    }
}

/// ConvNeXt's `LayerScale`: the last axis scaled by a learned `gamma` (`projectionDim` values,
/// starting at `initValue`), as Keras's applications define it.
public final class LayerScale: Layer {
    public let initValue: Float, projectionDim: Int
    private var gamma: Weight!

    public init(initValue: Float, projectionDim: Int, name: String? = nil) {
        (self.initValue, self.projectionDim) = (initValue, projectionDim)
        super.init(name: name, kind: "layer_scale")
    }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        let input = try single(inputShapes)
        guard input.last == projectionDim else { throw shapeError("scales \(projectionDim) features, got inputs \(input)") }
        gamma = addWeight("gamma", shape: [projectionDim], initializer: .constant(initValue))
        return input
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try requirePlaced()
        return try inputs[0] * gamma.value
    }
}
