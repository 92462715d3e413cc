import CKernels
import Foundation

/// Elementwise ops, reductions, dropout and the softmax family on the CPU.
extension CPUDevice {
    public func unary(_ op: UnaryOp, _ input: Buffer, into output: Buffer, count: Int) throws {
        try require(input, count, "unary input")
        try require(output, count, "unary output")
        let (x, y) = (input.host, output.host)
        parallelFor(count) { range in
            switch op {
            case .relu: kiln_relu(x + range.lowerBound, y + range.lowerBound, range.count)
            case .leakyRelu(let slope): kiln_activation(Int32(KILN_LEAKY_RELU), x + range.lowerBound, y + range.lowerBound, slope, range.count)
            case .sigmoid: for i in range { y[i] = 1 / (1 + Foundation.exp(-x[i])) }
            case .tanh: for i in range { y[i] = Foundation.tanh(x[i]) }
            case .exp: for i in range { y[i] = Foundation.exp(x[i]) }
            case .log: for i in range { y[i] = Foundation.log(x[i]) }
            case .sqrt: for i in range { y[i] = x[i].squareRoot() }
            case .square: for i in range { y[i] = x[i] * x[i] }
            case .abs: for i in range { y[i] = Swift.abs(x[i]) }
            case .negate: for i in range { y[i] = -x[i] }
            case .softplus: for i in range { y[i] = max(x[i], 0) + log1p(Foundation.exp(-Swift.abs(x[i]))) }
            case .step: for i in range { y[i] = x[i] > 0 ? 1 : 0 }
            case .cappedRelu(let cap): kiln_activation(Int32(KILN_CAPPED_RELU), x + range.lowerBound, y + range.lowerBound, cap, range.count)
            }
        }
    }

    public func unaryBackward(_ op: UnaryOp, input: Buffer, output: Buffer, gradOutput: Buffer, gradInput: Buffer,
                              count: Int) throws {
        for (buffer, name) in [(input, "input"), (output, "output"), (gradOutput, "gradOutput"), (gradInput, "gradInput")] {
            try require(buffer, count, "unaryBackward \(name)")
        }
        let (x, y, dy, dx) = (input.host, output.host, gradOutput.host, gradInput.host)
        parallelFor(count) { range in
            func activationBackward(_ code: Int, _ a: Float = 0) {
                let at = range.lowerBound
                kiln_activation_backward(Int32(code), x + at, y + at, dy + at, dx + at, a, range.count)
            }
            switch op {
            case .relu: kiln_relu_backward(x + range.lowerBound, dy + range.lowerBound, dx + range.lowerBound, range.count)
            case .leakyRelu(let slope): activationBackward(KILN_LEAKY_RELU, slope)
            case .sigmoid: activationBackward(KILN_SIGMOID)
            case .tanh: activationBackward(KILN_TANH)
            case .exp: for i in range { dx[i] = dy[i] * y[i] }
            case .log: for i in range { dx[i] = dy[i] / x[i] }
            case .sqrt: for i in range { dx[i] = dy[i] * 0.5 / y[i] }
            case .square: for i in range { dx[i] = dy[i] * 2 * x[i] }
            case .abs: for i in range { dx[i] = x[i] > 0 ? dy[i] : (x[i] < 0 ? -dy[i] : 0) }
            case .negate: for i in range { dx[i] = -dy[i] }
            case .softplus: for i in range { dx[i] = dy[i] / (1 + Foundation.exp(-x[i])) }
            case .step: for i in range { dx[i] = 0 }
            case .cappedRelu(let cap): activationBackward(KILN_CAPPED_RELU, cap)
            }
        }
    }

    public func binary(_ op: BinaryOp, _ a: Buffer, shape aShape: [Int], _ b: Buffer, shape bShape: [Int],
                       into output: Buffer, shape outputShape: [Int]) throws {
        let index = try StridedIndex(broadcasting: aShape, bShape, to: outputShape)
        try require(a, aShape.reduce(1, *), "binary a")
        try require(b, bShape.reduce(1, *), "binary b")
        try require(output, index.count, "binary output")
        let (x, z, y) = (a.host, b.host, output.host)
        let code = switch op {
        case .add: KILN_ADD
        case .subtract: KILN_SUBTRACT
        case .multiply: KILN_MULTIPLY
        case .divide: KILN_DIVIDE
        case .maximum: KILN_MAXIMUM
        case .minimum: KILN_MINIMUM
        }
        let (whole, aPeriod, bPeriod) = (index.count, Self.period(of: aShape, in: outputShape), Self.period(of: bShape, in: outputShape))
        if let aPeriod, let bPeriod, aPeriod == whole || bPeriod == whole {
            return parallelFor(whole) { range in kiln_binary(Int32(code), x, aPeriod, z, bPeriod, y, range.lowerBound, range.upperBound) }
        }
        // Any other broadcast (a middle axis repeated): row by row along the last axis, which each
        // operand holds whole or repeats; rows too short for that, element by element.
        let n = Int(index.shape.last!), (aRun, bRun) = (index.strides[0].last == 1 ? n : 1, index.strides[1].last == 1 ? n : 1)
        if stridedRows(index, { row, o in kiln_binary(Int32(code), x + o.0, aRun, z + o.1, bRun, y + row * n, 0, n) }) { return }
        let apply: (Float, Float) -> Float = switch op {
        case .add: (+)
        case .subtract: (-)
        case .multiply: (*)
        case .divide: (/)
        case .maximum: { max($0, $1) }
        case .minimum: { min($0, $1) }
        }
        stridedLoop(index) { i, offsets in y[i] = apply(x[offsets.0], z[offsets.1]) }
    }

    /// The element count of `shape` when it broadcasts to `output` by repeating whole (a scalar, or
    /// the trailing axes of `output` after leading 1s), else nil.
    private static func period(of shape: [Int], in output: [Int]) -> Int? {
        let trailing = shape.drop { $0 == 1 }
        return trailing.count <= output.count && output.suffix(trailing.count).elementsEqual(trailing) ? max(trailing.reduce(1, *), 1) : nil
    }

    public func affine(_ input: Buffer, scale: Float, shift: Float, into output: Buffer, count: Int) throws {
        try require(input, count, "affine input")
        try require(output, count, "affine output")
        let (x, y) = (input.host, output.host)
        parallelFor(count) { range in for i in range { y[i] = scale * x[i] + shift } }
    }

    public func addBias(_ input: Buffer, _ bias: Buffer, view: AxisView, into output: Buffer) throws {
        try require(input, view.count, "addBias input")
        try require(bias, view.axis, "addBias bias")
        try require(output, view.count, "addBias output")
        let (x, b, y) = (input.host, bias.host, output.host)
        let (axis, inner) = (view.axis, view.inner)
        parallelFor(view.outer, grain: max(1, 32768 / (axis * inner))) { range in
            for o in range {
                if inner == 1 {  // channels last: add the bias row (vectorises)
                    let (row, out) = (x + o * axis, y + o * axis)
                    for c in 0..<axis { out[c] = row[c] + b[c] }
                    continue
                }
                for c in 0..<axis {
                    let base = (o * axis + c) * inner
                    for i in 0..<inner { y[base + i] = x[base + i] + b[c] }
                }
            }
        }
    }

    public func reduce(_ op: ReduceOp, _ input: Buffer, view: AxisView, into output: Buffer) throws {
        try require(input, view.count, "reduce input")
        try require(output, view.resultCount, "reduce output")
        let (x, y) = (input.host, output.host)
        let (axis, inner) = (view.axis, view.inner)
        parallelFor(view.outer, grain: max(1, 32768 / max(1, axis * inner))) { range in
            for o in range {
                let out = y + o * inner, rows = x + o * axis * inner
                out.update(from: rows, count: inner)
                for a in 1..<max(axis, 1) {
                    let row = rows + a * inner
                    if op == .max { for i in 0..<inner { out[i] = max(out[i], row[i]) } }
                    else { for i in 0..<inner { out[i] += row[i] } }
                }
                if op == .mean { for i in 0..<inner { out[i] /= Float(axis) } }
            }
        }
    }

    public func argmax(_ input: Buffer, view: AxisView, into output: Buffer) throws {
        try require(input, view.count, "argmax input")
        try require(output, view.resultCount, "argmax output")
        let (x, y) = (input.host, output.hostInts)
        for o in 0..<view.outer {
            for i in 0..<view.inner {
                var best = 0
                for a in 1..<max(view.axis, 1) where x[(o * view.axis + a) * view.inner + i] > x[(o * view.axis + best) * view.inner + i] {
                    best = a
                }
                y[o * view.inner + i] = Int32(best)
            }
        }
    }

    public func dropout(_ input: Buffer, rate: Float, seed: UInt64, offset: UInt64, into output: Buffer, count: Int) throws {
        guard rate >= 0, rate < 1 else { throw DeviceError.invalidArgument("dropout: rate must be in [0, 1), got \(rate)") }
        try require(input, count, "dropout input")
        try require(output, count, "dropout output")
        let (x, y) = (input.host, output.host)
        parallelFor(count, grain: 8192) { range in
            kiln_dropout(x + range.lowerBound, y + range.lowerBound, range.count, rate, UInt(seed), UInt(offset) &+ UInt(range.lowerBound))
        }
    }

    public func fillRandom(_ buffer: Buffer, distribution: RandomDistribution, seed: UInt64, offset: UInt64, count: Int) throws {
        try distribution.validate()
        try require(buffer, count, "fillRandom buffer")
        let (y, (a, b)) = (buffer.host, distribution.parameters)
        parallelFor(count, grain: 8192) { range in
            kiln_fill_random(y + range.lowerBound, range.count, distribution.code, a, b, UInt(seed), UInt(offset) &+ UInt(range.lowerBound))
        }
    }

    public func softmax(_ input: Buffer, rows: Int, columns: Int, log: Bool, into output: Buffer) throws {
        try require(input, rows * columns, "softmax input")
        try require(output, rows * columns, "softmax output")
        let (x, y) = (input.host, output.host)
        parallelFor(rows, grain: max(1, 16384 / columns)) { range in
            for r in range {
                let (row, out) = (x + r * columns, y + r * columns)
                var peak = -Float.infinity
                for j in 0..<columns { peak = max(peak, row[j]) }
                var sum: Float = 0
                for j in 0..<columns { out[j] = Foundation.exp(row[j] - peak); sum += out[j] }
                if log { let shift = peak + Foundation.log(sum); for j in 0..<columns { out[j] = row[j] - shift } }
                else { for j in 0..<columns { out[j] /= sum } }
            }
        }
    }

    public func softmaxBackward(output: Buffer, gradOutput: Buffer, rows: Int, columns: Int, log: Bool,
                                gradInput: Buffer) throws {
        for (buffer, name) in [(output, "output"), (gradOutput, "gradOutput"), (gradInput, "gradInput")] {
            try require(buffer, rows * columns, "softmaxBackward \(name)")
        }
        let (y, dy, dx) = (output.host, gradOutput.host, gradInput.host)
        parallelFor(rows, grain: max(1, 16384 / columns)) { range in
            for r in range {
                let base = r * columns
                var dot: Float = 0
                for j in base..<base + columns { dot += log ? dy[j] : dy[j] * y[j] }
                for j in base..<base + columns {
                    dx[j] = log ? dy[j] - Foundation.exp(y[j]) * dot : y[j] * (dy[j] - dot)
                }
            }
        }
    }

    public func softmaxCrossEntropy(logits: Buffer, targets: Targets, rows: Int, columns: Int,
                                    loss: Buffer, gradLogits: Buffer?) throws {
        try require(logits, rows * columns, "softmaxCrossEntropy logits")
        try require(loss, 1, "softmaxCrossEntropy loss")
        if let gradLogits { try require(gradLogits, rows * columns, "softmaxCrossEntropy gradLogits") }
        try targets.validate(rows: rows, columns: columns, "softmaxCrossEntropy")
        let x = logits.host
        var total = 0.0
        for r in 0..<rows {
            let row = x + r * columns
            var peak = -Float.infinity
            for j in 0..<columns { peak = max(peak, row[j]) }
            var sum: Float = 0
            for j in 0..<columns { sum += Foundation.exp(row[j] - peak) }
            let logSum = peak + Foundation.log(sum)
            // target(j) is the probability the target puts on class j.
            let target: (Int) -> Float
            switch targets {
            case .sparse(let labels):
                let label = Int(labels.hostInts[r])
                target = { $0 == label ? 1 : 0 }
                total += label >= 0 && label < columns ? Double(logSum - row[label]) : .nan
            case .dense(let probabilities):
                let p = probabilities.host + r * columns
                target = { p[$0] }
                for j in 0..<columns where p[j] != 0 { total += Double(p[j] * (logSum - row[j])) }
            }
            if let gradLogits {
                let g = gradLogits.host + r * columns
                for j in 0..<columns { g[j] = (Foundation.exp(row[j] - logSum) - target(j)) / Float(rows) }
            }
        }
        loss.host[0] = Float(total / Double(rows))
    }

    public func topKHits(scores: Buffer, targets: Targets, rows: Int, columns: Int, k: Int, into output: Buffer) throws {
        try require(scores, rows * columns, "topKHits scores")
        try require(output, rows, "topKHits output")
        try targets.validate(rows: rows, columns: columns, "topKHits")
        let x = scores.host
        for r in 0..<rows {
            let row = x + r * columns
            let target: Int
            switch targets {
            case .sparse(let labels): target = Int(labels.hostInts[r])
            case .dense(let probabilities):
                let t = probabilities.host + r * columns
                target = (0..<columns).reduce(0) { t[$1] > t[$0] ? $1 : $0 }
            }
            guard target >= 0, target < columns else { output.host[r] = 0; continue }
            let above = (0..<columns).reduce(0) { $0 + (row[$1] > row[target] ? 1 : 0) }
            output.host[r] = above < k ? 1 : 0
        }
    }
}
