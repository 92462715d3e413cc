import Foundation
import Testing
@testable import Kiln

/// The programs in Examples/, built with the package and run briefly here.
@Suite("Examples") struct ExamplesTests {
    /// Runs an example program on the CPU backend.
    static func run(_ name: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        try DeviceTests.run(arguments, environment: ["KILN_DEVICE": "cpu"],
                            executable: DeviceTests.kiln.deletingLastPathComponent().appendingPathComponent(name))
    }

    /// The number (a trailing comma aside) after `marker` in each line of `output` that has one.
    static func numbers(after marker: String, in output: String) -> [Float] {
        output.split(separator: "\n").compactMap { line in
            line.range(of: marker).flatMap { Float(line[$0.upperBound...].split(separator: " ")[0].trimmingCharacters(in: [","])) }
        }
    }

    /// The last word of each line of `output` that contains `marker`, as a number.
    static func lastNumbers(of marker: String, in output: String) -> [Float] {
        output.split(separator: "\n").filter { $0.contains(marker) }.compactMap { $0.split(separator: " ").last.flatMap { Float($0) } }
    }

    /// The 1-D GAN learns the curve: its generated points end far closer to y = x² than they start;
    /// its loss curves are written.
    @Test func gan1DLearnsTheCurve() throws {
        let folder = try temporaryFolder()
        let (status, output) = try Self.run("GAN1D", ["2000", folder.path])
        #expect(status == 0, "\(output)")
        let curves = try String(contentsOf: folder.appendingPathComponent("curves.svg"), encoding: .utf8)
        #expect(curves.contains(">d_loss</text>") && curves.components(separatedBy: "<circle").count > 20, "the losses of 20 rows are plotted")
        let distances = Self.numbers(after: "lie ", in: output)
        #expect(distances.count == 3, "\(output)")
        #expect((distances.last ?? 1) < (distances.first ?? 0) / 5, "\(output)")
    }

    /// The convolutional autoencoder with a custom layer trains on real Fashion-MNIST, writes a grid of
    /// reconstructions per epoch, and its checkpoint reloads (custom layer included) to the same error.
    @Test func autoencoderTrainsAndReloads() throws {
        guard (try? NamedDataset.fashionMNIST.load(.test)) != nil else { return }
        let folder = try temporaryFolder()
        let (status, output) = try Self.run("Autoencoder", ["3", "3000", folder.path])
        #expect(status == 0, "\(output)")
        let errors = Self.lastNumbers(of: "reconstruction error", in: output)
        #expect(errors.count == 3 && errors[1] < errors[0] / 2 && errors[2] == errors[1], "\(output)")
        let grid = try ImageFolder.decode(folder.appendingPathComponent("reconstructions-epoch-3.png"))
        #expect((grid.height, grid.width) == (2 * 30 + 2, 8 * 30 + 2))
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("curves.svg").path))
    }

    /// The hand-written recurrent cell learns to forecast the sine wave.
    @Test func recurrentCellForecasts() throws {
        let (status, output) = try Self.run("RecurrentCell", ["400"])
        #expect(status == 0, "\(output)")
        let errors = Self.lastNumbers(of: "test error", in: output)
        #expect(errors.count == 2 && errors[1] < errors[0] / 10, "\(output)")
    }

    /// The VAE (a sampling layer that draws on the device and adds the KL term with `addLoss`, trained
    /// by `fit`) learns Fashion-MNIST: the held-out loss falls, the KL term stays positive, decoded
    /// latent points are images, and the grids are written.
    @Test func vaeTrainsAndGenerates() throws {
        guard (try? NamedDataset.fashionMNIST.load(.test)) != nil else { return }
        let folder = try temporaryFolder()
        let (status, output) = try Self.run("VAE", ["3", "6000", folder.path])
        #expect(status == 0, "\(output)")
        let losses = Self.lastNumbers(of: "held-out", in: output), kl = Self.numbers(after: "KL ", in: output)
        #expect(losses.count == 4 && losses[3] < losses[0] * 0.7, "\(output)")
        #expect(kl.count == 4 && kl.allSatisfy { $0 > 0 }, "\(output)")
        let range = Self.numbers(after: "range ", in: output) + Self.lastNumbers(of: "decoded from", in: output)
        #expect(range.count == 2 && range[0] >= 0 && range[1] <= 1 && range[0] < range[1], "\(output)")
        let plane = try ImageFolder.decode(folder.appendingPathComponent("latent-plane.png"))
        #expect((plane.height, plane.width) == (10 * 30 + 2, 10 * 30 + 2))
        #expect(try ImageFolder.decode(folder.appendingPathComponent("reconstructions-epoch-3.png")).height == 2 * 30 + 2)
    }

    /// The DCGAN trains two epochs on real Fashion-MNIST, writing a sample grid per epoch, the curves,
    /// the paired checkpoint and 1,000 samples; a second run resumes from the checkpoint at epoch 3.
    @Test func dcganWritesSamplesAndResumes() throws {
        guard (try? NamedDataset.fashionMNIST.load(.test)) != nil else { return }
        let folder = try temporaryFolder().appendingPathComponent("run")
        let (status, output) = try Self.run("DCGAN", ["2", "320", folder.path])
        #expect(status == 0, "\(output)")
        let losses = Self.numbers(after: "discriminator loss ", in: output)
        #expect(losses.count == 2 && losses.allSatisfy { $0.isFinite && $0 > 0 }, "\(output)")
        for epoch in 1...2 {
            let grid = try ImageFolder.decode(folder.appendingPathComponent("samples-epoch-\(epoch).png"))
            #expect((grid.height, grid.width, grid.channels) == (8 * 30 + 2, 8 * 30 + 2, 1))
        }
        let samples = try NumPy.read(folder.appendingPathComponent("samples.npy"))
        #expect(samples.shape == [1000, 28, 28, 1] && samples.values.allSatisfy { (0...1).contains($0) })
        let curves = try String(contentsOf: folder.appendingPathComponent("curves.svg"), encoding: .utf8)
        #expect(curves.contains(">d_loss</text>") && curves.contains(">g_loss</text>") && curves.contains("<polyline"), "the custom step's losses are plotted")
        let (again, resumed) = try Self.run("DCGAN", ["1", "320", folder.path])
        #expect(again == 0 && resumed.contains("after epoch 2") && resumed.contains("epoch 3: discriminator loss"), "\(resumed)")
    }
}
