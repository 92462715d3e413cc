import CBLAS
import CKernels

/// Convolution and pooling on the CPU. Convolutions with a multiple of 16 output channels run
/// the direct NHWC kernels of CKernels (vectorised, no im2col copy), those with fewer than 16 the
/// narrow ones (CPUNarrowConvolution.swift); others run as im2col + one GEMM per chunk of images
/// (NHWC rows × HWIO weights).
extension CPUDevice {
    public func conv2d(_ s: ConvShape, input: Buffer, weight: Buffer, bias: Buffer?, relu: Bool, output: Buffer) throws {
        try s.validate(input: input, weight: weight, output: output, bias: bias)
        if s.isDepthwise { return depthwiseConv2d(s, input: input, weight: weight, bias: bias, relu: relu, output: output) }
        if runsNarrow(s) { return try narrowForward(s, input: input, weight: weight, bias: bias, relu: relu, output: output) }
        if s.outChannels % 16 == 0, !prefersGemm(s) {
            let (x, padding, g) = try padded(s, input)
            return withExtendedLifetime(padding) {
                forward(g, x, weight.host, bias.map { UnsafePointer($0.host) }, output.host, relu: relu)
            }
        }
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
        if relu { try unary(.relu, output, into: output, count: s.outputCount) }
    }

    /// Fused where the direct kernels apply and the pooling windows neither pad nor overlap: each
    /// task convolves only the rows one pooled row needs, so the full-size output never reaches memory.
    public func conv2dMaxPool(_ s: ConvShape, pool p: PoolShape, input: Buffer, weight: Buffer, bias: Buffer?, relu: Bool,
                              output: Buffer, argmax: Buffer) throws {
        let (w, pw) = (s.window, p.window)
        guard !s.isDepthwise, s.outChannels % 16 == 0, s.fusesMaxPool(p) else {
            return try conv2dThenMaxPool(s, pool: p, input: input, weight: weight, bias: bias, relu: relu, output: output, argmax: argmax)
        }
        try s.validateMaxPool(p, input: input, weight: weight, bias: bias, output: output, argmax: argmax)
        let (x, padding, g) = try padded(s, input)
        let rowFloats = pw.kernelHeight * w.outputWidth * s.outChannels  // one task's convolution rows
        let tasks = min(threads > 1 ? threads * tasksPerThread : 1, p.batch * pw.outputHeight)
        let scratch = try makeBuffer(count: tasks * rowFloats)
        withExtendedLifetime((padding, scratch)) {
            withUnsafePointer(to: g) { g in
                withUnsafePointer(to: p.kernelGeometry) { pg in
                    parallel(tasks) { task in
                        let (first, last) = (p.batch * pw.outputHeight * task / tasks, p.batch * pw.outputHeight * (task + 1) / tasks)
                        kiln_conv_max_pool(g, pg, x, weight.host, bias.map { UnsafePointer($0.host) }, relu ? 1 : 0,
                                           output.host, argmax.hostInts, scratch.host + task * rowFloats, first, last)
                    }
                }
            }
        }
    }

    public func conv2dBackwardData(_ s: ConvShape, gradOutput: Buffer, reluOutput: Buffer?, weight: Buffer, gradInput: Buffer) throws {
        try s.validate(input: gradInput, weight: weight, output: gradOutput, reluOutput: reluOutput)
        if s.isDepthwise {
            let gradOutput = try reluOutput.map { try throughReLU(gradOutput, $0, count: s.outputCount) } ?? gradOutput
            return depthwiseBackwardData(s, gradOutput: gradOutput, weight: weight, gradInput: gradInput)
        }
        if runsNarrow(s) { return try narrowBackwardData(s, gradOutput: gradOutput, reluOutput: reluOutput, weight: weight, gradInput: gradInput) }
        if !prefersGemm(s), try directBackwardData(s, gradOutput: gradOutput, reluOutput: reluOutput, weight: weight, gradInput: gradInput) { return }
        let gradOutput = try reluOutput.map { try throughReLU(gradOutput, $0, count: s.outputCount) } ?? gradOutput
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

    public func conv2dBackwardWeights(_ s: ConvShape, input: Buffer, gradOutput: Buffer, reluOutput: Buffer?,
                                      gradWeight: Buffer, gradBias: Buffer?) throws {
        try s.validate(input: input, weight: gradWeight, output: gradOutput, bias: gradBias, reluOutput: reluOutput)
        if s.isDepthwise {
            let gradOutput = try reluOutput.map { try throughReLU(gradOutput, $0, count: s.outputCount) } ?? gradOutput
            return try depthwiseBackwardWeights(s, input: input, gradOutput: gradOutput, gradWeight: gradWeight, gradBias: gradBias)
        }
        if runsNarrow(s) {
            return try narrowBackwardWeights(s, input: input, gradOutput: gradOutput, reluOutput: reluOutput, gradWeight: gradWeight, gradBias: gradBias)
        }
        if s.outChannels % 16 == 0 {
            let (x, padding, g) = try padded(s, input)
            return try withExtendedLifetime(padding) {
                try weightGrad(g, x, gradOutput.host, reluOutput.map { UnsafePointer($0.host) }, gradWeight, gradBias)
            }
        }
        let gradOutput = try reluOutput.map { try throughReLU(gradOutput, $0, count: s.outputCount) } ?? gradOutput
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

    /// The direct forward and input-gradient kernels block output pixels along one row, so narrow
    /// outputs with long patches (ResNet's last stages: 3–6 pixels wide, 512–4,608 taps) run faster
    /// as the GEMM, which blocks over the whole batch (ResNet50 at 96×96: forward ≈ 8%, training ≈ 14%).
    /// Seven pixels fill a block of seven accumulators: direct (the DCGAN's 7×7 layers: 6.3 → 7.1 steps/s).
    private func prefersGemm(_ s: ConvShape) -> Bool { s.window.outputWidth < 7 && s.patchSize >= 512 }

    /// The input as the direct kernels see it: a valid convolution, so with the window's zero
    /// padding written out in a scratch buffer (returned to keep it alive) when it pads.
    func padded(_ s: ConvShape, _ input: Buffer) throws -> (UnsafePointer<Float>, Buffer?, kiln_conv) {
        let w = s.window, g = validGeometry(s)
        if w.padTop == 0, w.padLeft == 0, g.in_h == w.inputHeight, g.in_w == w.inputWidth { return (UnsafePointer(input.host), nil, g) }
        let scratch = try makeBuffer(count: s.batch * g.in_h * g.in_w * s.inChannels)
        zeroPad(input.host, mask: nil, images: s.batch, height: w.inputHeight, width: w.inputWidth, channels: s.inChannels,
                into: scratch.host, height: g.in_h, width: g.in_w, top: w.padTop, left: w.padLeft)
        return (UnsafePointer(scratch.host), scratch, g)
    }

    /// The valid convolution `padded` runs: over the input itself when the window does not pad, else
    /// over the padded canvas the windows span.
    func validGeometry(_ s: ConvShape) -> kiln_conv {
        let w = s.window
        var (height, width) = ((w.outputHeight - 1) * w.strideHeight + w.kernelHeight, (w.outputWidth - 1) * w.strideWidth + w.kernelWidth)
        if w.padTop == 0, w.padLeft == 0, height <= w.inputHeight, width <= w.inputWidth { (height, width) = (w.inputHeight, w.inputWidth) }
        return kiln_conv(batch: s.batch, in_h: height, in_w: width, in_c: s.inChannels, out_h: w.outputHeight, out_w: w.outputWidth,
                         out_c: s.outChannels, k_h: w.kernelHeight, k_w: w.kernelWidth, stride_h: w.strideHeight, stride_w: w.strideWidth)
    }

    /// Copies NHWC images into a zeroed `height` × `width` canvas at (`top`, `left`), clipping what
    /// falls outside; with a `mask`, only where the mask is positive (the backward pass of a ReLU).
    private func zeroPad(_ x: UnsafePointer<Float>, mask: UnsafePointer<Float>?, images: Int, height h: Int, width w: Int, channels c: Int,
                         into y: UnsafeMutablePointer<Float>, height: Int, width: Int, top: Int, left: Int) {
        let columns = min(w, width - left)
        parallelFor(images, grain: 1) { range in
            for n in range {
                let canvas = y + n * height * width * c
                canvas.update(repeating: 0, count: height * width * c)
                for row in 0..<h where row + top < height && columns > 0 {
                    let (source, target) = ((n * h + row) * w * c, canvas + ((row + top) * width + left) * c)
                    if let mask { kiln_relu_backward(mask + source, x + source, target, columns * c) }
                    else { target.update(from: x + source, count: columns * c) }
                }
            }
        }
    }

    func forward(_ g: kiln_conv, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                         _ y: UnsafeMutablePointer<Float>, relu: Bool = false) {
        withUnsafePointer(to: g) { g in
            parallelFor(g.pointee.batch * g.pointee.out_h, grain: 1) { rows in
                kiln_conv_forward(g, x, w, bias, y, relu ? 1 : 0, rows.lowerBound, rows.upperBound)
            }
        }
    }

    /// Weight and bias gradients over a batch split across the cores: each part sums its images,
    /// then the parts are added (a fixed split, so results repeat exactly).
    private func weightGrad(_ g: kiln_conv, _ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ mask: UnsafePointer<Float>?,
                            _ gradWeight: Buffer, _ gradBias: Buffer?) throws {
        let parts = min(threads, g.batch)
        let (weights, biases) = (g.k_h * g.k_w * g.in_c * g.out_c, g.out_c)
        let scratch = parts > 1 ? try makeBuffer(count: (parts - 1) * (weights + biases)) : nil
        /// Where part `part` (≥ 1) sums: its weight gradient, then its bias gradient.
        func partial(_ part: Int) -> UnsafeMutablePointer<Float> { scratch!.host + (part - 1) * (weights + biases) }
        withUnsafePointer(to: g) { g in
            parallel(parts) { part in
                let dw = part == 0 ? gradWeight.host : partial(part)
                let db = gradBias == nil ? nil : part == 0 ? gradBias!.host : partial(part) + weights
                kiln_conv_weight_grad(g, x, dy, mask, dw, db, g.pointee.batch * part / parts, g.pointee.batch * (part + 1) / parts)
            }
        }
        for part in 1..<max(parts, 1) {
            kiln_accumulate(gradWeight.host, partial(part), weights)
            if let gradBias { kiln_accumulate(gradBias.host, partial(part) + weights, biases) }
        }
    }

    /// A stride-1 input gradient as the forward kernel run on the zero-padded output gradient
    /// with the kernel flipped and its channel axes swapped. Returns false where that does not apply.
    private func directBackwardData(_ s: ConvShape, gradOutput: Buffer, reluOutput: Buffer?, weight: Buffer,
                                    gradInput: Buffer) throws -> Bool {
        let w = s.window
        if w.strideHeight > 1 || w.strideWidth > 1 {
            return try phasedBackwardData(s, gradOutput: gradOutput, reluOutput: reluOutput, weight: weight, gradInput: gradInput)
        }
        let (top, left) = (w.kernelHeight - 1 - w.padTop, w.kernelWidth - 1 - w.padLeft)
        let (height, width) = (w.inputHeight + w.kernelHeight - 1, w.inputWidth + w.kernelWidth - 1)
        guard s.inChannels % 16 == 0, top >= 0, left >= 0,
              height - top >= w.outputHeight, width - left >= w.outputWidth else { return false }
        let flipped = try makeBuffer(count: s.weightCount)
        let (kh, kw, ci, co) = (w.kernelHeight, w.kernelWidth, s.inChannels, s.outChannels)
        kiln_flip_kernel(weight.host, flipped.host, kh, kw, ci, co)
        let canvas = try makeBuffer(count: s.batch * height * width * co)
        zeroPad(gradOutput.host, mask: reluOutput.map { UnsafePointer($0.host) }, images: s.batch, height: w.outputHeight, width: w.outputWidth, channels: co,
                into: canvas.host, height: height, width: width, top: top, left: left)
        let g = kiln_conv(batch: s.batch, in_h: height, in_w: width, in_c: co, out_h: w.inputHeight, out_w: w.inputWidth,
                          out_c: ci, k_h: kh, k_w: kw, stride_h: 1, stride_w: 1)
        forward(g, canvas.host, flipped.host, nil, gradInput.host)
        return true
    }

    /// The input gradient of a strided convolution (a transposed convolution's forward pass) without
    /// a patch matrix: input pixels of one phase (ih mod s, iw mod s) are reached by only the kernel
    /// taps of that phase, so each phase is a stride-1 direct convolution of the output gradient with
    /// a sub-kernel, written back to its pixels. No multiplication by inserted zeros.
    private func phasedBackwardData(_ s: ConvShape, gradOutput: Buffer, reluOutput: Buffer?, weight: Buffer, gradInput: Buffer) throws -> Bool {
        let w = s.window, (ci, co) = (s.inChannels, s.outChannels)
        /// Along one axis, for the input pixels `phase + stride·i`: the first tap, the tap count, the
        /// output gradient's zero rows before the first it reads, and the pixel count.
        func phase(_ p: Int, kernel: Int, stride: Int, pad: Int, input: Int) -> (first: Int, taps: Int, before: Int, pixels: Int) {
            let first = (p + pad) % stride, taps = (kernel - first + stride - 1) / stride
            return (first, taps, taps - 1 - (p + pad) / stride, (input - p + stride - 1) / stride)
        }
        let rows = (0..<w.strideHeight).map { phase($0, kernel: w.kernelHeight, stride: w.strideHeight, pad: w.padTop, input: w.inputHeight) }
        let columns = (0..<w.strideWidth).map { phase($0, kernel: w.kernelWidth, stride: w.strideWidth, pad: w.padLeft, input: w.inputWidth) }
        guard ci % 16 == 0, (rows + columns).allSatisfy({ $0.taps > 0 && $0.before >= 0 && $0.pixels > 0 }) else { return false }
        // One zero-padded copy of the output gradient serves every phase, each reading it from its own corner.
        let (top, left) = (rows.map(\.before).max()!, columns.map(\.before).max()!)
        let height = rows.map { top - $0.before + $0.pixels + $0.taps - 1 }.max()!, width = columns.map { left - $0.before + $0.pixels + $0.taps - 1 }.max()!
        let canvas = try makeBuffer(count: s.batch * height * width * co)
        zeroPad(gradOutput.host, mask: reluOutput.map { UnsafePointer($0.host) }, images: s.batch, height: w.outputHeight, width: w.outputWidth,
                channels: co, into: canvas.host, height: height, width: width, top: top, left: left)
        let part = try makeBuffer(count: s.batch * rows[0].pixels * columns[0].pixels * ci)
        let subKernel = try makeBuffer(count: s.weightCount)
        for (ph, r) in rows.enumerated() {
            for (pw, c) in columns.enumerated() {
                // Taps first + stride·m, in reverse order and with in/out channels swapped, as HWIO.
                var next = subKernel.host
                for m in (0..<r.taps).reversed() {
                    for n in (0..<c.taps).reversed() {
                        let tap = weight.host + ((r.first + w.strideHeight * m) * w.kernelWidth + c.first + w.strideWidth * n) * ci * co
                        for o in 0..<co { for i in 0..<ci { next[i] = tap[i * co + o] }; next += ci }
                    }
                }
                let corner = canvas.host + ((top - r.before) * width + left - c.before) * co
                forward(kiln_conv(batch: s.batch, in_h: height, in_w: width, in_c: co, out_h: r.pixels, out_w: c.pixels, out_c: ci,
                                  k_h: r.taps, k_w: c.taps, stride_h: 1, stride_w: 1), corner, subKernel.host, nil, part.host)
                let (from, to) = (part.host, gradInput.host)
                parallelFor(s.batch * r.pixels, grain: 4) { range in
                    for line in range {
                        let (image, i) = line.quotientAndRemainder(dividingBy: r.pixels)
                        let target = to + ((image * w.inputHeight + ph + w.strideHeight * i) * w.inputWidth + pw) * ci
                        for j in 0..<c.pixels { (target + w.strideWidth * j * ci).update(from: from + (line * c.pixels + j) * ci, count: ci) }
                    }
                }
            }
        }
        return true
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
        parallel(parts) { part in
            let (first, last) = (m * part / parts, m * (part + 1) / parts)
            guard last > first else { return }
            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        Int32(last - first), Int32(n), Int32(k), 1, a + (transA ? first : first * k), Int32(transA ? m : k),
                        b, Int32(transB ? k : n), beta, c + first * n, Int32(n))
        }
    }

    public func pool2d(_ s: PoolShape, mode: PoolMode, input: Buffer, output: Buffer, argmax: Buffer?) throws {
        try s.validate(mode: mode, input: input, output: output, argmax: argmax, "pool2d")
        if mode == .max, s.channels % 16 == 0, let argmax {
            return withUnsafePointer(to: s.kernelGeometry) { g in
                parallelFor(s.batch * s.window.outputHeight, grain: 4) { rows in
                    kiln_max_pool(g, input.host, output.host, argmax.hostInts, rows.lowerBound, rows.upperBound)
                }
            }
        }
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
        if mode == .max, s.channels % 16 == 0, let argmax {
            return withUnsafePointer(to: s.kernelGeometry) { g in
                parallelFor(s.batch, grain: 1) { images in
                    kiln_max_pool_backward(g, gradOutput.host, argmax.hostInts, gradInput.host, images.lowerBound, images.upperBound)
                }
            }
        }
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

extension PoolShape {
    /// The window as CKernels takes it.
    var kernelGeometry: kiln_pool {
        let w = window
        return kiln_pool(batch: batch, in_h: w.inputHeight, in_w: w.inputWidth, channels: channels, out_h: w.outputHeight,
                         out_w: w.outputWidth, k_h: w.kernelHeight, k_w: w.kernelWidth, stride_h: w.strideHeight,
                         stride_w: w.strideWidth, pad_top: w.padTop, pad_left: w.padLeft)
    }
}
