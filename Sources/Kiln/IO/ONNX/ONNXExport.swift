import Foundation

/// Writes Kiln models as ONNX (opset 13) for onnxruntime and other ONNX engines. The exported graph
/// takes and returns the same layout as the Kiln model (NHWC images); inside, convolution and
/// pooling run NCHW, with Transpose nodes where the layout changes.
public enum ONNXExport {
    public static func save(_ model: Model, to url: URL) throws {
        var writer = Writer(model: model)
        try writer.run()
        try writeAtomically(try writer.proto.serializedData(), to: url)
    }

    private enum Layout { case nchw, nhwc, plain }

    private struct Writer {
        let model: Model
        var proto = Onnx_ModelProto()
        var values: [ObjectIdentifier: (name: String, layout: Layout)] = [:]
        var counter = 0

        init(model: Model) { self.model = model }

        mutating func run() throws {
            guard model.inputs.count == 1, model.outputs.count == 1, model.device != nil else {
                throw TrainingError.incompatible("ONNX export takes a placed model with one input and one output")
            }
            proto.irVersion = 8
            proto.producerName = "kiln"
            var opset = Onnx_OperatorSetIdProto()
            opset.version = 13
            proto.opsetImport = [opset]
            proto.graph.name = model.name
            let input = model.inputs[0]
            proto.graph.input = [info("input", input.shape)]
            values[ObjectIdentifier(input.output)] = ("input", input.shape.count == 3 ? .nhwc : .plain)
            for node in model.nodes { try emit(node) }
            let result = try value(model.outputs[0], as: model.outputs[0].shape.count == 3 ? .nhwc : nil)
            add("Identity", [result], output: "output")
            proto.graph.output = [info("output", model.outputs[0].shape)]
        }

        func info(_ name: String, _ sample: [Int]) -> Onnx_ValueInfoProto {
            var v = Onnx_ValueInfoProto()
            v.name = name
            v.type.tensorType.elemType = 1
            var batch = Onnx_TensorShapeProto.Dimension()
            batch.dimParam = "batch"
            v.type.tensorType.shape.dim = [batch] + sample.map { var d = Onnx_TensorShapeProto.Dimension(); d.dimValue = Int64($0); return d }
            return v
        }

        mutating func fresh(_ hint: String) -> String {
            counter += 1
            return "\(hint)_\(counter)"
        }

        @discardableResult
        mutating func add(_ op: String, _ inputs: [String], output: String? = nil, _ attributes: [Onnx_AttributeProto] = []) -> String {
            var node = Onnx_NodeProto()
            node.opType = op
            node.input = inputs
            node.output = [output ?? fresh(op.lowercased())]
            node.attribute = attributes
            node.name = node.output[0]
            proto.graph.node.append(node)
            return node.output[0]
        }

        mutating func initializer(_ name: String, _ values: [Float], _ shape: [Int]) -> String {
            var t = Onnx_TensorProto()
            (t.name, t.dataType, t.dims) = (name, 1, shape.map(Int64.init))
            t.rawData = values.withUnsafeBytes { Data($0) }
            proto.graph.initializer.append(t)
            return name
        }

        func ints(_ name: String, _ values: [Int]) -> Onnx_AttributeProto {
            var a = Onnx_AttributeProto()
            (a.name, a.type, a.ints) = (name, .ints, values.map(Int64.init))
            return a
        }

        func int(_ name: String, _ value: Int) -> Onnx_AttributeProto {
            var a = Onnx_AttributeProto()
            (a.name, a.type, a.i) = (name, .int, Int64(value))
            return a
        }

        func string(_ name: String, _ value: String) -> Onnx_AttributeProto {
            var a = Onnx_AttributeProto()
            (a.name, a.type, a.s) = (name, .string, Data(value.utf8))
            return a
        }

        func float(_ name: String, _ value: Float) -> Onnx_AttributeProto {
            var a = Onnx_AttributeProto()
            (a.name, a.type, a.f) = (name, .float, value)
            return a
        }

        /// The ONNX value of a symbolic tensor, transposed to `layout` when it is an image in another one.
        mutating func value(_ t: SymbolicTensor, as layout: Layout?) throws -> String {
            guard let current = values[ObjectIdentifier(t)] else { throw TrainingError.incompatible("ONNX export: value of '\(t.layer.name)' missing") }
            guard let layout, current.layout != layout, current.layout != .plain else { return current.name }
            let permutation = layout == .nchw ? [0, 3, 1, 2] : [0, 2, 3, 1]
            let name = add("Transpose", [current.name], [ints("perm", permutation)])
            values[ObjectIdentifier(t)] = (name, layout)
            return name
        }

        func layout(of t: SymbolicTensor) -> Layout { values[ObjectIdentifier(t)]!.layout }

        mutating func activation(_ f: ActivationFunction, _ x: String, channelsAxis: Int) throws -> String {
            switch f {
            case .linear: return x
            case .relu: return add("Relu", [x])
            case .sigmoid: return add("Sigmoid", [x])
            case .tanh: return add("Tanh", [x])
            case .softplus: return add("Softplus", [x])
            case .softmax: return add("Softmax", [x], [int("axis", channelsAxis)])
            case .leakyRelu(let slope): return add("LeakyRelu", [x], [float("alpha", slope)])
            case .elu: return add("Elu", [x], [float("alpha", 1)])
            case .selu: return add("Selu", [x])
            case .swish: return add("Mul", [x, add("Sigmoid", [x])])
            case .hardSigmoid: return add("HardSigmoid", [x], [float("alpha", 1 / 6), float("beta", 0.5)])
            case .hardSwish: return add("Mul", [x, add("HardSigmoid", [x], [float("alpha", 1 / 6), float("beta", 0.5)])])
            case .gelu: throw TrainingError.incompatible("ONNX export: the gelu activation has no export yet")
            }
        }

        /// A depthwise convolution as a Conv with one group per input channel: weights (C·m, 1, kh, kw).
        mutating func depthwise(_ name: String, _ input: SymbolicTensor, _ kernel: Tensor, bias: Tensor?, kernel size: (Int, Int),
                                strides: (Int, Int), padding: Padding, dilation: (Int, Int)) throws -> String {
            let (shape, channels) = (input.shape, kernel.shape[2] * kernel.shape[3])
            let w = try Window2D(input: (shape[0], shape[1]), kernel: size, stride: strides, padding: padding, dilation: dilation)
            let values = try kernel.reshaped([size.0, size.1, 1, channels]).permuted([3, 2, 0, 1]).toArray()
            var arguments = [try value(input, as: .nchw), initializer("\(name).depthwise", values, [channels, 1, size.0, size.1])]
            if let bias { arguments.append(initializer("\(name).depthwise_bias", try bias.toArray(), [channels])) }
            return add("Conv", arguments, [ints("kernel_shape", [size.0, size.1]), ints("strides", [strides.0, strides.1]),
                                           ints("dilations", [dilation.0, dilation.1]), ints("pads", pads(w)), int("group", shape[2])])
        }

        /// ONNX `pads` (top, left, bottom, right) of a window.
        func pads(_ w: Window2D) -> [Int] {
            [w.padTop, w.padLeft, max(0, (w.outputHeight - 1) * w.strideHeight + w.extent.height - w.inputHeight - w.padTop),
             max(0, (w.outputWidth - 1) * w.strideWidth + w.extent.width - w.inputWidth - w.padLeft)]
        }

        mutating func emit(_ node: SymbolicTensor) throws {
            let layer = node.layer, inputs = node.inputs
            let name = layer.name
            var output: (String, Layout)
            switch layer {
            case let l as Conv2D:
                let shape = inputs[0].shape
                let d = l.dilationRate
                let w = try Window2D(input: (shape[0], shape[1]), kernel: ((l.kernelSize.0 - 1) * d.0 + 1, (l.kernelSize.1 - 1) * d.1 + 1),
                                     stride: l.strides, padding: l.padding)
                let kernel = l.weights[0]
                let values = try kernel.value.permuted([3, 2, 0, 1]).toArray()  // HWIO → OIHW
                var arguments = [try value(inputs[0], as: .nchw),
                                 initializer("\(name).weight", values, [kernel.shape[3], kernel.shape[2], kernel.shape[0], kernel.shape[1]])]
                if l.useBias { arguments.append(initializer("\(name).bias", try l.weights[1].value.toArray(), [l.filters])) }
                let conv = add("Conv", arguments, [ints("kernel_shape", [l.kernelSize.0, l.kernelSize.1]), ints("strides", [w.strideHeight, w.strideWidth]),
                                                   ints("pads", pads(w)), ints("dilations", [d.0, d.1])])
                output = (try activation(l.activation, conv, channelsAxis: 1), .nchw)
            case let l as Conv2DTranspose:
                let shape = inputs[0].shape
                let w = try TransposedConvShape(batch: 1, input: (shape[0], shape[1]), inChannels: shape[2], filters: l.filters, kernel: l.span,
                                                stride: l.strides, padding: l.padding, outputPadding: l.outputPadding).convolution.window
                // ONNX's size (in − 1)·s + k − top − bottom + output_padding; rows the pads cannot reach are output padding.
                let ends = [(w.outputHeight - 1) * w.strideHeight + w.kernelHeight - w.inputHeight - w.padTop,
                            (w.outputWidth - 1) * w.strideWidth + w.kernelWidth - w.inputWidth - w.padLeft]
                let kernel = l.weights[0]
                var arguments = [try value(inputs[0], as: .nchw),
                                 initializer("\(name).weight", try kernel.value.permuted([3, 2, 0, 1]).toArray(),  // (kh, kw, out, in) → (in, out, kh, kw)
                                             [kernel.shape[3], kernel.shape[2], kernel.shape[0], kernel.shape[1]])]
                if l.useBias { arguments.append(initializer("\(name).bias", try l.weights[1].value.toArray(), [l.filters])) }
                let conv = add("ConvTranspose", arguments, [ints("kernel_shape", [l.kernelSize.0, l.kernelSize.1]), ints("strides", [w.strideHeight, w.strideWidth]),
                                                            ints("dilations", [l.dilationRate.0, l.dilationRate.1]),
                                                            ints("pads", [w.padTop, w.padLeft] + ends.map { max($0, 0) }),
                                                            ints("output_padding", ends.map { max(-$0, 0) })])
                output = (try activation(l.activation, conv, channelsAxis: 1), .nchw)
            case let l as DepthwiseConv2D:
                let conv = try depthwise(name, inputs[0], l.weights[0].value, bias: l.useBias ? l.weights[1].value : nil,
                                         kernel: l.kernelSize, strides: l.strides, padding: l.padding, dilation: l.dilationRate)
                output = (try activation(l.activation, conv, channelsAxis: 1), .nchw)
            case let l as SeparableConv2D:  // the depthwise Conv, then a 1×1 Conv
                let spatial = try depthwise(name, inputs[0], l.weights[0].value, bias: nil, kernel: l.kernelSize, strides: l.strides, padding: l.padding,
                                            dilation: l.dilationRate)
                let pointwise = l.weights[1]
                var arguments = [spatial, initializer("\(name).pointwise", try pointwise.value.permuted([3, 2, 0, 1]).toArray(),
                                                      [pointwise.shape[3], pointwise.shape[2], 1, 1])]
                if l.useBias { arguments.append(initializer("\(name).bias", try l.weights[2].value.toArray(), [l.filters])) }
                output = (try activation(l.activation, add("Conv", arguments, [ints("kernel_shape", [1, 1])]), channelsAxis: 1), .nchw)
            case let l as Normalization:
                let x = try value(inputs[0], as: inputs[0].shape.count == 3 ? .nhwc : nil)
                let (mean, variance) = try l.statistics()
                let (m, scale) = (initializer("\(name).mean", mean, [mean.count]),
                                  initializer("\(name).scale", variance.map { max($0.squareRoot(), 1e-7) }, [variance.count]))
                let normalized = l.invert ? add("Add", [add("Mul", [x, scale]), m]) : add("Div", [add("Sub", [x, m]), scale])
                output = (normalized, inputs[0].shape.count == 3 ? .nhwc : layout(of: inputs[0]))
            case let l as Cropping2D:
                let (shape, c) = (inputs[0].shape, l.cropping)
                let arguments = [try value(inputs[0], as: .nchw), initializerInts("\(name).starts", [c.top, c.left]),
                                 initializerInts("\(name).ends", [shape[0] - c.bottom, shape[1] - c.right]), initializerInts("\(name).axes", [2, 3])]
                output = (add("Slice", arguments), .nchw)
            case let l as ZeroPadding2D:
                let p = l.padding
                let pads = initializerInts("\(name).pads", [0, 0, p.top, p.left, 0, 0, p.bottom, p.right])
                output = (add("Pad", [try value(inputs[0], as: .nchw), pads]), .nchw)
            case let l as UpSampling2D:
                let scales = initializer("\(name).scales", [1, 1, Float(l.size.0), Float(l.size.1)], [4])
                let attributes = l.interpolation == .nearest
                    ? [string("mode", "nearest"), string("coordinate_transformation_mode", "asymmetric"), string("nearest_mode", "floor")]
                    : [string("mode", "linear"), string("coordinate_transformation_mode", "half_pixel")]
                output = (add("Resize", [try value(inputs[0], as: .nchw), "", scales], attributes), .nchw)
            case let l as Pooling2D:
                let shape = inputs[0].shape
                let w = try Window2D(input: (shape[0], shape[1]), kernel: l.poolSize, stride: l.strides, padding: l.padding)
                output = (add(l.mode == .max ? "MaxPool" : "AveragePool", [try value(inputs[0], as: .nchw)],
                              [ints("kernel_shape", [w.kernelHeight, w.kernelWidth]), ints("strides", [w.strideHeight, w.strideWidth]),
                               ints("pads", pads(w))]), .nchw)
            case let l as GlobalPooling2D:
                let pooled = add(l.mode == .max ? "GlobalMaxPool" : "GlobalAveragePool", [try value(inputs[0], as: .nchw)])
                output = l.keepDims ? (pooled, .nchw) : (add("Flatten", [pooled], [int("axis", 1)]), .plain)
            case is Flatten:
                output = (add("Flatten", [try value(inputs[0], as: .nhwc)], [int("axis", 1)]), .plain)
            case let l as Reshape:
                let target = initializerInts("\(name).shape", [-1] + l.targetShape)
                output = (add("Reshape", [try value(inputs[0], as: .nhwc), target]), l.targetShape.count == 3 ? .nhwc : .plain)
            case let l as Dense:
                guard inputs[0].shape.count == 1 else { throw TrainingError.incompatible("ONNX export: Dense '\(name)' on rank-\(inputs[0].shape.count + 1) input") }
                var arguments = [try value(inputs[0], as: nil), initializer("\(name).kernel", try l.weights[0].value.toArray(), l.weights[0].shape)]
                if l.useBias { arguments.append(initializer("\(name).bias", try l.weights[1].value.toArray(), [l.units])) }
                output = (try activation(l.activation, add("Gemm", arguments), channelsAxis: -1), .plain)
            case let l as BatchNormalization:
                let x = try value(inputs[0], as: inputs[0].shape.count == 3 ? .nchw : nil)
                let channels = inputs[0].shape.last!
                let stats = l.weights.filter { !$0.isVariable }
                let gamma = try l.weights.first { $0.name == "gamma" }?.value.toArray() ?? [Float](repeating: 1, count: channels)
                let beta = try l.weights.first { $0.name == "beta" }?.value.toArray() ?? [Float](repeating: 0, count: channels)
                output = (add("BatchNormalization", [x, initializer("\(name).gamma", gamma, [channels]), initializer("\(name).beta", beta, [channels]),
                                                     initializer("\(name).moving_mean", try stats[0].value.toArray(), [channels]),
                                                     initializer("\(name).moving_variance", try stats[1].value.toArray(), [channels])],
                              [float("epsilon", l.epsilon)]), layout(of: inputs[0]) == .nhwc ? .nchw : layout(of: inputs[0]))
            case is StochasticLayer:
                output = values[ObjectIdentifier(inputs[0])]!
            case let l as Permute:  // a rank-3 result is what Kiln's next layers read as (H, W, C)
                let x = try value(inputs[0], as: inputs[0].shape.count == 3 ? .nhwc : nil)
                output = (add("Transpose", [x], [ints("perm", [0] + l.dims)]), l.dims.count == 3 ? .nhwc : .plain)
            case let l as ONNXGraph:  // inlined, its values renamed under the layer's name
                guard l.opset >= 13 else { throw TrainingError.incompatible("ONNX export: graph '\(name)' uses opset \(l.opset); export writes opset 13 or later") }
                proto.opsetImport[0].version = max(proto.opsetImport[0].version, Int64(l.opset))
                let graph = try l.inlined(prefix: "\(name)/", input: try value(inputs[0], as: inputs[0].shape.count == 3 ? .nhwc : nil))
                proto.graph.node += graph.nodes
                proto.graph.initializer += graph.initializers
                output = (graph.output, node.shape.count == 3 ? .nhwc : .plain)
            case let l as Activation:
                let x = try value(inputs[0], as: nil)
                output = (try activation(l.function, x, channelsAxis: layout(of: inputs[0]) == .nchw ? 1 : -1), layout(of: inputs[0]))
            case let l as ReLU:
                guard l.negativeSlope == 0, l.threshold == 0 else { throw TrainingError.incompatible("ONNX export: ReLU '\(l.name)' with a slope or threshold has no export yet") }
                let relu = add("Relu", [try value(inputs[0], as: nil)])
                output = (l.maxValue.map { add("Clip", [relu, initializer("\(l.name)_min", [0], []), initializer("\(l.name)_max", [$0], [])]) } ?? relu, layout(of: inputs[0]))
            case let l as LeakyReLU:
                output = (add("LeakyRelu", [try value(inputs[0], as: nil)], [float("alpha", l.negativeSlope)]), layout(of: inputs[0]))
            case is Softmax:
                let axis = layout(of: inputs[0]) == .nchw ? 1 : -1
                output = (add("Softmax", [try value(inputs[0], as: nil)], [int("axis", axis)]), layout(of: inputs[0]))
            case let l as Rescaling:
                let scaled = add("Mul", [try value(inputs[0], as: nil), initializer("\(l.name)_scale", [l.scale], [])])
                output = (add("Add", [scaled, initializer("\(l.name)_offset", [l.offset], [])]), layout(of: inputs[0]))
            case is Multiply, is Subtract, is Average, is Maximum, is Minimum:
                let target = layout(of: inputs[0])
                let arguments = try inputs.map { try value($0, as: target == .plain ? nil : target) }
                switch layer {
                case is Multiply: output = (arguments.dropFirst().reduce(arguments[0]) { add("Mul", [$0, $1]) }, target)
                case is Subtract: output = (add("Sub", arguments), target)
                default: output = (add(layer is Average ? "Mean" : layer is Maximum ? "Max" : "Min", arguments), target)
                }
            case is Add, is Concatenate:
                let target = layout(of: inputs[0])
                let arguments = try inputs.map { try value($0, as: target == .plain ? nil : target) }
                if let l = layer as? Concatenate {
                    let rank = inputs[0].shape.count + 1
                    var axis = l.axis < 0 ? l.axis + rank : l.axis
                    if target == .nchw { axis = axis == 3 ? 1 : axis + 1 }  // NHWC axis → NCHW axis
                    output = (add("Concat", arguments, [int("axis", axis)]), target)
                } else {
                    var sum = arguments[0]
                    for argument in arguments.dropFirst() { sum = add("Add", [sum, argument]) }
                    output = (sum, target)
                }
            default:
                throw TrainingError.incompatible("ONNX export: layer '\(name)' (\(layer.typeName)) has no ONNX form here")
            }
            values[ObjectIdentifier(node)] = output
        }

        mutating func initializerInts(_ name: String, _ values: [Int]) -> String {
            var t = Onnx_TensorProto()
            (t.name, t.dataType, t.dims, t.int64Data) = (name, 7, [Int64(values.count)], values.map(Int64.init))
            proto.graph.initializer.append(t)
            return name
        }
    }
}
