import Testing
@testable import Kiln

@Suite("Models") struct ModelTests {
    static func cnn(thirdConv: Bool, secondPool: Bool) throws -> Sequential {
        var layers: [Layer] = [Input(shape: [32, 32, 3]), Conv2D(32, kernelSize: 3, activation: .relu), MaxPooling2D(2),
                               Conv2D(32, kernelSize: 3, activation: .relu)]
        if secondPool { layers.append(MaxPooling2D(2)) }
        if thirdConv { layers.append(Conv2D(32, kernelSize: 3, activation: .relu)) }
        return try Sequential(layers + [Flatten(), Dense(10)])
    }

    /// Keras's own counts for the workshop models.
    @Test func parameterCountsMatchKeras() throws {
        #expect(try Self.cnn(thirdConv: false, secondPool: true).parameterCount == 21_674)
        #expect(try Self.cnn(thirdConv: true, secondPool: true).parameterCount == 24_522)
        #expect(try Self.cnn(thirdConv: true, secondPool: false).parameterCount == 58_122)
        #expect(try Sequential([Input(shape: [32, 32, 3]), Flatten(), Dense(100)]).parameterCount == 307_300)
        #expect(try Sequential([Input(shape: [32, 32, 3]), Conv2D(100, kernelSize: 3, useBias: false)]).parameterCount == 2_700)
        #expect(try Self.workshopCNN().parameterCount == 28_394)
    }

    static func workshopCNN() throws -> Sequential {
        try Sequential([
            Input(shape: [28, 28, 1]), Conv2D(32, kernelSize: 3, activation: .relu), MaxPooling2D(2),
            Conv2D(32, kernelSize: 3, activation: .relu), MaxPooling2D(2), Conv2D(32, kernelSize: 3, activation: .relu),
            Dropout(0.2), Flatten(), Dense(32, activation: .relu), Dense(10),
        ])
    }

    @Test func summaryReadsLikeKeras() throws {
        let model = try Sequential([Input(shape: [28, 28, 1]), Conv2D(32, kernelSize: 3, activation: .relu, name: "conv"),
                                    BatchNormalization(name: "norm"), Flatten(name: "flat"), Dense(10, name: "out")], name: "demo")
        let summary = model.summary()
        #expect(summary.contains("Model: \"demo\""))
        #expect(summary.contains("conv (Conv2D)") && summary.contains("(None, 26, 26, 32)") && summary.contains("320"))
        #expect(summary.contains("norm (BatchNormalization)") && summary.contains("128"))
        #expect(summary.contains("out (Dense)") && summary.contains("(None, 10)") && summary.contains("216,330"))
        #expect(summary.contains("Total params: 216,778"))
        #expect(summary.contains("Trainable params: 216,714"))
        #expect(summary.contains("Non-trainable params: 64"))
    }

    @Test func functionalResidualModel() throws {
        let input = Input(shape: [8, 8, 4])
        let a = try Conv2D(4, kernelSize: 3, padding: .same, activation: .relu)(input)
        let b = try Conv2D(4, kernelSize: 3, padding: .same)(a)
        let sum = try Add()([b, input.output])
        let joined = try Concatenate()([sum, a])
        let output = try Dense(3)(try GlobalAveragePooling2D()(joined))
        let model = try Model(inputs: input, outputs: output)
        #expect(model.layers.count == 7)
        #expect(model.outputs[0].shape == [3])
        let summary = model.summary()
        #expect(summary.contains("(InputLayer)") && summary.contains("(None, 8, 8, 4)") && !summary.contains("(None, )"), "the input's shape: \(summary)")
        try model.place(on: CPUDevice.shared, seed: 3)
        #expect(try model(Tensor.zeros([2, 8, 8, 4])).shape == [2, 3])
    }

    /// One optimizer step of a small CNN, the same seed and batch on each backend.
    @Test func oneStepAgreesAcrossBackends() throws {
        var random = Random("cross-backend")
        let x = random.floats(4 * 12 * 12 * 1), labels = (0..<4).map { _ in Int32(random.int(5)) }
        let results = try Backend.all.map { backend -> [[Float]] in
            let model = try Sequential([Input(shape: [12, 12, 1]), Conv2D(4, kernelSize: 3, activation: .relu), BatchNormalization(),
                                        MaxPooling2D(2), Dropout(0.25), Flatten(), Dense(5)])
            try model.place(on: backend.device, seed: 11)
            // SGD: its step is linear in the gradient. (Adam's first step is lr·sign(g), so a gradient
            // that is 1e-9 on one backend and −1e-9 on the other would differ by 2·lr.)
            let optimizer = SGD(learningRate: 0.1, momentum: 0.9)
            let loss = try SparseCategoricalCrossentropy(fromLogits: true)(
                Tensor(labels: labels, on: backend.device), model(Tensor(x, shape: [4, 12, 12, 1], on: backend.device), training: true))
            try loss.backward()
            try optimizer.apply(to: model.trainableWeights)
            return try model.weights.map { try $0.value.toArray() }
        }
        for other in results.dropFirst() {
            for (a, b) in zip(results[0], other) { expectClose(b, a.map(Double.init), "parameters after one step") }
        }
    }

    @Test(arguments: Backend.all)
    func mlpLearnsXOR(_ backend: Backend) throws {
        let device = backend.device
        let model = try Sequential([Input(shape: [2]), Dense(8, activation: .tanh), Dense(1, activation: .sigmoid)])
        try model.place(on: device, seed: 5)
        let x = try Tensor([0, 0, 0, 1, 1, 0, 1, 1], shape: [4, 2], on: device)
        let y = try Tensor([0, 1, 1, 0], shape: [4, 1], on: device)
        let optimizer = Adam(learningRate: 0.05), loss = BinaryCrossentropy()
        for _ in 0..<300 {
            try loss(y, model(x, training: true)).backward()
            try optimizer.apply(to: model.trainableWeights)
        }
        let accuracy = BinaryAccuracy()
        try accuracy.update(y, model(x))
        #expect(try accuracy.result() == 1)
    }

    @Test(arguments: Backend.all)
    func cnnOverfitsSixtyFourImages(_ backend: Backend) throws {
        let device = backend.device
        var random = Random("overfit")
        let images = random.floats(64 * 28 * 28, 0...1), labels = (0..<64).map { _ in Int32(random.int(10)) }
        let model = try Sequential([Input(shape: [28, 28, 1]), Conv2D(8, kernelSize: 3, strides: 2, activation: .relu),
                                    MaxPooling2D(2), Flatten(), Dense(32, activation: .relu), Dense(10)])
        try model.place(on: device, seed: 2)
        let (x, y) = (try Tensor(images, shape: [64, 28, 28, 1], on: device), try Tensor(labels: labels, on: device))
        let optimizer = Adam(learningRate: 0.003), loss = SparseCategoricalCrossentropy(fromLogits: true)
        for _ in 0..<150 {
            try loss(y, model(x, training: true)).backward()
            try optimizer.apply(to: model.trainableWeights)
        }
        let accuracy = Accuracy()
        try accuracy.update(y, model(x))
        #expect(try accuracy.result() == 1)
    }

    @Test(arguments: Backend.all)
    func convolutionReadOnlyByMaxPoolRunsFused(_ backend: Backend) throws {
        // conv1 → pool runs as one op; conv2's output is also a model output, so it runs on its own.
        let input = Input(shape: [12, 10, 3])
        let conv1 = Conv2D(16, kernelSize: 3, activation: .relu), pool1 = MaxPooling2D(2)
        let conv2 = Conv2D(16, kernelSize: 3), pool2 = MaxPooling2D(2)
        let pooled = try pool1(conv1(input))
        let c2 = try conv2(pooled)
        let model = try Model(inputs: [input], outputs: [try pool2(c2), c2])
        #expect(model.pooledConvolutions.count == 1)
        try model.place(on: backend.device, seed: 3)
        var random = Random("fused-model")
        let x = try Tensor(random.floats(2 * 12 * 10 * 3), shape: [2, 12, 10, 3], on: backend.device)
        x.requiresGrad = true
        // The same outputs and gradients as calling the layers one by one (the fused op's own
        // gradients are checked against the two ops in ConvolutionTests).
        func run(fused: Bool) throws -> (outputs: [[Float]], gradients: [[Float]]) {
            var outputs: [Tensor]
            if fused { outputs = try model([x]) } else {
                var y = x
                for layer in [conv1, pool1, conv2] as [Layer] { y = try layer.forward([y], training: false) }
                outputs = [try pool2.forward([y], training: false), y]
            }
            var random = Random("fused-r")
            let r = try outputs.map { try Tensor(random.floats($0.count), shape: $0.shape, on: backend.device) }
            try (try (outputs[0] * r[0]).sum() + (try (outputs[1] * r[1]).sum())).backward()
            let tensors = [x] + model.trainableWeights.map { $0.value! }
            defer { for t in tensors { t.zeroGrad() } }
            return (try outputs.map { try $0.toArray() }, try tensors.map { try $0.grad!.toArray() })
        }
        let (fused, separate) = (try run(fused: true), try run(fused: false))
        for (a, b) in zip(fused.outputs, separate.outputs) { expectClose(a, b.map(Double.init), "model output vs layer by layer") }
        for (a, b) in zip(fused.gradients, separate.gradients) { expectClose(a, b.map(Double.init), "gradient vs layer by layer") }
    }
}
