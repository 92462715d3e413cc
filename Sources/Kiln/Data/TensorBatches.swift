/// Batches cut from tensors already on a device (Keras's `fit(x, y)` on arrays, with several inputs
/// and outputs): a batch per input and per target, gathered on the device in a seeded order per epoch.
public struct TensorBatches {
    public let inputs: [Tensor]
    public let targets: [Tensor]
    /// Each sample's weight in the loss, `[count]`.
    public let sampleWeights: Tensor?
    public var batchSize: Int
    public var shuffle: Bool
    public var seed: UInt64

    /// `targets` may be empty (prediction). Every tensor holds the same number of samples on its first
    /// axis, and all live on one device.
    public init(inputs: [Tensor], targets: [Tensor], sampleWeights: Tensor? = nil, batchSize: Int, shuffle: Bool = false, seed: UInt64 = 0) throws {
        guard batchSize > 0 else { throw DataError("batch size", "must be positive, got \(batchSize)") }
        guard let first = inputs.first else { throw DataError("inputs", "no input tensors given") }
        let all = inputs + targets
        if let other = all.first(where: { $0.rank == 0 || $0.shape[0] != first.shape[0] }) {
            throw DataError("tensors", "every input and target needs the same number of samples on its first axis; got shapes \(first.shape) and \(other.shape)")
        }
        guard all.allSatisfy({ $0.device === first.device }) else { throw DataError("tensors", "inputs and targets live on different devices; move them with to(_:)") }
        if let sampleWeights, sampleWeights.shape != [first.shape[0]] || sampleWeights.device !== first.device || sampleWeights.dtype != .float32 {
            throw DataError("sample weights", "need one float per sample, shape [\(first.shape[0])], on the inputs' device; got \(sampleWeights.shape)")
        }
        (self.inputs, self.targets, self.sampleWeights) = (inputs, targets, sampleWeights)
        (self.batchSize, self.shuffle, self.seed) = (batchSize, shuffle, seed)
    }

    public var count: Int { inputs[0].shape[0] }
    public var batchCount: Int { (count + batchSize - 1) / batchSize }

    /// The batches of one epoch.
    public func batches(epoch: Int) -> AnySequence<Result<Batch, Error>> {
        let order = epochOrder(count: count, shuffle: shuffle, seed: seed, epoch: epoch).map(Int32.init)
        let (inputs, targets, weights, size, total) = (inputs, targets, sampleWeights, batchSize, count)
        return AnySequence(stride(from: 0, to: total, by: size).lazy.map { start in
            Result {
                let rows = try Tensor(labels: Array(order[start..<min(start + size, total)]), on: inputs[0].device)
                return Batch(inputs: try inputs.map { try $0.gathered(rows) }, targets: try targets.map { try $0.gathered(rows) },
                             weights: try weights?.gathered(rows))
            }
        })
    }

    /// Keras's `validation_split`: the last `fraction` of the samples (before shuffling) for validation.
    public func split(validationFraction fraction: Double) throws -> (training: TensorBatches, validation: TensorBatches) {
        guard fraction > 0, fraction < 1 else { throw DataError("validation split", "must be between 0 and 1, got \(fraction)") }
        let cut = count - Int((Double(count) * fraction).rounded())
        guard cut > 0, cut < count else { throw DataError("validation split", "\(fraction) of \(count) samples leaves one side empty") }
        func part(_ range: Range<Int>) throws -> TensorBatches {
            try TensorBatches(inputs: inputs.map { try $0.sliceRows(range) }, targets: targets.map { try $0.sliceRows(range) },
                              sampleWeights: sampleWeights?.sliceRows(range), batchSize: batchSize, shuffle: shuffle, seed: seed)
        }
        return (try part(0..<cut), try part(cut..<count))
    }
}

private extension Tensor {
    func sliceRows(_ range: Range<Int>) throws -> Tensor { try gathered(Tensor(labels: range.map(Int32.init), on: device)) }
}
