import Foundation
import Testing
@testable import Kiln

@Suite("ONNX") struct ONNXTests {
    /// The PyTorch fixture exported to ONNX gives PyTorch's outputs on PyTorch's NCHW input.
    @Test(arguments: Backend.all)
    func importedGraphMatchesPyTorch(_ backend: Backend) throws {
        let model = try ONNXImport.load(fixtures.appendingPathComponent("torch_cnn.onnx"), device: backend.device)
        #expect(model.inputs[0].shape == [3, 8, 8] && model.outputs[0].shape == [5])
        // PyTorch's exporter folds each batch norm into the convolution before it.
        #expect(model.parameterCount == 8 * 3 * 9 + 8 + 8 * 8 * 9 + 8 + 128 * 5 + 5)
        let x = try NumPy.read(fixtures.appendingPathComponent("torch_cnn_x.npy"))
        let expected = try NumPy.read(fixtures.appendingPathComponent("torch_cnn_y.npy"))
        let y = try model(Tensor(x.values, shape: x.shape, on: backend.device)).toArray()
        expectClose(y, expected.values.map(Double.init), "Kiln (ONNX) vs PyTorch", tolerance: 1e-5)
    }

    @Test func badFilesAndUnsupportedOps() throws {
        let folder = try temporaryFolder()
        let garbage = folder.appendingPathComponent("x.onnx")
        try Data([0xFF, 0xFF, 0xFF, 0x01, 0x02]).write(to: garbage)
        #expect { try ONNXImport.load(garbage) } throws: { "\($0)".contains(garbage.path) && "\($0)".contains("not an ONNX model") }
        var proto = try Onnx_ModelProto(serializedBytes: Data(contentsOf: fixtures.appendingPathComponent("torch_cnn.onnx")))
        proto.graph.node[0].opType = "Einsum"
        proto.graph.node[1].opType = "Col2Im"
        let edited = folder.appendingPathComponent("edited.onnx")
        try proto.serializedData().write(to: edited)
        #expect { try ONNXImport.load(edited) } throws: { "\($0)".contains("unsupported ONNX ops: Col2Im, Einsum") }
    }

    /// ONNX's operator conformance data (Debian libonnx-testdata): every node test of an op Kiln
    /// supports, on every backend. Tests of other element types or of features outside Kiln's
    /// (1-D/3-D pooling, dilations, training-mode batch norm, extra outputs, empty tensors) are listed as not claimed.
    @Test func operatorConformance() throws {
        let root = URL(fileURLWithPath: "/usr/share/libonnx-testdata/data/node")
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: root.path) else {
            print("note: libonnx-testdata is not installed; skipping the ONNX conformance run")
            return
        }
        var passed: [String: Int] = [:], notClaimed: [String: String] = [:], failed: [String] = []
        for name in names.sorted() where name.hasPrefix("test_") {
            let folder = root.appendingPathComponent(name)
            guard let proto = try? Onnx_ModelProto(serializedBytes: Data(contentsOf: folder.appendingPathComponent("model.onnx"))) else { continue }
            let ops = Set(proto.graph.node.map(\.opType))
            guard ops.isSubset(of: ONNXGraph.supportedOps), !ops.isSubset(of: ["Constant", "Identity"]) || ops.contains("Identity") else { continue }
            let data = folder.appendingPathComponent("test_data_set_0")
            let inputs = try proto.graph.input.filter { i in !proto.graph.initializer.contains { $0.name == i.name } }.enumerated().map {
                ($0.element.name, try Onnx_TensorProto(serializedBytes: Data(contentsOf: data.appendingPathComponent("input_\($0.offset).pb"))))
            }
            let output = try Onnx_TensorProto(serializedBytes: Data(contentsOf: data.appendingPathComponent("output_0.pb")))
            // Float tensors, and int64 ones where an op reads integers (Reshape's shape).
            let tensorInputs = proto.graph.input.allSatisfy { if case .tensorType? = $0.type.value { true } else { false } }
            guard tensorInputs, inputs.allSatisfy({ [1, 7].contains($0.1.dataType) }), output.dataType == 1 else {
                notClaimed[name] = "element type"
                continue
            }
            guard inputs.allSatisfy({ !$0.1.dims.contains(0) }) else { notClaimed[name] = "empty tensors are not supported"; continue }
            let opset = Int(proto.opsetImport.first { $0.domain.isEmpty || $0.domain == "ai.onnx" }?.version ?? 13)
            for backend in Backend.all {
                do {
                    let graph = try ONNXGraph(graph: proto.graph, opset: opset, file: name)
                    var random = RandomGenerator(seed: 0)
                    try graph.materialize(on: backend.device, random: &random)
                    var feeds: [String: Tensor] = [:]
                    for (input, tensor) in inputs {
                        let constant = try ONNXConstant(tensor, file: name)
                        feeds[input] = try Tensor(constant.floats, shape: constant.shape.isEmpty ? [1] : constant.shape, on: backend.device)
                    }
                    let result = try graph.evaluate(feeds)
                    let expected = try ONNXConstant(output, file: name)
                    let values = try result.toArray()
                    let close = result.shape == (expected.shape.isEmpty ? [1] : expected.shape)
                        && zip(values, expected.floats).allSatisfy { abs($0 - $1) <= 1e-5 + 1e-3 * abs($1) }
                    if close { passed[backend.testDescription, default: 0] += 1 } else { failed.append("\(name) on \(backend.testDescription): values differ") }
                } catch let error as DataError where error.problem.contains("not supported") {
                    notClaimed[name] = error.problem
                    break
                } catch {
                    failed.append("\(name) on \(backend.testDescription): \(error)")
                }
            }
        }
        print("note: ONNX conformance: " + passed.sorted { $0.key < $1.key }.map { "\($0.value) passed on \($0.key)" }.joined(separator: ", ")
              + "; \(notClaimed.count) not claimed: " + notClaimed.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value))" }.joined(separator: ", "))
        #expect(failed.isEmpty, "\(failed.joined(separator: "\n"))")
        #expect(passed.values.allSatisfy { $0 >= 100 }, "\(passed)")
    }
}

@Suite("ONNX graphs in Kiln") struct ONNXGraphTests {
    /// A one-node ONNX model.
    static func model(_ node: Onnx_NodeProto, inputs: [(String, [Int])], output: (String, [Int]), initializers: [Onnx_TensorProto] = []) throws -> Data {
        func info(_ name: String, _ shape: [Int]) -> Onnx_ValueInfoProto {
            var v = Onnx_ValueInfoProto()
            v.name = name
            v.type.tensorType.elemType = 1
            v.type.tensorType.shape.dim = shape.map { var d = Onnx_TensorShapeProto.Dimension(); d.dimValue = Int64($0); return d }
            return v
        }
        var model = Onnx_ModelProto()
        model.irVersion = 7
        var opset = Onnx_OperatorSetIdProto()
        opset.version = 13
        model.opsetImport = [opset]
        model.graph.node = [node]
        model.graph.input = inputs.map(info)
        model.graph.output = [info(output.0, output.1)]
        model.graph.initializer = initializers
        return try model.serializedData()
    }

    /// Cast to an integer type truncates toward zero (ONNX's conformance data holds no float-to-int case
    /// Kiln reads); Pad with a negative pad crops.
    @Test func castTruncatesAndPadCrops() throws {
        var cast = Onnx_NodeProto()
        (cast.opType, cast.input, cast.output) = ("Cast", ["x"], ["y"])
        var to = Onnx_AttributeProto()
        (to.name, to.type, to.i) = ("to", .int, 7)
        cast.attribute = [to]
        let folder = try temporaryFolder()
        try Self.model(cast, inputs: [("x", [4])], output: ("y", [4])).write(to: folder.appendingPathComponent("cast.onnx"))
        let truncated = try ONNXImport.load(folder.appendingPathComponent("cast.onnx"))(Tensor([1.7, -2.5, 3, -0.2], shape: [4]))
        #expect(try truncated.toArray() == [1, -2, 3, 0])
        var pad = Onnx_NodeProto()
        (pad.opType, pad.input, pad.output) = ("Pad", ["x", "pads", "value"], ["y"])
        var pads = Onnx_TensorProto(), value = Onnx_TensorProto()
        (pads.name, pads.dims, pads.dataType, pads.int64Data) = ("pads", [4], 7, [1, -1, 0, 2])
        (value.name, value.dims, value.dataType, value.floatData) = ("value", [], 1, [9])
        try Self.model(pad, inputs: [("x", [2, 3])], output: ("y", [3, 4]), initializers: [pads, value]).write(to: folder.appendingPathComponent("pad.onnx"))
        let padded = try ONNXImport.load(folder.appendingPathComponent("pad.onnx"))(Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]))
        let values = try padded.toArray()
        #expect(padded.shape == [3, 4] && values == [9, 9, 9, 9, 2, 3, 9, 9, 5, 6, 9, 9])
    }

    /// Grouped convolutions (group 2, and group 4 = depthwise with 2 filters per channel; padding 1,
    /// stride 2) against a float64 NCHW reference.
    @Test(arguments: Backend.all, [(6, 2), (8, 4)])
    func groupedConvolution(_ backend: Backend, _ grouping: (outputs: Int, groups: Int)) throws {
        var random = Random("grouped")
        let (n, c, h, w, m, groups) = (2, 4, 7, 6, grouping.outputs, grouping.groups)
        let x = random.floats(n * c * h * w), kernel = random.floats(m * (c / groups) * 9), bias = random.floats(m)
        var weight = Onnx_TensorProto()
        (weight.name, weight.dims, weight.dataType, weight.floatData) = ("W", [Int64(m), Int64(c / groups), 3, 3], 1, kernel)
        var b = Onnx_TensorProto()
        (b.name, b.dims, b.dataType, b.floatData) = ("B", [Int64(m)], 1, bias)
        var node = Onnx_NodeProto()
        (node.opType, node.input, node.output) = ("Conv", ["x", "W", "B"], ["y"])
        func attribute(_ name: String, _ values: [Int64]) -> Onnx_AttributeProto {
            var a = Onnx_AttributeProto()
            (a.name, a.type, a.ints) = (name, .ints, values)
            return a
        }
        var group = Onnx_AttributeProto()
        (group.name, group.type, group.i) = ("group", .int, Int64(groups))
        node.attribute = [group, attribute("pads", [1, 1, 1, 1]), attribute("strides", [2, 2]), attribute("kernel_shape", [3, 3])]
        let (oh, ow) = ((h + 2 - 3) / 2 + 1, (w + 2 - 3) / 2 + 1)
        let url = try temporaryFolder().appendingPathComponent("grouped.onnx")
        try Self.model(node, inputs: [("x", [n, c, h, w])], output: ("y", [n, m, oh, ow]), initializers: [weight, b]).write(to: url)
        let model = try ONNXImport.load(url, device: backend.device)
        let y = try model(Tensor(x, shape: [n, c, h, w], on: backend.device)).toArray()
        var expected = [Double](repeating: 0, count: n * m * oh * ow)
        for i in 0..<n { for o in 0..<m { for yy in 0..<oh { for xx in 0..<ow {
            let g = o / (m / groups)
            var sum = Double(bias[o])
            for ci in 0..<(c / groups) { for kh in 0..<3 { for kw in 0..<3 {
                let (iy, ix) = (yy * 2 - 1 + kh, xx * 2 - 1 + kw)
                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                sum += Double(x[((i * c + g * (c / groups) + ci) * h + iy) * w + ix]) * Double(kernel[((o * (c / groups) + ci) * 3 + kh) * 3 + kw])
            }}}
            expected[((i * m + o) * oh + yy) * ow + xx] = sum
        }}}}
        expectClose(y, expected, "grouped convolution")
    }

    /// An imported ONNX model saves to a Kiln checkpoint and comes back the same (so it can be
    /// fine-tuned and resumed).
    @Test func onnxModelsSurviveCheckpoints() throws {
        let model = try ONNXImport.load(fixtures.appendingPathComponent("torch_cnn.onnx"), device: CPUDevice.shared)
        let url = try temporaryFolder().appendingPathComponent("onnx.safetensors")
        try Checkpoint.save(model, to: url)
        let (restored, _) = try Checkpoint.load(url, device: CPUDevice.shared)
        let x = try NumPy.read(fixtures.appendingPathComponent("torch_cnn_x.npy"))
        #expect(try restored(Tensor(x.values, shape: x.shape)).toArray() == model(Tensor(x.values, shape: x.shape)).toArray())
        // Cut at an inner value (the flattened features) for transfer learning.
        let cut = try ONNXImport.load(fixtures.appendingPathComponent("torch_cnn.onnx"), device: CPUDevice.shared, output: "/Flatten_output_0")
        #expect(cut.outputs[0].shape == [128])
        #expect(try cut(Tensor(x.values, shape: x.shape)).shape == [2, 128])
    }
}

extension ONNXTests {
    /// A cut keeps the nodes it needs; the summary lists them with their value names and shapes.
    @Test func cutsAndSummary() throws {
        let url = fixtures.appendingPathComponent("torch_cnn.onnx")
        let cut = try ONNXImport.load(url, device: CPUDevice.shared, output: "/Relu_1_output_0")
        #expect(cut.parameterCount == 8 * 3 * 9 + 8 + 8 * 8 * 9 + 8, "the Gemm's weights after the cut are dropped")
        let summary = cut.summary()
        #expect(summary.contains("input (InputLayer)") && summary.contains("(None, 3, 8, 8)"), "\(summary)")
        #expect(summary.contains("/conv2/Conv_output_0 (Conv)") && summary.contains("584") && !summary.contains("Gemm"), "\(summary)")
        #expect { try ONNXImport.load(url, output: "/nope") } throws: { "\($0)".contains("no node produces the value '/nope'") }
    }

    /// Given NHWC images, an NCHW graph gets Permute layers around it: the same numbers as feeding it
    /// the transposed images, and a cut's feature map comes out (H, W, C).
    @Test(arguments: Backend.all)
    func channelsLastAdapter(_ backend: Backend) throws {
        let url = fixtures.appendingPathComponent("torch_cnn.onnx")
        let plain = try ONNXImport.load(url, device: backend.device, output: "/Relu_1_output_0")
        let adapted = try ONNXImport.load(url, device: backend.device, output: "/Relu_1_output_0", channelsLast: [8, 8, 3])
        #expect(adapted.inputs[0].shape == [8, 8, 3] && adapted.outputs[0].shape == [8, 8, 8])
        #expect(try ONNXImport.load(url, device: backend.device, channelsLast: [3, 8, 8]).inputs[0].shape == [3, 8, 8], "already the graph's layout")
        var random = Random("adapter")
        let nhwc = try Tensor(random.floats(2 * 192, 0...1), shape: [2, 8, 8, 3], on: backend.device)
        let expected = try plain(nhwc.permuted([0, 3, 1, 2])).permuted([0, 2, 3, 1]).toArray()
        #expect(try adapted(nhwc).toArray() == expected)
    }

    /// `kiln predict` feeds an NCHW model image files transposed (÷255), as the model takes them.
    @Test func predictFeedsImagesInTheModelsLayout() throws {
        let folder = try temporaryFolder()
        var random = Random("predict-onnx")
        let pixels = (0..<192).map { _ in UInt8(random.int(256)) }
        let image = folder.appendingPathComponent("x.png")
        try Data(png(width: 8, height: 8, channels: 3, pixels: pixels)).write(to: image)
        let output = folder.appendingPathComponent("y.npy")
        let (status, text) = try CLITests.kiln("predict", fixtures.appendingPathComponent("torch_cnn.onnx").path, image.path, "--output", output.path)
        #expect(status == 0, "\(text)")
        let model = try ONNXImport.load(fixtures.appendingPathComponent("torch_cnn.onnx"), device: CPUDevice.shared)
        let planar = (0..<192).map { i in Float(pixels[(i % 64) * 3 + i / 64]) / 255 }
        let expected = try model(Tensor(planar, shape: [1, 3, 8, 8])).toArray()
        expectClose(try NumPy.read(output).values, expected.map(Double.init), "predict on an image vs the model on its NCHW transpose", tolerance: 1e-6)
    }
}

@Suite("ONNX export") struct ONNXExportTests {
    /// Exported models read back (by Kiln's importer, which passes ONNX's conformance tests) give
    /// the same outputs as the Kiln model.
    @Test(arguments: Backend.all, [ModelZoo.workshopCNN, .resnetSmall, .vggSmall, .lenet5])
    func exportedModelsComputeTheSame(_ backend: Backend, zoo: ModelZoo) throws {
        let shape = zoo == .workshopCNN ? [28, 28, 1] : [16, 16, 3]
        let model = try zoo.make(inputShape: shape, classes: 4)
        try model.place(on: backend.device, seed: 9)
        let extra = try Concatenate()([model.outputs[0], Softmax()(model.outputs[0])])
        let extended = try Model(inputs: model.inputs, outputs: [extra])
        try extended.place(on: backend.device)
        let url = try temporaryFolder().appendingPathComponent("\(zoo.rawValue).onnx")
        try ONNXExport.save(extended, to: url)
        let imported = try ONNXImport.load(url, device: backend.device)
        var random = Random("export")
        let x = try Tensor(random.floats(2 * shape.reduce(1, *), 0...1), shape: [2] + shape, on: backend.device)
        expectClose(try imported(x).toArray(), try extended(x).toArray().map(Double.init), "\(zoo.rawValue) through ONNX", tolerance: 1e-5)
    }
}
