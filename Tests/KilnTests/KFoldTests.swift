import Foundation
import Testing
@testable import Kiln

@Suite("k-fold cross-validation") struct KFoldTests {
    /// Folds are disjoint and cover every sample; stratified ones keep each class within one sample
    /// across folds, and all folds within one sample in size; the same seed gives the same folds.
    @Test func foldsAreDisjointCoveringAndStratified() throws {
        var random = Random("k-fold")
        for _ in 0..<20 {
            let (count, k) = (20 + random.int(90), 2 + random.int(6))
            let labels = (0..<count).map { _ in Int32(random.int(4) == 0 ? 3 : random.int(3)) }  // class 3 rarer
            let seed = random.next()
            for stratified in [true, false] {
                let folds = try KFold(k: k, seed: seed).folds(count: count, labels: stratified ? labels : nil)
                #expect(folds.count == k && folds.joined().sorted() == Array(0..<count), "disjoint and covering")
                let sizes = folds.map(\.count)
                #expect(sizes.max()! - sizes.min()! <= 1, "fold sizes \(sizes)")
                if stratified {
                    for label in Set(labels) {
                        let perFold = folds.map { $0.filter { labels[$0] == label }.count }
                        #expect(perFold.max()! - perFold.min()! <= 1, "class \(label): \(perFold)")
                    }
                }
                #expect(try KFold(k: k, seed: seed).folds(count: count, labels: stratified ? labels : nil) == folds)
            }
            #expect(try KFold(k: k, seed: seed).folds(count: count) != KFold(k: k, seed: seed &+ 1).folds(count: count) || k == count)
        }
        #expect { try KFold(k: 1) } throws: { "\($0)".contains("k ≥ 2") }
        #expect { try KFold(k: 5).folds(count: 4) } throws: { "\($0)".contains("too few") }
    }

    /// A fresh model per fold, scored on its fold; the summary's mean and std are those of the scores.
    @Test func crossValidateTrainsAndScoresEachFold() throws {
        var random = Random("cross-validate")
        let data = Dataset(features: .floats(random.floats(60 * 3)), sampleShape: [3], labels: (0..<60).map { Int32($0 % 3) })
        var built = 0
        let result = try KFold(k: 4, seed: 2).crossValidate(data, makeModel: { fold in
            #expect(fold == built)
            built += 1
            let model = try Sequential([Input(shape: [3]), Dense(3)])
            try model.place(on: CPUDevice.shared, seed: 1)
            try model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: ["accuracy"])
            return model
        }, train: { model, training, validation in
            #expect(training.count == 45 && validation.count == 15)
            try model.fit(training, epochs: 2, validationData: validation, progress: false)
        })
        #expect(result.results.count == 4 && result.histories.allSatisfy { $0.epochs == [1, 2] })
        #expect(result.names == ["val_loss", "val_accuracy"])
        let losses = result.results.map { Double($0["val_loss"]!) }
        let mean = losses.reduce(0, +) / 4
        #expect(abs(Double(result.mean("val_loss")) - mean) < 1e-6)
        #expect(abs(Double(result.standardDeviation("val_loss")) - (losses.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 4).squareRoot()) < 1e-6)
        // The fold's final validation loss in the history is the fold's score (no early stopping here).
        #expect(zip(result.histories, result.results).allSatisfy { abs($0["val_loss"]!.last! - $1["val_loss"]!) < 1e-5 })
        #expect(result.csv().split(separator: "\n").count == 1 + 4 + 2)
    }

    /// `kiln train --k-fold` on an image folder with augmentation and early stopping, then --refit (or
    /// --tensorboard, logged per fold): the run folder's files, reproducible from the seed.
    @Test func commandLine() throws {
        let folder = try temporaryFolder()
        var random = Random("k-fold images")
        try writeImageFolder(folder.appendingPathComponent("images"), classes: ["dark", "light"], count: 15, side: 8) { UInt8($0 * 150 + random.int(100)) }
        func run(_ name: String, _ extra: [String]) throws -> URL {
            let out = folder.appendingPathComponent(name)
            let (status, output) = try ReliabilityTests.kiln(["train", "--dataset", folder.appendingPathComponent("images").path, "--image-size", "8,8",
                                                              "--channels", "1", "--model", "mlp", "--k-fold", "3", "--epochs", "3", "--batch-size", "4",
                                                              "--augment", "flip", "--early-stopping", "1", "--out", out.path] + extra)
            #expect(status == 0 && output.contains("3-fold cross-validation: val_loss "), "\(output)")
            return out
        }
        let first = try run("a", ["--refit"]), second = try run("b", ["--tensorboard"])
        let csv = try String(contentsOf: first.appendingPathComponent("folds.csv"), encoding: .utf8)
        #expect(csv.split(separator: "\n").map { $0.split(separator: ",").first ?? "" } == ["fold", "1", "2", "3", "mean", "std"])
        #expect(try String(contentsOf: second.appendingPathComponent("folds.csv"), encoding: .utf8) == csv, "the same seed gives the same folds and scores")
        let svg = try String(contentsOf: first.appendingPathComponent("folds.svg"), encoding: .utf8)
        #expect(svg.components(separatedBy: "<polyline").count - 1 == 6, "a line per fold in each of the two panels")
        let metrics = try JSONSerialization.jsonObject(with: Data(contentsOf: first.appendingPathComponent("metrics.json"))) as! [String: Any]
        #expect((metrics["folds"] as? [Any])?.count == 3 && metrics["mean"] != nil && metrics["std"] != nil && metrics["test_accuracy"] != nil)
        #expect(FileManager.default.fileExists(atPath: first.appendingPathComponent("model.safetensors").path))
        #expect(!FileManager.default.fileExists(atPath: second.appendingPathComponent("model.safetensors").path), "no model without --refit")
        for fold in 1...3 {
            #expect(FileManager.default.fileExists(atPath: second.appendingPathComponent("fold-\(fold)/validation").path), "TensorBoard logs per fold")
        }
        try ReliabilityTests.expectClearError(["train", "--refit"], "--refit needs --k-fold")
    }

    /// Time series take contiguous folds of their training windows (no shuffling across time), with MAE.
    @Test func forecastingFolds() throws {
        #expect(try KFold(k: 3, shuffle: false).folds(count: 10) == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]])
        let folder = try temporaryFolder()
        let rows = (0..<160).map { i in "\(i),\(sin(Double(i) * 0.3))" }
        let csv = try ReliabilityTests.write("t,value\n" + rows.joined(separator: "\n") + "\n", "series.csv", in: folder)
        let out = folder.appendingPathComponent("run")
        let (status, output) = try ReliabilityTests.kiln(["train", "--dataset", csv, "--ignore-columns", "t", "--target", "value", "--window", "8",
                                                          "--model", "mlp-forecast", "--k-fold", "3", "--epochs", "2", "--out", out.path])
        #expect(status == 0 && output.contains("in order") && output.contains("val_mae"), "\(output)")
        let header = try String(contentsOf: out.appendingPathComponent("folds.csv"), encoding: .utf8).split(separator: "\n").first
        #expect(header == "fold,epochs,val_loss,val_mae")
        try ReliabilityTests.expectClearError(["train", "--model", "dcgan", "--k-fold", "3"], "--k-fold takes classifiers and forecasters")
    }
}
