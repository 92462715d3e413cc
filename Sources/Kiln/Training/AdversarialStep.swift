/// One step of a GAN, as Keras's DCGAN guide writes `train_step`, for `generator.fit(x:trainStep:)`:
/// the discriminator learns real images (label 1) from generated ones (0), then the generator learns
/// to make it say "real". Each model takes its own gradients, so neither step leaks into the other.
/// The noise of step i is keyed by (seed, i): the discriminator optimizer's step count, which
/// checkpoints keep, so a resumed run draws what an uninterrupted one would.
public struct AdversarialStep {
    public let generator: Model, discriminator: Model
    public let generatorOptimizer: Optimizer, discriminatorOptimizer: Optimizer
    public let latent: Int, seed: UInt64
    private let loss = BinaryCrossentropy(fromLogits: true)

    public init(generator: Model, discriminator: Model, generatorOptimizer: Optimizer, discriminatorOptimizer: Optimizer, seed: UInt64 = 0) throws {
        guard let noise = generator.inputs.first?.shape, noise.count == 1, discriminator.outputs.first?.shape == [1] else {
            throw TrainingError.incompatible("a GAN step needs a generator of 1-D noise and a discriminator of one logit")
        }
        (self.generator, self.discriminator, self.latent, self.seed) = (generator, discriminator, noise[0], seed)
        (self.generatorOptimizer, self.discriminatorOptimizer) = (generatorOptimizer, discriminatorOptimizer)
    }

    public func callAsFunction(_ batch: Batch) throws -> [String: Tensor] {
        let real = batch.inputs[0], n = real.shape[0], device = real.device
        let noise = try Tensor.normal([n, latent], seed: seed &+ UInt64(discriminatorOptimizer.iterations), on: device)
        let fake = try generator(noise, training: true)
        let labels = try Tensor.concatenate([Tensor.ones([n, 1], on: device), Tensor.zeros([n, 1], on: device)], axis: 0)
        let dLoss = try loss(labels, discriminator(Tensor.concatenate([real, fake.detached()], axis: 0), training: true))
        try discriminatorOptimizer.apply(discriminator.gradients(of: dLoss), to: discriminator.trainableWeights)
        let gLoss = try loss(Tensor.ones([n, 1], on: device), discriminator(fake, training: true))
        try generatorOptimizer.apply(generator.gradients(of: gLoss), to: generator.trainableWeights)
        return ["d_loss": dLoss, "g_loss": gLoss]
    }
}
