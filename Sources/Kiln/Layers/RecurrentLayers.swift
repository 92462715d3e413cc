/// What `SimpleRNN`, `LSTM` and `GRU` share: Keras 3's arguments, defaults and weight layouts
/// (`kernel` `[features, width]`, `recurrent_kernel` `[units, width]`, `bias`), over inputs
/// `[batch, time, features]`. The pass is one fused op (`Tensor.recurrentStates`).
public class RecurrentLayer: Layer {
    public let units: Int
    /// `tanh` (Keras's default) or `relu`.
    public let activation: ActivationFunction
    public let useBias: Bool
    /// The output at every step (`[batch, time, units]`), else the last one (`[batch, units]`).
    public let returnSequences: Bool
    /// Also returns the final state (`h`, and an LSTM's `c`) as further outputs (`outputs(of:)`), as
    /// Keras's `return_state`: an encoder's state starts a decoder (`LSTM(64)([y, h, c])`).
    public let returnState: Bool
    /// Runs over the steps last to first (and, with `returnSequences`, returns them in that order), as Keras.
    public let goBackwards: Bool
    /// Each batch starts from the state the previous batch ended in (sample i continuing sample i)
    /// until `resetStates()`.
    public let stateful: Bool
    /// The fraction of input features dropped during training, with one mask per sequence (Keras).
    public let dropout: Float
    /// The fraction of the state's units dropped from the recurrent projection during training: one
    /// mask per sequence for every step and gate (variational dropout, Gal and Ghahramani).
    public let recurrentDropout: Float
    let cell: RecurrentStep.Cell
    let kernelInitializer: Initializer, recurrentInitializer: Initializer, biasInitializer: Initializer
    private(set) var kernel: Weight!, recurrentKernel: Weight!, bias: Weight?
    /// The state the next batch starts from when `stateful`.
    private var carried: (hidden: Tensor, cell: Tensor?)?
    /// The input dropout masks' Philox stream, as `Dropout`'s.
    private var seed: UInt64 = 0, offset: UInt64 = 0

    init(cell: RecurrentStep.Cell, units: Int, activation: ActivationFunction, useBias: Bool, returnSequences: Bool, returnState: Bool,
         goBackwards: Bool, stateful: Bool, dropout: Float, recurrentDropout: Float, kernelInitializer: Initializer,
         recurrentInitializer: Initializer, biasInitializer: Initializer, name: String?, kind: String) {
        (self.cell, self.units, self.activation, self.useBias, self.returnSequences) = (cell, units, activation, useBias, returnSequences)
        self.returnState = returnState
        (self.goBackwards, self.stateful, self.dropout, self.recurrentDropout) = (goBackwards, stateful, dropout, recurrentDropout)
        (self.kernelInitializer, self.recurrentInitializer, self.biasInitializer) = (kernelInitializer, recurrentInitializer, biasInitializer)
        super.init(name: name, kind: kind)
    }

    var width: Int { RecurrentStep(cell: cell, batch: 1, units: units, time: 0, length: 1).width }
    /// Keras's bias shape: `[width]`, or `[2, width]` for a GRU's separate input and recurrent biases.
    var biasShape: [Int] { [width] }

    /// The number of state tensors: 2 for an LSTM (`h`, `c`), else 1.
    var stateCount: Int { cell == .lstm ? 2 : 1 }

    /// Takes the sequences `[time, features]`, optionally followed by an initial state (`stateCount`
    /// tensors `[units]`, Keras's `initial_state`).
    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        guard let input = inputShapes.first else { throw shapeError("takes sequences [time, features], got no input") }
        try checkInitialState(inputShapes)
        guard input.count == 2, units > 0 else { throw shapeError("takes sequences [time, features] and units > 0, got \(input) and \(units) units") }
        guard activation == .tanh || activation == .relu else { throw shapeError("activation must be tanh or relu, got \(activation.kerasName)") }
        guard (0..<1).contains(dropout), (0..<1).contains(recurrentDropout) else {
            throw shapeError("dropout and recurrentDropout must be in [0, 1), got \(dropout) and \(recurrentDropout)")
        }
        kernel = addWeight("kernel", shape: [input[1], width], initializer: kernelInitializer)
        recurrentKernel = addWeight("recurrent_kernel", shape: [units, width], initializer: recurrentInitializer)
        if useBias { bias = addWeight("bias", shape: biasShape, initializer: biasInitializer) }
        return returnSequences ? [input[0], units] : [units]
    }

    /// Built for sequences of one shape, the layer takes them with or without an initial state.
    override func serves(_ inputShapes: [[Int]], builtFor existing: [[Int]]) throws -> Bool {
        try checkInitialState(inputShapes)
        return inputShapes.first == existing.first
    }

    private func checkInitialState(_ inputShapes: [[Int]]) throws {
        let states = inputShapes.dropFirst()
        guard states.isEmpty || (states.count == stateCount && states.allSatisfy { $0 == [units] }) else {
            throw shapeError("an initial state is \(stateCount) tensor\(stateCount == 1 ? "" : "s") of shape [\(units)] after the sequences, got \(Array(states))")
        }
    }

    override public var extraOutputShapes: [[Int]] { returnState ? Array(repeating: [units], count: stateCount) : [] }

    override func materialize(on device: any Device, random: inout RandomGenerator) throws {
        seed = random.next()
        try super.materialize(on: device, random: &random)
    }

    /// Forgets the carried state of a `stateful` layer (Keras's `reset_states`).
    public func resetStates() { carried = nil }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try forward(inputs, training: training, mask: nil)
    }

    /// The output at each step keeps the input's mask; the last output has none.
    override public func outputMask(_ inputs: [Tensor], mask: Tensor?) throws -> Tensor? {
        guard returnSequences, let mask else { return nil }
        return goBackwards ? try mask.gathered(Array((0..<mask.shape[1]).reversed()), axis: 1) : mask
    }

    /// Steps where `mask` (`[batch, time]`) is 0 leave the state as it was, as in Keras.
    override public func forward(_ inputs: [Tensor], training: Bool, mask: Tensor?) throws -> Tensor {
        try forwardAll(inputs, training: training, mask: mask)[0]
    }

    /// The output, then with `returnState` the final states (a padded last step's state is the one before it).
    override public func forwardAll(_ inputs: [Tensor], training: Bool, mask: Tensor?) throws -> [Tensor] {
        try requirePlaced()
        var (x, mask) = (inputs[0], mask)
        let (batch, time) = (x.shape[0], x.shape[1])
        if training, dropout > 0 {
            let ones = try Tensor.ones([batch, 1, x.shape[2]], on: x.device)
            defer { offset &+= UInt64(ones.count) }
            x = try x * ones.dropout(rate: dropout, seed: seed, offset: offset)
        }
        if goBackwards {
            x = try x.gathered(Array((0..<time).reversed()), axis: 1)
            mask = try mask?.gathered(Array((0..<time).reversed()), axis: 1)
        }
        if let carried, carried.hidden.shape[0] != batch {
            throw shapeError("a stateful layer needs batches of one size; it carries a state for \(carried.hidden.shape[0]) sequences, got \(batch)")
        }
        var weights = try self.weights()
        if training, recurrentDropout > 0 {
            let ones = try Tensor.ones([batch, units], on: x.device)
            defer { offset &+= UInt64(ones.count) }
            weights.recurrentDropoutMask = try ones.dropout(rate: recurrentDropout, seed: seed, offset: offset)
        }
        let given = inputs.count > 1 ? Array(inputs.dropFirst()) : nil
        let states = try x.recurrentStates(weights, initialHidden: given?[0] ?? (stateful ? carried?.hidden : nil),
                                           initialCell: given.map { cell == .lstm ? $0[1] : nil } ?? (stateful ? carried?.cell : nil), mask: mask)
        let lastCell = cell == .lstm ? time + 1 : nil  // `states`: h0…hT, then an LSTM's cT
        if stateful {
            carried = try GradMode.noGrad { (try states.selected(time).detached(), try lastCell.map { try states.selected($0).detached() }) }
        }
        let output = returnSequences ? try states.sliced(1..<time + 1, axis: 0).permuted([1, 0, 2]) : try states.selected(time)
        guard returnState else { return [output] }
        return [output, try states.selected(time)] + (try lastCell.map { [try states.selected($0)] } ?? [])
    }

    /// A fresh layer of the same kind and arguments (`Bidirectional`'s two directions).
    func copy(name: String, goBackwards: Bool) -> RecurrentLayer {
        switch cell {
        case .simpleRNN:
            SimpleRNN(units, activation: activation, useBias: useBias, returnSequences: returnSequences, returnState: returnState, goBackwards: goBackwards,
                      stateful: stateful, dropout: dropout, recurrentDropout: recurrentDropout, kernelInitializer: kernelInitializer,
                      recurrentInitializer: recurrentInitializer, biasInitializer: biasInitializer, name: name)
        case .lstm:
            LSTM(units, activation: activation, useBias: useBias, returnSequences: returnSequences, returnState: returnState, goBackwards: goBackwards,
                 stateful: stateful, dropout: dropout, recurrentDropout: recurrentDropout, kernelInitializer: kernelInitializer,
                 recurrentInitializer: recurrentInitializer, biasInitializer: biasInitializer, name: name)
        case .gru:
            GRU(units, activation: activation, useBias: useBias, returnSequences: returnSequences, returnState: returnState, goBackwards: goBackwards,
                stateful: stateful, dropout: dropout, recurrentDropout: recurrentDropout, resetAfter: (self as? GRU)?.resetAfter ?? true,
                kernelInitializer: kernelInitializer, recurrentInitializer: recurrentInitializer, biasInitializer: biasInitializer, name: name)
        }
    }

    /// The weights as the fused op takes them.
    func weights() throws -> RecurrentWeights {
        RecurrentWeights(cell: cell, relu: activation == .relu, kernel: kernel.value, recurrentKernel: recurrentKernel.value,
                         bias: bias?.value, recurrentBias: nil)
    }
}

/// Keras's `SimpleRNN`: h = activation(x·W + h·U + b).
public final class SimpleRNN: RecurrentLayer {
    public init(_ units: Int, activation: ActivationFunction = .tanh, useBias: Bool = true, returnSequences: Bool = false, returnState: Bool = false,
                goBackwards: Bool = false, stateful: Bool = false, dropout: Float = 0, recurrentDropout: Float = 0,
                kernelInitializer: Initializer = .glorotUniform, recurrentInitializer: Initializer = .orthogonal(),
                biasInitializer: Initializer = .zeros, name: String? = nil) {
        super.init(cell: .simpleRNN, units: units, activation: activation, useBias: useBias, returnSequences: returnSequences, returnState: returnState,
                   goBackwards: goBackwards, stateful: stateful, dropout: dropout, recurrentDropout: recurrentDropout,
                   kernelInitializer: kernelInitializer,
                   recurrentInitializer: recurrentInitializer, biasInitializer: biasInitializer, name: name, kind: "simple_rnn")
    }
}

/// Keras's `LSTM` (gates i, f, c, o; `unitForgetBias` starts the forget gate's bias at 1).
public final class LSTM: RecurrentLayer {
    public init(_ units: Int, activation: ActivationFunction = .tanh, useBias: Bool = true, returnSequences: Bool = false, returnState: Bool = false,
                goBackwards: Bool = false, stateful: Bool = false, dropout: Float = 0, recurrentDropout: Float = 0, unitForgetBias: Bool = true,
                kernelInitializer: Initializer = .glorotUniform, recurrentInitializer: Initializer = .orthogonal(),
                biasInitializer: Initializer? = nil, name: String? = nil) {
        super.init(cell: .lstm, units: units, activation: activation, useBias: useBias, returnSequences: returnSequences, returnState: returnState,
                   goBackwards: goBackwards, stateful: stateful, dropout: dropout, recurrentDropout: recurrentDropout,
                   kernelInitializer: kernelInitializer,
                   recurrentInitializer: recurrentInitializer,
                   biasInitializer: biasInitializer ?? (unitForgetBias ? .forgetGateOnes(units: units) : .zeros), name: name, kind: "lstm")
    }
}

/// Keras 3's `GRU` (gates z, r, h). With `resetAfter` (Keras 3's default) the reset gate scales the
/// recurrent projection h·U_h + b_h, and the bias `[2, 3·units]` holds the input and recurrent
/// biases; without it (Keras 2's default, ONNX's) the reset gate scales the state before its
/// projection, and the bias is `[3·units]`; that variant runs as tensor ops, not the fused kernel.
public final class GRU: RecurrentLayer {
    public let resetAfter: Bool

    public init(_ units: Int, activation: ActivationFunction = .tanh, useBias: Bool = true, returnSequences: Bool = false, returnState: Bool = false,
                goBackwards: Bool = false, stateful: Bool = false, dropout: Float = 0, recurrentDropout: Float = 0, resetAfter: Bool = true,
                kernelInitializer: Initializer = .glorotUniform, recurrentInitializer: Initializer = .orthogonal(),
                biasInitializer: Initializer = .zeros, name: String? = nil) {
        self.resetAfter = resetAfter
        super.init(cell: .gru, units: units, activation: activation, useBias: useBias, returnSequences: returnSequences, returnState: returnState,
                   goBackwards: goBackwards, stateful: stateful, dropout: dropout, recurrentDropout: recurrentDropout,
                   kernelInitializer: kernelInitializer,
                   recurrentInitializer: recurrentInitializer, biasInitializer: biasInitializer, name: name, kind: "gru")
    }

    override var biasShape: [Int] { resetAfter ? [2, width] : [width] }

    override func weights() throws -> RecurrentWeights {
        var w = try super.weights()
        w.resetAfter = resetAfter
        guard resetAfter else { return w }
        if let bias = bias?.value {
            (w.bias, w.recurrentBias) = (try bias.selected(0), try bias.selected(1))
        } else {
            w.recurrentBias = try Tensor.zeros([width], on: kernel.value.device)
        }
        return w
    }
}
