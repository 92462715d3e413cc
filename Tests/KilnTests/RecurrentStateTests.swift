import Foundation
import Testing
@testable import Kiln

/// Recurrent layers that return their final state (`returnState`) and start from a given one
/// (Keras's `initial_state`): continuing a sequence, gradients, functional models and files.
@Suite("Returned and initial recurrent states") struct RecurrentStateTests {
    static let cells: [RecurrentStep.Cell] = [.simpleRNN, .lstm, .gru]

    static func layer(_ cell: RecurrentStep.Cell, returnSequences: Bool = false, returnState: Bool = false) -> RecurrentLayer {
        switch cell {
        case .simpleRNN: SimpleRNN(4, returnSequences: returnSequences, returnState: returnState)
        case .lstm: LSTM(4, returnSequences: returnSequences, returnState: returnState)
        case .gru: GRU(4, returnSequences: returnSequences, returnState: returnState)
        }
    }

    /// Running 7 steps in one go equals running 4, then the last 3 from the state the first part returned.
    @Test(arguments: Backend.all, cells)
    func theReturnedStateContinuesTheSequence(_ backend: Backend, _ cell: RecurrentStep.Cell) throws {
        let d = backend.device
        var random = Random("continue-\(cell)")
        let x = try Tensor(random.floats(2 * 7 * 3), shape: [2, 7, 3], on: d)
        let whole = Self.layer(cell, returnState: true), head = Self.layer(cell, returnSequences: true, returnState: true), tail = Self.layer(cell)
        let all = try whole.outputs(of: [x])
        #expect(all.count == (cell == .lstm ? 3 : 2) && all.dropFirst().allSatisfy { $0.shape == [2, 4] })
        #expect(try all[0].toArray() == all[1].toArray(), "without returnSequences the output is the final hidden state")
        let (early, late) = (try x.sliced(0..<4, axis: 1), try x.sliced(4..<7, axis: 1))
        _ = try (head(early), tail(late))  // built and placed (without a state), then given the weights of `whole`
        for part in [head, tail] { for (weight, source) in zip(part.weights, whole.weights) { try weight.assign(try source.value.toArray()) } }
        let first = try head.outputs(of: [early])
        #expect(try first[0].selected(3, axis: 1).toArray() == first[1].toArray(), "the returned h is the last step's output")
        let rest = try tail([late] + first.dropFirst())
        expectClose(try rest.toArray(), try all[0].toArray().map(Double.init), "\(cell) continued from its state on \(backend)", tolerance: 1e-5)
        if cell == .lstm {
            #expect(try first[2].toArray() != first[1].toArray(), "an LSTM returns its cell state after h")
        }
        #expect(throws: TensorError.self) { try Self.layer(cell)([x, try Tensor.zeros([2, 5], on: d)]) }
        #expect(throws: TensorError.self) { try tail([late, try Tensor.zeros([2, 5], on: d)]) }  // built, then a wrong state
    }

    /// The gradients reach the initial state, and flow back from the returned cell state.
    @Test(arguments: Backend.all, cells)
    func gradientsOfTheStates(_ backend: Backend, _ cell: RecurrentStep.Cell) throws {
        let d = backend.device
        var random = Random("state-gradients-\(cell)")
        let x = try Tensor(random.floats(2 * 5 * 3), shape: [2, 5, 3], on: d)
        let layer = Self.layer(cell, returnSequences: true, returnState: true)
        let count = cell == .lstm ? 2 : 1
        let initial = (0..<count).map { _ in random.floats(2 * 4) }
        let outputWeights = try [[2, 5, 4], [2, 4], [2, 4]].prefix(count + 1).map { try Tensor(random.floats($0.reduce(1, *)), shape: $0, on: d) }
        func loss(_ states: [Tensor]) throws -> Tensor {
            let outputs = try layer.outputs(of: [x] + states)
            return try zip(outputs, outputWeights).map { try ($0 * $1).sum() }.reduce(Tensor.zeros([], on: d)) { try $0 + $1 }
        }
        let states = try initial.map { try Tensor($0, shape: [2, 4], on: d) }
        for state in states { state.requiresGrad = true }
        try loss(states).backward()
        for index in 0..<count {
            try expectGradient(at: initial[index], gradient: try states[index].grad!.toArray(), "\(cell) initial state \(index) on \(backend)") { values in
                var given = try initial.map { try Tensor($0, shape: [2, 4], on: d) }
                given[index] = try Tensor(values, shape: [2, 4], on: d)
                return Double(try loss(given).item())
            }
        }
    }

    /// An encoder's state starts a decoder in a functional model, which saves and reloads (checkpoint
    /// and Keras JSON), and whose summary lists both.
    @Test(arguments: Backend.all)
    func aSequenceToSequenceModel(_ backend: Backend) throws {
        let d = backend.device
        let source = Input(shape: [6, 3]), target = Input(shape: [4, 2])
        let encoded = try LSTM(5, returnState: true, name: "encoder").outputs(of: [source.output])
        let decoded = try LSTM(5, returnSequences: true, name: "decoder")([target.output] + encoded.dropFirst())
        let model = try Model(inputs: [source, target], outputs: [try Dense(2, name: "next")(decoded)], name: "seq2seq")
        try model.place(on: d, seed: 3)
        var random = Random("seq2seq")
        let batch = [try Tensor(random.floats(2 * 6 * 3), shape: [2, 6, 3], on: d), try Tensor(random.floats(2 * 4 * 2), shape: [2, 4, 2], on: d)]
        let expected = try model(batch)[0].toArray()
        #expect(model.summary().contains("encoder (LSTM)") && model.summary().contains("decoder (LSTM)"))
        let url = try temporaryFolder().appendingPathComponent("seq2seq.safetensors")
        try Checkpoint.save(model, to: url)
        #expect(try Checkpoint.load(url, device: d).model(batch)[0].toArray() == expected)
        let json = try KerasConfig.json(of: model)
        let rebuilt = try KerasConfig.model(from: json, file: "seq2seq.json")
        try rebuilt.place(on: d)
        for (weight, original) in zip(rebuilt.weights, model.weights) { try weight.assign(try original.value.toArray()) }
        #expect(try rebuilt(batch)[0].toArray() == expected)
        // It trains as the README's translator does: one-hot targets per decoder step.
        let targets = try Tensor((0..<8).flatMap { n in (0..<2).map { Float(n % 2 == $0 ? 1 : 0) } }, shape: [2, 4, 2], on: d)
        try model.compile(optimizer: Adam(learningRate: 0.05), loss: CategoricalCrossentropy(fromLogits: true))
        let encoderKernel = try model.weights.first { $0.path == "encoder/kernel" }!.value.toArray()
        let history = try model.fit(x: batch, y: [targets], epochs: 60, batchSize: 2, progress: false)
        #expect(history.values["loss"]!.last! < 0.25 * history.values["loss"]!.first!, "\(history.values["loss"]!)")
        #expect(try model.weights.first { $0.path == "encoder/kernel" }!.value.toArray() != encoderKernel,
                "the decoder's loss trains the encoder through its state")
    }

    /// `Bidirectional` of a `returnState` layer returns the forward layer's final states and then the
    /// backward one's, and takes initial states in that order (Keras): the same as running the two
    /// directions by hand; a functional model with it reloads from Keras JSON; gradients reach the states.
    @Test(arguments: Backend.all, cells)
    func bidirectionalStates(_ backend: Backend, _ cell: RecurrentStep.Cell) throws {
        let d = backend.device
        var random = Random("bidirectional-states-\(cell)")
        let x = try Tensor(random.floats(2 * 5 * 3), shape: [2, 5, 3], on: d)
        let count = cell == .lstm ? 2 : 1
        let initial = (0..<2 * count).map { _ in random.floats(2 * 4) }
        let states = try initial.map { try Tensor($0, shape: [2, 4], on: d) }
        let both = Bidirectional(Self.layer(cell, returnSequences: true, returnState: true), mergeMode: .sum)
        let outputs = try both.outputs(of: [x] + states)
        #expect(outputs.count == 1 + 2 * count && outputs[0].shape == [2, 5, 4] && outputs.dropFirst().allSatisfy { $0.shape == [2, 4] })
        let forwards = Self.layer(cell, returnSequences: true, returnState: true), backwards = Self.layer(cell, returnSequences: true, returnState: true)
        let reversed = try x.gathered(Array((0..<5).reversed()), axis: 1)
        _ = try (forwards(x), backwards(reversed))
        for (part, source) in [(forwards, both.forwardLayer), (backwards, both.backwardLayer)] {
            for (weight, original) in zip(part.weights, source.weights) { try weight.assign(try original.value.toArray()) }
        }
        let a = try forwards.outputs(of: [x] + states.prefix(count)), b = try backwards.outputs(of: [reversed] + states.suffix(count))
        let merged = try a[0] + b[0].gathered(Array((0..<5).reversed()), axis: 1)
        for (got, expected) in zip(outputs, [merged] + a.dropFirst() + b.dropFirst()) {
            expectClose(try got.toArray(), try expected.toArray().map(Double.init), "bidirectional \(cell) on \(backend)", tolerance: 1e-6)
        }
        #expect(throws: TensorError.self) { try both([x] + states.prefix(count)) }  // half a state
        let weights = try (0..<2 * count).map { _ in try Tensor(random.floats(2 * 4), shape: [2, 4], on: d) }
        func loss(_ given: [Tensor]) throws -> Tensor {
            try zip(try both.outputs(of: [x] + given).dropFirst(), weights).map { try ($0 * $1).sum() }.reduce(Tensor.zeros([], on: d)) { try $0 + $1 }
        }
        let last = 2 * count - 1  // the backward layer's last state
        for state in states { state.requiresGrad = true }
        try loss(states).backward()
        try expectGradient(at: initial[last], gradient: try states[last].grad!.toArray(), "\(cell) backward initial state on \(backend)") { values in
            Double(try loss(try initial.enumerated().map { try Tensor($0.offset == last ? values : $0.element, shape: [2, 4], on: d) }).item())
        }
        let input = Input(shape: [5, 3])
        let encoded = try Bidirectional(Self.layer(cell, returnState: true), name: "encoder").outputs(of: [input.output])
        let model = try Model(inputs: [input], outputs: [try Concatenate()(encoded)], name: "encoder")
        try model.place(on: d, seed: 2)
        let rebuilt = try KerasConfig.model(from: try KerasConfig.json(of: model), file: "encoder.json")
        try rebuilt.place(on: d)
        for (weight, original) in zip(rebuilt.weights, model.weights) { try weight.assign(try original.value.toArray()) }
        #expect(try rebuilt(x).toArray() == model(x).toArray() && rebuilt(x).shape == [2, 8 + 2 * 4 * count])
    }
}
