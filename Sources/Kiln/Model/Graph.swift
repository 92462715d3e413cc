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
    public func callAsFunction(_ input: Input) throws -> SymbolicTensor { try self([input.output]) }
}
