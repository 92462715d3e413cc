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

/// Keras's broadcasting merges, ReLU's cap, slope and threshold, and Rescaling.
@Suite("Merges, ReLU variants, rescaling") struct MergeLayerTests {
    @Test(arguments: Backend.all)
    func mergesBroadcastAndReLUVariants(_ backend: Backend) throws {
        let d = backend.device
        var random = Random("merges")
        let (a, b) = (random.floats(2 * 3 * 4 * 5, -8...8), random.floats(2 * 5, -2...2))
        let features = Input(shape: [3, 4, 5]), gate = Input(shape: [1, 1, 5])
        let cases: [(Layer, (Double, Double) -> Double)] = [
            (Multiply(), { $0 * $1 }), (Subtract(), { $0 - $1 }), (Average(), { ($0 + $1) / 2 }), (Maximum(), { max($0, $1) }), (Minimum(), { min($0, $1) }),
            (CustomScaleLayer(scale: 0.17), { $0 + 0.17 * $1 }),
        ]
        let x = try Tensor(a, shape: [2, 3, 4, 5], on: d), g = try Tensor(b, shape: [2, 1, 1, 5], on: d)
        for (layer, reference) in cases {
            let model = try Model(inputs: [features, gate], outputs: try layer([features.output, gate.output]))
            #expect(model.outputs[0].shape == [3, 4, 5])
            try model.place(on: d)
            let expected = a.indices.map { i in reference(Double(a[i]), Double(b[(i / 60) * 5 + i % 5])) }
            expectClose(try model([x, g])[0].toArray(), expected, "\(layer.typeName) on \(backend)")
        }
        #expect { try Model(inputs: [features, gate], outputs: try Subtract()([features.output, gate.output, gate.output])) } throws: { "\($0)".contains("needs 2 inputs") }
        let relus: [(ReLU, (Double) -> Double)] = [
            (ReLU(maxValue: 6), { min(max($0, 0), 6) }),
            (ReLU(maxValue: 4, negativeSlope: 0.1, threshold: 1), { $0 >= 1 ? min($0, 4) : 0.1 * ($0 - 1) }),
        ]
        for (layer, reference) in relus {
            expectClose(try layer.forward([x], training: false).toArray(), a.map { reference(Double($0)) }, "ReLU \(layer.maxValue ?? 0) on \(backend)")
        }
        expectClose(try Rescaling(scale: 1 / 127.5, offset: -1).forward([x], training: false).toArray(), a.map { Double($0) / 127.5 - 1 }, "Rescaling")
    }

    @Test func kerasJSONAndONNXRoundTrip() throws {
        let input = Input(shape: [4, 4, 3])
        let x = try Rescaling(scale: 1 / 255)(input.output)
        let y = try ReLU(maxValue: 6, name: "relu6")(try Conv2D(4, kernelSize: 3, padding: .same)(x))
        let se = try Conv2D(4, kernelSize: 1, activation: .hardSigmoid)(try GlobalAveragePooling2D(keepDims: true)(y))  // MobileNetV3's gate
        let model = try Model(inputs: input, outputs: try Dense(2)(try GlobalMaxPooling2D()(try Multiply()([y, se]))))
        try model.place(on: CPUDevice.shared, seed: 3)
        let batch = try Tensor.uniform([2, 4, 4, 3], high: 255, seed: 4)
        let folder = try temporaryFolder()
        try Checkpoint.save(model, to: folder.appendingPathComponent("m.safetensors"))
        let loaded = try Checkpoint.load(folder.appendingPathComponent("m.safetensors"), device: CPUDevice.shared).model
        #expect(try loaded(batch).toArray() == model(batch).toArray())
        #expect((try loaded.layer(named: "relu6") as? ReLU)?.maxValue == 6)
        try ONNXExport.save(model, to: folder.appendingPathComponent("m.onnx"))
        expectClose(try ONNXImport.load(folder.appendingPathComponent("m.onnx"), device: CPUDevice.shared)(batch).toArray(),
                    try model(batch).toArray().map(Double.init), "ONNX round trip")
    }
}
