/// One recorded op: the tensors it read and how to turn its output's gradient into theirs.
final class Node {
    let inputs: [Tensor]
    let backward: (Tensor) throws -> [Tensor?]

    init(inputs: [Tensor], backward: @escaping (Tensor) throws -> [Tensor?]) {
        (self.inputs, self.backward) = (inputs, backward)
    }
}

/// Whether ops record history for `backward()`.
public enum GradMode {
    @TaskLocal static var isEnabled = true

    /// Runs `body` without recording (inference, optimizer updates, metrics).
    public static func noGrad<T>(_ body: () throws -> T) rethrows -> T {
        try $isEnabled.withValue(false, operation: body)
    }
}

extension Tensor {
    /// A new tensor of `shape` computed by `compute` into a fresh buffer; when any input requires a
    /// gradient (and recording is on), `backward` maps the output's gradient to the inputs'.
    static func make(_ shape: [Int], dtype: DType = .float32, from inputs: [Tensor],
                     _ compute: (Buffer) throws -> Void,
                     backward: ((Tensor) throws -> [Tensor?])? = nil) throws -> Tensor {
        let device = inputs[0].device
        for input in inputs.dropFirst() where input.device !== device {
            throw TensorError.device("ops mix devices: \(device.info.name) and \(input.device.info.name); move tensors with to(_:)")
        }
        let buffer = try device.makeBuffer(count: shape.reduce(1, *))
        try compute(buffer)
        return record(shape, dtype: dtype, buffer: buffer, from: inputs, backward: backward)
    }

    /// Wraps a computed buffer as the result of an op on `inputs`, recording `backward` when needed.
    static func record(_ shape: [Int], dtype: DType = .float32, buffer: Buffer, from inputs: [Tensor],
                       backward: ((Tensor) throws -> [Tensor?])?) -> Tensor {
        let device = inputs[0].device
        let tracked = GradMode.isEnabled && backward != nil && inputs.contains { $0.requiresGrad }
        let result = Tensor(shape: shape, dtype: dtype, buffer: buffer, device: device, requiresGrad: tracked)
        if tracked, let backward { result.node = Node(inputs: inputs, backward: backward) }
        return result
    }

    /// Computes the gradient of this scalar with respect to every leaf tensor that requires one,
    /// adding it to the leaf's `grad` (so gradients accumulate until `zeroGrad()` or an optimizer
    /// step clears them, as in PyTorch). The recorded graph is released afterwards.
    public func backward() throws { try backward(whenLeafReady: nil) }

    /// `backward()`, calling `ready` with each leaf (a weight) as soon as its gradient is complete,
    /// while the rest of the graph is still to run: when data-parallel training starts reducing it.
    public func backward(whenLeafReady ready: ((Tensor) throws -> Void)?) throws {
        try propagate { tensor, grad in
            guard tensor.node == nil else { return }
            tensor.grad = try tensor.grad.map { try $0 + grad } ?? grad
            try ready?(tensor)
        }
    }

    /// The gradients of this scalar with respect to `inputs` (leaves such as weights, or values
    /// computed on the way), nil where it does not depend on one: `torch.autograd.grad`. No `grad`
    /// is read or written anywhere, so nothing leaks into another step. The graph is released.
    public func gradients(with inputs: [Tensor]) throws -> [Tensor?] {
        let wanted = Set(inputs.map(ObjectIdentifier.init))
        var found: [ObjectIdentifier: Tensor] = [:]
        try propagate { tensor, grad in
            if wanted.contains(ObjectIdentifier(tensor)) { found[ObjectIdentifier(tensor)] = grad }
        }
        return inputs.map { found[ObjectIdentifier($0)] }
    }

    /// Runs the recorded graph backwards from this scalar, handing each tensor's total gradient to
    /// `receive` once it is complete.
    private func propagate(_ receive: (Tensor, Tensor) throws -> Void) throws {
        guard count == 1 else { throw TensorError.gradient("backward() starts from a scalar, got shape \(shape)") }
        guard requiresGrad else { throw TensorError.gradient("backward(): this tensor does not depend on anything that requires a gradient") }
        // Reverse topological order by depth-first search.
        var order: [Tensor] = [], visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (tensor, expanded) = stack.popLast() {
            if expanded { order.append(tensor); continue }
            guard visited.insert(ObjectIdentifier(tensor)).inserted else { continue }
            stack.append((tensor, true))
            for input in tensor.node?.inputs ?? [] where input.requiresGrad { stack.append((input, false)) }
        }
        try GradMode.noGrad {
            var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): try .full(1, shape: shape, on: device)]
            for tensor in order.reversed() {
                guard let grad = grads.removeValue(forKey: ObjectIdentifier(tensor)) else { continue }
                try receive(tensor, grad)
                guard let node = tensor.node else { continue }
                for (input, inputGrad) in zip(node.inputs, try node.backward(grad)) where input.requiresGrad {
                    guard let inputGrad else { continue }
                    let key = ObjectIdentifier(input)
                    grads[key] = try grads[key].map { try $0 + inputGrad } ?? inputGrad
                }
                tensor.node = nil
            }
        }
    }

    /// Forgets the accumulated gradient.
    public func zeroGrad() { grad = nil }
}
