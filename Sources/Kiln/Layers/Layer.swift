/// A named weight of a layer. Its value exists once the model is placed on a device.
public final class Weight {
    /// Keras's name within the layer: `kernel`, `bias`, `gamma`, `beta`, `moving_mean`, `moving_variance`.
    public let name: String
    public let shape: [Int]
    /// False for state the optimizer never touches (batch-norm moving statistics).
    public let isVariable: Bool
    let initializer: Initializer
    let regularizer: Regularizer?
    public internal(set) var value: Tensor!
    unowned let layer: Layer

    init(layer: Layer, name: String, shape: [Int], initializer: Initializer, isVariable: Bool, regularizer: Regularizer?) {
        (self.layer, self.name, self.shape, self.initializer, self.isVariable, self.regularizer) =
            (layer, name, shape, initializer, isVariable, regularizer)
    }

    /// `layer/name`, behind the names of the models the layer is nested in (`generator/dense/kernel`):
    /// unique within a model, also when nested models name their layers alike.
    public var path: String { (layer.scope + [layer.name, name]).joined(separator: "/") }
    public var count: Int { shape.reduce(1, *) }
    /// Receives gradients and optimizer updates: a variable of a trainable layer.
    public var isTrainable: Bool { isVariable && layer.trainable }

    /// Replaces the values (same shape), e.g. from a checkpoint or imported model.
    public func assign(_ values: [Float]) throws {
        guard values.count == count else {
            throw TensorError.shape("\(path): \(values.count) values for shape \(shape) (\(count) elements)")
        }
        try values.withUnsafeBytes { try value.device.write($0, to: value.buffer, offset: 0) }
    }
}

/// A Keras-style layer. Subclasses declare weights in `build` and compute in `forward`.
/// Shapes given to and returned by `build` leave out the batch dimension; images are (H, W, C).
open class Layer {
    public var name: String
    /// The names of the models this layer sits in when they are nested in others, outermost first
    /// (empty for a layer of a top-level model).
    public internal(set) var scope: [String] = []
    /// A frozen layer (false) gets no gradients or updates; batch normalisation then runs in
    /// inference mode, as in Keras.
    public var trainable = true {
        didSet {
            for weight in weights { weight.value?.requiresGrad = weight.isTrainable }
            for layer in sublayers { layer.trainable = trainable }
        }
    }
    /// Layers this one runs inside itself (`Bidirectional`'s two directions, `TimeDistributed`'s
    /// layer): they hold the weights, and models see them as leaves.
    open var sublayers: [Layer] { [] }
    /// This layer's weights and those of its sublayers.
    var allWeights: [Weight] { weights + sublayers.flatMap(\.allWeights) }
    public private(set) var weights: [Weight] = []
    /// The loss terms `addLoss` recorded during this layer's latest forward pass.
    public internal(set) var addedLosses: [Tensor] = []

    /// Adds a one-element loss term from inside `forward` (a VAE's KL divergence, an activity
    /// penalty), as Keras's `add_loss`: `fit` minimises it with the compiled loss, and `evaluate`
    /// reports it in the total. Each model run starts with none.
    public func addLoss(_ loss: Tensor) throws {
        guard loss.count == 1, loss.dtype == .float32 else { throw shapeError("addLoss takes a one-element float tensor, got shape \(loss.shape)") }
        addedLosses.append(loss)
    }

    /// The input shapes the layer was built for.
    public private(set) var inputShapes: [[Int]]?
    public private(set) var outputShape: [Int]?

    public init(name: String?, kind: String) {
        self.name = name.map(LayerNames.reserve) ?? LayerNames.next(kind)
    }

    /// Keras's class name, shown by `summary()`.
    open var typeName: String { String(describing: type(of: self)) }

    /// Declares the weights for these input shapes and returns the output shape.
    open func build(_ inputShapes: [[Int]]) throws -> [Int] { try single(inputShapes) }

    /// Computes the output from a batch (`inputs[i].shape = [batch] + inputShapes[i]`).
    open func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        throw TensorError.shape("layer '\(name)' (\(typeName)) does not implement forward(_:training:)")
    }

    /// `forward` given the mask of the first input (`[batch, time]`, 0 at padded steps, from
    /// `Embedding(maskZero:)` or `Masking`); layers that use it (recurrent ones) override this.
    open func forward(_ inputs: [Tensor], training: Bool, mask: Tensor?) throws -> Tensor {
        try forward(inputs, training: training)
    }

    /// The shapes of the outputs after the first, once built: a recurrent layer's returned states.
    open var extraOutputShapes: [[Int]] { [] }

    /// Every output: `forward`'s, then those of `extraOutputShapes` (layers that have some override this).
    open func forwardAll(_ inputs: [Tensor], training: Bool, mask: Tensor?) throws -> [Tensor] {
        [try forward(inputs, training: training, mask: mask)]
    }

    /// The mask of this layer's output, from its inputs and their mask: the input's mask for layers
    /// that keep the time axis (`propagatesMask`), none otherwise, as in Keras.
    open func outputMask(_ inputs: [Tensor], mask: Tensor?) throws -> Tensor? { propagatesMask ? mask : nil }

    /// Whether the output keeps the input's steps, so that its mask still applies (Keras's `supports_masking`).
    open var propagatesMask: Bool { false }

    /// Builds once; a second call must bring the same shapes.
    func built(for inputShapes: [[Int]]) throws -> [Int] {
        if let existing = self.inputShapes, let outputShape {
            guard try serves(inputShapes, builtFor: existing) else {
                throw TensorError.shape("layer '\(name)' (\(typeName)) was built for input \(existing), got \(inputShapes)")
            }
            return outputShape
        }
        for shape in inputShapes where !Self.isValid(shape) {
            throw shapeError("input shape \(shape) is not a fixed size (each dimension 1…2^31, \(Self.maxElements) elements at most)")
        }
        let output = try build(inputShapes)
        if let weight = weights.first(where: { !Self.isValid($0.shape) }) {
            throw shapeError("weight '\(weight.name)' would have shape \(weight.shape); check the layer's sizes")
        }
        guard Self.isValid(output) else { throw shapeError("output shape \(output) is not a valid size; check the layer's sizes") }
        (self.inputShapes, self.outputShape) = (inputShapes, output)
        return output
    }

    /// Whether the layer, built for `existing` input shapes, takes `inputShapes` too: the same ones
    /// (a recurrent layer's initial state may come and go).
    func serves(_ inputShapes: [[Int]], builtFor existing: [[Int]]) throws -> Bool { inputShapes == existing }

    @discardableResult
    public func addWeight(_ name: String, shape: [Int], initializer: Initializer, isVariable: Bool = true,
                          regularizer: Regularizer? = nil) -> Weight {
        let weight = Weight(layer: self, name: name, shape: shape, initializer: initializer, isVariable: isVariable, regularizer: regularizer)
        weights.append(weight)
        return weight
    }

    /// Whether the weights have values (the layer has been placed on a device).
    public internal(set) var isPlaced = false

    /// Gives every weight a value on `device`, drawn from its initializer.
    func materialize(on device: any Device, random: inout RandomGenerator) throws {
        defer { isPlaced = true }
        for layer in sublayers { try layer.materialize(on: device, random: &random) }
        for weight in weights {
            let values = weight.initializer.values(shape: weight.shape, random: &random)
            let tensor = try Tensor(values, shape: weight.shape, on: device)
            tensor.requiresGrad = weight.isTrainable
            weight.value = tensor
        }
    }

    /// Layer shapes (from files as much as from code) stay where their arithmetic cannot overflow.
    static let maxElements = 1 << 40
    static func isValid(_ shape: [Int]) -> Bool {
        shape.allSatisfy { $0 > 0 && $0 <= 1 << 31 } && (Memory.count(shape) ?? .max) <= maxElements
    }

    /// Throws unless the weights exist: `forward` of a layer that was never built and placed.
    public func requirePlaced() throws {
        guard isPlaced else {
            throw shapeError("has no weights yet: call it on a tensor (`layer(x)`) or place its model (`model.place(on:)`) first")
        }
    }

    /// The one input shape of a single-input layer.
    func single(_ inputShapes: [[Int]]) throws -> [Int] {
        guard inputShapes.count == 1 else { throw TensorError.shape("layer '\(name)' (\(typeName)) takes one input, got \(inputShapes.count)") }
        return inputShapes[0]
    }

    /// A shape error that names this layer.
    func shapeError(_ message: String) -> TensorError { .shape("layer '\(name)' (\(typeName)): \(message)") }

    /// Forgets the gradients `backward()` accumulated in this layer's weights.
    public func zeroGrad() { for weight in allWeights { weight.value?.zeroGrad() } }

    /// Rows `summary()` lists under this layer's own (the nodes of an imported graph); none by default.
    open var summaryRows: [SummaryRow] { [] }

    public var parameterCount: Int { allWeights.reduce(0) { $0 + $1.count } }
    public var trainableParameterCount: Int { allWeights.filter(\.isTrainable).reduce(0) { $0 + $1.count } }
}

/// A line of a model summary: a name, a type, a per-sample shape and a parameter count.
public struct SummaryRow {
    public var name: String, type: String, shape: [Int], parameters: Int
    public init(name: String, type: String, shape: [Int], parameters: Int) {
        (self.name, self.type, self.shape, self.parameters) = (name, type, shape, parameters)
    }
}

/// Keras-style automatic names, `conv2d`, `conv2d_1`, …, skipping every name already given out
/// (including explicit ones, e.g. from a loaded model), so a new head never collides with its base.
enum LayerNames {
    private static let lock = Lock()
    nonisolated(unsafe) private static var counts: [String: Int] = [:]
    nonisolated(unsafe) private static var used: Set<String> = []

    static func next(_ kind: String) -> String {
        lock.withLock {
            while true {
                let n = counts[kind, default: 0]
                counts[kind] = n + 1
                let name = n == 0 ? kind : "\(kind)_\(n)"
                if used.insert(name).inserted { return name }
            }
        }
    }

    static func reserve(_ name: String) -> String {
        _ = lock.withLock { used.insert(name) }
        return name
    }
}

/// A free-standing trainable tensor (PyTorch's `nn.Parameter`, a Keras `Variable`): any optimizer
/// updates it through `weight`, e.g. `optimizer.apply(to: [scale.weight])`.
public final class Parameter: Layer {
    public private(set) var weight: Weight!

    /// A parameter starting from a copy of `initial`, on its device.
    public init(_ initial: Tensor, name: String? = nil) throws {
        guard initial.dtype == .float32 else { throw TensorError.dtype("a Parameter holds float32 values, got \(initial.dtype)") }
        super.init(name: name, kind: "parameter")
        weight = addWeight("value", shape: initial.shape, initializer: .zeros)
        let value = try initial.copy()
        value.requiresGrad = true
        weight.value = value
        isPlaced = true
    }

    /// The current value, to compute with.
    public var value: Tensor { weight.value }
}
