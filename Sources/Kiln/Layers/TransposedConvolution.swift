/// Keras's `Conv2DTranspose` (a "deconvolution", the upsampling of DCGAN generators and decoders):
/// the adjoint of a `Conv2D`, kernel shape (kh, kw, filters, inputChannels) as Keras. `same` padding
/// multiplies the image size by the stride; `outputPadding` adds rows and columns below the stride.
/// `dilationRate` spaces the taps (the kernel then spans `(k − 1)·d + 1`), as Keras; with strides
/// too, as PyTorch allows.
public final class Conv2DTranspose: Layer {
    public let filters: Int
    public let kernelSize: (Int, Int), strides: (Int, Int), dilationRate: (Int, Int)
    public let padding: Padding
    public let outputPadding: (Int, Int)?
    public let activation: ActivationFunction
    public let useBias: Bool
    let kernelInitializer: Initializer, biasInitializer: Initializer
    let kernelRegularizer: Regularizer?
    private var kernel: Weight!, bias: Weight?

    public init(_ filters: Int, kernelSize: (Int, Int), strides: (Int, Int) = (1, 1), padding: Padding = .valid,
                outputPadding: (Int, Int)? = nil, dilationRate: (Int, Int) = (1, 1), activation: ActivationFunction = .linear,
                useBias: Bool = true, kernelInitializer: Initializer = .glorotUniform, biasInitializer: Initializer = .zeros,
                kernelRegularizer: Regularizer? = nil, name: String? = nil) {
        (self.filters, self.kernelSize, self.strides, self.padding, self.outputPadding) = (filters, kernelSize, strides, padding, outputPadding)
        self.dilationRate = dilationRate
        (self.activation, self.useBias) = (activation, useBias)
        (self.kernelInitializer, self.biasInitializer, self.kernelRegularizer) = (kernelInitializer, biasInitializer, kernelRegularizer)
        super.init(name: name, kind: "conv2d_transpose")
    }

    /// A square kernel: `Conv2DTranspose(64, kernelSize: 4, strides: 2, padding: .same)`.
    public convenience init(_ filters: Int, kernelSize: Int, strides: Int = 1, padding: Padding = .valid, dilationRate: Int = 1,
                            activation: ActivationFunction = .linear, useBias: Bool = true,
                            kernelInitializer: Initializer = .glorotUniform, name: String? = nil) {
        self.init(filters, kernelSize: (kernelSize, kernelSize), strides: (strides, strides), padding: padding,
                  dilationRate: (dilationRate, dilationRate), activation: activation, useBias: useBias,
                  kernelInitializer: kernelInitializer, name: name)
    }

    /// The kernel's extent with its dilation.
    var span: (Int, Int) { ((kernelSize.0 - 1) * dilationRate.0 + 1, (kernelSize.1 - 1) * dilationRate.1 + 1) }

    private func geometry(batch: Int, _ input: [Int]) throws -> TransposedConvShape {
        do {
            return try TransposedConvShape(batch: batch, input: (input[0], input[1]), inChannels: input[2], filters: filters,
                                           kernel: span, stride: strides, padding: padding, outputPadding: outputPadding)
        } catch { throw shapeError("\(error)") }
    }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        let input = try single(inputShapes)
        guard input.count == 3 else { throw shapeError("expects (height, width, channels) inputs, got \(input)") }
        guard dilationRate.0 >= 1, dilationRate.1 >= 1 else { throw shapeError("dilation rate must be at least 1, got \(dilationRate)") }
        let shape = try geometry(batch: 1, input)
        kernel = addWeight("kernel", shape: [kernelSize.0, kernelSize.1, filters, input[2]],
                           initializer: kernelInitializer, regularizer: kernelRegularizer)
        if useBias { bias = addWeight("bias", shape: [filters], initializer: biasInitializer) }
        return Array(shape.outputShape.dropFirst())
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try requirePlaced()
        let x = inputs[0]
        let shape = try geometry(batch: x.shape[0], Array(x.shape.dropFirst()))
        let taps: Tensor = dilationRate == (1, 1) ? kernel.value : try kernel.value.dilatedKernel(dilationRate)
        if activation == .relu { return try x.conv2dTranspose(taps, bias: bias?.value, shape: shape, relu: true) }
        return try activation(x.conv2dTranspose(taps, bias: bias?.value, shape: shape))
    }
}
