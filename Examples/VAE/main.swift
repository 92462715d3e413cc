// A variational autoencoder on the real Fashion-MNIST, the workshop's "variational autoencoder"
// lesson in Swift, built as Keras's classic VAE: an encoder gives each image a mean and a
// log-variance in a 2-D latent space; `LatentSampling`, written below as Keras's example writes its
// `Sampling` layer, draws a point with noise made on the device (the reparameterisation trick) and
// adds the KL divergence to N(0, 1) as its loss (`addLoss`, Keras's add_loss); Kiln's built-in
// `Sampling` is the same layer. `fit` minimises it with the cross-entropy, summed over
// the 784 pixels (a loss weight of 784 on the per-pixel mean). It writes reconstructions after each
// epoch and the decoded latent plane as PNG grids, and the loss curves, and prints where.
// Usage: VAE [EPOCHS] [SAMPLES] [FOLDER]   (KILN_DEVICE picks the device)
import Foundation
import Kiln

/// z = mean + e^(logVariance/2)·ε from `[mean, logVariance]`, with ε drawn on the device from the
/// layer's own resumable stream (`StochasticLayer.draw`), and the KL divergence to N(0, 1) as its loss.
final class LatentSampling: StochasticLayer {
    init() { super.init(name: nil, kind: "latent_sampling") }

    override func build(_ inputShapes: [[Int]]) throws -> [Int] { [inputShapes[0][0] / 2] }

    override func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let latent = inputs[0].shape[1] / 2
        let (mean, logVariance) = (try inputs[0].sliced(0..<latent, axis: 1), try inputs[0].sliced(latent..<2 * latent, axis: 1))
        try addLoss(-0.5 * (1 + logVariance - mean.square() - logVariance.exp()).reduce(.sum, axis: 1).mean())
        return try mean + (0.5 * logVariance).exp() * draw(mean.shape, .normal(mean: 0, standardDeviation: 1), on: mean.device)
    }
}

let arguments = Array(CommandLine.arguments.dropFirst())
let epochs = arguments.first.flatMap(Int.init) ?? 10
let samples = arguments.dropFirst().first.flatMap(Int.init) ?? 60_000
let folder = URL(fileURLWithPath: arguments.dropFirst(2).first ?? "vae-run")
try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
let latent = 2
let device = try Devices.select()
let all = try NamedDataset.fashionMNIST.load(.train)
guard case .bytes(let pixels) = all.features else { fatalError("Fashion-MNIST holds bytes") }
let count = min(samples, all.count), held = count / 10
let images = try Tensor(pixels[0..<count * 784].map { Float($0) / 255 }, shape: [count, 784], on: device)
let (training, test) = (try images.sliced(held..<count, axis: 0), try images.sliced(0..<held, axis: 0))

let encoder = try Sequential([Input(shape: [784]), Dense(256, activation: .relu), Dense(2 * latent)], name: "encoder")
let decoder = try Sequential([Input(shape: [latent]), Dense(256, activation: .relu), Dense(784)], name: "decoder")
let input = Input(shape: [784])
let vae = try Model(inputs: input, outputs: try decoder(LatentSampling()(encoder(input))), name: "vae")
try vae.place(on: device, seed: 1)
try vae.compile(optimizer: Adam(learningRate: 1e-3), losses: [BinaryCrossentropy(fromLogits: true)], lossWeights: [784])

/// The held-out reconstruction and KL terms per image, and their sum (the negative ELBO).
@MainActor func report(_ label: String) throws {
    let (reconstruction, kl) = try GradMode.noGrad {
        let logits = try vae(test)
        return (try BinaryCrossentropy(fromLogits: true)(test, logits).item() * 784, try vae.addedLosses[0].item())
    }
    print(String(format: "%@: held-out reconstruction %.2f, KL %.2f, loss %.2f", label, reconstruction, kl, reconstruction + kl))
}

try report("before training")
let originals = try test.sliced(0..<8, axis: 0)
for _ in 0..<epochs {
    try vae.fit(x: training, y: training, epochs: 1, batchSize: 128, seed: 3)
    try report("epoch \(vae.epochsTrained)")
    // Eight held-out images over their reconstructions.
    let pairs = try Tensor.concatenate([originals, try vae.predict(originals).sigmoid()], axis: 0)
    try ImageGrid.write(pairs.reshaped([16, 28, 28, 1]), columns: 8, to: folder.appendingPathComponent("reconstructions-epoch-\(vae.epochsTrained).png"))
}

// The decoder's view of the latent plane.
let steps = (0..<10).map { -2 + 4 * Float($0) / 9 }
let plane = try Tensor(steps.flatMap { y in steps.flatMap { x in [x, -y] } }, shape: [100, latent], on: device)
let generated = try decoder.predict(plane).sigmoid()
try ImageGrid.write(generated.reshaped([100, 28, 28, 1]), columns: 10, to: folder.appendingPathComponent("latent-plane.png"))
try Data(Charts.curves(vae.trainingHistory).utf8).write(to: folder.appendingPathComponent("curves.svg"), options: .atomic)
let values = try generated.toArray()
print(String(format: "100 images decoded from the latent plane: pixel mean %.3f, range %.3f to %.3f", values.reduce(0, +) / Float(values.count),
             values.min()!, values.max()!))
print("wrote reconstructions-epoch-N.png, latent-plane.png and curves.svg to \(folder.path)")
