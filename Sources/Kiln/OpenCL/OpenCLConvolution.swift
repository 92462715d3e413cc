import Foundation

/// Convolutions on OpenCL: depthwise ones by their own kernels; dense ones by the tiled implicit-GEMM
/// kernels or im2col + CLBlast, whichever `ConvTuner` measured faster for the pass and shape.
extension OpenCLDevice {
    public func conv2d(_ s: ConvShape, input: Buffer, weight: Buffer, bias: Buffer?, relu: Bool, output: Buffer) throws {
        try s.validate(input: input, weight: weight, output: output, bias: bias)
        if s.isDepthwise {
            return try launchDepthwise("depthwise_forward", s.outputCount, s,
                                       [input, weight, bias ?? placeholder, bias != nil, relu, output])
        }
        try tuned(.forward, s) { algorithm in
            guard case .tiled(let tiling) = algorithm else { return try im2colForward(s, input, weight, bias, relu, output) }
            try launchTiled("conv_forward_tiled", tiling, s, m: s.batch * s.window.outputPixels, n: s.outChannels, k: s.patchSize,
                            a: input, b: weight, bias: bias, relu: relu, into: output)
        }
    }

    /// Fused as a tiled pass whose work-items each hold whole pooling windows, where the windows
    /// neither pad nor overlap and one fits a tiling's register rows (2×2 and 1×2 do); otherwise, and
    /// while `kiln selftest` forces an unfit tiling, the two ops.
    public func conv2dMaxPool(_ s: ConvShape, pool p: PoolShape, input: Buffer, weight: Buffer, bias: Buffer?, relu: Bool,
                              output: Buffer, argmax: Buffer) throws {
        let pw = p.window, windowPixels = p.window.kernelPixels
        func fits(_ algorithm: ConvAlgorithm) -> Bool {
            if case .tiled(let t) = algorithm { t.rowsPerItem % windowPixels == 0 } else { false }
        }
        guard s.groups == 1, !s.window.isDilated, s.fusesMaxPool(p), convTuner.candidates.contains(where: fits) else {
            return try conv2dThenMaxPool(s, pool: p, input: input, weight: weight, bias: bias, relu: relu, output: output, argmax: argmax)
        }
        try s.validateMaxPool(p, input: input, weight: weight, bias: bias, output: output, argmax: argmax)
        let variant = ", max pool \(pw.kernelHeight)×\(pw.kernelWidth) stride \(pw.strideHeight)×\(pw.strideWidth)"
        let run = { (algorithm: ConvAlgorithm) throws in
            guard case .tiled(let tiling) = algorithm, fits(algorithm) else {
                return try self.conv2dThenMaxPool(s, pool: p, input: input, weight: weight, bias: bias, relu: relu, output: output, argmax: argmax)
            }
            try self.launchTiled("conv_forward_max_pool_tiled", tiling, s, m: p.outputCount / s.outChannels * windowPixels, n: s.outChannels,
                                 k: s.patchSize, a: input, b: weight, bias: bias, relu: relu, pool: (pw, argmax), into: output)
        }
        try run(try convTuner.algorithm(.forwardMaxPool, s, variant: variant, eligible: fits, synchronize: synchronize, run: run))
    }

    public func conv2dBackwardData(_ s: ConvShape, gradOutput: Buffer, reluOutput: Buffer?, weight: Buffer, gradInput: Buffer) throws {
        try s.validate(input: gradInput, weight: weight, output: gradOutput, reluOutput: reluOutput)
        if s.isDepthwise {
            let gradOutput = try reluOutput.map { try throughReLU(gradOutput, $0, count: s.outputCount) } ?? gradOutput
            return try launchDepthwise("depthwise_input_grad", s.inputCount, s, [gradOutput, weight, gradInput])
        }
        try tuned(.inputGradient, s) { algorithm in
            guard case .tiled(let tiling) = algorithm else { return try im2colInputGradient(s, gradOutput, reluOutput, weight, gradInput) }
            try launchTiled("conv_input_grad_tiled", tiling, s, m: s.batch * s.window.inputPixels, n: s.inChannels,
                            k: s.window.kernelPixels * s.outChannels, a: gradOutput, b: weight, mask: reluOutput, into: gradInput)
        }
    }

    public func conv2dBackwardWeights(_ s: ConvShape, input: Buffer, gradOutput: Buffer, reluOutput: Buffer?,
                                      gradWeight: Buffer, gradBias: Buffer?) throws {
        try s.validate(input: input, weight: gradWeight, output: gradOutput, bias: gradBias, reluOutput: reluOutput)
        let rows = s.window.outputPixels
        if s.isDepthwise {
            let gradOutput = try reluOutput.map { try throughReLU(gradOutput, $0, count: s.outputCount) } ?? gradOutput
            try launch("depthwise", "depthwise_weight_grad", items: s.weightCount,
                       [s.weightCount, s.batch] + depthwiseArguments(s) + [input, gradOutput, gradWeight])
            if let gradBias { try biasGradient(s, gradOutput, into: gradBias) }
            return
        }
        // The masked gradient is needed for the bias anyway; the passes below read it unmasked.
        let gradOutput = try reluOutput.map { try throughReLU(gradOutput, $0, count: s.outputCount) } ?? gradOutput
        try tuned(.weightGradient, s) { algorithm in
            guard case .tiled(let tiling) = algorithm else {
                return try forEachChunk(s, input: input) { first, images, columns in
                    var g = Gemm(m: s.patchSize, n: s.outChannels, k: images * rows, transposeA: true, beta: first == 0 ? 0 : 1)
                    g.offsetB = first * rows * s.outChannels
                    try sgemm(g, columns, gradOutput, gradWeight)
                }
            }
            try launchTiled("conv_weight_grad_tiled", tiling, s, m: s.patchSize, n: s.outChannels, k: s.batch * rows,
                            a: input, b: gradOutput, into: gradWeight)
        }
        if let gradBias { try biasGradient(s, gradOutput, into: gradBias) }
    }

    /// The convolution algorithms this device can run, by name: what `kiln tune` chooses among.
    public var convolutionAlgorithms: [String] { convTuner.candidates.map(\.description) }

    /// Runs `body` with every dense convolution pass using `algorithm` (one of `convolutionAlgorithms`)
    /// instead of the tuned choice: how `kiln selftest` checks each kernel variant.
    public func forcingConvolution<T>(_ algorithm: String, _ body: () throws -> T) throws -> T {
        guard let chosen = ConvAlgorithm(algorithm), convTuner.candidates.contains(chosen) else {
            throw DeviceError.invalidArgument("no convolution algorithm '\(algorithm)' on \(info.name); "
                                              + "one of: \(convolutionAlgorithms.joined(separator: ", "))")
        }
        return try convTuner.forcing(chosen, body)
    }

    /// The convolution passes tuned (or loaded from the tuning cache) in this process, with each
    /// candidate's time where they were timed here.
    public var convolutionTuning: [ConvTuningChoice] { convTuner.made }

    /// Forgets the tuned choices so that each shape is timed again on its next use (`kiln tune`).
    public func forgetConvolutionTuning() { convTuner.forget() }

    /// Lets the tuner pick (timing the candidates on first sight of this pass and shape), then runs the pick.
    private func tuned(_ pass: ConvPass, _ s: ConvShape, _ run: (ConvAlgorithm) throws -> Void) throws {
        try run(try convTuner.algorithm(pass, s, synchronize: synchronize, run: run))
    }

    /// One implicit-GEMM pass `C[m × n] = A · B` over `k`; a long sum with few output tiles (the weight
    /// gradient) is split across work-groups into partial sums, then added, unless a bias or ReLU
    /// needs the whole sum.
    private func launchTiled(_ name: String, _ t: ConvTiling, _ s: ConvShape, m: Int, n: Int, k: Int, a: Buffer, b: Buffer,
                             mask: Buffer? = nil, bias: Buffer? = nil, relu: Bool = false, pool: (Window2D, argmax: Buffer)? = nil,
                             into c: Buffer) throws {
        let tiles = (m + t.rows - 1) / t.rows * ((n + t.columns - 1) / t.columns)
        let wanted = bias != nil || relu || pool != nil ? 1 : max(1, min((4 * info.computeUnits + tiles - 1) / tiles, k / (4 * t.depth)))
        let chunk = ((k + wanted - 1) / wanted + t.depth - 1) / t.depth * t.depth
        let splits = (k + chunk - 1) / chunk
        let target = splits > 1 ? try makeBuffer(count: splits * m * n) : c
        var arguments: [KernelArgument] = [m, n, k, chunk] + windowArguments(s.window, channels: s.inChannels)
            + [s.outChannels, a, b, mask ?? placeholder, mask != nil, bias ?? placeholder, bias != nil, relu, target]
        if let (w, argmax) = pool {
            arguments += [w.kernelHeight, w.kernelWidth, w.strideHeight, w.strideWidth, w.outputHeight, w.outputWidth, argmax] as [KernelArgument]
        }
        try launch("conv", name, defines: t.defines, groups: tiles * splits, group: t.threads, arguments)
        if splits > 1 { try launch("conv", "sum_splits", items: m * n, m * n, splits, target, c) }
    }

    private func biasGradient(_ s: ConvShape, _ gradOutput: Buffer, into gradBias: Buffer) throws {
        try reduce(.sum, gradOutput, view: AxisView(outer: 1, axis: s.batch * s.window.outputPixels, inner: s.outChannels), into: gradBias)
    }

    private func im2colForward(_ s: ConvShape, _ input: Buffer, _ weight: Buffer, _ bias: Buffer?, _ relu: Bool, _ output: Buffer) throws {
        let rows = s.window.outputPixels
        try forEachChunk(s, input: input) { first, images, columns in
            var g = Gemm(m: images * rows, n: s.outChannels, k: s.patchSize)
            g.offsetC = first * rows * s.outChannels
            try sgemm(g, columns, weight, output)
        }
        if let bias { try addBias(output, bias, view: AxisView(outer: s.batch * rows, axis: s.outChannels), into: output) }
        if relu { try unary(.relu, output, into: output, count: s.outputCount) }
    }

    private func im2colInputGradient(_ s: ConvShape, _ gradOutput: Buffer, _ reluOutput: Buffer?, _ weight: Buffer,
                                     _ gradInput: Buffer) throws {
        let gradOutput = try reluOutput.map { try throughReLU(gradOutput, $0, count: s.outputCount) } ?? gradOutput
        let rows = s.window.outputPixels
        if s.isPointwise {
            return try sgemm(Gemm(m: s.batch * rows, n: s.inChannels, k: s.outChannels, transposeB: true), gradOutput, weight, gradInput)
        }
        let chunk = s.imagesPerChunk
        let columns = try makeBuffer(count: chunk * rows * s.patchSize)
        for first in stride(from: 0, to: s.batch, by: chunk) {
            let images = min(chunk, s.batch - first)
            var g = Gemm(m: images * rows, n: s.patchSize, k: s.outChannels, transposeB: true)
            g.offsetA = first * rows * s.outChannels
            try sgemm(g, gradOutput, weight, columns)
            let count = images * s.window.inputPixels * s.inChannels
            try launchWindow("col2im", count, s.window, s.inChannels, [columns, gradInput, first * s.window.inputPixels * s.inChannels])
        }
    }

    /// Calls `body(firstImage, imageCount, im2colMatrix)` for each chunk of the batch.
    private func forEachChunk(_ s: ConvShape, input: Buffer, _ body: (Int, Int, Buffer) throws -> Void) throws {
        if s.isPointwise { return try body(0, s.batch, input) }
        let chunk = s.imagesPerChunk
        let columns = try makeBuffer(count: chunk * s.window.outputPixels * s.patchSize)
        for first in stride(from: 0, to: s.batch, by: chunk) {
            let images = min(chunk, s.batch - first)
            try launchWindow("im2col", images * s.window.outputPixels * s.patchSize, s.window, s.inChannels,
                             [input, first * s.window.inputPixels * s.inChannels, columns])
            try body(first, images, columns)
        }
    }

    /// The `DEPTHWISE_ARGS` of `Kernels/depthwise.cl`.
    private func depthwiseArguments(_ s: ConvShape) -> [KernelArgument] {
        windowArguments(s.window, channels: s.inChannels) + [s.multiplier, s.window.dilationHeight, s.window.dilationWidth]
    }

    private func launchDepthwise(_ name: String, _ count: Int, _ s: ConvShape, _ buffers: [KernelArgument]) throws {
        try launch("depthwise", name, items: count, [count] + depthwiseArguments(s) + buffers)
    }

    private func launchWindow(_ name: String, _ count: Int, _ w: Window2D, _ channels: Int, _ buffers: [KernelArgument]) throws {
        try launch("conv", name, items: count, [count] + windowArguments(w, channels: channels) + buffers)
    }
}
