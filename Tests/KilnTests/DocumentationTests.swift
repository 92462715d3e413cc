import Foundation
import Testing
@testable import Kiln

/// Commands in README's `sh` blocks, as a shell would split them: `\` continues a line, `#` starts a
/// comment, quotes group words.
enum Documentation {
    static let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../README.md").standardized

    /// Each `sh` block of a Markdown file as its commands.
    static func shellBlocks(_ file: URL) throws -> [[[String]]] {
        var blocks: [[[String]]] = [], current: [String]?
        for line in try String(contentsOf: file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") {
                if let lines = current { blocks.append(commands(lines.joined(separator: "\n"))); current = nil } else if line == "```sh" { current = [] }
            } else if current != nil {
                current!.append(String(line))
            }
        }
        return blocks
    }

    static func commands(_ text: String) -> [[String]] {
        var commands: [[String]] = [], words: [String] = [], word: String?, quote: Character?, comment = false
        var characters = Array(text)[...]
        func endWord() { if let w = word { words.append(w) }; word = nil }
        func endCommand() { endWord(); if !words.isEmpty { commands.append(words) }; words = [] }
        while let c = characters.popFirst() {
            if comment { if c == "\n" { comment = false; endCommand() }; continue }
            if let q = quote {
                if c == q { quote = nil } else { word!.append(c) }
            } else if c == "\"" || c == "'" {
                quote = c
                word = word ?? ""
            } else if c == "\\", characters.first == "\n" {
                characters.removeFirst()
                endWord()
            } else if c == "\n" {
                endCommand()
            } else if c == " " {
                endWord()
            } else if c == "#", word == nil {
                comment = true
            } else {
                word = (word ?? "") + String(c)
            }
        }
        endCommand()
        return commands
    }

    /// Runs one of the repository's `Scripts/` in `folder`.
    static func script(_ command: [String], in folder: URL) throws -> (status: Int32, output: String) {
        try DeviceTests.run(Array(command.dropFirst()), environment: [:], in: folder,
                            executable: readme.deletingLastPathComponent().appendingPathComponent(command[0]))
    }

    /// Runs `kiln` with `arguments` in `folder`.
    static func kiln(_ arguments: [String], in folder: URL) throws -> (status: Int32, output: String) {
        try DeviceTests.run(arguments, environment: [:], in: folder)
    }
}

@Suite("Documentation") struct DocumentationTests {
    @Test func shellSplitting() {
        #expect(Documentation.commands("kiln a \"b c\" # note\nkiln d \\\n  'e f'#g\n") == [["kiln", "a", "b c"], ["kiln", "d", "e f#g"]])
    }

    /// README's transfer-learning recipe, every command exactly as written, on the real Fashion-MNIST.
    @Test func readmeTransferRecipeRunsAsWritten() throws {
        guard let test = try? NamedDataset.fashionMNIST.load(.test), case .bytes(let pixels) = test.features else {
            print("note: Fashion-MNIST not installed (dataset-fashion-mnist); skipping README's transfer recipe")
            return
        }
        let recipe = try #require(try Documentation.shellBlocks(Documentation.readme).first { $0.contains { $0.contains("--freeze-base") } })
        let folder = try temporaryFolder()
        try Data(png(width: 28, height: 28, channels: 1, pixels: Array(pixels[0..<784]))).write(to: folder.appendingPathComponent("shoe.png"))
        var outputs: [String] = []
        for command in recipe {
            #expect(command.first == "kiln", "\(command)")
            let (status, output) = try Documentation.kiln(Array(command.dropFirst()), in: folder)
            #expect(status == 0, "\(command.joined(separator: " ")): \(output)")
            outputs.append(output)
        }
        let run = { (name: String) in folder.appendingPathComponent("runs/\(name)").path }
        let base = try TransferRecipeTests.weights(run("base") + "/model.safetensors")
        let head = try TransferRecipeTests.weights(run("head") + "/model.safetensors")
        let tuned = try TransferRecipeTests.weights(run("tuned") + "/model.safetensors")
        let shared = head.keys.filter { base[$0] != nil }
        #expect(shared.count == 6, "the workshop CNN's three convolutions up to flatten: \(shared.sorted())")
        for name in shared {
            #expect(head[name] == base[name], "\(name) moved while frozen")
            #expect(tuned[name] != base[name], "\(name) did not change after unfreezing")
        }
        let (headAccuracy, tunedAccuracy) = (try TransferRecipeTests.testAccuracy(run("head")), try TransferRecipeTests.testAccuracy(run("tuned")))
        #expect(headAccuracy > 0.7 && tunedAccuracy > headAccuracy - 0.01, "test accuracy: head \(headAccuracy), tuned \(tunedAccuracy)")
        // Dropout before the cut trains again once the base does, so the validation loss is the measure.
        #expect(try TransferRecipeTests.losses(run("tuned"), "val_loss").last < TransferRecipeTests.losses(run("head"), "val_loss").last)
        #expect(outputs.contains { $0.contains("shoe.png: ") }, "\(outputs)")
        for file in ["tuned.onnx", "tuned.safetensors", "runs/tuned/test-confusion.svg"] {
            #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent(file).path), "\(file)")
        }
    }
}

@Suite("Generative models through the command line") struct GenerativeDocumentationTests {
    /// README's generative commands as written, on the first 256 Fashion-MNIST images for one epoch
    /// (the resume for one more): each writes its grid and checkpoint, and the DCGAN resumes.
    @Test func readmeGenerativeCommands() throws {
        guard (try? NamedDataset.fashionMNIST.load(.test)) != nil else { return }
        let block = try #require(try Documentation.shellBlocks(Documentation.readme).first { $0.contains { $0.contains("dcgan") } })
        let folder = try temporaryFolder()
        for command in block {
            var arguments = Array(command.dropFirst())
            let epochs = try #require(arguments.firstIndex(of: "--epochs"))
            arguments[epochs + 1] = arguments.contains("--resume") ? "2" : "1"
            let (status, output) = try Documentation.kiln(arguments + ["--limit", "256"], in: folder)
            #expect(command.first == "kiln" && status == 0, "\(command.joined(separator: " ")): \(output)")
        }
        for file in ["autoencoder/reconstructions-epoch-1.png", "vae/reconstructions-epoch-1.png", "vae/metrics.json",
                     "dcgan/samples-epoch-1.png", "dcgan/samples-epoch-2.png", "dcgan/dcgan.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("runs/\(file)").path), "\(file)")
        }
    }
}

@Suite("README's command-line block") struct CommandLineDocumentationTests {
    /// README's "The command line" block, each command as written, on a few samples: trainings get
    /// `--limit 256` and one epoch (the resume two); `~` is this test's folder, where it writes a
    /// CIFAR-10 binary folder and a `dogs-vs-cats` class folder of PNGs in their real formats; `runs/…/`
    /// is the first command's run folder; `my_model.json` is the workshop CNN in Keras's `to_json()`
    /// layout and `model.keras` a model Keras saved. `selftest`, `tune` and `fuzz` run in their own
    /// suites (SelfTestTests, TuningTests, FuzzTests), which take their commands from this README too.
    @Test func readmeCommandLineRuns() throws {
        guard let test = try? NamedDataset.fashionMNIST.load(.test), case .bytes(let pixels) = test.features else { return }
        let block = try #require(try Documentation.shellBlocks(Documentation.readme).first { $0.contains { $0.contains("cifar10") } })
        let folder = try temporaryFolder(), manager = FileManager.default
        var random = Random("readme-command-line")
        let cifar = folder.appendingPathComponent("cifar-10-batches-bin")
        try manager.createDirectory(at: cifar, withIntermediateDirectories: true)
        for name in (1...5).map({ "data_batch_\($0).bin" }) + ["test_batch.bin"] {
            let records = (0..<20).flatMap { i in [UInt8(i % 10)] + (0..<3072).map { _ in UInt8(random.next() % 256) } }
            try Data(records).write(to: cifar.appendingPathComponent(name))
        }
        for (label, index) in ["cat", "dog"].flatMap({ label in (0..<8).map { (label, $0) } }) {
            let classFolder = folder.appendingPathComponent("dogs-vs-cats/\(label)")
            try manager.createDirectory(at: classFolder, withIntermediateDirectories: true)
            let (width, height) = (40 + index, 30 + 2 * index)
            let image = png(width: width, height: height, channels: 3, pixels: (0..<width * height * 3).map { _ in UInt8(random.next() % 256) })
            try Data(image).write(to: classFolder.appendingPathComponent("\(index).png"))
        }
        let workshop = try ModelZoo.workshopCNN.make(inputShape: [28, 28, 1], classes: 10)
        try JSONSerialization.data(withJSONObject: try KerasConfig.json(of: workshop)).write(to: folder.appendingPathComponent("my_model.json"))
        try manager.copyItem(at: fixtures.appendingPathComponent("keras_cnn.keras"), to: folder.appendingPathComponent("model.keras"))
        try Data(png(width: 28, height: 28, channels: 1, pixels: Array(pixels[0..<784]))).write(to: folder.appendingPathComponent("shoe.png"))
        try NumPy.write(pixels[784..<4 * 784].map { Float($0) / 255 }, shape: [3, 28, 28, 1], to: folder.appendingPathComponent("samples.npy"))

        var firstRun: String?
        for command in block where !["selftest", "tune", "fuzz"].contains(command[1]) {
            var arguments = Array(command.dropFirst()).map { word in
                var word = word.replacingOccurrences(of: "~/", with: folder.path + "/")
                if let run = firstRun { word = word.replacingOccurrences(of: "runs/…/", with: "runs/\(run)/") }
                return word
            }
            #expect(command.first == "kiln" && !arguments.contains { $0.contains("…") }, "\(command)")
            if arguments.first == "train" {
                let resume = arguments.contains("--resume")
                if let epochs = arguments.firstIndex(of: "--epochs") { arguments.removeSubrange(epochs...epochs + 1) }
                arguments += ["--epochs", resume ? "2" : "1"] + (resume ? [] : ["--limit", "256"])
            }
            let (status, output) = try Documentation.kiln(arguments, in: folder)
            #expect(status == 0, "\(command.joined(separator: " ")): \(output)")
            if firstRun == nil { firstRun = try manager.contentsOfDirectory(atPath: folder.appendingPathComponent("runs").path).first }
            if arguments.first == "predict" { #expect(output.contains("shoe.png: ") && output.contains("samples.npy[2]: "), "\(output)") }
        }
        let runs = try manager.contentsOfDirectory(atPath: folder.appendingPathComponent("runs").path)
        for prefix in ["lenet5-fashion-mnist-", "cifar-small-cifar10-", "vgg-small-dogs-vs-cats-", "my_model-fashion-mnist-"] {
            #expect(runs.contains { $0.hasPrefix(prefix) }, "a run folder \(prefix)TIME in \(runs)")
        }
        for file in ["y.npy", "model.safetensors", "runs/\(firstRun ?? "?")/confusion.svg"] {
            #expect(manager.fileExists(atPath: folder.appendingPathComponent(file).path), "\(file)")
        }
    }
}
