import Foundation
import Testing
@testable import Kiln

/// GaussianNoise and GaussianDropout: their noise's moments, the identity at inference, gradients,
/// and a checkpoint that resumes the noise stream.
@Suite("Noise layers") struct NoiseLayerTests {
    static func moments(_ values: [Float]) -> (mean: Double, deviation: Double) {
        let mean = values.reduce(0.0) { $0 + Double($1) } / Double(values.count)
        return (mean, (values.reduce(0.0) { $0 + pow(Double($1) - mean, 2) } / Double(values.count)).squareRoot())
    }

    @Test(arguments: Backend.all)
    func noiseMomentsAndGradients(_ backend: Backend) throws {
        let d = backend.device
        var random = Random("noise")
        let values = random.floats(3 * 97 * 101).map { $0 + 2 }  // away from zero, so y / x is the multiplier
        for (layer, mean, deviation) in [(GaussianNoise(0.5) as Layer, 0.0, 0.5), (GaussianDropout(0.3), 1.0, (0.3 / 0.7).squareRoot())] {
            let model = try Sequential([Input(shape: [97, 101]), layer])
            try model.place(on: d, seed: 7)
            let x = try Tensor(values, shape: [3, 97, 101], on: d)
            #expect(try model(x).toArray() == values, "\(layer.typeName) is the identity at inference")
            x.requiresGrad = true
            let y = try model(x, training: true)
            try y.sum().backward()
            let output = try y.toArray(), gradient = try x.grad!.toArray()
            let noise = layer is GaussianNoise ? zip(output, values).map { $0 - $1 } : zip(output, values).map { $0 / $1 }
            let m = Self.moments(noise)
            #expect(abs(m.mean - mean) < 0.01 && abs(m.deviation - deviation) < 0.01, "\(layer.typeName) on \(backend): \(m)")
            // d(sum y)/dx: 1 for added noise, the multiplier for multiplicative noise.
            expectClose(gradient, layer is GaussianNoise ? values.map { _ in 1 } : noise.map(Double.init), "\(layer.typeName) gradient on \(backend)")
            #expect(try model(x.detached(), training: true).toArray() != output, "\(layer.typeName) draws fresh noise per call")
        }
        #expect { try Sequential([Input(shape: [2]), GaussianDropout(1)]) } throws: { "\($0)".contains("rate must be in [0, 1)") }
        #expect { try Sequential([Input(shape: [2]), GaussianNoise(-1)]) } throws: { "\($0)".contains("stddev must be finite") }
    }

    @Test func checkpointResumesTheNoiseAndReadsKeras() throws {
        let model = try Sequential([Input(shape: [5]), GaussianNoise(0.2), Dense(3), GaussianDropout(0.4)])
        try model.place(on: CPUDevice.shared, seed: 3)
        let x = try Tensor.normal([4, 5], seed: 1)
        _ = try model(x, training: true)
        let url = try temporaryFolder().appendingPathComponent("noise.safetensors")
        try Checkpoint.save(model, to: url)
        let next = try model(x, training: true).toArray()
        let loaded = try Checkpoint.load(url, device: CPUDevice.shared).model
        #expect(try loaded(x, training: true).toArray() == next)
        #expect((loaded.layers[1] as? GaussianNoise)?.stddev == 0.2 && (loaded.layers[3] as? GaussianDropout)?.rate == 0.4)
        let keras = #"{"class_name": "Sequential", "config": {"name": "s", "layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 4]}}, {"class_name": "GaussianNoise", "config": {"name": "n", "stddev": 0.1, "seed": null}}, {"class_name": "GaussianDropout", "config": {"name": "d", "rate": 0.25, "seed": null}}]}}"#
        let read = try KerasConfig.model(fromJSON: Data(keras.utf8), file: "m.json")
        #expect((read.layers[1] as? GaussianNoise)?.stddev == 0.1 && (read.layers[2] as? GaussianDropout)?.rate == 0.25)
    }

    /// Sampling: the KL term it adds matches its formula, its draws have the mean and spread asked
    /// for, gradients reach the mean and log-variance, and the zoo's VAE survives a checkpoint.
    @Test(arguments: Backend.all)
    func samplingAddsTheKLTerm(_ backend: Backend) throws {
        let d = backend.device
        let (n, latent) = (4000, 3)
        var random = Random("sampling")
        let mean = random.floats(latent).map { $0 * 2 }, logVariance = random.floats(latent)
        let code = try Tensor((0..<n).flatMap { _ in mean + logVariance }, shape: [n, 2 * latent], on: d)
        let model = try Sequential([Input(shape: [2 * latent]), Sampling()])
        try model.place(on: d, seed: 3)
        code.requiresGrad = true
        let z = try model(code, training: true)
        let kl = zip(mean, logVariance).reduce(0.0) { $0 - 0.5 * (1 + Double($1.1) - Double($1.0 * $1.0) - exp(Double($1.1))) }
        #expect(abs(Double(try model.addedLosses[0].item()) - kl) < 1e-4 * max(1, kl))
        let values = try z.toArray()
        for j in 0..<latent {
            let m = NoiseLayerTests.moments(stride(from: j, to: values.count, by: latent).map { values[$0] })
            #expect(abs(m.mean - Double(mean[j])) < 0.1 && abs(m.deviation - exp(0.5 * Double(logVariance[j]))) < 0.05, "\(m) on \(backend)")
        }
        try (z.sum() + model.addedLosses[0]).backward()
        #expect(try code.grad!.toArray().allSatisfy(\.isFinite))

        let vae = try GenerativeZoo.vae(imageShape: [8, 8, 1])
        try vae.place(on: d, seed: 1)
        let url = try temporaryFolder().appendingPathComponent("vae.safetensors")
        try Checkpoint.save(vae, to: url)
        let images = try Tensor.uniform([2, 8, 8, 1], seed: 4, on: d)
        #expect(try Checkpoint.load(url, device: d).model(images).toArray() == vae(images).toArray(), "the same noise stream after reloading")
    }
}
