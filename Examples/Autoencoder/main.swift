// A convolutional autoencoder on the real Fashion-MNIST, the workshop's "unsupervised learning"
// lesson in Swift: strided convolutions squeeze each 28×28 image to 7×7×8 numbers, transposed
// convolutions bring it back, with a layer of our own (a learned gain on the code) that the saved
// model keeps: the checkpoint reloads once the layer type is registered. It writes held-out images
// over their reconstructions as a PNG grid after each epoch and the loss curves, and prints where.
// Usage: Autoencoder [EPOCHS] [SAMPLES] [FOLDER]   (KILN_DEVICE picks the device)
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

let arguments = Array(CommandLine.arguments.dropFirst())
let epochs = arguments.first.flatMap(Int.init) ?? 5
let samples = arguments.dropFirst().first.flatMap(Int.init) ?? 60_000
let folder = URL(fileURLWithPath: arguments.dropFirst(2).first ?? "autoencoder-run")
try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
let all = try NamedDataset.fashionMNIST.load(.train)
guard case .bytes(let pixels) = all.features else { fatalError("Fashion-MNIST holds bytes") }
let count = min(samples, all.count)
let images = Array(pixels[0..<count * 784])
let data = Dataset(features: .bytes(images), sampleShape: [28, 28, 1], targets: images.map { Float($0) / 255 }, targetShape: [28, 28, 1])
let device = try Devices.select()

let autoencoder = try Sequential([
    Input(shape: [28, 28, 1]),
    Conv2D(32, kernelSize: 3, strides: 2, padding: .same, activation: .relu),  // 14×14
    Conv2D(8, kernelSize: 3, strides: 2, padding: .same, activation: .relu),   // 7×7: the code
    Gain(0.5),
    Conv2DTranspose(32, kernelSize: 3, strides: 2, padding: .same, activation: .relu),  // 14×14
    Conv2DTranspose(32, kernelSize: 3, strides: 2, padding: .same, activation: .relu),  // 28×28
    Conv2D(1, kernelSize: 3, padding: .same, activation: .sigmoid),
], name: "autoencoder")
try autoencoder.place(on: device, seed: 1)
try autoencoder.compile(optimizer: Adam(), loss: MeanSquaredError())
print(String(format: "reconstruction error before training: %.4f", try autoencoder.evaluate(data)["loss"]!))
let originals = try Tensor(images[0..<8 * 784].map { Float($0) / 255 }, shape: [8, 28, 28, 1], on: device)
for _ in 0..<epochs {
    try autoencoder.fit(data, epochs: 1, batchSize: 128, validationSplit: 0.1, progress: false)
    let grid = folder.appendingPathComponent("reconstructions-epoch-\(autoencoder.epochsTrained).png")
    try ImageGrid.write(Tensor.concatenate([originals, autoencoder.predict(originals)], axis: 0), columns: 8, to: grid)
    print("wrote \(grid.path)")
}
try Data(Charts.curves(autoencoder.trainingHistory).utf8).write(to: folder.appendingPathComponent("curves.svg"), options: .atomic)
print("wrote \(folder.appendingPathComponent("curves.svg").path)")
let trained = try autoencoder.evaluate(data)["loss"]!
print(String(format: "reconstruction error after %d epochs: %.4f", epochs, trained))

let url = FileManager.default.temporaryDirectory.appendingPathComponent("autoencoder-\(getpid()).safetensors")
defer { try? FileManager.default.removeItem(at: url) }
try Checkpoint.save(autoencoder, to: url)
CustomLayers.register(Gain.self)
let reloaded = try Checkpoint.load(url).model
print(String(format: "reloaded with its Gain layer: reconstruction error %.4f", try reloaded.evaluate(data)["loss"]!))
