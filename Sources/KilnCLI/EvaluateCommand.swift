import ArgumentParser
import Foundation
import Kiln

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Test a trained model: loss, accuracy, per-class precision/recall/F1, confusion matrix (and confusion.svg).")

    @Argument(help: "A Kiln checkpoint (.safetensors).")
    var model: String

    @OptionGroup var data: DataOptions

    @Option(help: "Device: auto, cpu, opencl, opencl:N or part of a device name.")
    var device: String?

    @Option(help: "Where to write confusion.svg.")
    var output = "confusion.svg"

    func run() throws {
        try reportingErrors {
            let (model, metadata) = try loadModel(self.model, device: try Devices.select(device))
            if let settings = metadata["training"].flatMap({ try? JSONDecoder().decode(RunSettings.self, from: Data($0.utf8)) }),
               let windowing = settings.windowing {
                return try evaluateForecast(model, windowing: windowing, validationSplit: settings.validationSplit)
            }
            if model.compiled == nil { try model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true)) }
            let vocabulary = metadata["vocabulary"].flatMap { try? JSONDecoder().decode(TextVocabulary.self, from: Data($0.utf8)) }
            let test = try data.load(data.dataset, vocabulary: vocabulary).test
            let normalization = try Preprocessing(preset: metadata["preprocessing"] ?? "unit", channels: test.sampleShape.last ?? 1)
            let report = try Report.evaluate(model, on: test, classNames: test.classNames, normalization: normalization)
            print(String(format: "Test loss %.4f - accuracy %.4f (%d samples)", report.loss, report.accuracy, report.total))
            print(report.text)
            try Data(Charts.confusion(report).utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
            print("Wrote \(output)")
        }
    }
}

extension EvaluateCommand {
    /// A forecaster on the last 15% of the rows of `--dataset` (the series it was trained on, or a later
    /// one with the same columns), cut and scaled as in training: MAE in the target's units against
    /// the persistence baseline, and forecast.svg beside `--output`.
    func evaluateForecast(_ model: Model, windowing: TimeSeries.Windowing, validationSplit: Double) throws {
        if model.compiled == nil { try model.compile(optimizer: Adam(), loss: MeanSquaredError()) }
        let url = URL(fileURLWithPath: data.dataset)
        var scaling = windowing
        let test = try TimeSeries(csv: url).split(&scaling, validation: validationSplit, test: 0.15, file: url.path).test
        let report = try ForecastReport.evaluate(model, on: test, windowing: windowing)
        print(String(format: "Test MAE %.4f %@ (persistence baseline %.4f) over %d windows", report.mae, windowing.target, report.baselineMAE, report.truth.count))
        let chart = URL(fileURLWithPath: output).deletingLastPathComponent().appendingPathComponent("forecast.svg")
        try Data(Charts.forecast(report, target: windowing.target).utf8).write(to: chart, options: .atomic)
        print("Wrote \(chart.path)")
    }
}

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Run a model on images (PNG/JPEG), texts (.txt) or .npy arrays of samples; print the top classes or the forecasts.",
        discussion: """
            Images are resized to the model's input size and preprocessed as the checkpoint's training was (--preprocess; \
            ÷255 for other models); a model that takes (channels, height, width), such as an ONNX export of a PyTorch net, \
            gets them transposed to that layout. .npy samples are fed as stored (bytes preprocessed like images). A text \
            classifier reads .txt files through its vocabulary; a forecaster reads .npy windows (N, steps, columns) of raw \
            values, scaled as in training, and prints each forecast in the target's units.
            """)

    @Argument(help: "A Kiln checkpoint (.safetensors), a Keras model (.h5, .keras), an ONNX model or a Keras model JSON.")
    var model: String

    @Option(help: "Weights for a model JSON: .h5, .npz or a PyTorch state dict (.pt, .pth, .bin, .safetensors).")
    var weights: String?

    @Argument(help: "Image files or .npy arrays of shape (N, …sample shape).")
    var inputs: [String]

    @Option(parsing: .unconditional, help: "How many classes to print per sample.")
    var top = 3

    @Option(help: "Write the raw model outputs to this .npy file.")
    var output: String?

    @Option(help: "Device: auto, cpu, opencl, opencl:N or part of a device name.")
    var device: String?

    func run() throws {
        try reportingErrors {
            let (model, metadata) = try loadModel(self.model, device: try Devices.select(device), weights: weights)
            guard let shape = model.inputs.first?.shape else { throw ValidationError("the model has no input shape") }
            let preset = metadata["preprocessing"] ?? "unit"
            let settings = metadata["training"].flatMap { try? JSONDecoder().decode(RunSettings.self, from: Data($0.utf8)) }
            if let windowing = settings?.windowing { return try forecast(model, windowing: windowing) }
            let vocabulary = metadata["vocabulary"].flatMap { try? JSONDecoder().decode(TextVocabulary.self, from: Data($0.utf8)) }
            var outputs: [Float] = [], names: [String] = []
            for path in inputs {
                let (data, normalization) = try vocabulary.map { words in
                    guard path.lowercased().hasSuffix(".txt"), let text = FileManager.default.contents(atPath: path) else {
                        throw ValidationError("\(path): a text classifier reads .txt files")
                    }
                    return (words.dataset([String(decoding: text, as: UTF8.self)], labels: [0], classNames: []), Preprocessing.none)
                } ?? samples(path, shape: shape, preset: preset)
                outputs += try model.predict(data, normalization: normalization)
                names += data.count == 1 && !path.lowercased().hasSuffix(".npy") ? [path] : (0..<data.count).map { "\(path)[\($0)]" }
            }
            let count = names.count
            let classes = outputs.count / count
            let classNames = metadata["class_names"].flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) }
                .flatMap { $0.count == classes ? $0 : nil } ?? (0..<classes).map(String.init)
            for (i, name) in names.enumerated() {
                let row = Array(outputs[i * classes ..< (i + 1) * classes])
                let peak = row.max()!
                let exp = row.map { Foundation.exp($0 - peak) }, total = exp.reduce(0, +)
                let ranked = row.indices.sorted { row[$0] > row[$1] }.prefix(top)
                print("\(name): " + ranked.map { "\(classNames[$0]) \(String(format: "%.3f", exp[$0] / total))" }.joined(separator: ", "))
            }
            if let output { try NumPy.write(outputs, shape: [count, classes], to: URL(fileURLWithPath: output)) }
        }
    }

    func validate() throws {
        guard top > 0 else { throw ValidationError("--top must be positive") }
    }

    /// A forecaster's predictions for .npy windows of raw values: scaled with the checkpoint's
    /// windowing, forecasts printed in the target's units.
    private func forecast(_ model: Model, windowing: TimeSeries.Windowing) throws {
        var forecasts: [Float] = []
        for path in inputs {
            let array = try NumPy.read(URL(fileURLWithPath: path))
            let columns = windowing.columns.count
            guard array.shape.count == 3, array.shape[1] == windowing.length, array.shape[2] == columns, array.shape[0] > 0 else {
                throw DataError(path, "holds shape \(array.shape); the forecaster takes windows (N, \(windowing.length), \(columns)) of \(windowing.columns.joined(separator: ", "))")
            }
            let scaled = array.values.enumerated().map { ($1 - windowing.mean[$0 % columns]) / windowing.std[$0 % columns] }
            let values = try model.predict(Dataset(features: .floats(scaled), sampleShape: [windowing.length, columns]), normalization: .none)
            for (i, value) in values.enumerated() {
                forecasts.append(windowing.targetValue(value))
                print("\(path)[\(i)]: \(windowing.target) \(String(format: "%.4f", forecasts.last!)) (\(windowing.horizon) step\(windowing.horizon == 1 ? "" : "s") after the window)")
            }
        }
        if let output { try NumPy.write(forecasts, shape: [forecasts.count], to: URL(fileURLWithPath: output)) }
    }

    /// The samples of one input file, and how to preprocess them.
    private func samples(_ path: String, shape: [Int], preset: String) throws -> (Dataset, Preprocessing) {
        let url = URL(fileURLWithPath: path)
        if url.pathExtension.lowercased() == "npy" {
            let array = try NumPy.read(url)
            guard Array(array.shape.suffix(shape.count)) == shape, array.shape.count == shape.count + 1 else {
                throw DataError(path, "array of shape \(array.shape) does not hold samples of shape \(shape)")
            }
            guard array.shape[0] > 0 else { throw DataError(path, "the array holds no samples (shape \(array.shape))") }
            // Samples go in exactly as the source model takes them (NHWC for Keras and Kiln models).
            guard array.dtype == "|u1" else { return (Dataset(features: .floats(array.values), sampleShape: shape), .none) }
            let data = Dataset(features: .bytes(array.values.map { UInt8($0) }), sampleShape: shape)
            return (data, try Preprocessing(preset: preset, channels: shape.last!))
        }
        let image = try ImageFolder.decode(url)
        switch shape.count == 3 ? (shape[2], shape[0]) : (0, 0) {
        case (1, _), (3, _):  // (height, width, channels), as Kiln and Keras take images
            let pixels = ImageFolder.resize(image, to: (shape[0], shape[1]), channels: shape[2])
            return (Dataset(features: .bytes(pixels), sampleShape: shape), try Preprocessing(preset: preset, channels: shape[2]))
        case (_, 1), (_, 3):  // (channels, height, width): transposed, ÷255 (per-channel presets need channels last)
            let (c, h, w) = (shape[0], shape[1], shape[2])
            let pixels = ImageFolder.resize(image, to: (h, w), channels: c)
            let planar = (0..<c * h * w).map { i in pixels[(i % (h * w)) * c + i / (h * w)] }
            return (Dataset(features: .bytes(planar), sampleShape: shape), .unitRange)
        default:
            throw ValidationError("\(path): images need a model with (height, width, channels) or (channels, height, width) inputs of 1 or 3 channels; this one takes \(shape)")
        }
    }
}

struct SummaryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "summary", abstract: "Print a model's Keras-style summary.")

    @Argument(help: "A built-in model name (also torchvision's: resnet18, vgg16_bn, …), a Kiln checkpoint (.safetensors), a Keras model (.h5, .keras) or a Keras model JSON.")
    var model: String

    @Option(help: "Input shape H,W,C for built-in models (default 28,28,1; torchvision's 224,224,3).")
    var inputShape: String?

    @Option(parsing: .unconditional, help: "Output classes for built-in models.")
    var classes = 10

    func validate() throws {
        guard classes > 0 else { throw ValidationError("--classes must be positive") }
    }

    func run() throws {
        try reportingErrors {
            let torchvision = TorchvisionZoo(rawValue: model)
            let shape = try builtInInputShape(inputShape, torchvision: torchvision != nil)
            if let zoo = ModelZoo(rawValue: model) {
                print(try zoo.make(inputShape: shape, classes: classes).summary())
            } else if let torchvision {
                print(try torchvision.make(inputShape: shape, classes: classes).summary())
            } else if model.hasSuffix(".json") {
                print(try KerasConfig.model(fromJSON: try Data(contentsOf: URL(fileURLWithPath: model)), file: model).summary())
            } else {  // a checkpoint or a Keras file
                print(try loadModel(model, device: CPUDevice.shared).model.summary())
            }
        }
    }
}
