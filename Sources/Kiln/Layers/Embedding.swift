/// Keras's `Embedding`: token ids `[batch, length]` (whole numbers, as float32 or int32) to rows of a
/// learned table `embeddings` `[inputDim, outputDim]`, giving `[batch, length, outputDim]`. The
/// gradient adds into the rows used (a scatter-add), so a step touches only those rows.
public final class Embedding: Layer {
    public let inputDim: Int, outputDim: Int
    /// Id 0 marks padding (Keras's `mask_zero`): recurrent layers after it leave their state unchanged there.
    public let maskZero: Bool
    let embeddingsInitializer: Initializer
    private var embeddings: Weight!

    public init(inputDim: Int, outputDim: Int, maskZero: Bool = false,
                embeddingsInitializer: Initializer = .randomUniform(min: -0.05, max: 0.05), name: String? = nil) {
        (self.inputDim, self.outputDim, self.maskZero, self.embeddingsInitializer) = (inputDim, outputDim, maskZero, embeddingsInitializer)
        super.init(name: name, kind: "embedding")
    }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        let input = try single(inputShapes)
        guard inputDim > 0, outputDim > 0 else { throw shapeError("inputDim and outputDim must be positive, got \(inputDim) and \(outputDim)") }
        embeddings = addWeight("embeddings", shape: [inputDim, outputDim], initializer: embeddingsInitializer)
        return input + [outputDim]
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try requirePlaced()
        let ids = try inputs[0].reshaped([inputs[0].count])
        try checkIDs(ids)
        return try embeddings.value.gathered(ids).reshaped(inputs[0].shape + [outputDim])
    }

    /// With `maskZero`, 1 where the id is not 0 (`[batch, length]`).
    override public func outputMask(_ inputs: [Tensor], mask: Tensor?) throws -> Tensor? {
        guard maskZero else { return nil }
        let ids = inputs[0].dtype == .int32 ? try Tensor(try inputs[0].toLabels().map(Float.init), shape: inputs[0].shape, on: inputs[0].device) : inputs[0]
        return try GradMode.noGrad { try ids.greater(than: Tensor.zeros([1], on: ids.device)) }
    }

    /// Ids outside the table are an error naming the layer, not a zero row (one small read per batch).
    private func checkIDs(_ ids: Tensor) throws {
        let (low, high): (Float, Float)
        if ids.dtype == .int32 {
            let values = try ids.toLabels()
            (low, high) = (Float(values.min()!), Float(values.max()!))
        } else {
            let bounds = try GradMode.noGrad { try Tensor.concatenate([(-ids).reduce(.max, axis: 0), ids.reduce(.max, axis: 0)]).toArray() }
            (low, high) = (-bounds[0], bounds[1])
        }
        guard low >= 0, high < Float(inputDim) else {
            throw shapeError("token id \(low < 0 ? low : high) is outside the vocabulary 0..<\(inputDim) (raise inputDim or cap the ids)")
        }
    }
}
