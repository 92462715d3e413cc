/// Activation functions by Keras name, for `activation:` arguments and the `Activation` layer.
public enum ActivationFunction: Hashable, Sendable {
    case linear, relu, sigmoid, tanh, softmax, softplus
    case leakyRelu(negativeSlope: Float)
    /// `x` above 0, else `α(eˣ − 1)` (Keras's `elu`, α = 1); `selu` scales it with Keras's constants.
    case elu, selu
    /// `x·Φ(x)` with the normal CDF Φ (Keras's exact `gelu`), and `x·σ(x)` (`swish`, `silu`).
    case gelu, swish
    /// `relu6(x + 3) / 6`, and `x` times it (Keras 3's `hard_sigmoid`, `hard_swish`).
    case hardSigmoid, hardSwish

    /// `relu`, `sigmoid`, `tanh`, `softmax`, `softplus`, `linear`, `leaky_relu`, `elu`, `selu`, `gelu`,
    /// `swish`/`silu`, `hard_sigmoid`, `hard_swish`/`hard_silu`.
    public init?(kerasName: String) {
        switch kerasName.lowercased() {
        case "elu": self = .elu
        case "selu": self = .selu
        case "gelu": self = .gelu
        case "swish", "silu": self = .swish
        case "hard_sigmoid": self = .hardSigmoid
        case "hard_swish", "hard_silu": self = .hardSwish
        case "linear", "none": self = .linear
        case "relu": self = .relu
        case "sigmoid": self = .sigmoid
        case "tanh": self = .tanh
        case "softmax": self = .softmax
        case "softplus": self = .softplus
        case "leaky_relu", "leakyrelu": self = .leakyRelu(negativeSlope: 0.2)
        default: return nil
        }
    }

    public var kerasName: String {
        switch self {
        case .linear: "linear"
        case .relu: "relu"
        case .sigmoid: "sigmoid"
        case .tanh: "tanh"
        case .softmax: "softmax"
        case .softplus: "softplus"
        case .leakyRelu: "leaky_relu"
        case .elu: "elu"
        case .selu: "selu"
        case .gelu: "gelu"
        case .swish: "swish"
        case .hardSigmoid: "hard_sigmoid"
        case .hardSwish: "hard_swish"
        }
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        switch self {
        case .linear: x
        case .relu: try x.relu()
        case .sigmoid: try x.sigmoid()
        case .tanh: try x.tanh()
        case .softmax: try x.softmax()
        case .softplus: try x.softplus()
        case .leakyRelu(let slope): try x.leakyRelu(negativeSlope: slope)
        case .elu: try Self.exponentialLinear(x)
        case .selu: try Self.exponentialLinear(x, alpha: 1.673_263_2) * 1.050_701
        case .gelu: try x * (Self.erf(x * 0.707_106_77) + 1) * 0.5
        case .swish: try x * x.sigmoid()
        case .hardSigmoid: try (x / 6 + 0.5).clamped(min: 0, max: 1)
        case .hardSwish: try x * (x / 6 + 0.5).clamped(min: 0, max: 1)
        }
    }

    private static func exponentialLinear(_ x: Tensor, alpha: Float = 1) throws -> Tensor {
        let positive = try x.greater(than: Tensor.zeros([1], on: x.device))
        return try Tensor.where(positive, x, (x.clamped(min: -80, max: 0).exp() - 1) * alpha)
    }

    /// erf(z) by Abramowitz and Stegun 7.1.26 (error below 1.5e-7), from differentiable ops.
    private static func erf(_ z: Tensor) throws -> Tensor {
        let t = try 1 / (z.abs() * 0.327_591_1 + 1)
        var poly = try t * 1.061_405_43 - 1.453_152_03
        for c: Float in [1.421_413_74, -0.284_496_74, 0.254_829_59] { poly = try poly * t + c }
        return try z.sign() * (1 - poly * t * (-z.square()).exp())
    }
}

/// Applies an activation function.
public final class Activation: Layer {
    override public var propagatesMask: Bool { true }
    public let function: ActivationFunction
    public init(_ function: ActivationFunction, name: String? = nil) {
        self.function = function
        super.init(name: name, kind: "activation")
    }
    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { try function(inputs[0]) }
}

/// Keras's `ReLU`: `maxValue` caps it (6 for MobileNet's ReLU6), inputs below `threshold` give
/// `negativeSlope · (x − threshold)`.
public final class ReLU: Layer {
    override public var propagatesMask: Bool { true }
    public let maxValue: Float?, negativeSlope: Float, threshold: Float

    public init(maxValue: Float? = nil, negativeSlope: Float = 0, threshold: Float = 0, name: String? = nil) {
        (self.maxValue, self.negativeSlope, self.threshold) = (maxValue, negativeSlope, threshold)
        super.init(name: name, kind: "re_lu")
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        guard negativeSlope != 0 || threshold != 0 else {
            return try maxValue.map { try x.clamped(min: 0, max: $0) } ?? x.relu()
        }
        let above = try x.greater(than: Tensor.full(threshold, shape: [1], on: x.device))
        let capped = try maxValue.map { try x.clamped(min: -.greatestFiniteMagnitude, max: $0) } ?? x
        return try Tensor.where(above, capped, (x - threshold) * negativeSlope)
    }
}

/// Keras's `Rescaling`: `x · scale + offset` (÷255 inside a model, or [-1, 1] with offset −1).
public final class Rescaling: Layer {
    override public var propagatesMask: Bool { true }
    public let scale: Float, offset: Float

    public init(scale: Float, offset: Float = 0, name: String? = nil) {
        (self.scale, self.offset) = (scale, offset)
        super.init(name: name, kind: "rescaling")
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { try inputs[0] * scale + offset }
}

public final class LeakyReLU: Layer {
    override public var propagatesMask: Bool { true }
    public let negativeSlope: Float
    /// Keras 3's default slope is 0.3.
    public init(negativeSlope: Float = 0.3, name: String? = nil) {
        self.negativeSlope = negativeSlope
        super.init(name: name, kind: "leaky_re_lu")
    }
    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { try inputs[0].leakyRelu(negativeSlope: negativeSlope) }
}

/// Softmax along the last axis.
public final class Softmax: Layer {
    override public var propagatesMask: Bool { true }
    public init(name: String? = nil) { super.init(name: name, kind: "softmax") }
    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { try inputs[0].softmax() }
}
