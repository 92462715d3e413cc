import Foundation
import Testing
@testable import Kiln

/// The activations that MobileNetV3, EfficientNet and the transformers' Dense layers use, against
/// float64 formulas, by finite differences, and by Keras name.
@Suite("Activations") struct ActivationTests {
    static let references: [(ActivationFunction, (Double) -> Double)] = [
        (.elu, { $0 > 0 ? $0 : Foundation.exp($0) - 1 }),
        (.selu, { 1.0507009873554805 * ($0 > 0 ? $0 : 1.6732632423543772 * (Foundation.exp($0) - 1)) }),
        (.gelu, { 0.5 * $0 * (1 + Foundation.erf($0 / 2.0.squareRoot())) }),
        (.swish, { $0 / (1 + Foundation.exp(-$0)) }),
        (.hardSigmoid, { min(max($0 / 6 + 0.5, 0), 1) }),
        (.hardSwish, { $0 * min(max($0 / 6 + 0.5, 0), 1) }),
    ]

    @Test(arguments: Backend.all)
    func activationsMatchTheirFormulas(_ backend: Backend) throws {
        var random = Random("activations")
        // Away from the kinks (0 for elu/selu, ±3 for the hard ones), where finite differences are fair.
        let values = random.floats(61, -5...5).map { abs($0) < 0.1 || abs(abs($0) - 3) < 0.1 ? $0 + 0.25 : $0 }
        for (f, reference) in Self.references {
            let x = try Tensor(values, shape: [61], on: backend.device)
            expectClose(try f(x).toArray(), values.map { reference(Double($0)) }, "\(f.kerasName) on \(backend)", tolerance: 2e-6)
            x.requiresGrad = true
            let weights = try Tensor(random.floats(61), shape: [61], on: backend.device)
            try (f(x) * weights).sum().backward()
            try expectGradient(at: values, gradient: try x.grad!.toArray(), epsilon: 1e-3, "\(f.kerasName) on \(backend)") { v in
                Double(try (f(Tensor(v, shape: [61], on: backend.device)) * weights).sum().item())
            }
            #expect(ActivationFunction(kerasName: f.kerasName) == f)
        }
        #expect(ActivationFunction(kerasName: "silu") == .swish && ActivationFunction(kerasName: "hard_silu") == .hardSwish)
    }
}
