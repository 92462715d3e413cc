import Testing
@testable import Kiln

@Suite("Convolution") struct ConvolutionTests {
    /// Direct NHWC × HWIO convolution in float64.
    static func forward(_ s: ConvShape, _ x: [Float], _ w: [Float], _ bias: [Float]?) -> [Double] {
        let win = s.window
        var y = [Double](repeating: 0, count: s.outputCount)
        for n in 0..<s.batch { for oh in 0..<win.outputHeight { for ow in 0..<win.outputWidth { for o in 0..<s.outChannels {
            var sum = Double(bias?[o] ?? 0)
            for kh in 0..<win.kernelHeight { for kw in 0..<win.kernelWidth {
                let ih = oh * win.strideHeight - win.padTop + kh, iw = ow * win.strideWidth - win.padLeft + kw
                guard ih >= 0, ih < win.inputHeight, iw >= 0, iw < win.inputWidth else { continue }
                for c in 0..<s.inChannels {
                    sum += Double(x[((n * win.inputHeight + ih) * win.inputWidth + iw) * s.inChannels + c])
                        * Double(w[((kh * win.kernelWidth + kw) * s.inChannels + c) * s.outChannels + o])
                }
            }}
            y[((n * win.outputHeight + oh) * win.outputWidth + ow) * s.outChannels + o] = sum
        }}}}
        return y
    }

    /// The adjoints of `forward` in float64: gradients of ⟨forward(x, w, b), dy⟩.
    static func backward(_ s: ConvShape, _ x: [Float], _ w: [Float], _ dy: [Float]) -> (dx: [Double], dw: [Double], db: [Double]) {
        let win = s.window
        var dx = [Double](repeating: 0, count: s.inputCount), dw = [Double](repeating: 0, count: s.weightCount)
        var db = [Double](repeating: 0, count: s.outChannels)
        for n in 0..<s.batch { for oh in 0..<win.outputHeight { for ow in 0..<win.outputWidth { for o in 0..<s.outChannels {
            let g = Double(dy[((n * win.outputHeight + oh) * win.outputWidth + ow) * s.outChannels + o])
            db[o] += g
            for kh in 0..<win.kernelHeight { for kw in 0..<win.kernelWidth {
                let ih = oh * win.strideHeight - win.padTop + kh, iw = ow * win.strideWidth - win.padLeft + kw
                guard ih >= 0, ih < win.inputHeight, iw >= 0, iw < win.inputWidth else { continue }
                for c in 0..<s.inChannels {
                    let xi = ((n * win.inputHeight + ih) * win.inputWidth + iw) * s.inChannels + c
                    let wi = ((kh * win.kernelWidth + kw) * s.inChannels + c) * s.outChannels + o
                    dx[xi] += g * Double(w[wi])
                    dw[wi] += g * Double(x[xi])
                }
            }}
        }}}}
        return (dx, dw, db)
    }

    /// Odd sizes: batch 3, 7 channels, 13×11 images; strides 1 and 2, both paddings, 1×1 and 3×3 kernels.
    static func shape(_ batch: Int, _ cin: Int, _ cout: Int, kernel: (Int, Int), stride: (Int, Int), _ padding: Padding) -> ConvShape {
        ConvShape(batch: batch, inChannels: cin, outChannels: cout,
                  window: try! Window2D(input: (13, 11), kernel: kernel, stride: stride, padding: padding))
    }

    static let shapes = [
        shape(3, 7, 5, kernel: (3, 3), stride: (1, 1), .valid), shape(3, 7, 5, kernel: (3, 3), stride: (2, 2), .same),
        shape(3, 7, 4, kernel: (3, 2), stride: (2, 1), .same), shape(2, 5, 6, kernel: (1, 1), stride: (1, 1), .same),
        shape(3, 1, 8, kernel: (5, 5), stride: (2, 2), .same), shape(1, 3, 2, kernel: (4, 4), stride: (3, 2), .valid),
        // Multiples of 16 output channels take the CPU's direct kernels: 48 = a 32- and a 16-channel
        // block; 11 columns = a block of 8 pixels and one of 3; 144 taps = 12 blocks of 12 rows.
        // With 16 or 32 input channels the input gradient is a direct convolution too; strided, one
        // per phase (ih mod s, iw mod s) with that phase's taps, which a 1×1 stride-2 kernel lacks.
        shape(3, 16, 48, kernel: (3, 3), stride: (1, 1), .same), shape(2, 32, 32, kernel: (3, 3), stride: (1, 1), .valid),
        shape(2, 16, 16, kernel: (3, 2), stride: (2, 1), .same), shape(3, 1, 32, kernel: (3, 3), stride: (1, 1), .valid),
        shape(2, 16, 16, kernel: (5, 4), stride: (1, 1), .same), shape(3, 16, 32, kernel: (4, 4), stride: (2, 2), .same),
        shape(2, 32, 16, kernel: (3, 3), stride: (2, 2), .valid), shape(2, 16, 16, kernel: (5, 3), stride: (3, 2), .same),
        shape(2, 16, 16, kernel: (1, 1), stride: (2, 2), .valid),
    ]

    @Test func kerasSamePadding() throws {
        // TensorFlow: stride 2 over 13 with a 3-kernel gives out 7 and total padding 2 (1 top, 1 bottom);
        // over 12 it gives out 6, total 1: none on top, one at the bottom.
        let odd = try Window2D(input: (13, 12), kernel: (3, 3), stride: (2, 2), padding: .same)
        #expect((odd.outputHeight, odd.padTop, odd.outputWidth, odd.padLeft) == (7, 1, 6, 0))
        let valid = try Window2D(input: (13, 12), kernel: (3, 3), stride: (2, 2), padding: .valid)
        #expect((valid.outputHeight, valid.outputWidth) == (6, 5))
        #expect(throws: DeviceError.self) { try Window2D(input: (2, 2), kernel: (3, 3), stride: (1, 1), padding: .valid) }
    }

    @Test(arguments: Backend.all, shapes)
    func forwardAndBackward(_ backend: Backend, shape s: ConvShape) throws {
        let device = backend.device
        var random = Random("conv\(s)")
        let x = random.floats(s.inputCount), w = random.floats(s.weightCount), b = random.floats(s.outChannels)
        let dy = random.floats(s.outputCount)
        let (xb, wb, bb, dyb) = (try device.buffer(x), try device.buffer(w), try device.buffer(b), try device.buffer(dy))

        let y = try device.output(s.outputCount) { try device.conv2d(s, input: xb, weight: wb, bias: bb, relu: false, output: $0) }
        let yReference = Self.forward(s, x, w, b)
        expectClose(y, yReference, "conv2d forward")

        /// The device's gradients of ⟨y, dy⟩ (through the fused ReLU given its output), checked against `reference`.
        func gradients(reluOutput: Buffer?, _ reference: (dx: [Double], dw: [Double], db: [Double]),
                       _ what: String) throws -> (dx: [Float], dw: [Float], db: [Float]) {
            let dx = try device.output(s.inputCount) {
                try device.conv2dBackwardData(s, gradOutput: dyb, reluOutput: reluOutput, weight: wb, gradInput: $0)
            }
            let dbBuffer = try device.makeBuffer(count: s.outChannels)
            let dw = try device.output(s.weightCount) {
                try device.conv2dBackwardWeights(s, input: xb, gradOutput: dyb, reluOutput: reluOutput, gradWeight: $0, gradBias: dbBuffer)
            }
            let db = try device.read(dbBuffer)
            expectClose(dx, reference.dx, "\(what) backward data")
            expectClose(dw, reference.dw, "\(what) backward weights")
            expectClose(db, reference.db, "\(what) backward bias")
            return (dx, dw, db)
        }
        let (dx, dw, db) = try gradients(reluOutput: nil, Self.backward(s, x, w, dy), "conv2d")

        // With the fused ReLU: max(y, 0), and gradients of dy taken through it.
        let reluBuffer = try device.makeBuffer(count: s.outputCount)
        try device.conv2d(s, input: xb, weight: wb, bias: bb, relu: true, output: reluBuffer)
        expectClose(try device.read(reluBuffer), yReference.map { max($0, 0) }, "conv2d+relu forward")
        _ = try gradients(reluOutput: reluBuffer, Self.backward(s, x, w, zip(dy, yReference).map { $1 > 0 ? $0 : 0 }), "conv2d+relu")

        // Finite differences of the device's own forward pass.
        func loss(_ x: [Float], _ w: [Float], _ b: [Float]) throws -> Double {
            dot(try device.output(s.outputCount) {
                try device.conv2d(s, input: device.buffer(x), weight: device.buffer(w), bias: device.buffer(b), relu: false, output: $0)
            }, dy)
        }
        try expectGradient(at: x, gradient: dx, "conv2d dx") { try loss($0, w, b) }
        try expectGradient(at: w, gradient: dw, "conv2d dw") { try loss(x, $0, b) }
        try expectGradient(at: b, gradient: db, "conv2d db") { try loss(x, w, $0) }
    }

    /// Every algorithm the OpenCL tuner may pick (each tiling of the implicit-GEMM kernels, im2col +
    /// CLBlast), forced in turn, against float64: strides, padding, 1×1, the fused ReLU's mask,
    /// weight gradients long enough to be split across work-groups, and the forward pass fused with
    /// max pooling (2×2, 1×2 and 2×2 with stride 3, leaving pixels out), values and argmax.
    @Test(arguments: Backend.all.compactMap { $0.device as? OpenCLDevice })
    func everyOpenCLAlgorithm(_ device: OpenCLDevice) throws {
        let shapes = [Self.shapes[1], Self.shapes[2], Self.shapes[3], Self.shapes[7],
                      ConvShape(batch: 9, inChannels: 3, outChannels: 5, window: try Window2D(input: (17, 15), kernel: (3, 3), stride: (1, 1), padding: .valid))]
        let pools = [((2, 2), (2, 2)), ((1, 2), (1, 2)), ((2, 2), (3, 3))]
        for algorithm in device.convolutionAlgorithms {
            for (index, s) in shapes.enumerated() {
                var random = Random("conv \(algorithm) \(s)")
                let x = random.floats(s.inputCount), w = random.floats(s.weightCount), b = random.floats(s.outChannels)
                let dy = random.floats(s.outputCount)
                let what = "\(algorithm), \(s.window.inputHeight)×\(s.window.inputWidth)×\(s.inChannels)→\(s.outChannels)"
                try device.forcingConvolution(algorithm) {
                    let (xb, wb, bb, dyb) = (try device.buffer(x), try device.buffer(w), try device.buffer(b), try device.buffer(dy))
                    let y = try device.output(s.outputCount) { try device.conv2d(s, input: xb, weight: wb, bias: bb, relu: true, output: $0) }
                    let reference = Self.forward(s, x, w, b)
                    expectClose(y, reference.map { max($0, 0) }, "\(what) forward")
                    let masked = Self.backward(s, x, w, zip(dy, reference).map { $1 > 0 ? $0 : 0 })
                    let yb = try device.buffer(y), db = try device.makeBuffer(count: s.outChannels)
                    let dx = try device.output(s.inputCount) {
                        try device.conv2dBackwardData(s, gradOutput: dyb, reluOutput: yb, weight: wb, gradInput: $0)
                    }
                    let dw = try device.output(s.weightCount) {
                        try device.conv2dBackwardWeights(s, input: xb, gradOutput: dyb, reluOutput: yb, gradWeight: $0, gradBias: db)
                    }
                    expectClose(dx, masked.dx, "\(what) input gradient")
                    expectClose(dw, masked.dw, "\(what) weight gradient")
                    expectClose(try device.read(db), masked.db, "\(what) bias gradient")

                    let (kernel, stride) = pools[index % pools.count]
                    let p = PoolShape(batch: s.batch, channels: s.outChannels, window: try Window2D(
                        input: (s.window.outputHeight, s.window.outputWidth), kernel: kernel, stride: stride, padding: .valid))
                    let argmax = try device.makeBuffer(count: p.outputCount)
                    let pooled = try device.output(p.outputCount) {
                        try device.conv2dMaxPool(s, pool: p, input: xb, weight: wb, bias: bb, relu: true, output: $0, argmax: argmax)
                    }
                    let expected = Conformance.pooled(p, reference.map { max($0, 0) }, mode: .max)
                    expectClose(pooled, expected.values, "\(what) with max pooling \(kernel) stride \(stride)")
                    #expect(try device.readInts(argmax, count: p.outputCount) == expected.argmax.map { Int32($0) }, "\(what) pooling's argmax")
                }
            }
        }
    }

    @Test(arguments: Backend.all)
    func largeBatchIsChunked(_ backend: Backend) throws {
        // 9 images of 64×64×32 with a 3×3 kernel exceed one im2col chunk (8 Mi elements).
        let s = ConvShape(batch: 9, inChannels: 32, outChannels: 2,
                          window: try Window2D(input: (64, 64), kernel: (3, 3), stride: (1, 1), padding: .same))
        #expect(s.imagesPerChunk < s.batch)
        let device = backend.device
        var random = Random("conv-chunked")
        let x = random.floats(s.inputCount), w = random.floats(s.weightCount), dy = random.floats(s.outputCount)
        let (xb, wb, dyb) = (try device.buffer(x), try device.buffer(w), try device.buffer(dy))
        let y = try device.output(s.outputCount) { try device.conv2d(s, input: xb, weight: wb, bias: nil, relu: false, output: $0) }
        expectClose(y, Self.forward(s, x, w, nil), "chunked forward")
        let reference = Self.backward(s, x, w, dy)
        let dx = try device.output(s.inputCount) {
            try device.conv2dBackwardData(s, gradOutput: dyb, reluOutput: nil, weight: wb, gradInput: $0)
        }
        expectClose(dx, reference.dx, "chunked backward data")
        let dw = try device.output(s.weightCount) {
            try device.conv2dBackwardWeights(s, input: xb, gradOutput: dyb, reluOutput: nil, gradWeight: $0, gradBias: nil)
        }
        expectClose(dw, reference.dw, "chunked backward weights")
    }

    /// (convolution, pooling) pairs. The CPU fuses the first two (16·k channels; windows that neither
    /// pad nor overlap; the first leaves the last row and column out) and runs the others as two ops.
    static let pooled: [(ConvShape, Window2D)] = [
        (shape(3, 16, 32, kernel: (3, 3), stride: (1, 1), .valid), try! Window2D(input: (11, 9), kernel: (2, 2), stride: (2, 2), padding: .valid)),
        (shape(2, 1, 16, kernel: (3, 3), stride: (1, 1), .same), try! Window2D(input: (13, 11), kernel: (3, 2), stride: (3, 2), padding: .valid)),
        (shape(2, 16, 16, kernel: (3, 3), stride: (1, 1), .same), try! Window2D(input: (13, 11), kernel: (3, 3), stride: (2, 2), padding: .same)),
        (shape(3, 7, 5, kernel: (3, 3), stride: (1, 1), .valid), try! Window2D(input: (11, 9), kernel: (2, 2), stride: (2, 2), padding: .valid)),
    ]

    @Test(arguments: Backend.all, [false, true])
    func convolutionThenMaxPool(_ backend: Backend, relu: Bool) throws {
        let device = backend.device
        for (s, window) in Self.pooled {
            let p = PoolShape(batch: s.batch, channels: s.outChannels, window: window)
            var random = Random("conv-pool\(s)\(window)\(relu)")
            let (xs, ws, bs) = (random.floats(s.inputCount), random.floats(s.weightCount), random.floats(s.outChannels))
            let w = s.window
            let x = try Tensor(xs, shape: [s.batch, w.inputHeight, w.inputWidth, s.inChannels], on: device)
            let kernel = try Tensor(ws, shape: [w.kernelHeight, w.kernelWidth, s.inChannels, s.outChannels], on: device)
            let bias = try Tensor(bs, shape: [s.outChannels], on: device)
            for t in [x, kernel, bias] { t.requiresGrad = true }

            let fused = try x.conv2dMaxPool(kernel, bias: bias, window: w, relu: relu, pool: window)
            let convolved = Self.forward(s, xs, ws, bs).map { Float(relu ? max($0, 0) : $0) }
            expectClose(try fused.toArray(), PoolingTests.forward(p, .max, convolved), "conv2d+pool forward \(s)")

            // Gradients equal those of the two ops run one after the other.
            let r = try Tensor(random.floats(p.outputCount), shape: fused.shape, on: device)
            func gradients(_ y: Tensor) throws -> [[Float]] {
                try (y * r).sum().backward()
                defer { for t in [x, kernel, bias] { t.zeroGrad() } }
                return try [x, kernel, bias].map { try $0.grad!.toArray() }
            }
            let separate = try gradients(x.conv2d(kernel, bias: bias, window: w, relu: relu).pool2d(.max, window: window))
            for (name, (a, b)) in zip(["input", "kernel", "bias"], zip(try gradients(fused), separate)) {
                expectClose(a, b.map(Double.init), "conv2d+pool gradient of the \(name), \(s)")
            }
        }
    }
}

/// Dilated (atrous) convolution: Conv2D(dilationRate:) against a direct float64 reference with taps
/// `rate` apart, and its gradients by finite differences.
@Suite("Dilated convolution") struct DilatedConvolutionTests {
    @Test(arguments: Backend.all, [((2, 2), Padding.same), ((3, 1), .valid), ((1, 2), .same)])
    func matchesTheReference(_ backend: Backend, _ settings: ((Int, Int), Padding)) throws {
        let (d, (rate, padding)) = (backend.device, settings)
        let (n, h, w, c, f, k) = (2, 9, 8, 3, 4, (3, 2))
        let layer = Conv2D(f, kernelSize: k, padding: padding, dilationRate: rate)
        let model = try Sequential([Input(shape: [h, w, c]), layer])
        try model.place(on: d, seed: 4)
        var random = Random("dilated\(rate)\(padding)")
        let x = random.floats(n * h * w * c)
        let kernel = try layer.weights[0].value.toArray(), bias = try layer.weights[1].value.toArray()
        let span = ((k.0 - 1) * rate.0 + 1, (k.1 - 1) * rate.1 + 1)
        let window = try Window2D(input: (h, w), kernel: span, stride: (1, 1), padding: padding)
        #expect(model.outputs[0].shape == [window.outputHeight, window.outputWidth, f])
        var expected: [Double] = []
        for b in 0..<n { for oy in 0..<window.outputHeight { for ox in 0..<window.outputWidth { for o in 0..<f {
            var sum = Double(bias[o])
            for i in 0..<k.0 { for j in 0..<k.1 {
                let (y, xx) = (oy - window.padTop + i * rate.0, ox - window.padLeft + j * rate.1)
                guard (0..<h).contains(y), (0..<w).contains(xx) else { continue }
                for ch in 0..<c { sum += Double(x[((b * h + y) * w + xx) * c + ch]) * Double(kernel[((i * k.1 + j) * c + ch) * f + o]) }
            }}
            expected.append(sum)
        }}}}
        let input = try Tensor(x, shape: [n, h, w, c], on: d)
        expectClose(try model(input).toArray(), expected, "dilated conv \(rate) \(padding) on \(backend)")
        let weights = try Tensor(random.floats(expected.count), shape: [n] + model.outputs[0].shape, on: d)
        try (model(input) * weights).sum().backward()
        try expectGradient(at: kernel, gradient: try layer.weights[0].value.grad!.toArray(), "dilated conv kernel \(rate) on \(backend)") { values in
            try layer.weights[0].assign(values)
            defer { try? layer.weights[0].assign(kernel) }
            return Double(try (model(input) * weights).sum().item())
        }
    }
}
