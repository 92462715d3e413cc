import Foundation
import Testing
@testable import Kiln

/// DepthwiseConv2D and SeparableConv2D: against a float64 reference, by finite differences, against a
/// PyTorch fixture (the Keras ones run with the other Keras files), and keras.applications' architectures.
@Suite("Depthwise convolution") struct DepthwiseTests {
    /// Output channel c·m + j of input channel c and filter j, Keras's `same` padding as the window gives it.
    static func reference(_ x: [Float], _ shape: [Int], _ k: [Float], _ kernel: [Int], _ bias: [Float], _ stride: (Int, Int), _ padding: Padding,
                          dilation: (Int, Int)) throws -> [Double] {
        let (n, h, w, c, kh, kw, m) = (shape[0], shape[1], shape[2], shape[3], kernel[0], kernel[1], kernel[3])
        let window = try Window2D(input: (h, w), kernel: (kh, kw), stride: stride, padding: padding, dilation: dilation)
        var y: [Double] = []
        for b in 0..<n { for oy in 0..<window.outputHeight { for ox in 0..<window.outputWidth { for ch in 0..<c { for j in 0..<m {
            var sum = Double(bias[ch * m + j])
            for i in 0..<kh { for q in 0..<kw {
                let (iy, ix) = (oy * stride.0 - window.padTop + i * dilation.0, ox * stride.1 - window.padLeft + q * dilation.1)
                guard (0..<h).contains(iy), (0..<w).contains(ix) else { continue }
                sum += Double(x[((b * h + iy) * w + ix) * c + ch]) * Double(k[((i * kw + q) * c + ch) * m + j])
            }}
            y.append(sum)
        }}}}}
        return y
    }

    /// Kernel, strides, padding, multiplier, dilation and channels (18: a full vector and a tail on the CPU).
    @Test(arguments: Backend.all, [((3, 3), (1, 1), Padding.same, 1, (1, 1), 3), ((3, 2), (2, 2), .valid, 2, (1, 1), 3),
                                   ((2, 3), (2, 1), .same, 3, (1, 1), 3), ((3, 2), (1, 1), .same, 1, (2, 3), 18), ((2, 2), (1, 1), .valid, 2, (3, 2), 3)])
    func matchesTheReference(_ backend: Backend, _ settings: ((Int, Int), (Int, Int), Padding, Int, (Int, Int), Int)) throws {
        let (d, (size, stride, padding, m, dilation, c)) = (backend.device, settings)
        let shape = [2, 7, 6, c], kernel = [size.0, size.1, c, m]
        var random = Random("depthwise\(settings)")
        let (x, k, b) = (random.floats(shape.reduce(1, *)), random.floats(kernel.reduce(1, *)), random.floats(c * m))
        func run(_ x: [Float], _ k: [Float], _ b: [Float]) throws -> Tensor {
            try Tensor(x, shape: shape, on: d).depthwiseConv2d(Tensor(k, shape: kernel, on: d), bias: Tensor(b, shape: [c * m], on: d),
                                                                strides: stride, padding: padding, dilation: dilation)
        }
        let expected = try Self.reference(x, shape, k, kernel, b, stride, padding, dilation: dilation)
        let what = "depthwise \(settings) on \(backend)"
        expectClose(try run(x, k, b).toArray(), expected, what)
        let weights = random.floats(expected.count)
        let (xt, kt, bt) = (try Tensor(x, shape: shape, on: d), try Tensor(k, shape: kernel, on: d), try Tensor(b, shape: [c * m], on: d))
        for t in [xt, kt, bt] { t.requiresGrad = true }
        let y = try xt.depthwiseConv2d(kt, bias: bt, strides: stride, padding: padding, dilation: dilation)
        try (y * Tensor(weights, shape: y.shape, on: d)).sum().backward()
        func loss(_ x: [Float], _ k: [Float], _ b: [Float]) throws -> Double { dot(try run(x, k, b).toArray(), weights) }
        try expectGradient(at: x, gradient: try xt.grad!.toArray(), "\(what) dx") { try loss($0, k, b) }
        try expectGradient(at: k, gradient: try kt.grad!.toArray(), "\(what) dk") { try loss(x, $0, b) }
        try expectGradient(at: b, gradient: try bt.grad!.toArray(), "\(what) db") { try loss(x, k, $0) }
    }

    /// A PyTorch 2.13 depthwise Conv2d (groups = channels, 2 filters each) and a 1×1 Conv2d load from a
    /// safetensors state dict into DepthwiseConv2D and Conv2D and give PyTorch's outputs.
    @Test(arguments: Backend.all)
    func matchesPyTorch(_ backend: Backend) throws {
        let d = backend.device
        let model = try Sequential([Input(shape: [5, 5, 3]), DepthwiseConv2D(3, padding: .same, depthMultiplier: 2, name: "dw"),
                                    Conv2D(4, kernelSize: 1, name: "pw")])
        try model.place(on: d)
        try PyTorchWeights.load(fixtures.appendingPathComponent("torch_depthwise.safetensors"), into: model)
        let x = try NumPy.read(fixtures.appendingPathComponent("torch_depthwise_x.npy"))
        let expected = try NumPy.read(fixtures.appendingPathComponent("torch_depthwise_y.npy")).values.map(Double.init)
        let y = try model(Tensor(x.values, shape: x.shape, on: d).permuted([0, 2, 3, 1])).permuted([0, 3, 1, 2])
        expectClose(try y.toArray(), expected, "Kiln vs PyTorch on \(backend)", tolerance: 1e-5)
    }

    /// keras.applications.MobileNet's and EfficientNetB0's to_json() (refused before) build with Keras's
    /// parameter counts; a checkpoint of a depthwise stack reads back, and an ONNX export of one.
    @Test func mobileNetArchitecture() throws {
        let url = fixtures.appendingPathComponent("keras_mobilenet.json.gz")
        let model = try KerasConfig.model(fromJSON: try Compression.gunzipIfNeeded(Data(contentsOf: url), file: url.path), file: url.path)
        #expect(model.parameterCount == 4_253_864 && model.outputs[0].shape == [1000])
        let efficientNet = fixtures.appendingPathComponent("keras_efficientnetb0.json.gz")
        let b0 = try KerasConfig.model(fromJSON: try Compression.gunzipIfNeeded(Data(contentsOf: efficientNet), file: efficientNet.path), file: efficientNet.path)
        #expect(b0.parameterCount == 5_330_571, "EfficientNetB0 (Normalization, Rescaling, DepthwiseConv2D, swish, Multiply)")
        let small = try Sequential([Input(shape: [6, 6, 2]), DepthwiseConv2D(3, padding: .same, depthMultiplier: 2, activation: .relu),
                                    SeparableConv2D(3, kernelSize: (3, 3), strides: (2, 2))])
        try small.place(on: CPUDevice.shared, seed: 1)
        let checkpoint = try temporaryFolder().appendingPathComponent("depthwise.safetensors")
        try Checkpoint.save(small, to: checkpoint)
        let x = try Tensor.normal([2, 6, 6, 2], seed: 3)
        #expect(try Checkpoint.load(checkpoint, device: CPUDevice.shared).model(x).toArray() == small(x).toArray())
        let exported = try Sequential([Input(shape: [6, 6, 2]), Normalization(mean: [0.5, -1], variance: [4, 0.25]),
                                       DepthwiseConv2D(3, strides: 2, padding: .same, depthMultiplier: 3, activation: .relu),
                                       SeparableConv2D(4, kernelSize: (2, 2), padding: .same, depthMultiplier: 2, activation: .tanh)])
        try exported.place(on: CPUDevice.shared, seed: 2)
        let onnx = checkpoint.deletingLastPathComponent().appendingPathComponent("depthwise.onnx")
        try ONNXExport.save(exported, to: onnx)
        expectClose(try ONNXImport.load(onnx)(x).toArray(), try exported(x).toArray().map(Double.init), "Normalization, DepthwiseConv2D and SeparableConv2D through ONNX")
    }
}

/// Keras's VarianceScaling initializer (EfficientNet's): the spread its mode and distribution ask for.
@Suite("Variance scaling") struct VarianceScalingTests {
    @Test func spreadMatchesKeras() {
        let shape = [3, 3, 16, 64]  // fan-in 144, fan-out 576
        for (fan, n) in [(Initializer.Fan.fanIn, 144.0), (.fanOut, 576.0), (.fanAverage, 360.0)] {
            for distribution in [Initializer.Distribution.truncatedNormal, .normal, .uniform] {
                var random = RandomGenerator(seed: 3)
                let values = Initializer.varianceScaling(scale: 2, fan: fan, distribution: distribution).values(shape: shape, random: &random)
                let deviation = (values.reduce(0.0) { $0 + Double($1 * $1) } / Double(values.count)).squareRoot()
                #expect(abs(deviation / (2 / n).squareRoot() - 1) < 0.03, "\(fan) \(distribution): \(deviation)")
            }
        }
    }
}

/// ConvNeXt's pieces: a grouped Conv2D (groups = input channels) and LayerScale.
@Suite("Grouped convolution and LayerScale") struct GroupedConvolutionTests {
    /// Conv2D(groups: channels) gives DepthwiseConv2D's outputs for the same floats, with Keras's kernel
    /// shape (kh, kw, 1, filters); its gradients by finite differences; other group counts are refused.
    @Test(arguments: Backend.all)
    func groupedConvolutionIsDepthwise(_ backend: Backend) throws {
        let d = backend.device
        let grouped = try Sequential([Input(shape: [6, 5, 3]), Conv2D(6, kernelSize: (3, 2), padding: .same, groups: 3)])
        try grouped.place(on: d, seed: 4)
        #expect(grouped.weights[0].shape == [3, 2, 1, 6])
        let depthwise = try Sequential([Input(shape: [6, 5, 3]), DepthwiseConv2D(kernelSize: (3, 2), padding: .same, depthMultiplier: 2)])
        try depthwise.place(on: d, seed: 1)
        for (to, from) in zip(depthwise.weights, grouped.weights) { try to.assign(from.value.toArray()) }
        let x = try Tensor.normal([2, 6, 5, 3], seed: 5, on: d)
        #expect(try grouped(x).toArray() == depthwise(x).toArray())
        var random = Random("grouped")
        let (values, weights) = (random.floats(2 * 6 * 5 * 3), random.floats(2 * 6 * 5 * 6))
        let input = try Tensor(values, shape: [2, 6, 5, 3], on: d)
        input.requiresGrad = true
        try (grouped(input) * Tensor(weights, shape: [2, 6, 5, 6], on: d)).sum().backward()
        try expectGradient(at: values, gradient: try input.grad!.toArray(), "grouped Conv2D dx on \(backend)") {
            dot(try grouped(Tensor($0, shape: [2, 6, 5, 3], on: d)).toArray(), weights)
        }
        #expect(throws: (any Error).self) { try Sequential([Input(shape: [6, 5, 4]), Conv2D(4, kernelSize: (3, 3), groups: 2)]) }
    }

    /// LayerScale multiplies the last axis by gamma (starting at init_values); its gradient by finite differences.
    @Test(arguments: Backend.all)
    func layerScale(_ backend: Backend) throws {
        let d = backend.device
        let model = try Sequential([Input(shape: [2, 3, 4]), LayerScale(initValue: 0.5, projectionDim: 4)])
        try model.place(on: d)
        #expect(try model.weights[0].value.toArray() == [0.5, 0.5, 0.5, 0.5])
        try model.weights[0].assign([1, -2, 0.25, 3])
        var random = Random("layer scale")
        let values = random.floats(24)
        let y = try model(Tensor(values, shape: [1, 2, 3, 4], on: d)).toArray()
        #expect(y == values.enumerated().map { $0.element * [1, -2, 0.25, 3][$0.offset % 4] })
        #expect(throws: (any Error).self) { try Sequential([Input(shape: [3, 5]), LayerScale(initValue: 1, projectionDim: 4)]) }
    }
}
