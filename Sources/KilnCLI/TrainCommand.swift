import ArgumentParser
import Foundation
import Kiln

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model on a dataset, with Keras-style progress, history, plots and checkpoints.",
        discussion: """
            With no options it trains the workshop CNN on Fashion-MNIST for 5 epochs (Adam 1e-3, batch 32, \
            sparse categorical cross-entropy from logits) and writes history.csv, metrics.json, model.safetensors, \
            curves.svg and confusion.svg into the run folder.
            """)

    @Option(help: "Built-in model (\(ModelZoo.allCases.map(\.rawValue).joined(separator: ", "))) or a Keras model JSON file.")
    var model = ModelZoo.workshopCNN.rawValue

    @OptionGroup var data: DataOptions

    @Option(help: "Total epochs to train (a resumed run continues up to this count).")
    var epochs = 5

    @Option(help: "Samples per batch.")
    var batchSize = 32

    @Option(help: "adam, sgd, rmsprop or adamw.")
    var optimizer = "adam"

    @Option(help: "Learning rate (default: 1e-3 for adam/adamw/rmsprop, 1e-2 for sgd).")
    var learningRate: Float?

    @Option(help: "Momentum for sgd and rmsprop.")
    var momentum: Float = 0

    @Option(help: "Fraction of the training data held out for validation (the last part, as Keras).")
    var validationSplit = 0.1

    @Option(help: "On-the-fly augmentation, e.g. flip,shift=0.1,rotate=0.05,zoom=0.1,crop=4.")
    var augment: String?

    @Option(help: "Stop when val_loss has not improved for this many epochs (and restore the best weights).")
    var earlyStopping: Int?

    @Option(help: "Device: auto, cpu, opencl, opencl:N or part of a device name (default: KILN_DEVICE or auto).")
    var device: String?

    @Option(help: "Seed for weights, shuffling, dropout and augmentation.")
    var seed: UInt64 = 42

    @Option(help: "Run folder for history, metrics, checkpoint and plots (default: runs/MODEL-DATASET-TIME).")
    var out: String?

    @Option(help: "Continue training from this checkpoint (its settings are reused).")
    var resume: String?

    func run() throws {
        try reportingErrors {
            let device = try Devices.select(self.device)
            var settings = RunSettings(model: model, dataset: data.dataset, batchSize: batchSize, seed: seed, augment: augment,
                                       validationSplit: validationSplit, data: data.data, imageSize: data.imageSize,
                                       channels: data.channels, labelColumn: data.labelColumn)
            var model: Model!
            if let resume {
                let checkpoint = try Checkpoint.load(URL(fileURLWithPath: resume), device: device)
                model = checkpoint.model
                if let saved = checkpoint.metadata["training"].flatMap({ try? JSONDecoder().decode(RunSettings.self, from: Data($0.utf8)) }) {
                    settings = saved
                }
                guard model.compiled != nil else { throw ValidationError("\(resume) holds no optimizer state; it cannot be resumed") }
                print("Resuming \(resume) at epoch \(model.epochsTrained) of \(epochs).")
            }
            var data = self.data
            (data.data, data.imageSize, data.channels, data.labelColumn) = (settings.data, settings.imageSize, settings.channels, settings.labelColumn)
            let (training, test) = try data.load(settings.dataset)
            if resume == nil { model = try loadArchitecture(settings, sampleShape: training.sampleShape, classes: training.classCount) }
            if model.device == nil {
                try model.place(on: device, seed: settings.seed)
                try model.compile(optimizer: try makeOptimizer(), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: ["accuracy"])
            }
            print("Training \(model.name) (\(model.parameterCount) parameters) on \(settings.dataset) (\(training.count) training, "
                  + "\(test.count) test samples) on \(model.device!.info.name)")
            let folder = URL(fileURLWithPath: out ?? "runs/\(settings.model.replacingOccurrences(of: "/", with: "_"))-\(settings.dataset)-\(timestamp())")
            let checkpoint = ModelCheckpoint(folder.appendingPathComponent("model.safetensors"))
            checkpoint.metadata["training"] = String(decoding: try JSONEncoder().encode(settings), as: UTF8.self)
            if let names = training.classNames { checkpoint.metadata["class_names"] = String(decoding: try JSONEncoder().encode(names), as: UTF8.self) }
            var callbacks: [Callback] = [CSVLogger(folder.appendingPathComponent("history.csv")), checkpoint]
            if let earlyStopping { callbacks.insert(EarlyStopping(monitor: "val_loss", patience: earlyStopping, restoreBestWeights: true), at: 0) }
            let start = Date()
            let remaining = epochs - model.epochsTrained
            let split = try training.split(validationFraction: settings.validationSplit)
            let augmentation = try settings.augment.map { try Augmentation(spec: $0) }
            try model.fit(split.training, epochs: max(remaining, 0), batchSize: settings.batchSize, validationData: split.validation,
                          augmentation: augmentation, seed: settings.seed, callbacks: callbacks)
            let seconds = Date().timeIntervalSince(start)
            let report = try Report.evaluate(model, on: test, classNames: training.classNames)
            try Report.write(history: model.trainingHistory, report: report, to: folder, extra: [
                "device": model.device!.info.name, "seconds": seconds,
                "samples_per_second": Double(split.training.count * max(remaining, 0)) / max(seconds, 1e-9),
                "epochs": model.epochsTrained, "stopped": model.lastStopReason ?? "",
            ])
            print(String(format: "Test loss %.4f - test accuracy %.4f", report.loss, report.accuracy))
            print("Wrote \(folder.path)/{history.csv,metrics.json,model.safetensors,curves.svg,confusion.svg}")
            if let reason = model.lastStopReason, reason.contains("TerminateOnNaN") { throw ExitCode.failure }
        }
    }

    private func loadArchitecture(_ settings: RunSettings, sampleShape: [Int], classes: Int) throws -> Model {
        if let zoo = ModelZoo(rawValue: settings.model) { return try zoo.make(inputShape: sampleShape, classes: classes) }
        let url = URL(fileURLWithPath: settings.model)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw ValidationError("--model: '\(settings.model)' is neither a built-in model (\(ModelZoo.allCases.map(\.rawValue).joined(separator: ", "))) nor a file")
        }
        return try KerasConfig.model(fromJSON: try Data(contentsOf: url), file: url.path)
    }

    private func makeOptimizer() throws -> Optimizer {
        switch optimizer.lowercased() {
        case "adam": return Adam(learningRate: learningRate ?? 1e-3)
        case "adamw": return AdamW(learningRate: learningRate ?? 1e-3)
        case "sgd": return SGD(learningRate: learningRate ?? 1e-2, momentum: momentum)
        case "rmsprop": return RMSprop(learningRate: learningRate ?? 1e-3, momentum: momentum)
        default: throw ValidationError("--optimizer: unknown optimizer '\(optimizer)' (adam, sgd, rmsprop, adamw)")
        }
    }

    func validate() throws {
        guard epochs > 0 else { throw ValidationError("--epochs must be positive") }
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
        guard validationSplit > 0, validationSplit < 1 else { throw ValidationError("--validation-split must be between 0 and 1") }
        if let augment { _ = try Augmentation(spec: augment) }
    }
}

/// Settings a run needs to be resumed identically, stored in its checkpoint.
struct RunSettings: Codable {
    var model: String, dataset: String
    var batchSize: Int, seed: UInt64
    var augment: String?
    var validationSplit: Double
    var data: String?, imageSize: String, channels: Int, labelColumn: String?
}

func timestamp() -> String {
    let formatter = DateFormatter()
    formatter.dateFormat = "yyyyMMdd-HHmmss"
    return formatter.string(from: Date())
}
