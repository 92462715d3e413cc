/// A layer that draws random numbers from its own Philox stream: a seed drawn when the model is
/// placed and how many numbers it has used, kept by checkpoints so that a resumed run draws what an
/// uninterrupted one would. The same on every device. Subclass it for layers of your own that draw
/// (a VAE's sampling layer) and draw with `draw(_:_:on:)`.
open class StochasticLayer: Layer {
    override public var propagatesMask: Bool { true }
    public internal(set) var seed: UInt64 = 0
    public internal(set) var offset: UInt64 = 0

    override func materialize(on device: any Device, random: inout RandomGenerator) throws {
        seed = random.next()
        isPlaced = true
    }

    /// Draws of `shape` on `device` from the stream's next numbers.
    public func draw(_ shape: [Int], _ distribution: RandomDistribution, on device: any Device) throws -> Tensor {
        defer { offset &+= UInt64(shape.reduce(1, *)) }
        return try Tensor.random(shape, distribution, seed: seed, offset: offset, on: device)
    }
}

/// Zeroes a fraction `rate` of the inputs during training and scales the rest by 1/(1-rate).
/// Masks come from Philox(seed, counter): the same on every device, and resumable.
public class Dropout: StochasticLayer {
    public let rate: Float

    public init(_ rate: Float, name: String? = nil) {
        self.rate = rate
        super.init(name: name, kind: "dropout")
    }

    init(_ rate: Float, name: String?, kind: String) {
        self.rate = rate
        super.init(name: name, kind: kind)
    }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        guard rate >= 0, rate < 1 else { throw shapeError("rate must be in [0, 1), got \(rate)") }
        return try single(inputShapes)
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        guard training, rate > 0 else { return inputs[0] }
        defer { offset &+= UInt64(inputs[0].count) }
        return try inputs[0].dropout(rate: rate, seed: seed, offset: offset)
    }
}

/// Keras's `SpatialDropout2D`: whole feature maps (channels of (H, W, C) images) dropped together,
/// one mask per image, from the same resumable stream as `Dropout`.
public final class SpatialDropout2D: Dropout {
    override public init(_ rate: Float, name: String? = nil) { super.init(rate, name: name, kind: "spatial_dropout2d") }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        guard try single(inputShapes).count == 3 else { throw shapeError("expects (height, width, channels) inputs, got \(inputShapes[0])") }
        return try super.build(inputShapes)
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        guard training, rate > 0 else { return inputs[0] }
        let x = inputs[0]
        let ones = try Tensor.ones([x.shape[0], 1, 1, x.shape[3]], on: x.device)
        defer { offset &+= UInt64(ones.count) }
        return try x * ones.dropout(rate: rate, seed: seed, offset: offset)
    }
}

/// Keras's `GaussianNoise`: adds zero-mean normal noise of `stddev` during training (a regulariser,
/// and a denoising autoencoder's corruption); the identity at inference.
public final class GaussianNoise: StochasticLayer {
    public let stddev: Float

    public init(_ stddev: Float, name: String? = nil) {
        self.stddev = stddev
        super.init(name: name, kind: "gaussian_noise")
    }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        guard stddev >= 0, stddev.isFinite else { throw shapeError("stddev must be finite and ≥ 0, got \(stddev)") }
        return try single(inputShapes)
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        guard training, stddev > 0 else { return inputs[0] }
        return try inputs[0] + draw(inputs[0].shape, .normal(mean: 0, standardDeviation: stddev), on: inputs[0].device)
    }
}

/// Keras's `GaussianDropout`: multiplies by normal noise of mean 1 and standard deviation
/// √(rate / (1 − rate)) during training; the identity at inference.
public final class GaussianDropout: StochasticLayer {
    public let rate: Float

    public init(_ rate: Float, name: String? = nil) {
        self.rate = rate
        super.init(name: name, kind: "gaussian_dropout")
    }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        guard rate >= 0, rate < 1 else { throw shapeError("rate must be in [0, 1), got \(rate)") }
        return try single(inputShapes)
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        guard training, rate > 0 else { return inputs[0] }
        let x = inputs[0]
        return try x * draw(x.shape, .normal(mean: 1, standardDeviation: (rate / (1 - rate)).squareRoot()), on: x.device)
    }
}

/// The reparameterisation trick of a variational autoencoder (the `Sampling` layer of Keras's VAE
/// example): from `[mean, logVariance]` concatenated along the last axis, z = mean + e^(logVariance/2)·ε
/// with ε drawn from the layer's stream, and the KL divergence to N(0, 1), summed over the latent
/// axis and averaged over the batch, added as the layer's loss (`addLoss`). It samples at inference too.
public final class Sampling: StochasticLayer {
    public init(name: String? = nil) { super.init(name: name, kind: "sampling") }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        let input = try single(inputShapes)
        guard input.count == 1, input[0] % 2 == 0 else { throw shapeError("takes [mean, logVariance] of an even width, got \(input)") }
        return [input[0] / 2]
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let code = inputs[0], latent = code.shape[1] / 2
        let (mean, logVariance) = (try code.sliced(0..<latent, axis: 1), try code.sliced(latent..<2 * latent, axis: 1))
        try addLoss(-0.5 * (1 + logVariance - mean.square() - logVariance.exp()).reduce(.sum, axis: 1).mean())
        return try mean + (0.5 * logVariance).exp() * draw(mean.shape, .normal(mean: 0, standardDeviation: 1), on: mean.device)
    }
}
