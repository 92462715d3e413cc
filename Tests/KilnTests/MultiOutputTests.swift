import Foundation
import Testing
@testable import Kiln

/// `fit`, `evaluate` and `predict` on tensors, for models with several inputs and outputs.
@Suite("Multi-input, multi-output training") struct MultiOutputTests {
    /// Inputs a (4 values) and b (3 values); targets: value = Σa − b₀ and kind = argmax b.
    static func data(_ count: Int, seed: UInt64, on device: any Device) throws -> (x: [Tensor], y: [Tensor]) {
        let a = try Tensor.normal([count, 4], seed: seed, on: device), b = try Tensor.normal([count, 3], seed: seed + 1, on: device)
        let value = try a.reduce(.sum, axis: 1).reshaped([count, 1]) - b.sliced(0..<1, axis: 1)
        let kind = try Tensor(labels: b.argmax(axis: 1).toArray().map { Int32($0) }, on: device)
        return ([a, b], [value, kind])
    }

    static func model(seed: UInt64, on device: any Device) throws -> Model {
        let a = Input(shape: [4], name: "a"), b = Input(shape: [3], name: "b")
        let hidden = try Dense(32, activation: .relu, name: "hidden")(Concatenate()([a.output, b.output]))
        let model = try Model(inputs: [a, b], outputs: [try Dense(1, name: "value")(hidden), try Dense(3, activation: .softmax, name: "kind")(hidden)])
        try model.place(on: device, seed: seed)
        return model
    }

    @Test func twoInputsTwoOutputsTrainWithWeightedLosses() throws {
        let device = CPUDevice.shared
        let (x, y) = try Self.data(600, seed: 3, on: device), test = try Self.data(200, seed: 9, on: device)
        let model = try Self.model(seed: 1, on: device)
        try model.compile(optimizer: Adam(learningRate: 0.01), losses: [MeanSquaredError(), SparseCategoricalCrossentropy()],
                          lossWeights: [0.5, 2], metrics: [[], ["accuracy"]])
        let before = try model.evaluate(x: test.x, y: test.y)
        let history = try model.fit(x: x, y: y, epochs: 12, batchSize: 32, validationSplit: 0.2, seed: 4, progress: false)
        let after = try model.evaluate(x: test.x, y: test.y)
        #expect(Set(history.names).isSuperset(of: ["loss", "value_loss", "kind_loss", "kind_accuracy", "val_loss", "val_value_loss", "val_kind_accuracy"]))
        #expect(abs(after["loss"]! - (0.5 * after["value_loss"]! + 2 * after["kind_loss"]!)) < 1e-4 * max(1, after["loss"]!))
        #expect(after["value_loss"]! < before["value_loss"]! / 4, "value loss \(before["value_loss"]!) → \(after["value_loss"]!)")
        #expect(after["kind_accuracy"]! > 0.85, "kind accuracy \(after["kind_accuracy"]!)")
        let predicted = try model.predict(test.x, batchSize: 64)
        #expect(predicted.map(\.shape) == [[200, 1], [200, 3]])
        let direct = try model(test.x)
        for (p, d) in zip(predicted, direct) { #expect(try p.toArray() == d.toArray()) }
    }

    /// A zero loss weight leaves that output's head untouched; the weights and losses survive a checkpoint.
    @Test func lossWeightsSteerAndReload() throws {
        let device = CPUDevice.shared
        let (x, y) = try Self.data(128, seed: 5, on: device)
        let model = try Self.model(seed: 2, on: device)
        try model.compile(optimizer: Adam(learningRate: 0.01), losses: [MeanSquaredError(), SparseCategoricalCrossentropy()], lossWeights: [0, 1])
        let head = try model.layer(named: "value").weights.map { try $0.value.toArray() }
        try model.fit(x: x, y: y, epochs: 2, batchSize: 16, seed: 1, progress: false)
        #expect(try model.layer(named: "value").weights.map { try $0.value.toArray() } == head)
        #expect(try model.layer(named: "kind").weights[0].value.toArray() != Self.model(seed: 2, on: device).layer(named: "kind").weights[0].value.toArray())
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("multi-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try Checkpoint.save(model, to: url)
        let loaded = try Checkpoint.load(url, device: device).model
        #expect(loaded.compiled?.lossWeights == [0, 1])
        #expect(loaded.compiled?.losses.map(\.name) == ["mean_squared_error", "sparse_categorical_crossentropy"])
        let (a, b) = (try model.evaluate(x: x, y: y), try loaded.evaluate(x: x, y: y))
        #expect(a == b)
        try loaded.fit(x: x, y: y, epochs: 1, batchSize: 16, progress: false)
        #expect(loaded.epochsTrained == 3)
    }

    @Test func mismatchedTensorsAreClearErrors() throws {
        let device = CPUDevice.shared
        let (x, y) = try Self.data(40, seed: 7, on: device)
        let model = try Self.model(seed: 3, on: device)
        #expect { try model.compile(optimizer: SGD(), losses: [MeanSquaredError()]) } throws: { "\($0)".contains("2 outputs, got 1 losses") }
        #expect { try model.compile(optimizer: SGD(), losses: [MeanSquaredError(), MeanSquaredError()], lossWeights: [1]) } throws: { "\($0)".contains("loss weights") }
        try model.compile(optimizer: SGD(), losses: [MeanSquaredError(), SparseCategoricalCrossentropy()])
        #expect { try model.fit(x: [x[0]], y: y, epochs: 1, progress: false) } throws: { "\($0)".contains("takes 2 inputs, got 1") }
        #expect { try model.fit(x: x, y: [y[0]], epochs: 1, progress: false) } throws: { "\($0)".contains("got 1 targets") }
        #expect { try model.fit(x: [x[1], x[0]], y: y, epochs: 1, progress: false) } throws: { "\($0)".contains("input 'a' expects samples of shape [4]") }
        #expect { try model.fit(x: x, y: [y[0], try Tensor(labels: [Int32](repeating: 3, count: 40), on: device)], epochs: 1, progress: false) } throws: {
            "\($0)".contains("label 3 for output 'kind' is outside its 3 classes")
        }
        #expect { try model.fit(x: [x[0], x[1].sliced(0..<20, axis: 0)], y: y, epochs: 1, progress: false) } throws: { "\($0)".contains("same number of samples") }
    }

    /// `fit(x:y:)` cuts batches on the device (labels included) in a seeded order, on every backend.
    @Test(arguments: Backend.all)
    func tensorBatchesCoverEveryEpoch(_ backend: Backend) throws {
        let d = backend.device
        let x = try Tensor((0..<70).map(Float.init), shape: [35, 2], on: d), labels = try Tensor(labels: (0..<35).map(Int32.init), on: d)
        let batches = try TensorBatches(inputs: [x], targets: [labels], batchSize: 8, shuffle: true, seed: 3)
        let epoch = try batches.batches(epoch: 2).map { try $0.get() }
        #expect(epoch.map(\.count) == [8, 8, 8, 8, 3])
        let order = try epoch.flatMap { try $0.targets[0].toLabels() }
        #expect(order.sorted() == (0..<35).map(Int32.init) && order != order.sorted())
        #expect(try epoch.flatMap { try $0.inputs[0].toArray() } == order.flatMap { [Float($0 * 2), Float($0 * 2 + 1)] })
        #expect(try batches.batches(epoch: 2).flatMap { try $0.get().targets[0].toLabels() } == order, "the same seed and epoch, the same order")
    }
}
