/// Samples held in memory as the files store them (bytes for images, so 60,000 Fashion-MNIST
/// images take 47 MB), with int32 class labels or float targets. Batches convert to float32.
public struct Dataset: Sendable {
    public enum Features: Sendable {
        /// 8-bit pixels or values; batches divide by 255 unless told otherwise.
        case bytes([UInt8])
        case floats([Float])
    }

    public var features: Features
    /// Shape of one sample: (height, width, channels) for images, (n) for feature vectors.
    public var sampleShape: [Int]
    /// Class labels (classification).
    public var labels: [Int32]?
    /// Float targets of shape `[count] + targetShape` (regression).
    public var targets: [Float]?
    public var targetShape: [Int] = []
    /// Names of the classes, when known (`T-shirt/top`, …).
    public var classNames: [String]?
    /// Each sample's weight in the loss (Keras's `sample_weight`): finite and non-negative.
    public var sampleWeights: [Float]?

    public init(features: Features, sampleShape: [Int], labels: [Int32]? = nil, targets: [Float]? = nil,
                targetShape: [Int] = [], classNames: [String]? = nil) {
        (self.features, self.sampleShape, self.labels, self.targets) = (features, sampleShape, labels, targets)
        (self.targetShape, self.classNames) = (targetShape, classNames)
    }

    public var sampleSize: Int { sampleShape.reduce(1, *) }

    public var count: Int {
        switch features {
        case .bytes(let bytes): bytes.count / sampleSize
        case .floats(let values): values.count / sampleSize
        }
    }

    /// One more than the largest label (or the number of class names).
    public var classCount: Int { max(classNames?.count ?? 0, Int(labels?.max() ?? -1) + 1) }

    /// The samples at `indices`, in that order.
    public func subset(_ indices: [Int]) -> Dataset {
        let size = sampleSize
        var result = self
        switch features {
        case .bytes(let bytes): result.features = .bytes(indices.flatMap { bytes[$0 * size ..< ($0 + 1) * size] })
        case .floats(let values): result.features = .floats(indices.flatMap { values[$0 * size ..< ($0 + 1) * size] })
        }
        result.labels = labels.map { labels in indices.map { labels[$0] } }
        let targetSize = targetShape.reduce(1, *)
        result.targets = targets.map { targets in indices.flatMap { targets[$0 * targetSize ..< ($0 + 1) * targetSize] } }
        result.sampleWeights = sampleWeights.map { weights in indices.map { weights[$0] } }
        return result
    }

    /// The samples in a random order drawn from `seed` (Keras's `*_dataset_from_directory(shuffle=True)`).
    public func shuffled(seed: UInt64) -> Dataset {
        var random = RandomGenerator(seed: seed)
        return subset(random.permutation(count))
    }

    /// The first `count` samples.
    public func prefix(_ count: Int) -> Dataset { subset(Array(0..<min(count, self.count))) }

    /// Keras's `validation_split`: the last `fraction` of the samples (before any shuffling) for validation.
    public func split(validationFraction fraction: Double) throws -> (training: Dataset, validation: Dataset) {
        guard fraction > 0, fraction < 1 else { throw DataError("validation split", "must be between 0 and 1, got \(fraction)") }
        let cut = count - Int((Double(count) * fraction).rounded())
        guard cut > 0, cut < count else { throw DataError("validation split", "\(fraction) of \(count) samples leaves one side empty") }
        return (subset(Array(0..<cut)), subset(Array(cut..<count)))
    }

    /// Checks that features, labels and targets agree in count.
    func validate(_ name: String) throws {
        let total: Int
        switch features {
        case .bytes(let bytes): total = bytes.count
        case .floats(let values): total = values.count
        }
        guard sampleSize > 0, total % sampleSize == 0 else { throw DataError(name, "\(total) values do not divide into samples of shape \(sampleShape)") }
        if let labels, labels.count != count { throw DataError(name, "\(labels.count) labels for \(count) samples") }
        if let sampleWeights {
            guard sampleWeights.count == count else { throw DataError(name, "\(sampleWeights.count) sample weights for \(count) samples") }
            if let bad = sampleWeights.firstIndex(where: { !($0.isFinite && $0 >= 0) }) {
                throw DataError(name, "sample \(bad) has weight \(sampleWeights[bad]); weights must be finite and non-negative")
            }
        }
        if let targets, targets.count != count * targetShape.reduce(1, *) {
            throw DataError(name, "\(targets.count) target values for \(count) samples of target shape \(targetShape)")
        }
        if case .floats(let values) = features, let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw DataError(name, "sample \(bad / sampleSize) holds \(values[bad]) at position \(bad % sampleSize); remove or fill non-finite values")
        }
        if let targets, let bad = targets.firstIndex(where: { !$0.isFinite }) {
            throw DataError(name, "the target of sample \(bad / max(targets.count / max(count, 1), 1)) is \(targets[bad])")
        }
    }
}
