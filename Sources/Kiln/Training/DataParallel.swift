import Foundation

/// Data-parallel training, Horovod's and PyTorch DDP's scheme, over the ranks of an MPI world or the
/// devices of one process (`Model.fit(replicas:…)`): every rank holds a replica, trains on its share
/// of each global batch, and the ranks sum their gradients, each weighted by its share of the batch,
/// with all-reduces in buckets of `bucketBytes`; every replica then takes the same optimizer step, so
/// the weights stay identical. Batch-norm statistics stay per replica unless synchronized.
public struct DataParallel {
    public let communicator: any Communicator
    /// Gradient bytes reduced per `MPI_Allreduce` (Horovod's fusion buffer).
    public var bucketBytes: Int
    /// Time spent reducing gradients, and how much of it the backward pass hid, over the steps so far.
    public let statistics = Statistics()

    public final class Statistics: @unchecked Sendable {
        public internal(set) var steps = 0
        /// Reducing the buckets (device reads, `MPI_Allreduce`, unpacking), wherever it ran.
        public internal(set) var seconds = 0.0
        /// The part the step waited for after its backward pass: what overlap did not hide.
        public internal(set) var exposedSeconds = 0.0
        public internal(set) var bytes = 0
        /// Milliseconds per step spent reducing gradients.
        public var millisecondsPerStep: Double { steps == 0 ? 0 : 1000 * seconds / Double(steps) }
        /// Milliseconds per step the step waited for reductions after its backward pass.
        public var exposedMillisecondsPerStep: Double { steps == 0 ? 0 : 1000 * exposedSeconds / Double(steps) }
        /// The share of the reduction time hidden behind the backward pass.
        public var overlap: Double { seconds == 0 ? 0 : max(0, 1 - exposedSeconds / seconds) }
    }

    /// This rank's share of the batch in training, for the layers that sum over the replicas.
    private let current = CurrentStep()
    private final class CurrentStep: @unchecked Sendable { var share: Float = 1 }

    /// The communication thread: one per replica, so its reductions run in the order they were started.
    private let queue = DispatchQueue(label: "kiln.allreduce")

    public init(_ communicator: any Communicator, bucketBytes: Int = 4 << 20) {
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
        guard !rows.isEmpty else {
            current.share = 0
            return (nil, 0)
        }
        let share = Float(rows.count) / Float(batch.count)
        current.share = share
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

    /// Runs `loss.backward()` and returns, for each weight, Σ over ranks of share × gradient (a weight
    /// with no gradient here counts as zeros). A bucket is reduced as soon as its gradients are complete,
    /// on a thread of its own when MPI allows, so that reducing the last layers' gradients overlaps the
    /// backward pass through the first ones (Horovod's and DDP's scheme). Every rank fills the buckets
    /// in the same order: the graph's, then the weights missing from it.
    func backwardReducing(_ loss: Tensor, _ weights: [Weight], share: Float) throws -> [Tensor] {
        // Equal shares (the batch splits evenly) are applied to the sums, on the host, not to each gradient.
        let equal = share == 1 / Float(communicator.size)
        let position = Dictionary(weights.enumerated().map { (ObjectIdentifier($1.value), $0) }) { a, _ in a }
        let reduction = Reduction(count: weights.count)
        var bucket: [(Int, Tensor)] = [], bucketFloats = 0, seen = Set<Int>()
        func flush() throws {
            guard !bucket.isEmpty else { return }
            let (parts, communicator) = (bucket, communicator)
            (bucket, bucketFloats) = ([], 0)
            let work = { try reduction.run(parts, scale: equal ? share : 1) { try communicator.allReduceSum(&$0) } }
            if communicator.threadsMayCall { queue.async(group: reduction.group) { reduction.capture(work) } } else { try work() }
        }
        func add(_ index: Int, _ gradient: Tensor) throws {
            guard seen.insert(index).inserted else { return }
            bucket.append((index, gradient))
            bucketFloats += gradient.count
            if 4 * bucketFloats >= bucketBytes { try flush() }
        }
        try loss.backward(whenLeafReady: { leaf in
            guard let index = position[ObjectIdentifier(leaf)], let gradient = leaf.grad else { return }
            try add(index, equal ? gradient : try gradient * share)
        })
        for (index, weight) in weights.enumerated() where !seen.contains(index) {
            try add(index, try Tensor.zeros(weight.shape, on: weight.value.device))
        }
        try flush()
        let waiting = DispatchTime.now().uptimeNanoseconds
        reduction.group.wait()
        if let failure = reduction.failure { throw failure }
        let end = DispatchTime.now().uptimeNanoseconds
        statistics.steps += 1
        statistics.seconds += reduction.seconds
        statistics.exposedSeconds += Double(end - waiting) / 1e9
        statistics.bytes += 4 * weights.reduce(0) { $0 + $1.value.count }
        return try weights.indices.map { try Tensor(reduction.results[$0], shape: weights[$0].shape, on: weights[$0].value.device) }
    }

    /// The buckets of one step in flight: their results, time, and the first error.
    private final class Reduction: @unchecked Sendable {
        let group = DispatchGroup()
        var results: [[Float]]
        var seconds = 0.0
        var failure: Error?
        init(count: Int) { results = Array(repeating: [], count: count) }

        /// Reads the bucket's gradients, reduces them, and keeps each weight's part times `scale`.
        func run(_ parts: [(Int, Tensor)], scale: Float, _ reduce: (inout [Float]) throws -> Void) throws {
            let start = DispatchTime.now().uptimeNanoseconds
            var values = try parts.flatMap { try $0.1.toArray() }
            try reduce(&values)
            var offset = 0
            for (index, gradient) in parts {
                results[index] = values[offset..<(offset + gradient.count)].map { $0 * scale }
                offset += gradient.count
            }
            seconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }

        func capture(_ work: () throws -> Void) {
            do { try work() } catch { if failure == nil { failure = error } }
        }
    }

    /// Throws on every rank unless all replicas hold the same weights: a hash of their bits against
    /// rank 0's (debug builds check after every epoch).
    func verifyReplicas(_ weights: [Weight]) throws {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for weight in weights {
            for value in try weight.value.toArray() { hash = (hash ^ UInt64(value.bitPattern)) &* 0x100_0000_01b3 }
        }
        let mine = [Float(hash & 0xFF_FFFF), Float((hash >> 24) & 0xFF_FFFF)]  // integers a float holds exactly
        var root = mine
        try communicator.broadcast(&root, from: 0)
        let differing = try sum(root == mine ? 0 : 1)
        guard differing == 0 else { throw DistributedError.mismatch("\(Int(differing)) rank(s) hold weights that differ from rank 0's") }
    }

    /// The sum of `value` over ranks (a non-finite value anywhere makes it non-finite).
    func sum(_ value: Float) throws -> Float {
        var values = [value]
        try communicator.allReduceSum(&values)
        return values[0]
    }

    /// Each logged value's mean over ranks, each rank's logs counting `weight` (every rank logs the
    /// same names).
    func average(_ logs: [String: Float], weight: Double = 1) throws -> [String: Float] {
        let names = logs.keys.sorted()
        var values = names.map { weight * Double(logs[$0]!) } + [weight, Double(names.count)]
        try communicator.allReduceSum(&values)
        guard values.last == Double(names.count * communicator.size) else {
            throw DistributedError.mismatch("rank \(communicator.rank) logs \(names), others a different number of values")
        }
        let total = values[names.count]
        return Dictionary(uniqueKeysWithValues: zip(names, values.map { Float($0 / max(total, 1e-300)) }))
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

extension DataParallel: CrossReplicaSum {
    public var share: Float { current.share }

    /// An `MPI_Allreduce` queued behind the gradient buckets in flight, so that every rank makes its
    /// collective calls in the same order (synchronized batch normalisation's, during the backward pass).
    public func sumOverReplicas(_ values: inout [Float]) throws {
        guard communicator.threadsMayCall else { return try communicator.allReduceSum(&values) }
        try queue.sync { try communicator.allReduceSum(&values) }
    }
}
