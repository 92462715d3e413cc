/// The layer-level ops (matrix product, convolution, pooling, normalisation, softmax family,
/// dropout, concatenation) as differentiable tensor functions. Images are NHWC.
extension Tensor {
    /// `[…, m, k] · […, k, n]`, either side's matrices optionally transposed; leading (batch) axes
    /// must agree.
    public func matmul(_ other: Tensor, transposeSelf: Bool = false, transposeOther: Bool = false) throws -> Tensor {
        try requireFloat("matmul"); try other.requireFloat("matmul")
        guard rank >= 2, other.rank == rank, shape.dropLast(2) == other.shape.dropLast(2) else {
            throw TensorError.shape("matmul takes matrices (or batches of them with equal leading axes), got \(shape) and \(other.shape)")
        }
        let (r0, r1) = (shape[rank - 2], shape[rank - 1]), (o0, o1) = (other.shape[rank - 2], other.shape[rank - 1])
        let (m, k) = transposeSelf ? (r1, r0) : (r0, r1)
        let (k2, n) = transposeOther ? (o1, o0) : (o0, o1)
        guard k == k2 else { throw TensorError.shape("matmul: inner dimensions differ: \(shape) · \(other.shape)") }
        let batch = shape.dropLast(2).reduce(1, *)
        let (a, b) = (self, other)
        return try Tensor.make(shape.dropLast(2) + [m, n], from: [a, b], {
            try device.gemm(Gemm(m: m, n: n, k: k, transposeA: transposeSelf, transposeB: transposeOther, batch: batch),
                            a: a.buffer, b: b.buffer, c: $0)
        }) { g in
            let da = transposeSelf ? try b.matmul(g, transposeSelf: transposeOther, transposeOther: true)
                                   : try g.matmul(b, transposeOther: !transposeOther)
            let db = transposeOther ? try g.matmul(a, transposeSelf: true, transposeOther: transposeSelf)
                                    : try a.matmul(g, transposeSelf: !transposeSelf)
            return [da, db]
        }
    }

    /// Adds `bias` along the last axis.
    public func addingBias(_ bias: Tensor) throws -> Tensor {
        guard bias.rank == 1, bias.shape[0] == shape.last else {
            throw TensorError.shape("bias of shape \(bias.shape) does not match the last axis of \(shape)")
        }
        let view = AxisView(outer: count / bias.count, axis: bias.count)
        return try Tensor.make(shape, from: [self, bias], { try device.addBias(buffer, bias.buffer, view: view, into: $0) }) { g in
            [g, try g.reshaped([view.outer, view.axis]).reduce(.sum, axis: 0)]
        }
    }

    /// 2-D convolution of an NHWC batch with an HWIO kernel; with `relu`, followed by a ReLU fused
    /// into the same op (no separate pass over the output, forward or backward).
    public func conv2d(_ kernel: Tensor, bias: Tensor? = nil, strides: (Int, Int) = (1, 1), padding: Padding = .valid,
                       relu: Bool = false) throws -> Tensor {
        try requireFloat("conv2d")
        guard rank == 4, kernel.rank == 4, kernel.shape[2] == shape[3] else {
            throw TensorError.shape("conv2d: input \(shape) (NHWC) and kernel \(kernel.shape) (HWIO) do not fit")
        }
        do {
            let window = try Window2D(input: (shape[1], shape[2]), kernel: (kernel.shape[0], kernel.shape[1]), stride: strides, padding: padding)
            return try conv2d(kernel, bias: bias, window: window, relu: relu)
        } catch let error as DeviceError { throw TensorError.shape("conv2d: \(error) for input \(shape)") }
    }

    /// 2-D convolution over an explicit window (padding given as offsets and output size).
    public func conv2d(_ kernel: Tensor, bias: Tensor? = nil, window: Window2D, relu: Bool = false) throws -> Tensor {
        try convolve(convShape(kernel, window), kernel, bias, relu: relu)
    }

    /// The convolution `s` of this batch, recorded with its gradients.
    private func convolve(_ s: ConvShape, _ kernel: Tensor, _ bias: Tensor?, relu: Bool) throws -> Tensor {
        let output = try device.makeBuffer(count: s.outputCount)
        try device.conv2d(s, input: buffer, weight: kernel.buffer, bias: bias?.buffer, relu: relu, output: output)
        let x = self
        return Tensor.record([s.batch, s.window.outputHeight, s.window.outputWidth, s.outChannels], buffer: output,
                             from: [self, kernel] + (bias.map { [$0] } ?? [])) { g in
            try x.convolutionGradients(s, kernel, bias, gradOutput: g, reluOutput: relu ? output : nil)
        }
    }

    /// `conv2d(kernel, bias:, window:, relu:)` followed by max pooling over `pool`, as one op, so that
    /// a backend can skip storing the convolution's full-size output (the CPU backend does).
    public func conv2dMaxPool(_ kernel: Tensor, bias: Tensor? = nil, window: Window2D, relu: Bool, pool: Window2D) throws -> Tensor {
        try requireFloat("conv2dMaxPool")
        let s = try convShape(kernel, window)
        guard pool.inputHeight == window.outputHeight, pool.inputWidth == window.outputWidth else {
            throw TensorError.shape("conv2dMaxPool: pool window \(pool) does not fit the convolution's output \(window)")
        }
        let p = PoolShape(batch: s.batch, channels: s.outChannels, window: pool)
        let (output, argmax) = (try device.makeBuffer(count: p.outputCount), try device.makeBuffer(count: p.outputCount))
        try device.conv2dMaxPool(s, pool: p, input: buffer, weight: kernel.buffer, bias: bias?.buffer, relu: relu,
                                 output: output, argmax: argmax)
        let x = self
        return Tensor.record([s.batch, pool.outputHeight, pool.outputWidth, s.outChannels], buffer: output,
                             from: [self, kernel] + (bias.map { [$0] } ?? [])) { g in
            // A pooled maximum is positive exactly where the ReLU let the convolution's output through.
            let pooled = try relu ? x.device.throughReLU(g.buffer, output, count: p.outputCount) : g.buffer
            let convolved = try x.device.makeBuffer(count: s.outputCount)
            try x.device.pool2dBackward(p, mode: .max, gradOutput: pooled, argmax: argmax, gradInput: convolved)
            let gradOutput = Tensor.record([s.batch, window.outputHeight, window.outputWidth, s.outChannels], buffer: convolved,
                                           from: [g], backward: nil)
            return try x.convolutionGradients(s, kernel, bias, gradOutput: gradOutput, reluOutput: nil)
        }
    }

    /// The transposed convolution of an NHWC batch (Keras `Conv2DTranspose`) with a (kh, kw, filters,
    /// channels) kernel over `shape`, optionally with a fused ReLU. Its input gradient is the
    /// convolution, its kernel gradient the convolution's kernel gradient with the roles swapped.
    public func conv2dTranspose(_ kernel: Tensor, bias: Tensor? = nil, shape t: TransposedConvShape, relu: Bool = false) throws -> Tensor {
        try requireFloat("conv2dTranspose")
        let s = t.convolution, w = s.window
        guard shape == [s.batch, w.outputHeight, w.outputWidth, s.outChannels],
              kernel.shape == [w.kernelHeight, w.kernelWidth, s.inChannels, s.outChannels], bias.map({ $0.shape == [s.inChannels] }) ?? true else {
            throw TensorError.shape("conv2dTranspose: input \(shape) (NHWC), kernel \(kernel.shape) (kh, kw, filters, channels) "
                                    + "and bias \(bias?.shape ?? []) do not fit \(t)")
        }
        let output = try device.makeBuffer(count: t.outputCount)
        try device.conv2dTranspose(t, input: buffer, weight: kernel.buffer, bias: bias?.buffer, relu: relu, output: output)
        let x = self
        return Tensor.record(t.outputShape, buffer: output, from: [self, kernel] + (bias.map { [$0] } ?? [])) { g in
            let routed = relu ? Tensor.record(g.shape, buffer: try x.device.throughReLU(g.buffer, output, count: g.count), from: [g], backward: nil) : g
            let dx = x.requiresGrad ? try Tensor.make(x.shape, from: [routed]) {
                try x.device.conv2d(s, input: routed.buffer, weight: kernel.buffer, bias: nil, relu: false, output: $0)
            } : nil
            let dw = kernel.requiresGrad ? try Tensor.make(kernel.shape, from: [routed]) {
                try x.device.conv2dBackwardWeights(s, input: routed.buffer, gradOutput: x.buffer, reluOutput: nil, gradWeight: $0, gradBias: nil)
            } : nil
            let db = try bias.map { _ in try routed.reshaped([g.count / s.inChannels, s.inChannels]).reduce(.sum, axis: 0) }
            return [dx, dw, db]
        }
    }

    private func convShape(_ kernel: Tensor, _ window: Window2D) throws -> ConvShape {
        guard rank == 4, kernel.rank == 4, kernel.shape[2] == shape[3], window.inputHeight == shape[1], window.inputWidth == shape[2],
              window.kernelHeight == kernel.shape[0], window.kernelWidth == kernel.shape[1] else {
            throw TensorError.shape("conv2d: input \(shape) (NHWC), kernel \(kernel.shape) (HWIO) and window \(window) do not fit")
        }
        return ConvShape(batch: shape[0], inChannels: shape[3], outChannels: kernel.shape[3], window: window)
    }

    /// The gradients of a convolution of this input: [input, kernel, bias].
    private func convolutionGradients(_ s: ConvShape, _ kernel: Tensor, _ bias: Tensor?, gradOutput g: Tensor,
                                      reluOutput: Buffer?) throws -> [Tensor?] {
        let x = self
        let dx = x.requiresGrad ? try Tensor.make(x.shape, from: [g]) {
            try x.device.conv2dBackwardData(s, gradOutput: g.buffer, reluOutput: reluOutput, weight: kernel.buffer, gradInput: $0)
        } : nil
        guard kernel.requiresGrad || bias?.requiresGrad == true else { return [dx, nil, nil] }
        let db = try bias.map { Tensor.record($0.shape, buffer: try x.device.makeBuffer(count: $0.count), from: [g], backward: nil) }
        let dw = try Tensor.make(kernel.shape, from: [g]) {
            try x.device.conv2dBackwardWeights(s, input: x.buffer, gradOutput: g.buffer, reluOutput: reluOutput,
                                               gradWeight: $0, gradBias: db?.buffer)
        }
        return [dx, dw, db]
    }

    /// Max or average pooling of an NHWC batch.
    public func pool2d(_ mode: PoolMode, size: (Int, Int), strides: (Int, Int)? = nil, padding: Padding = .valid) throws -> Tensor {
        try requireFloat("pool2d")
        guard rank == 4 else { throw TensorError.shape("pool2d takes NHWC images, got shape \(shape)") }
        do {
            return try pool2d(mode, window: try Window2D(input: (shape[1], shape[2]), kernel: size, stride: strides ?? size, padding: padding))
        } catch let error as DeviceError { throw TensorError.shape("pool2d: \(error) for input \(shape)") }
    }

    /// Pooling over an explicit window.
    public func pool2d(_ mode: PoolMode, window: Window2D) throws -> Tensor {
        guard rank == 4, window.inputHeight == shape[1], window.inputWidth == shape[2] else {
            throw TensorError.shape("pool2d: input \(shape) (NHWC) does not fit window \(window)")
        }
        let s = PoolShape(batch: shape[0], channels: shape[3], window: window)
        let argmax = mode == .max ? try device.makeBuffer(count: s.outputCount) : nil
        let x = self
        return try Tensor.make([s.batch, window.outputHeight, window.outputWidth, s.channels], from: [self], {
            try device.pool2d(s, mode: mode, input: buffer, output: $0, argmax: argmax)
        }) { g in
            [try Tensor.make(x.shape, from: [g]) { try x.device.pool2dBackward(s, mode: mode, gradOutput: g.buffer, argmax: argmax, gradInput: $0) }]
        }
    }

    /// Elements `range` of the last axis.
    public func sliced(lastAxis range: Range<Int>) throws -> Tensor { try sliced(range, axis: -1) }

    /// Elements `range` along `axis` (`x[:, 2:5]` is `x.sliced(2..<5, axis: 1)`).
    public func sliced(_ range: Range<Int>, axis: Int) throws -> Tensor {
        try requireFloat("slice")
        let axis = try normalized(axis)
        guard range.lowerBound >= 0, range.upperBound <= shape[axis], !range.isEmpty else { throw TensorError.shape("slice \(range) of axis \(axis) of \(shape)") }
        let inner = shape[(axis + 1)...].reduce(1, *), rows = shape[..<axis].reduce(1, *)
        let (width, columns, start) = (shape[axis] * inner, range.count * inner, range.lowerBound * inner)
        var sliced = shape
        sliced[axis] = range.count
        let input = self
        return try Tensor.make(sliced, from: [self], {
            try device.copy2D(rows: rows, columns: columns, from: buffer, offset: start, stride: width, to: $0, offset: 0, stride: columns)
        }) { g in
            [try Tensor.make(input.shape, from: [g]) {
                try g.device.fill($0, with: 0, offset: 0, count: input.count)
                try g.device.copy2D(rows: rows, columns: columns, from: g.buffer, offset: 0, stride: columns, to: $0, offset: start, stride: width)
            }]
        }
    }

    /// Zeroes each element with probability `rate` and scales the rest by 1/(1-rate); the mask
    /// comes from (seed, offset + index), so the backward pass regenerates it.
    public func dropout(rate: Float, seed: UInt64, offset: UInt64 = 0) throws -> Tensor {
        try requireFloat("dropout")
        let n = count
        return try Tensor.make(shape, from: [self], { try device.dropout(buffer, rate: rate, seed: seed, offset: offset, into: $0, count: n) }) { g in
            [try Tensor.make(g.shape, from: [g]) { try g.device.dropout(g.buffer, rate: rate, seed: seed, offset: offset, into: $0, count: n) }]
        }
    }

    /// Softmax (or log-softmax) along the last axis.
    public func softmax(log: Bool = false) throws -> Tensor {
        try requireFloat("softmax")
        let columns = shape.last!, rows = count / columns
        let output = try device.makeBuffer(count: count)
        try device.softmax(buffer, rows: rows, columns: columns, log: log, into: output)
        let result = Tensor.record(shape, buffer: output, from: [self]) { g in
            [try Tensor.make(g.shape, from: [g]) {
                try g.device.softmaxBackward(output: output, gradOutput: g.buffer, rows: rows, columns: columns, log: log, gradInput: $0)
            }]
        }
        if !log { result.logits = (self, nil) }
        return result
    }

    public func logSoftmax() throws -> Tensor { try softmax(log: true) }

    /// Mean softmax cross-entropy of these logits (rows along the last axis) against int32 class
    /// labels or float probability targets of the same shape.
    public func softmaxCrossEntropy(_ targets: Tensor) throws -> Tensor {
        try requireFloat("softmaxCrossEntropy")
        let columns = shape.last!, rows = count / columns
        let target: Targets
        switch targets.dtype {
        case .int32:
            guard targets.count == rows else { throw TensorError.shape("\(targets.count) labels for \(rows) rows of logits \(shape)") }
            target = .sparse(targets.buffer)
        case .float32:
            guard targets.shape == shape else { throw TensorError.shape("targets \(targets.shape) do not match logits \(shape)") }
            target = .dense(targets.buffer)
        }
        let gradient = requiresGrad && GradMode.isEnabled ? try device.makeBuffer(count: count) : nil
        let logits = self
        return try Tensor.make([1], from: [self, targets], {
            try device.softmaxCrossEntropy(logits: buffer, targets: target, rows: rows, columns: columns, loss: $0, gradLogits: gradient)
        }) { g in
            let scaled = Tensor(shape: logits.shape, buffer: gradient!, device: logits.device)
            return [try scaled * g, nil]
        }
    }

    /// Batch normalisation over all axes but the last (channels). In training it normalises with the
    /// batch statistics and moves `movingMean`/`movingVariance`; otherwise it uses them.
    public func batchNorm(gamma: Tensor, beta: Tensor, movingMean: Tensor, movingVariance: Tensor,
                          training: Bool, momentum: Float, epsilon: Float) throws -> Tensor {
        try requireFloat("batchNorm")
        let channels = shape.last!
        guard [gamma, beta, movingMean, movingVariance].allSatisfy({ $0.shape == [channels] }) else {
            throw TensorError.shape("batchNorm: parameters must have shape [\(channels)] for input \(shape)")
        }
        let view = AxisView(outer: count / channels, axis: channels)
        guard training else {
            return try Tensor.make(shape, from: [self, gamma, beta], {
                try device.batchNormInference(buffer, view: view, gamma: gamma.buffer, beta: beta.buffer, runningMean: movingMean.buffer,
                                              runningVariance: movingVariance.buffer, epsilon: epsilon, output: $0)
            }) { g in
                // y = (x - mean) * scale + beta with fixed statistics.
                let scale = try GradMode.noGrad { try gamma / (movingVariance + epsilon).sqrt() }
                let normalized = try GradMode.noGrad { try (self - movingMean) / (movingVariance + epsilon).sqrt() }
                return [try g * scale, try (g * normalized).sum(to: [channels]), try g.sum(to: [channels])]
            }
        }
        let (mean, invStd) = (try device.makeBuffer(count: channels), try device.makeBuffer(count: channels))
        let x = self
        return try Tensor.make(shape, from: [self, gamma, beta], {
            try device.batchNormTraining(buffer, view: view, gamma: gamma.buffer, beta: beta.buffer, runningMean: movingMean.buffer,
                                         runningVariance: movingVariance.buffer, momentum: momentum, epsilon: epsilon,
                                         savedMean: mean, savedInvStd: invStd, output: $0)
        }) { g in
            let (dgamma, dbeta) = (try Tensor.zeros([channels], on: x.device), try Tensor.zeros([channels], on: x.device))
            let dx = try Tensor.make(x.shape, from: [g]) {
                try x.device.batchNormBackward(x.buffer, gradOutput: g.buffer, view: view, gamma: gamma.buffer, savedMean: mean,
                                               savedInvStd: invStd, gradInput: $0, gradGamma: dgamma.buffer, gradBeta: dbeta.buffer)
            }
            return [dx, dgamma, dbeta]
        }
    }

    /// Tensors joined along `axis`; all other dimensions must agree.
    public static func concatenate(_ tensors: [Tensor], axis: Int = -1) throws -> Tensor {
        guard let first = tensors.first else { throw TensorError.shape("concatenate needs at least one tensor") }
        let axis = try first.normalized(axis)
        for t in tensors {
            try t.requireFloat("concatenate")
            guard t.rank == first.rank, t.shape.enumerated().allSatisfy({ $0.offset == axis || $0.element == first.shape[$0.offset] }) else {
                throw TensorError.shape("concatenate along axis \(axis): shapes \(tensors.map(\.shape)) differ off that axis")
            }
        }
        let outer = first.shape[..<axis].reduce(1, *)
        let widths = tensors.map { $0.count / outer }
        let total = widths.reduce(0, +)
        var shape = first.shape
        shape[axis] = tensors.map { $0.shape[axis] }.reduce(0, +)
        return try make(shape, from: tensors, { out in
            var offset = 0
            for (t, width) in zip(tensors, widths) {
                try first.device.copy2D(rows: outer, columns: width, from: t.buffer, offset: 0, stride: width, to: out, offset: offset, stride: total)
                offset += width
            }
        }) { g in
            var offset = 0
            return try zip(tensors, widths).map { t, width in
                defer { offset += width }
                return try Tensor.make(t.shape, from: [g]) {
                    try g.device.copy2D(rows: outer, columns: width, from: g.buffer, offset: offset, stride: total, to: $0, offset: 0, stride: width)
                }
            }
        }
    }
}

extension Tensor {
    /// Depthwise 2-D convolution of an NHWC batch (Keras `DepthwiseConv2D`): each input channel c is
    /// convolved with its own `multiplier` filters, kernel `(kh, kw, channels, multiplier)`, giving
    /// channel c·multiplier + j; taps `dilation` apart. Keras's `same` padding as for `conv2d`.
    public func depthwiseConv2d(_ kernel: Tensor, bias: Tensor? = nil, strides: (Int, Int) = (1, 1), padding: Padding = .valid,
                                dilation: (Int, Int) = (1, 1), relu: Bool = false) throws -> Tensor {
        try requireFloat("depthwiseConv2d")
        guard rank == 4, kernel.rank == 4 else { throw TensorError.shape("depthwiseConv2d: input \(shape) (NHWC) and kernel \(kernel.shape) must be rank 4") }
        do {
            let window = try Window2D(input: (shape[1], shape[2]), kernel: (kernel.shape[0], kernel.shape[1]), stride: strides,
                                      padding: padding, dilation: dilation)
            return try depthwiseConv2d(kernel, bias: bias, window: window, relu: relu)
        } catch let error as DeviceError { throw TensorError.shape("depthwiseConv2d: \(error) for input \(shape)") }
    }

    /// Depthwise convolution over an explicit window (padding given as offsets and output size, dilation included).
    public func depthwiseConv2d(_ kernel: Tensor, bias: Tensor? = nil, window: Window2D, relu: Bool = false) throws -> Tensor {
        try requireFloat("depthwiseConv2d")
        guard rank == 4, kernel.rank == 4, kernel.shape[2] == shape[3], kernel.shape[3] > 0, window.inputHeight == shape[1],
              window.inputWidth == shape[2], window.kernelHeight == kernel.shape[0], window.kernelWidth == kernel.shape[1] else {
            throw TensorError.shape("depthwiseConv2d: input \(shape) (NHWC), kernel \(kernel.shape) (kh, kw, channels, multiplier) and window \(window) do not fit")
        }
        let (c, m) = (shape[3], kernel.shape[3])
        if let bias, bias.shape != [c * m] { throw TensorError.shape("depthwiseConv2d: bias \(bias.shape) for \(c * m) output channels") }
        return try convolve(ConvShape(batch: shape[0], inChannels: c, outChannels: c * m, window: window, groups: c), kernel, bias, relu: relu)
    }
}
