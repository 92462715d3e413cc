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
