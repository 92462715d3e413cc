/// What a `Sequential` stack takes: a layer, or a whole model, which then runs as one layer of the
/// outer model (as in Keras, where a model is a layer): `Sequential([generator, discriminator])`.
public protocol LayerConvertible {
    var asLayer: Layer { get }
}

extension Layer: LayerConvertible {
    public var asLayer: Layer { self }
}

extension Model: LayerConvertible {
    /// This model as a layer of another (the same one each time); its weights stay its own (training
    /// the outer model trains them).
    public var asLayer: Layer {
        if let nested = asNested { return nested }
        asNested = NestedModel(self)
        return asNested!
    }

    /// Calls the model on symbolic inputs of an outer functional model.
    public func callAsFunction(_ inputs: [SymbolicTensor]) throws -> SymbolicTensor { try asLayer(inputs) }
    public func callAsFunction(_ input: SymbolicTensor) throws -> SymbolicTensor { try asLayer([input]) }
    public func callAsFunction(_ input: Input) throws -> SymbolicTensor { try asLayer([input.output]) }
}

/// A single-output model inside another. Freezing it (`trainable = false`) freezes all its layers.
public final class NestedModel: Layer {
    public let model: Model

    init(_ model: Model) {
        self.model = model
        super.init(name: model.name, kind: "model")
        isPlaced = model.device != nil
    }

    override public var typeName: String { model is Sequential ? "Sequential" : "Functional" }

    override public var trainable: Bool {
        didSet { for layer in model.layers { layer.trainable = trainable } }
    }

    override public var parameterCount: Int { model.parameterCount }
    override public var trainableParameterCount: Int { model.trainableParameterCount }

    override public func zeroGrad() { model.zeroGrad() }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        guard model.outputs.count == 1, inputShapes == model.inputs.map(\.shape) else {
            throw shapeError("model '\(model.name)' takes \(model.inputs.map(\.shape)) and gives \(model.outputs.count) outputs; "
                             + "it was called on \(inputShapes) (a nested model needs its input shapes and one output)")
        }
        if !scoped {  // once, however often the model is called
            for layer in model.leafLayers { layer.scope.insert(model.name, at: 0) }
            scoped = true
        }
        return model.outputs[0].shape
    }

    private var scoped = false

    override func materialize(on device: any Device, random: inout RandomGenerator) throws {
        try model.place(on: device, seed: random.next())
        isPlaced = true
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try model.run(inputs, training: training, nested: true).outputs[0]
    }
}
