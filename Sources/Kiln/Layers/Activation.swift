/// Activation functions by Keras name, for `activation:` arguments and the `Activation` layer.
public enum ActivationFunction: Hashable, Sendable {
    case linear, relu, sigmoid, tanh, softmax, softplus
    case leakyRelu(negativeSlope: Float)

    /// `relu`, `sigmoid`, `tanh`, `softmax`, `softplus`, `linear`, `leaky_relu`.
    public init?(kerasName: String) {
        switch kerasName.lowercased() {
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
        }
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

public final class ReLU: Layer {
    override public var propagatesMask: Bool { true }
    public init(name: String? = nil) { super.init(name: name, kind: "re_lu") }
    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { try inputs[0].relu() }
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
