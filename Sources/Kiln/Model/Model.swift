/// A network of layers: functional (`Model(inputs:outputs:)`, with branches, residual `Add` and
/// `Concatenate`) or a `Sequential` stack. Call it on a batch to run it; `fit` and friends train it.
open class Model {
    public var name: String
    public private(set) var inputs: [Input] = []
    public private(set) var outputs: [SymbolicTensor] = []
    /// Layer calls in execution order.
    private(set) var nodes: [SymbolicTensor] = []
    /// Convolutions whose output only a max pooling reads, by convolution node: the two run as one op.
    private(set) var pooledConvolutions: [ObjectIdentifier: SymbolicTensor] = [:]
    /// The device its weights live on, once placed.
    public private(set) var device: (any Device)?
    /// Optimizer, loss and metrics set by `compile`.
    public internal(set) var compiled: Compilation?
    /// Epochs trained so far (continued by the next `fit`).
    public internal(set) var epochsTrained = 0
    /// Every epoch's metrics across all `fit` calls (and the checkpoint it was resumed from).
    public internal(set) var trainingHistory = History()
    /// Why the last `fit` stopped before its final epoch (early stopping, a non-finite loss), if it did.
    public internal(set) var lastStopReason: String?
    /// This model as a layer of others (`asLayer`).
    var asNested: NestedModel?

    public init(inputs: [Input], outputs: [SymbolicTensor], name: String = "functional") throws {
        self.name = name
        try setGraph(inputs: inputs, outputs: outputs)
    }

    public convenience init(inputs: Input, outputs: SymbolicTensor, name: String = "functional") throws {
        try self.init(inputs: [inputs], outputs: [outputs], name: name)
    }

    public convenience init(inputs: [Input], outputs: SymbolicTensor, name: String = "functional") throws {
        try self.init(inputs: inputs, outputs: [outputs], name: name)
    }

    init(name: String) { self.name = name }

    func setGraph(inputs: [Input], outputs: [SymbolicTensor]) throws {
        // Depth-first post-order from the outputs gives each call after the calls it reads.
        var order: [SymbolicTensor] = [], seen = Set<ObjectIdentifier>()
        func visit(_ t: SymbolicTensor) {
            guard seen.insert(ObjectIdentifier(t)).inserted else { return }
            t.inputs.forEach(visit)
            order.append(t)
        }
        outputs.forEach(visit)
        for t in order where t.layer is Input && !inputs.contains(where: { $0 === t.layer }) {
            throw TensorError.shape("model '\(name)': output depends on input '\(t.layer.name)' that is not among the model's inputs")
        }
        (self.inputs, self.outputs, self.nodes) = (inputs, outputs, order.filter { !($0.layer is Input) })
        var readers: [ObjectIdentifier: [SymbolicTensor]] = [:]
        for node in nodes { for input in node.inputs { readers[ObjectIdentifier(input), default: []].append(node) } }
        pooledConvolutions = [:]
        for node in nodes where !outputs.contains(where: { $0 === node }) {
            guard let conv = node.layer as? Conv2D, let only = readers[ObjectIdentifier(node)], only.count == 1,
                  let pool = only[0].layer as? Pooling2D, conv.fuses(with: pool) else { continue }
            pooledConvolutions[ObjectIdentifier(node)] = only[0]
        }
        var names = Set<String>()
        for layer in layers where !names.insert(layer.name).inserted {
            throw TensorError.shape("model '\(name)': two layers are named '\(layer.name)'; layer names must be unique")
        }
    }

    /// Each layer once, in execution order (inputs first).
    public var layers: [Layer] {
        var seen = Set<ObjectIdentifier>()
        return (inputs.map { $0 as Layer } + nodes.map(\.layer)).filter { seen.insert(ObjectIdentifier($0)).inserted }
    }

    public var weights: [Weight] { leafLayers.flatMap(\.weights) }

    /// Every layer, those of nested models and sublayers in their place: what holds weights and state.
    public var leafLayers: [Layer] {
        func leaves(_ layer: Layer) -> [Layer] {
            if let nested = layer as? NestedModel { return nested.model.leafLayers }
            return layer.sublayers.isEmpty ? [layer] : layer.sublayers.flatMap(leaves)
        }
        return layers.flatMap(leaves)
    }
    public var trainableWeights: [Weight] { weights.filter(\.isTrainable) }
    public var nonTrainableWeights: [Weight] { weights.filter { !$0.isTrainable } }

    /// Creates the weights of layers that have none yet on `device` (default: the device of layers
    /// already placed, else `Devices.select()`), initialised from `seed`. Placed weights never move.
    public func place(on device: (any Device)? = nil, seed: UInt64 = 0) throws {
        if self.device != nil { return }
        let existing = weights.lazy.compactMap { $0.value?.device }.first
        let device = try existing ?? device ?? Devices.select()
        if let existing, let device = device as (any Device)?, existing !== device {
            throw TensorError.device("model '\(name)': some layers already live on \(existing.info.name)")
        }
        let unplaced = layers.filter { !$0.isPlaced }.flatMap(\.weights).reduce(0) { $0 + $1.count }
        try Memory.require(unplaced, for: "model '\(name)' (\(unplaced) weights)")
        var random = RandomGenerator(seed: seed)
        for layer in layers where !layer.isPlaced { try layer.materialize(on: device, random: &random) }
        self.device = device
    }

    /// The layer called `name`.
    public func layer(named name: String) throws -> Layer {
        guard let layer = layers.first(where: { $0.name == name }) else { throw missingLayer(name) }
        return layer
    }

    /// The symbolic output of the layer called `name`, to build on (transfer learning).
    public func output(of name: String) throws -> SymbolicTensor {
        if let input = inputs.first(where: { $0.name == name }) { return input.output }
        guard let node = nodes.first(where: { $0.layer.name == name && $0.index == 0 }) ?? nodes.first(where: { $0.layer.name == name }) else {
            throw missingLayer(name)
        }
        return node
    }

    private func missingLayer(_ name: String) -> TensorError {
        .shape("model '\(self.name)' has no layer '\(name)' (layers: \(layers.map(\.name).joined(separator: ", ")))")
    }

    /// The model up to and including layer `name`, sharing its layers and weights.
    public func truncated(at name: String) throws -> Model {
        try Model(inputs: inputs, outputs: [try output(of: name)], name: "\(self.name)_to_\(name)")
    }

    /// False freezes every layer, true unfreezes them all: Keras's `base_model.trainable = False`.
    /// Reads true while any layer trains.
    public var trainable: Bool {
        get { layers.contains { $0.trainable } }
        set { for layer in layers { layer.trainable = newValue } }
    }

    /// Freezes (false) or unfreezes (true) every layer, or the named ones.
    public func setTrainable(_ trainable: Bool, layers names: [String]? = nil) throws {
        let chosen = try names.map { try $0.map { try layer(named: $0) } } ?? layers
        for layer in chosen { layer.trainable = trainable }
    }

    /// Runs the model on one input batch.
    public func callAsFunction(_ input: Tensor, training: Bool = false) throws -> Tensor {
        try self([input], training: training)[0]
    }

    /// Runs the model on a batch per input; returns a batch per output.
    public func callAsFunction(_ batch: [Tensor], training: Bool = false) throws -> [Tensor] {
        try run(batch, training: training).outputs
    }

    /// The outputs and, where a layer gave one (`Embedding(maskZero:)`, `Masking`, and the layers that
    /// keep it), each output's mask `[batch, time]`: what training leaves out of the loss.
    /// `nested`: run by an enclosing model, whose run has already cleared the added losses.
    func run(_ batch: [Tensor], training: Bool, nested: Bool = false) throws -> (outputs: [Tensor], masks: [Tensor?]) {
        try prepare(for: batch)
        if !nested { for layer in everyLayer { layer.addedLosses.removeAll() } }
        guard batch.count == inputs.count else { throw TensorError.shape("model '\(name)' takes \(inputs.count) inputs, got \(batch.count)") }
        var values: [Slot: Tensor] = [:], masks: [Slot: Tensor] = [:]
        for (input, tensor) in zip(inputs, batch) {
            guard Array(tensor.shape.dropFirst()) == input.shape else {
                throw TensorError.shape("model '\(name)': input '\(input.name)' expects samples of shape \(input.shape), got a batch of \(tensor.shape)")
            }
            guard tensor.device === device! else {
                throw TensorError.device("model '\(name)' lives on \(device!.info.name), input is on \(tensor.device.info.name)")
            }
            values[Slot(input.output)] = tensor
        }
        // Each value is dropped after the last node that reads it, so that inference holds only the
        // live ones (training keeps what its backward pass needs through the tensors themselves).
        var lastUse: [Slot: Int] = [:]
        for (index, node) in nodes.enumerated() { for input in node.inputs { lastUse[Slot(input)] = index } }
        for output in outputs { lastUse[Slot(output)] = nodes.count }
        for (index, node) in nodes.enumerated() where values[Slot(node)] == nil {
            defer { for input in node.inputs where lastUse[Slot(input)] == index { values[Slot(input)] = nil } }
            let arguments = node.inputs.map { values[Slot($0)]! }
            if let pool = pooledConvolutions[ObjectIdentifier(node)] {
                values[Slot(pool)] = try (node.layer as! Conv2D).forward(arguments[0], pooledBy: pool.layer as! Pooling2D)
            } else {
                let mask = node.inputs.first.flatMap { masks[Slot($0)] }, call = ObjectIdentifier(node.call)
                for (index, result) in try node.layer.forwardAll(arguments, training: training, mask: mask).enumerated() {
                    values[Slot(call: call, index: index)] = result
                }
                masks[Slot(call: call, index: 0)] = try node.layer.outputMask(arguments, mask: mask)
            }
        }
        return (outputs.map { values[Slot($0)]! }, outputs.map { masks[Slot($0)] })
    }

    /// Where a run keeps a symbolic tensor's value: its layer call and which output of it.
    private struct Slot: Hashable {
        var call: ObjectIdentifier, index: Int
        init(call: ObjectIdentifier, index: Int) { (self.call, self.index) = (call, index) }
        init(_ t: SymbolicTensor) { (call, index) = (ObjectIdentifier(t.call), t.index) }
    }

    /// Makes sure the graph exists and the weights are placed before a batch runs.
    func prepare(for batch: [Tensor]) throws {
        if device == nil { try place(on: batch.first?.device) }
    }

    /// Forgets the gradients `backward()` accumulated in every weight (PyTorch's `zero_grad()`).
    /// A custom loop calls it before each `backward()` whose gradients it will use, or asks for
    /// them directly with `gradients(of:)`, which leaves no gradient behind.
    public func zeroGrad() { for layer in layers { layer.zeroGrad() } }

    /// The gradients of `loss` with respect to the trainable weights (in `trainableWeights` order),
    /// without reading or leaving any `grad`: pass them to `optimizer.apply(_:to:)`.
    public func gradients(of loss: Tensor) throws -> [Tensor?] {
        try loss.gradients(with: trainableWeights.map(\.value))
    }

    /// The loss terms the layers added (`Layer.addLoss`) in the latest run, as Keras's `model.losses`
    /// (less the weight penalties, which `regularizationLoss()` gives).
    public var addedLosses: [Tensor] { everyLayer.flatMap(\.addedLosses) }

    /// Every layer: wrappers, the layers they run, and the layers of nested models.
    private var everyLayer: [Layer] {
        func all(_ layer: Layer) -> [Layer] {
            [layer] + ((layer as? NestedModel)?.model.everyLayer ?? layer.sublayers.flatMap(all))
        }
        return layers.flatMap(all)
    }

    /// The sum of the layers' weight penalties (`kernelRegularizer`), or nil when there are none.
    public func regularizationLoss() throws -> Tensor? {
        let terms = try weights.compactMap { weight in try weight.regularizer.map { try $0.penalty(weight.value) } }
        return try terms.dropFirst().reduce(terms.first) { try $0! + $1 }
    }

    public var parameterCount: Int { weights.reduce(0) { $0 + $1.count } }
    public var trainableParameterCount: Int { trainableWeights.reduce(0) { $0 + $1.count } }
}

/// A plain stack of layers. The first may be an `Input`; otherwise the input shape comes from
/// `inputShape:`, from a model that comes first (its input), or at the latest from the first batch.
public final class Sequential: Model {
    public private(set) var stack: [Layer]

    public init(_ layers: [any LayerConvertible], inputShape: [Int]? = nil, name: String = "sequential") throws {
        stack = layers.map(\.asLayer)
        super.init(name: name)
        if let input = stack.first as? Input {
            stack.removeFirst()
            try connect(input)
        } else if let shape = inputShape ?? (stack.first as? NestedModel).flatMap({ $0.model.inputs.count == 1 ? $0.model.inputs[0].shape : nil }) {
            try connect(Input(shape: shape))  // given, or the input of a model that comes first (as Keras)
        }
    }

    /// Appends a layer (before the model is placed on a device).
    public func add(_ layer: Layer) throws {
        guard device == nil else { throw TensorError.shape("sequential '\(name)': add layers before the model runs") }
        stack.append(layer)
        if let input = inputs.first { try connect(input) }
    }

    private func connect(_ input: Input) throws {
        var x = input.output!
        for layer in stack { x = try layer(x) }
        try setGraph(inputs: [input], outputs: [x])
    }

    override func prepare(for batch: [Tensor]) throws {
        if inputs.isEmpty, let first = batch.first { try connect(Input(shape: Array(first.shape.dropFirst()))) }
        try super.prepare(for: batch)
    }

    /// Builds the graph for samples of `inputShape` (no batch dimension).
    public func build(inputShape: [Int]) throws {
        guard inputs.isEmpty else { return }
        try connect(Input(shape: inputShape))
    }
}
