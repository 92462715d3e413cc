/// Keras's `Conv2DTranspose` (a "deconvolution", the upsampling of DCGAN generators and decoders):
/// the adjoint of a `Conv2D`, kernel shape (kh, kw, filters, inputChannels) as Keras. `same` padding
/// multiplies the image size by the stride; `outputPadding` adds rows and columns below the stride.
public final class Conv2DTranspose: Layer {
    public let filters: Int
    public let kernelSize: (Int, Int), strides: (Int, Int)
    public let padding: Padding
    public let outputPadding: (Int, Int)?
    public let activation: ActivationFunction
    public let useBias: Bool
    let kernelInitializer: Initializer, biasInitializer: Initializer
    let kernelRegularizer: Regularizer?
    private var kernel: Weight!, bias: Weight?

    public init(_ filters: Int, kernelSize: (Int, Int), strides: (Int, Int) = (1, 1), padding: Padding = .valid,
                outputPadding: (Int, Int)? = nil, activation: ActivationFunction = .linear, useBias: Bool = true,
                kernelInitializer: Initializer = .glorotUniform, biasInitializer: Initializer = .zeros,
                kernelRegularizer: Regularizer? = nil, name: String? = nil) {
        (self.filters, self.kernelSize, self.strides, self.padding, self.outputPadding) = (filters, kernelSize, strides, padding, outputPadding)
        (self.activation, self.useBias) = (activation, useBias)
        (self.kernelInitializer, self.biasInitializer, self.kernelRegularizer) = (kernelInitializer, biasInitializer, kernelRegularizer)
        super.init(name: name, kind: "conv2d_transpose")
    }

    /// A square kernel: `Conv2DTranspose(64, kernelSize: 4, strides: 2, padding: .same)`.
    public convenience init(_ filters: Int, kernelSize: Int, strides: Int = 1, padding: Padding = .valid,
                            activation: ActivationFunction = .linear, useBias: Bool = true,
                            kernelInitializer: Initializer = .glorotUniform, name: String? = nil) {
        self.init(filters, kernelSize: (kernelSize, kernelSize), strides: (strides, strides), padding: padding,
                  activation: activation, useBias: useBias, kernelInitializer: kernelInitializer, name: name)
    }

    private func geometry(batch: Int, _ input: [Int]) throws -> TransposedConvShape {
        do {
            return try TransposedConvShape(batch: batch, input: (input[0], input[1]), inChannels: input[2], filters: filters,
                                           kernel: kernelSize, stride: strides, padding: padding, outputPadding: outputPadding)
        } catch { throw shapeError("\(error)") }
    }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        let input = try single(inputShapes)
        guard input.count == 3 else { throw shapeError("expects (height, width, channels) inputs, got \(input)") }
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
        if activation == .relu { return try x.conv2dTranspose(kernel.value, bias: bias?.value, shape: shape, relu: true) }
        return try activation(x.conv2dTranspose(kernel.value, bias: bias?.value, shape: shape))
    }
}
