/// Keras's 1-D padding: `causal` pads only the front, so that step t sees steps ≤ t.
public enum Padding1D: String, Hashable, Sendable, CaseIterable {
    case valid, same, causal
}

/// The steps a 1-D window puts before and after a sequence of `length`, and its output length.
func window1D(length: Int, kernel: Int, stride: Int, dilation: Int, padding: Padding1D) throws -> (before: Int, after: Int, output: Int) {
    guard [length, kernel, stride, dilation].allSatisfy({ $0 > 0 }) else {
        throw TensorError.shape("1-D window: length \(length), kernel \(kernel), stride \(stride) and dilation \(dilation) must be positive")
    }
    let span = (kernel - 1) * dilation + 1
    switch padding {
    case .valid:
        guard span <= length else { throw TensorError.shape("1-D window: a kernel spanning \(span) steps is longer than \(length) steps with padding 'valid'") }
        return (0, 0, (length - span) / stride + 1)
    case .same:
        let output = (length + stride - 1) / stride, total = max((output - 1) * stride + span - length, 0)
        return (total / 2, total - total / 2, output)
    case .causal:
        return (span - 1, 0, (length - 1) / stride + 1)
    }
}

/// Keras's `Conv1D` over `[time, channels]`; kernel `[kernelSize, channels, filters]`. It runs as a
/// height-1 `Conv2D` (a dilated kernel is spread out with zeros between its taps).
public final class Conv1D: Layer {
    public let filters: Int, kernelSize: Int, strides: Int, dilationRate: Int
    public let padding: Padding1D
    public let activation: ActivationFunction
    public let useBias: Bool
    let kernelInitializer: Initializer, biasInitializer: Initializer
    private var kernel: Weight!, bias: Weight?

    public init(_ filters: Int, kernelSize: Int, strides: Int = 1, padding: Padding1D = .valid, dilationRate: Int = 1,
                activation: ActivationFunction = .linear, useBias: Bool = true,
                kernelInitializer: Initializer = .glorotUniform, biasInitializer: Initializer = .zeros, name: String? = nil) {
        (self.filters, self.kernelSize, self.strides, self.padding, self.dilationRate) = (filters, kernelSize, strides, padding, dilationRate)
        (self.activation, self.useBias, self.kernelInitializer, self.biasInitializer) = (activation, useBias, kernelInitializer, biasInitializer)
        super.init(name: name, kind: "conv1d")
    }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        let input = try single(inputShapes)
        guard input.count == 2, filters > 0 else { throw shapeError("expects [time, channels] inputs and filters > 0, got \(input)") }
        guard dilationRate == 1 || strides == 1 else { throw shapeError("dilation \(dilationRate) with strides \(strides): Keras allows one of them above 1") }
        let window: (before: Int, after: Int, output: Int)
        do { window = try window1D(length: input[0], kernel: kernelSize, stride: strides, dilation: dilationRate, padding: padding) } catch {
            throw shapeError("\(error)")
        }
        kernel = addWeight("kernel", shape: [kernelSize, input[1], filters], initializer: kernelInitializer)
        if useBias { bias = addWeight("bias", shape: [filters], initializer: biasInitializer) }
        return [window.output, filters]
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try requirePlaced()
        let x = inputs[0], (batch, length, channels) = (x.shape[0], x.shape[1], x.shape[2])
        let w = try window1D(length: length, kernel: kernelSize, stride: strides, dilation: dilationRate, padding: padding)
        let taps = try kernel.value.reshaped([1, kernelSize, channels, filters]).dilatedKernel((1, dilationRate))  // zeros between taps
        let span = taps.shape[1]
        let window = try Window2D(input: (1, length), kernel: (1, span), stride: (1, strides), pads: (0, w.before, 0, w.after))
        let images = try x.reshaped([batch, 1, length, channels])
        let y = try images.conv2d(taps, bias: bias?.value, window: window, relu: activation == .relu)
        let sequence = try y.reshaped([batch, w.output, filters])
        return activation == .relu ? sequence : try activation(sequence)
    }
}

/// Max or average pooling over `[time, channels]`; `strides` default to the pool size, as in Keras.
public class Pooling1D: Layer {
    let mode: PoolMode
    public let poolSize: Int, strides: Int
    public let padding: Padding

    init(_ mode: PoolMode, poolSize: Int, strides: Int?, padding: Padding, name: String?, kind: String) {
        (self.mode, self.poolSize, self.strides, self.padding) = (mode, poolSize, strides ?? poolSize, padding)
        super.init(name: name, kind: kind)
    }

    private func window(_ length: Int) throws -> Window2D {
        try Window2D(input: (1, length), kernel: (1, poolSize), stride: (1, strides), padding: padding)
    }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        let input = try single(inputShapes)
        guard input.count == 2 else { throw shapeError("expects [time, channels] inputs, got \(input)") }
        do { return [try window(input[0]).outputWidth, input[1]] } catch { throw shapeError("\(error)") }
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0], (batch, length, channels) = (x.shape[0], x.shape[1], x.shape[2])
        let w = try window(length)
        return try x.reshaped([batch, 1, length, channels]).pool2d(mode, window: w).reshaped([batch, w.outputWidth, channels])
    }
}

public final class MaxPooling1D: Pooling1D {
    public init(poolSize: Int = 2, strides: Int? = nil, padding: Padding = .valid, name: String? = nil) {
        super.init(.max, poolSize: poolSize, strides: strides, padding: padding, name: name, kind: "max_pooling1d")
    }
}

public final class AveragePooling1D: Pooling1D {
    public init(poolSize: Int = 2, strides: Int? = nil, padding: Padding = .valid, name: String? = nil) {
        super.init(.average, poolSize: poolSize, strides: strides, padding: padding, name: name, kind: "average_pooling1d")
    }
}

/// Average or maximum over the steps: `[time, channels]` → `[channels]`. The average skips masked
/// steps, as Keras's does.
public class GlobalPooling1D: Layer {
    let mode: PoolMode

    init(_ mode: PoolMode, name: String?, kind: String) {
        self.mode = mode
        super.init(name: name, kind: kind)
    }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        let input = try single(inputShapes)
        guard input.count == 2 else { throw shapeError("expects [time, channels] inputs, got \(input)") }
        return [input[1]]
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try forward(inputs, training: training, mask: nil)
    }

    override public func forward(_ inputs: [Tensor], training: Bool, mask: Tensor?) throws -> Tensor {
        let x = inputs[0]
        switch (mode, mask) {
        case (.max, _): return try x.reduce(.max, axis: 1)
        case (.average, nil): return try x.reduce(.mean, axis: 1)
        case (.average, let mask?):
            let weights = try mask.reshaped([x.shape[0], x.shape[1], 1])
            return try (x * weights).reduce(.sum, axis: 1) / Tensor.maximum(weights.reduce(.sum, axis: 1), Tensor.full(1, shape: [1], on: x.device))
        }
    }
}

public final class GlobalAveragePooling1D: GlobalPooling1D {
    public init(name: String? = nil) { super.init(.average, name: name, kind: "global_average_pooling1d") }
}

public final class GlobalMaxPooling1D: GlobalPooling1D {
    public init(name: String? = nil) { super.init(.max, name: name, kind: "global_max_pooling1d") }
}
