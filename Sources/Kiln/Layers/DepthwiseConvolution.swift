/// Keras's `DepthwiseConv2D` (MobileNet's spatial filter): each input channel convolved with its own
/// `depthMultiplier` filters, kernel shape (kh, kw, channels, depthMultiplier), as Keras; with
/// `dilationRate` above 1 its taps lie that far apart (Keras allows it with unit strides only).
public final class DepthwiseConv2D: Layer {
    public let kernelSize: (Int, Int), strides: (Int, Int), dilationRate: (Int, Int)
    public let padding: Padding
    public let depthMultiplier: Int
    public let activation: ActivationFunction
    public let useBias: Bool
    let kernelInitializer: Initializer, biasInitializer: Initializer
    private var kernel: Weight!, bias: Weight?

    public init(kernelSize: (Int, Int), strides: (Int, Int) = (1, 1), padding: Padding = .valid, depthMultiplier: Int = 1,
                dilationRate: (Int, Int) = (1, 1), activation: ActivationFunction = .linear, useBias: Bool = true,
                depthwiseInitializer: Initializer = .glorotUniform, biasInitializer: Initializer = .zeros, name: String? = nil) {
        (self.kernelSize, self.strides, self.padding, self.depthMultiplier) = (kernelSize, strides, padding, depthMultiplier)
        self.dilationRate = dilationRate
        (self.activation, self.useBias, self.kernelInitializer, self.biasInitializer) = (activation, useBias, depthwiseInitializer, biasInitializer)
        super.init(name: name, kind: "depthwise_conv2d")
    }

    /// A square kernel: `DepthwiseConv2D(3, padding: .same)`.
    public convenience init(_ kernelSize: Int, strides: Int = 1, padding: Padding = .valid, depthMultiplier: Int = 1, dilationRate: Int = 1,
                            activation: ActivationFunction = .linear, useBias: Bool = true, name: String? = nil) {
        self.init(kernelSize: (kernelSize, kernelSize), strides: (strides, strides), padding: padding, depthMultiplier: depthMultiplier,
                  dilationRate: (dilationRate, dilationRate), activation: activation, useBias: useBias, name: name)
    }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        let input = try single(inputShapes)
        let window = try depthwiseWindow(input, kernelSize: kernelSize, strides: strides, padding: padding, dilationRate: dilationRate,
                                         depthMultiplier: depthMultiplier)
        kernel = addWeight("kernel", shape: [kernelSize.0, kernelSize.1, input[2], depthMultiplier], initializer: kernelInitializer)
        if useBias { bias = addWeight("bias", shape: [input[2] * depthMultiplier], initializer: biasInitializer) }
        return [window.outputHeight, window.outputWidth, input[2] * depthMultiplier]
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try requirePlaced()
        let relu = activation == .relu
        let y = try inputs[0].depthwiseConv2d(kernel.value, bias: bias?.value, strides: strides, padding: padding, dilation: dilationRate, relu: relu)
        return relu ? y : try activation(y)
    }
}

/// Keras's `SeparableConv2D`: a depthwise convolution then a 1×1 convolution to `filters` channels
/// (weights `depthwise_kernel` (kh, kw, channels, multiplier), `pointwise_kernel` (1, 1, channels·multiplier, filters), `bias`).
public final class SeparableConv2D: Layer {
    public let filters: Int
    public let kernelSize: (Int, Int), strides: (Int, Int), dilationRate: (Int, Int)
    public let padding: Padding
    public let depthMultiplier: Int
    public let activation: ActivationFunction
    public let useBias: Bool
    private var depthwise: Weight!, pointwise: Weight!, bias: Weight?

    public init(_ filters: Int, kernelSize: (Int, Int), strides: (Int, Int) = (1, 1), padding: Padding = .valid, depthMultiplier: Int = 1,
                dilationRate: (Int, Int) = (1, 1), activation: ActivationFunction = .linear, useBias: Bool = true, name: String? = nil) {
        (self.filters, self.kernelSize, self.strides, self.padding, self.depthMultiplier) = (filters, kernelSize, strides, padding, depthMultiplier)
        self.dilationRate = dilationRate
        (self.activation, self.useBias) = (activation, useBias)
        super.init(name: name, kind: "separable_conv2d")
    }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        let input = try single(inputShapes)
        let window = try depthwiseWindow(input, kernelSize: kernelSize, strides: strides, padding: padding, dilationRate: dilationRate,
                                         depthMultiplier: depthMultiplier)
        depthwise = addWeight("depthwise_kernel", shape: [kernelSize.0, kernelSize.1, input[2], depthMultiplier], initializer: .glorotUniform)
        pointwise = addWeight("pointwise_kernel", shape: [1, 1, input[2] * depthMultiplier, filters], initializer: .glorotUniform)
        if useBias { bias = addWeight("bias", shape: [filters], initializer: .zeros) }
        return [window.outputHeight, window.outputWidth, filters]
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try requirePlaced()
        let spatial = try inputs[0].depthwiseConv2d(depthwise.value, strides: strides, padding: padding, dilation: dilationRate)
        return try activation(spatial.conv2d(pointwise.value, bias: bias?.value, relu: false))
    }
}

extension Layer {
    /// The window of a depthwise convolution over `input` (height, width, channels), checked as Keras does.
    func depthwiseWindow(_ input: [Int], kernelSize: (Int, Int), strides: (Int, Int), padding: Padding, dilationRate: (Int, Int),
                         depthMultiplier: Int) throws -> Window2D {
        guard input.count == 3, depthMultiplier > 0 else { throw shapeError("expects (height, width, channels) inputs and a depth multiplier > 0, got \(input)") }
        guard dilationRate.0 >= 1, dilationRate.1 >= 1, dilationRate == (1, 1) || strides == (1, 1) else {
            throw shapeError("dilation \(dilationRate) with strides \(strides): Keras allows one of them above 1")
        }
        do {
            return try Window2D(input: (input[0], input[1]), kernel: kernelSize, stride: strides, padding: padding, dilation: dilationRate)
        } catch { throw shapeError("\(error)") }
    }
}
