import Foundation

/// Data-parallel training over an MPI world, Horovod's and PyTorch DDP's scheme: every rank holds a
/// replica, trains on its share of each global batch, and the ranks sum their gradients, each weighted
/// by its share of the batch, with `MPI_Allreduce` in buckets of `bucketBytes`; every replica then
/// takes the same optimizer step, so the weights stay identical. Batch-norm statistics stay per replica.
public struct DataParallel {
    public let communicator: MPICommunicator
    /// Gradient floats reduced per `MPI_Allreduce` (Horovod's fusion buffer).
    public var bucketBytes: Int

    public init(_ communicator: MPICommunicator, bucketBytes: Int = 4 << 20) {
        (self.communicator, self.bucketBytes) = (communicator, max(bucketBytes, 4))
    }

    /// This rank's rows of a batch of `count`: an even split, the first `count % size` ranks one more.
    public func rows(of count: Int) -> Range<Int> {
        let (base, extra, rank) = (count / communicator.size, count % communicator.size, communicator.rank)
        let start = rank * base + min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
    }

    /// This rank's part of a global batch (nil when the batch has fewer samples than ranks and none
    /// fall to this one), and its share of the batch's samples.
    func shard(_ batch: Batch) throws -> (batch: Batch?, share: Float) {
        let rows = rows(of: batch.count)
        guard !rows.isEmpty else { return (nil, 0) }
        let share = Float(rows.count) / Float(batch.count)
        guard rows.count < batch.count else { return (batch, share) }
        return (Batch(inputs: try batch.inputs.map { try Self.rows(rows, of: $0) }, targets: try batch.targets.map { try Self.rows(rows, of: $0) },
                      weights: try batch.weights.map { try Self.rows(rows, of: $0) }), share)
    }

    /// Rows of a batch tensor (float32 or int32 labels), copied on its device.
    private static func rows(_ rows: Range<Int>, of tensor: Tensor) throws -> Tensor {
        let inner = tensor.count / max(tensor.shape[0], 1)
        let part = Tensor(shape: [rows.count] + tensor.shape.dropFirst(), dtype: tensor.dtype,
                          buffer: try tensor.device.makeBuffer(count: rows.count * inner), device: tensor.device)
        try tensor.device.copy(tensor.buffer, offset: rows.lowerBound * inner, to: part.buffer, at: 0, count: rows.count * inner)
        return part
    }

    /// Sets every weight to rank 0's values (replicas start from the same point, whatever their seeds).
    func synchronize(_ weights: [Weight]) throws {
        try bucketed(weights.map { $0.value }) { values in try communicator.broadcast(&values, from: 0) } write: { weight, values in
            try values.withUnsafeBytes { try weight.device.write($0, to: weight.buffer, offset: 0) }
        }
    }

    /// Σ over ranks of share × gradient for each weight (a weight with no gradient here counts as zeros),
    /// reduced bucket by bucket.
    func reducedGradients(_ weights: [Weight], share: Float) throws -> [Tensor] {
        let gradients = try weights.map { weight in
            try weight.value.grad.map { try $0 * share } ?? Tensor.zeros(weight.shape, on: weight.value.device)
        }
        var reduced: [Tensor] = []
        try bucketed(gradients) { values in try communicator.allReduceSum(&values) } write: { gradient, values in
            reduced.append(try Tensor(values, shape: gradient.shape, on: gradient.device))
        }
        return reduced
    }

    /// The sum of `value` over ranks (a non-finite value anywhere makes it non-finite).
    func sum(_ value: Float) throws -> Float {
        var values = [value]
        try communicator.allReduceSum(&values)
        return values[0]
    }

    /// Each logged value's mean over ranks (every rank logs the same names).
    func average(_ logs: [String: Float]) throws -> [String: Float] {
        let names = logs.keys.sorted()
        var values = names.map { Double(logs[$0]!) } + [Double(names.count)]
        try communicator.allReduceSum(&values)
        guard values.last == Double(names.count * communicator.size) else {
            throw DistributedError.mismatch("rank \(communicator.rank) logs \(names), others a different number of values")
        }
        return Dictionary(uniqueKeysWithValues: zip(names, values.map { Float($0 / Double(communicator.size)) }))
    }

    /// Packs the tensors' values into host buckets of about `bucketBytes`, runs `reduce` on each, and
    /// hands each tensor its part back, in order.
    private func bucketed(_ tensors: [Tensor], reduce: (inout [Float]) throws -> Void,
                          write: (Tensor, [Float]) throws -> Void) throws {
        var start = 0
        while start < tensors.count {
            var end = start, floats = 0
            repeat { floats += tensors[end].count; end += 1 } while end < tensors.count && 4 * (floats + tensors[end].count) <= bucketBytes
            var bucket = try tensors[start..<end].flatMap { try $0.toArray() }
            try reduce(&bucket)
            var offset = 0
            for tensor in tensors[start..<end] {
                try write(tensor, Array(bucket[offset..<(offset + tensor.count)]))
                offset += tensor.count
            }
            start = end
        }
    }
}
