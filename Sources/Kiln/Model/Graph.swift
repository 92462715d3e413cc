/// A placeholder for a batch of tensors in a functional model: the shape of one sample and the
/// layer call that produces it.
public final class SymbolicTensor {
    public let shape: [Int]
    /// Which of the call's outputs this is: 0 but for the states a recurrent layer returns after its output.
    public let index: Int
    let call: LayerCall
    var layer: Layer { call.layer }
    var inputs: [SymbolicTensor] { call.inputs }

    init(shape: [Int], call: LayerCall, index: Int = 0) { (self.shape, self.call, self.index) = (shape, call, index) }

    convenience init(shape: [Int], layer: Layer, inputs: [SymbolicTensor]) {
        self.init(shape: shape, call: LayerCall(layer: layer, inputs: inputs))
    }
}

/// One call of a layer on symbolic inputs, shared by its outputs.
final class LayerCall {
    unowned let layer: Layer
    let inputs: [SymbolicTensor]
    /// Keeps the producing layer alive; an `Input` owns its own symbolic tensor instead.
    private let owner: Layer?

    init(layer: Layer, inputs: [SymbolicTensor]) {
        (self.layer, self.inputs) = (layer, inputs)
        owner = layer is Input ? nil : layer
    }
}

extension Layer {
    /// Calls the layer on symbolic inputs, building it for their shapes (functional API); the first output.
    public func callAsFunction(_ inputs: [SymbolicTensor]) throws -> SymbolicTensor { try outputs(of: inputs)[0] }

    public func callAsFunction(_ input: SymbolicTensor) throws -> SymbolicTensor { try self([input]) }

    /// Every output of a call on symbolic inputs: the output, then (for a recurrent layer with
    /// `returnState`) its final states, as Keras's `output, h, c = LSTM(…, return_state=True)(x)`.
    public func outputs(of inputs: [SymbolicTensor]) throws -> [SymbolicTensor] {
        let first = try built(for: inputs.map(\.shape)), call = LayerCall(layer: self, inputs: inputs)
        return ([first] + extraOutputShapes).enumerated().map { SymbolicTensor(shape: $0.element, call: call, index: $0.offset) }
    }

    /// Runs the layer on batches now (Keras 3's eager call, PyTorch's `module(x)`): the first call
    /// builds it for their sample shapes and places its weights on their device, drawn from the
    /// generator `seed(_:)` sets.
    public func callAsFunction(_ inputs: [Tensor], training: Bool = false) throws -> Tensor {
        try prepareEagerCall(inputs)
        return try forward(inputs, training: training)
    }

    public func callAsFunction(_ input: Tensor, training: Bool = false) throws -> Tensor { try self([input], training: training) }
    public func callAsFunction(_ input: Input) throws -> SymbolicTensor { try self([input.output]) }

    /// Every output of an eager call (the output, then a recurrent layer's returned states).
    public func outputs(of inputs: [Tensor], training: Bool = false) throws -> [Tensor] {
        try prepareEagerCall(inputs)
        return try forwardAll(inputs, training: training, mask: nil)
    }

    private func prepareEagerCall(_ inputs: [Tensor]) throws {
        guard let device = inputs.first?.device else { throw shapeError("called on no tensors") }
        _ = try built(for: inputs.map { Array($0.shape.dropFirst()) })
        if !isPlaced { try RandomGenerator.shared.withLock { try materialize(on: device, random: &$0) } }
        if let weight = weights.first, weight.value.device !== device {
            throw TensorError.device("layer '\(name)' lives on \(weight.value.device.info.name), its input on \(device.info.name); move it with to(_:)")
        }
    }
}
