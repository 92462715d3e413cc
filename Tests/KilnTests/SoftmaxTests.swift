import Foundation
import Testing
@testable import Kiln

@Suite("Softmax and cross-entropy") struct SoftmaxTests {
    static func logSoftmax(_ row: ArraySlice<Float>) -> [Double] {
        let peak = Double(row.max()!)
        let logSum = peak + Foundation.log(row.reduce(0.0) { $0 + Foundation.exp(Double($1) - peak) })
        return row.map { Double($0) - logSum }
    }

    @Test(arguments: Backend.all, [false, true])
    func softmax(_ backend: Backend, log: Bool) throws {
        let device = backend.device
        var random = Random("softmax\(log)")
        let (rows, columns) = (7, 13)
        let x = random.floats(rows * columns, -4...4), dy = random.floats(rows * columns)
        let yb = try device.makeBuffer(count: rows * columns)
        try device.softmax(device.buffer(x), rows: rows, columns: columns, log: log, into: yb)
        let reference = (0..<rows).flatMap { Self.logSoftmax(x[$0 * columns ..< ($0 + 1) * columns]) }
        expectClose(try device.read(yb), log ? reference : reference.map(Foundation.exp), "\(log ? "log-" : "")softmax")
        let dx = try device.output(rows * columns) {
            try device.softmaxBackward(output: yb, gradOutput: device.buffer(dy), rows: rows, columns: columns, log: log, gradInput: $0)
        }
        let y = try device.read(yb).map(Double.init)
        expectClose(dx, (0..<rows * columns).map { i in
            let row = (i / columns) * columns
            let sum = (row..<row + columns).reduce(0.0) { $0 + Double(dy[$1]) * (log ? 1 : y[$1]) }
            return log ? Double(dy[i]) - Foundation.exp(y[i]) * sum : y[i] * (Double(dy[i]) - sum)
        }, "softmax backward", tolerance: 1e-3)
        try expectGradient(at: x, gradient: dx, "softmax backward") { x in
            dot(try device.output(rows * columns) { try device.softmax(device.buffer(x), rows: rows, columns: columns, log: log, into: $0) }, dy)
        }
    }

    @Test(arguments: Backend.all, [false, true])
    func crossEntropy(_ backend: Backend, sparse: Bool) throws {
        let device = backend.device
        var random = Random("xent\(sparse)")
        let (rows, columns) = (9, 11)
        let x = random.floats(rows * columns, -4...4)
        let labels = (0..<rows).map { _ in Int32(random.int(columns)) }
        // Soft targets: a random distribution per row.
        let soft = (0..<rows).flatMap { _ -> [Float] in let r = random.floats(columns, 0...1); let s = r.reduce(0, +); return r.map { $0 / s } }
        func targets() throws -> Targets { sparse ? .sparse(try device.buffer(ints: labels)) : .dense(try device.buffer(soft)) }

        var expected = 0.0
        for r in 0..<rows {
            let logP = Self.logSoftmax(x[r * columns ..< (r + 1) * columns])
            expected -= sparse ? logP[Int(labels[r])] : (0..<columns).reduce(0.0) { $0 + Double(soft[r * columns + $1]) * logP[$1] }
        }
        expected /= Double(rows)

        let loss = try device.makeBuffer(count: 1)
        let grad = try device.makeBuffer(count: rows * columns)
        try device.softmaxCrossEntropy(logits: device.buffer(x), targets: targets(), rows: rows, columns: columns, loss: loss, gradLogits: grad)
        expectClose(try device.read(loss), [expected], "cross-entropy loss")
        let expectedGradient = (0..<rows).flatMap { r in
            let p = Self.logSoftmax(x[r * columns ..< (r + 1) * columns]).map(Foundation.exp)
            return (0..<columns).map { j in
                (p[j] - (sparse ? (j == Int(labels[r]) ? 1 : 0) : Double(soft[r * columns + j]))) / Double(rows)
            }
        }
        expectClose(try device.read(grad), expectedGradient, "cross-entropy gradient")
        try expectGradient(at: x, gradient: try device.read(grad), "cross-entropy") { x in
            let l = try device.makeBuffer(count: 1)
            try device.softmaxCrossEntropy(logits: device.buffer(x), targets: targets(), rows: rows, columns: columns, loss: l, gradLogits: nil)
            return Double(try device.read(l)[0])
        }
    }

    @Test(arguments: Backend.all)
    func labelOutOfRangeGivesNaNLoss(_ backend: Backend) throws {
        let device = backend.device
        let loss = try device.makeBuffer(count: 1)
        try device.softmaxCrossEntropy(logits: device.buffer([0, 1, 2, 3]), targets: .sparse(device.buffer(ints: [0, 7])),
                                       rows: 2, columns: 2, loss: loss, gradLogits: nil)
        #expect(try device.read(loss)[0].isNaN)
    }
}
