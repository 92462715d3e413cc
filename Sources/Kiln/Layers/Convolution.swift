/// 2-D convolution over (H, W, C) images; kernel shape (kh, kw, in / groups, filters), as Keras. With
/// `dilationRate` above 1 (atrous convolution) the taps are that far apart; it runs as the plain
/// convolution with zeros between the taps. `groups` may be 1 or the input channels (a depthwise
/// convolution with filters / channels outputs per channel, as ConvNeXt's `groups=projection_dim`).
public final class Conv2D: Layer {
    public let filters: Int, groups: Int
    public let kernelSize: (Int, Int), strides: (Int, Int), dilationRate: (Int, Int)
    public let padding: Padding
    public let activation: ActivationFunction
    public let useBias: Bool
    let kernelInitializer: Initializer, biasInitializer: Initializer
    let kernelRegularizer: Regularizer?
    private var kernel: Weight!, bias: Weight?

    public init(_ filters: Int, kernelSize: (Int, Int), strides: (Int, Int) = (1, 1), padding: Padding = .valid,
                dilationRate: (Int, Int) = (1, 1), groups: Int = 1, activation: ActivationFunction = .linear, useBias: Bool = true,
                kernelInitializer: Initializer = .glorotUniform, biasInitializer: Initializer = .zeros,
                kernelRegularizer: Regularizer? = nil, name: String? = nil) {
        (self.filters, self.kernelSize, self.strides, self.padding, self.dilationRate) = (filters, kernelSize, strides, padding, dilationRate)
        self.groups = groups
        (self.activation, self.useBias) = (activation, useBias)
        (self.kernelInitializer, self.biasInitializer, self.kernelRegularizer) = (kernelInitializer, biasInitializer, kernelRegularizer)
        super.init(name: name, kind: "conv2d")
    }

    /// A square kernel: `Conv2D(32, kernelSize: 3)`.
    public convenience init(_ filters: Int, kernelSize: Int, strides: Int = 1, padding: Padding = .valid, dilationRate: Int = 1,
                            activation: ActivationFunction = .linear, useBias: Bool = true,
                            kernelInitializer: Initializer = .glorotUniform, kernelRegularizer: Regularizer? = nil, name: String? = nil) {
        self.init(filters, kernelSize: (kernelSize, kernelSize), strides: (strides, strides), padding: padding,
                  dilationRate: (dilationRate, dilationRate), activation: activation,
                  useBias: useBias, kernelInitializer: kernelInitializer, kernelRegularizer: kernelRegularizer, name: name)
    }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        let input = try single(inputShapes)
        guard input.count == 3 else { throw shapeError("expects (height, width, channels) inputs, got \(input)") }
        guard groups == 1 || (groups == input[2] && filters % groups == 0) else {
            throw shapeError("groups = \(groups) for \(input[2]) input channels and \(filters) filters: only 1 or the input channels (depthwise) are supported")
        }
        guard dilationRate.0 >= 1, dilationRate.1 >= 1, dilationRate == (1, 1) || strides == (1, 1) else {
            throw shapeError("dilation \(dilationRate) with strides \(strides): Keras allows one of them above 1")
        }
        let window: Window2D
        do { window = try Window2D(input: (input[0], input[1]), kernel: span, stride: strides, padding: padding) } catch {
            throw shapeError("\(error)")
        }
        kernel = addWeight("kernel", shape: [kernelSize.0, kernelSize.1, input[2] / groups, filters],
                           initializer: kernelInitializer, regularizer: kernelRegularizer)
        if useBias { bias = addWeight("bias", shape: [filters], initializer: biasInitializer) }
        return [window.outputHeight, window.outputWidth, filters]
    }

    /// The kernel's extent with its dilation.
    private var span: (Int, Int) { ((kernelSize.0 - 1) * dilationRate.0 + 1, (kernelSize.1 - 1) * dilationRate.1 + 1) }

    /// The kernel the convolution runs with: zeros between the taps when dilated.
    private func taps() throws -> Tensor { dilationRate == (1, 1) ? kernel.value : try kernel.value.dilatedKernel(dilationRate) }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try requirePlaced()
        if groups > 1 {  // (kh, kw, 1, filters) holds the floats of a depthwise (kh, kw, channels, filters / channels) kernel
            let depthwise = try kernel.value.reshaped([kernelSize.0, kernelSize.1, groups, filters / groups])
            let y = try inputs[0].depthwiseConv2d(depthwise, bias: bias?.value, strides: strides, padding: padding, dilation: dilationRate,
                                                  relu: activation == .relu)
            return activation == .relu ? y : try activation(y)
        }
        if activation == .relu {  // fused into the convolution
            return try inputs[0].conv2d(taps(), bias: bias?.value, strides: strides, padding: padding, relu: true)
        }
        return try activation(inputs[0].conv2d(taps(), bias: bias?.value, strides: strides, padding: padding))
    }

    /// Whether `forward(_:pooledBy:)` can stand for this layer followed by `pool`: max pooling after
    /// a ReLU or no activation.
    func fuses(with pool: Pooling2D) -> Bool { groups == 1 && pool.mode == .max && (activation == .relu || activation == .linear) }

    /// This layer and then `pool` on its output, as one op (`Tensor.conv2dMaxPool`).
    func forward(_ input: Tensor, pooledBy pool: Pooling2D) throws -> Tensor {
        guard input.rank == 4 else { throw shapeError("expects NHWC batches, got \(input.shape)") }
        let window = try Window2D(input: (input.shape[1], input.shape[2]), kernel: span, stride: strides, padding: padding)
        let pooling = try Window2D(input: (window.outputHeight, window.outputWidth), kernel: pool.poolSize, stride: pool.strides,
                                   padding: pool.padding)
        return try input.conv2dMaxPool(taps(), bias: bias?.value, window: window, relu: activation == .relu, pool: pooling)
    }
}

/// Max or average pooling; `strides` default to the pool size, as in Keras.
public class Pooling2D: Layer {
    public let mode: PoolMode
    public let poolSize: (Int, Int), strides: (Int, Int)
    public let padding: Padding

    init(_ mode: PoolMode, poolSize: (Int, Int), strides: (Int, Int)?, padding: Padding, name: String?, kind: String) {
        (self.mode, self.poolSize, self.strides, self.padding) = (mode, poolSize, strides ?? poolSize, padding)
        super.init(name: name, kind: kind)
    }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        let input = try single(inputShapes)
        guard input.count == 3 else { throw shapeError("expects (height, width, channels) inputs, got \(input)") }
        do {
            let window = try Window2D(input: (input[0], input[1]), kernel: poolSize, stride: strides, padding: padding)
            return [window.outputHeight, window.outputWidth, input[2]]
        } catch { throw shapeError("\(error)") }
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try inputs[0].pool2d(mode, size: poolSize, strides: strides, padding: padding)
    }
}

public final class MaxPooling2D: Pooling2D {
    public init(poolSize: (Int, Int) = (2, 2), strides: (Int, Int)? = nil, padding: Padding = .valid, name: String? = nil) {
        super.init(.max, poolSize: poolSize, strides: strides, padding: padding, name: name, kind: "max_pooling2d")
    }
    public convenience init(_ poolSize: Int, strides: Int? = nil, padding: Padding = .valid, name: String? = nil) {
        self.init(poolSize: (poolSize, poolSize), strides: strides.map { ($0, $0) }, padding: padding, name: name)
    }
}

public final class AveragePooling2D: Pooling2D {
    public init(poolSize: (Int, Int) = (2, 2), strides: (Int, Int)? = nil, padding: Padding = .valid, name: String? = nil) {
        super.init(.average, poolSize: poolSize, strides: strides, padding: padding, name: name, kind: "average_pooling2d")
    }
    public convenience init(_ poolSize: Int, strides: Int? = nil, padding: Padding = .valid, name: String? = nil) {
        self.init(poolSize: (poolSize, poolSize), strides: strides.map { ($0, $0) }, padding: padding, name: name)
    }
}

/// Average or maximum over all pixels: (H, W, C) → (C), or (1, 1, C) with `keepDims` (Keras's `keepdims`).
public class GlobalPooling2D: Layer {
    let mode: PoolMode
    public let keepDims: Bool

    init(_ mode: PoolMode, keepDims: Bool, name: String?, kind: String) {
        (self.mode, self.keepDims) = (mode, keepDims)
        super.init(name: name, kind: kind)
    }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        let input = try single(inputShapes)
        guard input.count == 3 else { throw shapeError("expects (height, width, channels) inputs, got \(input)") }
        return keepDims ? [1, 1, input[2]] : [input[2]]
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let pooled: Tensor
        switch mode {
        case .average: pooled = try x.reshaped([n, h * w, c]).reduce(.mean, axis: 1)
        case .max: pooled = try x.pool2d(.max, size: (h, w))
        }
        return try pooled.reshaped(keepDims ? [n, 1, 1, c] : [n, c])
    }
}

public final class GlobalAveragePooling2D: GlobalPooling2D {
    public init(keepDims: Bool = false, name: String? = nil) { super.init(.average, keepDims: keepDims, name: name, kind: "global_average_pooling2d") }
}

public final class GlobalMaxPooling2D: GlobalPooling2D {
    public init(keepDims: Bool = false, name: String? = nil) { super.init(.max, keepDims: keepDims, name: name, kind: "global_max_pooling2d") }
}
