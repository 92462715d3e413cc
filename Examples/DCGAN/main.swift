// A DCGAN on the real Fashion-MNIST, the workshop's "develop a DCGAN for greyscale images" in Swift,
// written as Keras's "DCGAN overriding train_step" guide: the generator's `fit` drives a custom step
// that trains the discriminator on a real and a generated half-batch, then the generator through the
// discriminator. Each model asks for its own gradients, so no step leaks into the other. After each
// epoch it writes 64 samples (samples-epoch-N.png), the loss curves (curves.svg) and one checkpoint of
// both models and both optimizers (dcgan.safetensors), from which a later run resumes exactly; at the
// end, 1,000 samples as samples.npy, for a classifier to judge (`kiln predict CLASSIFIER samples.npy`).
// Usage: DCGAN [EPOCHS] [SAMPLES] [FOLDER]   (KILN_DEVICE picks the device)
import Foundation
import Kiln

let arguments = Array(CommandLine.arguments.dropFirst())
let epochs = arguments.first.flatMap(Int.init) ?? 5
let samples = arguments.dropFirst().first.flatMap(Int.init) ?? 60_000
let folder = URL(fileURLWithPath: arguments.dropFirst(2).first ?? "dcgan-run")
let latent = 64
let device = try Devices.select()
try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)

let all = try NamedDataset.fashionMNIST.load(.train)
guard case .bytes(let pixels) = all.features else { fatalError("Fashion-MNIST holds bytes") }
let count = min(samples, all.count)
let images = try Tensor(pixels[0..<count * 784].map { Float($0) / 255 }, shape: [count, 28, 28, 1], on: device)

let leaky = ActivationFunction.leakyRelu(negativeSlope: 0.2)
let generator = try Sequential([
    Input(shape: [latent]), Dense(7 * 7 * 128, activation: leaky), Reshape([7, 7, 128]),
    Conv2DTranspose(128, kernelSize: 4, strides: 2, padding: .same, activation: leaky),  // 14×14
    Conv2DTranspose(64, kernelSize: 4, strides: 2, padding: .same, activation: leaky),   // 28×28
    Conv2D(1, kernelSize: 5, padding: .same, activation: .sigmoid),
], name: "generator")
let discriminator = try Sequential([
    Input(shape: [28, 28, 1]), Conv2D(64, kernelSize: 4, strides: 2, padding: .same, activation: leaky),
    Conv2D(128, kernelSize: 4, strides: 2, padding: .same, activation: leaky), Flatten(), Dropout(0.2), Dense(1),
], name: "discriminator")
try generator.place(on: device, seed: 1)
try discriminator.place(on: device, seed: 2)
let (gOptimizer, dOptimizer) = (Adam(learningRate: 2e-4, beta1: 0.5), Adam(learningRate: 2e-4, beta1: 0.5))
let checkpoint = folder.appendingPathComponent("dcgan.safetensors")
let models = ["generator": generator, "discriminator": discriminator]
let optimizers = ["generator_optimizer": gOptimizer, "discriminator_optimizer": dOptimizer]
if FileManager.default.fileExists(atPath: checkpoint.path) {
    try Checkpoint.restore(checkpoint, models: models, optimizers: optimizers)
    print("resumed from \(checkpoint.path) after epoch \(generator.epochsTrained)")
}
let bce = BinaryCrossentropy(fromLogits: true)
let grid = try Tensor.normal([64, latent], seed: 42, on: device)  // the same points every epoch

/// One step: the discriminator on real images (label 1) and generated ones (0), then the generator
/// towards "real". The noise is keyed by the step count, which the checkpoint keeps.
@MainActor func trainStep(_ batch: Batch) throws -> [String: Tensor] {
    let real = batch.inputs[0], n = real.shape[0]
    let noise = try Tensor.normal([n, latent], seed: UInt64(dOptimizer.iterations), on: device)
    let fake = try generator(noise, training: true)
    let labels = try Tensor.concatenate([Tensor.ones([n, 1], on: device), Tensor.zeros([n, 1], on: device)], axis: 0)
    let dLoss = try bce(labels, discriminator(Tensor.concatenate([real, fake.detached()], axis: 0), training: true))
    try dOptimizer.apply(discriminator.gradients(of: dLoss), to: discriminator.trainableWeights)
    let gLoss = try bce(Tensor.ones([n, 1], on: device), discriminator(fake, training: true))
    try gOptimizer.apply(generator.gradients(of: gLoss), to: generator.trainableWeights)
    return ["d_loss": dLoss, "g_loss": gLoss]
}

// One epoch per `fit` call (it carries on from the epochs before), then the grid, curves and checkpoint.
for _ in 0..<epochs {
    let history = try generator.fit(x: [images], epochs: 1, batchSize: 64, seed: 3) { try trainStep($0) }
    let epoch = generator.epochsTrained
    let file = folder.appendingPathComponent("samples-epoch-\(epoch).png")
    try ImageGrid.write(try generator.predict(grid), columns: 8, to: file)
    try Data(Charts.curves(generator.trainingHistory).utf8).write(to: folder.appendingPathComponent("curves.svg"), options: .atomic)
    try Checkpoint.save(models: models, optimizers: optimizers, to: checkpoint)
    print(String(format: "epoch %d: discriminator loss %.3f, generator loss %.3f; wrote %@", epoch, history["d_loss"]?.last ?? Float.nan,
                 history["g_loss"]?.last ?? Float.nan, file.path))
}
let scored = try generator.predict(Tensor.normal([1000, latent], seed: 99, on: device))
try NumPy.write(try scored.toArray(), shape: scored.shape, to: folder.appendingPathComponent("samples.npy"))
print("wrote 1000 samples to \(folder.appendingPathComponent("samples.npy").path)")
