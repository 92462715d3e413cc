/// A model's input: the shape of one sample, without the batch dimension (images: H, W, C).
public final class Input: Layer {
    public let shape: [Int]
    /// The symbolic tensor that functional models start from.
    public private(set) var output: SymbolicTensor!

    public init(shape: [Int], name: String? = nil) {
        self.shape = shape
        super.init(name: name, kind: "input_layer")
        output = SymbolicTensor(shape: shape, layer: self, inputs: [])
    }

    override public var typeName: String { "InputLayer" }
    override public func build(_ inputShapes: [[Int]]) throws -> [Int] { shape }
    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { inputs[0] }
}

/// `activation(x · kernel + bias)` along the last axis; kernel shape (in, units).
public final class Dense: Layer {
    override public var propagatesMask: Bool { true }
    public let units: Int
    public let activation: ActivationFunction
    public let useBias: Bool
    let kernelInitializer: Initializer, biasInitializer: Initializer
    let kernelRegularizer: Regularizer?
    private var kernel: Weight!, bias: Weight?

    public init(_ units: Int, activation: ActivationFunction = .linear, useBias: Bool = true,
                kernelInitializer: Initializer = .glorotUniform, biasInitializer: Initializer = .zeros,
                kernelRegularizer: Regularizer? = nil, name: String? = nil) {
        (self.units, self.activation, self.useBias) = (units, activation, useBias)
        (self.kernelInitializer, self.biasInitializer, self.kernelRegularizer) = (kernelInitializer, biasInitializer, kernelRegularizer)
        super.init(name: name, kind: "dense")
    }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        let input = try single(inputShapes)
        guard let features = input.last, units > 0 else { throw shapeError("needs an input with at least one axis and units > 0, got \(input)") }
        kernel = addWeight("kernel", shape: [features, units], initializer: kernelInitializer, regularizer: kernelRegularizer)
        if useBias { bias = addWeight("bias", shape: [units], initializer: biasInitializer) }
        return input.dropLast() + [units]
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try requirePlaced()
        let x = inputs[0]
        let flat = try x.reshaped([x.count / x.shape.last!, x.shape.last!])
        var y = try flat.matmul(kernel.value)
        if let bias { y = try y.addingBias(bias.value) }
        return try activation(y.reshaped(x.shape.dropLast() + [units]))
    }
}

/// Flattens each sample (in H, W, C order, as Keras).
public final class Flatten: Layer {
    public init(name: String? = nil) { super.init(name: name, kind: "flatten") }
    override public func build(_ inputShapes: [[Int]]) throws -> [Int] { [try single(inputShapes).reduce(1, *)] }
    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { try inputs[0].reshaped([inputs[0].shape[0], -1]) }
}

/// Gives each sample a new shape with the same number of elements (one dimension may be -1).
public final class Reshape: Layer {
    public let targetShape: [Int]
    public init(_ targetShape: [Int], name: String? = nil) {
        self.targetShape = targetShape
        super.init(name: name, kind: "reshape")
    }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        let count = try single(inputShapes).reduce(1, *)
        var shape = targetShape
        if let unknown = shape.firstIndex(of: -1) {
            guard let known = Memory.count(shape.filter { $0 != -1 }), known > 0, count % known == 0 else { throw shapeError("cannot reshape \(inputShapes[0]) to \(targetShape)") }
            shape[unknown] = count / known
        }
        guard shape.allSatisfy({ $0 > 0 }), Memory.count(shape) == count else {
            throw shapeError("cannot reshape \(inputShapes[0]) (\(count) elements) to \(targetShape)")
        }
        return shape
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try inputs[0].reshaped([inputs[0].shape[0]] + outputShape!)
    }
}

/// Reorders the axes of each sample, as Keras: `dims` are 1-based input axes, so `Permute([3, 1, 2])`
/// turns (H, W, C) images into (C, H, W).
public final class Permute: Layer {
    public let dims: [Int]
    public init(_ dims: [Int], name: String? = nil) {
        self.dims = dims
        super.init(name: name, kind: "permute")
    }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        let input = try single(inputShapes)
        guard dims.sorted() == Array(1...max(input.count, 1)), dims.count == input.count else {
            throw shapeError("dims \(dims) are not a permutation of 1…\(input.count) for input \(input)")
        }
        return dims.map { input[$0 - 1] }
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try inputs[0].permuted([0] + dims)
    }
}
