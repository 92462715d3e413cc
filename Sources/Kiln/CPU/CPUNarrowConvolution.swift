import CKernels

/// Dense convolutions with 1–15 output channels (an image's last layer) on CKernels' narrow
/// kernels: a patch row is dotted with each output channel's weights, so no patch matrix is built
/// for a GEMM with a handful of columns (im2col + GEMM moved ≈ 25× the data for a 5×5 layer to one channel).
extension CPUDevice {
    func runsNarrow(_ s: ConvShape) -> Bool { !s.isDepthwise && !s.isPointwise && s.outChannels < 16 }

    func narrowForward(_ s: ConvShape, input: Buffer, weight: Buffer, bias: Buffer?, relu: Bool, output: Buffer) throws {
        let (x, padding, g) = try padded(s, input)
        let wt = try narrowWeights(s, weight)
        withExtendedLifetime((padding, wt)) {
            withUnsafePointer(to: g) { g in
                parallelFor(s.batch * s.window.outputHeight, grain: 1) { rows in
                    kiln_conv_narrow_forward(g, x, wt.host, bias.map { UnsafePointer($0.host) }, output.host, relu ? 1 : 0,
                                             rows.lowerBound, rows.upperBound)
                }
            }
        }
    }

    func narrowBackwardData(_ s: ConvShape, gradOutput: Buffer, reluOutput: Buffer?, weight: Buffer, gradInput: Buffer) throws {
        let w = s.window, g = validGeometry(s), c = s.inChannels
        let wt = try narrowWeights(s, weight)
        let fits = w.padTop == 0 && w.padLeft == 0 && g.in_h == w.inputHeight && g.in_w == w.inputWidth
        let canvas = fits ? gradInput : try makeBuffer(count: s.batch * g.in_h * g.in_w * c)
        withExtendedLifetime(wt) {
            withUnsafePointer(to: g) { g in
                parallelFor(s.batch, grain: 1) { images in
                    kiln_conv_narrow_backward_data(g, gradOutput.host, reluOutput.map { UnsafePointer($0.host) }, wt.host, canvas.host,
                                                   images.lowerBound, images.upperBound)
                }
            }
        }
        if fits { return }
        // The padded canvas's interior is the input's gradient; input pixels no window reaches get 0.
        let (from, to) = (canvas.host, gradInput.host)
        parallelFor(s.batch * w.inputHeight, grain: 8) { lines in
            for line in lines {
                let (n, ih) = line.quotientAndRemainder(dividingBy: w.inputHeight)
                let (target, row) = (to + line * w.inputWidth * c, ih + w.padTop)
                let columns = row < g.in_h ? max(0, min(w.inputWidth, g.in_w - w.padLeft)) : 0
                if columns > 0 { target.update(from: from + ((n * g.in_h + row) * g.in_w + w.padLeft) * c, count: columns * c) }
                (target + columns * c).update(repeating: 0, count: (w.inputWidth - columns) * c)
            }
        }
    }

    func narrowBackwardWeights(_ s: ConvShape, input: Buffer, gradOutput: Buffer, reluOutput: Buffer?, gradWeight: Buffer, gradBias: Buffer?) throws {
        let (x, padding, g) = try padded(s, input)
        let parts = min(threads, s.batch), size = s.weightCount + s.outChannels
        let sums = try makeBuffer(count: 2 * parts * size)  // each part's totals, then its scratch
        withExtendedLifetime(padding) {
            withUnsafePointer(to: g) { g in
                parallel(parts) { part in
                    let dwt = sums.host + part * size
                    kiln_conv_narrow_weight_grad(g, x, gradOutput.host, reluOutput.map { UnsafePointer($0.host) }, dwt,
                                                 gradBias == nil ? nil : dwt + s.weightCount, sums.host + (parts + part) * size,
                                                 s.batch * part / parts, s.batch * (part + 1) / parts)
                }
            }
        }
        for part in 1..<parts { kiln_accumulate(sums.host, sums.host + part * size, size) }
        let (span, co) = (s.window.kernelWidth * s.inChannels, s.outChannels)
        for tap in 0..<s.window.kernelHeight * span {  // [out][kh][kw·in] back to HWIO
            let (kh, rest) = tap.quotientAndRemainder(dividingBy: span)
            for o in 0..<co { gradWeight.host[tap * co + o] = sums.host[(o * s.window.kernelHeight + kh) * span + rest] }
        }
        gradBias?.host.update(from: sums.host + s.weightCount, count: co)
    }

    /// HWIO weights as the narrow kernels read them: [out][kh][kw·in].
    private func narrowWeights(_ s: ConvShape, _ weight: Buffer) throws -> Buffer {
        let (span, co, kh) = (s.window.kernelWidth * s.inChannels, s.outChannels, s.window.kernelHeight)
        let wt = try makeBuffer(count: s.weightCount)
        for tap in 0..<kh * span {
            let (row, rest) = tap.quotientAndRemainder(dividingBy: span)
            for o in 0..<co { wt.host[(o * kh + row) * span + rest] = weight.host[tap * co + o] }
        }
        return wt
    }
}
