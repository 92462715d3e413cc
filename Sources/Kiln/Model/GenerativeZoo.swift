/// Generative architectures for `kiln train --model NAME` and the examples, for images whose sides
/// divide by 4 (Fashion-MNIST's 28×28): two stride-2 steps down, two `Conv2DTranspose` steps up.
public enum GenerativeZoo: String, CaseIterable, Sendable {
    case convAutoencoder = "conv-autoencoder"
    case vae
    case dcgan

    private static func check(_ imageShape: [Int], _ name: String) throws -> (height: Int, width: Int, channels: Int) {
        guard imageShape.count == 3, imageShape[0] % 4 == 0, imageShape[1] % 4 == 0, imageShape[0] > 0, imageShape[1] > 0,
              [1, 3].contains(imageShape[2]) else {
            throw TensorError.shape("model \(name) takes (height, width, 1 or 3 channels) images with sides that divide by 4, got \(imageShape)")
        }
        return (imageShape[0], imageShape[1], imageShape[2])
    }

    /// Strided convolutions to a (h/4, w/4, 8) code and transposed convolutions back; sigmoid pixels.
    public static func convAutoencoder(imageShape: [Int]) throws -> Sequential {
        let c = try check(imageShape, "conv-autoencoder").channels
        return try Sequential([
            Input(shape: imageShape),
            Conv2D(32, kernelSize: 3, strides: 2, padding: .same, activation: .relu),
            Conv2D(8, kernelSize: 3, strides: 2, padding: .same, activation: .relu),
            Conv2DTranspose(32, kernelSize: 3, strides: 2, padding: .same, activation: .relu),
            Conv2DTranspose(32, kernelSize: 3, strides: 2, padding: .same, activation: .relu),
            Conv2D(c, kernelSize: 3, padding: .same, activation: .sigmoid),
        ], name: "conv-autoencoder")
    }

    /// Keras's VAE example, convolutional: an encoder to a mean and log-variance in `latent`
    /// dimensions, `Sampling` (which adds the KL term), and a decoder giving pixel logits; compile it
    /// with `BinaryCrossentropy(fromLogits: true)` weighted by the pixel count for the ELBO.
    public static func vae(imageShape: [Int], latent: Int = 2) throws -> Model {
        let (h, w, c) = try check(imageShape, "vae")
        let input = Input(shape: imageShape)
        var x = try Conv2D(32, kernelSize: 3, strides: 2, padding: .same, activation: .relu)(input)
        x = try Conv2D(64, kernelSize: 3, strides: 2, padding: .same, activation: .relu)(x)
        x = try Dense(16, activation: .relu)(Flatten()(x))
        let z = try Sampling(name: "sampling")(Dense(2 * latent, name: "mean_and_log_variance")(x))
        x = try Reshape([h / 4, w / 4, 64])(Dense(h / 4 * w / 4 * 64, activation: .relu)(z))
        x = try Conv2DTranspose(64, kernelSize: 3, strides: 2, padding: .same, activation: .relu)(x)
        x = try Conv2DTranspose(32, kernelSize: 3, strides: 2, padding: .same, activation: .relu)(x)
        return try Model(inputs: input, outputs: try Conv2D(c, kernelSize: 3, padding: .same, name: "pixel_logits")(x), name: "vae")
    }

    /// Keras's DCGAN guide: a generator from `latent` noise to sigmoid images, and a discriminator
    /// giving a logit for "real".
    public static func dcgan(imageShape: [Int], latent: Int = 64) throws -> (generator: Sequential, discriminator: Sequential) {
        let (h, w, c) = try check(imageShape, "dcgan")
        let leaky = ActivationFunction.leakyRelu(negativeSlope: 0.2)
        let generator = try Sequential([
            Input(shape: [latent]), Dense(h / 4 * w / 4 * 128, activation: leaky), Reshape([h / 4, w / 4, 128]),
            Conv2DTranspose(128, kernelSize: 4, strides: 2, padding: .same, activation: leaky),
            Conv2DTranspose(64, kernelSize: 4, strides: 2, padding: .same, activation: leaky),
            Conv2D(c, kernelSize: 5, padding: .same, activation: .sigmoid),
        ], name: "generator")
        let discriminator = try Sequential([
            Input(shape: imageShape), Conv2D(64, kernelSize: 4, strides: 2, padding: .same, activation: leaky),
            Conv2D(128, kernelSize: 4, strides: 2, padding: .same, activation: leaky), Flatten(), Dropout(0.2), Dense(1),
        ], name: "discriminator")
        return (generator, discriminator)
    }
}
