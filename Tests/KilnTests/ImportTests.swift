import Foundation
import Testing
@testable import Kiln

/// Files made by the real frameworks with Scripts/make-fixtures.sh.
let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

@Suite("Weight import and export") struct ImportTests {
    /// Kiln's twin of `ResidualCNN` in Scripts/make-fixtures.py, with the PyTorch module names.
    static func residualCNN() throws -> Model {
        let input = Input(shape: [8, 8, 3])
        let y = try ReLU()(BatchNormalization(momentum: 0.9, epsilon: 1e-5, name: "bn1")(Conv2D(8, kernelSize: 3, padding: .same, name: "conv1")(input)))
        let z = try BatchNormalization(momentum: 0.9, epsilon: 1e-5, name: "bn2")(Conv2D(8, kernelSize: 3, padding: .same, name: "conv2")(y))
        let pooled = try MaxPooling2D(2)(ReLU()(Add()([y, z])))
        return try Model(inputs: input, outputs: Dense(5, name: "fc")(Flatten()(pooled)))
    }

    /// PyTorch's outputs on its own NCHW input, fed to Kiln as NHWC: within 1e-5 relative to the
    /// outputs' RMS (float32 sums in another order differ in the last bits).
    @Test(arguments: Backend.all)
    func pytorchStateDictMatchesPyTorch(_ backend: Backend) throws {
        let model = try Self.residualCNN()
        try model.place(on: backend.device)
        try PyTorchWeights.load(fixtures.appendingPathComponent("torch_cnn.safetensors"), into: model)
        let x = try NumPy.read(fixtures.appendingPathComponent("torch_cnn_x.npy"))
        let expected = try NumPy.read(fixtures.appendingPathComponent("torch_cnn_y.npy"))
        let nchw = try Tensor(x.values, shape: x.shape, on: backend.device)
        let y = try model(nchw.permuted([0, 2, 3, 1])).toArray()
        expectClose(y, expected.values.map(Double.init), "Kiln vs PyTorch", tolerance: 1e-5)
    }

    @Test func pytorchExportRoundTrips() throws {
        let source = try Self.residualCNN()
        try source.place(on: CPUDevice.shared, seed: 3)
        let url = try temporaryFolder().appendingPathComponent("out.safetensors")
        try PyTorchWeights.save(source, to: url)
        let file = try SafeTensors(contentsOf: url)
        #expect(file.entries["conv1.weight"]?.shape == [8, 3, 3, 3] && file.entries["fc.weight"]?.shape == [5, 128])
        #expect(file.entries["bn2.running_var"]?.shape == [8])
        let copy = try Self.residualCNN()
        try copy.place(on: CPUDevice.shared, seed: 4)
        try PyTorchWeights.load(url, into: copy)
        for (a, b) in zip(source.weights, copy.weights) { #expect(try a.value.toArray() == b.value.toArray(), "\(a.path)") }
    }

    @Test func badStateDictsAreNamed() throws {
        let model = try Self.residualCNN()
        try model.place(on: CPUDevice.shared)
        let url = try temporaryFolder().appendingPathComponent("bad.safetensors")
        let original = try SafeTensors(contentsOf: fixtures.appendingPathComponent("torch_cnn.safetensors"))
        var tensors = try original.entries.keys.sorted().map { (name: $0, shape: original.entries[$0]!.shape, values: try original.floats($0)) }
        tensors.removeAll { $0.name == "bn1.running_var" }
        try SafeTensors.write(tensors, metadata: [:], to: url)
        #expect { try PyTorchWeights.load(url, into: model) } throws: { "\($0)".contains("bn1.running_var") && "\($0)".contains(url.path) }
        tensors.append((name: "bn1.running_var", shape: [9], values: [Float](repeating: 1, count: 9)))
        try SafeTensors.write(tensors, metadata: [:], to: url)
        #expect { try PyTorchWeights.load(url, into: model) } throws: { "\($0)".contains("'bn1.running_var' has shape [9]") }
        tensors.removeLast()
        tensors.append((name: "bn1.running_var", shape: [8], values: [Float](repeating: 1, count: 8)))
        tensors.append((name: "head.weight", shape: [1], values: [0]))
        try SafeTensors.write(tensors, metadata: [:], to: url)
        #expect { try PyTorchWeights.load(url, into: model) } throws: { "\($0)".contains("no place for: head.weight") }
        try PyTorchWeights.load(url, into: model, strict: false)
    }

    @Test func safetensorsHalfAndBFloat16() throws {
        // Header and data written by hand: F16 [1, -2] and BF16 [0.5, 3].
        let header = #"{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]}}"#
        var bytes = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { Array($0) } + Array(header.utf8)
        bytes += [0x00, 0x3C, 0x00, 0xC0, 0x00, 0x3F, 0x40, 0x40]
        let url = try temporaryFolder().appendingPathComponent("half.safetensors")
        try Data(bytes).write(to: url)
        let file = try SafeTensors(contentsOf: url)
        #expect(try file.floats("a") == [1, -2] && file.floats("b") == [0.5, 3])
        let unknown = header.replacingOccurrences(of: "F16", with: "C64")
        try Data(withUnsafeBytes(of: UInt64(unknown.utf8.count).littleEndian) { Array($0) } + Array(unknown.utf8) + bytes.suffix(8)).write(to: url)
        #expect { try SafeTensors(contentsOf: url) } throws: { "\($0)".contains("unsupported dtype") }
    }
}

@Suite("NumPy weight bundles") struct WeightBundleTests {
    @Test func npzRoundTripAndErrors() throws {
        let model = try ImportTests.residualCNN()
        try model.place(on: CPUDevice.shared, seed: 1)
        let url = try temporaryFolder().appendingPathComponent("weights.npz")
        try WeightBundle.save(model, to: url)
        let copy = try ImportTests.residualCNN()
        try copy.place(on: CPUDevice.shared, seed: 2)
        try WeightBundle.load(url, into: copy)
        for (a, b) in zip(model.weights, copy.weights) { #expect(try a.value.toArray() == b.value.toArray(), "\(a.path)") }
        let small = try Sequential([Input(shape: [3]), Dense(2, name: "conv1")])
        try small.place(on: CPUDevice.shared)
        #expect { try WeightBundle.load(url, into: small) } throws: { "\($0)".contains("'conv1/kernel' has shape [3, 3, 3, 8]") }
    }
}

@Suite("Keras files") struct KerasFileTests {
    /// Keras's own outputs for its input batch (NHWC), within 1e-5 relative to their RMS.
    @Test(arguments: Backend.all, ["keras_cnn.keras", "keras_cnn.h5"])
    func kerasModelsMatchKeras(_ backend: Backend, file: String) throws {
        let model = try KerasFile.load(fixtures.appendingPathComponent(file), device: backend.device)
        #expect(model.name == "keras_cnn" && model.inputs[0].name == "image")
        let x = try NumPy.read(fixtures.appendingPathComponent("keras_cnn_x.npy"))
        let expected = try NumPy.read(fixtures.appendingPathComponent("keras_cnn_y.npy"))
        let y = try model(Tensor(x.values, shape: x.shape, on: backend.device)).toArray()
        expectClose(y, expected.values.map(Double.init), "Kiln vs Keras (\(file))", tolerance: 1e-5)
    }

    /// A functional model calling two Sequential models whose layers share names: Keras's outputs, a
    /// checkpoint round trip, and one optimizer over all weights (distinct paths, distinct slots).
    @Test(arguments: Backend.all, ["keras_nested.keras", "keras_nested.h5"])
    func nestedKerasModelsMatchKeras(_ backend: Backend, file: String) throws {
        let model = try KerasFile.load(fixtures.appendingPathComponent(file), device: backend.device)
        #expect(model.layers.map(\.name) == ["noise", "generator", "discriminator", "head"])
        let paths = model.weights.map(\.path)
        #expect(Set(paths).count == paths.count && paths.contains("discriminator/bn/moving_variance") && paths.contains("generator/dense/kernel"))
        let x = try NumPy.read(fixtures.appendingPathComponent("keras_nested_x.npy"))
        let expected = try NumPy.read(fixtures.appendingPathComponent("keras_nested_y.npy")).values.map(Double.init)
        let input = try Tensor(x.values, shape: x.shape, on: backend.device)
        expectClose(try model(input).toArray(), expected, "Kiln vs Keras (\(file))", tolerance: 1e-5)
        try model.compile(optimizer: Adam(learningRate: 0.01), loss: MeanSquaredError())
        try model.fit(x: input, y: Tensor.zeros([4, 2], on: backend.device), epochs: 2, batchSize: 2, progress: false)
        #expect(model.compiled!.optimizer.stateTensors().count == 2 * model.trainableWeights.count)
        let url = try temporaryFolder().appendingPathComponent("nested.safetensors")
        try Checkpoint.save(model, to: url)
        let reloaded = try Checkpoint.load(url, device: backend.device).model
        #expect(try reloaded(input).toArray() == model(input).toArray())
    }

    /// Models saved by Keras 3.15 give Keras's outputs: a masked text model (Embedding with mask_zero,
    /// Bidirectional LSTM, GRU), a series model (causal dilated Conv1D, pooling, backwards SimpleRNN,
    /// LayerNormalization, TimeDistributed, global pooling), GRUs with reset_after=False, a depthwise
    /// stack (DepthwiseConv2D, SeparableConv2D), Normalization (adapted and given), and recurrent
    /// layers whose returned states (return_state) start others (initial_state), also bidirectional,
    /// and dilated Conv2DTranspose.
    @Test(arguments: Backend.all, ["keras_text", "keras_series", "keras_gru_v1", "keras_depthwise", "keras_normalization", "keras_seq2seq", "keras_bidirectional_state", "keras_dilated_transpose"].flatMap { [$0 + ".keras", $0 + ".h5"] })
    func layerFixturesMatchKeras(_ backend: Backend, file: String) throws {
        let model = try KerasFile.load(fixtures.appendingPathComponent(file), device: backend.device)
        let stem = file.split(separator: ".")[0]
        let x = try NumPy.read(fixtures.appendingPathComponent("\(stem)_x.npy"))
        let expected = try NumPy.read(fixtures.appendingPathComponent("\(stem)_y.npy")).values.map(Double.init)
        expectClose(try model(Tensor(x.values, shape: x.shape, on: backend.device)).toArray(), expected, "Kiln vs Keras (\(file))", tolerance: 1e-5)
    }

    /// PyTorch 2.13 state dicts of sequence models (nn.Embedding, nn.Conv1d, nn.GRU; a bidirectional
    /// nn.LSTM and nn.RNN) load into the Kiln layers of the same names and give PyTorch's outputs; a
    /// saved state dict reads back the same.
    @Test(arguments: Backend.all)
    func pytorchSequenceModelsMatchPyTorch(_ backend: Backend) throws {
        let d = backend.device
        let models: [(String, Model)] = [
            ("torch_gru", try Sequential([Input(shape: [9]), Embedding(inputDim: 20, outputDim: 6, name: "emb"),
                                          Conv1D(5, kernelSize: 3, activation: .relu, name: "conv"), GRU(4, name: "gru"), Dense(2, name: "fc")])),
            ("torch_bilstm", try Sequential([Input(shape: [9]), Embedding(inputDim: 20, outputDim: 6, name: "emb"),
                                             Bidirectional(LSTM(5, returnSequences: true), name: "lstm"), SimpleRNN(3, name: "rnn"), Dense(1, name: "fc")])),
        ]
        for (stem, model) in models {
            try model.place(on: d)
            try PyTorchWeights.load(fixtures.appendingPathComponent("\(stem).safetensors"), into: model)
            let x = try NumPy.read(fixtures.appendingPathComponent("\(stem)_x.npy"))
            let expected = try NumPy.read(fixtures.appendingPathComponent("\(stem)_y.npy")).values.map(Double.init)
            let input = try Tensor(x.values, shape: x.shape, on: d)
            expectClose(try model(input).toArray(), expected, "Kiln vs PyTorch (\(stem)) on \(backend)", tolerance: 1e-5)
            let url = try temporaryFolder().appendingPathComponent("\(stem).safetensors")
            try PyTorchWeights.save(model, to: url)
            let original = try SafeTensors(contentsOf: fixtures.appendingPathComponent("\(stem).safetensors"))
            #expect(try Set(SafeTensors(contentsOf: url).entries.keys) == Set(original.entries.keys))
            for weight in model.weights { try weight.assign([Float](repeating: 0, count: weight.count)) }
            try PyTorchWeights.load(url, into: model)
            expectClose(try model(input).toArray(), expected, "\(stem) saved and loaded again", tolerance: 1e-5)
        }
    }

    /// A PyTorch 2.13 ONNX export of Conv1d → MaxPool1d → bidirectional LSTM → GRU (with the Shape,
    /// Gather, Unsqueeze, Concat and Expand nodes that make its zero initial states) gives PyTorch's outputs.
    @Test(arguments: Backend.all)
    func onnxSequenceExportMatchesPyTorch(_ backend: Backend) throws {
        let model = try ONNXImport.load(fixtures.appendingPathComponent("torch_sequence.onnx"), device: backend.device)
        let x = try NumPy.read(fixtures.appendingPathComponent("torch_sequence_x.npy"))
        let expected = try NumPy.read(fixtures.appendingPathComponent("torch_sequence_y.npy"))
        let y = try model(Tensor(x.values, shape: x.shape, on: backend.device))
        #expect(y.shape == expected.shape)
        expectClose(try y.toArray(), expected.values.map(Double.init), "Kiln vs PyTorch through ONNX on \(backend)", tolerance: 1e-5)
    }

    /// Generators: a Keras 3.15 one (Dense → Reshape → Conv2DTranspose same/valid with output padding,
    /// bilinear UpSampling2D, GaussianNoise and GaussianDropout, Conv2D) from .keras and .h5; a PyTorch 2.13
    /// one (ConvTranspose2d, bilinear nn.Upsample) from its state dict into Kiln layers and through ONNX.
    @Test(arguments: Backend.all)
    func generatorsMatchKerasAndPyTorch(_ backend: Backend) throws {
        let d = backend.device
        func expected(_ stem: String) throws -> (x: NumPy.Array, y: [Double]) {
            (try NumPy.read(fixtures.appendingPathComponent("\(stem)_x.npy")), try NumPy.read(fixtures.appendingPathComponent("\(stem)_y.npy")).values.map(Double.init))
        }
        let keras = try expected("keras_generator")
        for file in ["keras_generator.keras", "keras_generator.h5"] {
            let model = try KerasFile.load(fixtures.appendingPathComponent(file), device: d)
            expectClose(try model(Tensor(keras.x.values, shape: keras.x.shape, on: d)).toArray(), keras.y, "Kiln vs Keras (\(file)) on \(backend)", tolerance: 1e-5)
        }
        let torch = try expected("torch_generator")
        let nchw = try Tensor(torch.x.values, shape: torch.x.shape, on: d)
        let model = try Sequential([Input(shape: [3, 3, 6]), Conv2DTranspose(5, kernelSize: 4, strides: 2, padding: .same, activation: .relu, name: "up1"),
                                    UpSampling2D(interpolation: .bilinear), Conv2DTranspose(2, kernelSize: 4, strides: 2, padding: .same, activation: .tanh, name: "up2")])
        try model.place(on: d)
        try PyTorchWeights.load(fixtures.appendingPathComponent("torch_generator.safetensors"), into: model)
        expectClose(try model(nchw.permuted([0, 2, 3, 1])).permuted([0, 3, 1, 2]).toArray(), torch.y, "Kiln vs PyTorch on \(backend)", tolerance: 1e-5)
        let onnx = try ONNXImport.load(fixtures.appendingPathComponent("torch_generator.onnx"), device: d)
        expectClose(try onnx(nchw).toArray(), torch.y, "Kiln vs PyTorch through ONNX on \(backend)", tolerance: 1e-5)
        let dilated = try expected("torch_dilated_transpose")  // dilation with stride, pads and output padding
        expectClose(try ONNXImport.load(fixtures.appendingPathComponent("torch_dilated_transpose.onnx"), device: d)(
                        Tensor(dilated.x.values, shape: dilated.x.shape, on: d)).toArray(), dilated.y, "dilated ConvTranspose through ONNX on \(backend)", tolerance: 1e-5)
    }

    @Test func realKerasJSON() throws {
        let workshop = try KerasConfig.model(fromJSON: Data(contentsOf: fixtures.appendingPathComponent("keras_workshop.json")))
        #expect(workshop.parameterCount == 28_394 && workshop is Sequential)
        let functional = try KerasConfig.model(fromJSON: Data(contentsOf: fixtures.appendingPathComponent("keras_cnn.json")))
        try functional.place(on: CPUDevice.shared)
        try KerasFile.loadWeights(fixtures.appendingPathComponent("keras_cnn.h5"), into: functional)
        let x = try NumPy.read(fixtures.appendingPathComponent("keras_cnn_x.npy"))
        let expected = try NumPy.read(fixtures.appendingPathComponent("keras_cnn_y.npy"))
        expectClose(try functional(Tensor(x.values, shape: x.shape)).toArray(), expected.values.map(Double.init), "JSON + weights", tolerance: 1e-5)
    }

    @Test func damagedKerasFiles() throws {
        let folder = try temporaryFolder()
        let notHDF5 = folder.appendingPathComponent("x.h5")
        try Data("hello".utf8).write(to: notHDF5)
        #expect { try KerasFile.load(notHDF5) } throws: { "\($0)".contains("not an HDF5 file") && "\($0)".contains(notHDF5.path) }
        let truncated = folder.appendingPathComponent("x.keras")
        try Data(try Data(contentsOf: fixtures.appendingPathComponent("keras_cnn.keras")).prefix(1000)).write(to: truncated)
        #expect { try KerasFile.load(truncated) } throws: { "\($0)".contains(truncated.path) }
        let other = try Sequential([Input(shape: [3]), Dense(2, name: "conv1")])
        try other.place(on: CPUDevice.shared)
        #expect { try KerasFile.loadWeights(fixtures.appendingPathComponent("keras_cnn.h5"), into: other) } throws: {
            "\($0)".contains("conv1") && "\($0)".contains("[3, 3, 3, 8]")
        }
    }
}

/// Keras 3 operations in functional configs (`x + 3`, `1 - x`, `x / 4`, `a * b`), as `.keras` files
/// record them with their module and `.h5` files without.
@Suite("Keras operations") struct KerasOperationTests {
    static func config(module: Bool) -> [String: Any] {
        func tensor(_ name: String) -> [String: Any] {
            ["class_name": "__keras_tensor__", "config": ["shape": [NSNull(), 3], "dtype": "float32", "keras_history": [name, 0, 0]]]
        }
        func op(_ kind: String, _ name: String, _ args: [Any]) -> [String: Any] {
            var entry: [String: Any] = ["class_name": kind, "config": ["name": name], "name": name, "inbound_nodes": [["args": args, "kwargs": [String: Any]()]]]
            if module { entry["module"] = "keras.src.ops.numpy" }
            return entry
        }
        let layers: [[String: Any]] = [
            ["class_name": "InputLayer", "name": "x", "config": ["name": "x", "batch_shape": [NSNull(), 3]], "inbound_nodes": [Any]()],
            op("Add", "plus", [tensor("x"), 3.0]), op("Subtract", "minus", [1.0, tensor("plus")]), op("Divide", "quarter", [tensor("minus"), 4.0]),
            op("Multiply", "product", [tensor("quarter"), tensor("x")]),
        ]
        return ["class_name": "Functional", "config": ["name": "ops", "layers": layers, "input_layers": [["x", 0, 0]], "output_layers": [["product", 0, 0]]]]
    }

    @Test(arguments: [true, false])
    func operationsReadAsKerasComputesThem(_ module: Bool) throws {
        let model = try KerasConfig.model(fromJSON: JSONSerialization.data(withJSONObject: Self.config(module: module)), file: "ops.json")
        try model.place(on: CPUDevice.shared)
        let x: [Float] = [-2, 0.5, 3]
        let y = try model(Tensor(x, shape: [1, 3], on: CPUDevice.shared)).toArray()
        expectClose(y, x.map { Double((1 - ($0 + 3)) / 4 * $0) }, "operations", tolerance: 1e-6)
    }
}
