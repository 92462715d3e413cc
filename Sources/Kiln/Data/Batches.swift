import Dispatch
import CKernels

/// How raw values become model inputs (`--preprocess`).
public enum Preprocessing: Hashable, Sendable {
    /// Values as stored.
    case none
    /// Bytes ÷ 255 (float features unchanged): Keras's `Rescaling(1/255)`.
    case unitRange
    /// After ÷255 for bytes, `(x − mean[c]) / std[c]` per channel (last axis).
    case standardize(mean: [Float], std: [Float])
    /// Keras `caffe` mode: RGB → BGR, then the ImageNet BGR means subtracted on the 0–255 scale.
    case caffe

    /// The input preprocessing pretrained networks expect: `unit` (÷255), `none`, `tf` ([-1, 1]),
    /// `torch` (÷255 then ImageNet mean/std) or `caffe`.
    public init(preset: String, channels: Int) throws {
        switch preset.lowercased() {
        case "unit": self = .unitRange
        case "none": self = .none
        case "tf": self = .standardize(mean: [Float](repeating: 0.5, count: channels), std: [Float](repeating: 0.5, count: channels))
        case "torch" where channels == 3: self = .standardize(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])
        case "caffe" where channels == 3: self = .caffe
        default: throw DataError("--preprocess", "unknown mode '\(preset)' for \(channels)-channel inputs (unit, none, tf; torch and caffe need RGB)")
        }
    }
}

/// One batch on the device: a batch per model input, labels (int32) or targets (float) per output,
/// and each sample's weight in the loss when the data has them.
public struct Batch {
    public let inputs: [Tensor]
    public let targets: [Tensor]
    public var weights: Tensor?
    public var count: Int { inputs[0].shape[0] }

    public init(inputs: [Tensor], targets: [Tensor], weights: Tensor? = nil) {
        (self.inputs, self.targets, self.weights) = (inputs, targets, weights)
    }
}

/// Sample order of an epoch: the identity, or a Fisher–Yates shuffle seeded by (seed, epoch).
func epochOrder(count: Int, shuffle: Bool, seed: UInt64, epoch: Int) -> [Int] {
    guard shuffle else { return Array(0..<count) }
    var random = RandomGenerator(seed: seed ^ (0x5851_F42D_4C95_7F2D &* UInt64(epoch + 1)))
    return random.permutation(count)
}

/// Turns a dataset into device batches: a seeded shuffle per epoch, normalisation, augmentation,
/// one-hot targets when asked, and a background thread that prepares (and uploads) the next batch
/// while the device works on the current one.
public struct BatchLoader {
    public let dataset: Dataset
    public var batchSize: Int
    public var shuffle: Bool
    public var seed: UInt64
    public var normalization: Preprocessing
    public var augmentation: Augmentation?
    /// Encode labels one-hot over this many classes (categorical cross-entropy) instead of int32.
    public var oneHotClasses: Int?

    public init(_ dataset: Dataset, batchSize: Int, shuffle: Bool = false, seed: UInt64 = 0, normalization: Preprocessing = .unitRange,
                augmentation: Augmentation? = nil, oneHotClasses: Int? = nil) throws {
        guard batchSize > 0 else { throw DataError("batch size", "must be positive, got \(batchSize)") }
        guard dataset.labels != nil || dataset.targets != nil else { throw DataError("dataset", "has neither labels nor targets") }
        if let augmentation, !augmentation.isIdentity, dataset.sampleShape.count != 3 {
            throw DataError("augmentation", "needs (height, width, channels) images, samples have shape \(dataset.sampleShape)")
        }
        if normalization == .caffe, dataset.sampleShape.last != 3 { throw DataError("normalization", "caffe mode needs RGB samples") }
        if case .standardize(let mean, let std) = normalization, mean.count != dataset.sampleShape.last || std.count != mean.count {
            throw DataError("normalization", "needs one mean and std per channel (\(dataset.sampleShape.last ?? 0)), got \(mean.count) and \(std.count)")
        }
        try Memory.require(Memory.count([3, batchSize, dataset.sampleSize]) ?? -1, for: "batches of \(batchSize) samples of shape \(dataset.sampleShape)")
        (self.dataset, self.batchSize, self.shuffle, self.seed) = (dataset, batchSize, shuffle, seed)
        (self.normalization, self.augmentation, self.oneHotClasses) = (normalization, augmentation, oneHotClasses)
    }

    public var batchCount: Int { (dataset.count + batchSize - 1) / batchSize }

    /// Sample order of an epoch (`epochOrder`).
    public func order(epoch: Int) -> [Int] { epochOrder(count: dataset.count, shuffle: shuffle, seed: seed, epoch: epoch) }

    /// Host arrays for batch `index` of an epoch: normalised (and augmented) inputs, targets, and sample weights.
    public func hostBatch(_ index: Int, order: [Int], epoch: Int) -> (inputs: [Float], labels: [Int32]?, targets: [Float]?, weights: [Float]?) {
        let members = order[index * batchSize ..< min((index + 1) * batchSize, order.count)]
        let size = dataset.sampleSize
        var inputs = [Float](repeating: 0, count: members.count * size)
        let channels = dataset.sampleShape.last ?? 1
        inputs.withUnsafeMutableBufferPointer { out in
            var scratch = [Float](repeating: 0, count: augmentation == nil ? 0 : size)
            for (row, sample) in members.enumerated() {
                let target = augmentation == nil ? out.baseAddress! + row * size : scratch.withUnsafeMutableBufferPointer { $0.baseAddress! }
                normalize(sample, into: target, channels: channels)
                if let augmentation {
                    var random = RandomGenerator(seed: seed ^ UInt64(epoch) << 32 ^ UInt64(sample) &* 0x9E37_79B9_7F4A_7C15)
                    scratch.withUnsafeBufferPointer { source in
                        augmentation.apply(source.baseAddress!, out.baseAddress! + row * size, shape: dataset.sampleShape, random: &random)
                    }
                }
            }
        }
        let labels = dataset.labels.map { labels in members.map { labels[$0] } }
        var targets: [Float]?
        if let oneHotClasses, let labels {
            targets = [Float](repeating: 0, count: labels.count * oneHotClasses)
            for (row, label) in labels.enumerated() where (0..<Int32(oneHotClasses)).contains(label) { targets![row * oneHotClasses + Int(label)] = 1 }
        } else if let all = dataset.targets {
            let targetSize = dataset.targetShape.reduce(1, *)
            targets = members.flatMap { all[$0 * targetSize ..< ($0 + 1) * targetSize] }
        }
        return (inputs, oneHotClasses == nil ? labels : nil, targets, dataset.sampleWeights.map { weights in members.map { weights[$0] } })
    }

    private func normalize(_ sample: Int, into target: UnsafeMutablePointer<Float>, channels: Int) {
        let size = dataset.sampleSize, base = sample * size
        switch dataset.features {
        case .bytes(let bytes):
            let scale: Float = normalization == .none || normalization == .caffe ? 1 : 1 / 255
            bytes.withUnsafeBufferPointer { kiln_bytes_to_floats($0.baseAddress! + base, target, size, scale) }
        case .floats(let values):
            values.withUnsafeBufferPointer { target.update(from: $0.baseAddress! + base, count: size) }
        }
        switch normalization {
        case .standardize(let mean, let std):
            for pixel in stride(from: 0, to: size, by: channels) {
                for c in 0..<channels { target[pixel + c] = (target[pixel + c] - mean[c]) / std[c] }
            }
        case .caffe:
            let means: [Float] = [103.939, 116.779, 123.68]
            for pixel in stride(from: 0, to: size, by: 3) {
                (target[pixel], target[pixel + 2]) = (target[pixel + 2] - means[0], target[pixel] - means[2])
                target[pixel + 1] -= means[1]
            }
        case .none, .unitRange: break
        }
    }

    /// The batches of one epoch on `device`, each prepared in the background while the previous one is used.
    public func batches(epoch: Int, on device: any Device) -> AnySequence<Result<Batch, Error>> {
        let order = self.order(epoch: epoch), count = batchCount
        return AnySequence { () -> AnyIterator<Result<Batch, Error>> in
            let prefetch = Prefetcher { index in try self.upload(self.hostBatch(index, order: order, epoch: epoch), to: device) }
            var index = 0
            if count > 0 { prefetch.start(0) }
            return AnyIterator {
                guard index < count else { return nil }
                let batch = prefetch.wait()
                index += 1
                if index < count { prefetch.start(index) }
                return batch
            }
        }
    }

    func upload(_ host: (inputs: [Float], labels: [Int32]?, targets: [Float]?, weights: [Float]?), to device: any Device) throws -> Batch {
        let n = host.inputs.count / dataset.sampleSize
        let inputs = try Tensor(host.inputs, shape: [n] + dataset.sampleShape, on: device)
        let weights = try host.weights.map { try Tensor($0, shape: [n], on: device) }
        if let labels = host.labels { return Batch(inputs: [inputs], targets: [try Tensor(labels: labels, on: device)], weights: weights) }
        let shape = oneHotClasses.map { [$0] } ?? dataset.targetShape
        return Batch(inputs: [inputs], targets: [try Tensor(host.targets!, shape: [n] + shape, on: device)], weights: weights)
    }
}

/// Runs one job at a time on a background queue and hands its result over.
private final class Prefetcher: @unchecked Sendable {
    private let queue = DispatchQueue(label: "kiln.prefetch")
    private let ready = DispatchSemaphore(value: 0)
    private var result: Result<Batch, Error>?
    private let make: (Int) throws -> Batch

    init(_ make: @escaping (Int) throws -> Batch) { self.make = make }

    func start(_ index: Int) {
        queue.async {
            self.result = Result { try self.make(index) }
            self.ready.signal()
        }
    }

    func wait() -> Result<Batch, Error> {
        ready.wait()
        defer { result = nil }
        return result!
    }
}
