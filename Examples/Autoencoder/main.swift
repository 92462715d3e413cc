// An autoencoder on the real Fashion-MNIST, the workshop's "unsupervised learning" lesson in Swift:
// 784 pixels squeezed to 32 numbers and back, with a layer of our own (a learned gain on the code)
// that the saved model keeps: the checkpoint reloads once the layer type is registered.
// Usage: Autoencoder [EPOCHS] [SAMPLES]   (KILN_DEVICE picks the device)
import Foundation
import Kiln

/// A learned scalar gain, saved with its starting value (a custom layer, as Keras's get_config).
final class Gain: Layer, ConfigurableLayer {
    let initial: Float
    private var gain: Weight!

    init(_ initial: Float = 1, name: String? = nil) {
        self.initial = initial
        super.init(name: name, kind: "gain")
    }

    convenience init(config: [String: Any], name: String?) throws {
        self.init((config["initial"] as? NSNumber)?.floatValue ?? 1, name: name)
    }

    var config: [String: Any] { ["initial": initial] }

    override func build(_ inputShapes: [[Int]]) throws -> [Int] {
        gain = addWeight("gain", shape: [1], initializer: .constant(initial))
        return inputShapes[0]
    }

    override func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { try inputs[0] * gain.value }
}

let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let (epochs, samples) = (arguments.first ?? 5, arguments.dropFirst().first ?? 60_000)
let all = try NamedDataset.fashionMNIST.load(.train)
guard case .bytes(let pixels) = all.features else { fatalError("Fashion-MNIST holds bytes") }
let count = min(samples, all.count)
let images = Array(pixels[0..<count * 784])
let data = Dataset(features: .bytes(images), sampleShape: [28, 28, 1], targets: images.map { Float($0) / 255 }, targetShape: [28, 28, 1])

let autoencoder = try Sequential([
    Input(shape: [28, 28, 1]), Flatten(), Dense(128, activation: .relu), Dense(32), Gain(0.5),
    Dense(128, activation: .relu), Dense(784, activation: .sigmoid), Reshape([28, 28, 1]),
], name: "autoencoder")
try autoencoder.place(on: try Devices.select(), seed: 1)
try autoencoder.compile(optimizer: Adam(), loss: MeanSquaredError())
print(String(format: "reconstruction error before training: %.4f", try autoencoder.evaluate(data)["loss"]!))
try autoencoder.fit(data, epochs: epochs, batchSize: 128, validationSplit: 0.1, progress: false)
let trained = try autoencoder.evaluate(data)["loss"]!
print(String(format: "reconstruction error after %d epochs: %.4f", epochs, trained))

let url = FileManager.default.temporaryDirectory.appendingPathComponent("autoencoder-\(getpid()).safetensors")
defer { try? FileManager.default.removeItem(at: url) }
try Checkpoint.save(autoencoder, to: url)
CustomLayers.register(Gain.self)
let reloaded = try Checkpoint.load(url).model
print(String(format: "reloaded with its Gain layer: reconstruction error %.4f", try reloaded.evaluate(data)["loss"]!))
