import Foundation
import Testing
@testable import Kiln

/// The composed tensor ops against float64 references, gradients by finite differences.
@Suite("Composite tensor ops") struct CompositeTests {
    @Test(arguments: Backend.all)
    func comparisonsWhereSignArgmax(_ backend: Backend) throws {
        let d = backend.device
        let a = try Tensor([1, -2, 3, 0, 5, 5], shape: [2, 3], on: d), b = try Tensor([0, -2, 4], shape: [3], on: d)
        #expect(try a.greater(than: b).toArray() == [1, 0, 0, 0, 1, 1])
        #expect(try a.less(than: b).toArray() == [0, 0, 1, 0, 0, 0])
        #expect(try a.equal(to: b).toArray() == [0, 1, 0, 1, 0, 0])
        #expect(try a.sign().toArray() == [1, -1, 1, 0, 1, 1])
        #expect(try Tensor.where(a.greater(than: b), a, b.broadcast(to: [2, 3])).toArray() == [1, -2, 4, 0, 5, 5])
        #expect(try a.argmax(axis: 1).toArray() == [2, 1], "the first of tied maxima")
        #expect(try a.argmax(axis: 0).toArray() == [0, 1, 1])
        #expect(try a.clamped(min: 0, max: 4).toArray() == [1, 0, 3, 0, 4, 4])
    }

    @Test(arguments: Backend.all)
    func reductionsOverAxes(_ backend: Backend) throws {
        var random = Random("axes")
        let shape = [3, 4, 5], values = random.floats(60)
        let x = try Tensor(values, shape: shape, on: backend.device)
        func at(_ i: Int, _ j: Int, _ k: Int) -> Double { Double(values[(i * 4 + j) * 5 + k]) }
        let sum02 = (0..<4).map { j in (0..<3).reduce(0.0) { s, i in (0..<5).reduce(s) { $0 + at(i, j, $1) } } }
        let reduced = try x.reduce(.sum, axes: [0, -1])
        #expect(reduced.shape == [4])
        expectClose(try reduced.toArray(), sum02, "sum over axes 0 and 2")
        #expect(try x.reduce(.mean, axes: [2, 0], keepDims: true).shape == [1, 4, 1])
        expectClose(try x.reduce(.max, axes: []).toArray(), [values.map(Double.init).max()!], "max over all")
        let lse = (0..<12).map { r in Foundation.log((0..<5).reduce(0.0) { $0 + Foundation.exp(at(r / 4, r % 4, $1) * 30) }) }
        expectClose(try (x * 30).logSumExp().toArray(), lse, "logSumExp of large values")
        #expect(try x.logSumExp(axis: 1, keepDims: true).shape == [3, 1, 5])
        expectClose(try x.sum(axis: 1).toArray(), (0..<15).map { r in (0..<4).reduce(0.0) { $0 + at(r / 5, $1, r % 5) } }, "sum(axis: 1)")
        expectClose(try x.mean(axis: -1, keepDims: true).toArray(), (0..<12).map { r in (0..<5).reduce(0.0) { $0 + at(r / 4, r % 4, $1) } / 5 }, "mean(axis: -1)")
        #expect(try x.mean(axis: -1, keepDims: true).shape == [3, 4, 1])
        let transposed = try x.transposed()
        #expect(transposed.shape == [3, 5, 4])
        #expect(try transposed.toArray() == (0..<60).map { i in values[(i / 20 * 4 + i % 4) * 5 + i / 4 % 5] }, "the last two axes swapped")
        #expect { try Tensor.ones([3], on: backend.device).transposed() } throws: { "\($0)".contains("at least 2 axes") }
        let stacked = try Tensor.stack([x, x * 2], axis: 1)
        #expect(stacked.shape == [3, 2, 4, 5])
        #expect(try Array(stacked.toArray()[20..<40]) == (x * 2).toArray()[0..<20].map { $0 })
        #expect { try Tensor.stack([x, try Tensor.zeros([2], on: backend.device)]) } throws: { "\($0)".contains("one shape") }
    }

    @Test(arguments: Backend.all)
    func slicingGatherPowBernoulli(_ backend: Backend) throws {
        let d = backend.device
        let x = try Tensor((0..<24).map(Float.init), shape: [2, 3, 4], on: d)
        let slice = try x.sliced(1..<3, axis: 1)
        #expect(slice.shape == [2, 2, 4])
        #expect(try slice.toArray() == [4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23])
        #expect(try x.sliced(0..<1, axis: 0).toArray() == (0..<12).map(Float.init))
        #expect { try x.sliced(2..<5, axis: 2) } throws: { "\($0)".contains("slice 2..<5") }
        let picked = try x.gathered([2, 0, 2], axis: 2)
        #expect(picked.shape == [2, 3, 3])
        #expect(try Array(picked.toArray()[0..<6]) == [2, 0, 2, 6, 4, 6])
        #expect { try x.gathered([3], axis: 1) } throws: { "\($0)".contains("out of 0..<3") }
        #expect(try Tensor([3, 1, 1, 2], shape: [2, 2], on: d).argmin().toArray() == [1, 0])
        let bases = try Tensor([-2, 0.5, 3], shape: [3], on: d)
        expectClose(try bases.pow(3).toArray(), [-8, 0.125, 27], "x³")
        expectClose(try bases.pow(-2).toArray(), [0.25, 4, 1.0 / 9], "x⁻²")
        expectClose(try Tensor([4, 9], shape: [2], on: d).pow(0.5).toArray(), [2, 3], "√x as x^0.5")
        let coins = try Tensor.bernoulli([10_000], probability: 0.3, seed: 11, on: d).toArray()
        #expect(coins.allSatisfy { $0 == 0 || $0 == 1 })
        #expect(abs(coins.reduce(0, +) / 10_000 - 0.3) < 0.02)
        #expect(try Tensor.bernoulli([10_000], probability: 0.3, seed: 11, on: d).toArray() == coins, "the same seed, the same draws")
        #expect(try Tensor.bernoulli([10_000], probability: 0.3, seed: 12, on: d).toArray() != coins)
    }

    @Test(arguments: Backend.all)
    func rowGatherAndScatterAdd(_ backend: Backend) throws {
        var random = Random("rows")
        let (rows, columns, count) = (13, 37, 101), d = backend.device
        let table = random.floats(rows * columns), values = random.floats(count * columns)
        // Repeats, and indices outside the table (-1, 13, huge) that must read zeros and be skipped.
        let indices = (0..<count).map { i -> Int32 in [7, 0].contains(i % 11) ? [Int32(-1), 13, Int32.max][i % 3] : Int32(random.next() % UInt64(rows)) }
        let gather = RowGather(tableRows: rows, columns: columns, count: count)
        let picked = try d.output(count * columns) { try d.gatherRows(gather, table: d.buffer(table), indices: d.buffer(ints: indices), into: $0) }
        let expected = (0..<count * columns).map { i -> Float in
            let row = Int(indices[i / columns])
            return (0..<rows).contains(row) ? table[row * columns + i % columns] : 0
        }
        #expect(picked == expected)
        let accumulated = try d.buffer(table)
        try d.scatterAddRows(gather, rows: d.buffer(values), indices: d.buffer(ints: indices), into: accumulated)
        var reference = table.map(Double.init)
        for r in 0..<count where (0..<rows).contains(Int(indices[r])) {
            for c in 0..<columns { reference[Int(indices[r]) * columns + c] += Double(values[r * columns + c]) }
        }
        expectClose(try d.read(accumulated), reference, "scatter-add")
        #expect(throws: DeviceError.self) { try d.gatherRows(RowGather(tableRows: rows, columns: columns, count: count + 1), table: d.buffer(table), indices: d.buffer(ints: indices), into: d.makeBuffer(count: count * columns)) }
    }

    @Test func randomTensorsAreMadeOnTheDeviceFromASeed() throws {
        let draws = try Backend.all.map { backend in
            (try Tensor.uniform([7, 9], low: -1, high: 1, seed: 5, on: backend.device).toArray(),
             try Tensor.normal([7, 9], mean: 2, standardDeviation: 3, seed: 5, on: backend.device))
        }
        for (uniform, normal) in draws {
            #expect(uniform.allSatisfy { (-1..<1).contains($0) })
            #expect(normal.shape == [7, 9])
            expectClose(try normal.toArray(), try draws[0].1.toArray().map(Double.init), "normal draws on every device")
            #expect(try Tensor.normal(like: normal, seed: 6).shape == [7, 9])
        }
        let cpu = CPUDevice.shared
        #expect(try Tensor.uniform([64], seed: 1, on: cpu).toArray() == Tensor.uniform([64], seed: 1, on: cpu).toArray())
        #expect { try Tensor.normal([3], standardDeviation: -1, seed: 1) } throws: { "\($0)".contains("fillRandom") }
    }

    @Test(arguments: Backend.all)
    func stridedIntegerAndBooleanIndexing(_ backend: Backend) throws {
        let d = backend.device
        let x = try Tensor((0..<30).map(Float.init), shape: [5, 6], on: d)
        #expect(try x.sliced(1..<6, step: 2, axis: 1).toArray() == [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29])
        #expect(try x.sliced(0..<5, step: 3, axis: 0).toArray() == Array(0..<6).map(Float.init) + (18..<24).map(Float.init))
        #expect(try x.selected(-1).toArray() == (24..<30).map(Float.init))
        #expect(try x.selected(2, axis: 1).shape == [5])
        #expect(try x.selected(2, axis: 1).toArray() == [2, 8, 14, 20, 26])
        #expect(try x.masked(by: x.greater(than: try Tensor.full(26, shape: [1], on: d))).toArray() == [27, 28, 29])
        let rows = try x.masked(by: Tensor([1, 0, 0, 1, 0], shape: [5], on: d))
        #expect(rows.shape == [2, 6])
        #expect(try rows.toArray() == (0..<6).map(Float.init) + (18..<24).map(Float.init))
        let onDevice = try x.gathered(Tensor(labels: [4, 4, 0], on: d), axis: 0)
        #expect(try onDevice.toArray() == (24..<30).map(Float.init) + (24..<30).map(Float.init) + (0..<6).map(Float.init))
        #expect { try x.sliced(0..<5, step: 0, axis: 0) } throws: { "\($0)".contains("step must be positive") }
        #expect { try x.selected(6, axis: 1) } throws: { "\($0)".contains("index 6 is out of range") }
        #expect { try x.masked(by: Tensor.zeros([5], on: d)) } throws: { "\($0)".contains("selects nothing") }
        #expect { try x.masked(by: Tensor.zeros([6], on: d)) } throws: { "\($0)".contains("does not cover") }
    }

    @Test(arguments: Backend.all)
    func gradients(_ backend: Backend) throws {
        var random = Random("composite-gradients")
        let values = random.floats(24), weights = random.floats(24)
        let condition = try Tensor(values.map { $0 > 0 ? 1 : 0 }, shape: [4, 6], on: backend.device)
        let cases: [(String, (Tensor) throws -> Tensor)] = [
            ("sum over axes", { try $0.reduce(.sum, axes: [0, 1], keepDims: true) * $0 }),
            ("logSumExp", { try $0.logSumExp(axis: 1, keepDims: true) * $0 }),
            ("where", { try Tensor.where(condition, $0.square(), $0 * 3) }),
            ("stack", { try Tensor.stack([$0, $0.tanh()], axis: 2).reduce(.sum, axes: [2]) }),
            ("slice and gather", { try Tensor.concatenate([$0.sliced(1..<5, axis: 1), $0.gathered([0, 5], axis: 1)], axis: 1).gathered([3, 3, 1, 2], axis: 0) }),
            ("pow", { try ($0.square() + 0.5).pow(1.5) + $0.pow(3) }),
            ("transposed, sum and mean along an axis", { try $0.transposed().sum(axis: 0, keepDims: true).transposed() * $0.mean(axis: 0) }),
            ("strided, selected and masked", { x in
                let rows = try x.masked(by: Tensor([1, 0, 1, 1], shape: [4], on: x.device)).selected(1).sliced(0..<6, step: 2, axis: 0)
                let picked = try x.sliced(0..<6, step: 2, axis: 1).sliced(1..<4, step: 2, axis: 0) * rows.reshaped([1, 3])
                return try x * (picked.reduce(.sum, axes: []) + x.masked(by: condition).square().reduce(.sum, axes: [])) }),
        ]
        for (name, op) in cases {
            let w = try Tensor(weights, shape: [4, 6], on: backend.device)
            func loss(_ x: [Float]) throws -> Double { Double(try (op(try Tensor(x, shape: [4, 6], on: backend.device)) * w).sum().item()) }
            let x = try Tensor(values, shape: [4, 6], on: backend.device)
            x.requiresGrad = true
            try (op(x) * w).sum().backward()
            try expectGradient(at: values, gradient: try x.grad!.toArray(), name, loss: loss)
        }
    }
}
