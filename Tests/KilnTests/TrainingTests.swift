import Foundation
import Testing
@testable import Kiln

@Suite("Losses, metrics, optimizers") struct TrainingTests {
    static func sigmoid(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }

    /// Each loss against a float64 reference, and its gradient by finite differences.
    @Test(arguments: Backend.all)
    func losses(_ backend: Backend) throws {
        let device = backend.device
        var random = Random("losses")
        let (rows, columns) = (5, 4)
        let x = random.floats(rows * columns, -3...3)
        let probabilities = x.map { Float(Self.sigmoid(Double($0))) }
        let y01 = (0..<rows * columns).map { _ in Float(random.int(2)) }
        // Regression targets at least 0.1 away from the predictions (MAE's kink).
        let targets = x.map { $0 + (random.uniform() < 0 ? -1 : 1) * random.uniform(0.1...1) }
        let labels = (0..<rows).map { _ in Int32(random.int(columns)) }
        let oneHot = (0..<rows * columns).map { Float(labels[$0 / columns] == Int32($0 % columns) ? 1 : 0) }
        func logSoftmax(_ r: Int) -> [Double] {
            let row = x[r * columns ..< (r + 1) * columns].map(Double.init), peak = row.max()!
            let logSum = peak + Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - peak) })
            return row.map { $0 - logSum }
        }
        let crossEntropy = (0..<rows).reduce(0.0) { $0 - logSoftmax($1)[Int(labels[$1])] } / Double(rows)
        let n = Double(rows * columns)
        let binaryLogits = zip(x, y01).reduce(0.0) { sum, pair in
            let (z, t) = (Double(pair.0), Double(pair.1))
            return sum + max(z, 0) - z * t + Foundation.log(1 + Foundation.exp(-Swift.abs(z)))
        } / n

        typealias Case = (String, (Tensor) throws -> Tensor, Double, [Float])
        let cases: [Case] = [
            ("mse", { try MeanSquaredError()(Tensor(targets, shape: [rows, columns], on: device), $0) },
             zip(x, targets).reduce(0.0) { $0 + pow(Double($1.0 - $1.1), 2) } / n, x),
            ("mae", { try MeanAbsoluteError()(Tensor(targets, shape: [rows, columns], on: device), $0) },
             zip(x, targets).reduce(0.0) { $0 + Swift.abs(Double($1.0 - $1.1)) } / n, x),
            ("bce logits", { try BinaryCrossentropy(fromLogits: true)(Tensor(y01, shape: [rows, columns], on: device), $0) }, binaryLogits, x),
            ("bce sigmoid output", { try BinaryCrossentropy()(Tensor(y01, shape: [rows, columns], on: device), $0.sigmoid()) }, binaryLogits, x),
            ("bce probabilities", { try BinaryCrossentropy()(Tensor(y01, shape: [rows, columns], on: device), $0) }, binaryLogits, probabilities),
            ("cce logits", { try CategoricalCrossentropy(fromLogits: true)(Tensor(oneHot, shape: [rows, columns], on: device), $0) }, crossEntropy, x),
            ("cce softmax output", { try CategoricalCrossentropy()(Tensor(oneHot, shape: [rows, columns], on: device), $0.softmax()) }, crossEntropy, x),
            ("scce logits", { try SparseCategoricalCrossentropy(fromLogits: true)(Tensor(labels: labels, on: device), $0) }, crossEntropy, x),
            ("scce softmax output", { try SparseCategoricalCrossentropy()(Tensor(labels: labels, on: device), $0.softmax()) }, crossEntropy, x),
        ]
        for (what, loss, expected, input) in cases {
            let tensor = try Tensor(input, shape: [rows, columns], on: device)
            tensor.requiresGrad = true
            let value = try loss(tensor)
            expectClose([try value.item()], [expected], what)
            try value.backward()
            try expectGradient(at: input, gradient: try tensor.grad!.toArray(), epsilon: 1e-3, what) { p in
                Double(try loss(Tensor(p, shape: [rows, columns], on: device)).item())
            }
        }
        // Plain probabilities (not a softmax output) give the same cross-entropy through log p.
        let p = try Tensor(x, shape: [rows, columns], on: device).softmax().toArray()
        let plain = try SparseCategoricalCrossentropy()(Tensor(labels: labels, on: device), Tensor(p, shape: [rows, columns], on: device))
        expectClose([try plain.item()], [crossEntropy], "scce on probabilities", tolerance: 1e-5)
    }

    @Test(arguments: Backend.all)
    func saturatedOutputsStayFinite(_ backend: Backend) throws {
        let logits = try Tensor([200, -200, 0, 300], shape: [2, 2], on: backend.device)
        let ce = try SparseCategoricalCrossentropy()(Tensor(labels: [1, 0], on: backend.device), logits.softmax())
        #expect(try Swift.abs(ce.item() - 350) < 1e-3)
        let bce = try BinaryCrossentropy()(Tensor([0, 1, 1, 0], shape: [2, 2], on: backend.device), logits.sigmoid())
        #expect(try bce.item().isFinite && bce.item() > 100)
    }

    @Test(arguments: Backend.all)
    func metrics(_ backend: Backend) throws {
        let device = backend.device
        let scores = try Tensor([0.1, 0.7, 0.2, 0.5, 0.3, 0.2, 0.2, 0.3, 0.5], shape: [3, 3], on: device)
        let accuracy = Accuracy(), top2 = TopKAccuracy(k: 2)
        for metric in [accuracy, top2] {
            try metric.update(Tensor(labels: [1, 1, 0], on: device), scores)
            try metric.update(Tensor([0, 0, 1], shape: [1, 3], on: device), try Tensor([0.2, 0.1, 0.7], shape: [1, 3], on: device))
        }
        #expect(try accuracy.result() == 0.5)
        #expect(try top2.result() == 0.75)
        accuracy.reset()
        #expect(try accuracy.result() == 0)
        let binary = BinaryAccuracy()
        try binary.update(Tensor([1, 0, 1, 0], shape: [4], on: device), Tensor([0.9, 0.2, 0.4, 0.6], shape: [4], on: device))
        #expect(try binary.result() == 0.5)
        let mean = MeanMetric()
        try mean.update(Tensor.zeros([2], on: device), Tensor([3], shape: [1], on: device))
        try mean.update(Tensor.zeros([6], on: device), Tensor([1], shape: [1], on: device))
        #expect(try mean.result() == 1.5)
    }

    @Test func schedules() {
        #expect(LearningRateSchedule.exponentialDecay(initial: 0.1, decaySteps: 10, decayRate: 0.5)(20) == 0.025)
        #expect(Swift.abs(LearningRateSchedule.exponentialDecay(initial: 0.1, decaySteps: 10, decayRate: 0.5)(5) - 0.1 * Float(0.5.squareRoot())) < 1e-7)
        #expect(LearningRateSchedule.exponentialDecay(initial: 0.1, decaySteps: 10, decayRate: 0.5, staircase: true)(19) == 0.05)
        let piecewise = LearningRateSchedule.piecewiseConstant(boundaries: [10, 20], values: [1, 0.5, 0.1])
        #expect([piecewise(0), piecewise(10), piecewise(25)] == [1, 0.5, 0.1])
        let cosine = LearningRateSchedule.cosineDecay(initial: 1, decaySteps: 100, alpha: 0.1)
        #expect(cosine(0) == 1 && Swift.abs(cosine(50) - 0.55) < 1e-6 && Swift.abs(cosine(200) - 0.1) < 1e-6)
    }

    @Test(arguments: Backend.all)
    func clippingAndWeightDecay(_ backend: Backend) throws {
        let device = backend.device
        let layer = Dense(2, useBias: false)
        let model = try Sequential([Input(shape: [2]), layer])
        try model.place(on: device)
        let weight = layer.weights[0]
        try weight.assign([1, 1, 1, 1])
        // The loss 3·Σw·x with x = (1, 1) gives a gradient of 3 everywhere: norm 6.
        func step(_ optimizer: Optimizer) throws -> [Float] {
            try weight.assign([1, 1, 1, 1])
            try (model(Tensor([1, 1], shape: [1, 2], on: device)).sum() * 3).backward()
            try optimizer.apply(to: model.trainableWeights)
            return try weight.value.toArray()
        }
        let byNorm = SGD(learningRate: 1)
        byNorm.clipNorm = 1
        #expect(try step(byNorm).allSatisfy { Swift.abs($0 - (1 - 0.5)) < 1e-6 })
        let byValue = SGD(learningRate: 1)
        byValue.clipValue = 0.25
        #expect(try step(byValue) == [0.75, 0.75, 0.75, 0.75])
        let decayed = SGD(learningRate: 0.1, weightDecay: 0.5)
        #expect(try step(decayed).allSatisfy { Swift.abs($0 - (0.95 - 0.3)) < 1e-6 })
        #expect(decayed.iterations == 1 && weight.value.grad == nil)
    }

    @Test(arguments: Backend.all)
    func optimizerStateRestoresExactly(_ backend: Backend) throws {
        let device = backend.device
        func run(split: Bool) throws -> [Float] {
            let layer = Dense(3, kernelRegularizer: .l2(0.01))
            let model = try Sequential([Input(shape: [4]), layer])
            try model.place(on: device, seed: 9)
            var optimizer = Adam(learningRate: 0.1)
            var random = Random("restore")
            for step in 0..<4 {
                if split && step == 2 {
                    let (state, iterations) = (optimizer.stateTensors(), optimizer.iterations)
                    optimizer = Adam(learningRate: 0.1)
                    try optimizer.restore(state: state, iterations: iterations, for: model.weights)
                }
                let x = try Tensor(random.floats(8), shape: [2, 4], on: device)
                try (model(x).square().mean() + model.regularizationLoss()!).backward()
                try optimizer.apply(to: model.trainableWeights)
            }
            return try layer.weights[0].value.toArray()
        }
        #expect(try run(split: true) == run(split: false))
    }

    @Test(arguments: Backend.all)
    func regularizationPenalties(_ backend: Backend) throws {
        let model = try Sequential([Input(shape: [2]), Dense(2, useBias: false, kernelRegularizer: .l1l2(l1: 0.1, l2: 0.01))])
        try model.place(on: backend.device)
        try model.weights[0].assign([1, -2, 3, -4])
        #expect(try Swift.abs(model.regularizationLoss()!.item() - (0.1 * 10 + 0.01 * 30)) < 1e-6)
    }
}
