/// Keras's `Masking`: steps whose features all equal `maskValue` are padding; they become zeros and
/// carry a mask that recurrent layers after it honour (their state does not change there).
public final class Masking: Layer {
    public let maskValue: Float

    public init(maskValue: Float = 0, name: String? = nil) {
        self.maskValue = maskValue
        super.init(name: name, kind: "masking")
    }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        let input = try single(inputShapes)
        guard input.count >= 2 else { throw shapeError("takes sequences [time, features], got \(input)") }
        return input
    }

    override public func outputMask(_ inputs: [Tensor], mask: Tensor?) throws -> Tensor? {
        let x = inputs[0]
        return try GradMode.noGrad {
            let differs = try (x - maskValue).abs().reshaped([x.shape[0], x.shape[1], -1]).reduce(.max, axis: 2)
            return try differs.greater(than: Tensor.zeros([1], on: x.device))
        }
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        let keep = try outputMask(inputs, mask: nil)!
        return try x * keep.reshaped([x.shape[0], x.shape[1]] + [Int](repeating: 1, count: x.rank - 2))
    }
}

/// Keras's `Bidirectional`: a recurrent layer run forwards (`forward_<name>`) and backwards
/// (`backward_<name>`) over the sequence, their outputs merged; with `returnSequences` the backward
/// outputs are put back in time order first, as Keras does.
public final class Bidirectional: Layer {
    public enum MergeMode: String, Sendable { case concat, sum, ave, mul }
    public let mergeMode: MergeMode
    public let forwardLayer: RecurrentLayer, backwardLayer: RecurrentLayer

    public init(_ layer: RecurrentLayer, mergeMode: MergeMode = .concat, name: String? = nil) {
        self.mergeMode = mergeMode
        forwardLayer = layer.copy(name: "forward_" + layer.name, goBackwards: layer.goBackwards)
        backwardLayer = layer.copy(name: "backward_" + layer.name, goBackwards: !layer.goBackwards)
        super.init(name: name, kind: "bidirectional")
    }

    override public var sublayers: [Layer] { [forwardLayer, backwardLayer] }
    override public var propagatesMask: Bool { forwardLayer.returnSequences }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        guard !forwardLayer.returnState else { throw shapeError("a wrapped layer with returnState is not supported yet") }
        let shape = try forwardLayer.built(for: [try single(inputShapes)])
        _ = try backwardLayer.built(for: inputShapes)
        for layer in sublayers { layer.scope = scope + [name] }
        return mergeMode == .concat ? shape.dropLast() + [2 * shape.last!] : shape
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try forward(inputs, training: training, mask: nil)
    }

    override public func forward(_ inputs: [Tensor], training: Bool, mask: Tensor?) throws -> Tensor {
        let forwards = try forwardLayer.forward(inputs, training: training, mask: mask)
        var backwards = try backwardLayer.forward(inputs, training: training, mask: mask)
        if backwardLayer.returnSequences { backwards = try backwards.gathered(Array((0..<backwards.shape[1]).reversed()), axis: 1) }
        switch mergeMode {
        case .concat: return try Tensor.concatenate([forwards, backwards], axis: -1)
        case .sum: return try forwards + backwards
        case .ave: return try (forwards + backwards) * 0.5
        case .mul: return try forwards * backwards
        }
    }
}

/// Keras's `TimeDistributed`: the same layer (and weights) applied to every step of `[batch, time, …]`.
public final class TimeDistributed: Layer {
    public let layer: Layer

    public init(_ layer: Layer, name: String? = nil) {
        self.layer = layer
        super.init(name: name, kind: "time_distributed")
    }

    override public var sublayers: [Layer] { [layer] }
    override public var propagatesMask: Bool { true }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        let input = try single(inputShapes)
        guard input.count >= 2 else { throw shapeError("takes sequences [time, …], got \(input)") }
        layer.scope = scope + [name]
        return [input[0]] + (try layer.built(for: [Array(input.dropFirst())]))
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0], (batch, time) = (x.shape[0], x.shape[1])
        let steps = try layer.forward([try x.reshaped([batch * time] + x.shape.dropFirst(2))], training: training)
        return try steps.reshaped([batch, time] + steps.shape.dropFirst())
    }
}
