import ArgumentParser
import Foundation
import Kiln

/// `--dataset`, `--data` and the options of file datasets, shared by train and evaluate.
struct DataOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Dataset: \(NamedDataset.allCases.map(\.rawValue).joined(separator: ", ")), or a path: an image folder "
                               + "(class sub-folders, optionally under train/ and test/), a .csv file or a Keras-style .npz "
                               + "(x_train, y_train, x_test, y_test)."))
    var dataset = NamedDataset.fashionMNIST.rawValue

    @Option(help: "Folder with a named dataset's files (default: /usr/share/datasets/fashion-mnist, else ~/.cache/kiln/datasets/NAME).")
    var data: String?

    @Option(help: "Image size HEIGHT,WIDTH for image folders.")
    var imageSize = "64,64"

    @Option(help: "Channels for image folders: 1 (gray) or 3 (RGB).")
    var channels = 3

    @Option(help: "Label column of a .csv file (default: the last).")
    var labelColumn: String?
    @Option(help: "Column of a .csv file holding each sample's weight in the loss (an .npz gives them as w_train/w_test or w).")
    var weightColumn: String?
    @Option(help: "Columns of a .csv file to leave out, comma-separated (dates, ids).")
    var ignoreColumns: String?

    @Option(help: "Time series (.csv, rows in time order): the column to forecast; needs --window.")
    var target: String?

    @Option(parsing: .unconditional, help: "Time series: steps per input window (Keras's sequence_length).")
    var window: Int?

    @Option(parsing: .unconditional, help: "Time series: how many rows after a window's last row its target lies.")
    var horizon = 1

    @Option(parsing: .unconditional, help: "Time series: rows between the steps of a window.")
    var samplingRate = 1

    @Option(parsing: .unconditional, help: "Time series: rows between the starts of consecutive windows.")
    var stride = 1

    @Option(parsing: .unconditional, help: "Text folders: token ids per text (longer texts are cut, shorter ones padded).")
    var sequenceLength = 200

    @Option(parsing: .unconditional, help: "Text folders: the most frequent training words kept (ids 0 and 1 are padding and unknown words).")
    var vocabularySize = 10_000

    @Option(parsing: .unconditional, help: "Use only the first N training samples and N/5 test samples (quick trials).")
    var limit: Int?

    /// The windowing asked for with --target and --window, if any.
    func windowing() throws -> TimeSeries.Windowing? {
        guard target != nil || window != nil else { return nil }
        guard let target, let window else { throw ValidationError("time series need both --target COLUMN and --window STEPS") }
        guard window > 0, horizon >= 0, samplingRate > 0, stride > 0 else {
            throw ValidationError("--window, --sampling-rate and --stride must be positive and --horizon not negative")
        }
        return TimeSeries.Windowing(target: target, length: window, samplingRate: samplingRate, stride: stride, horizon: horizon)
    }

    /// Training and test data; file datasets without a test part keep a shuffled 20% for testing (the
    /// same 20% whatever the run's seed), and training parts read from class folders are shuffled by
    /// `shuffleSeed` (the validation split takes their last part; Keras's `*_dataset_from_directory(seed:)`).
    /// Text folders become token ids of `vocabulary`, else of one adapted to the training texts.
    func load(_ source: String, vocabulary: TextVocabulary? = nil,
              shuffleSeed: UInt64 = 1) throws -> (training: Dataset, test: Dataset, vocabulary: TextVocabulary?) {
        let url = URL(fileURLWithPath: source)
        guard TextFolder.holdsText(url) else {
            let (training, test) = try load(source, shuffleSeed: shuffleSeed)
            guard let limit else { return (training, test, nil) }
            guard limit > 0 else { throw ValidationError("--limit must be positive") }
            return (training.subset(Array(0..<min(limit, training.count))), test.subset(Array(0..<min(max(limit / 5, 1), test.count))), nil)
        }
        guard sequenceLength > 0, vocabularySize > 2 else { throw ValidationError("--sequence-length must be positive and --vocabulary-size above 2") }
        let train = url.appendingPathComponent("train"), testFolder = url.appendingPathComponent("test")
        var (training, test): ([String], [String]) = ([], [])
        var (trainingLabels, testLabels): ([Int32], [Int32]) = ([], [])
        let classNames: [String]
        if FileManager.default.fileExists(atPath: train.path), FileManager.default.fileExists(atPath: testFolder.path) {
            let (a, b) = (try TextFolder.documents(train), try TextFolder.documents(testFolder))
            guard a.classNames == b.classNames else { throw DataError(source, "train/ and test/ have different classes: \(a.classNames) and \(b.classNames)") }
            (training, trainingLabels, test, testLabels, classNames) = (a.texts, a.labels, b.texts, b.labels, a.classNames)
            var random = RandomGenerator(seed: shuffleSeed)  // class by class on disk: shuffled so the validation split holds every class
            let order = random.permutation(training.count)
            (training, trainingLabels) = (order.map { training[$0] }, order.map { trainingLabels[$0] })
        } else {
            let all = try TextFolder.documents(url)
            let order = try holdOutOrder(all.texts.count, seed: 1)
            (training, trainingLabels) = (order.training.map { all.texts[$0] }, order.training.map { all.labels[$0] })
            (test, testLabels) = (order.test.map { all.texts[$0] }, order.test.map { all.labels[$0] })
            classNames = all.classNames
        }
        let words = vocabulary ?? TextVocabulary(adaptingTo: training, size: vocabularySize, sequenceLength: sequenceLength)
        return (words.dataset(training, labels: trainingLabels, classNames: classNames), words.dataset(test, labels: testLabels, classNames: classNames), words)
    }

    /// Training and test data of a file or named dataset (images, CSV, npz).
    private func load(_ source: String, shuffleSeed: UInt64) throws -> (training: Dataset, test: Dataset) {
        if let named = NamedDataset(rawValue: source.lowercased()) {
            let directory = data.map { URL(fileURLWithPath: $0) }
            return (try named.load(.train, from: directory), try named.load(.test, from: directory))
        }
        let url = URL(fileURLWithPath: source)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw ValidationError("--dataset: '\(source)' is neither a known dataset (\(NamedDataset.allCases.map(\.rawValue).joined(separator: ", "))) nor a file or folder")
        }
        if isDirectory.boolValue {
            let size = imageSize.split(separator: ",").compactMap { Int($0) }
            guard size.count == 2, size.allSatisfy({ $0 > 0 }), channels == 1 || channels == 3 else {
                throw ValidationError("--image-size takes HEIGHT,WIDTH and --channels 1 or 3")
            }
            let train = url.appendingPathComponent("train"), test = url.appendingPathComponent("test")
            if FileManager.default.fileExists(atPath: train.path), FileManager.default.fileExists(atPath: test.path) {
                return (try ImageFolder.dataset(train, size: (size[0], size[1]), channels: channels).shuffled(seed: shuffleSeed),  // see the text folders
                        try ImageFolder.dataset(test, size: (size[0], size[1]), channels: channels))
            }
            return try holdOut(try ImageFolder.dataset(url, size: (size[0], size[1]), channels: channels), seed: 1)
        }
        switch url.pathExtension.lowercased() {
        case "csv": return try holdOut(try CSVData.dataset(url, labelColumn: labelColumn, weightColumn: weightColumn,
                                                                 ignoring: ignoreColumns?.split(separator: ",").map(String.init) ?? []), seed: 1)
        case "npz":
            let arrays = try NumPy.readArchive(url)
            func pair(_ x: String, _ y: String) throws -> Dataset {
                guard let xs = arrays[x], let ys = arrays[y] else {
                    throw DataError(url.path, "expected arrays \(x) and \(y) (found: \(arrays.keys.sorted().joined(separator: ", ")))")
                }
                var data = try NumPy.dataset(x: xs, y: ys, file: url.path)
                if let w = arrays[x.replacingOccurrences(of: "x", with: "w")] {  // w_train beside x_train, w beside x
                    guard w.shape == [data.count] else { throw DataError(url.path, "sample weights \(w.shape) do not match \(data.count) samples") }
                    data.sampleWeights = w.values
                }
                return data
            }
            if arrays["x_test"] != nil { return (try pair("x_train", "y_train"), try pair("x_test", "y_test")) }
            return try holdOut(try pair(arrays["x_train"] != nil ? "x_train" : "x", arrays["y_train"] != nil ? "y_train" : "y"), seed: 1)
        default:
            throw ValidationError("--dataset: cannot read '\(source)'; expected an image folder, .csv or .npz")
        }
    }

    /// A shuffled 80/20 split of a dataset that has no test part.
    private func holdOut(_ data: Dataset, seed: UInt64) throws -> (training: Dataset, test: Dataset) {
        let order = try holdOutOrder(data.count, seed: seed)
        return (data.subset(order.training), data.subset(order.test))
    }

    private func holdOutOrder(_ count: Int, seed: UInt64) throws -> (training: [Int], test: [Int]) {
        var random = RandomGenerator(seed: seed)
        let order = random.permutation(count)
        let cut = max(1, count * 4 / 5)
        guard cut < count else { throw DataError("dataset", "\(count) samples are too few to hold some out for testing") }
        return (Array(order[..<cut]), Array(order[cut...]))
    }
}

/// Runs a command body, turning Kiln's errors into one clear line and a non-zero exit.
func reportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let error as DataError {
        throw CleanExit.message(error.description)
    } catch let error as TensorError {
        throw CleanExit.message(error.description)
    } catch let error as DeviceError {
        throw CleanExit.message(error.description)
    } catch let error as TrainingError {
        throw CleanExit.message(error.description)
    }
}

/// An error printed as `Error: message` by ArgumentParser, with exit code 1.
enum CleanExit: Error, CustomStringConvertible {
    case message(String)
    var description: String { if case .message(let text) = self { text } else { "" } }
}

/// Loads a model file, with its metadata: a Kiln checkpoint (.safetensors, without its optimizer state),
/// a Keras model (.h5, .keras), an ONNX model or a Keras model JSON, whose weights may come from
/// `weights` (.h5, .npz, or a PyTorch state dict: .pt, .pth, .bin or .safetensors).
func loadModel(_ path: String, device: (any Device)?, weights: String? = nil) throws -> (model: Model, metadata: [String: String]) {
    let url = URL(fileURLWithPath: path)
    guard FileManager.default.fileExists(atPath: url.path) else { throw ValidationError("no such file: \(path)") }
    let loaded: (model: Model, metadata: [String: String])
    switch url.pathExtension.lowercased() {
    case "json":
        let model = try KerasConfig.model(fromJSON: try Data(contentsOf: url), file: path)
        try model.place(on: device)
        loaded = (model, [:])
    case "h5", "hdf5", "keras": loaded = (try KerasFile.load(url, device: device), [:])
    case "onnx": loaded = (try ONNXImport.load(url, device: device), [:])
    default: loaded = try Checkpoint.load(url, device: device, optimizerState: false)
    }
    if let weights { try loadWeights(weights, into: loaded.model) }
    return loaded
}

/// Loads weights into a placed model by the file's kind: Keras .h5, NumPy .npz, or a PyTorch state
/// dict (.pt, .pth, .bin, .safetensors).
func loadWeights(_ path: String, into model: Model) throws {
    let file = URL(fileURLWithPath: path)
    switch file.pathExtension.lowercased() {
    case "h5", "hdf5": try KerasFile.loadWeights(file, into: model)
    case "npz": try WeightBundle.load(file, into: model)
    case "safetensors", "pt", "pth", "bin": try PyTorchWeights.load(file, into: model)
    default: throw ValidationError("--weights: '\(path)' is not a .h5, .npz, .pt, .pth, .bin or .safetensors file")
    }
}

/// `--input-shape` of a built-in model: H,W,C given, else 28,28,1 (torchvision's 224,224,3).
func builtInInputShape(_ text: String?, torchvision: Bool) throws -> [Int] {
    let shape = (text ?? (torchvision ? "224,224,3" : "28,28,1")).split(separator: ",").compactMap { Int($0) }
    guard !shape.isEmpty, shape.allSatisfy({ $0 > 0 }) else { throw ValidationError("--input-shape takes positive integers like 28,28,1") }
    return shape
}
