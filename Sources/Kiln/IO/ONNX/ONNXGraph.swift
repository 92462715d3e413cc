import Foundation

/// An ONNX graph run by Kiln's differentiable tensor ops, as one layer: its float initializers are
/// the layer's weights (trainable, except batch-norm statistics), so an imported network can be
/// evaluated, cut, frozen and fine-tuned. Tensors keep ONNX's own layout (NCHW): convolution and
/// pooling turn to NHWC for the kernels and back.
public final class ONNXGraph: Layer {
    /// The ops this importer implements (and the conformance runner checks).
    public static let supportedOps: Set<String> = [
        "Conv", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "MaxPool",
        "AveragePool", "GlobalAveragePool", "BatchNormalization", "Flatten", "Reshape", "Concat", "Softmax", "LogSoftmax",
        "Dropout", "Identity", "Constant", "Transpose", "Gather", "LSTM", "GRU", "RNN", "Shape", "Unsqueeze", "Squeeze", "Expand",
        "HardSigmoid", "HardSwish", "Elu", "Selu", "Mean", "Max", "Min", "GlobalMaxPool",
        "ConvTranspose", "Resize", "Upsample", "Exp", "Log", "Sqrt", "Pow", "Cast", "ReduceMean", "ReduceSum", "Pad", "Slice",
    ]

    let graph: Onnx_GraphProto
    var nodes: [Onnx_NodeProto] { graph.node }
    let opset: Int
    /// The graph's inputs that are not initializers, in order; a layer takes exactly one.
    let inputNames: [String]
    let outputName: String
    var inputName: String { inputNames[0] }
    let file: String
    /// Integer and other host-side constants (shapes for Reshape, Clip bounds given as tensors).
    private var constants: [String: ONNXConstant] = [:]
    private var weightByName: [String: Weight] = [:]
    /// Values of the float initializers until the model is placed.
    var initialValues: [String: [Float]] = [:]
    let sampleShape: [Int], resultShape: [Int]

    /// `storedWeights`: the graph comes from a Kiln checkpoint, whose float initializers hold no data
    /// (their values are the checkpoint's weights); an ONNX file's must hold theirs.
    init(graph original: Onnx_GraphProto, opset: Int, output: String? = nil, file: String, name: String? = nil,
         storedWeights: Bool = false) throws {
        self.file = file
        self.opset = opset
        let initializerNames = Set(original.initializer.map(\.name))
        var graph = original
        if let output, !original.input.contains(where: { $0.name == output }) {  // a cut: keep the nodes it needs
            guard let last = original.node.firstIndex(where: { $0.output.contains(output) }) else {
                throw DataError(file, "no node produces the value '\(output)' (`kiln summary \(file)` lists the values)")
            }
            graph.node = Array(original.node[...last])
            let used = Set(graph.node.flatMap(\.input))
            graph.initializer = original.initializer.filter { used.contains($0.name) }
            graph.input = original.input.filter { !initializerNames.contains($0.name) || used.contains($0.name) }
        }
        let realInputs = graph.input.filter { !initializerNames.contains($0.name) }
        guard !realInputs.isEmpty else { throw DataError(file, "the graph declares no input") }
        guard let outputName = output ?? graph.output.first?.name else { throw DataError(file, "the graph declares no output") }
        let unsupported = Set(graph.node.map(\.opType)).subtracting(Self.supportedOps)
        guard unsupported.isEmpty else {
            throw DataError(file, "unsupported ONNX ops: \(unsupported.sorted().joined(separator: ", ")) (supported: \(Self.supportedOps.sorted().joined(separator: ", ")))")
        }
        var known = Set(graph.input.map(\.name)).union(initializerNames)
        for node in graph.node {
            let label = "node '\(node.name.isEmpty ? node.output.first ?? "?" : node.name)' (\(node.opType))"
            guard node.output.contains(where: { !$0.isEmpty }) else { throw DataError(file, "\(label) has no output") }
            if let missing = node.input.first(where: { !$0.isEmpty && !known.contains($0) }) {
                throw DataError(file, "\(label) reads '\(missing)', which no earlier node produces (the graph is cyclic, dangling or out of order)")
            }
            known.formUnion(node.output)
        }
        guard known.contains(outputName) else { throw DataError(file, "no node produces the output '\(outputName)'") }
        self.graph = graph
        inputNames = realInputs.map(\.name)
        self.outputName = outputName
        func shape(_ info: Onnx_ValueInfoProto?) -> [Int]? {
            guard let info, info.type.tensorType.hasShape else { return nil }
            return info.type.tensorType.shape.dim.dropFirst().map { dim in
                if case .dimValue(let value)? = dim.value { return Int(value) }
                return -1
            }
        }
        sampleShape = shape(realInputs[0]) ?? []
        resultShape = shape(graph.output.first { $0.name == outputName }) ?? []
        super.init(name: name ?? (graph.name.isEmpty ? nil : graph.name), kind: "onnx_graph")
        let statistics = Set(graph.node.filter { $0.opType == "BatchNormalization" }.flatMap { $0.input.dropFirst(3) })
        for tensor in graph.initializer {
            let shape = tensor.dims.map { Int($0) }
            guard let count = Memory.count(shape), count > 0 || shape.isEmpty else {
                throw DataError(file, "initializer '\(tensor.name)' has dims \(tensor.dims) (empty or not a valid size)")
            }
            try Memory.require(count, for: "\(file): initializer '\(tensor.name)' \(shape)")
            let holdsNoData = tensor.rawData.isEmpty && tensor.floatData.isEmpty && tensor.doubleData.isEmpty && tensor.int32Data.isEmpty
            let constant = storedWeights && [1, 10, 11].contains(tensor.dataType) && holdsNoData && !shape.isEmpty
                ? ONNXConstant(shape: shape, storage: .floats([Float](repeating: 0, count: count)))
                : try ONNXConstant(tensor, file: file)
            if case .floats(let values) = constant.storage, !constant.shape.isEmpty {
                let weight = addWeight(tensor.name, shape: constant.shape, initializer: .zeros, isVariable: !statistics.contains(tensor.name))
                weightByName[tensor.name] = weight
                initialValues[tensor.name] = values
            } else {
                constants[tensor.name] = constant
            }
        }
    }

    override public var typeName: String { "ONNXGraph" }

    /// The graph with the float initializers' data removed (their values are the layer's weights).
    func structure() throws -> Data {
        var copy = graph
        for i in copy.initializer.indices where weightByName[copy.initializer[i].name] != nil {
            copy.initializer[i].rawData = Data()
            copy.initializer[i].floatData = []
            copy.initializer[i].doubleData = []
            copy.initializer[i].int32Data = []
        }
        return try copy.serializedData()
    }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        guard inputNames.count == 1 else { throw shapeError("a model layer takes one input; this graph has \(inputNames)") }
        guard sampleShape.allSatisfy({ $0 > 0 }), try single(inputShapes) == sampleShape else {
            throw shapeError("expects samples of static shape \(sampleShape), got \(inputShapes[0])")
        }
        if !resultShape.isEmpty, resultShape.allSatisfy({ $0 > 0 }) { return resultShape }
        // No declared shape (an inner value chosen as output): run one sample to learn it.
        return Array(try probe().shape.dropFirst())
    }

    /// Runs one zero sample through the graph (on the CPU until the layer is placed), showing each
    /// node and its output to `visit`.
    private func probe(visiting visit: ((Onnx_NodeProto, Tensor) -> Void)? = nil) throws -> Tensor {
        try GradMode.noGrad {
            if isPlaced {
                let device = weights.first?.value.device ?? CPUDevice.shared
                return try evaluate([inputName: .zeros([1] + sampleShape, on: device)], visiting: visit)
            }
            let device = CPUDevice.shared
            let values = try weightByName.mapValues { try Tensor(initialValues[$0.name]!, shape: $0.shape, on: device) }
            return try evaluate([inputName: .zeros([1] + sampleShape, on: device)], weights: values, visiting: visit)
        }
    }

    /// Each node up to the output: its op, the value it produces (the names `--cut` takes), that
    /// value's per-sample shape and the node's parameter count.
    override public var summaryRows: [SummaryRow] {
        var rows: [SummaryRow] = []
        do {
            _ = try probe { node, output in
                let parameters = node.input.compactMap { self.weightByName[$0]?.count }.reduce(0, +)
                rows.append(SummaryRow(name: node.output.first { !$0.isEmpty } ?? "", type: node.opType, shape: Array(output.shape.dropFirst()), parameters: parameters))
            }
        } catch {
            return [SummaryRow(name: "(nodes not listed: \(error))", type: "", shape: [], parameters: 0)]
        }
        return rows
    }

    override func materialize(on device: any Device, random: inout RandomGenerator) throws {
        try super.materialize(on: device, random: &random)
        for (name, values) in initialValues { try weightByName[name]!.assign(values) }
        initialValues = [:]
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try evaluate([inputName: inputs[0]])
    }

    /// The graph's nodes and initializers (float ones holding the current weights) with every value
    /// renamed `prefix + name`, and `input` for the graph's input: ready to inline into an exported model.
    func inlined(prefix: String, input: String) throws -> (nodes: [Onnx_NodeProto], initializers: [Onnx_TensorProto], output: String) {
        func rename(_ name: String) -> String { name.isEmpty ? name : name == inputName ? input : prefix + name }
        let nodes = graph.node.map { node in
            var copy = node
            (copy.name, copy.input, copy.output) = (prefix + (node.name.isEmpty ? node.output[0] : node.name), node.input.map(rename), node.output.map(rename))
            return copy
        }
        let initializers = try graph.initializer.map { tensor in
            var copy = tensor
            copy.name = rename(tensor.name)
            if let weight = weightByName[tensor.name] {
                copy.rawData = try weight.value.toArray().withUnsafeBytes { Data($0) }
                (copy.dataType, copy.floatData, copy.doubleData, copy.int32Data) = (1, [], [], [])
            }
            return copy
        }
        return (nodes, initializers, rename(outputName))
    }

    /// Runs the graph on named inputs and returns its output; weights are the placed ones unless given.
    func evaluate(_ feeds: [String: Tensor], weights: [String: Tensor]? = nil,
                  visiting visit: ((Onnx_NodeProto, Tensor) -> Void)? = nil) throws -> Tensor {
        guard let device = feeds.values.first?.device else { throw DataError(file, "no inputs given") }
        var values = feeds
        func tensor(_ name: String) throws -> Tensor {
            if let t = values[name] { return t }
            if let w = weights?[name] ?? weightByName[name]?.value { return w }
            if let c = constants[name] { return try c.tensor(on: device) }
            throw DataError(file, "value '\(name)' is used before any node produces it")
        }
        for node in nodes {
            let op = ONNXOp(node: node, opset: opset, file: file, constants: constants)
            if node.opType == "Constant" {
                constants[node.output[0]] = try op.constantValue()
                continue
            }
            // An absent input is named "" or is an empty constant (Resize's unused roi and scales).
            let arguments = try node.input.map { $0.isEmpty || constants[$0]?.shape.contains(0) == true ? nil : try tensor($0) }
            let outputs = try op.outputs(arguments)
            for (name, output) in zip(node.output, outputs) where !name.isEmpty {
                guard let output else { throw DataError(file, "node '\(node.name)' (\(node.opType)) has no output '\(name)'") }
                values[name] = output
            }
            if let first = zip(node.output, outputs).first(where: { !$0.0.isEmpty })?.1 { visit?(node, first) }
            if node.output.contains(outputName) { break }
        }
        return try tensor(outputName)
    }
}

/// Reading ONNX files.
public enum ONNXImport {
    /// A model from an `.onnx` file, placed on `device`. Its input is fed as the source model takes it
    /// (NCHW for images), unless `channelsLast` is given the (H, W, C) shape of Kiln's images and the
    /// graph takes their (C, H, W) transpose: then a `Permute` in front takes the images as they are, and
    /// a rank-3 output gets one behind it, so that heads (`gap`, `bn`, …) see (H, W, C) features.
    /// `output` picks an inner value as the output (a cut for transfer learning).
    public static func load(_ url: URL, device: (any Device)? = nil, output: String? = nil, channelsLast imageShape: [Int]? = nil) throws -> Model {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw DataError(url.path, "cannot read (\(error.localizedDescription))") }
        let proto: Onnx_ModelProto
        do { proto = try Onnx_ModelProto(serializedBytes: data) } catch { throw DataError(url.path, "not an ONNX model (\(error))") }
        let opset = Int(proto.opsetImport.first { $0.domain.isEmpty || $0.domain == "ai.onnx" }?.version ?? 13)
        let graph = try ONNXGraph(graph: proto.graph, opset: opset, output: output, file: url.path)
        let name = proto.graph.name.isEmpty ? "onnx" : proto.graph.name
        let model: Model
        if let imageShape, imageShape.count == 3, graph.sampleShape == [imageShape[2], imageShape[0], imageShape[1]], graph.sampleShape != imageShape {
            let input = Input(shape: imageShape, name: graph.inputName)
            var x = try graph(try Permute([3, 1, 2])(input.output))
            if x.shape.count == 3 { x = try Permute([2, 3, 1])(x) }
            model = try Model(inputs: input, outputs: x, name: name)
        } else {
            let input = Input(shape: graph.sampleShape, name: graph.inputName)
            model = try Model(inputs: input, outputs: graph(input), name: name)
        }
        try model.place(on: device)
        return model
    }
}
