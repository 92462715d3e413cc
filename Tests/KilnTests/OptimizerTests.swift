import Foundation
import Testing
@testable import Kiln

@Suite("Optimizer updates") struct OptimizerTests {
    static let updates: [Update] = [
        Update(rule: .sgd(momentum: 0, nesterov: false), learningRate: 0.1),
        Update(rule: .sgd(momentum: 0.9, nesterov: false), learningRate: 0.05, weightDecay: 0.01),
        Update(rule: .sgd(momentum: 0.9, nesterov: true), learningRate: 0.05),
        Update(rule: .rmsprop(rho: 0.9, momentum: 0, epsilon: 1e-7), learningRate: 0.01),
        Update(rule: .rmsprop(rho: 0.8, momentum: 0.5, epsilon: 1e-7), learningRate: 0.01),
        Update(rule: .adam(beta1: 0.9, beta2: 0.999, epsilon: 1e-7), learningRate: 0.001),
        Update(rule: .adam(beta1: 0.9, beta2: 0.999, epsilon: 1e-7), learningRate: 0.001, weightDecay: 0.004),  // AdamW
    ]

    /// Keras 3's update formulas in float64, one parameter at a time.
    static func reference(_ u: Update, w: inout Double, g: Double, slots s: inout [Double]) {
        let lr = Double(u.learningRate), t = Double(u.step)
        w -= w * Double(u.weightDecay) * lr
        switch u.rule {
        case .sgd(let momentum, let nesterov):
            guard momentum > 0 else { w -= lr * g; return }
            s[0] = Double(momentum) * s[0] - lr * g
            w += nesterov ? Double(momentum) * s[0] - lr * g : s[0]
        case .rmsprop(let rho, let momentum, let epsilon):
            s[0] = Double(rho) * s[0] + (1 - Double(rho)) * g * g
            let increment = lr * g / (s[0] + Double(epsilon)).squareRoot()
            if momentum > 0 { s[1] = Double(momentum) * s[1] + increment; w -= s[1] } else { w -= increment }
        case .adam(let beta1, let beta2, let epsilon):
            s[0] += (g - s[0]) * (1 - Double(beta1))
            s[1] += (g * g - s[1]) * (1 - Double(beta2))
            let alpha = lr * (1 - pow(Double(beta2), t)).squareRoot() / (1 - pow(Double(beta1), t))
            w -= alpha * s[0] / (s[1].squareRoot() + Double(epsilon))
        }
    }

    @Test(arguments: Backend.all, updates)
    func threeSteps(_ backend: Backend, update: Update) throws {
        let device = backend.device
        var random = Random("opt\(update)")
        let count = 257
        var w = random.floats(count).map(Double.init)
        var slots = [[Double]](repeating: [Double](repeating: 0, count: update.rule.slotCount), count: count)
        let parameter = try device.buffer(w.map(Float.init))
        let slotBuffers = try (0..<update.rule.slotCount).map { _ in try device.buffer(repeating: 0, count: count) }
        for step in 1...3 {
            let g = random.floats(count)
            var u = update
            u.step = step
            try device.applyUpdate(u, to: [UpdateTarget(parameter: parameter, gradient: device.buffer(g), slots: slotBuffers, count: count)])
            for i in 0..<count { Self.reference(u, w: &w[i], g: Double(g[i]), slots: &slots[i]) }
        }
        expectClose(try device.read(parameter), w, "\(update.rule) after 3 steps")
    }

    @Test(arguments: Backend.all)
    func wrongSlotCountIsAnError(_ backend: Backend) throws {
        let buffer = try backend.device.makeBuffer(count: 4)
        #expect(throws: DeviceError.self) {
            try backend.device.applyUpdate(Update(rule: .adam(beta1: 0.9, beta2: 0.999, epsilon: 1e-7), learningRate: 0.1),
                                           to: [UpdateTarget(parameter: buffer, gradient: buffer, slots: [buffer], count: 4)])
        }
    }
}
