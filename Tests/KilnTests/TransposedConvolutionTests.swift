import Foundation
import Testing
@testable import Kiln

/// Conv2DTranspose: the device op against a float64 reference (the adjoint of the direct convolution),
/// its gradients by finite differences, and Keras's output sizes.
@Suite("Transposed convolution") struct TransposedConvolutionTests {
    /// Odd sizes, both Keras paddings, output padding, a kernel smaller than the stride, explicit pads.
    static let shapes: [TransposedConvShape] = [
        try! TransposedConvShape(batch: 3, input: (5, 4), inChannels: 7, filters: 5, kernel: (3, 3), stride: (2, 2), padding: .same),
        try! TransposedConvShape(batch: 2, input: (4, 3), inChannels: 3, filters: 4, kernel: (3, 2), stride: (2, 1), padding: .valid),
        try! TransposedConvShape(batch: 2, input: (3, 5), inChannels: 5, filters: 3, kernel: (3, 3), stride: (2, 2), padding: .same,
                                 outputPadding: (0, 1)),
        try! TransposedConvShape(batch: 1, input: (4, 4), inChannels: 2, filters: 3, kernel: (2, 2), stride: (3, 3), padding: .valid),
        try! TransposedConvShape(batch: 2, input: (3, 4), inChannels: 16, filters: 16, kernel: (4, 4), stride: (2, 2), pads: (1, 1, 1, 1)),
        try! TransposedConvShape(batch: 3, input: (5, 3), inChannels: 4, filters: 2, kernel: (3, 3), stride: (2, 2), pads: (1, 0, 1, 2),
                                 outputPadding: (1, 1)),
    ]

    /// output = convolutionᵀ(x) + bias: the float64 input gradient of the convolution `s` at `x`.
    static func reference(_ t: TransposedConvShape, _ x: [Float], _ w: [Float], _ bias: [Float]) -> [Double] {
        let s = t.convolution
        let adjoint = ConvolutionTests.backward(s, [Float](repeating: 0, count: s.inputCount), w, x).dx
        return adjoint.enumerated().map { $0.element + Double(bias[$0.offset % s.inChannels]) }
    }

    @Test func kerasOutputSizes() throws {
        func size(_ input: Int, _ kernel: Int, _ stride: Int, _ padding: Padding, _ extra: Int? = nil) throws -> Int {
            try TransposedConvShape(batch: 1, input: (input, input), inChannels: 1, filters: 1, kernel: (kernel, kernel),
                                    stride: (stride, stride), padding: padding, outputPadding: extra.map { ($0, $0) }).outputShape[1]
        }
        // keras.layers.Conv2DTranspose's compute_output_shape for these settings.
        #expect(try size(7, 3, 2, .same) == 14 && size(7, 3, 2, .valid) == 15 && size(7, 2, 3, .valid) == 21)
        #expect(try size(7, 4, 2, .same) == 14 && size(7, 3, 2, .same, 1) == 14 && size(7, 3, 2, .valid, 1) == 16)
        #expect { try size(7, 3, 2, .same, 2) } throws: { "\($0)".contains("output padding must be below the stride") }
    }

    /// Forward and gradients against float64 references, with and without the fused ReLU; without it
    /// also by finite differences (the ReLU's kinks defeat them).
    @Test(arguments: Backend.all, shapes)
    func forwardAndGradients(_ backend: Backend, _ t: TransposedConvShape) throws {
        let d = backend.device, s = t.convolution
        var random = Random("conv-transpose\(t)")
        let x = random.floats(t.inputCount), w = random.floats(s.weightCount), b = random.floats(s.inChannels)
        let xShape = [s.batch, s.window.outputHeight, s.window.outputWidth, s.outChannels]
        let kShape = [s.window.kernelHeight, s.window.kernelWidth, s.inChannels, s.outChannels]
        let weights = random.floats(t.outputCount)
        let expected = Self.reference(t, x, w, b)
        for relu in [false, true] {
            let what = "conv2dTranspose relu=\(relu) \(t) on \(backend)"
            let (xt, wt, bt) = (try Tensor(x, shape: xShape, on: d), try Tensor(w, shape: kShape, on: d), try Tensor(b, shape: [s.inChannels], on: d))
            for leaf in [xt, wt, bt] { leaf.requiresGrad = true }
            let y = try xt.conv2dTranspose(wt, bias: bt, shape: t, relu: relu)
            #expect(y.shape == t.outputShape)
            expectClose(try y.toArray(), relu ? expected.map { max($0, 0) } : expected, what)
            try (y * Tensor(weights, shape: t.outputShape, on: d)).sum().backward()
            let (dx, dw, db) = (try xt.grad!.toArray(), try wt.grad!.toArray(), try bt.grad!.toArray())
            // The output gradient through the ReLU is the convolution's input: dx is its convolution, dw the kernel gradient of that.
            let g = relu ? zip(weights, expected).map { $1 > 0 ? $0 : 0 } : weights
            expectClose(dx, ConvolutionTests.forward(s, g, w, nil), "\(what) dx")
            expectClose(dw, ConvolutionTests.backward(s, g, w, x).dw, "\(what) dw")
            expectClose(db, (0..<s.inChannels).map { c in stride(from: c, to: g.count, by: s.inChannels).reduce(0.0) { $0 + Double(g[$1]) } }, "\(what) db")
            guard !relu else { continue }
            func loss(_ x: [Float], _ w: [Float], _ b: [Float]) throws -> Double {
                dot(try Tensor(x, shape: xShape, on: d).conv2dTranspose(Tensor(w, shape: kShape, on: d), bias: Tensor(b, shape: [s.inChannels], on: d),
                                                                       shape: t).toArray(), weights)
            }
            try expectGradient(at: x, gradient: dx, "\(what) dx") { try loss($0, w, b) }
            try expectGradient(at: w, gradient: dw, "\(what) dw") { try loss(x, $0, b) }
            try expectGradient(at: b, gradient: db, "\(what) db") { try loss(x, w, $0) }
        }
    }

    @Test func layerBuildsLikeKeras() throws {
        let model = try Sequential([Input(shape: [7, 7, 8]), Conv2DTranspose(4, kernelSize: 3, strides: 2, padding: .same, activation: .relu),
                                    Conv2DTranspose(1, kernelSize: (3, 3), strides: (2, 2), outputPadding: (1, 1))])
        #expect(model.outputs[0].shape == [30, 30, 1])
        #expect(model.layers.compactMap { $0 as? Conv2DTranspose }[0].weights.map(\.shape) == [[3, 3, 4, 8], [4]] && model.parameterCount == 3 * 3 * 4 * 8 + 4 + 3 * 3 * 1 * 4 + 1)
        #expect { try Sequential([Input(shape: [4, 4, 1]), Conv2DTranspose(1, kernelSize: (3, 3), strides: (2, 2), outputPadding: (2, 0))]) }
            throws: { "\($0)".contains("conv2d_transpose") }
    }

    /// A generator of every new layer (and ZeroPadding2D, Cropping2D) survives a checkpoint, Keras JSON and an ONNX export read back.
    @Test func generatorRoundTrips() throws {
        let model = try Sequential([Input(shape: [6]), Dense(2 * 2 * 3), Reshape([2, 2, 3]), ZeroPadding2D(padding: (1, 0, 2, 1)),
                                    Conv2DTranspose(4, kernelSize: 3, strides: 2, padding: .same, activation: .relu),
                                    UpSampling2D(interpolation: .bilinear), Conv2DTranspose(3, kernelSize: (2, 2), strides: (3, 3)),
                                    GaussianNoise(0.3), Conv2DTranspose(2, kernelSize: (3, 3), strides: (2, 2), outputPadding: (1, 0)),
                                    UpSampling2D(size: (1, 2)), GaussianDropout(0.2), Cropping2D(cropping: (1, 2, 0, 3)),
                                    Conv2D(1, kernelSize: 3, activation: .tanh)])
        try model.place(on: CPUDevice.shared, seed: 5)
        let z = try Tensor.normal([3, 6], seed: 6)
        let folder = try temporaryFolder()
        try Checkpoint.save(model, to: folder.appendingPathComponent("g.safetensors"))
        let loaded = try Checkpoint.load(folder.appendingPathComponent("g.safetensors"), device: CPUDevice.shared).model
        #expect(try loaded(z).toArray() == model(z).toArray())
        let upsampling = loaded.layers.compactMap { $0 as? UpSampling2D }
        #expect(upsampling.map(\.interpolation) == [.bilinear, .nearest] && loaded.layers.compactMap { $0 as? Conv2DTranspose }.map(\.outputPadding?.0) == [nil, nil, 1])
        try ONNXExport.save(model, to: folder.appendingPathComponent("g.onnx"))
        expectClose(try ONNXImport.load(folder.appendingPathComponent("g.onnx"), device: CPUDevice.shared)(z).toArray(),
                    try model(z).toArray().map(Double.init), "ONNX round trip")
    }

    /// A dilated transposed convolution is the plain one with zeros between the taps: the layer
    /// against that reference, its kernel gradient by finite differences, and the layer after a
    /// Keras JSON and an ONNX round trip.
    @Test(arguments: Backend.all)
    func dilation(_ backend: Backend) throws {
        let d = backend.device
        var random = Random("dilated-transpose")
        let layer = Conv2DTranspose(3, kernelSize: (3, 2), strides: (2, 1), padding: .same, dilationRate: (2, 3), name: "up")
        let model = try Sequential([Input(shape: [4, 5, 2]), layer])
        try model.place(on: d, seed: 4)
        #expect(model.outputs[0].shape == [8, 5, 3])
        let x = try Tensor(random.floats(3 * 4 * 5 * 2), shape: [3, 4, 5, 2], on: d)
        let kernel = try layer.weights[0].value.toArray(), bias = random.floats(3)
        try layer.weights[1].assign(bias)
        let span = try TransposedConvShape(batch: 3, input: (4, 5), inChannels: 2, filters: 3, kernel: (5, 4), stride: (2, 1), padding: .same)
        let spread = (0..<5 * 4 * 3 * 2).map { i -> Float in  // (5, 4, 3, 2): tap (r, c) of the 3×2 kernel at (2r, 3c)
            let (row, column, rest) = (i / (4 * 6), i / 6 % 4, i % 6)
            return row % 2 == 0 && column % 3 == 0 ? kernel[(row / 2 * 2 + column / 3) * 6 + rest] : 0
        }
        let expected = Self.reference(span, try x.toArray(), spread, bias)
        expectClose(try model(x).toArray(), expected, "dilated Conv2DTranspose on \(backend)")
        let weights = random.floats(expected.count)
        func loss(_ k: [Float]) throws -> Double {
            try layer.weights[0].assign(k)
            return dot(try model(x).toArray(), weights)
        }
        let w = try Tensor(weights, shape: [3, 8, 5, 3], on: d)
        try (model(x) * w).sum().backward()
        let gradient = try layer.weights[0].value.grad!.toArray()
        try expectGradient(at: kernel, gradient: gradient, "dilated kernel gradient on \(backend)") { try loss($0) }
        try layer.weights[0].assign(kernel)
        let rebuilt = try KerasConfig.model(from: try KerasConfig.json(of: model), file: "up.json")
        try rebuilt.place(on: d)
        for (weight, original) in zip(rebuilt.weights, model.weights) { try weight.assign(try original.value.toArray()) }
        #expect(try rebuilt(x).toArray() == model(x).toArray())
        let url = try temporaryFolder().appendingPathComponent("up.onnx")
        try ONNXExport.save(model, to: url)
        expectClose(try ONNXImport.load(url, device: d)(x).toArray(), expected, "ONNX round trip on \(backend)")
    }
}
