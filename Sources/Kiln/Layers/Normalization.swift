/// Batch normalisation along the last axis (channels), with Keras defaults (momentum 0.99,
/// epsilon 1e-3). Training uses batch statistics and moves the averages; inference, or a frozen
/// layer, uses the moving averages.
public final class BatchNormalization: Layer {
    override public var propagatesMask: Bool { true }
    public let momentum: Float, epsilon: Float
    public let center: Bool, scale: Bool
    private var gamma: Weight!, beta: Weight!, movingMean: Weight!, movingVariance: Weight!

    public init(momentum: Float = 0.99, epsilon: Float = 1e-3, center: Bool = true, scale: Bool = true, name: String? = nil) {
        (self.momentum, self.epsilon, self.center, self.scale) = (momentum, epsilon, center, scale)
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
