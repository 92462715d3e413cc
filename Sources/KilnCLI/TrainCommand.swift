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

            Transfer learning: --base FILE [--cut LAYER] [--freeze-base] --head "gap,dense:128:relu,dropout:0.3,dense:N" \
            trains a new head on a pretrained model (N = number of classes); --cache-features runs the frozen base once \
            and trains the head on its outputs. Fine-tune later with --resume CKPT --unfreeze all --learning-rate 1e-5.

            Generative models on images: --model conv-autoencoder or vae learn to rebuild them, --model dcgan to make \
            new ones (Adam 2e-4, β1 0.5); each epoch writes a PNG grid of reconstructions or samples into the run folder.
            """)

    @Option(parsing: .unconditional, help: "Output classes of a new model (default: the largest label + 1).")
    var classes: Int?

    @Option(help: "Built-in model (\((ModelZoo.allCases.map(\.rawValue) + GenerativeZoo.allCases.map(\.rawValue)).joined(separator: ", "))) or a Keras model JSON file (default: workshop-cnn; lstm-forecast for time series, text-lstm for text folders).")
    var model: String?

    @OptionGroup var data: DataOptions

    @Option(parsing: .unconditional, help: "The final epoch, as Keras's epochs: a resumed run continues up to it (so it must exceed the epochs already trained).")
    var epochs = 5

    @Option(parsing: .unconditional, help: "Samples per batch.")
    var batchSize = 32

    @Option(help: "adam, sgd, rmsprop or adamw.")
    var optimizer = "adam"

    @Option(parsing: .unconditional, help: "Learning rate (default: 1e-3 for adam/adamw/rmsprop, 1e-2 for sgd; with --resume, replaces the saved one).")
    var learningRate: Float?

    @Option(parsing: .unconditional, help: "Momentum for sgd and rmsprop.")
    var momentum: Float = 0

    @Option(parsing: .unconditional, help: "Fraction of the training data held out for validation (the last part, as Keras).")
    var validationSplit = 0.1

    @Option(help: "On-the-fly augmentation, e.g. flip,shift=0.1,rotate=0.05,zoom=0.1,crop=4.")
    var augment: String?

    @Option(help: "Input preprocessing: unit (÷255), none, tf ([-1, 1]), torch (ImageNet mean/std) or caffe (BGR, mean subtracted).")
    var preprocess = "unit"

    @Option(parsing: .unconditional, help: "Stop when val_loss has not improved for this many epochs (and restore the best weights).")
    var earlyStopping: Int?

    @Flag(help: "Write TensorBoard event files into the run folder (train/, validation/); view them with tensorboard --logdir runs/.")
    var tensorboard = false

    @Option(parsing: .unconditional, help: "With --tensorboard: weight and gradient histograms every N epochs (0: none).")
    var histogramFreq = 1

    @Option(parsing: .unconditional, help: "With --tensorboard: also log the running metrics every N steps (default: per epoch only).")
    var updateFreq: Int?

    @Option(parsing: .unconditional, help: "k-fold cross-validation: train a fresh model per fold (stratified by class; time series: contiguous folds) and report each fold's validation scores and their mean ± std (folds.csv, folds.svg, metrics.json).")
    var kFold: Int?

    @Flag(help: "With --k-fold: then train a final model on all the training data (for the folds' mean best epoch count) and test it.")
    var refit = false

    @Option(help: "Weight each class's samples in the training loss: balanced (samples / (classes · class samples)) or CLASS:WEIGHT pairs, e.g. 0:1.0,1:5.0 (others weigh 1).")
    var classWeight: String?

    @Option(help: "Device: auto, cpu, opencl, opencl:N or part of a device name (default: KILN_DEVICE or auto); a comma-separated list of OpenCL devices (opencl:0,opencl:1) trains one replica per device, data-parallel in this process.")
    var device: String?

    @Option(help: "Seed for weights, shuffling (also of train/ class folders before the validation split), dropout and augmentation.")
    var seed: UInt64 = 42

    @Option(help: "Run folder for history, metrics, checkpoint and plots (default: runs/MODEL-DATASET-TIME).")
    var out: String?

    @Option(help: "Continue training from this checkpoint (its settings are reused).")
    var resume: String?

    @Option(help: "Pretrained model to transfer from: a Kiln checkpoint, Keras .h5/.keras or ONNX file, or a torchvision architecture (\(TorchvisionZoo.allCases.map(\.rawValue).joined(separator: ", "))) with --weights.")
    var base: String?

    @Option(help: "With --base: weights to load into it (a PyTorch state dict .pth/.pt/.safetensors with torchvision's names, .h5 or .npz).")
    var weights: String?

    @Option(help: "Keep the base up to and including this layer (for ONNX: up to this value).")
    var cut: String?

    @Flag(help: "Freeze the base: only the head trains.")
    var freezeBase = false

    @Option(help: "Head layers on the base, e.g. gap,dense:128:relu,dropout:0.3,dense:N (default: gap,dense:N on images, else dense:N).")
    var head: String?

    @Flag(help: "Run the frozen base once and train the head on its cached outputs.")
    var cacheFeatures = false

    @Option(help: "With --resume: unfreeze all layers, the last N, or these (comma-separated names); all and N keep batch normalisation frozen.")
    var unfreeze: String?

    @Flag(help: "Data-parallel training under mpirun -np N: each rank trains on its share of every batch of --batch-size and the ranks average gradients over MPI; rank 0 prints and writes the run folder.")
    var distributed = false

    @Flag(help: "With --distributed: batch normalisation uses the statistics of the whole global batch, summed over the ranks every step (Keras's BatchNormalization(synchronized=True), PyTorch's SyncBatchNorm), not each rank's own.")
    var syncBatchnorm = false

    func run() throws {
        do { try start() } catch { MadeRunFolder.removeIfEmpty(); throw error }
    }

    private func start() throws {
        if syncBatchnorm, !distributed, device?.contains(",") != true {
            throw CleanExit.message("--sync-batchnorm synchronizes data-parallel replicas: use it with --distributed under mpirun, or with a list of devices")
        }
        guard distributed else { return try train(parallel: nil) }
        let world: MPICommunicator
        do { world = try MPICommunicator.world() } catch { throw CleanExit.message("\(error)") }
        let parallel = DataParallel(world), rank = world.rank
        if rank != 0 { _ = freopen("/dev/null", "w", stdout) }  // one rank reports
        do {
            try train(parallel: parallel)
        } catch {
            // The others would wait for this rank in the next reduction: end them all.
            FileHandle.standardError.write(Data("Error (rank \(rank) of \(world.size)): \(error)\n".utf8))
            MadeRunFolder.removeIfEmpty()
            world.abort()
        }
    }

    private func train(parallel: DataParallel?) throws {
        try reportingErrors {
            let devices = try Devices.selectAll(self.device ?? ProcessInfo.processInfo.environment["KILN_DEVICE"] ?? "auto"), device = devices[0]
            let replicated = devices.count > 1
            if replicated, parallel != nil { throw CleanExit.message("--distributed runs one device per MPI rank; give each rank one --device") }
            var settings = RunSettings(model: base == nil ? model ?? ModelZoo.workshopCNN.rawValue : "transfer", dataset: data.dataset, batchSize: batchSize, seed: seed,
                                       augment: augment, validationSplit: validationSplit, data: data.data, imageSize: data.imageSize,
                                       channels: data.channels, labelColumn: data.labelColumn, weightColumn: data.weightColumn, ignoreColumns: data.ignoreColumns,
                                       classWeight: classWeight, preprocess: preprocess,
                                       base: base, cut: cut, head: head, baseWeights: weights, freezeBase: freezeBase, cacheFeatures: cacheFeatures,
                                       windowing: try data.windowing(), limit: data.limit)
            let generative = try generativeModel()
            if parallel != nil || replicated, generative != nil || settings.windowing != nil || kFold != nil || settings.cacheFeatures {
                throw CleanExit.message("data-parallel training (--distributed or a list of devices) trains classifiers with fit; not time series, --k-fold, --cache-features or generative models")
            }
            if let (zoo, saved) = generative { return try self.generative(zoo, settings, saved: saved, device: device) }
            var loaded: Model?
            if let resume {
                let checkpoint = try Checkpoint.load(URL(fileURLWithPath: resume), device: device)
                if let saved = checkpoint.metadata["training"].flatMap({ try? JSONDecoder().decode(RunSettings.self, from: Data($0.utf8)) }) {
                    settings = saved
                }
                guard let compiled = checkpoint.model.compiled else { throw CleanExit.message("\(resume) holds no optimizer state; it cannot be resumed") }
                if let unfreeze {
                    try TransferLearning.unfreeze(checkpoint.model, unfreeze)
                    settings.cacheFeatures = false
                }
                if let learningRate { compiled.optimizer.learningRate = learningRate }
                guard epochs > checkpoint.model.epochsTrained else {
                    throw CleanExit.message("\(resume) has already trained \(checkpoint.model.epochsTrained) epochs; --epochs is the final epoch (as Keras's epochs), so ask for more than \(checkpoint.model.epochsTrained)")
                }
                loaded = checkpoint.model
                print("Resuming \(resume) at epoch \(checkpoint.model.epochsTrained) of \(epochs).")
            }
            if settings.windowing != nil { return try forecast(settings, resumed: loaded, device: device) }
            // Ranks other than 0 write into a folder of their own that goes away at the end.
            let scratch = parallel.flatMap { $0.communicator.rank == 0 ? nil : FileManager.default.temporaryDirectory
                .appendingPathComponent("kiln-rank-\($0.communicator.rank)-\(UUID().uuidString)") }
            defer { scratch.map { try? FileManager.default.removeItem(at: $0) } }
            let folder = try scratch.map { try ensureWritableFolder($0); return $0 } ?? runFolder(settings)
            var data = self.data
            (data.data, data.imageSize, data.channels, data.labelColumn, data.limit) = (settings.data, settings.imageSize, settings.channels,
                                                                                        settings.labelColumn, settings.limit)
            (data.weightColumn, data.ignoreColumns) = (settings.weightColumn, settings.ignoreColumns)
            let (training, test, vocabulary) = try data.load(settings.dataset, vocabulary: settings.vocabulary, shuffleSeed: settings.seed)
            settings.vocabulary = vocabulary
            if vocabulary != nil, model == nil, resume == nil, base == nil { settings.model = ModelZoo.textLSTM.rawValue }
            let normalization = try Preprocessing(preset: settings.preprocess, channels: training.sampleShape.last ?? 1)
            if let kFold {
                return try crossValidate(kFold, settings, training: training, test: test, normalization: normalization, folder: folder, device: device)
            }
            var transfer: (trunk: Model, head: [Layer])?
            if loaded == nil { (loaded, transfer) = try freshModel(settings, training: training, device: device) }
            let model = loaded!
            // One more replica per further device, built as the first (they start from its weights).
            let replicas = try [model] + devices.dropFirst().map { device in
                try resume.map { try Checkpoint.load(URL(fileURLWithPath: $0), device: device).model } ?? freshModel(settings, training: training, device: device).0
            }
            print("Training \(model.name) (\(model.parameterCount) parameters, \(model.trainableParameterCount) trainable) on \(settings.dataset) "
                  + "(\(training.count) training, \(test.count) test samples) on \(model.device!.info.name)")
            if let parallel {
                let size = parallel.communicator.size, norms = model.leafLayers.compactMap { $0 as? BatchNormalization }
                for norm in norms { norm.synchronized = syncBatchnorm }
                print("Data-parallel over \(size) MPI rank\(size == 1 ? "" : "s"): each batch of \(settings.batchSize) split "
                      + "\(settings.batchSize / size)\(settings.batchSize % size == 0 ? "" : "–\(settings.batchSize / size + 1)") per rank"
                      + (parallel.communicator.threadsMayCall ? "; gradients reduced during the backward pass" : "")
                      + (norms.isEmpty ? "" : syncBatchnorm ? "; batch normalisation over the global batch" : "; batch-norm statistics per rank"))
            }
            if replicated {
                for norm in replicas.flatMap({ $0.leafLayers.compactMap { $0 as? BatchNormalization } }) { norm.synchronized = syncBatchnorm }
                print("Data-parallel over \(devices.count) devices (\(devices.map(\.info.name).joined(separator: ", "))): each batch of \(settings.batchSize) split "
                      + "\(settings.batchSize / devices.count)\(settings.batchSize % devices.count == 0 ? "" : "–\(settings.batchSize / devices.count + 1)") per device; "
                      + "gradients summed in memory during the backward pass")
            }
            let checkpoint = ModelCheckpoint(folder.appendingPathComponent("model.safetensors"))
            checkpoint.metadata["training"] = String(decoding: try JSONEncoder().encode(settings), as: UTF8.self)
            checkpoint.metadata["preprocessing"] = settings.preprocess
            if let vocabulary { checkpoint.metadata["vocabulary"] = String(decoding: try JSONEncoder().encode(vocabulary), as: UTF8.self) }
            if let names = training.classNames { checkpoint.metadata["class_names"] = String(decoding: try JSONEncoder().encode(names), as: UTF8.self) }
            let signals = InterruptOnSignal()
            defer { signals.uninstall() }
            var callbacks: [Callback] = [signals, CSVLogger(folder.appendingPathComponent("history.csv"))]
            if let earlyStopping { callbacks.insert(EarlyStopping(monitor: "val_loss", patience: earlyStopping, restoreBestWeights: true), at: 0) }
            let board = try tensorBoard(folder)
            callbacks += [board].compactMap { $0 }
            let (start, startEpoch) = (Date(), model.epochsTrained)
            let remaining = max(epochs - model.epochsTrained, 0)
            var split = try training.split(validationFraction: settings.validationSplit)
            split.training = try weighted(split.training, settings, classes: model.outputs[0].shape.last ?? 1)
            if let transfer, settings.cacheFeatures {
                try TransferLearning.fitHead(of: model, trunk: transfer.trunk, head: transfer.head, training: split.training,
                                             validation: split.validation, epochs: remaining, batchSize: settings.batchSize,
                                             normalization: normalization, seed: settings.seed, callbacks: callbacks, cacheDirectory: folder)
            } else if replicated {
                try Model.fit(replicas: replicas, split.training, epochs: remaining, batchSize: settings.batchSize, validationData: split.validation,
                              normalization: normalization, augmentation: try settings.augment.map { try Augmentation(spec: $0) },
                              seed: settings.seed, callbacks: callbacks + [checkpoint])
            } else {
                try model.fit(split.training, epochs: remaining, batchSize: settings.batchSize, validationData: split.validation,
                              normalization: normalization, augmentation: try settings.augment.map { try Augmentation(spec: $0) },
                              seed: settings.seed, callbacks: callbacks + [checkpoint], progress: parallel.map { $0.communicator.rank == 0 } ?? true,
                              distributed: parallel)
            }
            signals.uninstall()  // a second Ctrl-C while the run is written ends the process at once
            if let parallel, parallel.communicator.rank != 0 { return }  // rank 0 tests and writes the run
            // The final state: restored best weights, an interrupted epoch's; never weights that diverged.
            do { try Checkpoint.save(model, metadata: checkpoint.metadata, to: checkpoint.url) } catch let error as TrainingError where model.lastStopReason != nil {
                print("note: \(error)")
            }
            let seconds = Date().timeIntervalSince(start)
            let report = try Report.evaluate(model, on: test, classNames: training.classNames, normalization: normalization)
            try Report.write(history: model.trainingHistory, report: report, to: folder, extra: [
                "device": model.device!.info.name, "seconds": seconds,
                "samples_per_second": Double(split.training.count * (model.epochsTrained - startEpoch)) / max(seconds, 1e-9),
                "epochs": model.epochsTrained, "stopped": model.lastStopReason ?? "", "replicas": parallel?.communicator.size ?? devices.count,
            ].merging(parallel.map { ["ranks": $0.communicator.size, "allreduce_ms_per_step": $0.statistics.millisecondsPerStep,
                                      "allreduce_exposed_ms_per_step": $0.statistics.exposedMillisecondsPerStep,
                                      "allreduce_overlap": $0.statistics.overlap,
                                      "gradient_bytes_per_step": $0.statistics.bytes / max($0.statistics.steps, 1)] } ?? [:]) { a, _ in a })
            try board?.addImage(report.confusionPNG(), tag: "test/confusion_matrix", step: model.epochsTrained)
            print(String(format: "Test loss %.4f - test accuracy %.4f", report.loss, report.accuracy))
            let written = ["history.csv", "metrics.json", "model.safetensors", "curves.svg", "confusion.svg"]
                .filter { FileManager.default.fileExists(atPath: folder.appendingPathComponent($0).path) }
            print("Wrote \(folder.path)/{\(written.joined(separator: ","))}")
            if let signal = signals.received { throw ExitCode(128 + signal) }
            if let reason = model.lastStopReason, reason.contains("TerminateOnNaN") { throw ExitCode.failure }
        }
    }

    /// A new model for `training`, placed and compiled: a built-in or JSON architecture, or a head on
    /// a pretrained base (also returned, for --cache-features).
    func freshModel(_ settings: RunSettings, training: Dataset, device: any Device) throws -> (Model, transfer: (trunk: Model, head: [Layer])?) {
        let classes = try classCount(training)
        let model: Model
        var transfer: (trunk: Model, head: [Layer])?
        if let base = settings.base {
            transfer = try transferModel(base, settings, sampleShape: training.sampleShape, classes: classes, device: device)
            model = try TransferLearning.attach(transfer!.head, to: transfer!.trunk, freezeBase: settings.freezeBase)
        } else {
            model = try loadArchitecture(settings, sampleShape: training.sampleShape, classes: classes, largestID: largestID(training))
        }
        try model.place(on: device, seed: settings.seed)
        try model.compile(optimizer: try makeOptimizer(), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: ["accuracy"])
        return (model, transfer)
    }

    /// `data` with the class weights of --class-weight as its sample weights (training data only, as Keras's class_weight).
    func weighted(_ data: Dataset, _ settings: RunSettings, classes: Int) throws -> Dataset {
        guard let spec = settings.classWeight else { return data }
        var weighted = data
        weighted.sampleWeights = try ClassWeight.sampleWeights(try ClassWeight.parse(spec, labels: data.labels ?? [], classes: classes), for: data)
        return weighted
    }

    /// The TensorBoard callback `--tensorboard` asks for, writing into the run folder.
    func tensorBoard(_ folder: URL, images: ((Int) throws -> [String: Data])? = nil) throws -> TensorBoard? {
        guard tensorboard else { return nil }
        return try TensorBoard(logDir: folder, histogramFrequency: histogramFreq, updateFrequency: updateFreq, images: images)
    }

    /// `--classes`, or the largest label + 1, with a note when the labels skip classes (a label of 200
    /// among ten classes is more likely a damaged file than 201 classes).
    private func classCount(_ data: Dataset) throws -> Int {
        let inferred = data.classCount, distinct = Set(data.labels ?? []).count
        if let classes {
            guard classes >= inferred else { throw ValidationError("--classes \(classes): the data has labels up to \(inferred - 1)") }
            return classes
        }
        if inferred > distinct, data.classNames == nil {
            print("note: labels run from 0 to \(inferred - 1) but only \(distinct) of them occur; the model gets \(inferred) outputs (set --classes to choose)")
        }
        return inferred
    }

    /// The pretrained base (cut where asked) and the new head's layers.
    private func transferModel(_ path: String, _ settings: RunSettings, sampleShape: [Int], classes: Int,
                               device: any Device) throws -> (trunk: Model, head: [Layer]) {
        let trunk: Model
        if let zoo = TorchvisionZoo(rawValue: path) {
            let base = try zoo.make(inputShape: sampleShape)
            try base.place(on: device, seed: settings.seed)
            if let weights = settings.baseWeights { try loadWeights(weights, into: base) }
            trunk = try settings.cut.map { try base.truncated(at: $0) } ?? base
        } else if path.lowercased().hasSuffix(".onnx") {  // an ONNX graph is cut at one of its values; NCHW nets take NHWC images
            trunk = try ONNXImport.load(URL(fileURLWithPath: path), device: device, output: settings.cut, channelsLast: sampleShape)
        } else {
            let base = try loadModel(path, device: device, weights: settings.baseWeights).model
            trunk = try settings.cut.map { try base.truncated(at: $0) } ?? base
        }
        let spec = settings.head ?? (trunk.outputs[0].shape.count == 3 ? "gap,dense:N" : "dense:N")
        return (trunk, try TransferLearning.head(spec, classes: classes))
    }

    /// The largest value of 1-D samples of whole non-negative numbers (token ids), else nil.
    private func largestID(_ data: Dataset) -> Int? {
        guard data.sampleShape.count == 1, case .floats(let values) = data.features,
              values.allSatisfy({ $0 >= 0 && $0 == $0.rounded() && $0 < 1e7 }), let largest = values.max() else { return nil }
        return Int(largest)
    }

    /// `--out`, or runs/MODEL-DATASET-TIME (file names without their extension), made and checked writable.
    func runFolder(_ settings: RunSettings) throws -> URL {
        func stem(_ path: String) -> String { URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent }
        let folder = URL(fileURLWithPath: out ?? "runs/\(stem(settings.model))-\(stem(settings.dataset))-\(timestamp())")
        if !FileManager.default.fileExists(atPath: folder.path) { MadeRunFolder.url = folder }
        try ensureWritableFolder(folder)
        return folder
    }

    /// A built-in model or a Keras JSON file. Text models read token ids: those of a text folder's
    /// vocabulary, or of `largestID` + 1 words for id arrays (an `.npz` `x` of shape [n, length]).
    func loadArchitecture(_ settings: RunSettings, sampleShape: [Int], classes: Int, largestID: Int? = nil) throws -> Model {
        if let zoo = ModelZoo(rawValue: settings.model) {
            if settings.vocabulary != nil, !zoo.readsText {
                throw ValidationError("--model \(zoo.rawValue) does not read text; text folders take \(ModelZoo.allCases.filter(\.readsText).map(\.rawValue).joined(separator: ", "))")
            }
            let words = settings.vocabulary?.words.count ?? largestID.map { $0 + 1 }
            if zoo.readsText, words == nil || sampleShape.count != 1 {
                throw ValidationError("--model \(zoo.rawValue) reads token ids: give it a folder of .txt files or an .npz of ids [n, length]")
            }
            return try zoo.make(inputShape: sampleShape, classes: classes, vocabulary: words)
        }
        let url = URL(fileURLWithPath: settings.model)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw ValidationError("--model: '\(settings.model)' is neither a built-in model (\(ModelZoo.allCases.map(\.rawValue).joined(separator: ", "))) nor a file")
        }
        return try KerasConfig.model(fromJSON: try Data(contentsOf: url), file: url.path)
    }

    func makeOptimizer() throws -> Optimizer {
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
        if let classes, classes <= 0 { throw ValidationError("--classes must be positive") }
        guard validationSplit > 0, validationSplit < 1 else { throw ValidationError("--validation-split must be between 0 and 1") }
        if let learningRate, !(learningRate > 0 && learningRate.isFinite) { throw ValidationError("--learning-rate must be positive") }
        guard momentum >= 0, momentum < 1 else { throw ValidationError("--momentum must be in [0, 1)") }
        if let earlyStopping, earlyStopping <= 0 { throw ValidationError("--early-stopping must be positive") }
        guard histogramFreq >= 0, (updateFreq ?? 1) > 0 else { throw ValidationError("--histogram-freq must be ≥ 0 and --update-freq positive") }
        if !tensorboard, updateFreq != nil { throw ValidationError("--update-freq needs --tensorboard") }
        if let kFold {
            guard kFold >= 2 else { throw ValidationError("--k-fold needs at least 2 folds") }
            if resume != nil || cacheFeatures { throw ValidationError("--k-fold trains fresh models: it cannot --resume or --cache-features") }
            if let model, GenerativeZoo(rawValue: model) != nil { throw ValidationError("--k-fold takes classifiers and forecasters, not --model \(model)") }
        } else if refit { throw ValidationError("--refit needs --k-fold") }
        if let augment { _ = try Augmentation(spec: augment) }
        if base == nil, cut != nil || head != nil || freezeBase || cacheFeatures || weights != nil {
            throw ValidationError("--cut, --head, --weights, --freeze-base and --cache-features need --base")
        }
        if cacheFeatures, !freezeBase { throw ValidationError("--cache-features needs --freeze-base (the base must not change)") }
        if unfreeze != nil, resume == nil { throw ValidationError("--unfreeze needs --resume") }
        if cacheFeatures, augment != nil { throw ValidationError("--cache-features computes features once, so it cannot augment") }
    }
}

/// Settings a run needs to be resumed identically, stored in its checkpoint.
struct RunSettings: Codable {
    var model: String, dataset: String
    var batchSize: Int, seed: UInt64
    var augment: String?
    var validationSplit: Double
    var data: String?, imageSize: String, channels: Int, labelColumn: String?
    /// Sample weights from a CSV column, or class weights (`balanced`, `0:1,1:5`).
    var weightColumn: String?, ignoreColumns: String?, classWeight: String?
    var preprocess: String
    var base: String?, cut: String?, head: String?
    /// `--weights` for the base.
    var baseWeights: String?
    var freezeBase: Bool, cacheFeatures: Bool
    /// Time series: how windows are cut and scaled (the standardisation once fitted).
    var windowing: TimeSeries.Windowing?
    /// Text folders: the words and sequence length of the token ids.
    var vocabulary: TextVocabulary?
    /// `--limit`: the first samples only.
    var limit: Int?
}

/// The run folder `runFolder` made (not one that was there), removed again when the command fails
/// before writing into it: a mistyped option or dataset leaves no empty runs/… folder behind.
enum MadeRunFolder {
    nonisolated(unsafe) static var url: URL?

    static func removeIfEmpty() {
        guard let url, (try? FileManager.default.contentsOfDirectory(atPath: url.path))?.isEmpty == true else { return }
        try? FileManager.default.removeItem(at: url)
    }
}

func timestamp() -> String {
    let formatter = DateFormatter()
    formatter.dateFormat = "yyyyMMdd-HHmmss"
    return formatter.string(from: Date())
}

/// Ctrl-C (SIGINT) or SIGTERM while training: the current step finishes, training ends, and the
/// command saves the checkpoint and run folder before it exits with 128 + the signal number. The
/// unfinished epoch is not counted, so `--resume` redoes it. A second signal ends the process at once.
final class InterruptOnSignal: Callback {
    nonisolated(unsafe) private static var signal: Int32 = 0

    init() {
        Self.signal = 0
        var signals = sigset_t()
        sigemptyset(&signals)
        for s in [SIGINT, SIGTERM] {
            Foundation.signal(s) { InterruptOnSignal.signal = $0; Foundation.signal($0, SIG_DFL) }
            sigaddset(&signals, s)
        }
        pthread_sigmask(SIG_UNBLOCK, &signals, nil)  // a parent may have started us with them blocked
    }

    /// The signal that interrupted training, if one did.
    var received: Int32? { Self.signal == 0 ? nil : Self.signal }

    func uninstall() { for s in [SIGINT, SIGTERM] { Foundation.signal(s, SIG_DFL) } }

    func batchDidEnd(_ step: Int, _ state: TrainingState) throws {
        guard let received, !state.interrupted else { return }
        state.interrupt(because: "\(received == SIGINT ? "Ctrl-C" : "SIGTERM") at epoch \(state.epoch), step \(step): training stopped; "
                        + "the checkpoint holds the weights after that step and \(state.epoch - 1) finished epochs")
    }
}
