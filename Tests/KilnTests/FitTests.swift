import Foundation
import Testing
@testable import Kiln

@Suite("Training loop and checkpoints") struct FitTests {
    /// 240 noisy 8×8 images of 3 classes (a bright row, column or diagonal).
    static func toyImages(seed: String = "toy") -> Dataset {
        var random = Random(seed)
        var pixels: [UInt8] = [], labels: [Int32] = []
        for i in 0..<240 {
            let label = i % 3
            for y in 0..<8 { for x in 0..<8 {
                let on = label == 0 ? y == 3 : label == 1 ? x == 4 : x == y
                pixels.append(UInt8(min(255, (on ? 180 : 20) + random.int(60))))
            }}
            labels.append(Int32(label))
        }
        return Dataset(features: .bytes(pixels), sampleShape: [8, 8, 1], labels: labels, classNames: ["row", "column", "diagonal"])
    }

    static func toyModel() throws -> Sequential {
        try Sequential([Input(shape: [8, 8, 1]), Conv2D(4, kernelSize: 3, activation: .relu), BatchNormalization(), MaxPooling2D(2),
                        Dropout(0.3), Flatten(), Dense(3)], name: "toy")
    }

    static func trained(epochs: Int, on device: any Device = CPUDevice.shared, callbacks: [Callback] = []) throws -> Model {
        let model = try toyModel()
        try model.place(on: device, seed: 4)
        try model.compile(optimizer: Adam(learningRate: 0.01), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: ["accuracy"])
        try model.fit(toyImages(), epochs: epochs, batchSize: 16, validationSplit: 0.25, augmentation: Augmentation(horizontalFlip: true),
                      seed: 5, callbacks: callbacks, progress: false)
        return model
    }

    @Test(arguments: Backend.all)
    func fitLearnsAndEvaluates(_ backend: Backend) throws {
        let model = try Self.trained(epochs: 3, on: backend.device)
        let history = model.trainingHistory
        #expect(history.epochs == [1, 2, 3])
        #expect(history.names.starts(with: ["loss", "accuracy", "val_loss", "val_accuracy"]))
        #expect(history["loss"]!.last! < history["loss"]!.first!)
        let logs = try model.evaluate(Self.toyImages(seed: "test"))
        #expect(logs["accuracy"]! > 0.9, "\(logs)")
        let report = try Report.evaluate(model, on: Self.toyImages(seed: "test"), classNames: nil)
        #expect(report.total == 240 && abs(report.accuracy - logs["accuracy"]!) < 1e-6)
        #expect(report.classNames == ["row", "column", "diagonal"])
    }

    @Test func sameSeedGivesBitIdenticalHistoryOnCPU() throws {
        #expect(try Self.trained(epochs: 2).trainingHistory == Self.trained(epochs: 2).trainingHistory)
    }

    @Test func checkpointRoundTripAndExactResume() throws {
        let folder = try temporaryFolder()
        let url = folder.appendingPathComponent("toy.safetensors")
        let straight = try Self.trained(epochs: 2)

        let first = try Self.trained(epochs: 1)
        try Checkpoint.save(first, metadata: ["note": "half way"], to: url)
        let (resumed, metadata) = try Checkpoint.load(url, device: CPUDevice.shared)
        #expect(metadata["note"] == "half way")
        #expect(resumed.epochsTrained == 1 && resumed.trainingHistory == first.trainingHistory)
        #expect(resumed.summary() == first.summary())
        for (a, b) in zip(first.weights, resumed.weights) { #expect(try a.value.toArray() == b.value.toArray(), "\(a.path)") }
        try resumed.fit(Self.toyImages(), epochs: 1, batchSize: 16, validationSplit: 0.25, augmentation: Augmentation(horizontalFlip: true),
                        seed: 5, progress: false)
        #expect(resumed.trainingHistory == straight.trainingHistory)
        for (a, b) in zip(straight.weights, resumed.weights) { #expect(try a.value.toArray() == b.value.toArray(), "\(a.path) after resuming") }
    }

    /// A checkpoint of a partly frozen model reloads frozen, with optimizer state for the weights that
    /// trained only; unfrozen weights then train from zero state. Misplaced state is refused.
    @Test func frozenLayersAndPartialOptimizerState() throws {
        let folder = try temporaryFolder()
        let url = folder.appendingPathComponent("frozen.safetensors")
        let model = try Self.toyModel()
        try model.place(on: CPUDevice.shared, seed: 4)
        let conv = model.layers[1], norm = model.layers[2]
        (conv.trainable, norm.trainable) = (false, false)
        try model.compile(optimizer: Adam(learningRate: 0.01), loss: SparseCategoricalCrossentropy(fromLogits: true))
        try model.fit(Self.toyImages(), epochs: 1, batchSize: 16, seed: 5, progress: false)
        try Checkpoint.save(model, to: url)

        let (loaded, _) = try Checkpoint.load(url, device: CPUDevice.shared)
        #expect(loaded.layers.map(\.trainable) == model.layers.map(\.trainable))
        let optimizer = loaded.compiled!.optimizer
        #expect(Set(optimizer.stateTensors().keys) == Set(model.compiled!.optimizer.stateTensors().keys))
        #expect(!optimizer.stateTensors().keys.contains { $0.hasPrefix(conv.name + "/") } && optimizer.iterations == 15)
        let frozenBefore = try loaded.layers[1].weights.map { try $0.value.toArray() }
        try TransferLearning.unfreeze(loaded, "all")
        #expect(loaded.layers[1].trainable && !loaded.layers[2].trainable, "all unfreezes everything but batch normalisation")
        try loaded.fit(Self.toyImages(), epochs: 1, batchSize: 16, seed: 5, progress: false)
        #expect(try loaded.layers[1].weights.map { try $0.value.toArray() } != frozenBefore)
        #expect(optimizer.stateTensors().keys.contains("\(conv.name)/kernel/slot_1") && optimizer.iterations == 30)

        let file = try SafeTensors(contentsOf: url)
        func rewritten(_ edit: (inout [(name: String, shape: [Int], values: [Float])]) -> Void) throws {
            var tensors = try file.entries.keys.sorted().map { (name: $0, shape: file.entries[$0]!.shape, values: try file.floats($0)) }
            edit(&tensors)
            try SafeTensors.write(tensors, metadata: file.metadata, to: url)
        }
        let slot = "optimizer/\(model.layers.last!.name)/kernel/slot_0"
        try rewritten { tensors in tensors = tensors.map { $0.name == slot ? (name: $0.name, shape: [2], values: [0, 0]) : $0 } }
        #expect { try Checkpoint.load(url) } throws: { "\($0)".contains(url.path) && "\($0)".contains("has shape [2]") }
        #expect(try Checkpoint.load(url, optimizerState: false).model.layers.count == model.layers.count, "inference reads no optimizer state")
        try rewritten { tensors in tensors = tensors.filter { $0.name != slot } }
        #expect { try Checkpoint.load(url) } throws: { "\($0)".contains("lacks slot 0") }
        try rewritten { tensors in tensors.append((name: "optimizer/nowhere/kernel/slot_0", shape: [1], values: [0])) }
        #expect { try Checkpoint.load(url) } throws: { "\($0)".contains("belongs to no weight") }
    }

    @Test func damagedCheckpointsAreRejected() throws {
        let folder = try temporaryFolder()
        let url = folder.appendingPathComponent("toy.safetensors")
        try Checkpoint.save(try Self.trained(epochs: 1), to: url)
        let bytes = [UInt8](try Data(contentsOf: url))
        let cases: [([UInt8], String)] = [
            (Array(bytes.prefix(bytes.count - 10)), "fall outside"),
            (Array(bytes.prefix(5)), "too short"),
            ([255, 255, 255, 255, 0, 0, 0, 0] + Array(bytes.dropFirst(8)), "points past the end"),
            (Array(bytes.prefix(8)) + [UInt8](repeating: 0x41, count: bytes.count - 8), "not a JSON object"),
        ]
        for (damaged, message) in cases {
            try Data(damaged).write(to: url)
            #expect { try Checkpoint.load(url) } throws: { "\($0)".contains(url.path) && "\($0)".contains(message) }
        }
        try SafeTensors.write([("x", [2], [1, 2])], metadata: [:], to: url)
        #expect { try Checkpoint.load(url) } throws: { "\($0)".contains("not a Kiln checkpoint") }
        #expect(try SafeTensors(contentsOf: url).floats("x") == [1, 2])
    }

    @Test func earlyStoppingStopsAndRestoresTheBestWeights() throws {
        let model = try Self.toyModel()
        try model.place(on: CPUDevice.shared)
        let stopping = EarlyStopping(monitor: "val_loss", patience: 1, restoreBestWeights: true)
        let state = TrainingState(model: model, finalEpoch: 10, stepsPerEpoch: 1, history: History()) { [:] }
        let weight = model.weights[0]
        for (epoch, loss) in [1.0, 0.5, 0.6].enumerated() {  // Keras 3 stops at epoch 3 too (patience 1: one epoch without improvement)
            try weight.assign([Float](repeating: Float(epoch + 1), count: weight.count))
            try stopping.epochDidEnd(epoch + 1, logs: ["val_loss": Float(loss)], state)
            #expect(state.stopTraining == (epoch == 2), "epoch \(epoch + 1)")
        }
        try stopping.trainingDidEnd(state)
        #expect(try weight.value.toArray().allSatisfy { $0 == 2 }, "the weights of epoch 2, the best")
        #expect(stopping.bestEpoch == 2)
    }

    @Test func reduceLearningRateOnPlateau() throws {
        let model = try Self.toyModel()
        try model.compile(optimizer: SGD(learningRate: 0.1), loss: SparseCategoricalCrossentropy())
        let reduce = ReduceLROnPlateau(monitor: "loss", factor: 0.5, patience: 2)
        let state = TrainingState(model: model, finalEpoch: 10, stepsPerEpoch: 1, history: History()) { [:] }
        for (epoch, loss) in [1.0, 1.0, 1.0, 0.5, 0.5].enumerated() { try reduce.epochDidEnd(epoch + 1, logs: ["loss": Float(loss)], state) }
        #expect(model.compiled!.optimizer.learningRate == 0.05)
    }

    @Test func nonFiniteLossStopsTraining() throws {
        let model = try Sequential([Input(shape: [2]), Dense(1)])
        try model.place(on: CPUDevice.shared)
        try model.compile(optimizer: SGD(learningRate: 1e12), loss: MeanSquaredError())
        let data = Dataset(features: .floats((0..<64).map { Float($0) }), sampleShape: [2], targets: (0..<32).map { Float($0) * 100 }, targetShape: [1])
        let history = try model.fit(data, epochs: 3, batchSize: 4, normalization: .none, progress: false)
        #expect(model.lastStopReason?.contains("epoch 1 within steps 1–8") == true, "\(model.lastStopReason ?? "no stop")")
        #expect(history.epochs.isEmpty)
        #expect(try model.weights.allSatisfy { try $0.value.toArray().allSatisfy(\.isFinite) }, "the weights before the first step are put back")
    }

    @Test func fitChecksShapesAndLabels() throws {
        let model = try Self.toyModel()
        try model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true))
        let wrongShape = Dataset(features: .bytes([UInt8](repeating: 0, count: 2 * 49)), sampleShape: [7, 7, 1], labels: [0, 1])
        #expect { try model.fit(wrongShape, epochs: 1, progress: false) } throws: { "\($0)".contains("[7, 7, 1]") && "\($0)".contains("[8, 8, 1]") }
        let badLabel = Dataset(features: .bytes([UInt8](repeating: 0, count: 2 * 64)), sampleShape: [8, 8, 1], labels: [0, 5])
        #expect { try model.fit(badLabel, epochs: 1, progress: false) } throws: { "\($0)".contains("label 5") }
        #expect { try Self.toyModel().fit(Self.toyImages(), epochs: 1) } throws: { "\($0)".contains("not compiled") }
    }

    @Test func callbacksWriteFiles() throws {
        let folder = try temporaryFolder()
        let csv = folder.appendingPathComponent("history.csv"), best = folder.appendingPathComponent("best.safetensors")
        let model = try Self.trained(epochs: 2, callbacks: [CSVLogger(csv), ModelCheckpoint(best, saveBestOnly: true)])
        let lines = try String(contentsOf: csv, encoding: .utf8).split(separator: "\n")
        #expect(lines.first == "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate" && lines.count == 3)
        #expect(try Checkpoint.load(best).model.epochsTrained >= 1)
        try Report.write(history: model.trainingHistory, report: Report.evaluate(model, on: Self.toyImages(), classNames: nil), to: folder)
        for file in ["metrics.json", "curves.svg", "confusion.svg"] {
            #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent(file).path), "\(file)")
        }
        let svg = try String(contentsOf: folder.appendingPathComponent("confusion.svg"), encoding: .utf8)
        #expect(svg.contains("diagonal") && svg.contains("predicted class"))
        let curves = try String(contentsOf: folder.appendingPathComponent("curves.svg"), encoding: .utf8)
        #expect(curves.contains("validation") && curves.contains("Accuracy") && curves.contains("epoch"))
    }

    /// Real Fashion-MNIST on OpenCL (PoCL here): a subset, so the suite stays quick.
    @Test(arguments: Backend.all.filter { $0.device is OpenCLDevice })
    func workshopCNNTrainsOnFashionMNISTSubset(_ backend: Backend) throws {
        guard let full = try? NamedDataset.fashionMNIST.load(.train) else {
            print("note: Fashion-MNIST not installed (dataset-fashion-mnist); skipping the OpenCL training test")
            return
        }
        let model = try ModelZoo.workshopCNN.make(inputShape: [28, 28, 1], classes: 10)
        try model.place(on: backend.device, seed: 1)
        try model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: ["accuracy"])
        try model.fit(full.prefix(1536), epochs: 2, batchSize: 32, seed: 1, progress: false)
        let test = try NamedDataset.fashionMNIST.load(.test).prefix(512)
        #expect(try model.evaluate(test)["accuracy"]! > 0.6)
    }
}
