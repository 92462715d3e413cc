import Foundation
import Testing
@testable import Kiln

/// The recurrent cells against a float64 reference, by finite differences, and as Keras layers.
@Suite("Recurrent layers") struct RecurrentTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var cell: RecurrentStep.Cell, relu: Bool, batch: Int, time: Int, features: Int, units: Int
        /// With a recurrent dropout mask.
        var dropout = false
        var testDescription: String { "\(cell)\(relu ? "+relu" : "")\(dropout ? "+dropout" : "") b\(batch) t\(time) f\(features) u\(units)" }
    }

    static let cases = [
        Case(cell: .simpleRNN, relu: false, batch: 3, time: 5, features: 7, units: 17),
        Case(cell: .simpleRNN, relu: true, batch: 1, time: 1, features: 2, units: 5),
        Case(cell: .lstm, relu: false, batch: 3, time: 4, features: 7, units: 17),
        Case(cell: .lstm, relu: true, batch: 2, time: 3, features: 3, units: 5),
        Case(cell: .lstm, relu: false, batch: 1, time: 1, features: 1, units: 1),
        Case(cell: .gru, relu: false, batch: 3, time: 4, features: 7, units: 17),
        Case(cell: .gru, relu: true, batch: 1, time: 2, features: 2, units: 3),
        Case(cell: .simpleRNN, relu: false, batch: 2, time: 3, features: 3, units: 5, dropout: true),
        Case(cell: .lstm, relu: false, batch: 3, time: 4, features: 5, units: 17, dropout: true),
        Case(cell: .gru, relu: false, batch: 3, time: 4, features: 5, units: 17, dropout: true),
    ]

    /// Random inputs, weights, initial states and a mask (padding in the middle of one sequence).
    struct Inputs {
        var x, kernel, recurrent, bias, recurrentBias, h0, c0, mask: [Float]
        /// The recurrent dropout mask: 0 or 1/(1 − 0.3) per (row, unit), or nil.
        var dropout: [Float]?
        init(_ c: Case) {
            var random = Random("recurrent-\(c.testDescription)")
            let width = c.units * (c.cell == .lstm ? 4 : c.cell == .gru ? 3 : 1)
            (x, kernel, recurrent) = (random.floats(c.batch * c.time * c.features), random.floats(c.features * width, -0.6...0.6),
                                      random.floats(c.units * width, -0.6...0.6))
            (bias, recurrentBias, h0, c0) = (random.floats(width, -0.3...0.3), random.floats(width, -0.3...0.3),
                                             random.floats(c.batch * c.units), random.floats(c.batch * c.units))
            mask = (0..<c.batch * c.time).map { $0 == c.time / 2 + (c.batch - 1) * c.time && c.time > 1 ? 0 : 1 }
            dropout = c.dropout ? (0..<c.batch * c.units).map { _ in random.next() % 10 < 3 ? 0 : 1 / 0.7 } : nil
        }
    }

    /// Keras's cells step by step in float64: the hidden states `[time + 1, batch, units]`, then an
    /// LSTM's last cell state `[batch, units]`.
    static func reference(_ c: Case, _ v: Inputs) -> [Double] {
        let (u, width) = (c.units, c.units * (c.cell == .lstm ? 4 : c.cell == .gru ? 3 : 1))
        func act(_ z: Double) -> Double { c.relu ? max(z, 0) : Foundation.tanh(z) }
        func sigmoid(_ z: Double) -> Double { 1 / (1 + Foundation.exp(-z)) }
        var h = (0..<c.batch).map { b in (0..<u).map { Double(v.h0[b * u + $0]) } }
        var cell = (0..<c.batch).map { b in (0..<u).map { Double(v.c0[b * u + $0]) } }
        var hidden = [h]
        for t in 0..<c.time {
            for b in 0..<c.batch where v.mask[b * c.time + t] != 0 {
                func projection(_ g: Int, _ weights: [Float], _ from: [Double], _ rows: Int) -> Double {
                    (0..<rows).reduce(0.0) { $0 + from[$1] * Double(weights[$1 * width + g]) }
                }
                let input = (0..<c.features).map { Double(v.x[(b * c.time + t) * c.features + $0]) }
                let xw = (0..<width).map { projection($0, v.kernel, input, c.features) + Double(v.bias[$0]) }
                let dropped = (0..<u).map { h[b][$0] * Double(v.dropout?[b * u + $0] ?? 1) }
                let hu = (0..<width).map { projection($0, v.recurrent, dropped, u) }
                switch c.cell {
                case .simpleRNN: h[b] = (0..<u).map { act(xw[$0] + hu[$0]) }
                case .lstm:
                    for j in 0..<u {
                        let (i, f) = (sigmoid(xw[j] + hu[j]), sigmoid(xw[u + j] + hu[u + j]))
                        let (g, o) = (act(xw[2 * u + j] + hu[2 * u + j]), sigmoid(xw[3 * u + j] + hu[3 * u + j]))
                        cell[b][j] = f * cell[b][j] + i * g
                        h[b][j] = o * act(cell[b][j])
                    }
                case .gru:
                    let r = (0..<width).map { hu[$0] + Double(v.recurrentBias[$0]) }
                    h[b] = (0..<u).map { j in
                        let z = sigmoid(xw[j] + r[j]), reset = sigmoid(xw[u + j] + r[u + j])
                        return z * h[b][j] + (1 - z) * act(xw[2 * u + j] + reset * r[2 * u + j])
                    }
                }
            }
            hidden.append(h)
        }
        return (hidden + (c.cell == .lstm ? [cell] : [])).flatMap { $0.flatMap { $0 } }
    }

    static func states(_ c: Case, _ v: Inputs, on d: any Device, track: Bool = false) throws -> (states: Tensor, leaves: [Tensor]) {
        let width = c.units * (c.cell == .lstm ? 4 : c.cell == .gru ? 3 : 1)
        let x = try Tensor(v.x, shape: [c.batch, c.time, c.features], on: d)
        let kernel = try Tensor(v.kernel, shape: [c.features, width], on: d), recurrent = try Tensor(v.recurrent, shape: [c.units, width], on: d)
        let bias = try Tensor(v.bias, shape: [width], on: d), h0 = try Tensor(v.h0, shape: [c.batch, c.units], on: d)
        let recurrentBias = c.cell == .gru ? try Tensor(v.recurrentBias, shape: [width], on: d) : nil
        let c0 = c.cell == .lstm ? try Tensor(v.c0, shape: [c.batch, c.units], on: d) : nil
        let leaves = [x, kernel, recurrent, bias, recurrentBias, h0, c0].compactMap { $0 }
        for leaf in leaves { leaf.requiresGrad = track }
        let weights = RecurrentWeights(cell: c.cell, relu: c.relu, kernel: kernel, recurrentKernel: recurrent, bias: bias, recurrentBias: recurrentBias,
                                       recurrentDropoutMask: try v.dropout.map { try Tensor($0, shape: [c.batch, c.units], on: d) })
        let states = try x.recurrentStates(weights, initialHidden: h0, initialCell: c0,
                                           mask: try Tensor(v.mask, shape: [c.batch, c.time], on: d))
        return (states, leaves)
    }

    @Test(arguments: Backend.all, cases)
    func cellsMatchTheFloat64Reference(_ backend: Backend, _ c: Case) throws {
        let v = Inputs(c)
        expectClose(try Self.states(c, v, on: backend.device).states.toArray(), Self.reference(c, v), "\(c.testDescription) on \(backend)", tolerance: 2e-5)
    }

    /// The backward pass through time by finite differences, for every input: the sequence, the three
    /// weights, the initial states; the loss weighs every hidden state and the last cell state. ReLU
    /// cells, whose kinks defeat finite differences, are checked against the unrolled cell instead.
    @Test(arguments: Backend.all, cases)
    func gradientsThroughTime(_ backend: Backend, _ c: Case) throws {
        let v = Inputs(c), d = backend.device
        var random = Random("recurrent-loss-\(c.testDescription)")
        let (s, leaves) = try Self.states(c, v, on: d, track: true)
        let lossWeights = random.floats(s.count)
        let w = try Tensor(lossWeights, shape: s.shape, on: d)
        try (s * w).sum().backward()
        let fields: [WritableKeyPath<Inputs, [Float]>] = [\.x, \.kernel, \.recurrent, \.bias] + (c.cell == .gru ? [\.recurrentBias] : []) + [\.h0] + (c.cell == .lstm ? [\.c0] : [])
        let magnitude = zip(try s.toArray(), lossWeights).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
        for (field, leaf) in zip(fields, leaves) {
            let gradient = try #require(leaf.grad, "\(field) of \(c.testDescription) got no gradient").toArray()
            guard !c.relu else { continue }  // checked against the unrolled cell below
            // The loss sums float32 states (rounding ≈ 1e-7 of `magnitude` per evaluation): directional
            // derivatives under 1e-5 of it, such as a one-step LSTM's recurrent kernel's, are held to that floor.
            try expectGradient(at: v[keyPath: field], gradient: gradient, epsilon: 1e-2, magnitude: 10 * magnitude,
                               "\(c.testDescription) \(field) on \(backend)") { values in
                var changed = v
                changed[keyPath: field] = values
                return dot(try Self.states(c, changed, on: d).states.toArray(), lossWeights)
            }
        }
        guard c.relu else { return }
        let fused = try leaves.map { try $0.grad!.toArray() }
        for leaf in leaves { leaf.zeroGrad() }
        let mask = try Tensor(v.mask, shape: [c.batch, c.time], on: d)
        let reference = try Self.unrolled(c, leaves, mask: mask)
        #expect(reference.shape == s.shape)
        try (reference * w).sum().backward()
        for (field, (leaf, gradient)) in zip(fields, zip(leaves, fused)) {
            expectClose(gradient, try leaf.grad!.toArray().map(Double.init), "\(c.testDescription) \(field) vs the unrolled cell on \(backend)", tolerance: 1e-4)
        }
    }

    /// The cell unrolled with ordinary tensor ops (whose gradients are tested on their own): the
    /// reference for the fused op's gradients where finite differences meet ReLU kinks.
    static func unrolled(_ c: Case, _ leaves: [Tensor], mask: Tensor) throws -> Tensor {
        let (x, kernel, recurrent, bias) = (leaves[0], leaves[1], leaves[2], leaves[3])
        let recurrentBias = c.cell == .gru ? leaves[4] : nil, h0 = leaves[c.cell == .gru ? 5 : 4]
        var (h, cell) = (h0, c.cell == .lstm ? leaves[5] : nil)
        let u = c.units
        func act(_ z: Tensor) throws -> Tensor { c.relu ? try z.relu() : try z.tanh() }
        func gate(_ z: Tensor, _ k: Int) throws -> Tensor { try z.sliced(k * u..<(k + 1) * u, axis: 1) }
        var hidden = [h]
        for t in 0..<c.time {
            let xw = try x.selected(t, axis: 1).matmul(kernel) + bias, hu = try h.matmul(recurrent)
            let keep = try mask.sliced(t..<t + 1, axis: 1)
            var next: Tensor
            switch c.cell {
            case .simpleRNN: next = try act(xw + hu)
            case .lstm:
                let z = try xw + hu
                let newCell = try gate(z, 1).sigmoid() * cell! + gate(z, 0).sigmoid() * act(gate(z, 2))
                next = try gate(z, 3).sigmoid() * act(newCell)
                cell = try keep * newCell + (1 - keep) * cell!
            case .gru:
                let r = try hu + recurrentBias!
                let update = try (gate(xw, 0) + gate(r, 0)).sigmoid(), reset = try (gate(xw, 1) + gate(r, 1)).sigmoid()
                next = try update * h + (1 - update) * act(gate(xw, 2) + reset * gate(r, 2))
            }
            h = try keep * next + (1 - keep) * h
            hidden.append(h)
        }
        return try Tensor.stack(hidden + (cell.map { [$0] } ?? []))  // h0…hT, then an LSTM's cT
    }

    @Test func layersFollowKeras() throws {
        let model = try Sequential([Input(shape: [12, 3]), LSTM(64, returnSequences: true), GRU(16, goBackwards: true), Dense(1)])
        #expect(model.parameterCount == 4 * (64 * (3 + 64) + 64) + (3 * 16 * (64 + 16) + 2 * 3 * 16) + 17)
        #expect(try Sequential([Input(shape: [48, 1]), SimpleRNN(64)]).parameterCount == 4224)
        try model.place(on: CPUDevice.shared, seed: 1)
        let x = try Tensor.normal([5, 12, 3], seed: 2)
        #expect(try model(x).shape == [5, 1])
        let lstm = try model.layer(named: model.layers[1].name) as! LSTM
        let bias = try lstm.weights[2].value.toArray()
        #expect(bias[64..<128].allSatisfy { $0 == 1 } && bias[0..<64].allSatisfy { $0 == 0 }, "unit forget bias")
        let recurrent = try lstm.weights[1].value.toArray()  // orthogonal rows: U·Uᵀ = I
        let rowDot = (0..<256).reduce(0.0) { $0 + Double(recurrent[$1]) * Double(recurrent[256 + $1]) }
        let rowNorm = (0..<256).reduce(0.0) { $0 + Double(recurrent[$1] * recurrent[$1]) }
        #expect(abs(rowDot) < 1e-5 && abs(rowNorm - 1) < 1e-5)
        #expect { try Sequential([Input(shape: [4]), LSTM(3)]).place(on: CPUDevice.shared) } throws: { "\($0)".contains("takes sequences [time, features]") }
    }

    /// A stateful layer continues: two halves in turn give the whole sequence's output; goBackwards
    /// equals the reversed sequence.
    @Test func statefulAndBackwards() throws {
        let d = CPUDevice.shared
        let x = try Tensor.normal([2, 6, 3], seed: 4, on: d)
        let whole = try Sequential([Input(shape: [6, 3]), GRU(5, name: "gru")])
        try whole.place(on: d, seed: 3)
        let stateful = try Sequential([Input(shape: [3, 3]), GRU(5, stateful: true, name: "gru")])
        try stateful.place(on: d, seed: 3)
        _ = try stateful(x.sliced(0..<3, axis: 1))
        expectClose(try stateful(x.sliced(3..<6, axis: 1)).toArray(), try whole(x).toArray().map(Double.init), "stateful halves", tolerance: 1e-6)
        (stateful.layers[1] as! RecurrentLayer).resetStates()
        let half = try Sequential([Input(shape: [3, 3]), GRU(5, name: "gru")])
        try half.place(on: d, seed: 3)
        expectClose(try stateful(x.sliced(3..<6, axis: 1)).toArray(), try half(x.sliced(3..<6, axis: 1)).toArray().map(Double.init), "after resetStates", tolerance: 1e-6)
        let backwards = try Sequential([Input(shape: [6, 3]), LSTM(4, goBackwards: true, name: "lstm")])
        let forwards = try Sequential([Input(shape: [6, 3]), LSTM(4, name: "lstm")])
        try backwards.place(on: d, seed: 5)
        try forwards.place(on: d, seed: 5)
        expectClose(try backwards(x).toArray(), try forwards(x.gathered([5, 4, 3, 2, 1, 0], axis: 1)).toArray().map(Double.init), "goBackwards", tolerance: 1e-6)
    }

    /// An LSTM forecaster learns a noisy sine wave with fit.
    @Test func lstmLearnsToForecast() throws {
        let series = (0..<400).map { Float(sin(Double($0) * 0.2)) }
        let windows = (0..<380).map { Array(series[$0..<$0 + 12]) }
        let x = try Tensor(windows.flatMap { $0 }, shape: [380, 12, 1]), y = try Tensor((0..<380).map { series[$0 + 12] }, shape: [380, 1])
        let model = try Sequential([Input(shape: [12, 1]), LSTM(16), Dense(1)])
        try model.place(on: CPUDevice.shared, seed: 1)
        try model.compile(optimizer: Adam(learningRate: 0.01), loss: MeanSquaredError())
        let before = try model.evaluate(x: [x], y: [y])["loss"]!
        try model.fit(x: x, y: y, epochs: 15, batchSize: 32, seed: 2, progress: false)
        let after = try model.evaluate(x: [x], y: [y])["loss"]!
        #expect(after < before / 20, "MSE \(before) → \(after)")
    }

    /// Embedding rows by id on both backends (float and int32 ids), the gradient as a scatter-add
    /// (a repeated id gets the sum), and ids outside the vocabulary as an error naming the layer.
    @Test(arguments: Backend.all)
    func embeddingLooksUpAndScatters(_ backend: Backend) throws {
        let d = backend.device
        let model = try Sequential([Input(shape: [4]), Embedding(inputDim: 7, outputDim: 3, name: "words")])
        try model.place(on: d, seed: 1)
        let table = try model.weights[0].value.toArray()
        let ids: [Float] = [6, 0, 6, 2, 1, 1, 1, 5]
        let out = try model(Tensor(ids, shape: [2, 4], on: d))
        #expect(out.shape == [2, 4, 3])
        #expect(try out.toArray() == ids.flatMap { table[Int($0) * 3 ..< Int($0) * 3 + 3] })
        let asInts = try model.layers[1].forward([Tensor(labels: ids.map { Int32($0) }, shape: [2, 4], on: d)], training: false)
        #expect(try asInts.toArray() == out.toArray())
        let weights = try Tensor.uniform([2, 4, 3], seed: 2, on: d)
        try (model(Tensor(ids, shape: [2, 4], on: d)) * weights).sum().backward()
        let w = try weights.toArray(), grad = try model.weights[0].value.grad!.toArray()
        let expected = (0..<21).map { i in ids.indices.filter { Int(ids[$0]) == i / 3 }.reduce(0.0) { $0 + Double(w[$1 * 3 + i % 3]) } }
        expectClose(grad, expected, "embedding gradient on \(backend)")
        #expect { try model(Tensor([0, 1, 7, 2], shape: [1, 4], on: d)) } throws: { "\($0)".contains("'words'") && "\($0)".contains("token id 7.0 is outside the vocabulary 0..<7") }
        #expect { try model(Tensor([0, -1, 3, 2], shape: [1, 4], on: d)) } throws: { "\($0)".contains("token id -1.0") }
    }

    /// Every new layer survives a checkpoint (Keras JSON architecture + weights) with the same outputs,
    /// and reads its Keras arguments back.
    @Test func recurrentModelsRoundTrip() throws {
        let model = try Sequential([Input(shape: [10]), Embedding(inputDim: 20, outputDim: 8), SimpleRNN(6, activation: .relu, returnSequences: true),
                                    GRU(5, returnSequences: true, goBackwards: true), LSTM(4, dropout: 0.2, recurrentDropout: 0.3, unitForgetBias: false), Dense(1)])
        try model.place(on: CPUDevice.shared, seed: 3)
        try model.compile(optimizer: Adam(), loss: MeanSquaredError())
        let x = try Tensor((0..<30).map { Float($0 % 20) }, shape: [3, 10])
        try model.fit(x: x, y: Tensor.zeros([3, 1]), epochs: 1, batchSize: 3, progress: false)
        let url = try temporaryFolder().appendingPathComponent("rnn.safetensors")
        try Checkpoint.save(model, to: url)
        let loaded = try Checkpoint.load(url, device: CPUDevice.shared).model
        #expect(try loaded(x).toArray() == model(x).toArray())
        let layers = loaded.layers
        #expect((layers[2] as? SimpleRNN)?.activation == .relu && (layers[2] as? SimpleRNN)?.returnSequences == true)
        #expect((layers[3] as? GRU)?.goBackwards == true && (layers[4] as? LSTM)?.dropout == 0.2 && (layers[4] as? LSTM)?.recurrentDropout == 0.3)
        #expect((layers[4] as? LSTM)?.biasInitializer == .zeros && (layers[1] as? Embedding)?.inputDim == 20)
        let json = try KerasConfig.json(of: model)
        let config = ((json["config"] as! [String: Any])["layers"] as! [[String: Any]])[4]["config"] as! [String: Any]
        #expect(config["unit_forget_bias"] as? Bool == false && config["recurrent_activation"] as? String == "sigmoid")
        let unsupported = #"{"class_name": "Sequential", "config": {"name": "s", "layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 5, 2]}}, {"class_name": "LSTM", "config": {"name": "l", "units": 3, "recurrent_activation": "hard_sigmoid"}}]}}"#
        #expect { try KerasConfig.model(fromJSON: Data(unsupported.utf8), file: "m.json") } throws: {
            "\($0)".contains("LSTM 'l': recurrent_activation other than sigmoid is not supported yet")
        }
        let defaults = #"{"class_name": "Sequential", "config": {"name": "s", "layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 5, 2]}}, {"class_name": "LSTM", "config": {"name": "l", "units": 3}}]}}"#
        #expect((try KerasConfig.model(fromJSON: Data(defaults.utf8), file: "m.json").layers.last as? LSTM)?.activation == .tanh)
    }

    /// Embedding → LSTM → Dense learns which sequences hold token 3.
    @Test func embeddingAndLSTMClassify() throws {
        var random = Random("token-task")
        let ids = (0..<400 * 12).map { _ in Float(random.next() % 9 + 1) }
        let labels = (0..<400).map { n in ids[n * 12 ..< n * 12 + 12].contains(3) ? Float(1) : 0 }
        let model = try Sequential([Input(shape: [12]), Embedding(inputDim: 10, outputDim: 8), LSTM(16), Dense(1, activation: .sigmoid)])
        try model.place(on: CPUDevice.shared, seed: 1)
        try model.compile(optimizer: Adam(learningRate: 0.01), loss: BinaryCrossentropy(), metrics: ["accuracy"])
        let (x, y) = (try Tensor(ids, shape: [400, 12]), try Tensor(labels, shape: [400, 1]))
        let history = try model.fit(x: x, y: y, epochs: 12, batchSize: 32, validationSplit: 0.25, seed: 1, progress: false)
        let majority = max(labels.reduce(0, +), 400 - labels.reduce(0, +)) / 400
        #expect(history["val_accuracy"]!.last! > max(0.9, majority + 0.1), "validation accuracy \(history["val_accuracy"]!), majority \(majority)")
    }

    /// Padding after the real steps changes nothing once masked (Masking or Embedding's maskZero):
    /// the state stays at the last real step's.
    @Test(arguments: Backend.all)
    func maskedPaddingIsSkipped(_ backend: Backend) throws {
        let d = backend.device
        let real = try Tensor.normal([2, 4, 3], seed: 8, on: d)
        let padded = try Tensor.concatenate([real, try Tensor.zeros([2, 3, 3], on: d)], axis: 1)
        let masked = try Sequential([Input(shape: [7, 3]), Masking(), LSTM(5, name: "lstm")])
        let plain = try Sequential([Input(shape: [4, 3]), LSTM(5, name: "lstm")])
        try masked.place(on: d, seed: 2)
        try plain.place(on: d, seed: 2)
        expectClose(try masked(padded).toArray(), try plain(real).toArray().map(Double.init), "Masking on \(backend)", tolerance: 1e-6)
        let ids: [Float] = [4, 2, 7, 0, 0, 0, 3, 3, 1, 5, 9, 0]
        let embedded = try Sequential([Input(shape: [6]), Embedding(inputDim: 10, outputDim: 4, maskZero: true, name: "e"),
                                       Bidirectional(GRU(3, returnSequences: true, name: "gru"), name: "bi"), GRU(2, name: "top")])
        try embedded.place(on: d, seed: 4)
        let trimmed = try Sequential([Input(shape: [3]), Embedding(inputDim: 10, outputDim: 4, name: "e"),
                                      Bidirectional(GRU(3, returnSequences: true, name: "gru"), name: "bi"), GRU(2, name: "top")])
        try trimmed.place(on: d, seed: 4)
        let first = try embedded(Tensor(ids, shape: [2, 6], on: d)).toArray()
        expectClose(Array(first[0..<2]), try trimmed(Tensor([4, 2, 7], shape: [1, 3], on: d)).toArray().map(Double.init), "maskZero through Bidirectional", tolerance: 1e-6)
    }

    /// Bidirectional is the forward layer and the backward layer (over the reversed steps, put back in
    /// order) side by side; TimeDistributed is its layer on every step; both reload from a checkpoint.
    @Test func bidirectionalAndTimeDistributed() throws {
        let d = CPUDevice.shared
        let x = try Tensor.normal([3, 5, 4], seed: 6, on: d)
        let model = try Sequential([Input(shape: [5, 4]), Bidirectional(LSTM(8, returnSequences: true, name: "lstm"), name: "bi"),
                                    TimeDistributed(Dense(2, name: "step"), name: "td")])
        try model.place(on: d, seed: 1)
        #expect(model.parameterCount == 2 * 4 * (8 * (4 + 8) + 8) + (16 * 2 + 2))
        #expect(model.weights.map(\.path).contains("bi/backward_lstm/recurrent_kernel") && model.weights.map(\.path).contains("td/step/kernel"))
        let bi = model.layers[1] as! Bidirectional
        let forwards = try Sequential([Input(shape: [5, 4]), LSTM(8, returnSequences: true, name: "f")])
        let backwards = try Sequential([Input(shape: [5, 4]), LSTM(8, returnSequences: true, name: "b")])
        try forwards.place(on: d)
        try backwards.place(on: d)
        for (target, source) in zip(forwards.weights + backwards.weights, bi.forwardLayer.weights + bi.backwardLayer.weights) {
            try target.assign(try source.value.toArray())
        }
        let reversed = [4, 3, 2, 1, 0]
        let expected = try Tensor.concatenate([forwards(x), backwards(x.gathered(reversed, axis: 1)).gathered(reversed, axis: 1)], axis: -1)
        let step = model.layers[2] as! TimeDistributed
        let dense = try expected.reshaped([15, 16]).matmul(step.layer.weights[0].value).addingBias(step.layer.weights[1].value)
        expectClose(try model(x).toArray(), try dense.toArray().map(Double.init), "Bidirectional + TimeDistributed", tolerance: 1e-5)
        try model.compile(optimizer: Adam(), loss: MeanSquaredError())
        try model.fit(x: x, y: Tensor.zeros([3, 5, 2], on: d), epochs: 1, batchSize: 3, progress: false)
        let url = try temporaryFolder().appendingPathComponent("bi.safetensors")
        try Checkpoint.save(model, to: url)
        let loaded = try Checkpoint.load(url, device: d).model
        #expect(try loaded(x).toArray() == model(x).toArray())
        #expect((loaded.layers[1] as? Bidirectional)?.forwardLayer.name == "forward_lstm")
    }

    /// Padded steps are left out of the loss and metrics, as in Keras: a tagger's loss over padded
    /// sequences equals the loss over the real steps alone, whatever labels the padding carries.
    @Test func maskedStepsLeaveTheLoss() throws {
        let d = CPUDevice.shared
        let ids: [Float] = [3, 1, 4, 0, 0, 2, 7, 1, 8, 0]
        let labels: [Int32] = [0, 1, 2, 2, 2, 1, 0, 1, 2, 0]  // the padding's labels are arbitrary
        let model = try Sequential([Input(shape: [5]), Embedding(inputDim: 10, outputDim: 4, maskZero: true),
                                    LSTM(6, returnSequences: true), TimeDistributed(Dense(3))])
        try model.place(on: d, seed: 2)
        try model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: ["accuracy"])
        let x = try Tensor(ids, shape: [2, 5], on: d)
        let logs = try model.evaluate(x: [x], y: [Tensor(labels: labels, shape: [2, 5], on: d)])
        let real = ids.indices.filter { ids[$0] != 0 }
        let logits = try model(x).reshaped([10, 3]).gathered(real)
        let expected = try SparseCategoricalCrossentropy(fromLogits: true)(Tensor(labels: real.map { labels[$0] }, on: d), logits).item()
        #expect(abs(logs["loss"]! - expected) < 1e-5, "masked loss \(logs["loss"]!) vs the real steps' \(expected)")
        let predicted = try logits.argmax(axis: 1).toArray()
        let accuracy = Float(zip(predicted, real.map { labels[$0] }).filter { Int($0) == Int($1) }.count) / Float(real.count)
        #expect(abs(logs["accuracy"]! - accuracy) < 1e-6)
        try model.fit(x: [x], y: [Tensor(labels: labels, shape: [2, 5], on: d)], epochs: 2, batchSize: 2, progress: false)
    }
}

/// The GRU with the reset gate before the recurrent projection (Keras's `reset_after=False`, ONNX's
/// default; its forward pass is checked against Keras fixtures and ONNX's conformance data): its
/// gradients by finite differences, with a mask, and masked steps that keep the state.
@Suite("GRU with reset_after=False") struct ResetBeforeGRUTests {
    @Test(arguments: Backend.all)
    func gradientsAndMasks(_ backend: Backend) throws {
        let d = backend.device
        let layer = GRU(5, returnSequences: true, resetAfter: false)
        let model = try Sequential([Input(shape: [4, 3]), layer])
        try model.place(on: d, seed: 2)
        #expect(layer.weights.map(\.shape) == [[3, 15], [5, 15], [15]])
        var random = Random("gru-v1")
        let x = random.floats(2 * 4 * 3), weights = try Tensor(random.floats(2 * 4 * 5), shape: [2, 4, 5], on: d)
        let mask = try Tensor([1, 1, 1, 1, 1, 1, 0, 0], shape: [2, 4], on: d)
        func output(_ values: [Float], mask: Tensor? = mask) throws -> Tensor {
            try layer.forward([Tensor(values, shape: [2, 4, 3], on: d)], training: false, mask: mask)
        }
        let input = try Tensor(x, shape: [2, 4, 3], on: d)
        input.requiresGrad = true
        try (layer.forward([input], training: false, mask: mask) * weights).sum().backward()
        try expectGradient(at: x, gradient: try input.grad!.toArray(), "reset-before GRU on \(backend)") { Double(try (output($0) * weights).sum().item()) }
        let states = try output(x).toArray()
        #expect(Array(states[30..<35]) == Array(states[25..<30]) && Array(states[35..<40]) == Array(states[25..<30]), "masked steps keep the state")
        expectClose(Array(try output(x, mask: nil).toArray()[0..<20]), states[0..<20].map(Double.init), "unmasked steps on \(backend)", tolerance: 1e-6)
    }
}
