import Foundation
import Testing
@testable import Kiln

/// A layer that adds an activity penalty, 0.1 · mean(x²), with Keras's `add_loss`.
final class ActivityPenalty: Layer {
    init() { super.init(name: nil, kind: "activity_penalty") }
    override func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try addLoss(inputs[0].square().mean() * 0.1)
        return inputs[0]
    }
}

/// Custom training: losses added by layers, `fit` driving a closure step (a GAN), two models and
/// two optimizers in one checkpoint with an exact resume, and the KL divergence loss.
@Suite("Custom training") struct CustomTrainingTests {
    @Test func addedLossesCountInFitAndEvaluate() throws {
        let inner = try Sequential([Input(shape: [4]), Dense(3), ActivityPenalty()], name: "inner")
        let model = try Sequential([Input(shape: [4]), inner, ActivityPenalty(), Dense(2)])
        try model.place(on: CPUDevice.shared, seed: 1)
        try model.compile(optimizer: SGD(learningRate: 0), loss: MeanSquaredError())
        let (x, y) = (try Tensor.normal([16, 4], seed: 2), try Tensor.normal([16, 2], seed: 3))
        let hidden = try inner(x)
        let penalty = 2 * 0.1 * Double(try hidden.square().mean().item())  // the same activations pass both penalty layers
        let mse = Double(try MeanSquaredError()(y, model(x)).item())
        #expect(model.addedLosses.count == 2, "one run adds each term once")
        let evaluated = try model.evaluate(x: [x], y: [y], batchSize: 16)
        #expect(abs(Double(evaluated["loss"]!) - (mse + penalty)) < 1e-5)
        let history = try model.fit(x: x, y: y, epochs: 1, batchSize: 16, progress: false)
        #expect(abs(Double(history["loss"]![0]) - (mse + penalty)) < 1e-5, "fit minimises the added loss with the compiled one")
        #expect { try ActivityPenalty().addLoss(Tensor.zeros([2])) } throws: { "\($0)".contains("one-element") }
    }

    @Test func klDivergenceMatchesItsDefinition() throws {
        var random = Random("kl")
        let (rows, columns) = (5, 7)
        let t = try Tensor(random.floats(rows * columns), shape: [rows, columns]).softmax()
        let logits = random.floats(rows * columns)
        let p = try Tensor(logits, shape: [rows, columns]).softmax()
        let (tv, pv) = (try t.toArray(), try p.toArray())
        let expected = (0..<rows).map { r in (0..<columns).reduce(0.0) { sum, c in
            let (a, b) = (Double(tv[r * columns + c]), Double(pv[r * columns + c]))
            return sum + a * log(a / b)
        } }.reduce(0, +) / Double(rows)
        #expect(abs(Double(try KLDivergence()(t, p).item()) - expected) < 1e-6)
        let z = try Tensor(logits, shape: [rows, columns])
        z.requiresGrad = true
        try KLDivergence()(t, z.softmax()).backward()
        try expectGradient(at: logits, gradient: try z.grad!.toArray(), "KL divergence") {
            Double(try KLDivergence()(t, Tensor($0, shape: [rows, columns]).softmax()).item())
        }
        #expect(try Checkpoint.loss(named: "kld", fromLogits: false) is KLDivergence)
    }

    /// A GAN whose generator's `fit` runs `AdversarialStep`, whose noise is keyed by the discriminator
    /// optimizer's step count, which the checkpoint restores.
    final class GAN {
        let generator: Sequential, discriminator: Sequential
        let (gOptimizer, dOptimizer) = (Adam(learningRate: 0.01), Adam(learningRate: 0.01))
        let step: AdversarialStep

        init(seed: UInt64) throws {
            generator = try Sequential([Input(shape: [3]), Dense(8, activation: .relu), Dense(2)], name: "generator")
            discriminator = try Sequential([Input(shape: [2]), Dense(8, activation: .relu), Dense(1)], name: "discriminator")
            try generator.place(on: CPUDevice.shared, seed: seed)
            try discriminator.place(on: CPUDevice.shared, seed: seed + 1)
            step = try AdversarialStep(generator: generator, discriminator: discriminator, generatorOptimizer: gOptimizer,
                                       discriminatorOptimizer: dOptimizer, seed: 5)
        }

        func fit(_ data: Tensor, epochs: Int) throws -> History {
            try generator.fit(x: [data], epochs: epochs, batchSize: 16, progress: false, trainStep: step.callAsFunction)
        }

        var weights: [[Float]] { get throws { try (generator.weights + discriminator.weights).map { try $0.value.toArray() } } }
    }

    @Test func customStepsResumeExactlyFromAPairedCheckpoint() throws {
        let data = try Tensor.normal([40, 2], mean: 1, standardDeviation: 0.2, seed: 9)
        let straight = try GAN(seed: 1)
        let history = try straight.fit(data, epochs: 3)
        #expect(history.names == ["d_loss", "g_loss"] && straight.generator.epochsTrained == 3, "\(history.names)")
        #expect((straight.generator.weights + straight.discriminator.weights).allSatisfy { $0.value.grad == nil }, "no gradient is left behind")

        let interrupted = try GAN(seed: 1)
        _ = try interrupted.fit(data, epochs: 2)
        let url = try temporaryFolder().appendingPathComponent("gan.safetensors")
        try Checkpoint.save(models: ["generator": interrupted.generator, "discriminator": interrupted.discriminator],
                            optimizers: ["g_optimizer": interrupted.gOptimizer, "d_optimizer": interrupted.dOptimizer], to: url)
        let resumed = try GAN(seed: 7)  // other initial weights and automatic layer names
        try Checkpoint.restore(url, models: ["generator": resumed.generator, "discriminator": resumed.discriminator],
                               optimizers: ["g_optimizer": resumed.gOptimizer, "d_optimizer": resumed.dOptimizer])
        #expect(resumed.generator.epochsTrained == 2 && resumed.dOptimizer.iterations == interrupted.dOptimizer.iterations)
        let resumedHistory = try resumed.fit(data, epochs: 1)
        #expect(try resumed.weights == straight.weights, "resuming gives bit-identical weights")
        #expect(resumedHistory["d_loss"] == [history["d_loss"]![2]] && resumedHistory["g_loss"] == [history["g_loss"]![2]])

        #expect { try Checkpoint.load(url) } throws: { "\($0)".contains("holds several models (discriminator, generator)") }
        #expect { try Checkpoint.restore(url, models: ["generator": resumed.generator]) } throws: { "\($0)".contains("holds models") }
        #expect { try Checkpoint.restore(url, models: ["generator": resumed.generator, "discriminator": resumed.discriminator],
                                         optimizers: ["g_optimizer": SGD(), "d_optimizer": resumed.dOptimizer]) } throws: { "\($0)".contains("was saved as") }
    }
}

@Suite("Image grids") struct ImageGridTests {
    /// A grid PNG decodes back to the images' pixels, placed with 2-pixel gaps, values mapped from the range.
    @Test func gridRoundTrips() throws {
        var random = Random("grid")
        let values = random.floats(5 * 3 * 4).map { $0 * 1.2 }  // some beyond [-1, 1]: clipped
        let url = try temporaryFolder().appendingPathComponent("grid.png")
        try ImageGrid.write(try Tensor(values, shape: [5, 3, 4, 1]), columns: 2, range: -1...1, to: url)
        let image = try ImageFolder.decode(url)
        #expect((image.height, image.width, image.channels) == (3 * 5 + 2, 2 * 6 + 2, 1))
        for i in 0..<5 { for y in 0..<3 { for x in 0..<4 {
            let (top, left) = (2 + i / 2 * 5, 2 + i % 2 * 6)
            let expected = min(max(((values[(i * 3 + y) * 4 + x] + 1) * 127.5).rounded(), 0), 255)
            #expect(abs(Float(image.pixels[(top + y) * image.width + left + x]) - expected) <= 1)
        }}}
        #expect { try ImageGrid.png(Tensor.zeros([2, 3, 3, 2])) } throws: { "\($0)".contains("1 or 3 channels") }
    }
}
