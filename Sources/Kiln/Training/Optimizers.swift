/// Updates weights from their gradients with one of the device's update rules, keeping its state
/// (momentum, moment estimates) on the device. Keras 3 defaults and semantics.
public class Optimizer {
    public let rule: UpdateRule
    /// The learning rate; with a schedule, the schedule's value at the current step.
    public var schedule: LearningRateSchedule
    /// Decoupled weight decay (`w -= lr · decay · w`), 0 for none.
    public var weightDecay: Float
    /// Clip each gradient's L2 norm to this value (Keras `clipnorm`).
    public var clipNorm: Float?
    /// Clip the L2 norm of all gradients together (Keras `global_clipnorm`).
    public var globalClipNorm: Float?
    /// Clip each gradient element to [-value, value] (Keras `clipvalue`).
    public var clipValue: Float?
    /// Steps taken so far.
    public internal(set) var iterations = 0
    /// Per-weight state, by `Weight.path`.
    private(set) var slots: [String: [Tensor]] = [:]

    init(rule: UpdateRule, learningRate: LearningRateSchedule, weightDecay: Float) {
        (self.rule, self.schedule, self.weightDecay) = (rule, learningRate, weightDecay)
    }

    /// The rate the next step uses.
    public var learningRate: Float {
        get { schedule(iterations) }
        set { schedule = .constant(newValue) }
    }

    /// Applies one step to every trainable weight that has a gradient (`backward()` put it in its
    /// `grad`), then clears those gradients.
    public func apply(to weights: [Weight]) throws {
        let trainable = weights.filter(\.isTrainable)
        try apply(trainable.map { $0.value.grad }, to: trainable)
        for weight in trainable { weight.value.zeroGrad() }
    }

    /// Applies one step with `gradients[i]` for `weights[i]` (from `loss.gradients(with:)` or
    /// `model.gradients(of:)`); weights whose gradient is nil or that are frozen are left alone.
    public func apply(_ gradients: [Tensor?], to weights: [Weight]) throws {
        guard gradients.count == weights.count else {
            throw TensorError.gradient("optimizer: \(gradients.count) gradients for \(weights.count) weights")
        }
        let pairs = zip(weights, gradients).compactMap { weight, gradient in gradient.map { (weight, $0) } }.filter { $0.0.isTrainable }
        for (weight, gradient) in pairs where gradient.shape != weight.shape {
            throw TensorError.shape("optimizer: gradient of shape \(gradient.shape) for \(weight.path) \(weight.shape)")
        }
        let updates = pairs.map(\.0)
        guard !updates.isEmpty else { return }
        try GradMode.noGrad {
            var gradients = try pairs.map { try clipped($0.1) }
            if let globalClipNorm { gradients = try clipTogether(gradients, to: globalClipNorm) }
            let update = Update(rule: rule, learningRate: learningRate, weightDecay: weightDecay, step: iterations + 1)
            let targets = try zip(updates, gradients).map { weight, gradient in
                let parameter = weight.value!
                let state = try slots[weight.path] ?? (0..<rule.slotCount).map { _ in try Tensor.zeros(weight.shape, on: parameter.device) }
                slots[weight.path] = state
                return UpdateTarget(parameter: parameter.buffer, gradient: gradient.buffer, slots: state.map(\.buffer), count: weight.count)
            }
            let device = updates[0].value.device
            if let other = updates.first(where: { $0.value.device !== device }) {
                throw TensorError.shape("optimizer: \(other.path) lives on \(other.value.device.info.name), \(updates[0].path) on \(device.info.name); one optimizer steps the weights of one device")
            }
            try device.applyUpdate(update, to: targets)  // one multi-tensor step
        }
        iterations += 1
    }

    private func clipped(_ gradient: Tensor) throws -> Tensor {
        var g = gradient
        if let clipValue { g = try g.clipped(-clipValue, clipValue) }
        if let clipNorm { g = try clipTogether([g], to: clipNorm)[0] }
        return g
    }

    /// Scales the gradients by min(1, limit / ‖all‖₂), computed on the device.
    private func clipTogether(_ gradients: [Tensor], to limit: Float) throws -> [Tensor] {
        let squares = try gradients.map { try $0.square().sum() }
        let norm = try squares.dropFirst().reduce(squares[0]) { try $0 + $1 }.sqrt()
        let one = try Tensor.full(1, shape: [1], on: norm.device)
        let factor = try Tensor.minimum(one, try Tensor.full(limit, shape: [1], on: norm.device) / Tensor.maximum(norm, .full(1e-12, shape: [1], on: norm.device)))
        return try gradients.map { try $0 * factor }
    }

    /// Optimizer state for checkpoints: `iterations`, and each slot as `path/slot_i`.
    public func stateTensors() -> [String: Tensor] {
        var state: [String: Tensor] = [:]
        for (path, tensors) in slots { for (i, t) in tensors.enumerated() { state["\(path)/slot_\(i)"] = t } }
        return state
    }

    /// Restores what `stateTensors()` returned (the weights must be placed on `device`). A weight with
    /// no stored state (frozen when it was saved) starts from zero state when it first trains, as a
    /// parameter that joins a Keras or PyTorch optimizer does; partial or misshaped state is refused.
    public func restore(state: [String: Tensor], iterations: Int, for weights: [Weight]) throws {
        let byPath = Dictionary(weights.map { ($0.path, $0) }) { first, _ in first }
        var stored: [String: [Int: Tensor]] = [:]
        for (key, tensor) in state {
            guard let cut = key.range(of: "/slot_", options: .backwards), let index = Int(key[cut.upperBound...]),
                  (0..<rule.slotCount).contains(index) else {
                throw TensorError.shape("optimizer state '\(key)' is not a slot of this optimizer (\(rule.slotCount) per weight)")
            }
            let path = String(key[..<cut.lowerBound])
            guard let weight = byPath[path] else { throw TensorError.shape("optimizer state '\(key)' belongs to no weight of the model") }
            guard tensor.shape == weight.shape else {
                throw TensorError.shape("optimizer state '\(key)' has shape \(tensor.shape), the weight has \(weight.shape)")
            }
            stored[path, default: [:]][index] = tensor
        }
        var restored: [String: [Tensor]] = [:]
        for (path, bySlot) in stored {
            restored[path] = try (0..<rule.slotCount).map { i in
                guard let tensor = bySlot[i] else { throw TensorError.shape("optimizer state for \(path) lacks slot \(i)") }
                return tensor
            }
        }
        (self.iterations, slots) = (iterations, restored)
    }
}

/// Stochastic gradient descent with optional (Nesterov) momentum. Keras defaults: lr 0.01.
public final class SGD: Optimizer {
    public init(learningRate: LearningRateSchedule = .constant(0.01), momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0) {
        super.init(rule: .sgd(momentum: momentum, nesterov: nesterov), learningRate: learningRate, weightDecay: weightDecay)
    }
    public convenience init(learningRate: Float, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0) {
        self.init(learningRate: .constant(learningRate), momentum: momentum, nesterov: nesterov, weightDecay: weightDecay)
    }
}

/// RMSprop. Keras defaults: lr 0.001, rho 0.9, momentum 0, epsilon 1e-7.
public final class RMSprop: Optimizer {
    public init(learningRate: LearningRateSchedule = .constant(0.001), rho: Float = 0.9, momentum: Float = 0, epsilon: Float = 1e-7,
                weightDecay: Float = 0) {
        super.init(rule: .rmsprop(rho: rho, momentum: momentum, epsilon: epsilon), learningRate: learningRate, weightDecay: weightDecay)
    }
    public convenience init(learningRate: Float, rho: Float = 0.9, momentum: Float = 0, epsilon: Float = 1e-7, weightDecay: Float = 0) {
        self.init(learningRate: .constant(learningRate), rho: rho, momentum: momentum, epsilon: epsilon, weightDecay: weightDecay)
    }
}

/// Adam. Keras defaults: lr 0.001, beta1 0.9, beta2 0.999, epsilon 1e-7.
public class Adam: Optimizer {
    public init(learningRate: LearningRateSchedule = .constant(0.001), beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7,
                weightDecay: Float = 0) {
        super.init(rule: .adam(beta1: beta1, beta2: beta2, epsilon: epsilon), learningRate: learningRate, weightDecay: weightDecay)
    }
    public convenience init(learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7, weightDecay: Float = 0) {
        self.init(learningRate: .constant(learningRate), beta1: beta1, beta2: beta2, epsilon: epsilon, weightDecay: weightDecay)
    }
}

/// Adam with decoupled weight decay. Keras defaults: lr 0.001, weight decay 0.004.
public final class AdamW: Adam {
    public init(learningRate: LearningRateSchedule = .constant(0.001), weightDecay: Float = 0.004, beta1: Float = 0.9, beta2: Float = 0.999,
                epsilon: Float = 1e-7) {
        super.init(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon, weightDecay: weightDecay)
    }
    public convenience init(learningRate: Float, weightDecay: Float = 0.004) {
        self.init(learningRate: .constant(learningRate), weightDecay: weightDecay)
    }
}
