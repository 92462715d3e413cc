import ArgumentParser
import Foundation
import Kiln

/// The fine-tuning workloads of `Scripts/benchmark.sh transfer`: a Keras application saved by Keras
/// (its `.keras` file) with a new head (global average pooling, Dense(classes)), trained with the base
/// frozen, with everything unfrozen (batch norm in training mode too), or on cached features.
struct TransferBenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transfer",
        abstract: "Fine-tuning speed of a Keras application with a new head: frozen, unfrozen, or on cached features.")

    @Option(help: "The base: a .keras or .h5 file saved by Keras (include_top=False).")
    var base: String

    @Option(help: "frozen, unfrozen or cached (the base's outputs computed once, then the head trained on them).")
    var mode = "frozen"

    @Option(parsing: .unconditional, help: "Samples per batch.")
    var batchSize = 32

    @Option(parsing: .unconditional, help: "Training steps per measured window (cached: the images are steps × batch size).")
    var steps = 10

    @Option(parsing: .unconditional, help: "Measured windows (after one warm-up window).")
    var windows = 3

    @Option(parsing: .unconditional, help: "cached: epochs of head training on the cached features.")
    var headEpochs = 10

    @Option(parsing: .unconditional, help: "Classes of the new head.")
    var classes = 5

    @Option(help: "Device: cpu, opencl, …")
    var device = "cpu"

    func run() throws {
        try reportingErrors {
            guard ["frozen", "unfrozen", "cached"].contains(mode) else { throw ValidationError("--mode: '\(mode)' is not frozen, unfrozen or cached") }
            let device = try Devices.select(self.device)
            let trunk = try KerasFile.load(URL(fileURLWithPath: base), device: device)
            let model = try TransferLearning.attach([GlobalAveragePooling2D(), Dense(classes)], to: trunk, freezeBase: mode != "unfrozen")
            try model.place(on: device, seed: 1)
            try model.compile(optimizer: Adam(learningRate: 1e-3), loss: SparseCategoricalCrossentropy(fromLogits: true))
            if mode == "unfrozen" { for layer in model.layers { layer.trainable = true } }  // batch norm trains too, as in Keras and PyTorch
            let count = steps * batchSize
            let images = try Tensor.uniform([count] + trunk.inputs[0].shape, seed: 1, on: device)
            let labels = try Tensor(labels: (0..<count).map { Int32($0 % classes) }, on: device)
            var result: [String: Any] = ["workload": URL(fileURLWithPath: base).deletingPathExtension().lastPathComponent, "mode": mode,
                                         "batch_size": batchSize, "device": device.info.name]
            if mode == "cached" {
                // One pass of the base over the images (the cache), then the head's epochs on its outputs.
                let head = try Sequential([Input(shape: trunk.outputs[0].shape), GlobalAveragePooling2D(), Dense(classes)])
                try head.place(on: device, seed: 1)
                try head.compile(optimizer: Adam(learningRate: 1e-3), loss: SparseCategoricalCrossentropy(fromLogits: true))
                var begin = Date()
                let cached = try trunk.predict([images], batchSize: 128)[0]
                try device.synchronize()
                let cacheSeconds = Date().timeIntervalSince(begin)
                begin = Date()
                try head.fit(x: cached, y: labels, epochs: headEpochs, batchSize: batchSize, seed: 1, progress: false)
                try device.synchronize()
                let headSeconds = Date().timeIntervalSince(begin)
                result.merge(["cache_seconds": cacheSeconds, "head_seconds": headSeconds, "head_epochs": headEpochs,
                              "head_cost_in_base_passes": headSeconds / cacheSeconds,
                              "train_samples_per_second": Double(count * headEpochs) / (cacheSeconds + headSeconds)]) { $1 }
            } else {
                let batches = try TensorBatches(inputs: [images], targets: [labels], batchSize: batchSize)
                let (loss, optimizer) = (SparseCategoricalCrossentropy(fromLogits: true), model.compiled!.optimizer)
                result["train_samples_per_second"] = try medianRate(windows: windows, on: device) { window in
                    for result in batches.batches(epoch: window) {
                        let batch = try result.get()
                        try optimizer.apply(model.gradients(of: loss(batch.targets[0], model(batch.inputs[0], training: true))), to: model.trainableWeights)
                    }
                    return count
                }
            }
            try printResult(result)
        }
    }
}
