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
/// outputs are put back in time order first, as Keras does. With `returnState` the forward layer's
/// final states follow the output, then the backward one's.
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

    /// Takes the sequences, optionally followed by the forward layer's initial state and then the
    /// backward one's (Keras's `initial_state`, split in halves).
    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        let (forwards, backwards) = try split(inputShapes)
        let shape = try forwardLayer.built(for: forwards)
        _ = try backwardLayer.built(for: backwards)
        for layer in sublayers { layer.scope = scope + [name] }
        return mergeMode == .concat ? shape.dropLast() + [2 * shape.last!] : shape
    }

    override func serves(_ inputShapes: [[Int]], builtFor existing: [[Int]]) throws -> Bool {
        let (forwards, backwards) = try split(inputShapes), built = try split(existing)
        return try forwardLayer.serves(forwards, builtFor: built.forwards) && backwardLayer.serves(backwards, builtFor: built.backwards)
    }

    /// Each direction's inputs: the sequences and its half of the states.
    private func split<T>(_ inputs: [T]) throws -> (forwards: [T], backwards: [T]) {
        guard let sequences = inputs.first else { throw shapeError("takes sequences [time, features], got no input") }
        let states = inputs.dropFirst(), half = states.count / 2
        guard states.isEmpty || states.count == 2 * forwardLayer.stateCount else {
            throw shapeError("an initial state is \(2 * forwardLayer.stateCount) tensors (the forward layer's state, then the backward one's) after the sequences, got \(states.count)")
        }
        return ([sequences] + states.prefix(half), [sequences] + states.suffix(half))
    }

    /// With `returnState`: the forward layer's final states, then the backward one's (as Keras).
    override public var extraOutputShapes: [[Int]] { forwardLayer.extraOutputShapes + backwardLayer.extraOutputShapes }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try forward(inputs, training: training, mask: nil)
    }

    override public func forward(_ inputs: [Tensor], training: Bool, mask: Tensor?) throws -> Tensor {
        try forwardAll(inputs, training: training, mask: mask)[0]
    }

    override public func forwardAll(_ inputs: [Tensor], training: Bool, mask: Tensor?) throws -> [Tensor] {
        let (forwardInputs, backwardInputs) = try split(inputs)
        let forwards = try forwardLayer.forwardAll(forwardInputs, training: training, mask: mask)
        let backwards = try backwardLayer.forwardAll(backwardInputs, training: training, mask: mask)
        let a = forwards[0]
        var b = backwards[0]
        if backwardLayer.returnSequences { b = try b.gathered(Array((0..<b.shape[1]).reversed()), axis: 1) }
        let merged: Tensor
        switch mergeMode {
        case .concat: merged = try Tensor.concatenate([a, b], axis: -1)
        case .sum: merged = try a + b
        case .ave: merged = try (a + b) * 0.5
        case .mul: merged = try a * b
        }
        return [merged] + forwards.dropFirst() + backwards.dropFirst()
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
