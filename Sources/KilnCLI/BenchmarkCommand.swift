import ArgumentParser
import Foundation
import Kiln

struct BenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "benchmark",
        abstract: "Measure Kiln's kernels.",
        subcommands: [OpsBenchmarkCommand.self, PipelineBenchmarkCommand.self, TrainBenchmarkCommand.self, SequenceBenchmarkCommand.self,
                      GenerativeBenchmarkCommand.self, TransferBenchmarkCommand.self])
}

struct OpsBenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ops",
        abstract: "GEMM and conv2d GFLOP/s on each device, beside OpenBLAS/CLBlast called directly.")

    @Option(help: "Devices to measure, comma-separated (cpu, opencl, opencl:N, a name); default: all.")
    var devices: String?

    @Option(help: "GEMM sizes (square), comma-separated.")
    var gemmSizes = "256,512,1024,2048"

    @Option(help: "Batch size of the convolution layers.")
    var batch = 32

    @Option(help: "Seconds per measurement.")
    var seconds = 0.5

    func run() throws {
        let selected = try devices.map { try $0.split(separator: ",").map { try Devices.select(String($0)) } }
            ?? Devices.available().devices
        let sizes = try gemmSizes.split(separator: ",").map { text -> Int in
            guard let n = Int(text.trimmingCharacters(in: .whitespaces)), n > 0 else {
                throw ValidationError("--gemm-sizes: '\(text)' is not a positive integer")
            }
            return n
        }
        // The small CNN's layers: 28×28×1 → 32 filters 3×3, and 13×13×32 → 32 filters 3×3.
        let layers = [
            ConvShape(batch: batch, inChannels: 1, outChannels: 32,
                      window: try Window2D(input: (28, 28), kernel: (3, 3), stride: (1, 1), padding: .valid)),
            ConvShape(batch: batch, inChannels: 32, outChannels: 32,
                      window: try Window2D(input: (13, 13), kernel: (3, 3), stride: (1, 1), padding: .valid)),
        ]
        print(String(format: "FP32 FMA peak of this machine: %.0f GFLOP/s (%d threads)", OpBenchmark.fmaPeak(), ProcessInfo.processInfo.activeProcessorCount))
        print(pad("backend", 8) + pad("op", 25) + pad("size", 28) + pad("Kiln GFLOP/s", 14, right: true)
              + pad("raw GFLOP/s", 13, right: true) + pad("Kiln/raw", 10, right: true))
        for device in selected {
            print("# \(device.info.name)")
            let benchmark = OpBenchmark(device: device, seconds: seconds)
            var rows = try benchmark.gemm(sizes: sizes)
            for layer in layers { rows += try benchmark.conv2d(layer) }
            for row in rows {
                print(pad(row.backend, 8) + pad(row.op, 25) + pad(row.size, 28) + pad(String(format: "%.1f", row.gflops), 14, right: true)
                      + pad(row.rawGflops.map { String(format: "%.1f", $0) } ?? "-", 13, right: true)
                      + pad(row.rawGflops.map { String(format: "%.1f%%", 100 * row.gflops / $0) } ?? "-", 10, right: true))
            }
        }
    }

    private func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let space = String(repeating: " ", count: max(0, width - text.count))
        return right ? space + text : text + space
    }
}

struct PipelineBenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "Samples/s of the input pipeline alone (shuffle, normalise, optionally augment, upload) on Fashion-MNIST.")

    @Option(help: "Samples per batch.")
    var batchSize = 32

    @Option(help: "Augmentation spec, e.g. flip,shift=0.1 (default: none).")
    var augment: String?

    @Option(help: "Device the batches are uploaded to.")
    var device = "cpu"

    func run() throws {
        try reportingErrors {
            let data = try NamedDataset.fashionMNIST.load(.train)
            let loader = try BatchLoader(data, batchSize: batchSize, shuffle: true, seed: 1, augmentation: try augment.map { try Augmentation(spec: $0) })
            let target = try Devices.select(device)
            for epoch in 1...3 {
                let start = Date()
                var samples = 0
                for batch in loader.batches(epoch: epoch, on: target) { samples += try batch.get().count }
                try target.synchronize()
                let seconds = Date().timeIntervalSince(start)
                print(String(format: "epoch %d: %d samples in %.2f s = %.0f samples/s", epoch, samples, seconds, Double(samples) / seconds))
            }
        }
    }
}

struct TrainBenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training and inference throughput of the workshop CNN on Fashion-MNIST, as JSON (Scripts/benchmark.sh compares it with Keras and PyTorch).")

    @Option(help: "Samples per training batch.")
    var batchSize = 32

    @Option(help: "Steps per measured window.")
    var steps = 200

    @Option(help: "Measured windows (after one warm-up window); the median is reported.")
    var windows = 3

    @Option(help: "Full epochs to train afterwards for test accuracy (0: none).")
    var epochs = 0

    @Option(help: "Seed of the weights and the data order.")
    var seed: UInt64 = 1

    @Option(help: "Device: auto, cpu, opencl, opencl:N or part of a device name.")
    var device = "cpu"

    @Flag(help: "Skip the inference measurement (e.g. when profiling training alone).")
    var noInference = false

    @Option(help: "Folder with the Fashion-MNIST files (default: /usr/share/datasets/fashion-mnist).")
    var data: String?

    func run() throws {
        try reportingErrors {
            let start = Date()
            let device = try Devices.select(self.device)
            let folder = data.map { URL(fileURLWithPath: $0) }
            let (train, test) = (try NamedDataset.fashionMNIST.load(.train, from: folder), try NamedDataset.fashionMNIST.load(.test, from: folder))
            let model = try ModelZoo.workshopCNN.make(inputShape: [28, 28, 1], classes: 10)
            try model.place(on: device, seed: seed)
            try model.compile(optimizer: Adam(learningRate: 1e-3), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: ["accuracy"])
            let loader = try BatchLoader(train, batchSize: batchSize, shuffle: true, seed: seed)
            let loss = SparseCategoricalCrossentropy(fromLogits: true)
            var firstStep: Double?
            var rates: [Double] = []
            var batches = loader.batches(epoch: 1, on: device).makeIterator()
            for window in 0...windows {
                let begin = Date()
                for _ in 0..<steps {
                    guard let result = batches.next() else { batches = loader.batches(epoch: 2 + window, on: device).makeIterator(); continue }
                    let batch = try result.get()
                    try loss(batch.targets[0], model(batch.inputs[0], training: true)).backward()
                    try model.compiled!.optimizer.apply(to: model.trainableWeights)
                    if firstStep == nil { try device.synchronize(); firstStep = Date().timeIntervalSince(start) }
                }
                try device.synchronize()
                if window > 0 { rates.append(Double(steps * batchSize) / Date().timeIntervalSince(begin)) }
            }
            // Inference, batch 256: the median of 3 passes over the test set after one warm-up batch
            // (as the Python side does).
            var inferenceRates: [Double] = [0]
            if !noInference {
                _ = try model.predict(test.prefix(256), batchSize: 256)
                inferenceRates = try (0..<3).map { _ in
                    let start = Date()
                    _ = try model.predict(test, batchSize: 256)
                    return Double(test.count) / Date().timeIntervalSince(start)
                }.sorted()
            }
            let inference = inferenceRates[inferenceRates.count / 2]
            var result: [String: Any] = [
                "engine": "kiln", "device": device.info.name, "batch_size": batchSize,
                "train_samples_per_second": rates.sorted()[rates.count / 2], "inference_images_per_second": inference,
                "first_step_seconds": firstStep ?? 0,
            ]
            if epochs > 0 {
                let fresh = try ModelZoo.workshopCNN.make(inputShape: [28, 28, 1], classes: 10)
                try fresh.place(on: device, seed: seed)
                try fresh.compile(optimizer: Adam(learningRate: 1e-3), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: ["accuracy"])
                var accuracies: [Float] = []
                for _ in 0..<epochs {
                    try fresh.fit(train, epochs: 1, batchSize: batchSize, seed: seed, progress: false)
                    accuracies.append(try fresh.evaluate(test, batchSize: 256)["accuracy"]!)
                }
                result["test_accuracy_per_epoch"] = accuracies
            }
            var usage = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usage)
            result["peak_rss_mb"] = Double(usage.ru_maxrss) / 1024
            print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), as: UTF8.self))
            if let profile = (device as? OpenCLDevice)?.profileReport() { FileHandle.standardError.write(Data((profile + "\n").utf8)) }
        }
    }
}

/// The median of `windows` measured rates after one warm-up window: `body(window)` does a window's
/// work and returns how many steps or samples it did.
func medianRate(windows: Int, on device: any Device, _ body: (Int) throws -> Int) throws -> Double {
    var rates: [Double] = []
    for window in 0...windows {
        let begin = Date()
        let done = try body(window)
        try device.synchronize()
        if window > 0 { rates.append(Double(done) / Date().timeIntervalSince(begin)) }
    }
    return rates.sorted()[rates.count / 2]
}

/// A workload benchmark's result as one JSON line, with the process's peak memory.
func printResult(_ result: [String: Any]) throws {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let all = result.merging(["engine": "kiln", "peak_rss_mb": Double(usage.ru_maxrss) / 1024]) { $1 }
    print(String(decoding: try JSONSerialization.data(withJSONObject: all, options: [.sortedKeys]), as: UTF8.self))
}
