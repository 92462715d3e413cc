import CBLAS
import Dispatch

/// Convolution as im2col + one GEMM per chunk of images (NHWC rows × HWIO weights),
/// and pooling, on the CPU.
extension CPUDevice {
    public func conv2d(_ s: ConvShape, input: Buffer, weight: Buffer, bias: Buffer?, output: Buffer) throws {
        try s.validate(input: input, weight: weight, output: output, bias: bias)
        let rowsPerImage = s.window.outputPixels
        if let bias {  // start from the bias and let the GEMM accumulate onto it: no extra pass
            let (b, y, channels) = (bias.host, output.host, s.outChannels)
            parallelFor(s.batch * rowsPerImage, grain: max(1, 32768 / channels)) { range in
                for row in range { (y + row * channels).update(from: b, count: channels) }
            }
        }
        try forEachChunk(s, input: input) { first, images, columns in
            sgemm(m: images * rowsPerImage, n: s.outChannels, k: s.patchSize,
                  columns, false, weight.host, false, output.host + first * rowsPerImage * s.outChannels, beta: bias == nil ? 0 : 1)
        }
    }

    public func conv2dBackwardData(_ s: ConvShape, gradOutput: Buffer, weight: Buffer, gradInput: Buffer) throws {
        try s.validate(input: gradInput, weight: weight, output: gradOutput)
        let rowsPerImage = s.window.outputPixels
        if s.isPointwise {
            return sgemm(m: s.batch * rowsPerImage, n: s.inChannels, k: s.outChannels,
                         gradOutput.host, false, weight.host, true, gradInput.host, beta: 0)
        }
        let chunk = s.imagesPerChunk
        let columns = try makeBuffer(count: chunk * rowsPerImage * s.patchSize)
        for first in stride(from: 0, to: s.batch, by: chunk) {
            let images = min(chunk, s.batch - first)
            sgemm(m: images * rowsPerImage, n: s.patchSize, k: s.outChannels,
                  gradOutput.host + first * rowsPerImage * s.outChannels, false, weight.host, true, columns.host, beta: 0)
            col2im(s, columns.host, gradInput.host + first * s.window.inputPixels * s.inChannels, images: images)
        }
    }

    public func conv2dBackwardWeights(_ s: ConvShape, input: Buffer, gradOutput: Buffer,
                                      gradWeight: Buffer, gradBias: Buffer?) throws {
        try s.validate(input: input, weight: gradWeight, output: gradOutput, bias: gradBias)
        let rowsPerImage = s.window.outputPixels
        try forEachChunk(s, input: input) { first, images, columns in
            sgemm(m: s.patchSize, n: s.outChannels, k: images * rowsPerImage,
                  columns, true, gradOutput.host + first * rowsPerImage * s.outChannels, false,
                  gradWeight.host, beta: first == 0 ? 0 : 1)
        }
        if let gradBias {
            try reduce(.sum, gradOutput, view: AxisView(outer: 1, axis: s.batch * rowsPerImage, inner: s.outChannels), into: gradBias)
        }
    }

    /// Calls `body(firstImage, imageCount, im2colMatrix)` for each chunk of the batch.
    private func forEachChunk(_ s: ConvShape, input: Buffer,
                              _ body: (Int, Int, UnsafeMutablePointer<Float>) -> Void) throws {
        if s.isPointwise { return body(0, s.batch, input.host) }
        let chunk = s.imagesPerChunk
        let columns = try makeBuffer(count: chunk * s.window.outputPixels * s.patchSize)
        for first in stride(from: 0, to: s.batch, by: chunk) {
            let images = min(chunk, s.batch - first)
            im2col(s, input.host + first * s.window.inputPixels * s.inChannels, columns.host, images: images)
            body(first, images, columns.host)
        }
    }

    /// Row (n, oh, ow) of the column matrix holds the (kh, kw, c) patch under output pixel (oh, ow).
    private func im2col(_ s: ConvShape, _ x: UnsafeMutablePointer<Float>, _ col: UnsafeMutablePointer<Float>, images: Int) {
        let w = s.window, c = s.inChannels
        parallelFor(images * w.outputHeight, grain: 1) { range in
            for row in range {
                let (n, oh) = row.quotientAndRemainder(dividingBy: w.outputHeight)
                var out = col + row * w.outputWidth * s.patchSize
                for ow in 0..<w.outputWidth {
                    for kh in 0..<w.kernelHeight {
                        let ih = oh * w.strideHeight - w.padTop + kh
                        for kw in 0..<w.kernelWidth {
                            let iw = ow * w.strideWidth - w.padLeft + kw
                            let inside = ih >= 0 && ih < w.inputHeight && iw >= 0 && iw < w.inputWidth
                            if c == 1 {  // one channel (the first layer): a plain load beats a copy call
                                out[0] = inside ? x[(n * w.inputHeight + ih) * w.inputWidth + iw] : 0
                            } else if inside {
                                out.update(from: x + ((n * w.inputHeight + ih) * w.inputWidth + iw) * c, count: c)
                            } else {
                                out.update(repeating: 0, count: c)
                            }
                            out += c
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of `im2col`: adds each patch back onto the pixels it came from (one image per task).
    private func col2im(_ s: ConvShape, _ col: UnsafeMutablePointer<Float>, _ x: UnsafeMutablePointer<Float>, images: Int) {
        let w = s.window, c = s.inChannels
        parallelFor(images, grain: 1) { range in
            for n in range {
                let image = x + n * w.inputPixels * c
                image.update(repeating: 0, count: w.inputPixels * c)
                var patch = UnsafePointer(col + n * w.outputPixels * s.patchSize)
                for oh in 0..<w.outputHeight {
                    for ow in 0..<w.outputWidth {
                        for kh in 0..<w.kernelHeight {
                            let ih = oh * w.strideHeight - w.padTop + kh
                            for kw in 0..<w.kernelWidth {
                                let iw = ow * w.strideWidth - w.padLeft + kw
                                if ih >= 0, ih < w.inputHeight, iw >= 0, iw < w.inputWidth {
                                    let pixel = image + (ih * w.inputWidth + iw) * c
                                    for ch in 0..<c { pixel[ch] += patch[ch] }
                                }
                                patch += c
                            }
                        }
                    }
                }
            }
        }
    }

    /// Row-major `C = op(A) · op(B) + beta·C` with tight leading dimensions. OpenBLAS runs single-threaded
    /// (set in `init`); the rows of C are split over the cores here, which suits the tall, thin
    /// products of convolutions better than OpenBLAS's own threading.
    func sgemm(m: Int, n: Int, k: Int, _ a: UnsafePointer<Float>, _ transA: Bool,
               _ b: UnsafePointer<Float>, _ transB: Bool, _ c: UnsafeMutablePointer<Float>, beta: Float) {
        let parts = m * n * k >= 1 << 18 ? min(threads, max(1, m / 16)) : 1
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let (first, last) = (m * part / parts, m * (part + 1) / parts)
            guard last > first else { return }
            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        Int32(last - first), Int32(n), Int32(k), 1, a + (transA ? first : first * k), Int32(transA ? m : k),
                        b, Int32(transB ? k : n), beta, c + first * n, Int32(n))
        }
    }

    public func pool2d(_ s: PoolShape, mode: PoolMode, input: Buffer, output: Buffer, argmax: Buffer?) throws {
        try s.validate(mode: mode, input: input, output: output, argmax: argmax, "pool2d")
        let w = s.window, c = s.channels
        let (x, y, index) = (input.host, output.host, argmax?.hostInts)
        parallelFor(s.batch * w.outputHeight, grain: 4) { range in
            for row in range {
                let (n, oh) = row.quotientAndRemainder(dividingBy: w.outputHeight)
                let h0 = oh * w.strideHeight - w.padTop
                let (hs, he) = (max(h0, 0), min(h0 + w.kernelHeight, w.inputHeight))
                for ow in 0..<w.outputWidth {
                    let w0 = ow * w.strideWidth - w.padLeft
                    let (ws, we) = (max(w0, 0), min(w0 + w.kernelWidth, w.inputWidth))
                    let offset = ((n * w.outputHeight + oh) * w.outputWidth + ow) * c
                    let out = y + offset
                    var first = true
                    for ih in hs..<he {
                        for iw in ws..<we {
                            let pixel = x + ((n * w.inputHeight + ih) * w.inputWidth + iw) * c
                            let position = Int32(ih * w.inputWidth + iw)
                            if first {
                                out.update(from: pixel, count: c)
                                if let index { (index + offset).update(repeating: position, count: c) }
                                first = false
                            } else if mode == .average {
                                for ch in 0..<c { out[ch] += pixel[ch] }
                            } else if let index {
                                for ch in 0..<c where pixel[ch] > out[ch] { out[ch] = pixel[ch]; index[offset + ch] = position }
                            }
                        }
                    }
                    if mode == .average {
                        let scale = 1 / Float((he - hs) * (we - ws))
                        for ch in 0..<c { out[ch] *= scale }
                    }
                }
            }
        }
    }

    public func pool2dBackward(_ s: PoolShape, mode: PoolMode, gradOutput: Buffer, argmax: Buffer?, gradInput: Buffer) throws {
        try s.validate(mode: mode, input: gradInput, output: gradOutput, argmax: argmax, "pool2dBackward")
        let w = s.window, c = s.channels
        let (dy, dx, index) = (gradOutput.host, gradInput.host, argmax?.hostInts)
        parallelFor(s.batch, grain: 1) { range in
            for n in range {
                dx.advanced(by: n * w.inputPixels * c).update(repeating: 0, count: w.inputPixels * c)
                for oh in 0..<w.outputHeight {
                    let h0 = oh * w.strideHeight - w.padTop
                    let (hs, he) = (max(h0, 0), min(h0 + w.kernelHeight, w.inputHeight))
                    for ow in 0..<w.outputWidth {
                        let w0 = ow * w.strideWidth - w.padLeft
                        let (ws, we) = (max(w0, 0), min(w0 + w.kernelWidth, w.inputWidth))
                        let out = ((n * w.outputHeight + oh) * w.outputWidth + ow) * c
                        let image = dx + n * w.inputPixels * c
                        if let index {
                            for ch in 0..<c { image[Int(index[out + ch]) * c + ch] += dy[out + ch] }
                        } else {
                            let area = Float((he - hs) * (we - ws))
                            for ih in hs..<he {
                                for iw in ws..<we {
                                    let pixel = image + (ih * w.inputWidth + iw) * c
                                    for ch in 0..<c { pixel[ch] += dy[out + ch] / area }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
