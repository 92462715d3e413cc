/// A placeholder for a batch of tensors in a functional model: the shape of one sample and the
/// layer call that produces it.
public final class SymbolicTensor {
    public let shape: [Int]
    unowned let layer: Layer
    let inputs: [SymbolicTensor]
    /// Keeps the producing layer alive; an `Input` owns its own symbolic tensor instead.
    private let owner: Layer?

    init(shape: [Int], layer: Layer, inputs: [SymbolicTensor]) {
        (self.shape, self.layer, self.inputs) = (shape, layer, inputs)
        owner = layer is Input ? nil : layer
    }
}

extension Layer {
    /// Calls the layer on symbolic inputs, building it for their shapes (functional API).
    public func callAsFunction(_ inputs: [SymbolicTensor]) throws -> SymbolicTensor {
        SymbolicTensor(shape: try built(for: inputs.map(\.shape)), layer: self, inputs: inputs)
    }

    public func callAsFunction(_ input: SymbolicTensor) throws -> SymbolicTensor { try self([input]) }

    /// Runs the layer on batches now (Keras 3's eager call, PyTorch's `module(x)`): the first call
    /// builds it for their sample shapes and places its weights on their device, drawn from the
    /// generator `seed(_:)` sets.
    public func callAsFunction(_ inputs: [Tensor], training: Bool = false) throws -> Tensor {
        guard let device = inputs.first?.device else { throw shapeError("called on no tensors") }
        _ = try built(for: inputs.map { Array($0.shape.dropFirst()) })
        if !isPlaced { try RandomGenerator.shared.withLock { try materialize(on: device, random: &$0) } }
        if let weight = weights.first, weight.value.device !== device {
            throw TensorError.device("layer '\(name)' lives on \(weight.value.device.info.name), its input on \(device.info.name); move it with to(_:)")
        }
        return try forward(inputs, training: training)
    }

    public func callAsFunction(_ input: Tensor, training: Bool = false) throws -> Tensor { try self([input], training: training) }
    public func callAsFunction(_ input: Input) throws -> SymbolicTensor { try self([input.output]) }
}
