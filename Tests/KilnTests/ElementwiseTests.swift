import Foundation
import Testing
@testable import Kiln

@Suite("Elementwise, reductions, dropout") struct ElementwiseTests {
    static let unaryOps: [UnaryOp] = [.relu, .leakyRelu(slope: 0.3), .sigmoid, .tanh, .exp, .log, .sqrt, .square, .abs, .negate, .softplus, .step, .cappedRelu(max: 1.5)]

    static func reference(_ op: UnaryOp, _ x: Double) -> Double {
        switch op {
        case .relu: max(x, 0)
        case .leakyRelu(let slope): x > 0 ? x : Double(slope) * x
        case .sigmoid: 1 / (1 + Foundation.exp(-x))
        case .tanh: Foundation.tanh(x)
        case .exp: Foundation.exp(x)
        case .log: Foundation.log(x)
        case .sqrt: x.squareRoot()
        case .square: x * x
        case .abs: Swift.abs(x)
        case .negate: -x
        case .softplus: Foundation.log(1 + Foundation.exp(x))
        case .step: x > 0 ? 1 : 0
        case .cappedRelu(let cap): min(max(x, 0), Double(cap))
        }
    }

    static func derivative(_ op: UnaryOp, _ x: Double) -> Double {
        switch op {
        case .relu: x > 0 ? 1 : 0
        case .leakyRelu(let slope): x > 0 ? 1 : Double(slope)
        case .sigmoid: reference(.sigmoid, x) * (1 - reference(.sigmoid, x))
        case .tanh: 1 - Foundation.tanh(x) * Foundation.tanh(x)
        case .exp: Foundation.exp(x)
        case .log: 1 / x
        case .sqrt: 0.5 / x.squareRoot()
        case .square: 2 * x
        case .abs: x > 0 ? 1 : -1
        case .negate: -1
        case .softplus: reference(.sigmoid, x)
        case .step: 0
        case .cappedRelu(let cap): x > 0 && x < Double(cap) ? 1 : 0
        }
    }

    @Test(arguments: Backend.all, unaryOps)
    func unary(_ backend: Backend, op: UnaryOp) throws {
        let device = backend.device
        var random = Random("unary\(op)")
        let count = 1237
        // log and sqrt need positive inputs; keep the others away from their kinks at 0 (and the cap).
        let cap: Float = if case .cappedRelu(let cap) = op { cap } else { .infinity }
        let x = random.floats(count, -3...3).map { op == .log || op == .sqrt ? Swift.abs($0) + 0.1 : ($0 < 0 ? $0 - 0.05 : $0 + 0.05) }
            .map { Swift.abs($0 - cap) < 0.05 ? $0 + 0.1 : $0 }
        let dy = random.floats(count)
        let (xb, dyb) = (try device.buffer(x), try device.buffer(dy))
        let yb = try device.makeBuffer(count: count)
        try device.unary(op, xb, into: yb, count: count)
        expectClose(try device.read(yb), x.map { Self.reference(op, Double($0)) }, "\(op) forward")
        let dx = try device.output(count) { try device.unaryBackward(op, input: xb, output: yb, gradOutput: dyb, gradInput: $0, count: count) }
        expectClose(dx, x.indices.map { Double(dy[$0]) * Self.derivative(op, Double(x[$0])) }, "\(op) backward")
        try expectGradient(at: x, gradient: dx, "\(op)") { x in
            dot(try device.output(count) { try device.unary(op, device.buffer(x), into: $0, count: count) }, dy)
        }
    }

    @Test(arguments: Backend.all, BinaryOp.allCases)
    func binaryBroadcasting(_ backend: Backend, op: BinaryOp) throws {
        let device = backend.device
        var random = Random("binary\(op)")
        func apply(_ a: Double, _ b: Double) -> Double {
            switch op {
            case .add: a + b
            case .subtract: a - b
            case .multiply: a * b
            case .divide: a / b
            case .maximum: max(a, b)
            case .minimum: min(a, b)
            }
        }
        // Rows of 11 and 13 (≥ 8) run row by row on the CPU, shorter ones element by element.
        let cases: [([Int], [Int], [Int])] = [([3, 5, 7], [3, 5, 7], [3, 5, 7]), ([3, 1, 7], [5, 1], [3, 5, 7]), ([7], [3, 5, 1], [3, 5, 7]), ([1], [2, 3], [2, 3]),
                                              ([3], [3], [2, 3]), ([1], [1], [4]), ([3, 1, 11], [5, 1], [3, 5, 11]), ([4, 1, 13], [4, 6, 13], [4, 6, 13]),
                                              ([2, 1, 3, 1, 13], [5, 3, 1, 13], [2, 5, 3, 1, 13]),
                                              ([1], [1], [12]), ([1], [3, 1, 1], [3, 5, 11])]
        for (aShape, bShape, outShape) in cases {
            let a = random.floats(aShape.reduce(1, *)), b = random.floats(bShape.reduce(1, *), 0.5...2)
            let y = try device.output(outShape.reduce(1, *)) {
                try device.binary(op, device.buffer(a), shape: aShape, device.buffer(b), shape: bShape, into: $0, shape: outShape)
            }
            let index = try StridedIndex(broadcasting: aShape, bShape, to: outShape)
            var reference: [Double] = []
            for i in 0..<y.count {
                var (rest, ia, ib) = (i, 0, 0)
                for axis in (0..<StridedIndex.maxRank).reversed() {
                    let coordinate = rest % Int(index.shape[axis])
                    rest /= Int(index.shape[axis])
                    ia += coordinate * Int(index.strides[0][axis]); ib += coordinate * Int(index.strides[1][axis])
                }
                reference.append(apply(Double(a[ia]), Double(b[ib])))
            }
            expectClose(y, reference, "\(op) \(aShape) ∘ \(bShape)")
        }
        #expect(throws: DeviceError.self) {
            let buffer = try device.makeBuffer(count: 12)
            try device.binary(op, buffer, shape: [3, 4], buffer, shape: [4, 3], into: buffer, shape: [3, 4])
        }
    }

    @Test(arguments: Backend.all)
    func affineAndBias(_ backend: Backend) throws {
        let device = backend.device
        var random = Random("affine")
        let view = AxisView(outer: 3, axis: 7, inner: 5)
        let x = random.floats(view.count), bias = random.floats(view.axis)
        let y = try device.output(view.count) { try device.affine(device.buffer(x), scale: 1.5, shift: -0.25, into: $0, count: view.count) }
        expectClose(y, x.map { 1.5 * Double($0) - 0.25 }, "affine")
        let z = try device.output(view.count) { try device.addBias(device.buffer(x), device.buffer(bias), view: view, into: $0) }
        expectClose(z, x.indices.map { Double(x[$0]) + Double(bias[($0 / view.inner) % view.axis]) }, "addBias")
    }

    @Test(arguments: Backend.all, ReduceOp.allCases)
    func reduce(_ backend: Backend, op: ReduceOp) throws {
        let device = backend.device
        var random = Random("reduce\(op)")
        for view in [AxisView(outer: 3, axis: 7, inner: 5), AxisView(outer: 1, axis: 1001), AxisView(outer: 11, axis: 1, inner: 3)] {
            // Positive inputs: a sum that cancels to near zero has no meaningful relative error.
            let x = random.floats(view.count, 0.5...1.5)
            let y = try device.output(view.resultCount) { try device.reduce(op, device.buffer(x), view: view, into: $0) }
            let reference = (0..<view.resultCount).map { r -> Double in
                let values = (0..<view.axis).map { Double(x[((r / view.inner) * view.axis + $0) * view.inner + r % view.inner]) }
                switch op {
                case .sum: return values.reduce(0, +)
                case .mean: return values.reduce(0, +) / Double(view.axis)
                case .max: return values.max()!
                }
            }
            expectClose(y, reference, "\(op) over \(view)")
            if op == .max {
                let indices = try device.readInts(try { let b = try device.makeBuffer(count: view.resultCount)
                    try device.argmax(device.buffer(x), view: view, into: b); return b }())
                let expected = (0..<view.resultCount).map { r in
                    Int32((0..<view.axis).max { x[((r / view.inner) * view.axis + $0) * view.inner + r % view.inner]
                        < x[((r / view.inner) * view.axis + $1) * view.inner + r % view.inner] }!)
                }
                #expect(indices == expected, "argmax over \(view)")
            }
        }
    }

    @Test func philoxMatchesPublishedVectors() {
        // Known-answer vectors of Random123's kat_vectors for philox4x32-10.
        let zero = Philox.block((0, 0, 0, 0), key: (0, 0))
        #expect([zero.0, zero.1, zero.2, zero.3] == [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8])
        let pi = Philox.block((0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344), key: (0xa409_3822, 0x299f_31d0))
        #expect([pi.0, pi.1, pi.2, pi.3] == [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1])
        #expect(Philox.word(seed: 0, counter: 0) == zero.0)
    }

    @Test func dropoutMaskIsTheSameOnEveryDevice() throws {
        let count = 4099, rate: Float = 0.3
        var random = Random("dropout")
        let x = random.floats(count)
        // The second stream uses both key words and its counters cross 2^32.
        for (seed, offset) in [(UInt64(42), UInt64(7)), (0x1234_5678_9abc_def0, 0xffff_f000)] {
            let outputs = try Backend.all.map { backend in
                try backend.device.output(count) {
                    try backend.device.dropout(backend.device.buffer(x), rate: rate, seed: seed, offset: offset, into: $0, count: count)
                }
            }
            let expected = x.indices.map { Philox.uniform(seed: seed, counter: offset + UInt64($0)) >= rate ? x[$0] * (1 / (1 - rate)) : 0 }
            for output in outputs { #expect(output == expected) }
        }
        let expected = x.indices.map { Philox.uniform(seed: 42, counter: 7 + UInt64($0)) >= rate ? x[$0] * (1 / (1 - rate)) : 0 }
        let dropped = Double(expected.filter { $0 == 0 }.count) / Double(count)
        #expect(abs(dropped - Double(rate)) < 0.03, "dropped fraction \(dropped)")
    }

    @Test func randomFillsDrawPhiloxsStreamOnEveryDevice() throws {
        let count = 3001
        var random = Random("fillRandom")
        let seed = random.next(), offset = UInt64(0xffff_ff00)
        for backend in Backend.all {
            let uniform = try backend.device.output(count) {
                try backend.device.fillRandom($0, distribution: .uniform(low: -2, high: 3), seed: seed, offset: offset, count: count)
            }
            // The draws are Philox's bits exactly; `low + width · u` may round either way (FMA or not).
            let uniformError = (0..<count).map { abs(Double(uniform[$0]) - (-2 + 5 * Double(Philox.uniform(seed: seed, counter: offset + UInt64($0))))) }.max()!
            #expect(uniformError < 5e-7, "\(backend): uniform draws differ from Philox's by \(uniformError)")
            #expect(uniform.allSatisfy { $0 >= -2 && $0 < 3 })
            let normal = try backend.device.output(count) {
                try backend.device.fillRandom($0, distribution: .normal(mean: 1, standardDeviation: 0.5), seed: seed, offset: offset, count: count)
            }
            let expected = (0..<count).map { 1 + 0.5 * Philox.normal(seed: seed, counter: offset + UInt64($0)) }
            let worst = zip(normal, expected).map { abs(Double($0) - $1) }.max()!
            #expect(worst < 1e-5, "\(backend): normal draws differ from the float64 reference by \(worst)")
            let mean = normal.map(Double.init).reduce(0, +) / Double(count)
            let variance = normal.map { (Double($0) - mean) * (Double($0) - mean) }.reduce(0, +) / Double(count)
            #expect(abs(mean - 1) < 0.05 && abs(variance.squareRoot() - 0.5) < 0.05, "mean \(mean), variance \(variance)")
        }
        #expect(throws: DeviceError.self) {
            try CPUDevice.shared.fillRandom(CPUDevice.shared.makeBuffer(count: 4), distribution: .uniform(low: 1, high: 0), seed: 0, offset: 0, count: 4)
        }
    }

    @Test(arguments: Backend.all)
    func dropoutRejectsBadRate(_ backend: Backend) throws {
        let buffer = try backend.device.makeBuffer(count: 4)
        #expect(throws: DeviceError.self) { try backend.device.dropout(buffer, rate: 1, seed: 0, offset: 0, into: buffer, count: 4) }
    }
}
