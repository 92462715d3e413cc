import Foundation
import Testing
@testable import Kiln

/// Conv1D, 1-D pooling and layer normalization against float64 references and finite differences.
@Suite("1-D convolution, pooling and layer normalization") struct SequenceLayerTests {
    /// Keras's Conv1D in float64: x `[batch, length, channels]`, w `[k, channels, filters]`.
    static func conv1D(_ x: [Float], _ w: [Float], batch: Int, length: Int, channels: Int, filters: Int, kernel: Int,
                       stride: Int, dilation: Int, padding: Padding1D) throws -> [Double] {
        let win = try window1D(length: length, kernel: kernel, stride: stride, dilation: dilation, padding: padding)
        var y = [Double](repeating: 0, count: batch * win.output * filters)
        for b in 0..<batch {
            for t in 0..<win.output {
                for f in 0..<filters {
                    var sum = 0.0
                    for j in 0..<kernel {
                        let at = t * stride + j * dilation - win.before
                        guard (0..<length).contains(at) else { continue }
                        for c in 0..<channels { sum += Double(x[(b * length + at) * channels + c]) * Double(w[(j * channels + c) * filters + f]) }
                    }
                    y[(b * win.output + t) * filters + f] = sum
                }
            }
        }
        return y
    }

    @Test(arguments: Backend.all, [(Padding1D.valid, 1, 1), (.same, 2, 1), (.causal, 1, 2), (.same, 1, 3), (.causal, 3, 1)])
    func conv1DMatchesTheReference(_ backend: Backend, _ setting: (Padding1D, Int, Int)) throws {
        let (padding, stride, dilation) = setting, d = backend.device
        var random = Random("conv1d-\(padding)-\(stride)-\(dilation)")
        let (batch, length, channels, filters, kernel) = (2, 11, 3, 5, 3)
        let x = random.floats(batch * length * channels)
        let layer = Conv1D(filters, kernelSize: kernel, strides: stride, padding: padding, dilationRate: dilation, useBias: false)
        let model = try Sequential([Input(shape: [length, channels]), layer])
        try model.place(on: d, seed: 1)
        let w = try layer.weights[0].value.toArray()
        let input = try Tensor(x, shape: [batch, length, channels], on: d)
        let expected = try Self.conv1D(x, w, batch: batch, length: length, channels: channels, filters: filters, kernel: kernel,
                                       stride: stride, dilation: dilation, padding: padding)
        expectClose(try model(input).toArray(), expected, "Conv1D \(setting) on \(backend)")
        let outputWeights = try Tensor(random.floats(expected.count), shape: [batch, expected.count / batch / filters, filters], on: d)
        input.requiresGrad = true
        try (model(input) * outputWeights).sum().backward()
        try expectGradient(at: x, gradient: try input.grad!.toArray(), "Conv1D input \(setting) on \(backend)") { values in
            Double(try (model(Tensor(values, shape: [batch, length, channels], on: d)) * outputWeights).sum().item())
        }
        try expectGradient(at: w, gradient: try layer.weights[0].value.grad!.toArray(), "Conv1D kernel \(setting) on \(backend)") { values in
            try layer.weights[0].assign(values)
            defer { try? layer.weights[0].assign(w) }
            return Double(try (model(Tensor(x, shape: [batch, length, channels], on: d)) * outputWeights).sum().item())
        }
    }

    @Test(arguments: Backend.all)
    func poolingAndLayerNorm(_ backend: Backend) throws {
        let d = backend.device
        var random = Random("pool1d")
        let x = random.floats(2 * 7 * 3)
        func at(_ b: Int, _ t: Int, _ c: Int) -> Double { Double(x[(b * 7 + t) * 3 + c]) }
        let input = try Tensor(x, shape: [2, 7, 3], on: d)
        let maxPooled = (0..<2).flatMap { b in (0..<3).flatMap { t in (0..<3).map { c in max(at(b, 2 * t, c), at(b, 2 * t + 1, c)) } } }
        expectClose(try MaxPooling1D().forward([input], training: false).toArray(), maxPooled, "MaxPooling1D")
        func average(_ b: Int, _ t: Int, _ c: Int) -> Double {
            let steps = max(t * 3 - 1, 0)..<min(t * 3 + 2, 7)  // 'same' pads one step on each side; padding is not averaged
            return steps.reduce(0.0) { $0 + at(b, $1, c) } / Double(steps.count)
        }
        let averaged = (0..<2).flatMap { b in (0..<3).flatMap { t in (0..<3).map { c in average(b, t, c) } } }
        expectClose(try AveragePooling1D(poolSize: 3, padding: .same).forward([input], training: false).toArray(), averaged, "AveragePooling1D same")
        let mask = try Tensor([1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1], shape: [2, 7], on: d)
        let maskedMean = [(0..<3).map { c in (0..<3).reduce(0.0) { $0 + at(0, $1, c) } / 3 }, (0..<3).map { c in (0..<7).reduce(0.0) { $0 + at(1, $1, c) } / 7 }].flatMap { $0 }
        expectClose(try GlobalAveragePooling1D().forward([input], training: false, mask: mask).toArray(), maskedMean, "masked GlobalAveragePooling1D")
        expectClose(try GlobalMaxPooling1D().forward([input], training: false).toArray(),
                    (0..<2).flatMap { b in (0..<3).map { c in (0..<7).map { at(b, $0, c) }.max()! } }, "GlobalMaxPooling1D")
        let norm = LayerNormalization()
        let model = try Sequential([Input(shape: [7, 3]), norm])
        try model.place(on: d)
        try norm.weights[0].assign([0.5, 2, -1])
        try norm.weights[1].assign([0.1, 0, 0.3])
        let normalized = (0..<14).flatMap { row -> [Double] in
            let v = (0..<3).map { Double(x[row * 3 + $0]) }, mean = v.reduce(0, +) / 3
            let std = (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 3 + 1e-3).squareRoot()
            return (0..<3).map { (v[$0] - mean) / std * [0.5, 2, -1][$0] + [0.1, 0, 0.3][$0] }
        }
        expectClose(try model(input).toArray(), normalized, "LayerNormalization on \(backend)")
        let weights = try Tensor(random.floats(42), shape: [2, 7, 3], on: d)
        input.requiresGrad = true
        try (model(input) * weights).sum().backward()
        try expectGradient(at: x, gradient: try input.grad!.toArray(), "LayerNormalization input on \(backend)") { values in
            Double(try (model(Tensor(values, shape: [2, 7, 3], on: d)) * weights).sum().item())
        }
    }

    /// Keras's parameter counts, and a checkpoint round trip of every 1-D layer.
    @Test func countsAndRoundTrip() throws {
        let model = try Sequential([Input(shape: [40, 8]), Conv1D(16, kernelSize: 5, padding: .causal, dilationRate: 2, activation: .relu),
                                    MaxPooling1D(poolSize: 3), Conv1D(8, kernelSize: 3, strides: 2, padding: .same), AveragePooling1D(),
                                    LayerNormalization(), GlobalMaxPooling1D(), Dense(1)])
        #expect(model.parameterCount == (5 * 8 * 16 + 16) + (3 * 16 * 8 + 8) + 16 + 9)
        #expect(model.outputs[0].shape == [1] && model.layers[2].outputShape == [13, 16] && model.layers[3].outputShape == [7, 8])
        try model.place(on: CPUDevice.shared, seed: 2)
        let x = try Tensor.normal([2, 40, 8], seed: 3)
        let url = try temporaryFolder().appendingPathComponent("conv1d.safetensors")
        try Checkpoint.save(model, to: url)
        let loaded = try Checkpoint.load(url, device: CPUDevice.shared).model
        #expect(try loaded(x).toArray() == model(x).toArray())
        #expect((loaded.layers[1] as? Conv1D)?.padding == .causal && (loaded.layers[1] as? Conv1D)?.dilationRate == 2)
    }
}
