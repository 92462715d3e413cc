// A DCGAN on the real Fashion-MNIST, the workshop's "develop a DCGAN for greyscale images" in Swift,
// as Keras's "DCGAN overriding train_step" guide: the generator's `fit` drives a custom step
// (`AdversarialStep`) that trains the discriminator on a real and a generated half-batch, then the
// generator through the discriminator, each model with its own gradients. After each
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

let (generator, discriminator) = try GenerativeZoo.dcgan(imageShape: [28, 28, 1], latent: latent)
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
let grid = try Tensor.normal([64, latent], seed: 42, on: device)  // the same points every epoch

// Keras's `train_step`: the discriminator on real images (label 1) and generated ones (0), then the
// generator towards "real" (README's "writing a GAN training loop" spells the step out).
let trainStep = try AdversarialStep(generator: generator, discriminator: discriminator, generatorOptimizer: gOptimizer,
                                    discriminatorOptimizer: dOptimizer)

// One epoch per `fit` call (it carries on from the epochs before), then the grid, curves and checkpoint.
for _ in 0..<epochs {
    let history = try generator.fit(x: [images], epochs: 1, batchSize: 64, seed: 3, trainStep: trainStep.callAsFunction)
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
