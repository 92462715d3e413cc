import Foundation
import Testing
@testable import Kiln

@Suite("Command line") struct CLITests {
    static func kiln(_ arguments: String...) throws -> (status: Int32, output: String) {
        try DeviceTests.run(arguments, environment: ["KILN_DEVICE": "cpu"])
    }

    @Test func argumentErrorsAreOneClearLine() throws {
        let cases: [([String], String)] = [
            (["train", "--epochs", "0"], "--epochs must be positive"),
            (["train", "--dataset", "imagenet-22k"], "'imagenet-22k' is neither a known dataset"),
            (["train", "--optimizer", "lbfgs", "--epochs", "1"], "unknown optimizer 'lbfgs'"),
            (["train", "--model", "no-such-model", "--epochs", "1"], "neither a built-in model"),
            (["train", "--augment", "twirl"], "cannot read 'twirl'"),
            (["train", "--dataset", "mnist", "--data", "/nonexistent"], "train-images-idx3-ubyte.gz"),
            (["evaluate", "/nonexistent.safetensors"], "no such file"),
            (["summary", "workshop-cnn", "--input-shape", "a,b"], "--input-shape"),
        ]
        let folder = try temporaryFolder()
        for (arguments, message) in cases {
            let (status, output) = try DeviceTests.run(arguments, environment: ["KILN_DEVICE": "cpu"], in: folder)
            #expect(status != 0, "\(arguments)")
            #expect(output.contains(message), "\(arguments): \(output)")
            #expect(!output.contains("Fatal error") && !output.contains("Stack dump"), "\(arguments): \(output)")
        }
        let runs = (try? FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("runs").path)) ?? []
        #expect(runs.isEmpty, "a failed command leaves no empty run folder: \(runs)")
    }

    @Test func summaryOfTheWorkshopCNN() throws {
        let (status, output) = try Self.kiln("summary", "workshop-cnn")
        #expect(status == 0 && output.contains("Total params: 28,394") && output.contains("(None, 3, 3, 32)"), "\(output)")
    }

    @Test func everyCommandHasHelp() throws {
        for command in ["train", "evaluate", "predict", "summary", "devices", "benchmark"] {
            let (status, output) = try Self.kiln(command, "--help")
            #expect(status == 0 && output.contains("USAGE"), "\(command): \(output)")
        }
    }

    /// The whole loop on a small file dataset: train, then evaluate and predict with the checkpoint.
    @Test func trainEvaluatePredictOnAnImageFolder() throws {
        let folder = try temporaryFolder()
        var random = Random("cli")
        try writeImageFolder(folder.appendingPathComponent("data"), classes: ["dark", "light"], count: 20, side: 8) { UInt8($0 * 150 + random.int(100)) }
        let run = folder.appendingPathComponent("run").path
        let (status, output) = try Self.kiln("train", "--dataset", folder.appendingPathComponent("data").path, "--image-size", "8,8",
                                             "--channels", "1", "--model", "mlp", "--epochs", "3", "--batch-size", "8", "--out", run)
        #expect(status == 0, "\(output)")
        #expect(output.contains("Epoch 3/3") && output.contains("samples/s") && output.contains("test accuracy"), "\(output)")
        for file in ["history.csv", "metrics.json", "model.safetensors", "curves.svg", "confusion.svg"] {
            #expect(FileManager.default.fileExists(atPath: "\(run)/\(file)"), "\(file)")
        }
        let checkpoint = "\(run)/model.safetensors"
        let (evalStatus, evalOutput) = try Self.kiln("evaluate", checkpoint, "--dataset", folder.appendingPathComponent("data").path,
                                                     "--image-size", "8,8", "--channels", "1", "--output", "\(run)/eval.svg")
        #expect(evalStatus == 0 && evalOutput.contains("precision") && evalOutput.contains("light"), "\(evalOutput)")
        let image = folder.appendingPathComponent("data/light/0.png").path
        let (predictStatus, predictOutput) = try Self.kiln("predict", checkpoint, image, "--top", "1", "--output", "\(run)/y.npy")
        #expect(predictStatus == 0 && predictOutput.contains("light"), "\(predictOutput)")
        #expect(FileManager.default.fileExists(atPath: "\(run)/y.npy"))
        let (resumeStatus, resumeOutput) = try Self.kiln("train", "--resume", checkpoint, "--epochs", "4", "--out", run)
        #expect(resumeStatus == 0 && resumeOutput.contains("Epoch 4/4"), "\(resumeOutput)")
        #expect(try String(contentsOfFile: "\(run)/history.csv", encoding: .utf8).split(separator: "\n").count == 5)
    }
}

@Suite("Command line: imports") struct CLIImportTests {
    /// `kiln convert` a Keras model, then `kiln predict` on Keras's input gives Keras's outputs.
    @Test func convertThenPredictMatchesKeras() throws {
        let folder = try temporaryFolder()
        let checkpoint = folder.appendingPathComponent("converted.safetensors").path
        let (status, output) = try CLITests.kiln("convert", fixtures.appendingPathComponent("keras_cnn.keras").path, checkpoint)
        #expect(status == 0 && output.contains("keras_cnn"), "\(output)")
        let result = folder.appendingPathComponent("y.npy").path
        let (predictStatus, predictOutput) = try CLITests.kiln("predict", checkpoint, fixtures.appendingPathComponent("keras_cnn_x.npy").path,
                                                               "--output", result)
        #expect(predictStatus == 0, "\(predictOutput)")
        let expected = try NumPy.read(fixtures.appendingPathComponent("keras_cnn_y.npy"))
        expectClose(try NumPy.read(URL(fileURLWithPath: result)).values, expected.values.map(Double.init), "predict vs Keras", tolerance: 1e-5)
        let exported = folder.appendingPathComponent("torch.safetensors").path
        let (exportStatus, _) = try CLITests.kiln("convert", checkpoint, exported, "--format", "pytorch")
        #expect(exportStatus == 0)
        let shape = try SafeTensors(contentsOf: URL(fileURLWithPath: exported)).entries["conv1.weight"]?.shape
        #expect(shape == [8, 3, 3, 3])
        let (badStatus, badOutput) = try CLITests.kiln("convert", checkpoint, exported, "--format", "onnx2")
        #expect(badStatus != 0 && badOutput.contains("'onnx2' is not kiln, pytorch, npz or onnx"))
    }
}

@Suite("Command line: generative models") struct GenerativeCLITests {
    /// conv-autoencoder, vae and dcgan train on a small image folder, write their grids, curves and
    /// checkpoints, and resume (the DCGAN from its paired checkpoint).
    @Test func generativeModelsTrainAndResume() throws {
        let folder = try temporaryFolder()
        var random = Random("cli-generative")
        let directory = folder.appendingPathComponent("data/shapes")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for i in 0..<40 {
            let pixels = (0..<64).map { p in UInt8(p % 8 < 4 + i % 3 ? 200 + random.int(50) : random.int(40)) }
            try Data(png(width: 8, height: 8, channels: 1, pixels: pixels)).write(to: directory.appendingPathComponent("\(i).png"))
        }
        for model in ["conv-autoencoder", "vae", "dcgan"] {
            let run = folder.appendingPathComponent(model).path
            let arguments = ["--dataset", folder.appendingPathComponent("data").path, "--image-size", "8,8", "--channels", "1", "--batch-size", "8"]
            let (status, output) = try DeviceTests.run(["train", "--model", model, "--epochs", "1", "--out", run] + arguments, environment: ["KILN_DEVICE": "cpu"])
            #expect(status == 0 && output.contains("Wrote \(run)"), "\(model): \(output)")
            let grid = model == "dcgan" ? "samples-epoch-1.png" : "reconstructions-epoch-1.png"
            let image = try ImageFolder.decode(URL(fileURLWithPath: "\(run)/\(grid)"))
            #expect(image.height == (model == "dcgan" ? 8 * 10 + 2 : 2 * 10 + 2), "\(model)")
            let checkpoint = "\(run)/\(model == "dcgan" ? "dcgan" : "model").safetensors"
            let (again, resumed) = try DeviceTests.run(["train", "--resume", checkpoint, "--epochs", "2", "--out", run] + arguments,
                                                       environment: ["KILN_DEVICE": "cpu"])
            #expect(again == 0 && resumed.contains("Epoch 2/2"), "\(model): \(resumed)")
            #expect(try String(contentsOfFile: "\(run)/history.csv", encoding: .utf8).split(separator: "\n").count == 3, "\(model)")
            if model != "dcgan" { #expect(output.contains("Test loss"), "\(model): \(output)") }
        }
    }
}
