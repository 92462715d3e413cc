import Foundation

/// Models to and from Keras's JSON architecture (`model.to_json()`): Sequential and Functional,
/// Keras 3 and Keras 2 layouts, for the layers Kiln has. Unsupported layers are named in the error.
public enum KerasConfig {
    // MARK: Reading

    /// A model from the JSON text of `model.to_json()`.
    public static func model(fromJSON data: Data, file: String = "model JSON") throws -> Model {
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw DataError(file, "not a JSON object (expected the output of Keras model.to_json())")
        }
        return try model(from: root, file: file)
    }

    static func model(from root: [String: Any], file: String) throws -> Model {
        guard let className = root["class_name"] as? String, let config = root["config"] as? [String: Any] else {
            throw DataError(file, "expected keys 'class_name' and 'config' (Keras model.to_json() output)")
        }
        let name = config["name"] as? String ?? "model"
        guard let layerList = config["layers"] as? [[String: Any]] else { throw DataError(file, "config has no 'layers' list") }
        let unsupported = layerList.filter { !isOperation($0) }.compactMap { $0["class_name"] as? String }
            .filter { !supported.contains($0) && CustomLayers.type(named: $0) == nil }
        guard unsupported.isEmpty else {
            throw DataError(file, "unsupported layers: \(Set(unsupported).sorted().joined(separator: ", ")) (Kiln supports \(supported.sorted().joined(separator: ", ")); "
                            + "register your own layer types with CustomLayers.register)")
        }
        switch className {
        case "Sequential":
            var layers: [Layer] = []
            var input: Input?
            var inputShape = (config["build_input_shape"] as? [Any]).map(sampleShape)
            for entry in layerList {
                let layerConfig = entry["config"] as? [String: Any] ?? [:]
                if entry["class_name"] as? String == "InputLayer" {
                    input = Input(shape: try batchShape(layerConfig, file: file), name: layerConfig["name"] as? String)
                    continue
                }
                if inputShape == nil, let shape = layerConfig["batch_input_shape"] ?? layerConfig["batch_shape"], let list = shape as? [Any] {
                    inputShape = sampleShape(list)
                }
                layers.append(try layer(entry, file: file))
            }
            do {
                if let input { return try Sequential([input] + layers, name: name) }
                return try Sequential(layers, inputShape: inputShape, name: name)
            } catch { throw DataError(file, "\(error)") }
        case "Functional", "Model":
            return try functional(config, layerList, name: name, file: file)
        default:
            throw DataError(file, "model class '\(className)' is not Sequential or Functional")
        }
    }

    static let supported: Set<String> = [
        "InputLayer", "Dense", "Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
        "Flatten", "Dropout", "BatchNormalization", "Activation", "ReLU", "LeakyReLU", "Softmax", "Add", "Concatenate", "Reshape", "Permute",
        "SimpleRNN", "LSTM", "GRU", "Embedding", "Masking", "Bidirectional", "TimeDistributed",
        "Conv1D", "MaxPooling1D", "AveragePooling1D", "GlobalAveragePooling1D", "GlobalMaxPooling1D", "LayerNormalization",
        "ZeroPadding2D", "Cropping2D", "UpSampling2D", "Multiply", "Subtract", "Average", "Maximum", "Minimum", "Rescaling", "CustomScaleLayer", "LayerScale",
        "SpatialDropout2D", "Conv2DTranspose", "GaussianNoise", "GaussianDropout", "Sampling",
        "DepthwiseConv2D", "SeparableConv2D", "Normalization",
        "Sequential", "Functional", "Model",  // a model nested in another
        "ONNXGraph",  // Kiln's own: an imported ONNX graph, stored in checkpoints
    ]

    private static func functional(_ config: [String: Any], _ layerList: [[String: Any]], name: String, file: String) throws -> Model {
        var tensors: [String: [SymbolicTensor]] = [:]
        var inputs: [String: Input] = [:]
        func tensor(_ source: Source, for reader: String) throws -> SymbolicTensor {
            guard let outputs = tensors[source.layer] else { throw DataError(file, "\(reader) reads '\(source.layer)', which comes later or does not exist") }
            guard outputs.indices.contains(source.index) else {
                throw DataError(file, "\(reader) reads output \(source.index) of '\(source.layer)', which has \(outputs.count)")
            }
            return outputs[source.index]
        }
        for entry in layerList {
            let layerConfig = entry["config"] as? [String: Any] ?? [:]
            guard let layerName = entry["name"] as? String ?? layerConfig["name"] as? String else { throw DataError(file, "a layer has no name") }
            if entry["class_name"] as? String == "InputLayer" {
                let input = Input(shape: try batchShape(layerConfig, file: file), name: layerName)
                inputs[layerName] = input
                tensors[layerName] = [input.output]
                continue
            }
            let sources = try inboundTensors(entry["inbound_nodes"], layer: layerName, file: file)
            let arguments = try sources.map { try tensor($0, for: "layer '\(layerName)'") }
            let layer = isOperation(entry) ? try operation(entry, name: layerName, tensors: arguments.count, file: file) : try self.layer(entry, file: file)
            do { tensors[layerName] = try layer.outputs(of: arguments) } catch { throw DataError(file, "\(error)") }
        }
        func endpoints(_ key: String) throws -> [Source] {
            guard let list = config[key] as? [Any] else { throw DataError(file, "functional config lacks '\(key)'") }
            let triples = list.first is String ? [list] : list  // a single [name, 0, 0]
            return try triples.map { item in
                guard let triple = item as? [Any], let name = triple.first as? String else { throw DataError(file, "cannot read '\(key)'") }
                return Source(layer: name, index: triple.count > 2 ? triple[2] as? Int ?? 0 : 0)
            }
        }
        let inputNames = try endpoints("input_layers"), outputNames = try endpoints("output_layers")
        return try Model(inputs: try inputNames.map { n in
            guard let input = inputs[n.layer] else { throw DataError(file, "input layer '\(n.layer)' is not an InputLayer") }
            return input
        }, outputs: try outputNames.map { try tensor($0, for: "the model's output") }, name: name)
    }

    /// A tensor a layer reads: the producing layer's name and which of its outputs.
    private struct Source { var layer: String, index: Int }

    /// Whether an entry is a Keras 3 operation rather than a layer: its module says so (`.keras`), or
    /// (`.h5`, which omits the module) its call has two positional operands where a merge layer has
    /// one list.
    private static func isOperation(_ entry: [String: Any]) -> Bool {
        if let module = entry["module"] as? String { return module.hasPrefix("keras.src.ops") }
        let args = ((entry["inbound_nodes"] as? [Any])?.first as? [String: Any])?["args"] as? [Any] ?? []
        return ["Add", "Subtract", "Multiply", "Divide", "TrueDivide"].contains(entry["class_name"] as? String ?? "")
            && args.count == 2 && args.allSatisfy { $0 is NSNumber || $0 is [String: Any] }
    }

    /// A Keras 3 operation recorded in a functional model (`x + 3.0`, `x * (1 / 6)`, `a * b`, as
    /// MobileNetV3's hard sigmoid writes them): with a constant operand an affine `Rescaling`, between
    /// two tensors the broadcasting merge layer.
    private static func operation(_ entry: [String: Any], name: String, tensors: Int, file: String) throws -> Layer {
        let kind = entry["class_name"] as? String ?? "?"
        let args = ((entry["inbound_nodes"] as? [Any])?.first as? [String: Any])?["args"] as? [Any] ?? []
        if tensors == 2, args.count == 2 {
            switch kind {
            case "Add": return Add(name: name)
            case "Subtract": return Subtract(name: name)
            case "Multiply": return Multiply(name: name)
            default: break
            }
        }
        guard tensors == 1, args.count == 2, let constantIndex = args.firstIndex(where: { $0 is NSNumber }),
              let c = (args[constantIndex] as? NSNumber)?.floatValue else {
            throw DataError(file, "operation '\(name)' (\(kind)) is not supported (Kiln reads add, subtract, multiply and divide by constants or between two tensors)")
        }
        let constantFirst = constantIndex == 0
        switch kind {
        case "Add": return Rescaling(scale: 1, offset: c, name: name)
        case "Subtract": return Rescaling(scale: constantFirst ? -1 : 1, offset: constantFirst ? c : -c, name: name)
        case "Multiply": return Rescaling(scale: c, name: name)
        case "Divide" where !constantFirst && c != 0, "TrueDivide" where !constantFirst && c != 0: return Rescaling(scale: 1 / c, name: name)
        default: throw DataError(file, "operation '\(name)' (\(kind) with a constant) is not supported")
        }
    }

    /// The tensors feeding a layer's call: Keras 3 `{"args": [...], "kwargs": {"initial_state": [...]}}`
    /// or Keras 2 `[[[name, 0, index, {"initial_state": [...]}], …]]`, each `[layer, node, index]`.
    private static func inboundTensors(_ nodes: Any?, layer: String, file: String) throws -> [Source] {
        guard let nodes = nodes as? [Any], let node = nodes.first else { throw DataError(file, "layer '\(layer)' has no inbound nodes") }
        guard nodes.count == 1 else { throw DataError(file, "layer '\(layer)' is shared (called \(nodes.count) times), which Kiln does not support") }
        var sources: [Source] = []
        func source(_ history: [Any]) -> Source? {
            guard let name = history.first as? String else { return nil }
            return Source(layer: name, index: history.count > 2 ? history[2] as? Int ?? 0 : 0)
        }
        func collect(_ value: Any) {
            if let dict = value as? [String: Any] {
                if let history = (dict["config"] as? [String: Any])?["keras_history"] as? [Any], let s = source(history) {
                    sources.append(s)
                } else { dict.values.forEach(collect) }
            } else if let list = value as? [Any] {
                if list.count >= 3, list[0] is String, list[1] is Int, let s = source(list) {
                    sources.append(s)
                    if list.count > 3, let state = (list[3] as? [String: Any])?["initial_state"] { collect(state) }
                } else { list.forEach(collect) }
            }
        }
        if let keras3 = node as? [String: Any] {
            collect(keras3["args"] ?? [])
            if let state = (keras3["kwargs"] as? [String: Any])?["initial_state"] { collect(state) }
        } else { collect(node) }
        guard !sources.isEmpty else { throw DataError(file, "cannot read the inputs of layer '\(layer)'") }
        return sources
    }

    private static func batchShape(_ config: [String: Any], file: String) throws -> [Int] {
        guard let shape = (config["batch_shape"] ?? config["batch_input_shape"]) as? [Any] else {
            throw DataError(file, "InputLayer '\(config["name"] ?? "?")' has no batch_shape")
        }
        return sampleShape(shape)
    }

    /// `[null, 28, 28, 1]` → `[28, 28, 1]`.
    private static func sampleShape(_ batchShape: [Any]) -> [Int] { batchShape.dropFirst().map { $0 as? Int ?? -1 } }

    /// One layer from its `{"class_name", "config"}` entry, frozen when its config says `trainable: false`.
    static func layer(_ entry: [String: Any], file: String) throws -> Layer {
        let layer = try makeLayer(entry, file: file)
        // A nested model's `true` would unfreeze its layers; their own flags say which are frozen.
        if let config = entry["config"] as? [String: Any], let trainable = config["trainable"] as? Bool, !(layer is NestedModel && trainable) {
            layer.trainable = trainable
        }
        return layer
    }

    private static func makeLayer(_ entry: [String: Any], file: String) throws -> Layer {
        let kind = entry["class_name"] as? String ?? "?"
        let c = entry["config"] as? [String: Any] ?? [:]
        let name = c["name"] as? String
        func int(_ key: String) throws -> Int {
            guard let v = c[key] as? Int else { throw DataError(file, "\(kind) '\(name ?? "?")': '\(key)' must be an integer") }
            return v
        }
        func float(_ key: String, _ fallback: Float) -> Float { (c[key] as? NSNumber)?.floatValue ?? fallback }
        func pair(_ key: String, _ fallback: (Int, Int)? = nil) throws -> (Int, Int) {
            if let v = c[key] as? Int { return (v, v) }
            if let v = c[key] as? [Int], v.count == 2 { return (v[0], v[1]) }
            if let fallback, c[key] == nil || c[key] is NSNull { return fallback }
            throw DataError(file, "\(kind) '\(name ?? "?")': '\(key)' must be an integer or a pair")
        }
        func single(_ key: String, _ fallback: Int? = nil) throws -> Int {
            if let v = c[key] as? Int { return v }
            if let v = c[key] as? [Int], v.count == 1 { return v[0] }
            if let fallback, c[key] == nil || c[key] is NSNull { return fallback }
            throw DataError(file, "\(kind) '\(name ?? "?")': '\(key)' must be an integer or a one-element list")
        }
        func padding() throws -> Padding {
            guard let p = Padding(rawValue: (c["padding"] as? String ?? "valid").lowercased()) else {
                throw DataError(file, "\(kind) '\(name ?? "?")': padding '\(c["padding"] ?? "")' is not valid or same")
            }
            return p
        }
        func activation(_ key: String = "activation", default fallback: String = "linear") throws -> ActivationFunction {
            let value = c[key]
            let text = value as? String ?? ((value as? [String: Any])?["config"] as? [String: Any])?["name"] as? String
                ?? (value as? [String: Any])?["class_name"] as? String ?? fallback
            guard let f = ActivationFunction(kerasName: text) else { throw DataError(file, "\(kind) '\(name ?? "?")': unsupported activation '\(text)'") }
            return f
        }
        func initializer(_ key: String, _ fallback: Initializer) throws -> Initializer {
            guard let value = c[key], !(value is NSNull) else { return fallback }
            let text = value as? String ?? (value as? [String: Any])?["class_name"] as? String ?? ""
            guard let i = Initializer(kerasName: text) else { throw DataError(file, "\(kind) '\(name ?? "?")': unsupported \(key) '\(text)'") }
            let settings = (value as? [String: Any])?["config"] as? [String: Any] ?? [:]
            switch i {
            case .randomUniform(let low, let high):
                return .randomUniform(min: (settings["minval"] as? NSNumber)?.floatValue ?? low, max: (settings["maxval"] as? NSNumber)?.floatValue ?? high)
            case .orthogonal: return .orthogonal(gain: (settings["gain"] as? NSNumber)?.floatValue ?? 1)
            case .constant: return .constant((settings["value"] as? NSNumber)?.floatValue ?? 0)
            case .varianceScaling:
                let drawn = settings["distribution"] as? String ?? "truncated_normal"  // Keras 2's "normal" is the truncated one
                guard let fan = Initializer.Fan(rawValue: settings["mode"] as? String ?? "fan_in"),
                      let distribution = Initializer.Distribution(rawValue: drawn == "normal" ? "truncated_normal" : drawn) else {
                    throw DataError(file, "\(kind) '\(name ?? "?")': VarianceScaling \(settings) is not supported")
                }
                return .varianceScaling(scale: (settings["scale"] as? NSNumber)?.floatValue ?? 1, fan: fan, distribution: distribution)
            default: return i
            }
        }
        func regularizer() throws -> Regularizer? {
            guard let value = c["kernel_regularizer"] as? [String: Any] else { return nil }
            let config = value["config"] as? [String: Any] ?? [:]
            let (l1, l2) = ((config["l1"] as? NSNumber)?.floatValue ?? 0, (config["l2"] as? NSNumber)?.floatValue ?? 0)
            switch value["class_name"] as? String {
            case "L1": return .l1(l1)
            case "L2": return .l2(l2)
            case "L1L2": return .l1l2(l1: l1, l2: l2)
            default: throw DataError(file, "\(kind) '\(name ?? "?")': unsupported kernel_regularizer \(value["class_name"] ?? "?")")
            }
        }
        if let format = c["data_format"] as? String, format != "channels_last" {
            throw DataError(file, "\(kind) '\(name ?? "?")': data_format \(format) (Kiln models are channels_last)")
        }
        switch kind {
        case "Dense":
            return Dense(try int("units"), activation: try activation(), useBias: c["use_bias"] as? Bool ?? true,
                         kernelInitializer: try initializer("kernel_initializer", .glorotUniform), biasInitializer: try initializer("bias_initializer", .zeros),
                         kernelRegularizer: try regularizer(), name: name)
        case "Conv2D":
            return Conv2D(try int("filters"), kernelSize: try pair("kernel_size"), strides: try pair("strides", (1, 1)), padding: try padding(),
                          dilationRate: try pair("dilation_rate", (1, 1)), groups: c["groups"] as? Int ?? 1, activation: try activation(), useBias: c["use_bias"] as? Bool ?? true,
                          kernelInitializer: try initializer("kernel_initializer", .glorotUniform), biasInitializer: try initializer("bias_initializer", .zeros),
                          kernelRegularizer: try regularizer(), name: name)
        case "Conv2DTranspose":
            let outputPadding = c["output_padding"] == nil || c["output_padding"] is NSNull ? nil : try pair("output_padding")
            return Conv2DTranspose(try int("filters"), kernelSize: try pair("kernel_size"), strides: try pair("strides", (1, 1)), padding: try padding(),
                                   outputPadding: outputPadding, dilationRate: try pair("dilation_rate", (1, 1)), activation: try activation(),
                                   useBias: c["use_bias"] as? Bool ?? true,
                                   kernelInitializer: try initializer("kernel_initializer", .glorotUniform),
                                   biasInitializer: try initializer("bias_initializer", .zeros), kernelRegularizer: try regularizer(), name: name)
        case "DepthwiseConv2D", "SeparableConv2D":
            let (size, strides, multiplier) = (try pair("kernel_size"), try pair("strides", (1, 1)), c["depth_multiplier"] as? Int ?? 1)
            let dilation = try pair("dilation_rate", (1, 1))
            if kind == "SeparableConv2D" {
                return SeparableConv2D(try int("filters"), kernelSize: size, strides: strides, padding: try padding(), depthMultiplier: multiplier,
                                       dilationRate: dilation, activation: try activation(), useBias: c["use_bias"] as? Bool ?? true, name: name)
            }
            return DepthwiseConv2D(kernelSize: size, strides: strides, padding: try padding(), depthMultiplier: multiplier,
                                   dilationRate: dilation, activation: try activation(),
                                   useBias: c["use_bias"] as? Bool ?? true, depthwiseInitializer: try initializer("depthwise_initializer", .glorotUniform),
                                   biasInitializer: try initializer("bias_initializer", .zeros), name: name)
        case "MaxPooling2D":
            let size = try pair("pool_size", (2, 2))
            return MaxPooling2D(poolSize: size, strides: try pair("strides", size), padding: try padding(), name: name)
        case "AveragePooling2D":
            let size = try pair("pool_size", (2, 2))
            return AveragePooling2D(poolSize: size, strides: try pair("strides", size), padding: try padding(), name: name)
        case "GlobalAveragePooling2D", "GlobalMaxPooling2D":
            let keep = c["keepdims"] as? Bool ?? false
            return kind == "GlobalAveragePooling2D" ? GlobalAveragePooling2D(keepDims: keep, name: name) : GlobalMaxPooling2D(keepDims: keep, name: name)
        case "Flatten": return Flatten(name: name)
        case "Dropout": return Dropout(float("rate", 0), name: name)
        case "SpatialDropout2D": return SpatialDropout2D(float("rate", 0), name: name)
        case "GaussianNoise": return GaussianNoise(float("stddev", 0), name: name)
        case "GaussianDropout": return GaussianDropout(float("rate", 0), name: name)
        case "Sampling": return Sampling(name: name)
        case "Normalization":
            guard let axis = c["axis"] == nil ? [-1] : c["axis"] as? [Int] ?? (c["axis"] as? Int).map({ [$0] }), axis.count == 1 else {
                throw DataError(file, "Normalization '\(name ?? "?")': axis \(c["axis"] ?? "") is not supported (one axis, the last)")
            }
            func values(_ key: String) -> [Float]? { (c[key] as? [NSNumber])?.map(\.floatValue) ?? (c[key] as? NSNumber).map { [$0.floatValue] } }
            return Normalization(axis: axis[0], mean: values("mean"), variance: values("variance"), invert: c["invert"] as? Bool ?? false, name: name)
        case "BatchNormalization":
            if let axis = c["axis"] as? Int, axis != -1, axis != 3 { throw DataError(file, "BatchNormalization '\(name ?? "?")': axis \(axis) (only the last axis)") }
            if let axis = c["axis"] as? [Int], axis != [3], axis != [-1] { throw DataError(file, "BatchNormalization '\(name ?? "?")': axis \(axis) (only the last axis)") }
            return BatchNormalization(momentum: float("momentum", 0.99), epsilon: float("epsilon", 1e-3),
                                      center: c["center"] as? Bool ?? true, scale: c["scale"] as? Bool ?? true,
                                      synchronized: c["synchronized"] as? Bool ?? false, name: name)
        case "Activation": return Activation(try activation(), name: name)
        case "ReLU":
            let cap = (c["max_value"] as? NSNumber)?.floatValue
            return ReLU(maxValue: cap, negativeSlope: float("negative_slope", 0), threshold: float("threshold", 0), name: name)
        case "Multiply": return Multiply(name: name)
        case "Subtract": return Subtract(name: name)
        case "Average": return Average(name: name)
        case "Maximum": return Maximum(name: name)
        case "Minimum": return Minimum(name: name)
        case "Rescaling":
            guard let scale = (c["scale"] as? NSNumber)?.floatValue else {
                throw DataError(file, "Rescaling '\(name ?? "?")': 'scale' must be a number (per-channel scales are not supported)")
            }
            return Rescaling(scale: scale, offset: float("offset", 0), name: name)
        case "LeakyReLU": return LeakyReLU(negativeSlope: float("negative_slope", float("alpha", 0.3)), name: name)
        case "Softmax":
            if let axis = c["axis"] as? Int, axis != -1 { throw DataError(file, "Softmax '\(name ?? "?")': axis \(axis) (only -1)") }
            return Softmax(name: name)
        case "Add": return Add(name: name)
        case "CustomScaleLayer":
            guard let scale = (c["scale"] as? NSNumber)?.floatValue else { throw DataError(file, "CustomScaleLayer '\(name ?? "?")': 'scale' must be a number") }
            return CustomScaleLayer(scale: scale, name: name)
        case "LayerScale":
            guard let value = (c["init_values"] as? NSNumber)?.floatValue, let dimension = c["projection_dim"] as? Int else {
                throw DataError(file, "LayerScale '\(name ?? "?")': 'init_values' and 'projection_dim' must be numbers")
            }
            return LayerScale(initValue: value, projectionDim: dimension, name: name)
        case "Concatenate": return Concatenate(axis: c["axis"] as? Int ?? -1, name: name)
        case "ONNXGraph":
            guard let encoded = c["graph"] as? String, let bytes = Data(base64Encoded: encoded), let opset = c["opset"] as? Int,
                  let graph = try? Onnx_GraphProto(serializedBytes: bytes) else {
                throw DataError(file, "ONNXGraph '\(name ?? "?")': the stored graph is damaged")
            }
            return try ONNXGraph(graph: graph, opset: opset, output: c["output"] as? String, file: file, name: name, storedWeights: true)
        case "Reshape":
            guard let shape = c["target_shape"] as? [Int] else { throw DataError(file, "Reshape '\(name ?? "?")': target_shape must be a list of integers") }
            return Reshape(shape, name: name)
        case "Permute":
            guard let dims = c["dims"] as? [Int] else { throw DataError(file, "Permute '\(name ?? "?")': dims must be a list of integers") }
            return Permute(dims, name: name)
        case "SimpleRNN", "LSTM", "GRU":
            func flag(_ key: String, _ fallback: Bool = false) -> Bool { c[key] as? Bool ?? fallback }
            let gate = c["recurrent_activation"] == nil ? .sigmoid : try activation("recurrent_activation")
            if kind != "SimpleRNN", gate != .sigmoid {
                throw DataError(file, "\(kind) '\(name ?? "?")': recurrent_activation other than sigmoid is not supported yet")
            }
            let (units, act, bias) = (try int("units"), try activation(default: "tanh"), flag("use_bias", true))
            let (sequences, backwards, stateful, rate) = (flag("return_sequences"), flag("go_backwards"), flag("stateful"), float("dropout", 0))
            let recurrentRate = float("recurrent_dropout", 0)
            let (kernel, recurrent) = (try initializer("kernel_initializer", .glorotUniform), try initializer("recurrent_initializer", .orthogonal()))
            let biasInit = try initializer("bias_initializer", .zeros)
            switch kind {
            case "SimpleRNN":
                return SimpleRNN(units, activation: act, useBias: bias, returnSequences: sequences, returnState: flag("return_state"), goBackwards: backwards, stateful: stateful,
                                 dropout: rate, recurrentDropout: recurrentRate, kernelInitializer: kernel, recurrentInitializer: recurrent,
                                 biasInitializer: biasInit, name: name)
            case "LSTM":
                let forget = flag("unit_forget_bias", true)
                return LSTM(units, activation: act, useBias: bias, returnSequences: sequences, returnState: flag("return_state"), goBackwards: backwards, stateful: stateful,
                            dropout: rate, recurrentDropout: recurrentRate, unitForgetBias: forget, kernelInitializer: kernel, recurrentInitializer: recurrent,
                            biasInitializer: forget ? nil : biasInit, name: name)
            default:
                return GRU(units, activation: act, useBias: bias, returnSequences: sequences, returnState: flag("return_state"), goBackwards: backwards, stateful: stateful,
                           dropout: rate, recurrentDropout: recurrentRate, resetAfter: flag("reset_after", true), kernelInitializer: kernel,
                           recurrentInitializer: recurrent, biasInitializer: biasInit, name: name)
            }
        case "Conv1D":
            if let groups = c["groups"] as? Int, groups != 1 { throw DataError(file, "Conv1D '\(name ?? "?")': groups = \(groups) is not supported") }
            guard let mode = Padding1D(rawValue: (c["padding"] as? String ?? "valid").lowercased()) else {
                throw DataError(file, "Conv1D '\(name ?? "?")': padding '\(c["padding"] ?? "")' is not valid, same or causal")
            }
            return Conv1D(try int("filters"), kernelSize: try single("kernel_size"), strides: try single("strides", 1), padding: mode,
                          dilationRate: try single("dilation_rate", 1), activation: try activation(), useBias: c["use_bias"] as? Bool ?? true,
                          kernelInitializer: try initializer("kernel_initializer", .glorotUniform),
                          biasInitializer: try initializer("bias_initializer", .zeros), name: name)
        case "MaxPooling1D", "AveragePooling1D":
            let size = try single("pool_size", 2)
            let strides = c["strides"] == nil || c["strides"] is NSNull ? size : try single("strides")
            return kind == "MaxPooling1D" ? MaxPooling1D(poolSize: size, strides: strides, padding: try padding(), name: name)
                : AveragePooling1D(poolSize: size, strides: strides, padding: try padding(), name: name)
        case "GlobalAveragePooling1D", "GlobalMaxPooling1D":
            if c["keepdims"] as? Bool == true { throw DataError(file, "\(kind) '\(name ?? "?")': keepdims=true is not supported") }
            return kind == "GlobalAveragePooling1D" ? GlobalAveragePooling1D(name: name) : GlobalMaxPooling1D(name: name)
        case "LayerNormalization":
            let axis = c["axis"] as? Int ?? (c["axis"] as? [Int])?.first ?? -1
            if axis != -1 || (c["axis"] as? [Int])?.count ?? 1 != 1 || c["rms_scaling"] as? Bool == true {
                throw DataError(file, "LayerNormalization '\(name ?? "?")': only the last axis (-1) without rms_scaling is supported, got axis \(c["axis"] ?? -1)")
            }
            return LayerNormalization(epsilon: float("epsilon", 1e-3), center: c["center"] as? Bool ?? true, scale: c["scale"] as? Bool ?? true, name: name)
        case "ZeroPadding2D", "Cropping2D":
            let key = kind == "ZeroPadding2D" ? "padding" : "cropping"
            let sides: (Int, Int, Int, Int)
            if let v = c[key] as? Int { sides = (v, v, v, v) }
            else if let v = c[key] as? [Int], v.count == 2 { sides = (v[0], v[0], v[1], v[1]) }
            else if let v = c[key] as? [[Int]], v.count == 2, v.allSatisfy({ $0.count == 2 }) { sides = (v[0][0], v[0][1], v[1][0], v[1][1]) }
            else { throw DataError(file, "\(kind) '\(name ?? "?")': '\(key)' must be an integer, a pair or a pair of pairs") }
            return kind == "ZeroPadding2D" ? ZeroPadding2D(padding: sides, name: name) : Cropping2D(cropping: sides, name: name)
        case "UpSampling2D":
            guard let interpolation = UpSampling2D.Interpolation(rawValue: c["interpolation"] as? String ?? "nearest") else {
                throw DataError(file, "UpSampling2D '\(name ?? "?")': interpolation '\(c["interpolation"] ?? "")' is not supported (nearest and bilinear are)")
            }
            return UpSampling2D(size: try pair("size", (2, 2)), interpolation: interpolation, name: name)
        case "Masking": return Masking(maskValue: float("mask_value", 0), name: name)
        case "Bidirectional", "TimeDistributed":
            guard let inner = c["layer"] as? [String: Any] else { throw DataError(file, "\(kind) '\(name ?? "?")': no 'layer' to wrap") }
            let wrapped = try layer(inner, file: file)
            if kind == "TimeDistributed" { return TimeDistributed(wrapped, name: name) }
            guard let recurrent = wrapped as? RecurrentLayer, let mode = Bidirectional.MergeMode(rawValue: c["merge_mode"] as? String ?? "concat") else {
                throw DataError(file, "Bidirectional '\(name ?? "?")': wraps SimpleRNN, LSTM or GRU with merge_mode concat, sum, ave or mul")
            }
            if recurrent.name.hasPrefix("forward_") { recurrent.name.removeFirst("forward_".count) }  // Keras 3 stores the renamed copy
            return Bidirectional(recurrent, mergeMode: mode, name: name)
        case "Embedding":
            return Embedding(inputDim: try int("input_dim"), outputDim: try int("output_dim"), maskZero: c["mask_zero"] as? Bool ?? false,
                             embeddingsInitializer: try initializer("embeddings_initializer", .randomUniform(min: -0.05, max: 0.05)), name: name)
        case "Sequential", "Functional", "Model":
            return try model(from: entry, file: file).asLayer
        default:
            guard let custom = CustomLayers.type(named: kind) else { throw DataError(file, "unsupported layer \(kind)") }
            do { return try custom.init(config: c, name: name) } catch { throw DataError(file, "\(kind) '\(name ?? "?")': \(error)") }
        }
    }

    // MARK: Writing

    /// The model in Keras 3's `to_json()` layout.
    public static func json(of model: Model) throws -> [String: Any] {
        func history(_ t: SymbolicTensor) -> [String: Any] {
            ["class_name": "__keras_tensor__", "config": ["shape": [NSNull()] + t.shape.map { $0 as Any }, "dtype": "float32",
                                                          "keras_history": [t.layer.name, 0, t.index]]]
        }
        if let sequential = model as? Sequential {
            let input = sequential.inputs.first
            let layers = (input.map { [entry($0)] } ?? []) + sequential.stack.map(entry)
            return ["class_name": "Sequential", "config": ["name": model.name, "layers": layers]]
        }
        var layers: [[String: Any]] = model.inputs.map { var e = entry($0); e["name"] = $0.name; e["inbound_nodes"] = [Any](); return e }
        var written = Set<ObjectIdentifier>()
        for node in model.nodes where written.insert(ObjectIdentifier(node.call)).inserted {
            var e = entry(node.layer)
            e["name"] = node.layer.name
            var (args, kwargs): (Any, [String: Any]) = ([node.inputs.map(history)], [:])
            if node.inputs.count == 1 {
                args = [history(node.inputs[0])]
            } else if node.layer is RecurrentLayer {  // the sequences, then the initial state (Keras's keyword)
                (args, kwargs) = ([history(node.inputs[0])], ["initial_state": node.inputs.dropFirst().map(history)])
            }
            e["inbound_nodes"] = [["args": args, "kwargs": kwargs]]
            layers.append(e)
        }
        return ["class_name": "Functional", "config": [
            "name": model.name, "layers": layers,
            "input_layers": model.inputs.map { [$0.name, 0, 0] }, "output_layers": model.outputs.map { [$0.layer.name, 0, $0.index] },
        ]]
    }

    private static func entry(_ layer: Layer) -> [String: Any] {
        var c: [String: Any] = ["name": layer.name, "trainable": layer.trainable]
        func initializer(_ i: Initializer) -> Any {
            switch i {
            case .zeros: ["class_name": "Zeros", "config": [String: Any]()]
            case .ones: ["class_name": "Ones", "config": [String: Any]()]
            case .glorotUniform: ["class_name": "GlorotUniform", "config": [String: Any]()]
            case .glorotNormal: ["class_name": "GlorotNormal", "config": [String: Any]()]
            case .heUniform: ["class_name": "HeUniform", "config": [String: Any]()]
            case .heNormal: ["class_name": "HeNormal", "config": [String: Any]()]
            case .orthogonal(let gain): ["class_name": "Orthogonal", "config": ["gain": gain]]
            case .randomUniform(let low, let high): ["class_name": "RandomUniform", "config": ["minval": low, "maxval": high]]
            case .varianceScaling(let scale, let fan, let distribution):
                ["class_name": "VarianceScaling", "config": ["scale": scale, "mode": fan.rawValue, "distribution": distribution.rawValue]]
            case .constant(let value): ["class_name": "Constant", "config": ["value": value]]
            default: ["class_name": "GlorotUniform", "config": [String: Any]()]
            }
        }
        func regularizer(_ r: Regularizer?) -> Any {
            switch r {
            case nil: NSNull()
            case .l1(let f): ["class_name": "L1", "config": ["l1": f]]
            case .l2(let f): ["class_name": "L2", "config": ["l2": f]]
            case .l1l2(let a, let b): ["class_name": "L1L2", "config": ["l1": a, "l2": b]]
            }
        }
        switch layer {
        case let l as Input: c["batch_shape"] = [NSNull()] + l.shape.map { $0 as Any }; c["dtype"] = "float32"
        case let l as Dense:
            c.merge(["units": l.units, "activation": l.activation.kerasName, "use_bias": l.useBias, "kernel_initializer": initializer(l.kernelInitializer),
                     "bias_initializer": initializer(l.biasInitializer), "kernel_regularizer": regularizer(l.kernelRegularizer)]) { $1 }
        case let l as Conv2D:
            c.merge(["filters": l.filters, "kernel_size": [l.kernelSize.0, l.kernelSize.1], "strides": [l.strides.0, l.strides.1],
                     "padding": l.padding.rawValue, "data_format": "channels_last", "dilation_rate": [l.dilationRate.0, l.dilationRate.1], "groups": l.groups,
                     "activation": l.activation.kerasName, "use_bias": l.useBias, "kernel_initializer": initializer(l.kernelInitializer),
                     "bias_initializer": initializer(l.biasInitializer), "kernel_regularizer": regularizer(l.kernelRegularizer)]) { $1 }
        case let l as DepthwiseConv2D:
            c.merge(["kernel_size": [l.kernelSize.0, l.kernelSize.1], "strides": [l.strides.0, l.strides.1], "padding": l.padding.rawValue,
                     "depth_multiplier": l.depthMultiplier, "data_format": "channels_last", "dilation_rate": [l.dilationRate.0, l.dilationRate.1],
                     "activation": l.activation.kerasName,
                     "use_bias": l.useBias, "depthwise_initializer": initializer(l.kernelInitializer), "bias_initializer": initializer(l.biasInitializer)]) { $1 }
        case let l as SeparableConv2D:
            c.merge(["filters": l.filters, "kernel_size": [l.kernelSize.0, l.kernelSize.1], "strides": [l.strides.0, l.strides.1],
                     "padding": l.padding.rawValue, "depth_multiplier": l.depthMultiplier, "data_format": "channels_last",
                     "dilation_rate": [l.dilationRate.0, l.dilationRate.1],
                     "activation": l.activation.kerasName, "use_bias": l.useBias]) { $1 }
        case let l as Normalization:
            c.merge(["axis": [l.axis], "invert": l.invert, "mean": l.given.map { $0.mean as Any } ?? NSNull(),
                     "variance": l.given.map { $0.variance as Any } ?? NSNull()]) { $1 }
        case let l as Conv2DTranspose:
            c.merge(["filters": l.filters, "kernel_size": [l.kernelSize.0, l.kernelSize.1], "strides": [l.strides.0, l.strides.1],
                     "padding": l.padding.rawValue, "output_padding": l.outputPadding.map { [$0.0, $0.1] } ?? NSNull(),
                     "data_format": "channels_last", "dilation_rate": [l.dilationRate.0, l.dilationRate.1], "activation": l.activation.kerasName,
                     "use_bias": l.useBias, "kernel_initializer": initializer(l.kernelInitializer), "bias_initializer": initializer(l.biasInitializer),
                     "kernel_regularizer": regularizer(l.kernelRegularizer)]) { $1 }
        case let l as Pooling2D:
            c.merge(["pool_size": [l.poolSize.0, l.poolSize.1], "strides": [l.strides.0, l.strides.1], "padding": l.padding.rawValue,
                     "data_format": "channels_last"]) { $1 }
        case let l as GlobalPooling2D: c["data_format"] = "channels_last"; c["keepdims"] = l.keepDims
        case let l as Dropout: c["rate"] = l.rate
        case let l as GaussianNoise: c["stddev"] = l.stddev
        case let l as GaussianDropout: c["rate"] = l.rate
        case let l as BatchNormalization:
            c.merge(["axis": -1, "momentum": l.momentum, "epsilon": l.epsilon, "center": l.center, "scale": l.scale, "synchronized": l.synchronized]) { $1 }
        case let l as Activation: c["activation"] = l.function.kerasName
        case let l as LeakyReLU: c["negative_slope"] = l.negativeSlope
        case let l as ReLU: c.merge(["max_value": l.maxValue.map { $0 as Any } ?? NSNull(), "negative_slope": l.negativeSlope, "threshold": l.threshold]) { $1 }
        case let l as Rescaling: c.merge(["scale": l.scale, "offset": l.offset]) { $1 }
        case let l as CustomScaleLayer: c["scale"] = l.scale
        case let l as LayerScale: c.merge(["init_values": l.initValue, "projection_dim": l.projectionDim]) { $1 }
        case is Softmax: c["axis"] = -1
        case let l as Concatenate: c["axis"] = l.axis
        case let l as Reshape: c["target_shape"] = l.targetShape
        case let l as Permute: c["dims"] = l.dims
        case let l as Masking: c["mask_value"] = l.maskValue
        case let l as ZeroPadding2D: c["padding"] = [[l.padding.top, l.padding.bottom], [l.padding.left, l.padding.right]]; c["data_format"] = "channels_last"
        case let l as Cropping2D: c["cropping"] = [[l.cropping.top, l.cropping.bottom], [l.cropping.left, l.cropping.right]]; c["data_format"] = "channels_last"
        case let l as UpSampling2D: c.merge(["size": [l.size.0, l.size.1], "interpolation": l.interpolation.rawValue, "data_format": "channels_last"]) { $1 }
        case let l as Conv1D:
            c.merge(["filters": l.filters, "kernel_size": [l.kernelSize], "strides": [l.strides], "padding": l.padding.rawValue,
                     "data_format": "channels_last", "dilation_rate": [l.dilationRate], "groups": 1, "activation": l.activation.kerasName,
                     "use_bias": l.useBias, "kernel_initializer": initializer(l.kernelInitializer), "bias_initializer": initializer(l.biasInitializer)]) { $1 }
        case let l as Pooling1D:
            c.merge(["pool_size": [l.poolSize], "strides": [l.strides], "padding": l.padding.rawValue, "data_format": "channels_last"]) { $1 }
        case is GlobalPooling1D: c["data_format"] = "channels_last"; c["keepdims"] = false
        case let l as LayerNormalization: c.merge(["axis": -1, "epsilon": l.epsilon, "center": l.center, "scale": l.scale]) { $1 }
        case let l as Bidirectional:
            var inner = entry(l.forwardLayer)
            var innerConfig = inner["config"] as! [String: Any]
            innerConfig["name"] = String(l.forwardLayer.name.dropFirst("forward_".count))
            inner["config"] = innerConfig
            c.merge(["merge_mode": l.mergeMode.rawValue, "layer": inner]) { $1 }
        case let l as TimeDistributed: c["layer"] = entry(l.layer)
        case let l as Embedding:
            c.merge(["input_dim": l.inputDim, "output_dim": l.outputDim, "mask_zero": l.maskZero,
                     "embeddings_initializer": initializer(l.embeddingsInitializer)]) { $1 }
        case let l as RecurrentLayer:
            c.merge(["units": l.units, "activation": l.activation.kerasName, "use_bias": l.useBias, "return_sequences": l.returnSequences,
                     "return_state": l.returnState, "go_backwards": l.goBackwards, "stateful": l.stateful, "dropout": l.dropout, "recurrent_dropout": l.recurrentDropout,
                     "kernel_initializer": initializer(l.kernelInitializer), "recurrent_initializer": initializer(l.recurrentInitializer)]) { $1 }
            if l.cell != .simpleRNN { c["recurrent_activation"] = "sigmoid" }
            if let gru = l as? GRU { c["reset_after"] = gru.resetAfter }
            if case .forgetGateOnes = l.biasInitializer { c["unit_forget_bias"] = true; c["bias_initializer"] = initializer(.zeros) } else {
                c["bias_initializer"] = initializer(l.biasInitializer)
                if l.cell == .lstm { c["unit_forget_bias"] = false }
            }
        case let l as ONNXGraph:
            c.merge(["graph": (try? l.structure().base64EncodedString()) ?? "", "opset": l.opset, "output": l.outputName]) { $1 }
        case let l as any ConfigurableLayer: c.merge(l.config) { $1 }
        case let l as NestedModel:
            if let config = (try? json(of: l.model))?["config"] as? [String: Any] { c.merge(config) { own, _ in own } }
        default: break
        }
        return ["module": "keras.layers", "class_name": layer.typeName, "config": c, "registered_name": NSNull()]
    }
}
