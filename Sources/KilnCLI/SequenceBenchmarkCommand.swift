import ArgumentParser
import Foundation
import Kiln

/// The sequence workloads of `Scripts/benchmark.sh sequences`, on the same shapes as its Keras and
/// PyTorch workers: training and inference samples/s as one JSON line.
struct SequenceBenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sequence",
        abstract: "Samples/s of a sequence workload: forecast (LSTM(64) on windows of 48), text-lstm or text-conv1d (200 token ids, 10,000 words).")

    @Option(help: "forecast, text-lstm or text-conv1d.")
    var workload = "forecast"

    @Option(parsing: .unconditional, help: "Samples per batch.")
    var batchSize = 64

    @Option(parsing: .unconditional, help: "Training steps per measured window.")
    var steps = 50

    @Option(parsing: .unconditional, help: "Measured windows (after one warm-up window).")
    var windows = 3

    @Option(help: "Device: cpu, opencl, …")
    var device = "cpu"

    @Option(help: "Seed of the weights and the random data.")
    var seed: UInt64 = 1

    func run() throws {
        try reportingErrors {
            let device = try Devices.select(self.device)
            let samples = steps * batchSize
            let (model, x, y) = try workloadData(samples: samples, on: device)
            try model.place(on: device, seed: seed)
            let optimizer = Adam(learningRate: 1e-3)
            let loss: Loss = workload == "forecast" ? MeanSquaredError() : BinaryCrossentropy(fromLogits: true)
            let batches = try TensorBatches(inputs: [x], targets: [y], batchSize: batchSize)
            let training = try medianRate(windows: windows, on: device) { window in
                for result in batches.batches(epoch: window) {
                    let batch = try result.get()
                    try optimizer.apply(try model.gradients(of: loss(batch.targets[0], model(batch.inputs[0], training: true))), to: model.trainableWeights)
                }
                return samples
            }
            _ = try model.predict([x.sliced(0..<min(256, samples), axis: 0)], batchSize: 256)
            let inference = try (0..<3).map { _ in
                let begin = Date()
                _ = try model.predict([x], batchSize: 256)[0].toArray()
                return Double(samples) / Date().timeIntervalSince(begin)
            }.sorted()[1]
            try printResult(["workload": workload, "batch_size": batchSize, "device": device.info.name,
                             "train_samples_per_second": training, "inference_samples_per_second": inference])
        }
    }

    /// The workload's model and random inputs and targets of the right shapes.
    private func workloadData(samples: Int, on device: any Device) throws -> (Model, Tensor, Tensor) {
        switch workload {
        case "forecast":
            let model = try Sequential([Input(shape: [48, 1]), LSTM(64), Dense(1)])
            return (model, try Tensor.normal([samples, 48, 1], seed: seed, on: device), try Tensor.normal([samples, 1], seed: seed + 1, on: device))
        case "text-lstm", "text-conv1d":
            var random = RandomGenerator(seed: seed)
            let ids = try Tensor((0..<samples * 200).map { _ in Float(1 + random.next() % 9_999) }, shape: [samples, 200], on: device)
            let labels = try Tensor((0..<samples).map { _ in Float(random.next() % 2) }, shape: [samples, 1], on: device)
            let body: [Layer] = workload == "text-lstm" ? [LSTM(64)] : [Conv1D(128, kernelSize: 5, activation: .relu), GlobalMaxPooling1D()]
            return (try Sequential([Input(shape: [200]), Embedding(inputDim: 10_000, outputDim: 64)] + body + [Dense(1)]), ids, labels)
        default:
            throw ValidationError("--workload: '\(workload)' is not forecast, text-lstm or text-conv1d")
        }
    }
}
