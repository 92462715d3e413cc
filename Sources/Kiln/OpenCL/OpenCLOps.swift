import CCLBlast
import COpenCL

/// The kernel library on OpenCL: each op checks its buffers and enqueues kernels from `Kernels/`.
extension OpenCLDevice {
    public func fill(_ buffer: Buffer, with value: Float, offset: Int, count: Int) throws {
        try require(buffer, offset + count, "fill")
        try launch("memory", "fill_float", items: count, buffer, offset, count, value)
    }

    public func fill(_ buffer: Buffer, withInt value: Int32, offset: Int, count: Int) throws {
        try require(buffer, offset + count, "fill")
        try launch("memory", "fill_int", items: count, buffer, offset, count, value)
    }

    public func copy2D(rows: Int, columns: Int, from source: Buffer, offset sourceOffset: Int, stride sourceStride: Int,
                       to destination: Buffer, offset destinationOffset: Int, stride destinationStride: Int) throws {
        guard rows > 0, columns > 0 else { return }
        try require(source, sourceOffset + (rows - 1) * sourceStride + columns, "copy2D source")
        try require(destination, destinationOffset + (rows - 1) * destinationStride + columns, "copy2D destination")
        try launch("memory", "copy_2d", items: rows * columns, rows, columns,
                   source, sourceOffset, sourceStride, destination, destinationOffset, destinationStride)
    }

    public func gatherRows(_ g: RowGather, table: Buffer, indices: Buffer, into output: Buffer) throws {
        try g.validate(table: table, indices: indices, rows: output, "gatherRows")
        try launch("memory", "gather_rows", items: g.count * g.columns, g.tableRows, g.columns, g.count, g.floatIndices, table, indices, output)
    }

    public func scatterAddRows(_ g: RowGather, rows: Buffer, indices: Buffer, into table: Buffer) throws {
        try g.validate(table: table, indices: indices, rows: rows, "scatterAddRows")
        try launch("memory", "scatter_add_rows", items: g.columns, g.tableRows, g.columns, g.count, g.floatIndices, rows, indices, table)
    }

    public func permute(_ input: Buffer, shape: [Int], permutation: [Int], into output: Buffer) throws {
        let index = try StridedIndex(permuting: shape, by: permutation)
        try require(input, index.count, "permute input")
        try require(output, index.count, "permute output")
        try launch("memory", "permute", items: index.count, index.count, IntVector8(index.shape),
                   IntVector8(index.strides[0]), input, output)
    }

    public func gemm(_ g: Gemm, a: Buffer, b: Buffer, c: Buffer) throws {
        try g.validate(a: a, b: b, c: c)
        try sgemm(g, a, b, c)
    }

    func sgemm(_ g: Gemm, _ a: Buffer, _ b: Buffer, _ c: Buffer) throws {
        let (ta, tb) = (g.transposeA ? CLBlastTransposeYes : CLBlastTransposeNo, g.transposeB ? CLBlastTransposeYes : CLBlastTransposeNo)
        if g.batch == 1 {
            try clblast("CLBlastSgemm(\(g.m)×\(g.n)×\(g.k))") { queue in
                CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, g.m, g.n, g.k, g.alpha, a.mem, g.offsetA, g.lda,
                             b.mem, g.offsetB, g.ldb, g.beta, c.mem, g.offsetC, g.ldc, queue, nil)
            }
        } else {
            try clblast("CLBlastSgemmStridedBatched(\(g.batch)×\(g.m)×\(g.n)×\(g.k))") { queue in
                CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, ta, tb, g.m, g.n, g.k, g.alpha,
                                           a.mem, g.offsetA, g.lda, g.strideA, b.mem, g.offsetB, g.ldb, g.strideB,
                                           g.beta, c.mem, g.offsetC, g.ldc, g.strideC, g.batch, queue, nil)
            }
        }
    }

    /// Work-items of a same-shape elementwise kernel: `VECTOR` (4) elements each (`Kernels/elementwise.cl`).
    static func vectors(_ count: Int) -> Int { (count + 3) / 4 }
    /// Channels per work-item of the NHWC kernels that take a pixel's channels as vectors (pool.cl).
    static func lanes(_ channels: Int) -> Int { channels % 4 == 0 ? 4 : 1 }

    /// The window's geometry as the `WINDOW_ARGS` of `Kernels/common.cl`.
    func windowArguments(_ w: Window2D, channels: Int) -> [KernelArgument] {
        [w.inputHeight, w.inputWidth, channels, w.kernelHeight, w.kernelWidth, w.strideHeight, w.strideWidth,
         w.padTop, w.padLeft, w.outputHeight, w.outputWidth]
    }

    public func pool2d(_ s: PoolShape, mode: PoolMode, input: Buffer, output: Buffer, argmax: Buffer?) throws {
        try s.validate(mode: mode, input: input, output: output, argmax: argmax, "pool2d")
        let lanes = Self.lanes(s.channels)
        try launch("pool", "pool_forward", items: s.outputCount / lanes,
                   [s.outputCount, lanes, mode == .max] + windowArguments(s.window, channels: s.channels) + [input, output, argmax ?? placeholder])
    }

    public func pool2dBackward(_ s: PoolShape, mode: PoolMode, gradOutput: Buffer, argmax: Buffer?, gradInput: Buffer) throws {
        try s.validate(mode: mode, input: gradInput, output: gradOutput, argmax: argmax, "pool2dBackward")
        let (w, lanes) = (s.window, Self.lanes(s.channels))
        if mode == .max, w.strideHeight >= w.kernelHeight, w.strideWidth >= w.kernelWidth {
            let covered = w.padTop == 0 && w.padLeft == 0 && w.strideHeight == w.kernelHeight && w.strideWidth == w.kernelWidth
                && w.outputHeight * w.strideHeight == w.inputHeight && w.outputWidth * w.strideWidth == w.inputWidth
            if !covered { try fill(gradInput, with: 0, offset: 0, count: s.inputCount) }
            return try launch("pool", "max_pool_backward_disjoint", items: s.outputCount / lanes,
                              [s.outputCount, lanes] + windowArguments(w, channels: s.channels) + [gradOutput, argmax ?? placeholder, gradInput])
        }
        try launch("pool", "pool_backward", items: s.inputCount / lanes,
                   [s.inputCount, lanes, mode == .max] + windowArguments(s.window, channels: s.channels)
                    + [gradOutput, argmax ?? placeholder, gradInput])
    }

    public func unary(_ op: UnaryOp, _ input: Buffer, into output: Buffer, count: Int) throws {
        try require(input, count, "unary input")
        try require(output, count, "unary output")
        try launch("elementwise", "unary", items: Self.vectors(count), count, op.code, op.parameter, input, output)
    }

    public func unaryBackward(_ op: UnaryOp, input: Buffer, output: Buffer, gradOutput: Buffer, gradInput: Buffer,
                              count: Int) throws {
        for (buffer, name) in [(input, "input"), (output, "output"), (gradOutput, "gradOutput"), (gradInput, "gradInput")] {
            try require(buffer, count, "unaryBackward \(name)")
        }
        try launch("elementwise", "unary_backward", items: Self.vectors(count), count, op.code, op.parameter, input, output, gradOutput, gradInput)
    }

    public func binary(_ op: BinaryOp, _ a: Buffer, shape aShape: [Int], _ b: Buffer, shape bShape: [Int],
                       into output: Buffer, shape outputShape: [Int]) throws {
        let index = try StridedIndex(broadcasting: aShape, bShape, to: outputShape)
        try require(a, aShape.reduce(1, *), "binary a")
        try require(b, bShape.reduce(1, *), "binary b")
        try require(output, index.count, "binary output")
        if aShape == bShape, aShape == outputShape {
            try launch("elementwise", "binary_same", items: Self.vectors(index.count), index.count, op.rawValue, a, b, output)
        } else {
            try launch("elementwise", "binary_broadcast", items: index.count, index.count, op.rawValue, IntVector8(index.shape),
                       IntVector8(index.strides[0]), IntVector8(index.strides[1]), a, b, output)
        }
    }

    public func affine(_ input: Buffer, scale: Float, shift: Float, into output: Buffer, count: Int) throws {
        try require(input, count, "affine input")
        try require(output, count, "affine output")
        try launch("elementwise", "affine", items: Self.vectors(count), count, scale, shift, input, output)
    }

    public func addBias(_ input: Buffer, _ bias: Buffer, view: AxisView, into output: Buffer) throws {
        try require(input, view.count, "addBias input")
        try require(bias, view.axis, "addBias bias")
        try require(output, view.count, "addBias output")
        try launch("elementwise", "add_bias", items: Self.vectors(view.count), view.count, view.axis, view.inner, input, bias, output)
    }

    public func reduce(_ op: ReduceOp, _ input: Buffer, view: AxisView, into output: Buffer) throws {
        try require(input, view.count, "reduce input")
        try require(output, view.resultCount, "reduce output")
        try launch("reduce", "reduce", groups: view.resultCount, op.rawValue, view.axis, view.inner, input, output)
    }

    public func argmax(_ input: Buffer, view: AxisView, into output: Buffer) throws {
        try require(input, view.count, "argmax input")
        try require(output, view.resultCount, "argmax output")
        try launch("reduce", "argmax", items: view.resultCount, view.resultCount, view.axis, view.inner, input, output)
    }

    public func dropout(_ input: Buffer, rate: Float, seed: UInt64, offset: UInt64, into output: Buffer, count: Int) throws {
        guard rate >= 0, rate < 1 else { throw DeviceError.invalidArgument("dropout: rate must be in [0, 1), got \(rate)") }
        try require(input, count, "dropout input")
        try require(output, count, "dropout output")
        try launch("random", "dropout", items: Self.vectors(count), count, rate, 1 / (1 - rate), seed, offset, input, output)
    }

    public func fillRandom(_ buffer: Buffer, distribution: RandomDistribution, seed: UInt64, offset: UInt64, count: Int) throws {
        try distribution.validate()
        try require(buffer, count, "fillRandom buffer")
        let (a, b) = distribution.parameters
        try launch("random", "fill_random", items: count, count, distribution.code, a, b, seed, offset, buffer)
    }

    public func recurrentStep(_ step: RecurrentStep, _ s: RecurrentSequence) throws {
        try step.validate(s)
        let shape: [KernelArgument] = [step.cell.rawValue, step.relu, step.batch, step.units]
        let sequence: [KernelArgument] = [s.gates, step.gatesOffset, s.inputBias ?? placeholder, s.inputBias != nil, s.recurrent ?? placeholder,
                                          step.gatesOffset, s.recurrentBias ?? placeholder, s.hidden, step.stateOffset, s.cell ?? placeholder,
                                          step.stateOffset]
        let mask: [KernelArgument] = [s.mask ?? placeholder, step.maskOffset, s.mask != nil,
                                      s.dropoutMask ?? placeholder, s.dropped ?? placeholder, s.dropped != nil]
        try launch("recurrent", "recurrent_step", items: step.batch * step.units, shape + sequence + mask)
    }

    public func recurrentStepBackward(_ step: RecurrentStep, _ s: RecurrentSequence, gradients g: RecurrentGradients) throws {
        try step.validate(s, g)
        let shape: [KernelArgument] = [step.cell.rawValue, step.relu, step.batch, step.units]
        let sequence: [KernelArgument] = [s.gates, step.gatesOffset, s.recurrent ?? placeholder, step.gatesOffset,
                                          s.hidden, step.stateOffset, s.cell ?? placeholder, step.stateOffset,
                                          s.mask ?? placeholder, step.maskOffset, s.mask != nil]
        let gradients: [KernelArgument] = [g.output ?? placeholder, step.stateOffset, g.output != nil,
                                           g.through ?? placeholder, s.dropoutMask ?? placeholder, g.through != nil, g.hidden, g.cell ?? placeholder,
                                           g.gates, step.gatesOffset, g.recurrent ?? placeholder, step.gatesOffset]
        try launch("recurrent", "recurrent_step_backward", items: step.batch * step.units, shape + sequence + gradients)
    }

    public func softmax(_ input: Buffer, rows: Int, columns: Int, log: Bool, into output: Buffer) throws {
        try require(input, rows * columns, "softmax input")
        try require(output, rows * columns, "softmax output")
        try launch("softmax", "softmax", items: rows, rows, columns, log, input, output)
    }

    public func softmaxBackward(output: Buffer, gradOutput: Buffer, rows: Int, columns: Int, log: Bool,
                                gradInput: Buffer) throws {
        for (buffer, name) in [(output, "output"), (gradOutput, "gradOutput"), (gradInput, "gradInput")] {
            try require(buffer, rows * columns, "softmaxBackward \(name)")
        }
        try launch("softmax", "softmax_backward", items: rows, rows, columns, log, output, gradOutput, gradInput)
    }

    public func softmaxCrossEntropy(logits: Buffer, targets: Targets, rows: Int, columns: Int,
                                    loss: Buffer, gradLogits: Buffer?) throws {
        try require(logits, rows * columns, "softmaxCrossEntropy logits")
        try require(loss, 1, "softmaxCrossEntropy loss")
        if let gradLogits { try require(gradLogits, rows * columns, "softmaxCrossEntropy gradLogits") }
        let (labels, probabilities, isSparse) = try targetBuffers(targets, rows: rows, columns: columns)
        let rowLoss = try makeBuffer(count: rows)
        try launch("softmax", "softmax_cross_entropy", items: rows, rows, columns, isSparse, gradLogits != nil,
                   logits, labels, probabilities, rowLoss, gradLogits ?? placeholder)
        try reduce(.mean, rowLoss, view: AxisView(outer: 1, axis: rows), into: loss)
    }

    public func topKHits(scores: Buffer, targets: Targets, rows: Int, columns: Int, k: Int, into output: Buffer) throws {
        try require(scores, rows * columns, "topKHits scores")
        try require(output, rows, "topKHits output")
        let (labels, probabilities, isSparse) = try targetBuffers(targets, rows: rows, columns: columns)
        try launch("softmax", "top_k_hits", items: rows, rows, columns, k, isSparse, scores, labels, probabilities, output)
    }

    /// The label and probability buffers a softmax-family kernel takes (one of them a placeholder).
    private func targetBuffers(_ targets: Targets, rows: Int, columns: Int) throws -> (Buffer, Buffer, Bool) {
        try targets.validate(rows: rows, columns: columns, "softmax family")
        switch targets {
        case .sparse(let buffer): return (buffer, placeholder, true)
        case .dense(let buffer): return (placeholder, buffer, false)
        }
    }

    public func batchNormTraining(_ input: Buffer, view: AxisView, gamma: Buffer, beta: Buffer,
                                  runningMean: Buffer, runningVariance: Buffer, momentum: Float, epsilon: Float,
                                  savedMean: Buffer, savedInvStd: Buffer, output: Buffer) throws {
        try view.validateNorm(tensors: [input, output], channels: [gamma, beta, runningMean, runningVariance, savedMean, savedInvStd])
        if view.inner == 1 {
            let sums = ChannelSums(rows: view.outer, channels: view.axis, computeUnits: info.computeUnits)
            for mode in [ChannelSums.Mode.mean, .variance] {
                try channelSums(sums, mode, x: input, mean: savedMean, finish: [momentum, epsilon, savedMean, savedInvStd, runningMean,
                                                                               runningVariance, placeholder, placeholder])
            }
        } else {
            try launch("batchnorm", "batchnorm_statistics", groups: view.axis, view.outer, view.axis, view.inner, momentum, epsilon,
                       input, runningMean, runningVariance, savedMean, savedInvStd)
        }
        try launch("batchnorm", "batchnorm_apply", items: Self.vectors(view.count), view.count, view.axis, view.inner, false, epsilon,
                   gamma, beta, savedMean, savedInvStd, input, output)
    }

    public func batchNormInference(_ input: Buffer, view: AxisView, gamma: Buffer, beta: Buffer,
                                   runningMean: Buffer, runningVariance: Buffer, epsilon: Float, output: Buffer) throws {
        try view.validateNorm(tensors: [input, output], channels: [gamma, beta, runningMean, runningVariance])
        try launch("batchnorm", "batchnorm_apply", items: Self.vectors(view.count), view.count, view.axis, view.inner, true, epsilon,
                   gamma, beta, runningMean, runningVariance, input, output)
    }

    public func batchNormBackward(_ input: Buffer, gradOutput: Buffer, view: AxisView, gamma: Buffer,
                                  savedMean: Buffer, savedInvStd: Buffer,
                                  gradInput: Buffer, gradGamma: Buffer, gradBeta: Buffer) throws {
        try view.validateNorm(tensors: [input, gradOutput, gradInput], channels: [gamma, savedMean, savedInvStd, gradGamma, gradBeta])
        if view.inner == 1 {
            try channelSums(ChannelSums(rows: view.outer, channels: view.axis, computeUnits: info.computeUnits), .gradients, x: input,
                            dy: gradOutput, mean: savedMean, invStd: savedInvStd,
                            finish: [Float(0), Float(0), placeholder, placeholder, placeholder, placeholder, gradGamma, gradBeta])
        } else {
            try launch("batchnorm", "batchnorm_backward_sums", groups: view.axis, view.outer, view.axis, view.inner,
                       input, gradOutput, savedMean, savedInvStd, gradGamma, gradBeta)
        }
        try launch("batchnorm", "batchnorm_backward_input", items: Self.vectors(view.count), view.count, view.axis, view.inner,
                   Float(view.outer * view.inner), gamma, savedMean, savedInvStd, gradGamma, gradBeta, input, gradOutput, gradInput)
    }

    /// The per-channel sums of a channels-last batch norm in blocks of rows (`channel_partial_sums` in
    /// batchnorm.cl): enough blocks for four work-groups per compute unit, at least 8 rows each.
    struct ChannelSums {
        enum Mode: Int { case mean, variance, gradients }
        let rows: Int, channels: Int, blockRows: Int, blocks: Int

        init(rows: Int, channels: Int, computeUnits: Int) {
            let channelGroups = (channels + 63) / 64
            let wanted = max(1, min(rows / 8, (4 * computeUnits + channelGroups - 1) / channelGroups))
            blockRows = (rows + wanted - 1) / wanted
            (self.rows, self.channels, blocks) = (rows, channels, (rows + blockRows - 1) / blockRows)
        }
    }

    /// One `mode` of `ChannelSums`: the block sums, then `finish` (momentum, epsilon and the six
    /// per-channel buffers of `channel_sums_finish`).
    private func channelSums(_ s: ChannelSums, _ mode: ChannelSums.Mode, x: Buffer, dy: Buffer? = nil, mean: Buffer, invStd: Buffer? = nil,
                             finish: [KernelArgument]) throws {
        let partial = try makeBuffer(count: 2 * s.blocks * s.channels)
        try launch("batchnorm", "channel_partial_sums", groups: s.blocks * ((s.channels + 63) / 64),
                   s.rows, s.channels, s.blockRows, mode.rawValue, x, dy ?? placeholder, mean, invStd ?? placeholder, partial)
        try launch("batchnorm", "channel_sums_finish", items: s.channels,
                   [s.channels, s.blocks, mode.rawValue, Float(s.rows)] + Array(finish[0..<2]) + [partial] + Array(finish[2...]))
    }

    /// Weights per launch of the multi-tensor update kernels (`CHUNK` in optimizer.cl).
    static let updateChunk = 16

    public func applyUpdate(_ update: Update, to targets: [UpdateTarget]) throws {
        let stepSize = try update.validatedStepSize(for: targets)
        let decay = 1 - update.learningRate * update.weightDecay
        let active = targets.filter { $0.count > 0 }
        for start in stride(from: 0, to: active.count, by: Self.updateChunk) {
            let chunk = active[start..<min(start + Self.updateChunk, active.count)]
            // Cumulative sizes, then each buffer list padded to the chunk with empty (placeholder) weights.
            var ends: [KernelArgument] = [], total = 0
            for target in chunk { total += target.count; ends.append(total) }
            ends += [KernelArgument](repeating: total, count: Self.updateChunk - chunk.count)
            func list(_ buffer: (UpdateTarget) -> Buffer?) -> [KernelArgument] {
                chunk.map { buffer($0) ?? placeholder } + [KernelArgument](repeating: placeholder, count: Self.updateChunk - chunk.count)
            }
            let (weights, gradients) = (list(\.parameter), list(\.gradient))
            let (first, second) = (list { $0.slots.first }, list { $0.slots.count > 1 ? $0.slots[1] : nil })
            switch update.rule {
            case .sgd(let momentum, let nesterov):
                let hasVelocity = update.rule.slotCount > 0
                try launch("optimizer", "sgd", items: total, ends + [update.learningRate, decay, momentum, nesterov, hasVelocity]
                           + weights + gradients + first)
            case .rmsprop(let rho, let momentum, let epsilon):
                try launch("optimizer", "rmsprop", items: total, ends + [update.learningRate, decay, rho, momentum, epsilon, update.rule.slotCount > 1]
                           + weights + gradients + first + second)
            case .adam(let beta1, let beta2, let epsilon):
                try launch("optimizer", "adam", items: total, ends + [stepSize, decay, beta1, beta2, epsilon] + weights + gradients + first + second)
            }
        }
    }
}
