// A recurrent cell written by hand (the workshop's time-series lesson, before Kiln's own RNN
// layers): h = tanh(x·W + h·U + b) over the steps of a window, then a Dense layer on the last h,
// trained with a custom loop to predict the next value of a noisy sine wave.
// Usage: RecurrentCell [STEPS]   (KILN_DEVICE picks the device)
import Foundation
import Kiln

/// An Elman cell unrolled over the time axis of (batch, time, features) inputs; returns the last state.
final class ElmanRNN: Layer {
    let units: Int
    private var w: Weight!, u: Weight!, b: Weight!

    init(_ units: Int, name: String? = nil) {
        self.units = units
        super.init(name: name, kind: "elman_rnn")
    }

    override func build(_ inputShapes: [[Int]]) throws -> [Int] {
        let features = inputShapes[0][1]
        w = addWeight("kernel", shape: [features, units], initializer: .glorotUniform)
        u = addWeight("recurrent_kernel", shape: [units, units], initializer: .glorotUniform)
        b = addWeight("bias", shape: [units], initializer: .zeros)
        return [units]
    }

    override func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try requirePlaced()
        let x = inputs[0]
        let (batch, steps, features) = (x.shape[0], x.shape[1], x.shape[2])
        var h = try Tensor.zeros([batch, units], on: x.device)
        for t in 0..<steps {
            let step = try x.sliced(t..<t + 1, axis: 1).reshaped([batch, features])
            h = try (step.matmul(w.value) + h.matmul(u.value)).addingBias(b.value).tanh()
        }
        return h
    }
}

let steps = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 600
let device = try Devices.select()
var random = RandomGenerator(seed: 3)
let window = 12
let wave = (0..<2000).map { Float(sin(Double($0) * 0.15)) + Float(random.normal() * 0.05) }

/// Windows of the wave starting at `starts` and the value that follows each.
func batch(_ starts: [Int]) throws -> (x: Tensor, y: Tensor) {
    (try Tensor(starts.flatMap { wave[$0..<$0 + window] }, shape: [starts.count, window, 1], on: device),
     try Tensor(starts.map { wave[$0 + window] }, shape: [starts.count, 1], on: device))
}

let model = try Sequential([Input(shape: [window, 1]), ElmanRNN(16), Dense(1)], name: "forecaster")
try model.place(on: device, seed: 1)
let optimizer = Adam(learningRate: 0.01)
let test = try batch(Array(stride(from: 1500, to: 1980, by: 3)))
@MainActor func testError() throws -> Float { try MeanSquaredError()(test.y, model.predict(test.x)).item() }

print(String(format: "test error before training: %.4f", try testError()))
for _ in 1...steps {
    let (x, y) = try batch((0..<32).map { _ in Int(random.next() % 1400) })
    let loss = try MeanSquaredError()(y, model(x, training: true))
    try optimizer.apply(try model.gradients(of: loss), to: model.trainableWeights)
}
print(String(format: "test error after %d steps: %.4f", steps, try testError()))
