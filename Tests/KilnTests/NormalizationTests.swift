import Foundation
import Testing
@testable import Kiln

@Suite("Batch normalization") struct NormalizationTests {
    static let views = [AxisView(outer: 3 * 13 * 11, axis: 7), AxisView(outer: 5, axis: 3, inner: 9)]

    @Test(arguments: Backend.all, views)
    func trainingInferenceAndBackward(_ backend: Backend, view: AxisView) throws {
        let device = backend.device
        var random = Random("bn\(view)")
        let x = random.floats(view.count, -2...3), dy = random.floats(view.count)
        let gamma = random.floats(view.axis, 0.5...1.5), beta = random.floats(view.axis)
        let runningMean = random.floats(view.axis), runningVariance = random.floats(view.axis, 0.5...2)
        let (momentum, epsilon): (Float, Float) = (0.99, 1e-3)
        func channel(_ values: [Float], _ c: Int) -> [Double] {
            (0..<view.outer).flatMap { o in (0..<view.inner).map { Double(values[(o * view.axis + c) * view.inner + $0]) } }
        }
        let stats = (0..<view.axis).map { c -> (mean: Double, variance: Double) in
            let v = channel(x, c); let mean = v.reduce(0, +) / Double(v.count)
            return (mean, v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count))
        }

        let (gb, bb, rmb, rvb) = (try device.buffer(gamma), try device.buffer(beta), try device.buffer(runningMean), try device.buffer(runningVariance))
        let (mean, invStd) = (try device.makeBuffer(count: view.axis), try device.makeBuffer(count: view.axis))
        let xb = try device.buffer(x)
        let y = try device.output(view.count) {
            try device.batchNormTraining(xb, view: view, gamma: gb, beta: bb, runningMean: rmb, runningVariance: rvb,
                                         momentum: momentum, epsilon: epsilon, savedMean: mean, savedInvStd: invStd, output: $0)
        }
        expectClose(y, x.indices.map { i in
            let c = (i / view.inner) % view.axis
            return (Double(x[i]) - stats[c].mean) / (stats[c].variance + Double(epsilon)).squareRoot() * Double(gamma[c]) + Double(beta[c])
        }, "batch norm training")
        expectClose(try device.read(rmb), (0..<view.axis).map { 0.99 * Double(runningMean[$0]) + 0.01 * stats[$0].mean }, "running mean")
        expectClose(try device.read(rvb), (0..<view.axis).map { 0.99 * Double(runningVariance[$0]) + 0.01 * stats[$0].variance }, "running variance")

        let inference = try device.output(view.count) {
            try device.batchNormInference(xb, view: view, gamma: gb, beta: bb, runningMean: rmb, runningVariance: rvb, epsilon: epsilon, output: $0)
        }
        let (rm, rv) = (try device.read(rmb), try device.read(rvb))
        expectClose(inference, x.indices.map { i in
            let c = (i / view.inner) % view.axis
            return (Double(x[i]) - Double(rm[c])) / (Double(rv[c]) + Double(epsilon)).squareRoot() * Double(gamma[c]) + Double(beta[c])
        }, "batch norm inference")

        let (dgamma, dbeta) = (try device.makeBuffer(count: view.axis), try device.makeBuffer(count: view.axis))
        let dx = try device.output(view.count) {
            try device.batchNormBackward(xb, gradOutput: device.buffer(dy), view: view, gamma: gb, savedMean: mean, savedInvStd: invStd,
                                         gradInput: $0, gradGamma: dgamma, gradBeta: dbeta)
        }
        func loss(_ x: [Float], _ gamma: [Float], _ beta: [Float]) throws -> Double {
            let scratch = try (0..<4).map { _ in try device.makeBuffer(count: view.axis) }
            return dot(try device.output(view.count) {
                try device.batchNormTraining(device.buffer(x), view: view, gamma: device.buffer(gamma), beta: device.buffer(beta),
                                             runningMean: scratch[0], runningVariance: scratch[1], momentum: momentum, epsilon: epsilon,
                                             savedMean: scratch[2], savedInvStd: scratch[3], output: $0)
            }, dy)
        }
        try expectGradient(at: x, gradient: dx, epsilon: 1e-2, "batch norm dx") { try loss($0, gamma, beta) }
        try expectGradient(at: gamma, gradient: try device.read(dgamma), "batch norm dgamma") { try loss(x, $0, beta) }
        try expectGradient(at: beta, gradient: try device.read(dbeta), "batch norm dbeta") { try loss(x, gamma, $0) }
    }
}

/// Synchronized batch normalisation as one replica sees it: with a single replica (the sums over
/// the replicas are the local ones) it is ordinary batch normalisation, forward, backward and
/// moving statistics. `DistributedTests` checks two real replicas against one process.
@Suite("Synchronized batch normalization") struct SynchronizedNormalizationTests {
    final class OneReplica: CrossReplicaSum {
        var share: Float = 1, calls = 0
        func sumOverReplicas(_ values: inout [Float]) throws { calls += 1 }
    }

    @Test(arguments: Backend.all)
    func oneReplicaIsPlainBatchNorm(_ backend: Backend) throws {
        let d = backend.device
        var random = Random("sync-bn")
        let x = random.floats(3 * 5 * 4 * 7, -2...3), dy = random.floats(3 * 5 * 4 * 7)
        func run(_ synchronized: Bool) throws -> (y: [Float], dx: [Float], gradients: [[Float]], moving: [[Float]]) {
            let layer = BatchNormalization(momentum: 0.9, synchronized: synchronized)
            let model = try Sequential([Input(shape: [5, 4, 7]), layer])
            try model.place(on: d, seed: 2)
            for weight in layer.weights { try weight.assign(random.floats(weight.count, 0.5...1.5)) }
            let replicas = OneReplica()
            layer.replicas = replicas
            let input = try Tensor(x, shape: [3, 5, 4, 7], on: d)
            input.requiresGrad = true
            let y = try model(input, training: true)
            try (y * Tensor(dy, shape: y.shape, on: d)).sum().backward()
            #expect(replicas.calls == (synchronized ? 4 : 0), "the mean's and the variance's sums forward, and their gradients")
            return (try y.toArray(), try input.grad!.toArray(), try layer.weights.prefix(2).map { try $0.value.grad!.toArray() },
                    try layer.weights.suffix(2).map { try $0.value.toArray() })
        }
        let start = random  // both layers draw the same weights
        let plain = try run(false)
        random = start
        let synced = try run(true)
        expectClose(synced.y, plain.y.map(Double.init), "output on \(backend)")
        expectClose(synced.dx, plain.dx.map(Double.init), "input gradient on \(backend)")
        for (a, b) in zip(synced.gradients + synced.moving, plain.gradients + plain.moving) { expectClose(a, b.map(Double.init), "gamma, beta, moving statistics on \(backend)") }
    }
}
