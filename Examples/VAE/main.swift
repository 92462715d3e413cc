// A variational autoencoder on the real Fashion-MNIST, the workshop's "variational autoencoder"
// lesson in Swift: an encoder gives each image a mean and log-variance in a 2-D latent space, a
// sample drawn with noise made on the device (the reparameterisation trick) goes through the decoder,
// and one optimizer minimises reconstruction cross-entropy plus the KL divergence to N(0, 1) in a
// custom loop over both models' weights.
// Usage: VAE [EPOCHS] [SAMPLES]   (KILN_DEVICE picks the device)
import Kiln

let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let (epochs, samples) = (arguments.first ?? 10, arguments.dropFirst().first ?? 60_000)
let latent = 2
let device = try Devices.select()
let all = try NamedDataset.fashionMNIST.load(.train)
guard case .bytes(let pixels) = all.features else { fatalError("Fashion-MNIST holds bytes") }
let count = min(samples, all.count), held = count / 10
let images = try Tensor(pixels[0..<count * 784].map { Float($0) / 255 }, shape: [count, 784], on: device)
let (training, test) = (try images.sliced(held..<count, axis: 0), try images.sliced(0..<held, axis: 0))

let encoder = try Sequential([Input(shape: [784]), Dense(256, activation: .relu), Dense(2 * latent)], name: "encoder")
let decoder = try Sequential([Input(shape: [latent]), Dense(256, activation: .relu), Dense(784)], name: "decoder")
try encoder.place(on: device, seed: 1)
try decoder.place(on: device, seed: 2)
let weights = encoder.trainableWeights + decoder.trainableWeights
let optimizer = Adam(learningRate: 1e-3)
let crossEntropy = BinaryCrossentropy(fromLogits: true)

/// Reconstruction (cross-entropy summed over the pixels) and KL terms, each averaged over the batch
/// (main-actor code, as the top-level models it uses are in Swift 6).
@MainActor func losses(_ x: Tensor, sampling: Bool) throws -> (reconstruction: Tensor, kl: Tensor) {
    let code = try encoder(x, training: true)
    let (mean, logVariance) = (try code.sliced(0..<latent, axis: 1), try code.sliced(latent..<2 * latent, axis: 1))
    let z = sampling ? try mean + (0.5 * logVariance).exp() * Tensor.normal(like: mean) : mean
    let reconstruction = try crossEntropy(x, decoder(z, training: true)) * 784
    let kl = try -0.5 * (1 + logVariance - mean.square() - logVariance.exp()).reduce(.sum, axis: 1).mean()
    return (reconstruction, kl)
}

@MainActor func report(_ label: String) throws {
    let (reconstruction, kl) = try GradMode.noGrad { try losses(test, sampling: true) }
    print(String(format: "%@: held-out reconstruction %.2f, KL %.2f, loss %.2f", label, try reconstruction.item(), try kl.item(),
                 try reconstruction.item() + kl.item()))
}

try report("before training")
seed(7)  // the noise of every step below comes from this seed
let batches = try TensorBatches(inputs: [training], targets: [], batchSize: 128, shuffle: true, seed: 3)
for epoch in 1...max(epochs, 1) {
    for batch in batches.batches(epoch: epoch) {
        let (reconstruction, kl) = try losses(try batch.get().inputs[0], sampling: true)
        let loss = try reconstruction + kl
        try optimizer.apply(try loss.gradients(with: weights.map(\.value)), to: weights)
    }
    try report("epoch \(epoch)")
}

// New images from points of the latent prior, decoded.
let generated = try GradMode.noGrad { try decoder(try Tensor.normal([16, latent], seed: 11, on: device)).sigmoid() }
let values = try generated.toArray()
print(String(format: "16 images generated from N(0, 1): pixel mean %.3f, range %.3f to %.3f", values.reduce(0, +) / Float(values.count),
             values.min()!, values.max()!))
