/// Sums over the replicas of data-parallel training (`DataParallel` provides them), for layers whose
/// statistics span the global batch: synchronized batch normalisation.
public protocol CrossReplicaSum {
    /// This replica's share of the current global batch: its rows ÷ the batch's (0 when it has none).
    var share: Float { get }
    /// Replaces `values` by their sum over the replicas. Every replica calls it alike, in the same
    /// order as the other collective calls of the step.
    func sumOverReplicas(_ values: inout [Float]) throws
}

extension Tensor {
    /// The sum of this tensor over the replicas, as a differentiable op, and its values on the host.
    /// Backward, replica k receives Σ_r share_r · g_r ÷ share_k: data-parallel training scales each
    /// replica's gradients by its share, so the sum is the gradient of the global objective.
    func summedOverReplicas(_ replicas: any CrossReplicaSum) throws -> (tensor: Tensor, values: [Float]) {
        var values = try toArray()
        try replicas.sumOverReplicas(&values)
        let share = replicas.share
        let tracked = Tensor.record(shape, buffer: try device.buffer(values), from: [self]) { g in
            var gradient = try g.toArray().map { $0 * share }
            try replicas.sumOverReplicas(&gradient)
            return [try Tensor(gradient.map { share > 0 ? $0 / share : 0 }, shape: g.shape, on: g.device)]
        }
        return (tracked, values)
    }

    /// Batch normalisation over the global batch of data-parallel training: the per-channel sums of
    /// the mean and the variance are summed over the replicas (a replica without rows adds none), and
    /// the moving statistics take the global ones. Composed from tensor ops, so autograd gives the
    /// gradient of the global batch's normalisation. Returns the output and the batch's mean and variance.
    func synchronizedBatchNorm(gamma: Tensor, beta: Tensor, epsilon: Float, replicas: any CrossReplicaSum) throws
        -> (output: Tensor, mean: Tensor, variance: Tensor) {
        let channels = shape.last!, rows = count / channels
        let taking: Float = replicas.share > 0 ? 1 : 0
        let flat = try reshaped([rows, channels])
        let local = try Tensor.concatenate([try flat.reduce(.sum, axis: 0) * taking, try Tensor([Float(rows) * taking], shape: [1], on: device)], axis: 0)
        let (totals, values) = try local.summedOverReplicas(replicas)
        let count = max(values[channels], 1)
        let mean = try totals.sliced(0..<channels, axis: 0) / count
        let centered = try flat - mean
        let variance = try (centered.square().reduce(.sum, axis: 0) * taking).summedOverReplicas(replicas).tensor / count
        let output = try centered * (gamma / (variance + epsilon).sqrt()) + beta
        return (try output.reshaped(shape), mean, variance)
    }
}
