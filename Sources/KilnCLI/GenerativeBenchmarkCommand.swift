import ArgumentParser
import Foundation
import Kiln

/// The generative workloads of `Scripts/benchmark.sh generative`, on the architectures of
/// `GenerativeZoo` that its Keras and PyTorch workers rebuild: training steps/s (DCGAN: one
/// discriminator and one generator update) and samples/s, as one JSON line.
struct GenerativeBenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generative",
        abstract: "Training speed of the DCGAN (batch 64) or the convolutional VAE (batch 128) on 28×28 images.")

    @Option(help: "dcgan or vae.")
    var workload = "dcgan"

    @Option(parsing: .unconditional, help: "Training steps per measured window.")
    var steps = 20

    @Option(parsing: .unconditional, help: "Measured windows (after one warm-up window).")
    var windows = 3

    @Option(help: "Device: cpu, opencl, …")
    var device = "cpu"

    func run() throws {
        try reportingErrors {
            let device = try Devices.select(self.device)
            let batchSize = workload == "dcgan" ? 64 : 128
            let images = try Tensor.uniform([steps * batchSize, 28, 28, 1], seed: 1, on: device)
            let step: (Batch) throws -> Void
            switch workload {
            case "dcgan":
                let (generator, discriminator) = try GenerativeZoo.dcgan(imageShape: [28, 28, 1])
                try generator.place(on: device, seed: 1)
                try discriminator.place(on: device, seed: 2)
                let gan = try AdversarialStep(generator: generator, discriminator: discriminator, generatorOptimizer: Adam(learningRate: 2e-4, beta1: 0.5),
                                              discriminatorOptimizer: Adam(learningRate: 2e-4, beta1: 0.5))
                step = { _ = try gan($0) }
            case "vae":
                let vae = try GenerativeZoo.vae(imageShape: [28, 28, 1])
                try vae.place(on: device, seed: 1)
                let (optimizer, loss) = (Adam(learningRate: 1e-3), BinaryCrossentropy(fromLogits: true))
                step = { batch in
                    let x = batch.inputs[0]
                    let elbo = try loss(x, vae(x, training: true)) * 784 + vae.addedLosses[0]
                    try optimizer.apply(vae.gradients(of: elbo), to: vae.trainableWeights)
                }
            default:
                throw ValidationError("--workload: '\(workload)' is not dcgan or vae")
            }
            let batches = try TensorBatches(inputs: [images], targets: [], batchSize: batchSize)
            let stepsPerSecond = try medianRate(windows: windows, on: device) { window in
                for result in batches.batches(epoch: window) { try step(try result.get()) }
                return steps
            }
            try printResult(["workload": workload, "batch_size": batchSize, "device": device.info.name,
                             "train_steps_per_second": stepsPerSecond, "train_samples_per_second": stepsPerSecond * Double(batchSize)])
        }
    }
}
