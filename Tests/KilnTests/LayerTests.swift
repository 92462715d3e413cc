import Testing
@testable import Kiln

/// Checks a model's backward pass by finite differences of its forward pass, for every input and
/// every trainable weight: L = Σ model(x) · R for a fixed random R.
func expectModelGradients(_ model: Model, inputs: [[Float]], batch: Int, backend: Backend, training: Bool = true,
                          _ what: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let device = backend.device
    try model.place(on: device, seed: 7)
    let shapes = model.inputs.map { [batch] + $0.shape }
    var random = Random("model-\(what)")
    let outputShape = [batch] + model.outputs[0].shape
    let weights = try Tensor(random.floats(outputShape.reduce(1, *)), shape: outputShape, on: device)
    func loss(_ values: [[Float]]) throws -> Tensor {
        // Dropout draws the same mask on every evaluation.
        for case let dropout as Dropout in model.layers { dropout.offset = 0 }
        let tensors = try zip(values, shapes).map { try Tensor($0, shape: $1, on: device) }
        for t in tensors { t.requiresGrad = true }
        let output = try model(tensors, training: training)[0]
        let l = try (output * weights).sum()
        try l.backward()
        for (t, name) in zip(tensors, model.inputs.map(\.name)) where t.grad == nil { Issue.record("\(what): no gradient for input \(name)") }
        inputGrads = try tensors.map { try $0.grad?.toArray() ?? [] }
        return l
    }
    var inputGrads: [[Float]] = []
    _ = try loss(inputs)
    let xGrads = inputGrads
    let weightGrads = try model.trainableWeights.map { try $0.value.grad?.toArray() }
    for weight in model.trainableWeights { weight.value.zeroGrad() }
    func value(_ values: [[Float]]) throws -> Double {
        defer { for weight in model.trainableWeights { weight.value.zeroGrad() } }
        return Double(try GradMode.$isEnabled.withValue(true) { try loss(values).item() })
    }
    for i in inputs.indices {
        try expectGradient(at: inputs[i], gradient: xGrads[i], "\(what) d/d\(model.inputs[i].name)", sourceLocation: sourceLocation) { x in
            var values = inputs
            values[i] = x
            return try value(values)
        }
    }
    for (weight, gradient) in zip(model.trainableWeights, weightGrads) {
        guard let gradient else { Issue.record("\(what): no gradient for \(weight.path)", sourceLocation: sourceLocation); continue }
        let original = try weight.value.toArray()
        try expectGradient(at: original, gradient: gradient, "\(what) d/d\(weight.path)", sourceLocation: sourceLocation) { w in
            try weight.assign(w)
            defer { try? weight.assign(original) }
            return try value([inputs[0]] + inputs.dropFirst())
        }
    }
}

@Suite("Layers") struct LayerTests {
    /// Inputs kept at least 0.1 away from 0, so that no finite-difference step crosses a ReLU kink.
    static func awayFromZero(_ count: Int, _ salt: String) -> [Float] {
        var random = Random(salt)
        return random.floats(count).map { $0 < 0 ? $0 - 0.1 : $0 + 0.1 }
    }

    /// Distinct values 0.03 apart in random order: no finite-difference step changes a maximum.
    static func distinct(_ count: Int, _ salt: String) -> [Float] {
        var random = Random(salt)
        var x = (0..<count).map { Float($0 - count / 2) * 0.03 }
        for i in x.indices.reversed() { x.swapAt(i, random.int(i + 1)) }
        return x
    }

    static func single(_ layer: Layer, input shape: [Int]) throws -> Model {
        let input = Input(shape: shape)
        return try Model(inputs: input, outputs: layer(input))
    }

    @Test(arguments: Backend.all)
    func weightedLayers(_ backend: Backend) throws {
        let cases: [(String, Layer, [Int])] = [
            ("dense", Dense(5), [7]),
            ("dense rank 3", Dense(4, activation: .tanh), [3, 6]),
            ("conv2d valid", Conv2D(4, kernelSize: 3), [7, 6, 3]),
            ("conv2d same stride 2", Conv2D(3, kernelSize: (3, 2), strides: (2, 2), padding: .same), [7, 5, 2]),
            ("batch norm", BatchNormalization(), [5, 4, 3]),
        ]
        for (what, layer, shape) in cases {
            try expectModelGradients(Self.single(layer, input: shape), inputs: [Self.awayFromZero(3 * shape.reduce(1, *), what)],
                                     batch: 3, backend: backend, what)
        }
    }

    @Test(arguments: Backend.all)
    func parameterFreeLayers(_ backend: Backend) throws {
        let shape = [6, 5, 4]
        let smooth: [(String, Layer)] = [
            ("average pool", AveragePooling2D(2)), ("average pool same", AveragePooling2D(poolSize: (3, 3), strides: (2, 2), padding: .same)),
            ("global average pool", GlobalAveragePooling2D()), ("flatten", Flatten()), ("reshape", Reshape([-1, 4])), ("permute", Permute([3, 1, 2])),
            ("dropout", Dropout(0.4)), ("sigmoid", Activation(.sigmoid)), ("tanh", Activation(.tanh)), ("softmax", Softmax()),
            ("softplus", Activation(.softplus)), ("relu", ReLU()), ("leaky relu", LeakyReLU(negativeSlope: 0.2)),
            ("relu activation", Activation(.relu)),
        ]
        for (what, layer) in smooth {
            try expectModelGradients(Self.single(layer, input: shape), inputs: [Self.awayFromZero(2 * 120, what)], batch: 2, backend: backend, what)
        }
        let maxima: [(String, Layer)] = [("max pool", MaxPooling2D(2)), ("max pool same", MaxPooling2D(poolSize: (3, 3), strides: (2, 2), padding: .same)),
                                         ("global max pool", GlobalMaxPooling2D())]
        for (what, layer) in maxima {
            try expectModelGradients(Self.single(layer, input: shape), inputs: [Self.distinct(2 * 120, what)], batch: 2, backend: backend, what)
        }
    }

    @Test(arguments: Backend.all)
    func mergeLayers(_ backend: Backend) throws {
        for (what, merge) in [("add", Add() as Layer), ("concatenate", Concatenate())] {
            let a = Input(shape: [4, 3, 2]), b = Input(shape: [4, 3, 2])
            let model = try Model(inputs: [a, b], outputs: try merge([a.output, try Conv2D(2, kernelSize: 1)(b)]))
            try expectModelGradients(model, inputs: [Self.awayFromZero(48, "a"), Self.awayFromZero(48, "b")], batch: 2, backend: backend, what)
        }
    }

    @Test(arguments: Backend.all)
    func dropoutIsIdentityInInference(_ backend: Backend) throws {
        let model = try Self.single(Dropout(0.5), input: [10])
        try model.place(on: backend.device)
        let x = try Tensor((0..<30).map(Float.init), shape: [3, 10], on: backend.device)
        #expect(try model(x).toArray() == x.toArray())
        let dropped = try model(x, training: true).toArray()
        #expect(dropped.contains(0) && dropped.contains { $0 != 0 })
    }

    @Test(arguments: Backend.all)
    func frozenLayersGetNoGradientAndBatchNormUsesMovingStatistics(_ backend: Backend) throws {
        let conv = Conv2D(2, kernelSize: 3), norm = BatchNormalization(), head = Dense(3)
        let model = try Sequential([Input(shape: [5, 5, 1]), conv, norm, Flatten(), head])
        try model.place(on: backend.device, seed: 1)
        conv.trainable = false
        norm.trainable = false
        #expect(model.trainableWeights.map(\.path) == [head.name + "/kernel", head.name + "/bias"])
        let before = try norm.weights.map { try $0.value.toArray() }
        var random = Random("frozen")
        let x = try Tensor(random.floats(2 * 25), shape: [2, 5, 5, 1], on: backend.device)
        let loss = try model(x, training: true).square().mean()
        try loss.backward()
        #expect(conv.weights.allSatisfy { $0.value.grad == nil })
        #expect(head.weights.allSatisfy { $0.value.grad != nil })
        try SGD(learningRate: 0.1).apply(to: model.weights)
        #expect(try norm.weights.map { try $0.value.toArray() } == before, "a frozen batch norm keeps its moving statistics")
    }

    /// Keras's 1-based `dims`: `Permute([3, 1, 2])` turns (H, W, C) into (C, H, W).
    @Test(arguments: Backend.all)
    func permuteReordersSampleAxes(_ backend: Backend) throws {
        let model = try Self.single(Permute([3, 1, 2]), input: [2, 3, 4])
        #expect(model.outputs[0].shape == [4, 2, 3])
        try model.place(on: backend.device)
        let x = (0..<48).map(Float.init)
        let y = try model(Tensor(x, shape: [2, 2, 3, 4], on: backend.device)).toArray()
        var expected: [Float] = []
        for n in 0..<2 { for c in 0..<4 { for h in 0..<2 { for w in 0..<3 { expected.append(x[((n * 2 + h) * 3 + w) * 4 + c]) } } } }
        #expect(y == expected)
        #expect { try Self.single(Permute([1, 1, 2]), input: [2, 3, 4]) } throws: { "\($0)".contains("not a permutation") }
    }

    @Test func shapeErrorsNameTheLayer() throws {
        let input = Input(shape: [4, 4, 3])
        let conv = Conv2D(8, kernelSize: 5, name: "too_big")
        #expect { try conv(input) } throws: { "\($0)".contains("too_big") && "\($0)".contains("height: 4") }
        let model = try Sequential([Input(shape: [6]), Dense(2)])
        try model.place(on: CPUDevice.shared)
        #expect { try model(Tensor.zeros([3, 5])) } throws: { "\($0)".contains("[6]") && "\($0)".contains("[3, 5]") }
        let add = Add(name: "sum")
        #expect { try add([Input(shape: [3]).output, Input(shape: [4]).output]) } throws: { "\($0)".contains("sum") && "\($0)".contains("[[3], [4]]") }
    }
}
