import Foundation

/// The rows of `Conformance`: every `Device` requirement that computes, on sizes chosen to miss
/// vector widths and tile sizes.
extension Conformance {
    static let rows: [Row] = dataMovement + linearAlgebra + convolution + elementwise + normalization + recurrent + recurrentSequences + training

    private static func random(_ count: Int, _ r: inout RandomGenerator, _ range: ClosedRange<Double> = -1...1) -> [Float] {
        (0..<count).map { _ in Float(range.lowerBound + (range.upperBound - range.lowerBound) * r.uniform()) }
    }

    private static func labels(_ count: Int, below bound: Int, _ r: inout RandomGenerator) -> [Float] {
        (0..<count).map { _ in Float(r.next() % UInt64(bound)) }
    }

    private static func ints(_ values: [Float]) -> [Int32] { values.map { Int32($0) } }

    // MARK: Data movement

    static let dataMovement: [Row] = [
        Row("fill", inputs: { _ in [] }, run: { d, _ in
            let b = try d.makeBuffer(count: 37)
            try d.fill(b, with: 2.5, offset: 0, count: 37)
            try d.fill(b, with: -1, offset: 5, count: 11)
            return [try d.read(b, count: 37)]
        }, reference: { _ in [(0..<37).map { (5..<16).contains($0) ? -1 : 2.5 }] }),
        Row("copy2D", inputs: { r in [random(7 * 13, &r)] }, run: { d, x in
            let out = try d.buffer(repeating: 0, count: 5 * 11)
            try d.copy2D(rows: 5, columns: 9, from: d.buffer(x[0]), offset: 3, stride: 13, to: out, offset: 1, stride: 11)
            return [try d.read(out, count: 55)]
        }, reference: { x in
            [(0..<55).map { i in
                let (row, column) = i.quotientAndRemainder(dividingBy: 11)
                return row < 5 && (1..<10).contains(column) ? Double(x[0][3 + row * 13 + column - 1]) : 0
            }]
        }),
        permuteRow(shape: [3, 5, 7], permutation: [2, 0, 1]),
        permuteRow("permute (rows)", shape: [3, 5, 9], permutation: [1, 0, 2]),  // the last axis stays: row copies
        Row("gatherRows", inputs: { r in [random(9 * 5, &r), labels(13, below: 11, &r)] }, run: { d, x in  // ids 9, 10: outside → zeros
            let out = try d.makeBuffer(count: 13 * 5)
            try d.gatherRows(RowGather(tableRows: 9, columns: 5, count: 13), table: d.buffer(x[0]), indices: d.buffer(ints: ints(x[1])), into: out)
            return [try d.read(out, count: 65)]
        }, reference: { x in [(0..<65).map { i in
            let (row, column) = i.quotientAndRemainder(dividingBy: 5), id = Int(x[1][row])
            return id < 9 ? Double(x[0][id * 5 + column]) : 0
        }] }),
        Row("scatterAddRows", inputs: { r in [random(13 * 5, &r), labels(13, below: 11, &r), random(9 * 5, &r)] }, run: { d, x in
            let table = try d.buffer(x[2])
            try d.scatterAddRows(RowGather(tableRows: 9, columns: 5, count: 13), rows: d.buffer(x[0]), indices: d.buffer(ints: ints(x[1])), into: table)
            return [try d.read(table, count: 45)]
        }, reference: { x in
            var table = x[2].map(Double.init)
            for (row, id) in x[1].enumerated() where Int(id) < 9 { for c in 0..<5 { table[Int(id) * 5 + c] += Double(x[0][row * 5 + c]) } }
            return [table]
        }),
    ]

    // MARK: Linear algebra

    static let linearAlgebra: [Row] = [(false, false), (true, false), (false, true)].map { ta, tb in
        let (m, n, k) = (37, 29, 53)
        return Row("gemm \(ta ? "Aᵀ" : "A")·\(tb ? "Bᵀ" : "B") + 0.5C", inputs: { r in [random(m * k, &r), random(k * n, &r), random(m * n, &r)] }, run: { d, x in
            let c = try d.buffer(x[2])
            try d.gemm(Gemm(m: m, n: n, k: k, transposeA: ta, transposeB: tb, alpha: 1.5, beta: 0.5), a: d.buffer(x[0]), b: d.buffer(x[1]), c: c)
            return [try d.read(c, count: m * n)]
        }, reference: { x in [(0..<m * n).map { i in
            let (row, column) = i.quotientAndRemainder(dividingBy: n)
            let dot = (0..<k).reduce(0.0) { $0 + Double(x[0][ta ? $1 * m + row : row * k + $1]) * Double(x[1][tb ? column * k + $1 : $1 * n + column]) }
            return 1.5 * dot + 0.5 * Double(x[2][i])
        }] })
    }

    // MARK: Convolution and pooling

    /// NHWC input 3×11×9×5, 7 filters of 3×4, stride (2, 1), same padding: odd everywhere.
    private static let conv = try! ConvShape(batch: 3, inChannels: 5, outChannels: 7,
                                             window: Window2D(input: (11, 9), kernel: (3, 4), stride: (2, 1), padding: .same))
    private static let pool = try! PoolShape(batch: 3, channels: 7, window: Window2D(input: (11, 9), kernel: (3, 2), stride: (2, 2), padding: .valid))

    /// Depthwise: 19 channels (a vector and a tail) with stride 2; 5 channels × 2 with dilation (2, 3).
    private static let depthwise = try! ConvShape(batch: 2, inChannels: 19, outChannels: 19,
                                                  window: Window2D(input: (9, 11), kernel: (3, 3), stride: (2, 2), padding: .same), groups: 19)
    private static let dilatedDepthwise = try! ConvShape(batch: 3, inChannels: 5, outChannels: 10,
                                                         window: Window2D(input: (10, 9), kernel: (3, 2), stride: (1, 1), padding: .same,
                                                                          dilation: (2, 3)), groups: 5)

    /// Each (input channel, output channel, weight offset within a tap) that the convolution connects.
    private static func connections(_ s: ConvShape) -> [(c: Int, f: Int, w: Int)] {
        s.isDepthwise ? (0..<s.outChannels).map { ($0 / s.multiplier, $0, $0) }
            : (0..<s.inChannels).flatMap { c in (0..<s.outChannels).map { (c, $0, c * s.outChannels + $0) } }
    }

    /// Calls `body(input index, weight index, output index)` for every product the convolution sums.
    private static func forEachProduct(_ s: ConvShape, _ body: (Int, Int, Int) -> Void) {
        let v = s.window, links = connections(s), tapSize = s.weightCount / v.kernelPixels
        for n in 0..<s.batch { for oy in 0..<v.outputHeight { for ox in 0..<v.outputWidth { for ky in 0..<v.kernelHeight { for kx in 0..<v.kernelWidth {
            let (iy, ix) = (oy * v.strideHeight + ky * v.dilationHeight - v.padTop, ox * v.strideWidth + kx * v.dilationWidth - v.padLeft)
            guard (0..<v.inputHeight).contains(iy), (0..<v.inputWidth).contains(ix) else { continue }
            for (c, f, w) in links {
                body(((n * v.inputHeight + iy) * v.inputWidth + ix) * s.inChannels + c, (ky * v.kernelWidth + kx) * tapSize + w,
                     ((n * v.outputHeight + oy) * v.outputWidth + ox) * s.outChannels + f)
            }
        }}}}}
    }

    /// Σ input·weight per output element (float64), the convolution's definition.
    private static func convolve(_ s: ConvShape, _ x: [Float], _ w: [Float]) -> [Double] {
        var y = [Double](repeating: 0, count: s.outputCount)
        forEachProduct(s) { xi, wi, yi in y[yi] += Double(x[xi]) * Double(w[wi]) }
        return y
    }

    /// The input and weight gradients of `convolve` for output gradient `g` (its adjoints).
    private static func convolveBackward(_ s: ConvShape, _ x: [Float], _ w: [Float], _ g: [Float]) -> (input: [Double], weight: [Double]) {
        var (dx, dw) = ([Double](repeating: 0, count: s.inputCount), [Double](repeating: 0, count: s.weightCount))
        forEachProduct(s) { xi, wi, yi in
            dx[xi] += Double(g[yi]) * Double(w[wi])
            dw[wi] += Double(g[yi]) * Double(x[xi])
        }
        return (dx, dw)
    }

    private static func convolutionInputs(_ s: ConvShape) -> @Sendable (inout RandomGenerator) -> [[Float]] {
        { r in [random(s.inputCount, &r), random(s.weightCount, &r, -0.5...0.5), random(s.outChannels, &r), random(s.outputCount, &r)] }
    }

    /// Forward (with bias and ReLU), input gradient, and weight and bias gradients of `s`.
    private static func convolutionRows(_ label: String, _ s: ConvShape) -> [Row] {
        let inputs = convolutionInputs(s)
        return [
            Row("\(label) + bias + relu", inputs: inputs, run: { d, x in
                let y = try d.makeBuffer(count: s.outputCount)
                try d.conv2d(s, input: d.buffer(x[0]), weight: d.buffer(x[1]), bias: d.buffer(x[2]), relu: true, output: y)
                return [try d.read(y, count: s.outputCount)]
            }, reference: { x in [convolve(s, x[0], x[1]).enumerated().map { max($0.element + Double(x[2][$0.offset % s.outChannels]), 0) }] }),
            Row("\(label) backward data", inputs: inputs, run: { d, x in
                let dx = try d.makeBuffer(count: s.inputCount)
                try d.conv2dBackwardData(s, gradOutput: d.buffer(x[3]), reluOutput: nil, weight: d.buffer(x[1]), gradInput: dx)
                return [try d.read(dx, count: s.inputCount)]
            }, reference: { x in [convolveBackward(s, x[0], x[1], x[3]).input] }),
            Row("\(label) backward weights and bias", inputs: inputs, run: { d, x in
                let (dw, db) = (try d.makeBuffer(count: s.weightCount), try d.makeBuffer(count: s.outChannels))
                try d.conv2dBackwardWeights(s, input: d.buffer(x[0]), gradOutput: d.buffer(x[3]), reluOutput: nil, gradWeight: dw, gradBias: db)
                return [try d.read(dw, count: s.weightCount), try d.read(db, count: s.outChannels)]
            }, reference: { x in
                [convolveBackward(s, x[0], x[1], x[3]).weight,
                 (0..<s.outChannels).map { f in stride(from: f, to: s.outputCount, by: s.outChannels).reduce(0.0) { $0 + Double(x[3][$1]) } }]
            }),
        ]
    }

    /// Max (value and argmax) or average pooling of NHWC images, float64.
    static func pooled(_ s: PoolShape, _ x: [Double], mode: PoolMode) -> (values: [Double], argmax: [Double]) {
        let v = s.window
        var (values, argmax) = ([Double](repeating: 0, count: s.outputCount), [Double](repeating: 0, count: s.outputCount))
        for n in 0..<s.batch { for oy in 0..<v.outputHeight { for ox in 0..<v.outputWidth { for c in 0..<s.channels {
            var (best, at, sum) = (-Double.infinity, 0, 0.0)
            for ky in 0..<v.kernelHeight { for kx in 0..<v.kernelWidth {
                let (iy, ix) = (oy * v.strideHeight + ky - v.padTop, ox * v.strideWidth + kx - v.padLeft)
                let value = x[((n * v.inputHeight + iy) * v.inputWidth + ix) * s.channels + c]
                sum += value
                if value > best { (best, at) = (value, iy * v.inputWidth + ix) }
            }}
            let o = ((n * v.outputHeight + oy) * v.outputWidth + ox) * s.channels + c
            (values[o], argmax[o]) = (mode == .max ? best : sum / Double(v.kernelPixels), Double(at))
        }}}}
        return (values, argmax)
    }

    static let convolution: [Row] = {
        let s = conv
        let convInputs = convolutionInputs(s)
        return convolutionRows("conv2d", s) + convolutionRows("depthwise conv2d", depthwise)
            + convolutionRows("depthwise conv2d, multiplier 2, dilated", dilatedDepthwise) + [
            Row("conv2dTranspose", inputs: convInputs, run: { d, x in  // the adjoint of `conv`: output gradient → input-shaped images
                let t = try TransposedConvShape(batch: s.batch, input: (s.window.outputHeight, s.window.outputWidth), inChannels: s.outChannels,
                                                filters: s.inChannels, kernel: (3, 4), stride: (2, 1), pads: (1, 1, 1, 2))  // `conv`'s padding
                let y = try d.makeBuffer(count: s.inputCount)
                // Its weight (kh, kw, filters = conv's in, in = conv's out) is the convolution's HWIO kernel.
                try d.conv2dTranspose(t, input: d.buffer(x[3]), weight: d.buffer(x[1]), bias: nil, relu: false, output: y)
                return [try d.read(y, count: s.inputCount)]
            }, reference: { x in [convolveBackward(s, x[0], x[1], x[3]).input] }),
            Row("conv2dMaxPool (conv2d, then max pooling)", inputs: convInputs, run: { d, x in
                let p = try PoolShape(batch: s.batch, channels: s.outChannels,
                                      window: Window2D(input: (s.window.outputHeight, s.window.outputWidth), kernel: (2, 2), stride: (2, 2), padding: .valid))
                let (y, argmax) = (try d.makeBuffer(count: p.outputCount), try d.makeBuffer(count: p.outputCount))
                try d.conv2dMaxPool(s, pool: p, input: d.buffer(x[0]), weight: d.buffer(x[1]), bias: d.buffer(x[2]), relu: true, output: y, argmax: argmax)
                return [try d.read(y, count: p.outputCount), try d.readInts(argmax, count: p.outputCount).map(Float.init)]
            }, reference: { x in
                let p = try! PoolShape(batch: s.batch, channels: s.outChannels,
                                       window: Window2D(input: (s.window.outputHeight, s.window.outputWidth), kernel: (2, 2), stride: (2, 2), padding: .valid))
                let y = convolve(s, x[0], x[1]).enumerated().map { max($0.element + Double(x[2][$0.offset % s.outChannels]), 0) }
                let (values, argmax) = pooled(p, y, mode: .max)
                return [values, argmax]
            }),
        ] + [(pool, ""), (vectorPool, ", 12 channels")].flatMap { pool, label in [PoolMode.max, .average].flatMap { mode in [
            Row("pool2d \(mode)\(label)", inputs: { r in [random(pool.inputCount, &r)] }, run: { d, x in
                let (y, argmax) = (try d.makeBuffer(count: pool.outputCount), try d.makeBuffer(count: pool.outputCount))
                try d.pool2d(pool, mode: mode, input: d.buffer(x[0]), output: y, argmax: mode == .max ? argmax : nil)
                return [try d.read(y, count: pool.outputCount)] + (mode == .max ? [try d.readInts(argmax, count: pool.outputCount).map(Float.init)] : [])
            }, reference: { x in
                let (values, argmax) = pooled(pool, x[0].map(Double.init), mode: mode)
                return [values] + (mode == .max ? [argmax] : [])
            }),
            poolBackwardRow("pool2d \(mode) backward\(label)", pool, mode),
        ] } } + [poolBackwardRow("pool2d max backward (disjoint windows, uncovered edge)", disjointPool(channels: 7), .max),
                 poolBackwardRow("pool2d max backward (disjoint windows, uncovered edge), 12 channels", disjointPool(channels: 12), .max)]
    }()

    /// `pool` over 12 channels: the OpenCL kernels take 4 channels per work-item when the channels allow.
    private static let vectorPool = PoolShape(batch: 2, channels: 12, window: pool.window)

    /// 2×2 windows, stride 2, over 11×9: no overlap, and the last row and column in no window.
    private static func disjointPool(channels: Int) -> PoolShape {
        PoolShape(batch: 3, channels: channels, window: try! Window2D(input: (11, 9), kernel: (2, 2), stride: (2, 2), padding: .valid))
    }

    private static func poolBackwardRow(_ name: String, _ pool: PoolShape, _ mode: PoolMode) -> Row {
        Row(name, inputs: { r in [random(pool.inputCount, &r), random(pool.outputCount, &r)] }, run: { d, x in
            let (y, argmax, dx) = (try d.makeBuffer(count: pool.outputCount), try d.makeBuffer(count: pool.outputCount), try d.makeBuffer(count: pool.inputCount))
            try d.fill(dx, with: .nan, offset: 0, count: pool.inputCount)  // every input must be written
            try d.pool2d(pool, mode: mode, input: d.buffer(x[0]), output: y, argmax: mode == .max ? argmax : nil)
            try d.pool2dBackward(pool, mode: mode, gradOutput: d.buffer(x[1]), argmax: mode == .max ? argmax : nil, gradInput: dx)
            return [try d.read(dx, count: pool.inputCount)]
        })
    }

    // MARK: Elementwise, reductions, softmax

    private static let unaryOps: [(UnaryOp, (Double) -> Double)] = [
        (.relu, { max($0, 0) }), (.leakyRelu(slope: 0.2), { $0 > 0 ? $0 : 0.2 * $0 }), (.sigmoid, { 1 / (1 + exp(-$0)) }), (.tanh, { tanh($0) }),
        (.exp, { exp($0) }), (.log, { log(abs($0) + 0.1) }), (.sqrt, { (abs($0) + 0.1).squareRoot() }), (.square, { $0 * $0 }), (.abs, { abs($0) }),
        (.negate, { -$0 }), (.softplus, { log1p(exp($0)) }), (.step, { $0 > 0 ? 1 : 0 }), (.cappedRelu(max: 1.5), { min(max($0, 0), 1.5) }),
    ]

    static let elementwise: [Row] = unaryOps.flatMap { op, f -> [Row] in
        let positive: (Float) -> Float = { [.log, .sqrt].contains(op) ? abs($0) + 0.1 : $0 }  // inside the domain
        return [
            Row("unary \(op)", inputs: { r in [random(301, &r, -3...3).map(positive)] }, run: { d, x in
                let y = try d.makeBuffer(count: 301)
                try d.unary(op, d.buffer(x[0]), into: y, count: 301)
                return [try d.read(y, count: 301)]
            }, reference: { x in [x[0].map { f(Double([.log, .sqrt].contains(op) ? $0 - 0.1 : $0)) }] }),
            Row("unary \(op) backward", inputs: { r in [random(301, &r, -3...3).map(positive), random(301, &r)] }, run: { d, x in
                let (y, dx) = (try d.makeBuffer(count: 301), try d.makeBuffer(count: 301))
                let input = try d.buffer(x[0])
                try d.unary(op, input, into: y, count: 301)
                try d.unaryBackward(op, input: input, output: y, gradOutput: d.buffer(x[1]), gradInput: dx, count: 301)
                return [try d.read(dx, count: 301)]
            }),
        ]
    } + BinaryOp.allCases.flatMap(binaryRows) + reductionsAndSoftmax

    private static let reductionsAndSoftmax: [Row] = [
        Row("affine", inputs: { r in [random(99, &r)] }, run: { d, x in
            let y = try d.makeBuffer(count: 99)
            try d.affine(d.buffer(x[0]), scale: -1.5, shift: 0.25, into: y, count: 99)
            return [try d.read(y, count: 99)]
        }, reference: { x in [x[0].map { -1.5 * Double($0) + 0.25 }] }),
        Row("addBias", inputs: { r in [random(3 * 7 * 5, &r), random(7, &r)] }, run: { d, x in
            let y = try d.makeBuffer(count: 105)
            try d.addBias(d.buffer(x[0]), d.buffer(x[1]), view: AxisView(outer: 3, axis: 7, inner: 5), into: y)
            return [try d.read(y, count: 105)]
        }, reference: { x in [(0..<105).map { Double(x[0][$0]) + Double(x[1][($0 / 5) % 7]) }] }),
        Row("argmax", inputs: { r in [random(3 * 17 * 5, &r)] }, run: { d, x in
            let y = try d.makeBuffer(count: 15)
            try d.argmax(d.buffer(x[0]), view: AxisView(outer: 3, axis: 17, inner: 5), into: y)
            return [try d.readInts(y, count: 15).map(Float.init)]
        }, reference: { x in [(0..<15).map { i in
            let (o, inner) = i.quotientAndRemainder(dividingBy: 5)
            return Double((0..<17).max { x[0][(o * 17 + $0) * 5 + inner] < x[0][(o * 17 + $1) * 5 + inner] }!)
        }] }),
    ] + ReduceOp.allCases.map { op in
        Row("reduce \(op)", inputs: { r in [random(3 * 301 * 5, &r)] }, run: { d, x in
            let y = try d.makeBuffer(count: 15)
            try d.reduce(op, d.buffer(x[0]), view: AxisView(outer: 3, axis: 301, inner: 5), into: y)
            return [try d.read(y, count: 15)]
        }, reference: { x in [(0..<15).map { i in
            let (o, inner) = i.quotientAndRemainder(dividingBy: 5)
            let values = (0..<301).map { Double(x[0][(o * 301 + $0) * 5 + inner]) }
            switch op {
            case .sum: return values.reduce(0, +)
            case .mean: return values.reduce(0, +) / 301
            case .max: return values.max()!
            }
        }] })
    } + [false, true].flatMap { log in [
        Row(log ? "logSoftmax" : "softmax", inputs: { r in [random(7 * 13, &r, -4...4)] }, run: { d, x in
            let y = try d.makeBuffer(count: 91)
            try d.softmax(d.buffer(x[0]), rows: 7, columns: 13, log: log, into: y)
            return [try d.read(y, count: 91)]
        }, reference: { x in [(0..<91).map { i in
            let row = x[0][(i / 13 * 13)..<(i / 13 * 13 + 13)].map(Double.init), m = row.max()!
            let logSum = m + Foundation.log(row.reduce(0) { $0 + exp($1 - m) })
            return log ? Double(x[0][i]) - logSum : exp(Double(x[0][i]) - logSum)
        }] }),
        Row((log ? "logSoftmax" : "softmax") + " backward", inputs: { r in [random(7 * 13, &r, -4...4), random(91, &r)] }, run: { d, x in
            let (y, dx) = (try d.makeBuffer(count: 91), try d.makeBuffer(count: 91))
            try d.softmax(d.buffer(x[0]), rows: 7, columns: 13, log: log, into: y)
            try d.softmaxBackward(output: y, gradOutput: d.buffer(x[1]), rows: 7, columns: 13, log: log, gradInput: dx)
            return [try d.read(dx, count: 91)]
        }),
    ] } + [
        Row("softmaxCrossEntropy (labels)", inputs: { r in [random(7 * 13, &r, -4...4), labels(7, below: 13, &r)] }, run: { d, x in
            let (loss, gradient) = (try d.makeBuffer(count: 1), try d.makeBuffer(count: 91))
            try d.softmaxCrossEntropy(logits: d.buffer(x[0]), targets: .sparse(d.buffer(ints: ints(x[1]))), rows: 7, columns: 13, loss: loss, gradLogits: gradient)
            return [try d.read(loss, count: 1), try d.read(gradient, count: 91)]
        }, reference: { x in
            var (loss, gradient) = (0.0, [Double](repeating: 0, count: 91))
            for row in 0..<7 {
                let z = x[0][(row * 13)..<(row * 13 + 13)].map(Double.init), m = z.max()!, sum = z.reduce(0) { $0 + exp($1 - m) }
                loss -= z[Int(x[1][row])] - m - log(sum)
                for c in 0..<13 { gradient[row * 13 + c] = (exp(z[c] - m) / sum - (c == Int(x[1][row]) ? 1 : 0)) / 7 }
            }
            return [[loss / 7], gradient]
        }),
        Row("softmaxCrossEntropy (probabilities)", inputs: { r in
            let weights = random(7 * 13, &r, 0...1)
            return [random(7 * 13, &r, -4...4), weights.indices.map { weights[$0] / weights[($0 / 13 * 13)..<($0 / 13 * 13 + 13)].reduce(0, +) }]
        }, run: { d, x in
            let (loss, gradient) = (try d.makeBuffer(count: 1), try d.makeBuffer(count: 91))
            try d.softmaxCrossEntropy(logits: d.buffer(x[0]), targets: .dense(d.buffer(x[1])), rows: 7, columns: 13, loss: loss, gradLogits: gradient)
            return [try d.read(loss, count: 1), try d.read(gradient, count: 91)]
        }, reference: { x in
            var (loss, gradient) = (0.0, [Double](repeating: 0, count: 91))
            for row in 0..<7 {
                let z = x[0][(row * 13)..<(row * 13 + 13)].map(Double.init), m = z.max()!, sum = z.reduce(0) { $0 + exp($1 - m) }
                for c in 0..<13 {
                    let t = Double(x[1][row * 13 + c])
                    loss -= t * (z[c] - m - log(sum))
                    gradient[row * 13 + c] = (exp(z[c] - m) / sum - t) / 7
                }
            }
            return [[loss / 7], gradient]
        }),
        Row("topKHits (k = 3)", inputs: { r in [random(9 * 11, &r), labels(9, below: 11, &r)] }, run: { d, x in
            let y = try d.makeBuffer(count: 9)
            try d.topKHits(scores: d.buffer(x[0]), targets: .sparse(d.buffer(ints: ints(x[1]))), rows: 9, columns: 11, k: 3, into: y)
            return [try d.read(y, count: 9)]
        }, reference: { x in [(0..<9).map { row in
            let scores = x[0][(row * 11)..<(row * 11 + 11)], target = scores[row * 11 + Int(x[1][row])]
            return scores.filter { $0 > target }.count < 3 ? 1 : 0
        }] }),
        Row("dropout (rate 0.3)", inputs: { r in [random(1001, &r, 0.5...1.5)] }, run: { d, x in
            let y = try d.makeBuffer(count: 1001)
            try d.dropout(d.buffer(x[0]), rate: 0.3, seed: 11, offset: 7, into: y, count: 1001)
            return [try d.read(y, count: 1001)]
        }),
        Row("fillRandom normal", inputs: { _ in [] }, run: { d, _ in
            let y = try d.makeBuffer(count: 1001)
            try d.fillRandom(y, distribution: .normal(mean: 1, standardDeviation: 2), seed: 5, offset: 3, count: 1001)
            return [try d.read(y, count: 1001)]
        }),
    ]

    /// Shapes (a, b) broadcast to an output: element by element (short rows), a scalar, an operand
    /// repeated along the leading axis, and row by row (a middle axis repeated, rows of 9).
    private static func binaryRows(_ op: BinaryOp) -> [Row] {
        let cases: [(String, [Int], [Int], [Int])] = [("broadcast", [5, 7, 3], [7, 1], [5, 7, 3]), ("scalar", [5, 7, 3], [1], [5, 7, 3]),
                                                      ("leading rows", [7, 3], [5, 7, 3], [5, 7, 3]), ("middle axis", [5, 1, 9], [7, 1], [5, 7, 9])]
        return cases.map { label, aShape, bShape, outShape -> Row in
            let count = outShape.reduce(1, *)
            return Row("binary \(op) (\(label))", inputs: { r in [random(aShape.reduce(1, *), &r), random(bShape.reduce(1, *), &r, 0.5...2)] }, run: { d, x in
                let y = try d.makeBuffer(count: count)
                try d.binary(op, d.buffer(x[0]), shape: aShape, d.buffer(x[1]), shape: bShape, into: y, shape: outShape)
                return [try d.read(y, count: count)]
            }, reference: { x in [(0..<count).map { i in
                let (a, b) = (Double(x[0][broadcastOffset(i, aShape, in: outShape)]), Double(x[1][broadcastOffset(i, bShape, in: outShape)]))
                switch op {
                case .add: return a + b
                case .subtract: return a - b
                case .multiply: return a * b
                case .divide: return a / b
                case .maximum: return max(a, b)
                case .minimum: return min(a, b)
                }
            }] })
        }
    }

    /// `permute` of `shape` against the index arithmetic: output axis j is input axis `permutation[j]`.
    private static func permuteRow(_ name: String = "permute", shape: [Int], permutation: [Int]) -> Row {
        let count = shape.reduce(1, *), output = permutation.map { shape[$0] }
        return Row(name, inputs: { r in [random(count, &r)] }, run: { d, x in
            let out = try d.makeBuffer(count: count)
            try d.permute(d.buffer(x[0]), shape: shape, permutation: permutation, into: out)
            return [try d.read(out, count: count)]
        }, reference: { x in [(0..<count).map { i in
            var (rest, at) = (i, [Int](repeating: 0, count: shape.count))
            for (axis, size) in output.enumerated().reversed() { (at[permutation[axis]], rest) = (rest % size, rest / size) }
            return Double(x[0][at.indices.reduce(0) { $0 * shape[$1] + at[$1] }])
        }] })
    }

    /// The offset in an operand of `shape` (right-aligned, size-1 axes repeated) of element `i` of `output`.
    private static func broadcastOffset(_ i: Int, _ shape: [Int], in output: [Int]) -> Int {
        var (rest, offset, stride) = (i, 0, 1)
        for (axis, size) in output.enumerated().reversed() {
            let coordinate = rest % size
            rest /= size
            let at = axis - (output.count - shape.count)
            guard at >= 0 else { continue }
            if shape[at] > 1 { offset += coordinate * stride }
            stride *= shape[at]
        }
        return offset
    }

    // MARK: Batch normalisation

    /// Channels last (NHWC rows, 29 × 7, and 45 × 70: two groups of channels on OpenCL, several blocks
    /// of rows) and channels first (3 × 7 × 9, as NCHW).
    static let normalization: [Row] = [("", AxisView(outer: 29, axis: 7)), (" (70 channels)", AxisView(outer: 45, axis: 70)),
                                       (" (channels first)", AxisView(outer: 3, axis: 7, inner: 9))].flatMap { label, view in
        let (n, c) = (view.count, view.axis)
        let inputs: @Sendable (inout RandomGenerator) -> [[Float]] = { r in
            [random(n, &r, -2...3), random(c, &r, 0.5...1.5), random(c, &r), random(c, &r), random(c, &r, 0.5...2), random(n, &r)]
        }
        return [
            Row("batchNormInference" + label, inputs: inputs, run: { d, x in
                let y = try d.makeBuffer(count: n)
                try d.batchNormInference(d.buffer(x[0]), view: view, gamma: d.buffer(x[1]), beta: d.buffer(x[2]), runningMean: d.buffer(x[3]),
                                         runningVariance: d.buffer(x[4]), epsilon: 1e-3, output: y)
                return [try d.read(y, count: n)]
            }, reference: { x in [(0..<n).map { i in
                let c = i / view.inner % view.axis
                return (Double(x[0][i]) - Double(x[3][c])) / (Double(x[4][c]) + 1e-3).squareRoot() * Double(x[1][c]) + Double(x[2][c])
            }] }),
            Row("batchNormTraining and backward" + label, tolerance: 2e-4, inputs: inputs, run: { d, x in
                let (y, mean, invStd) = (try d.makeBuffer(count: n), try d.makeBuffer(count: c), try d.makeBuffer(count: c))
                let (input, gamma, runningMean, runningVariance) = (try d.buffer(x[0]), try d.buffer(x[1]), try d.buffer(x[3]), try d.buffer(x[4]))
                try d.batchNormTraining(input, view: view, gamma: gamma, beta: d.buffer(x[2]), runningMean: runningMean, runningVariance: runningVariance,
                                        momentum: 0.9, epsilon: 1e-3, savedMean: mean, savedInvStd: invStd, output: y)
                let (dx, dGamma, dBeta) = (try d.makeBuffer(count: n), try d.makeBuffer(count: c), try d.makeBuffer(count: c))
                try d.batchNormBackward(input, gradOutput: d.buffer(x[5]), view: view, gamma: gamma, savedMean: mean, savedInvStd: invStd,
                                        gradInput: dx, gradGamma: dGamma, gradBeta: dBeta)
                return try [y, runningMean, runningVariance, dx, dGamma, dBeta].map { try d.read($0, count: $0 === y || $0 === dx ? n : c) }
            }),
        ]
    }

    // MARK: Recurrent cells

    static let recurrent: [Row] = [RecurrentStep.Cell.simpleRNN, .lstm, .gru].map { cell in
        Row("recurrentStep \(cell) forward and backward", inputs: { r in
            let step = RecurrentStep(cell: cell, batch: 3, units: 5, time: 0, length: 2)
            return [random(2 * 3 * step.width, &r), random(2 * 3 * step.width, &r), random(step.width, &r), random(3 * 3 * 5, &r),
                    random(3 * 3 * 5, &r), [1, 0, 1, 1, 1, 1], random(3 * 5, &r), random(3 * 5, &r), random(step.width, &r)]
        }, run: { d, x in
            let (gates, hidden) = (try d.buffer(x[0]), try d.buffer(x[3]))
            let recurrent = cell == .gru ? try d.buffer(x[1]) : nil, cellStates = cell == .lstm ? try d.buffer(x[4]) : nil
            let sequence = RecurrentSequence(gates: gates, inputBias: try d.buffer(x[8]), recurrent: recurrent,
                                             recurrentBias: cell == .gru ? try d.buffer(x[2]) : nil, hidden: hidden, cell: cellStates, mask: try d.buffer(x[5]))
            for t in 0..<2 { try d.recurrentStep(RecurrentStep(cell: cell, batch: 3, units: 5, time: t, length: 2), sequence) }
            let width = RecurrentStep(cell: cell, batch: 3, units: 5, time: 0, length: 2).width
            let gradients = RecurrentGradients(hidden: try d.buffer(x[6]), cell: cell == .lstm ? try d.buffer(x[7]) : nil,
                                               gates: try d.makeBuffer(count: 2 * 3 * width), recurrent: cell == .gru ? try d.makeBuffer(count: 2 * 3 * width) : nil)
            try d.recurrentStepBackward(RecurrentStep(cell: cell, batch: 3, units: 5, time: 1, length: 2), sequence, gradients: gradients)
            let tail = 3 * width ..< 6 * width
            return [try d.read(hidden, count: 45), try Array(d.read(gradients.gates, count: 6 * width)[tail]), try d.read(gradients.hidden, count: 15)]
                + (cell == .lstm ? [try d.read(cellStates!, count: 45), try d.read(gradients.cell!, count: 15)] : [])
                + (cell == .gru ? [try Array(d.read(gradients.recurrent!, count: 6 * width)[tail])] : [])
        })
    }

    /// The whole time loop with an input bias, a padded step and recurrent dropout, over more rows than one CPU block.
    static let recurrentSequences: [Row] = [RecurrentStep.Cell.simpleRNN, .lstm, .gru].map { cell in
        let step = RecurrentStep(cell: cell, batch: 17, units: 5, time: 0, length: 3)
        let (rows, states, steps) = (step.batch * step.units, 4 * step.batch * step.units, 3 * step.batch * step.width)
        return Row("recurrentForward and recurrentBackward \(cell)", inputs: { r in
            [random(steps, &r), random(states, &r), random(states, &r), random(step.units * step.width, &r), random(step.width, &r),
             random(3 * step.batch, &r).map { $0 > -0.7 ? 1 : 0 }, random(rows, &r).map { $0 > -0.6 ? 1.25 : 0 }, random(3 * rows, &r), random(rows, &r),
             random(step.width, &r)]
        }, run: { d, x in
            let hidden = try d.buffer(x[1]), cellStates = cell == .lstm ? try d.buffer(x[2]) : nil
            let dropped = try d.buffer(zip(x[1], x[6] + Array(repeating: 0, count: 3 * rows)).map(*))
            let sequence = RecurrentSequence(gates: try d.buffer(x[0]), inputBias: try d.buffer(x[9]),
                                             recurrent: cell == .gru ? try d.makeBuffer(count: steps) : nil,
                                             recurrentBias: cell == .gru ? try d.buffer(x[4]) : nil, hidden: hidden, cell: cellStates,
                                             mask: try d.buffer(x[5]), dropoutMask: try d.buffer(x[6]), dropped: dropped)
            let kernel = try d.buffer(x[3])
            try d.recurrentForward(step, sequence, recurrentKernel: kernel)
            let gradients = RecurrentGradients(output: try d.buffer(x[7]), hidden: try d.buffer(repeating: 0, count: rows),
                                               cell: cell == .lstm ? try d.buffer(x[8]) : nil, gates: try d.makeBuffer(count: steps),
                                               recurrent: cell == .gru ? try d.makeBuffer(count: steps) : nil,
                                               through: try d.buffer(repeating: 0, count: rows))
            try d.recurrentBackward(step, sequence, recurrentKernel: kernel, gradients: gradients)
            return try [d.read(hidden, count: states), d.read(gradients.gates, count: steps), d.read(gradients.hidden, count: rows),
                        d.read(gradients.through!, count: rows)]
                + (cell == .lstm ? [try d.read(cellStates!, count: states), try d.read(gradients.cell!, count: rows)] : [])
        })
    }

    // MARK: Optimizer updates

    /// Two steps of each rule over 18 weights of odd sizes at once: more than one launch of the
    /// multi-tensor kernels (16 weights each), a one-element weight among them, and enough elements
    /// that the CPU's threads split the weights laid end to end (some in the middle of a weight).
    static let training: [Row] = [UpdateRule.sgd(momentum: 0.9, nesterov: true), .sgd(momentum: 0, nesterov: false),
                                  .rmsprop(rho: 0.9, momentum: 0.5, epsilon: 1e-7), .adam(beta1: 0.9, beta2: 0.999, epsilon: 1e-7)].map { rule in
        let sizes = [77, 1, 130, 5, 33, 2, 64, 9, 70_001, 17, 3, 40, 11, 128, 7, 1, 29, 250]
        @Sendable func update(_ step: Int) -> Update { Update(rule: rule, learningRate: 0.01, weightDecay: 0.001, step: step) }
        return Row("applyUpdate \(rule) ×\(sizes.count)", inputs: { r in
            sizes.flatMap { n in [random(n, &r), random(n, &r), random(n, &r, 0...1), random(n, &r, 0...1)] }
        }, run: { d, x in
            let targets = try sizes.indices.map { t in
                UpdateTarget(parameter: try d.buffer(x[4 * t]), gradient: try d.buffer(x[4 * t + 1]),
                             slots: try (0..<rule.slotCount).map { try d.buffer(x[4 * t + 2 + $0]) }, count: sizes[t])
            }
            for step in 1...2 { try d.applyUpdate(update(step), to: targets) }
            return try targets.flatMap { t in try [d.read(t.parameter, count: t.count)] + t.slots.map { try d.read($0, count: t.count) } }
        }, reference: { x in
            sizes.indices.flatMap { t -> [[Double]] in
                var w = x[4 * t].map(Double.init)
                let g = x[4 * t + 1].map(Double.init)  // the same gradient both steps
                var (s0, s1) = (x[4 * t + 2].map(Double.init), x[4 * t + 3].map(Double.init))
                let (lr, decay) = (0.01, 1 - 0.01 * 0.001)
                for step in 1...2 {
                    for i in w.indices {
                        switch rule {
                        case .sgd(let momentum, let nesterov):
                            w[i] *= decay
                            guard momentum > 0 else { w[i] -= lr * g[i]; continue }
                            s0[i] = Double(momentum) * s0[i] - lr * g[i]
                            w[i] += nesterov ? Double(momentum) * s0[i] - lr * g[i] : s0[i]
                        case .rmsprop(let rho, let momentum, let epsilon):
                            s0[i] = Double(rho) * s0[i] + (1 - Double(rho)) * g[i] * g[i]
                            let change = lr * g[i] / (s0[i] + Double(epsilon)).squareRoot()
                            w[i] *= decay
                            guard momentum > 0 else { w[i] -= change; continue }
                            s1[i] = Double(momentum) * s1[i] + change
                            w[i] -= s1[i]
                        case .adam(let beta1, let beta2, let epsilon):
                            let (b1, b2) = (Double(beta1), Double(beta2))
                            s0[i] += (g[i] - s0[i]) * (1 - b1)
                            s1[i] += (g[i] * g[i] - s1[i]) * (1 - b2)
                            let size = lr * (1 - pow(b2, Double(step))).squareRoot() / (1 - pow(b1, Double(step)))
                            w[i] = w[i] * decay - size * s0[i] / (s1[i].squareRoot() + Double(epsilon))
                        }
                    }
                }
                return [w, s0, s1].prefix(1 + rule.slotCount).map { $0 }
            }
        })
    }
}
