import Foundation
import Testing
@testable import Kiln

/// A user's layer: a learned scalar factor, saved with its starting value.
final class Scale: Layer, ConfigurableLayer {
    let initial: Float
    private var factor: Weight!

    init(_ initial: Float, name: String? = nil) {
        self.initial = initial
        super.init(name: name, kind: "scale")
    }

    convenience init(config: [String: Any], name: String?) throws {
        guard let initial = (config["initial"] as? NSNumber)?.floatValue else { throw DataError("Scale", "config lacks 'initial'") }
        self.init(initial, name: name)
    }

    var config: [String: Any] { ["initial": initial] }

    override func build(_ inputShapes: [[Int]]) throws -> [Int] {
        factor = addWeight("factor", shape: [1], initializer: .constant(initial))
        return inputShapes[0]
    }

    override func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { try inputs[0] * factor.value }
}

/// The Swift API for custom loops: gradients without leakage, eager layers, scalar arithmetic, devices.
@Suite("Research API") struct ResearchAPITests {
    static func gan(on device: any Device) throws -> (generator: Sequential, discriminator: Sequential) {
        let generator = try Sequential([Input(shape: [3]), Dense(5, activation: .tanh), Dense(4)])
        let discriminator = try Sequential([Input(shape: [4]), Dense(6, activation: .relu), Dense(1)])
        try generator.place(on: device, seed: 1)
        try discriminator.place(on: device, seed: 2)
        return (generator, discriminator)
    }

    /// A generator step through the discriminator: `gradients(of:)` gives the generator's gradients
    /// (equal to what backward() accumulates) and leaves no `grad` in either model.
    @Test(arguments: Backend.all)
    func gradientsLeaveNothingBehind(_ backend: Backend) throws {
        let (generator, discriminator) = try Self.gan(on: backend.device)
        var random = Random("gan")
        let noise = try Tensor(random.floats(6), shape: [2, 3], on: backend.device)
        func generatorLoss() throws -> Tensor { try discriminator(try generator(noise, training: true), training: true).square().mean() }
        let gradients = try generator.gradients(of: generatorLoss())
        #expect((generator.weights + discriminator.weights).allSatisfy { $0.value.grad == nil }, "no gradient is stored")
        try generatorLoss().backward()
        #expect(discriminator.trainableWeights.allSatisfy { $0.value.grad != nil }, "backward() reaches the discriminator's weights")
        for (weight, gradient) in zip(generator.trainableWeights, gradients) {
            expectClose(try gradient!.toArray(), try weight.value.grad!.toArray().map(Double.init), weight.path, tolerance: 1e-6)
        }
        discriminator.zeroGrad()
        generator.zeroGrad()
        #expect((generator.weights + discriminator.weights).allSatisfy { $0.value.grad == nil })
    }

    /// `apply(gradients, to:)` takes the same step as `backward()` + `apply(to:)`, and refuses mismatches.
    @Test func explicitGradientsStepLikeStoredOnes() throws {
        let (a, _) = try Self.gan(on: CPUDevice.shared)
        let (b, _) = try Self.gan(on: CPUDevice.shared)
        let x = try Tensor([0.1, -0.2, 0.3, 0.4, 0.5, -0.6], shape: [2, 3])
        let (optimizerA, optimizerB) = (Adam(learningRate: 0.01), Adam(learningRate: 0.01))
        try optimizerA.apply(try a.gradients(of: try a(x).square().mean()), to: a.trainableWeights)
        try b(x).square().mean().backward()
        try optimizerB.apply(to: b.trainableWeights)
        for (wa, wb) in zip(a.weights, b.weights) { #expect(try wa.value.toArray() == wb.value.toArray(), "\(wa.path)") }
        #expect(b.weights.allSatisfy { $0.value.grad == nil }, "a step clears the gradients it used")
        #expect { try optimizerA.apply([nil], to: a.trainableWeights) } throws: { "\($0)".contains("1 gradients for 4 weights") }
    }

    /// Layers run on tensors directly: built and placed on first call, from the seeded generator. The
    /// only test that uses the process-wide generator (`seed(_:)`, unseeded draws): its backends run in
    /// turn, so no other test can draw in between.
    @Test func eagerLayers() throws {
        for backend in Backend.all { try eagerLayers(backend) }
        let cpu = CPUDevice.shared
        seed(9)
        let first = try Tensor.uniform([64], on: cpu).toArray()
        #expect(try Tensor.uniform([64], on: cpu).toArray() != first, "unseeded draws move on")
        seed(9)
        #expect(try Tensor.uniform([64], on: cpu).toArray() == first, "seed(_:) restarts them")
    }

    private func eagerLayers(_ backend: Backend) throws {
        var random = Random("eager")
        let values = random.floats(12)
        let x = try Tensor(values, shape: [3, 4], on: backend.device)
        seed(7)
        let dense = Dense(2)
        let y = try dense(x).toArray()
        #expect(dense.isPlaced && dense.weights[0].value.device === backend.device)
        let kernel = try dense.weights[0].value.toArray()
        let expected = (0..<3).flatMap { row in (0..<2).map { column in (0..<4).reduce(0.0) { $0 + Double(values[row * 4 + $1]) * Double(kernel[$1 * 2 + column]) } } }
        expectClose(y, expected, "Dense(2)(x)")
        seed(7)
        #expect(try Dense(2)(x).toArray() == y, "the same seed draws the same weights")
        #expect { try dense(Tensor.zeros([3, 5], on: backend.device)) } throws: { "\($0)".contains("was built for input [[4]]") }
        for layer in [Dense(3), Conv2D(2, kernelSize: 1), BatchNormalization()] as [Layer] {
            #expect { try layer.forward([x], training: false) } throws: { "\($0)".contains("has no weights yet") }
        }
        let conv = try Conv2D(3, kernelSize: 3, activation: .relu)(Tensor.zeros([2, 5, 5, 1], on: backend.device))
        #expect(conv.shape == [2, 3, 3, 3])
    }

    /// `1 + x`, `x / 2`, `2 / x`, `2 - x`: values and gradients against float64.
    @Test(arguments: Backend.all)
    func scalarArithmeticOnBothSides(_ backend: Backend) throws {
        var random = Random("scalars")
        let values = random.floats(7, 0.5...2)
        let cases: [(String, (Tensor) throws -> Tensor, (Double) -> Double, (Double) -> Double)] = [
            ("1 + x", { try 1 + $0 }, { 1 + $0 }, { _ in 1 }),
            ("x / 2", { try $0 / 2 }, { $0 / 2 }, { _ in 0.5 }),
            ("2 / x", { try 2 / $0 }, { 2 / $0 }, { -2 / ($0 * $0) }),
            ("2 - x", { try 2 - $0 }, { 2 - $0 }, { _ in -1 }),
        ]
        for (name, op, reference, derivative) in cases {
            let x = try Tensor(values, shape: [7], on: backend.device)
            x.requiresGrad = true
            let y = try op(x)
            expectClose(try y.toArray(), values.map { reference(Double($0)) }, name)
            try y.sum().backward()
            expectClose(try x.grad!.toArray(), values.map { derivative(Double($0)) }, "d(\(name))/dx")
        }
    }

    /// The gradient of a maximum is shared among tied elements (it went whole to each before).
    @Test(arguments: Backend.all)
    func maxGradientSplitsTies(_ backend: Backend) throws {
        let x = try Tensor([1, 3, 3, 2, 5, 5, 5, 0], shape: [2, 4], on: backend.device)
        x.requiresGrad = true
        try x.reduce(.max, axis: 1).sum().backward()
        #expect(try x.grad!.toArray() == [0, 0.5, 0.5, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3, 0])
    }

    /// Binary cross-entropy keeps its stable form when a Reshape sits between the sigmoid and the
    /// loss; `predict` takes a tensor or a flat host array.
    @Test func stableLossThroughReshapeAndPredictOnTensors() throws {
        let model = try Sequential([Input(shape: [2]), Dense(1, activation: .sigmoid, kernelInitializer: .constant(60)), Reshape([1])])
        try model.place(on: CPUDevice.shared)
        let x = try Tensor([1, 1, -1, -1], shape: [2, 2]), targets = try Tensor([0, 1], shape: [2, 1])
        let loss = try BinaryCrossentropy()(targets, try model(x)).item()
        #expect(abs(loss - 120) < 1e-3, "sigmoid(±120) saturates in float32; the logits give the exact loss: \(loss)")
        #expect(try model.predict(x).shape == [2, 1])
        #expect(try model.predict([1, 1, -1, -1]) == model.predict(x).toArray(), "predict on a flat host array")
        #expect { try model.predict([1, 1, 1]) } throws: { "\($0)".contains("3 values are not whole samples of shape [2]") }
        #expect { try Sequential([Dense(1)]).predict([1]) } throws: { "\($0)".contains("one known input shape") }
    }

    @Test(arguments: Backend.all)
    func creation(_ backend: Backend) throws {
        let d = backend.device
        #expect(try Tensor.ones([2, 2], on: d).toArray() == [1, 1, 1, 1])
        let x = try Tensor([1, 2, 3], shape: [3], on: d)
        #expect(try Tensor.zeros(like: x).toArray() == [0, 0, 0] && Tensor.ones(like: x).device === d)
        #expect(try Tensor.arange(5, on: d).toArray() == [0, 1, 2, 3, 4])
        #expect(try Tensor.arange(1, 2, step: 0.25, on: d).toArray() == [1, 1.25, 1.5, 1.75])
        #expect(try Tensor.arange(3, 0, step: -1, on: d).toArray() == [3, 2, 1])
        #expect(try Tensor.eye(3, on: d).toArray() == [1, 0, 0, 0, 1, 0, 0, 0, 1])
        #expect { try Tensor.arange(0, 1, step: 0) } throws: { "\($0)".contains("arange") }
        #expect { try Tensor.eye(-2) } throws: { "\($0)".contains("eye") }
    }

    /// A free-standing parameter trains under any optimizer.
    @Test func parametersTrain() throws {
        let p = try Parameter(Tensor([0, 10], shape: [2]), name: "offset")
        let optimizer = SGD(learningRate: 0.1)
        for _ in 0..<100 {
            try (p.value - 3).square().sum().backward()
            try optimizer.apply(to: [p.weight])
        }
        expectClose(try p.value.toArray(), [3, 3], "argmin of (p − 3)²", tolerance: 1e-4)
        #expect { try Parameter(Tensor(labels: [1])) } throws: { "\($0)".contains("float32") }
    }

    /// Weights saved from one model load into a rebuilt one whose automatic names differ.
    @Test func weightsLoadByStructure() throws {
        func build() throws -> Sequential { try Sequential([Input(shape: [3]), Dense(4, activation: .relu), Dense(2)]) }
        let (saved, rebuilt) = (try build(), try build())
        try saved.place(on: CPUDevice.shared, seed: 1)
        try rebuilt.place(on: CPUDevice.shared, seed: 2)
        #expect(saved.weights.map(\.path) != rebuilt.weights.map(\.path), "another instance, other names")
        let url = try temporaryFolder().appendingPathComponent("w.safetensors")
        try Checkpoint.save(saved, to: url)
        try Checkpoint.loadWeights(url, into: rebuilt)
        for (a, b) in zip(saved.weights, rebuilt.weights) { #expect(try a.value.toArray() == b.value.toArray()) }
        let other = try Sequential([Input(shape: [3]), Dense(5), Dense(2)])
        try other.place(on: CPUDevice.shared)
        #expect { try Checkpoint.loadWeights(url, into: other) } throws: { "\($0)".contains("needs [3, 5]") }
        let deeper = try Sequential([Input(shape: [3]), Dense(4), Dense(4), Dense(2)])
        try deeper.place(on: CPUDevice.shared)
        #expect { try Checkpoint.loadWeights(url, into: deeper) } throws: { "\($0)".contains("another structure") }
    }

    /// A model with a custom layer saves, and loads again once the layer type is registered.
    @Test func customLayersReload() throws {
        let model = try Sequential([Input(shape: [3]), Scale(2), Dense(2)])
        try model.place(on: CPUDevice.shared, seed: 3)
        let url = try temporaryFolder().appendingPathComponent("custom.safetensors")
        try Checkpoint.save(model, to: url)
        #expect { try Checkpoint.load(url) } throws: { "\($0)".contains("unsupported layers: Scale") && "\($0)".contains("CustomLayers.register") }
        CustomLayers.register(Scale.self)
        let loaded = try Checkpoint.load(url, device: CPUDevice.shared).model
        let x = try Tensor([1, -2, 3, 0.5, 0, -1], shape: [2, 3])
        #expect(try loaded(x).toArray() == model(x).toArray())
        #expect((loaded.layers[1] as? Scale)?.initial == 2)
    }

    /// Models inside models: `Sequential([generator, discriminator])` and functional calls, frozen
    /// parts, gradients, checkpoints.
    @Test(arguments: Backend.all)
    func nestedModels(_ backend: Backend) throws {
        let generator = try Sequential([Input(shape: [3]), Dense(5, activation: .tanh), Dense(4)], name: "generator")
        // Smooth activations: the finite-difference check at the end must not straddle a ReLU kink.
        let discriminator = try Sequential([Input(shape: [4]), Dense(6, activation: .tanh), Dropout(0.2), Dense(1)], name: "discriminator")
        try generator.place(on: backend.device, seed: 1)
        try discriminator.place(on: backend.device, seed: 2)
        let gan = try Sequential([generator, discriminator], name: "gan")
        try gan.place(on: backend.device)
        var random = Random("nested")
        let x = try Tensor(random.floats(6), shape: [2, 3], on: backend.device)
        #expect(try gan(x).toArray() == discriminator(generator(x)).toArray())
        #expect(gan.weights.count == 8 && gan.parameterCount == generator.parameterCount + discriminator.parameterCount)
        #expect(gan.summary().contains("generator (Sequential)") && gan.summary().contains("discriminator (Sequential)"), "\(gan.summary())")

        discriminator.trainable = false
        #expect(!discriminator.trainable && generator.trainable)
        #expect(gan.trainableWeights.map(\.path) == generator.trainableWeights.map(\.path), "a frozen discriminator: only the generator trains")
        let before = try discriminator.weights.map { try $0.value.toArray() }
        try Adam(learningRate: 0.1).apply(try gan.gradients(of: try gan(x, training: true).mean()), to: gan.trainableWeights)
        #expect(try discriminator.weights.map { try $0.value.toArray() } == before)

        let input = Input(shape: [3])
        let functional = try Model(inputs: input, outputs: try discriminator(try generator(input)), name: "functional_gan")
        try functional.place(on: backend.device)
        #expect(try functional(x).toArray() == gan(x).toArray())

        let url = try temporaryFolder().appendingPathComponent("gan.safetensors")
        try Checkpoint.save(gan, to: url)
        let loaded = try Checkpoint.load(url, device: backend.device).model
        #expect(try loaded(x).toArray() == gan(x).toArray())
        #expect(loaded.trainableWeights.count == generator.trainableWeights.count, "the discriminator reloads frozen")
        discriminator.trainable = true
        #expect(gan.trainableWeights.count == 8)
        try expectModelGradients(gan, inputs: [random.floats(6)], batch: 2, backend: backend, training: false, "nested models")
    }

    /// A model that comes first in a `Sequential` gives it its input, as in Keras: the stack is built
    /// at once (it was built only at the first batch, so placing it left the weights without values),
    /// and `model.trainable = false` freezes the base.
    @Test func aModelFirstGivesTheInput() throws {
        let base = try Sequential([Input(shape: [8]), Dense(6, activation: .relu)], name: "base")
        base.trainable = false
        let model = try Sequential([base, Dense(3)])
        #expect(model.inputs.map(\.shape) == [[8]] && model.outputs[0].shape == [3] && model.weights.count == 4)
        #expect(model.summary().contains("base (Sequential)"), "\(model.summary())")
        try model.place(on: CPUDevice.shared, seed: 1)
        let before = try base.weights.map { try $0.value.toArray() }
        try model.compile(optimizer: SGD(learningRate: 0.1), loss: MeanSquaredError())
        try model.fit(x: try Tensor.normal([16, 8], seed: 1), y: try Tensor.normal([16, 3], seed: 2), epochs: 1, progress: false)
        #expect(try base.weights.map { try $0.value.toArray() } == before && model.trainableWeights.count == 2)
    }

    /// `to(_:)` moves values between devices and gradients back.
    @Test func tensorsMoveBetweenDevices() throws {
        guard let other = Backend.all.map(\.device).first(where: { $0 !== CPUDevice.shared }) else { return }
        let x = try Tensor([1, 2, 3], shape: [3])
        x.requiresGrad = true
        let moved = try x.to(other)
        #expect(moved.device === other)
        #expect(try moved.toArray() == [1, 2, 3])
        let same = try x.to(CPUDevice.shared)
        #expect(same === x)
        try (moved * 3).sum().backward()
        #expect(try x.grad!.toArray() == [3, 3, 3])
        #expect(x.grad!.device === CPUDevice.shared)
        #expect(try Tensor(labels: [4, 5]).to(other).toLabels() == [4, 5])
    }
}
