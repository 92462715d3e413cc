import Testing
@testable import Kiln

@Suite("Pooling") struct PoolingTests {
    /// Max (first maximum wins) or average over the window's in-image pixels, in float64.
    static func forward(_ s: PoolShape, _ mode: PoolMode, _ x: [Float]) -> [Double] {
        let w = s.window
        var y = [Double](repeating: 0, count: s.outputCount)
        for n in 0..<s.batch { for oh in 0..<w.outputHeight { for ow in 0..<w.outputWidth { for c in 0..<s.channels {
            var values: [Double] = []
            for kh in 0..<w.kernelHeight { for kw in 0..<w.kernelWidth {
                let ih = oh * w.strideHeight - w.padTop + kh, iw = ow * w.strideWidth - w.padLeft + kw
                if ih >= 0, ih < w.inputHeight, iw >= 0, iw < w.inputWidth {
                    values.append(Double(x[((n * w.inputHeight + ih) * w.inputWidth + iw) * s.channels + c]))
                }
            }}
            y[((n * w.outputHeight + oh) * w.outputWidth + ow) * s.channels + c] =
                mode == .max ? values.max()! : values.reduce(0, +) / Double(values.count)
        }}}}
        return y
    }

    /// Each output's gradient to its window's first maximum, or spread evenly over its in-image pixels.
    static func backward(_ s: PoolShape, _ mode: PoolMode, _ x: [Float], _ dy: [Float]) -> [Double] {
        let w = s.window
        var dx = [Double](repeating: 0, count: s.inputCount)
        for n in 0..<s.batch { for oh in 0..<w.outputHeight { for ow in 0..<w.outputWidth { for c in 0..<s.channels {
            var inside: [Int] = []
            for kh in 0..<w.kernelHeight { for kw in 0..<w.kernelWidth {
                let ih = oh * w.strideHeight - w.padTop + kh, iw = ow * w.strideWidth - w.padLeft + kw
                if ih >= 0, ih < w.inputHeight, iw >= 0, iw < w.inputWidth { inside.append(((n * w.inputHeight + ih) * w.inputWidth + iw) * s.channels + c) }
            }}
            let g = Double(dy[((n * w.outputHeight + oh) * w.outputWidth + ow) * s.channels + c])
            if mode == .max { dx[inside.max { x[$0] < x[$1] }!] += g } else { for i in inside { dx[i] += g / Double(inside.count) } }
        }}}}
        return dx
    }

    static func shape(_ batch: Int, _ channels: Int, pool: (Int, Int), stride: (Int, Int), _ padding: Padding,
                      input: (Int, Int) = (13, 11)) -> PoolShape {
        PoolShape(batch: batch, channels: channels, window: try! Window2D(input: input, kernel: pool, stride: stride, padding: padding))
    }

    static let shapes = [
        shape(3, 7, pool: (2, 2), stride: (2, 2), .valid), shape(3, 7, pool: (3, 3), stride: (2, 2), .same),
        shape(2, 5, pool: (3, 2), stride: (1, 2), .same), shape(1, 4, pool: (2, 3), stride: (3, 1), .valid),
        // Multiples of 16 channels take the CPU's vectorised max-pool kernels (average pooling stays in Swift).
        shape(3, 32, pool: (2, 2), stride: (2, 2), .valid), shape(2, 16, pool: (3, 3), stride: (2, 2), .same),
        shape(3, 16, pool: (2, 2), stride: (2, 2), .valid, input: (12, 10)),  // windows tile the image
    ]

    @Test(arguments: Backend.all, shapes)
    func maxAndAverage(_ backend: Backend, shape s: PoolShape) throws {
        let device = backend.device
        for mode in [PoolMode.max, .average] {
            var random = Random("pool\(s)\(mode)")
            // Distinct values 0.03 apart, so that no finite-difference step changes which one is the maximum.
            var x = (0..<s.inputCount).map { Float($0 - s.inputCount / 2) * 0.03 }
            for i in x.indices.reversed() { x.swapAt(i, random.int(i + 1)) }
            let dy = random.floats(s.outputCount)
            let (xb, dyb) = (try device.buffer(x), try device.buffer(dy))
            let argmax = mode == .max ? try device.makeBuffer(count: s.outputCount) : nil
            let y = try device.output(s.outputCount) { try device.pool2d(s, mode: mode, input: xb, output: $0, argmax: argmax) }
            expectClose(y, Self.forward(s, mode, x), "\(mode) pool forward")
            let dx = try device.output(s.inputCount) {  // starts as NaN: every element must be written
                try device.fill($0, with: .nan, offset: 0, count: s.inputCount)
                try device.pool2dBackward(s, mode: mode, gradOutput: dyb, argmax: argmax, gradInput: $0)
            }
            expectClose(dx, Self.backward(s, mode, x, dy), "\(mode) pool backward")
            try expectGradient(at: x, gradient: dx, "\(mode) pool") { x in
                let scratch = mode == .max ? try device.makeBuffer(count: s.outputCount) : nil
                return dot(try device.output(s.outputCount) {
                    try device.pool2d(s, mode: mode, input: device.buffer(x), output: $0, argmax: scratch)
                }, dy)
            }
        }
    }

    @Test(arguments: Backend.all)
    func globalAveragePoolIsAMeanOverPixels(_ backend: Backend) throws {
        // [N, H*W, C] reduced over the middle axis.
        let device = backend.device
        var random = Random("gap")
        let (n, pixels, c) = (3, 13 * 11, 7)
        let x = random.floats(n * pixels * c)
        let y = try device.output(n * c) { try device.reduce(.mean, device.buffer(x), view: AxisView(outer: n, axis: pixels, inner: c), into: $0) }
        let reference = (0..<n * c).map { i in
            (0..<pixels).reduce(0.0) { $0 + Double(x[((i / c) * pixels + $1) * c + i % c]) } / Double(pixels)
        }
        expectClose(y, reference, "global average pool")
    }

    @Test(arguments: Backend.all)
    func maxPoolNeedsArgmax(_ backend: Backend) throws {
        let s = Self.shapes[0]
        let buffer = try backend.device.makeBuffer(count: s.inputCount)
        #expect(throws: DeviceError.self) { try backend.device.pool2d(s, mode: .max, input: buffer, output: buffer, argmax: nil) }
    }
}
