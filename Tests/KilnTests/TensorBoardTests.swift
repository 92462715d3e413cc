import Foundation
import Testing
@testable import Kiln

/// Event files against the real writers (fixtures by the tensorboard package and TF 2, read back
/// by TensorBoard's own EventAccumulator in Scripts/make-fixtures.py) and Kiln's own round trip.
@Suite("TensorBoard") struct TensorBoardTests {
    @Test func crc32cKnownValues() {
        #expect(EventRecords.crc32c(Array("123456789".utf8)) == 0xE306_9283)
        #expect(EventRecords.crc32c([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
    }

    /// What TensorBoard's reader found in files written by the tensorboard package and by TF 2.
    @Test func readsTheRealWritersFiles() throws {
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: fixtures.appendingPathComponent("tensorboard_expected.json"))) as! [String: [String: Any]]
        let torch = try EventFile.read(fixtures.appendingPathComponent("tensorboard_torch.tfevents"))
        let scalars = torch.filter { $0.tag == "loss" }.map { [Double($0.step), { if case .scalar(let x) = $0 { Double(x) } else { .nan } }($0.value)] }
        #expect(scalars == expected["torch"]!["loss"] as! [[Double]])
        let histogram = expected["torch"]!["weights"] as! [String: Any]
        #expect(torch.contains { $0.tag == "weights" && $0.step == 1 && $0.value == .histogram(limits: histogram["limits"] as! [Double], counts: histogram["counts"] as! [Double]) })
        let image = try #require(torch.first { $0.tag == "grid" })
        guard case .image(let width, let height, let png) = image.value else { Issue.record("grid is not an image"); return }
        #expect(image.step == 2 && width == 6 && height == 4)
        let file = try temporaryFolder().appendingPathComponent("grid.png")
        try png.write(to: file)
        let decoded = try ImageFolder.decode(file)
        #expect(decoded.pixels[(1 * 6 + 2) * 3 ..< (1 * 6 + 2) * 3 + 3] == [255, 128, 0])
        let note = expected["torch"]!["note"] as! [String: Any]
        #expect(torch.contains { $0.tag == "note/text_summary" && $0.step == 3 && $0.value == .text(note["text"] as! String) })
        let tf = try EventFile.read(fixtures.appendingPathComponent("tensorboard_tf.tfevents"))
        #expect(tf.map { [Double($0.step), { if case .scalar(let x) = $0 { Double(x) } else { .nan } }($0.value)] } == expected["tf"]!["epoch_loss"] as! [[Double]])
    }

    /// A fit with the callback: per-epoch scalars equal the history (val_ ones in the validation run),
    /// step scalars every 2 steps, weight and gradient histograms that count every element, the
    /// summary text, and images from the closure and from addImage.
    @Test(arguments: Backend.all)
    func fitWritesWhatKerasWould(_ backend: Backend) throws {
        let d = backend.device
        let folder = try temporaryFolder()
        let model = try Sequential([Input(shape: [3]), Dense(4, activation: .relu), Dense(2)])
        try model.place(on: d, seed: 1)
        try model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: ["accuracy"])
        var random = Random("tensorboard")
        let x = try Tensor(random.floats(30), shape: [10, 3], on: d), y = try Tensor(labels: (0..<10).map { Int32($0 % 2) }, on: d)
        let grid = try ImageGrid.png(Tensor.zeros([2, 4, 4, 1], on: d))
        let board = try TensorBoard(logDir: folder, histogramFrequency: 2, updateFrequency: 2) { epoch in ["samples": grid] }
        let history = try model.fit(x: x, y: y, epochs: 3, batchSize: 4, validationSplit: 0.2, callbacks: [board], progress: false)
        try board.addImage(grid, tag: "extra", step: 9)
        let train = try EventFile.read(folder.appendingPathComponent("train").appendingPathComponent(board.files[0].lastPathComponent))
        let validation = try EventFile.read(board.files[1])
        for name in ["loss", "accuracy"] {
            #expect(train.filter { $0.tag == "epoch_" + name }.map(\.value) == history[name]!.map { .scalar($0) }, "\(name)")
            #expect(validation.filter { $0.tag == "epoch_" + name }.map(\.value) == history["val_" + name]!.map { .scalar($0) }, "val_\(name)")
        }
        #expect(train.filter { $0.tag == "batch_loss" }.map(\.step) == [2, 4, 6], "2 steps per epoch, logged every 2")
        for weight in model.weights {
            let histograms = train.filter { $0.tag == weight.path + "/histogram" }
            #expect(histograms.map(\.step) == [2], "\(weight.path): epoch 2 only")
            if case .histogram(_, let counts) = histograms.first?.value { #expect(counts.reduce(0, +) == Double(weight.count)) }
            #expect(train.contains { $0.tag == weight.path + "/gradient" && $0.step == 2 })
        }
        let summary = model.summary().split(separator: "\n").map { "    " + $0 }.joined(separator: "\n")
        #expect(train.contains { $0.tag == "model/summary" && $0.value == .text(summary) })
        #expect(train.filter { $0.tag == "samples" }.map(\.step) == [1, 2, 3] && train.contains { $0.tag == "extra" && $0.step == 9 })
    }

    /// A damaged or cut file is one clear error naming the record.
    @Test func damagedFilesAreNamed() throws {
        let url = try temporaryFolder().appendingPathComponent("events.out.tfevents.1")
        var bytes = [UInt8](try Data(contentsOf: fixtures.appendingPathComponent("tensorboard_torch.tfevents")))
        try Data(bytes.dropLast(3)).write(to: url)
        #expect { try EventFile.read(url) } throws: { "\($0)".contains(url.path) && "\($0)".contains("truncated") }
        bytes[30] ^= 0x10
        try Data(bytes).write(to: url)
        #expect { try EventFile.read(url) } throws: { "\($0)".contains("fails its data CRC") }
    }

    /// `kiln train --model conv-autoencoder --tensorboard`: each epoch's reconstruction grid is an image.
    @Test func generativeRunsLogTheirGrids() throws {
        let folder = try temporaryFolder()
        var random = Random("tensorboard grids")
        try writeImageFolder(folder.appendingPathComponent("images"), classes: ["any"], count: 20, side: 8) { _ in UInt8(random.int(256)) }
        let out = folder.appendingPathComponent("run")
        let (status, output) = try ReliabilityTests.kiln(["train", "--model", "conv-autoencoder", "--dataset", folder.appendingPathComponent("images").path,
                                                          "--image-size", "8,8", "--channels", "1", "--epochs", "2", "--tensorboard", "--out", out.path])
        #expect(status == 0, "\(output)")
        let file = try #require(try FileManager.default.contentsOfDirectory(atPath: out.appendingPathComponent("train").path).first)
        let values = try EventFile.read(out.appendingPathComponent("train/" + file))
        #expect(values.filter { $0.tag == "reconstructions" }.map(\.step) == [1, 2] && values.contains { $0.tag == "epoch_loss" })
    }
}
