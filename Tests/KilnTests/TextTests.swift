import Foundation
import Testing
@testable import Kiln

/// Text folders to token ids (Keras's TextVectorization), and text classification from the CLI.
@Suite("Text") struct TextTests {
    @Test func vocabularyFollowsKeras() throws {
        let texts = ["The cat sat; the CAT ran!", "a dog ran", "the end"]
        let words = TextVocabulary(adaptingTo: texts, size: 5, sequenceLength: 4)
        #expect(words.words == ["", "[UNK]", "the", "cat", "ran"], "padding, unknown, then by frequency (ties alphabetical)")
        let data = words.dataset(["the dog ran the cat away", "cat"], labels: [0, 1], classNames: ["x", "y"])
        guard case .floats(let ids) = data.features else { Issue.record("float ids"); return }
        #expect(ids == [2, 1, 4, 2, 3, 0, 0, 0] && data.sampleShape == [4], "cut after 4 ids, padded with 0, unknown words 1")
    }

    @Test func foldersNameTheirProblems() throws {
        let folder = try temporaryFolder()
        #expect { try TextFolder.documents(folder) } throws: { "\($0)".contains("one sub-folder per class with .txt files") }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("b"), withIntermediateDirectories: true)
        try Data("hello".utf8).write(to: folder.appendingPathComponent("b/1.txt"))
        #expect(TextFolder.holdsText(folder))
        #expect(try TextFolder.documents(folder).classNames == ["b"])
    }

    /// Token ids from an `.npz` (`x` [n, length], `y` labels) train the text models too, the
    /// vocabulary being the ids seen; a non-text model is refused for a text folder.
    @Test func tokenIDArraysTrainTextModels() throws {
        let folder = try temporaryFolder()
        var random = Random("npz-ids")
        let ids = (0..<60 * 12).map { _ in Float(random.next() % 30) }
        let labels = (0..<60).map { n in ids[n * 12 ..< n * 12 + 12].contains(7) ? Float(1) : 0 }
        let archive = folder.appendingPathComponent("ids.npz")
        try Data(zip([("x.npy", [UInt8](NumPy.encode(ids, shape: [60, 12]))), ("y.npy", [UInt8](NumPy.encode(labels, shape: [60])))], deflated: false)).write(to: archive)
        let (status, output) = try CLITests.kiln("train", "--dataset", archive.path, "--model", "text-bilstm", "--epochs", "1",
                                                 "--out", folder.appendingPathComponent("run").path)
        #expect(status == 0 && output.contains("Training text-bilstm"), "\(output)")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("texts/a"), withIntermediateDirectories: true)
        for n in 0..<5 { try Data("some words \(n)".utf8).write(to: folder.appendingPathComponent("texts/a/\(n).txt")) }
        let refused = try CLITests.kiln("train", "--dataset", folder.appendingPathComponent("texts").path, "--model", "mlp", "--epochs", "1")
        #expect(refused.status != 0 && refused.output.contains("--model mlp does not read text"), "\(refused.output)")
    }

    /// README's text block as written: Debian's fortunes as a three-class folder, a Conv1D text
    /// classifier well above the majority class, and `kiln evaluate` agreeing with training's report.
    @Test func readmeTextClassifierRunsAsWritten() throws {
        guard FileManager.default.fileExists(atPath: "/usr/share/games/fortunes/computers") else {
            print("note: fortunes is not installed; skipping README's text classifier")
            return
        }
        let block = try #require(try Documentation.shellBlocks(Documentation.readme).first { $0.contains { $0.first == "Scripts/fortunes-to-folder.sh" } })
        let root = try temporaryFolder()
        for command in block {
            let (status, output) = command.first == "kiln" ? try Documentation.kiln(Array(command.dropFirst()), in: root)
                : try Documentation.script(command, in: root)
            #expect(status == 0, "\(command.joined(separator: " ")): \(output)")
        }
        let metrics = try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("runs/fortunes/metrics.json"))) as! [String: Any]
        let accuracy = metrics["test_accuracy"] as! Double
        let counts = try ["computers", "definitions", "people"].map { try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("fortunes/\($0)").path).count }
        let majority = Double(counts.max()!) / Double(counts.reduce(0, +))
        #expect(accuracy > majority + 0.3, "test accuracy \(accuracy), majority class \(majority)")
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("runs/fortunes/test-confusion.svg").path))
        let text = root.appendingPathComponent("fortunes/definitions/0003.txt").path
        let predicted = try CLITests.kiln("predict", root.appendingPathComponent("runs/fortunes/model.safetensors").path, text, "--top", "1")
        #expect(predicted.status == 0 && ["computers", "definitions", "people"].contains { predicted.output.contains("\(text): \($0) ") },
                "\(predicted.output)")
    }
}
