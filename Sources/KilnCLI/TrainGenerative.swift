import ArgumentParser
import Foundation
import Kiln

extension TrainCommand {
    /// The generative model `--model` names (or the `--resume` checkpoint was trained as), if any.
    func generativeModel() throws -> (GenerativeZoo, RunSettings?)? {
        guard let resume else { return model.flatMap(GenerativeZoo.init).map { ($0, nil) } }
        let file = try SafeTensors(contentsOf: URL(fileURLWithPath: resume))
        guard let saved = file.metadata["training"].flatMap({ try? JSONDecoder().decode(RunSettings.self, from: Data($0.utf8)) }),
              let zoo = GenerativeZoo(rawValue: saved.model) else { return nil }
        return (zoo, saved)
    }

    /// `kiln train --model conv-autoencoder|vae|dcgan` on images: the autoencoders learn to rebuild
    /// them (MSE; the VAE's ELBO), the DCGAN to make new ones with `AdversarialStep`. After each epoch
    /// the run folder gets a PNG grid (test images over their reconstructions, or 64 samples),
    /// history.csv, curves.svg and the checkpoint (dcgan.safetensors holds both models and optimizers).
    func generative(_ zoo: GenerativeZoo, _ settings: RunSettings, saved: RunSettings?, device: any Device) throws {
        var settings = saved ?? settings
        settings.model = zoo.rawValue
        let folder = try runFolder(settings)
        var data = self.data
        (data.data, data.imageSize, data.channels, data.limit) = (settings.data, settings.imageSize, settings.channels, settings.limit)
        let (training, test, _) = try data.load(settings.dataset, shuffleSeed: settings.seed)
        let (images, testImages) = (try pixels(training, device), try pixels(test, device))
        let shape = Array(images.shape.dropFirst())
        let settingsJSON = String(decoding: try JSONEncoder().encode(settings), as: UTF8.self)
        let signals = InterruptOnSignal()
        defer { signals.uninstall() }
        let csv = CSVLogger(folder.appendingPathComponent("history.csv"))
        let start = Date()
        let model: Model, written: [String], testLoss: Float
        if zoo == .dcgan {
            let (generator, discriminator) = try GenerativeZoo.dcgan(imageShape: shape)
            let (gOptimizer, dOptimizer) = (Adam(learningRate: learningRate ?? 2e-4, beta1: 0.5), Adam(learningRate: learningRate ?? 2e-4, beta1: 0.5))
            try generator.place(on: device, seed: settings.seed)
            try discriminator.place(on: device, seed: settings.seed &+ 1)
            let url = folder.appendingPathComponent("dcgan.safetensors")
            let (models, optimizers) = (["generator": generator, "discriminator": discriminator],
                                        ["generator_optimizer": gOptimizer, "discriminator_optimizer": dOptimizer])
            if let resume { try Checkpoint.restore(URL(fileURLWithPath: resume), models: models, optimizers: optimizers) }
            try checkEpochs(generator)
            let noise = try Tensor.normal([64, generator.inputs[0].shape[0]], seed: settings.seed, on: device)
            let snapshot = EpochSnapshot { epoch in
                try ImageGrid.write(generator.predict(noise), to: folder.appendingPathComponent("samples-epoch-\(epoch).png"))
                try Checkpoint.save(models: models, optimizers: optimizers, metadata: ["training": settingsJSON], to: url)
            }
            print("Training dcgan (\(generator.parameterCount) + \(discriminator.parameterCount) parameters) on \(settings.dataset) "
                  + "(\(images.shape[0]) images) on \(device.info.name)")
            let step = try AdversarialStep(generator: generator, discriminator: discriminator, generatorOptimizer: gOptimizer,
                                           discriminatorOptimizer: dOptimizer, seed: settings.seed)
            let board = try tensorBoard(folder) { epoch in ["samples": try Data(contentsOf: folder.appendingPathComponent("samples-epoch-\(epoch).png"))] }
            try generator.fit(x: [images], epochs: epochs - generator.epochsTrained, batchSize: settings.batchSize, seed: settings.seed,
                              callbacks: [signals, csv, snapshot] + [board].compactMap { $0 }, trainStep: step.callAsFunction)
            signals.uninstall()
            try Checkpoint.save(models: models, optimizers: optimizers, metadata: ["training": settingsJSON], to: url)  // an interrupted epoch's state too
            (model, testLoss) = (generator, .nan)
            written = ["history.csv", "curves.svg", "dcgan.safetensors", "samples-epoch-\(generator.epochsTrained).png"]
        } else {
            if let resume {
                model = try Checkpoint.load(URL(fileURLWithPath: resume), device: device).model
            } else {
                model = zoo == .vae ? try GenerativeZoo.vae(imageShape: shape) : try GenerativeZoo.convAutoencoder(imageShape: shape)
                try model.place(on: device, seed: settings.seed)
                // The VAE's reconstruction term is the cross-entropy summed over the pixels (its KL term comes from `Sampling`).
                try model.compile(optimizer: try makeOptimizer(), losses: [zoo == .vae ? BinaryCrossentropy(fromLogits: true) : MeanSquaredError()],
                                  lossWeights: [zoo == .vae ? Float(shape.reduce(1, *)) : 1])
            }
            try checkEpochs(model)
            let originals = try testImages.sliced(0..<min(8, testImages.shape[0]), axis: 0)
            let checkpoint = ModelCheckpoint(folder.appendingPathComponent("model.safetensors"))
            checkpoint.metadata["training"] = settingsJSON
            let snapshot = EpochSnapshot { epoch in
                let rebuilt = try zoo == .vae ? model.predict(originals).sigmoid() : model.predict(originals)
                try ImageGrid.write(Tensor.concatenate([originals, rebuilt], axis: 0), columns: originals.shape[0],
                                    to: folder.appendingPathComponent("reconstructions-epoch-\(epoch).png"))
            }
            print("Training \(zoo.rawValue) (\(model.parameterCount) parameters) on \(settings.dataset) (\(images.shape[0]) images) on \(device.info.name)")
            let board = try tensorBoard(folder) { epoch in
                ["reconstructions": try Data(contentsOf: folder.appendingPathComponent("reconstructions-epoch-\(epoch).png"))]
            }
            try model.fit(x: images, y: images, epochs: epochs - model.epochsTrained, batchSize: settings.batchSize, validationSplit: settings.validationSplit,
                          seed: settings.seed, callbacks: [signals, csv, checkpoint, snapshot] + [board].compactMap { $0 })
            signals.uninstall()
            try Checkpoint.save(model, metadata: checkpoint.metadata, to: checkpoint.url)  // an interrupted epoch's state too
            testLoss = try model.evaluate(x: [testImages], y: [testImages], batchSize: settings.batchSize)["loss"] ?? .nan
            written = ["history.csv", "curves.svg", "metrics.json", "model.safetensors", "reconstructions-epoch-\(model.epochsTrained).png"]
        }
        try Data(Charts.curves(model.trainingHistory).utf8).write(to: folder.appendingPathComponent("curves.svg"), options: .atomic)
        if testLoss.isFinite {
            let metrics: [String: Any] = ["test_loss": testLoss, "epochs": model.epochsTrained, "seconds": Date().timeIntervalSince(start),
                                          "device": device.info.name]
            try JSONSerialization.data(withJSONObject: metrics, options: [.prettyPrinted, .sortedKeys])
                .write(to: folder.appendingPathComponent("metrics.json"), options: .atomic)
            print(String(format: "Test loss %.4f (%@)", testLoss, zoo == .vae ? "reconstruction cross-entropy + KL per image" : "pixel MSE"))
        }
        print("Wrote \(folder.path)/{\(written.filter { FileManager.default.fileExists(atPath: folder.appendingPathComponent($0).path) }.joined(separator: ","))}")
        if let signal = signals.received { throw ExitCode(128 + signal) }
    }

    private func checkEpochs(_ model: Model) throws {
        guard epochs > model.epochsTrained else {
            throw CleanExit.message("the model has already trained \(model.epochsTrained) epochs; --epochs is the final epoch, so ask for more")
        }
    }

    /// A dataset's images as a float tensor in [0, 1] (bytes ÷ 255; floats as stored).
    private func pixels(_ data: Dataset, _ device: any Device) throws -> Tensor {
        guard data.sampleShape.count == 3 else { throw ValidationError("--model \(model ?? "") takes images, got samples of shape \(data.sampleShape)") }
        let values: [Float]
        switch data.features {
        case .bytes(let bytes): values = bytes.map { Float($0) / 255 }
        case .floats(let floats): values = floats
        }
        return try Tensor(values, shape: [data.count] + data.sampleShape, on: device)
    }
}

/// Runs `body` with the epoch number after each epoch.
final class EpochSnapshot: Callback {
    let body: (Int) throws -> Void
    init(_ body: @escaping (Int) throws -> Void) { self.body = body }
    func epochDidEnd(_ epoch: Int, logs: [String: Float], _ state: TrainingState) throws { try body(epoch) }
}
