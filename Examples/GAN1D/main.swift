// A 1-D GAN, the workshop's "develop a 1D GAN" in Swift: the generator learns to draw points
// (x, x²), x in [−0.5, 0.5], from 5-D noise, and the discriminator learns to tell them from real
// ones. Keras's recipe: the discriminator trains on a real and a fake half-batch, then the
// generator trains through the frozen discriminator (`Sequential([generator, discriminator])`).
// Each model asks for its own gradients, so no step leaks into the other. The losses every 100 steps
// go to FOLDER/curves.svg.
// Usage: GAN1D [STEPS] [FOLDER]   (KILN_DEVICE picks the device)
import Foundation
import Kiln

let steps = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 3000
let folder = URL(fileURLWithPath: CommandLine.arguments.dropFirst(2).first ?? "gan1d-run")
try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
var history = History()  // one row per 100 steps
let device = try Devices.select()
seed(1)  // every random draw below, made on the device, follows from it

/// `n` points of the curve.
func real(_ n: Int) throws -> Tensor {
    let x = try Tensor.uniform([n, 1], low: -0.5, high: 0.5, on: device)
    return try Tensor.concatenate([x, x * x], axis: 1)
}

/// `n` points of 5-D standard normal noise.
func noise(_ n: Int) throws -> Tensor { try Tensor.normal([n, 5], on: device) }

/// Mean distance |y − x²| of generated points from the curve.
func curveError(_ points: Tensor) throws -> Float {
    let p = try points.toArray()
    return stride(from: 0, to: p.count, by: 2).map { abs(p[$0 + 1] - p[$0] * p[$0]) }.reduce(0, +) / Float(p.count / 2)
}

let generator = try Sequential([Input(shape: [5]), Dense(15, activation: .relu, kernelInitializer: .heUniform), Dense(2)], name: "generator")
let discriminator = try Sequential([Input(shape: [2]), Dense(25, activation: .relu, kernelInitializer: .heUniform), Dense(1)],
                                   name: "discriminator")
try generator.place(on: device, seed: 1)
try discriminator.place(on: device, seed: 2)
let gan = try Sequential([generator, discriminator], name: "gan")
try gan.place(on: device)
let (dOptimizer, gOptimizer) = (Adam(), Adam())
let bce = BinaryCrossentropy(fromLogits: true)
let half = 64
let labels = try Tensor([Float](repeating: 1, count: half) + [Float](repeating: 0, count: half), shape: [2 * half, 1], on: device)
let allReal = try Tensor.ones([2 * half, 1], on: device)

print(String(format: "before training: generated points lie %.4f from the curve", try curveError(generator.predict(noise(500)))))
for step in 1...steps {
    try discriminator.setTrainable(true)
    let batch = try Tensor.concatenate([real(half), generator.predict(noise(half))], axis: 0)
    let dLoss = try bce(labels, discriminator(batch, training: true))
    try dOptimizer.apply(try discriminator.gradients(of: dLoss), to: discriminator.trainableWeights)

    try discriminator.setTrainable(false)
    let gLoss = try bce(allReal, gan(noise(2 * half), training: true))
    try gOptimizer.apply(try gan.gradients(of: gLoss), to: gan.trainableWeights)

    if step % 100 == 0 { history.append(epoch: step / 100, ["d_loss": try dLoss.item(), "g_loss": try gLoss.item()]) }
    if step % 1000 == 0 || step == steps {
        print(String(format: "step %d: discriminator loss %.3f, generator loss %.3f, generated points lie %.4f from the curve",
                     step, try dLoss.item(), try gLoss.item(), try curveError(generator.predict(noise(500)))))
    }
}
try Data(Charts.curves(history).utf8).write(to: folder.appendingPathComponent("curves.svg"), options: .atomic)
print("wrote \(folder.appendingPathComponent("curves.svg").path) (losses every 100 steps)")
