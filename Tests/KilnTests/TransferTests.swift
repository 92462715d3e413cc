import Foundation
import Testing
@testable import Kiln

@Suite("Transfer learning") struct TransferTests {
    /// Samples of `classes` (relabelled 0…), the first `count` of them.
    static func classes(_ data: Dataset, _ classes: ClosedRange<Int32>, count: Int) -> Dataset {
        let indices = data.labels!.indices.filter { classes.contains(data.labels![$0]) }.prefix(count)
        var subset = data.subset(Array(indices))
        subset.labels = subset.labels!.map { $0 - classes.lowerBound }
        subset.classNames = nil
        return subset
    }

    static func network(classes: Int) throws -> Sequential {
        try Sequential([Input(shape: [28, 28, 1]), Conv2D(16, kernelSize: 3, activation: .relu), MaxPooling2D(2),
                        Conv2D(16, kernelSize: 3, activation: .relu), MaxPooling2D(2), Flatten(),
                        Dense(32, activation: .relu, name: "features_\(UUID().uuidString.prefix(8))"), Dense(classes)])
    }

    /// Pretrain on classes 0–4, transfer to 5–9 with a frozen base: better than the same head on the
    /// same (untrained) base from scratch with the same small budget, and the frozen weights do not move.
    @Test func frozenPretrainedBaseBeatsScratchOnASmallBudget() throws {
        guard let train = try? NamedDataset.fashionMNIST.load(.train), let test = try? NamedDataset.fashionMNIST.load(.test) else {
            print("note: Fashion-MNIST not installed (dataset-fashion-mnist); skipping the transfer-learning test")
            return
        }
        let device = CPUDevice.shared
        let base = try Self.network(classes: 5)
        try base.place(on: device, seed: 1)
        try base.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: ["accuracy"])
        try base.fit(Self.classes(train, 0...4, count: 3000), epochs: 2, seed: 1, progress: false)

        let (small, target) = (Self.classes(train, 5...9, count: 100), Self.classes(test, 5...9, count: 1000))
        let cut = base.layers.first { $0 is Flatten }!.name
        let transferred = try TransferLearning.attach(TransferLearning.head("dense:N", classes: 5), to: base, cut: cut)
        try transferred.place(on: device, seed: 2)
        #expect(transferred.trainableParameterCount == 400 * 5 + 5)
        let frozen = try base.weights.map { try $0.value.toArray() }
        try transferred.compile(optimizer: Adam(learningRate: 0.01), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: ["accuracy"])
        try transferred.fit(small, epochs: 5, batchSize: 16, seed: 3, progress: false)
        #expect(try base.weights.map { try $0.value.toArray() } == frozen, "frozen base weights are bit-identical")

        let untrained = try Self.network(classes: 5)
        let scratch = try TransferLearning.attach(TransferLearning.head("dense:N", classes: 5), to: untrained, cut: untrained.layers.first { $0 is Flatten }!.name)
        try scratch.place(on: device, seed: 2)
        try scratch.compile(optimizer: Adam(learningRate: 0.01), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: ["accuracy"])
        try scratch.fit(small, epochs: 5, batchSize: 16, seed: 3, progress: false)

        let (transferAccuracy, scratchAccuracy) = (try transferred.evaluate(target)["accuracy"]!, try scratch.evaluate(target)["accuracy"]!)
        print("note: transfer \(transferAccuracy) vs scratch \(scratchAccuracy) on classes 5–9 after 100 samples × 5 epochs")
        #expect(transferAccuracy > scratchAccuracy + 0.03)

        // Cached features train the same head to the same place.
        let head = try TransferLearning.head("dense:N", classes: 5)
        let cachedModel = try TransferLearning.attach(head, to: base, cut: cut)
        try cachedModel.place(on: device, seed: 2)
        try cachedModel.compile(optimizer: Adam(learningRate: 0.01), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: ["accuracy"])
        let folder = try temporaryFolder()
        try TransferLearning.fitHead(of: cachedModel, trunk: base.truncated(at: cut), head: head, training: small, validation: nil, epochs: 5,
                                     batchSize: 16, normalization: .unitRange, seed: 3, cacheDirectory: folder)
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("features-train.npy").path))
        #expect(cachedModel.epochsTrained == 5)
        #expect(abs(try cachedModel.evaluate(target)["accuracy"]! - transferAccuracy) < 0.05)
    }

    @Test func headSpecsAndUnfreezing() throws {
        let layers = try TransferLearning.head("gap,dense:128:relu,dropout:0.3,dense:N", classes: 7)
        #expect(layers.map(\.typeName) == ["GlobalAveragePooling2D", "Dense", "Dropout", "Dense"])
        #expect((layers[3] as! Dense).units == 7 && (layers[1] as! Dense).activation == .relu)
        #expect { try TransferLearning.head("dense:lots", classes: 2) } throws: { "\($0)".contains("dense:lots") }
        let base = try Self.network(classes: 3)
        let model = try TransferLearning.attach(layers, to: base, cut: base.layers[4].name)
        #expect(model.layers.prefix(5).allSatisfy { !$0.trainable } && model.layers.suffix(4).allSatisfy(\.trainable))
        try model.setTrainable(true, layers: [base.layers[3].name])
        #expect(model.layers[3].trainable && !model.layers[1].trainable)
        #expect { try model.setTrainable(true, layers: ["nope"]) } throws: { "\($0)".contains("no layer 'nope'") }
    }

    @Test func preprocessingModes() throws {
        let data = Dataset(features: .bytes([255, 128, 0]), sampleShape: [1, 1, 3], labels: [0])
        func first(_ preset: String) throws -> [Float] {
            try BatchLoader(data, batchSize: 1, normalization: Preprocessing(preset: preset, channels: 3)).hostBatch(0, order: [0], epoch: 0).inputs
        }
        #expect(try first("caffe") == [0 - 103.939, 128 - 116.779, 255 - 123.68])
        #expect(try first("tf") == [1, Float(128) * (1 / 255) / 0.5 - 1, -1].enumerated().map { $0.offset == 1 ? (Float(128) * (1 / 255) - 0.5) / 0.5 : $0.element })
        #expect(try abs(first("torch")[0] - (1 - 0.485) / 0.229) < 1e-6)
        #expect { try Preprocessing(preset: "caffe", channels: 1) } throws: { "\($0)".contains("caffe") }
    }
}
