import Foundation
import Testing
@testable import Kiln

/// README's transfer-learning recipe through the command line, for every kind of base: pretrain (or
/// import) → frozen base + new head → unfreeze and fine-tune → predict → convert → evaluate.
@Suite("Transfer recipe through the command line") struct TransferRecipeTests {
    enum Base: String, CaseIterable, Sendable { case kiln, keras, h5, onnx }

    /// Three classes of noisy 8×8 RGB images, one primary colour each (24 per class).
    static func imageFolder(in folder: URL) throws -> URL {
        var random = Random("recipe-images")
        let root = folder.appendingPathComponent("data")
        for (label, name) in ["red", "green", "blue"].enumerated() {
            let directory = root.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            for i in 0..<24 {
                let pixels = (0..<64 * 3).map { UInt8($0 % 3 == label ? 160 + random.int(96) : random.int(96)) }
                try Data(png(width: 8, height: 8, channels: 3, pixels: pixels)).write(to: directory.appendingPathComponent("\(i).png"))
            }
        }
        return root
    }

    /// Runs `kiln`, expecting success.
    @discardableResult
    static func kiln(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let (status, output) = try DeviceTests.run(arguments, environment: ["KILN_DEVICE": "cpu"])
        #expect(status == 0, "kiln \(arguments.joined(separator: " ")): \(output)", sourceLocation: sourceLocation)
        return output
    }

    /// The `weights/…` tensors of a checkpoint.
    static func weights(_ path: String) throws -> [String: [Float]] {
        let file = try SafeTensors(contentsOf: URL(fileURLWithPath: path))
        return try Dictionary(uniqueKeysWithValues: file.entries.keys.filter { $0.hasPrefix("weights/") }.map { ($0, try file.floats($0)) })
    }

    /// A column's first and last epoch in a run's history.csv (default: the training loss).
    static func losses(_ run: String, _ name: Substring = "loss") throws -> (first: Double, last: Double) {
        let rows = try String(contentsOfFile: "\(run)/history.csv", encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",") }
        let column = rows[0].firstIndex(of: name)!
        return (Double(rows[1][column])!, Double(rows.last![column])!)
    }

    static func testAccuracy(_ run: String) throws -> Double {
        let metrics = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(run)/metrics.json"))) as! [String: Any]
        return (metrics["test_accuracy"] ?? metrics["accuracy"]) as! Double
    }

    @Test(arguments: Base.allCases, [false, true])
    func recipe(_ base: Base, cacheFeatures: Bool) throws {
        let folder = try temporaryFolder("recipe-\(base)-\(cacheFeatures)")
        let data = try Self.imageFolder(in: folder).path
        let images = ["--dataset", data, "--image-size", "8,8"]
        let run = { (name: String) in folder.appendingPathComponent(name).path }

        // The base, as a Kiln checkpoint to compare weights against, and where to cut it.
        let (file, cut, preprocess): (String, String, String)
        switch base {
        case .kiln:
            try Self.kiln(["train", "--model", "vgg-small", "--epochs", "2", "--batch-size", "8", "--out", run("base")] + images)
            (file, cut, preprocess) = (run("base") + "/model.safetensors", "max_pooling2d_1", "unit")
        case .keras, .h5:
            (file, cut, preprocess) = (fixtures.appendingPathComponent(base == .h5 ? "keras_cnn.h5" : "keras_cnn.keras").path, "relu2", "tf")
        case .onnx:
            (file, cut, preprocess) = (fixtures.appendingPathComponent("torch_cnn.onnx").path, "/Relu_1_output_0", "unit")
        }
        let reference = run("base.safetensors")
        try Self.kiln(["convert", file, reference])
        let baseWeights = try Self.weights(reference)

        // Frozen base, new head: the base's weights stay bit-identical, the head learns.
        let head = run("head")
        let headOutput = try Self.kiln(["train", "--base", file, "--cut", cut, "--freeze-base", "--head", "gap,dense:N", "--epochs", "6",
                                        "--batch-size", "8", "--learning-rate", "0.05", "--preprocess", preprocess, "--out", head]
                                       + images + (cacheFeatures ? ["--cache-features"] : []))
        #expect(headOutput.contains("Epoch 6/6"), "\(headOutput)")
        let headWeights = try Self.weights(head + "/model.safetensors")
        let shared = headWeights.keys.filter { baseWeights[$0] != nil }
        #expect(shared.count == headWeights.count - 2 && !shared.isEmpty, "base weights in the head checkpoint: \(shared.sorted())")
        for name in shared { #expect(headWeights[name] == baseWeights[name], "\(name) moved while frozen") }
        let headLoss = try Self.losses(head)
        #expect(headLoss.last < headLoss.first, "head training loss \(headLoss)")
        #expect(try Self.testAccuracy(head) > 0.5)

        let summary = try Self.kiln(["summary", head + "/model.safetensors"])
        #expect(summary.contains("Trainable params") && summary.contains("(None, 8, 8, 3)"), "\(summary)")
        if base == .onnx { #expect(summary.contains("/conv2/Conv_output_0 (Conv)") && summary.contains("Permute"), "\(summary)") }

        // Unfreeze and fine-tune: the head's optimizer state carries on, the base's weights now change
        // (batch normalisation stays frozen with `all`).
        let tuned = run("tuned")
        let tuneOutput = try Self.kiln(["train", "--resume", head + "/model.safetensors", "--unfreeze", "all", "--learning-rate", "1e-3",
                                        "--epochs", "8", "--out", tuned])
        #expect(tuneOutput.contains("Resuming") && tuneOutput.contains("Epoch 8/8") && !tuneOutput.contains("Epoch 9"), "\(tuneOutput)")
        let tunedWeights = try Self.weights(tuned + "/model.safetensors")
        for name in shared {
            let normalization = ["gamma", "beta", "moving_mean", "moving_variance"].contains { name.hasSuffix("/" + $0) }
            #expect((tunedWeights[name] == baseWeights[name]) == normalization, "\(name): changed \(tunedWeights[name] != baseWeights[name])")
        }
        #expect(try Self.losses(tuned).last < headLoss.last, "fine-tuning lowers the training loss further")
        let before = try Checkpoint.load(URL(fileURLWithPath: head + "/model.safetensors"), device: CPUDevice.shared).model
        let after = try Checkpoint.load(URL(fileURLWithPath: tuned + "/model.safetensors"), device: CPUDevice.shared).model
        let (headState, tunedState) = (before.compiled!.optimizer.stateTensors(), after.compiled!.optimizer.stateTensors())
        #expect(Set(headState.keys).isStrictSubset(of: Set(tunedState.keys)), "state for the newly trainable weights joins the head's")
        #expect(after.compiled!.optimizer.iterations > before.compiled!.optimizer.iterations && before.compiled!.optimizer.iterations > 0)
        #expect(try Self.testAccuracy(tuned) > 0.5)

        // Predict on image files: one of each class.
        let samples = ["red", "green", "blue"].map { "\(data)/\($0)/0.png" }
        let predicted = try Self.kiln(["predict", tuned + "/model.safetensors"] + samples + ["--top", "1"])
        let right = ["red", "green", "blue"].filter { predicted.contains("\($0)/0.png: \($0) ") }
        #expect(right.count >= 2, "\(predicted)")

        // Convert: ONNX (same outputs when Kiln runs the export) and a PyTorch state dict.
        var random = Random("recipe-x")
        let x = folder.appendingPathComponent("x.npy")
        try NumPy.write(random.floats(2 * 8 * 8 * 3, 0...1), shape: [2, 8, 8, 3], to: x)
        try Self.kiln(["convert", tuned + "/model.safetensors", run("tuned.onnx"), "--format", "onnx"])
        try Self.kiln(["convert", tuned + "/model.safetensors", run("tuned.pt.safetensors"), "--format", "pytorch"])
        try Self.kiln(["predict", tuned + "/model.safetensors", x.path, "--output", run("y.npy")])
        try Self.kiln(["predict", run("tuned.onnx"), x.path, "--output", run("y-onnx.npy")])
        let (y, yONNX) = (try NumPy.read(URL(fileURLWithPath: run("y.npy"))), try NumPy.read(URL(fileURLWithPath: run("y-onnx.npy"))))
        expectClose(yONNX.values, y.values.map(Double.init), "exported ONNX vs checkpoint", tolerance: 1e-5)

        // Evaluate preprocesses as training did: the same test accuracy as the run recorded.
        let evaluation = try Self.kiln(["evaluate", tuned + "/model.safetensors", "--output", run("confusion.svg")] + images)
        #expect(evaluation.contains(String(format: "accuracy %.4f", try Self.testAccuracy(tuned))), "\(evaluation)")
    }
}
