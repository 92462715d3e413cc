/// Shapes and parameters that describe one kernel launch. Tensors are row-major; images are
/// NHWC (batch, height, width, channels) and convolution kernels HWIO, as in Keras.

/// `C = alpha * op(A) * op(B) + beta * C` for `batch` row-major matrices packed one after another.
public struct Gemm: Hashable, Sendable {
    public var m: Int, n: Int, k: Int
    public var transposeA = false, transposeB = false
    public var alpha: Float = 1, beta: Float = 0
    public var batch = 1
    /// Element offsets of the first matrices.
    public var offsetA = 0, offsetB = 0, offsetC = 0

    public init(m: Int, n: Int, k: Int, transposeA: Bool = false, transposeB: Bool = false,
                alpha: Float = 1, beta: Float = 0, batch: Int = 1) {
        (self.m, self.n, self.k) = (m, n, k)
        (self.transposeA, self.transposeB, self.alpha, self.beta, self.batch) = (transposeA, transposeB, alpha, beta, batch)
    }

    var lda: Int { transposeA ? m : k }
    var ldb: Int { transposeB ? k : n }
    var ldc: Int { n }
    var strideA: Int { m * k }
    var strideB: Int { k * n }
    var strideC: Int { m * n }

    func validate(a: Buffer, b: Buffer, c: Buffer) throws {
        guard m > 0, n > 0, k > 0, batch > 0 else { throw DeviceError.invalidArgument("gemm: empty shape m=\(m) n=\(n) k=\(k) batch=\(batch)") }
        try require(a, offsetA + batch * strideA, "gemm A")
        try require(b, offsetB + batch * strideB, "gemm B")
        try require(c, offsetC + batch * strideC, "gemm C")
    }
}

/// Keras padding: `valid` uses no padding; `same` pads so that `out = ceil(in / stride)`, putting
/// the odd pixel of an uneven total at the bottom/right, as TensorFlow does.
public enum Padding: String, Hashable, Sendable, CaseIterable {
    case valid, same
}

/// A sliding window over the spatial dimensions of an NHWC image batch. With a dilation above 1
/// the kernel's taps lie that far apart (atrous convolution); only depthwise convolutions take one.
public struct Window2D: Hashable, Sendable {
    public let inputHeight: Int, inputWidth: Int
    public let kernelHeight: Int, kernelWidth: Int
    public let strideHeight: Int, strideWidth: Int
    public let padTop: Int, padLeft: Int
    public let outputHeight: Int, outputWidth: Int
    public let dilationHeight: Int, dilationWidth: Int

    public init(input: (height: Int, width: Int), kernel: (height: Int, width: Int),
                stride: (height: Int, width: Int), padding: Padding, dilation: (height: Int, width: Int) = (1, 1)) throws {
        let sizes = [input.height, input.width, kernel.height, kernel.width, stride.height, stride.width, dilation.height, dilation.width]
        guard sizes.allSatisfy({ $0 > 0 && $0 <= 1 << 31 }) else {
            throw DeviceError.invalidArgument("window: sizes must be positive (input \(input), kernel \(kernel), stride \(stride), dilation \(dilation))")
        }
        func axis(_ size: Int, _ taps: Int, _ s: Int, _ d: Int) throws -> (pad: Int, out: Int) {
            let k = (taps - 1) * d + 1
            switch padding {
            case .valid:
                guard k <= size else {
                    throw DeviceError.invalidArgument("window: kernel \(kernel) is larger than input \(input) with padding 'valid'")
                }
                return (0, (size - k) / s + 1)
            case .same:
                let out = (size + s - 1) / s
                return (max((out - 1) * s + k - size, 0) / 2, out)
            }
        }
        let (padTop, outH) = try axis(input.height, kernel.height, stride.height, dilation.height)
        let (padLeft, outW) = try axis(input.width, kernel.width, stride.width, dilation.width)
        (inputHeight, inputWidth, kernelHeight, kernelWidth) = (input.height, input.width, kernel.height, kernel.width)
        (strideHeight, strideWidth, self.padTop, self.padLeft) = (stride.height, stride.width, padTop, padLeft)
        (outputHeight, outputWidth, dilationHeight, dilationWidth) = (outH, outW, dilation.height, dilation.width)
    }

    /// Explicit padding (ONNX `pads`): `out = (in + before + after − kernel) / stride + 1`, rounded
    /// down, or up with `ceilMode`.
    public init(input: (height: Int, width: Int), kernel: (height: Int, width: Int), stride: (height: Int, width: Int),
                pads: (top: Int, left: Int, bottom: Int, right: Int), ceilMode: Bool = false, dilation: (height: Int, width: Int) = (1, 1)) throws {
        guard dilation.height > 0, dilation.width > 0, dilation.height <= 1 << 31, dilation.width <= 1 << 31 else {
            throw DeviceError.invalidArgument("window: dilation \(dilation) must be positive")
        }
        func out(_ size: Int, _ before: Int, _ after: Int, _ taps: Int, _ s: Int, _ d: Int) throws -> Int {
            let k = taps < 1 ? taps : (taps - 1) * d + 1
            guard [size, before, after, k, s].allSatisfy({ $0 <= 1 << 31 }) else {
                throw DeviceError.invalidArgument("window: sizes above 2^31 (input \(input), kernel \(kernel), stride \(stride), pads \(pads))")
            }
            let span = size + before + after - k
            guard span >= 0, s > 0, k > 0, before >= 0, after >= 0, before < k, after < k else {
                throw DeviceError.invalidArgument("window: kernel \(kernel), stride \(stride) and pads \(pads) do not fit input \(input)")
            }
            return (ceilMode ? (span + s - 1) / s : span / s) + 1
        }
        (inputHeight, inputWidth, kernelHeight, kernelWidth) = (input.height, input.width, kernel.height, kernel.width)
        (strideHeight, strideWidth, padTop, padLeft) = (stride.height, stride.width, pads.top, pads.left)
        outputHeight = try out(input.height, pads.top, pads.bottom, kernel.height, stride.height, dilation.height)
        outputWidth = try out(input.width, pads.left, pads.right, kernel.width, stride.width, dilation.width)
        (dilationHeight, dilationWidth) = (dilation.height, dilation.width)
    }

    var inputPixels: Int { inputHeight * inputWidth }
    var outputPixels: Int { outputHeight * outputWidth }
    var kernelPixels: Int { kernelHeight * kernelWidth }
    var isDilated: Bool { dilationHeight > 1 || dilationWidth > 1 }
    /// The rows and columns one window covers, its taps' dilation included.
    var extent: (height: Int, width: Int) { ((kernelHeight - 1) * dilationHeight + 1, (kernelWidth - 1) * dilationWidth + 1) }
}

/// A 2-D convolution: NHWC input, HWIO weights, NHWC output. With `groups` equal to `inChannels`
/// it is depthwise (Keras `DepthwiseConv2D`): output channel c·m + j filters input channel c alone,
/// weights (kh, kw, 1, inChannels·m) — the same floats as Keras's (kh, kw, inChannels, m) — and
/// only then may the window be dilated.
public struct ConvShape: Hashable, Sendable {
    public let batch: Int, inChannels: Int, outChannels: Int
    public let window: Window2D
    public let groups: Int

    public init(batch: Int, inChannels: Int, outChannels: Int, window: Window2D, groups: Int = 1) {
        (self.batch, self.inChannels, self.outChannels, self.window, self.groups) = (batch, inChannels, outChannels, window, groups)
    }

    public var inputCount: Int { batch * window.inputPixels * inChannels }
    public var outputCount: Int { batch * window.outputPixels * outChannels }
    public var weightCount: Int { window.kernelPixels * inChannels / max(groups, 1) * outChannels }
    var isDepthwise: Bool { groups > 1 }
    /// Output channels per input channel of a depthwise convolution.
    var multiplier: Int { outChannels / inChannels }
    /// Columns of the im2col matrix: one per (kernel row, kernel column, input channel).
    var patchSize: Int { window.kernelPixels * inChannels }
    /// A 1×1 stride-1 convolution is a plain matrix product: no im2col needed.
    var isPointwise: Bool { window.kernelPixels == 1 && window.strideHeight == 1 && window.strideWidth == 1 }
    /// Whether max pooling `p` of this convolution's output can run fused with it: windows that
    /// neither pad nor overlap over exactly this output (a backend may ask more).
    func fusesMaxPool(_ p: PoolShape) -> Bool {
        let pw = p.window
        return p.channels == outChannels && p.batch == batch && pw.padTop == 0 && pw.padLeft == 0 && !pw.isDilated
            && pw.inputHeight == window.outputHeight && pw.inputWidth == window.outputWidth
            && pw.strideHeight >= pw.kernelHeight && pw.strideWidth >= pw.kernelWidth
    }

    /// Checks the buffers of `conv2dMaxPool` with pooling `p`.
    func validateMaxPool(_ p: PoolShape, input: Buffer, weight: Buffer, bias: Buffer?, output: Buffer, argmax: Buffer) throws {
        try require(input, inputCount, "conv2dMaxPool input")
        try require(weight, weightCount, "conv2dMaxPool weight")
        if let bias { try require(bias, outChannels, "conv2dMaxPool bias") }
        try require(output, p.outputCount, "conv2dMaxPool output")
        try require(argmax, p.outputCount, "conv2dMaxPool argmax")
    }

    /// Images per im2col chunk, so that the column matrix stays under 8 Mi elements (32 MiB).
    var imagesPerChunk: Int { max(1, min(batch, (8 << 20) / max(1, window.outputPixels * patchSize))) }

    func validate(input: Buffer, weight: Buffer, output: Buffer, bias: Buffer? = nil, reluOutput: Buffer? = nil) throws {
        guard groups == 1 || (groups == inChannels && outChannels % inChannels == 0) else {
            throw DeviceError.invalidArgument("conv2d: \(groups) groups for \(inChannels) → \(outChannels) channels; only 1 or depthwise (groups = input channels) runs as one op")
        }
        guard isDepthwise || !window.isDilated else {
            throw DeviceError.invalidArgument("conv2d: a dilated window \(window) runs only depthwise; dense convolutions take a dilated kernel")
        }
        try require(input, inputCount, "conv2d input")
        try require(weight, weightCount, "conv2d weight")
        try require(output, outputCount, "conv2d output")
        if let bias { try require(bias, outChannels, "conv2d bias") }
        if let reluOutput { try require(reluOutput, outputCount, "conv2d reluOutput") }
    }
}

/// A transposed convolution (Keras `Conv2DTranspose`, PyTorch `ConvTranspose2d`): the adjoint of
/// `convolution`, taking NHWC images of that convolution's output size and `outChannels` channels to
/// images of its input size and `inChannels` channels. The weight is the convolution's HWIO kernel,
/// (kh, kw, filters, inputChannels) — Keras's Conv2DTranspose layout.
public struct TransposedConvShape: Hashable, Sendable {
    public let convolution: ConvShape

    /// Keras's geometry: `valid` gives `in·s + max(k − s, 0)` pixels, `same` gives `in·s`; with
    /// `outputPadding`, `(in − 1)·s + k − 2·pad + outputPadding` with pad = k/2 for `same`, 0 for `valid`.
    /// The convolution then pads that size as TensorFlow does for `padding`.
    public init(batch: Int, input: (height: Int, width: Int), inChannels: Int, filters: Int, kernel: (height: Int, width: Int),
                stride: (height: Int, width: Int), padding: Padding, outputPadding: (height: Int, width: Int)? = nil) throws {
        func size(_ n: Int, _ k: Int, _ s: Int, _ extra: Int?) -> Int {
            guard let extra else { return padding == .same ? n * s : n * s + max(k - s, 0) }
            return (n - 1) * s + k - (padding == .same ? 2 * (k / 2) : 0) + extra
        }
        let output = (size(input.height, kernel.height, stride.height, outputPadding?.height),
                      size(input.width, kernel.width, stride.width, outputPadding?.width))
        try self.init(batch: batch, inChannels: inChannels, filters: filters, input: input,
                      window: Window2D(input: output, kernel: kernel, stride: stride, padding: padding))
    }

    /// ONNX's and PyTorch's geometry: `(in − 1)·s + k − before − after + outputPadding` pixels.
    public init(batch: Int, input: (height: Int, width: Int), inChannels: Int, filters: Int, kernel: (height: Int, width: Int),
                stride: (height: Int, width: Int), pads: (top: Int, left: Int, bottom: Int, right: Int),
                outputPadding: (height: Int, width: Int) = (0, 0)) throws {
        let output = ((input.height - 1) * stride.height + kernel.height - pads.top - pads.bottom + outputPadding.height,
                      (input.width - 1) * stride.width + kernel.width - pads.left - pads.right + outputPadding.width)
        try self.init(batch: batch, inChannels: inChannels, filters: filters, input: input,
                      window: Window2D(input: output, kernel: kernel, stride: stride, pads: pads))
    }

    private init(batch: Int, inChannels: Int, filters: Int, input: (height: Int, width: Int), window: Window2D) throws {
        guard window.outputHeight == input.height, window.outputWidth == input.width, batch > 0, inChannels > 0, filters > 0 else {
            throw DeviceError.invalidArgument("transposed convolution: \(input) images give \(window.inputHeight)×\(window.inputWidth), "
                                              + "which the kernel and stride do not take back to \(input) (output padding must be below the stride)")
        }
        convolution = ConvShape(batch: batch, inChannels: filters, outChannels: inChannels, window: window)
    }

    public var inputCount: Int { convolution.outputCount }
    public var outputCount: Int { convolution.inputCount }
    public var outputShape: [Int] { [convolution.batch, convolution.window.inputHeight, convolution.window.inputWidth, convolution.inChannels] }
}

public enum PoolMode: Hashable, Sendable { case max, average }

/// A 2-D pooling over an NHWC batch. Average pooling divides by the number of input pixels
/// inside the window (padding excluded), as Keras does.
public struct PoolShape: Hashable, Sendable {
    public let batch: Int, channels: Int
    public let window: Window2D

    public init(batch: Int, channels: Int, window: Window2D) {
        (self.batch, self.channels, self.window) = (batch, channels, window)
    }

    public var inputCount: Int { batch * window.inputPixels * channels }
    public var outputCount: Int { batch * window.outputPixels * channels }

    /// Checks the image buffers, and that max pooling has its argmax buffer.
    func validate(mode: PoolMode, input: Buffer, output: Buffer, argmax: Buffer?, _ op: String) throws {
        guard !window.isDilated else { throw DeviceError.invalidArgument("\(op): pooling windows are not dilated, got \(window)") }
        try require(input, inputCount, "\(op) input")
        try require(output, outputCount, "\(op) output")
        guard mode == .max else { return }
        guard let argmax else { throw DeviceError.invalidArgument("\(op): max pooling needs an argmax buffer") }
        try require(argmax, outputCount, "\(op) argmax")
    }
}

/// A tensor seen as `[outer, axis, inner]`: reductions, softmax, bias and batch norm act along `axis`.
public struct AxisView: Hashable, Sendable {
    public let outer: Int, axis: Int, inner: Int
    public init(outer: Int, axis: Int, inner: Int = 1) { (self.outer, self.axis, self.inner) = (outer, axis, inner) }
    public var count: Int { outer * axis * inner }
    public var resultCount: Int { outer * inner }

    /// Checks batch-norm buffers: whole tensors, and one value per channel (the axis).
    func validateNorm(tensors: [Buffer], channels: [Buffer]) throws {
        for buffer in tensors { try require(buffer, count, "batchNorm tensor") }
        for buffer in channels { try require(buffer, axis, "batchNorm per-channel buffer") }
    }
}

public enum UnaryOp: Hashable, Sendable {
    case relu, leakyRelu(slope: Float), sigmoid, tanh
    case exp, log, sqrt, square, abs, negate, softplus
    /// 1 where x > 0, else 0 (no gradient): masks for metrics and max/min.
    case step
    /// min(max(x, 0), max): ReLU6 and the hard sigmoid's clamp in one pass; gradient where 0 < x < max.
    case cappedRelu(max: Float)

    /// The code the kernels switch on, and the op's scalar parameter.
    var code: Int32 {
        switch self {
        case .relu: 0; case .leakyRelu: 1; case .sigmoid: 2; case .tanh: 3; case .exp: 4; case .log: 5
        case .sqrt: 6; case .square: 7; case .abs: 8; case .negate: 9; case .softplus: 10; case .step: 11; case .cappedRelu: 12
        }
    }
    var parameter: Float {
        switch self {
        case .leakyRelu(let slope): slope
        case .cappedRelu(let cap): cap
        default: 0
        }
    }
}

public enum BinaryOp: Int32, Hashable, Sendable, CaseIterable {
    case add, subtract, multiply, divide, maximum, minimum
}

public enum ReduceOp: Int32, Hashable, Sendable, CaseIterable {
    case sum, mean, max
}

/// Rows picked from a `[tableRows, columns]` table by `count` indices (embedding lookups, `gather`
/// on an axis, strided and boolean indexing): Int32, or floats holding whole numbers (token ids as
/// datasets give them) when `floatIndices`. An index outside `0..<tableRows` reads as a zero row and
/// its gradient is dropped: never a read or write outside the table.
public struct RowGather: Hashable, Sendable {
    public var tableRows: Int
    public var columns: Int
    public var count: Int
    public var floatIndices: Bool

    public init(tableRows: Int, columns: Int, count: Int, floatIndices: Bool = false) {
        (self.tableRows, self.columns, self.count, self.floatIndices) = (tableRows, columns, count, floatIndices)
    }

    func validate(table: Buffer, indices: Buffer, rows: Buffer, _ op: String) throws {
        guard tableRows > 0, columns > 0, count > 0 else {
            throw DeviceError.invalidArgument("\(op): \(tableRows) table rows, \(columns) columns and \(count) indices must be positive")
        }
        try require(table, tableRows * columns, "\(op) table")
        try require(indices, count, "\(op) indices")
        try require(rows, count * columns, "\(op) rows")
    }
}

/// One time step of a recurrent layer (Keras 3 cells) over time-major sequence buffers; see
/// `RecurrentSequence` for their layout. The projections are GEMMs around it.
public struct RecurrentStep: Hashable, Sendable {
    public enum Cell: Int32, Hashable, Sendable { case simpleRNN = 0, lstm = 1, gru = 2 }
    public var cell: Cell
    /// ReLU instead of tanh as the cell's activation.
    public var relu: Bool
    public var batch: Int, units: Int
    /// The step, 0-based, in sequences of `length` steps.
    public var time: Int, length: Int

    public init(cell: Cell, relu: Bool = false, batch: Int, units: Int, time: Int, length: Int) {
        (self.cell, self.relu, self.batch, self.units, self.time, self.length) = (cell, relu, batch, units, time, length)
    }

    /// Gate pre-activations per row: units × 1 (SimpleRNN), 4 (LSTM: i, f, c, o) or 3 (GRU: z, r, h).
    public var width: Int { units * (cell == .lstm ? 4 : cell == .gru ? 3 : 1) }
    var gatesOffset: Int { time * batch * width }
    /// Of h[t] (and c[t]); h[t + 1] follows `batch * units` later.
    var stateOffset: Int { time * batch * units }
    var maskOffset: Int { time * batch }

    func validate(_ s: RecurrentSequence, _ g: RecurrentGradients? = nil) throws {
        guard batch > 0, units > 0, length > 0, (0..<length).contains(time) else {
            throw DeviceError.invalidArgument("recurrentStep: step \(time) of \(length), batch \(batch), \(units) units")
        }
        let (steps, states) = (length * batch * width, (length + 1) * batch * units)
        try require(s.gates, steps, "recurrentStep gates")
        if let bias = s.inputBias { try require(bias, width, "recurrentStep input bias") }
        try require(s.hidden, states, "recurrentStep hidden states")
        if let mask = s.mask { try require(mask, length * batch, "recurrentStep mask") }
        if (s.dropoutMask == nil) != (s.dropped == nil) { throw DeviceError.invalidArgument("recurrentStep: recurrent dropout needs its mask and the dropped states") }
        if let dropoutMask = s.dropoutMask, let dropped = s.dropped {
            try require(dropoutMask, batch * units, "recurrentStep dropout mask")
            try require(dropped, states, "recurrentStep dropped states")
        }
        switch cell {
        case .lstm:
            guard let c = s.cell else { throw DeviceError.invalidArgument("recurrentStep: an LSTM needs its cell states") }
            try require(c, states, "recurrentStep cell states")
        case .gru:
            guard let r = s.recurrent, let bias = s.recurrentBias else { throw DeviceError.invalidArgument("recurrentStep: a GRU needs its recurrent projections and bias") }
            try require(r, steps, "recurrentStep recurrent projections")
            try require(bias, width, "recurrentStep recurrent bias")
        case .simpleRNN: break
        }
        guard let g else { return }
        if let output = g.output { try require(output, length * batch * units, "recurrentStepBackward output gradients") }
        try require(g.hidden, batch * units, "recurrentStepBackward hidden gradient")
        try require(g.gates, steps, "recurrentStepBackward gate gradients")
        if let through = g.through {
            guard s.dropoutMask != nil else { throw DeviceError.invalidArgument("recurrentStepBackward: a recurrent-projection gradient without a dropout mask") }
            try require(through, batch * units, "recurrentStepBackward recurrent-projection gradient")
        }
        if cell == .lstm {
            guard let c = g.cell else { throw DeviceError.invalidArgument("recurrentStepBackward: an LSTM needs its cell gradient") }
            try require(c, batch * units, "recurrentStepBackward cell gradient")
        }
        if cell == .gru {
            guard let r = g.recurrent else { throw DeviceError.invalidArgument("recurrentStepBackward: a GRU needs its recurrent gradients") }
            try require(r, steps, "recurrentStepBackward recurrent gradients")
        }
    }
}

/// The buffers of a recurrent layer's pass, time-major: `gates` and GRU's `recurrent` `[length, batch,
/// width]`, `hidden` and LSTM's `cell` `[length + 1, batch, units]` (the initial state first), `mask`
/// `[length, batch]` (0 where a step is padding), the input projection's `inputBias` `[width]` (added to
/// `gates` by the cell kernel, so the projection needs no pass of its own), GRU's `recurrentBias` `[width]`. Recurrent dropout:
/// `dropoutMask` `[batch, units]` (0 or 1/(1 − rate), one per sequence) and `dropped` (the hidden
/// states times it, shaped as `hidden`), which the recurrent projections read.
public struct RecurrentSequence {
    public var gates: Buffer, inputBias: Buffer?, recurrent: Buffer?, recurrentBias: Buffer?
    public var hidden: Buffer, cell: Buffer?, mask: Buffer?
    public var dropoutMask: Buffer?, dropped: Buffer?

    public init(gates: Buffer, inputBias: Buffer? = nil, recurrent: Buffer? = nil, recurrentBias: Buffer? = nil, hidden: Buffer, cell: Buffer? = nil,
                mask: Buffer? = nil, dropoutMask: Buffer? = nil, dropped: Buffer? = nil) {
        (self.gates, self.inputBias, self.recurrent, self.recurrentBias) = (gates, inputBias, recurrent, recurrentBias)
        (self.hidden, self.cell, self.mask, self.dropoutMask, self.dropped) = (hidden, cell, mask, dropoutMask, dropped)
    }
}

/// The gradients a recurrent step's backward pass reads and writes: `output` `[length, batch, units]`
/// (of the layer's outputs, when it returns sequences), the carried `hidden` and LSTM `cell` gradients
/// `[batch, units]`, and the pre-activation gradients `gates` (and GRU's `recurrent`) of every step.
/// Under recurrent dropout, `through` `[batch, units]` holds the later step's `gates·Uᵀ`, which reaches
/// h through the dropout mask.
public struct RecurrentGradients {
    public var output: Buffer?, hidden: Buffer, cell: Buffer?, gates: Buffer, recurrent: Buffer?, through: Buffer?

    public init(output: Buffer? = nil, hidden: Buffer, cell: Buffer? = nil, gates: Buffer, recurrent: Buffer? = nil, through: Buffer? = nil) {
        (self.output, self.hidden, self.cell, self.gates, self.recurrent, self.through) = (output, hidden, cell, gates, recurrent, through)
    }
}

/// What `fillRandom` draws. Element `i` comes from the Philox-4x32-10 block of counter `offset + i`:
/// uniform from its first word (24 bits, the same as dropout's mask), normal by Box–Muller from its
/// first two words.
public enum RandomDistribution: Hashable, Sendable {
    /// Uniform in `[low, high)`.
    case uniform(low: Float, high: Float)
    case normal(mean: Float, standardDeviation: Float)

    var code: Int32 { if case .uniform = self { 0 } else { 1 } }
    /// `(low, high - low)` or `(mean, standardDeviation)`: `value = a + b * draw`.
    var parameters: (Float, Float) {
        switch self {
        case .uniform(let low, let high): (low, high - low)
        case .normal(let mean, let deviation): (mean, deviation)
        }
    }

    func validate() throws {
        let (a, b) = parameters
        guard a.isFinite, b.isFinite, b >= 0 else {
            throw DeviceError.invalidArgument("fillRandom: \(self) needs finite parameters with high ≥ low (deviation ≥ 0)")
        }
    }
}

/// What a softmax cross-entropy compares its logits with.
public enum Targets {
    /// One Int32 class index per row.
    case sparse(Buffer)
    /// One probability row (one-hot or soft) per row.
    case dense(Buffer)

    func validate(rows: Int, columns: Int, _ op: String) throws {
        switch self {
        case .sparse(let labels): try require(labels, rows, "\(op) labels")
        case .dense(let probabilities): try require(probabilities, rows * columns, "\(op) targets")
        }
    }
}

/// Per-parameter update rules, with Keras 3 semantics. Weight decay, when set, is decoupled:
/// `w -= learningRate * weightDecay * w` before the rule (AdamW is `adam` with weight decay).
public enum UpdateRule: Hashable, Sendable, Codable {
    /// `v = momentum*v - lr*g; w += v` (Nesterov: `w += momentum*v - lr*g`). One slot when momentum > 0.
    case sgd(momentum: Float, nesterov: Bool)
    /// `s = rho*s + (1-rho)*g²; w -= lr*g/sqrt(s + epsilon)`, with an optional momentum slot.
    case rmsprop(rho: Float, momentum: Float, epsilon: Float)
    /// Adam with bias correction folded into the step size. Two slots.
    case adam(beta1: Float, beta2: Float, epsilon: Float)

    /// How many state buffers (each the size of the parameter) the rule keeps.
    public var slotCount: Int {
        switch self {
        case .sgd(let momentum, _): momentum > 0 ? 1 : 0
        case .rmsprop(_, let momentum, _): momentum > 0 ? 2 : 1
        case .adam: 2
        }
    }
}

/// A parameter update: the rule, its hyper-parameters and the 1-based step number.
public struct Update: Hashable, Sendable {
    public var rule: UpdateRule
    public var learningRate: Float
    public var weightDecay: Float = 0
    public var step: Int = 1

    public init(rule: UpdateRule, learningRate: Float, weightDecay: Float = 0, step: Int = 1) {
        (self.rule, self.learningRate, self.weightDecay, self.step) = (rule, learningRate, weightDecay, step)
    }
}

/// One weight's buffers for `applyUpdate`: the parameter, updated in place, its gradient, and the
/// rule's state (`rule.slotCount` buffers), `count` elements each.
public struct UpdateTarget {
    public var parameter: Buffer, gradient: Buffer
    public var slots: [Buffer]
    public var count: Int

    public init(parameter: Buffer, gradient: Buffer, slots: [Buffer], count: Int) {
        (self.parameter, self.gradient, self.slots, self.count) = (parameter, gradient, slots, count)
    }
}

func require(_ buffer: Buffer, _ count: Int, _ what: @autoclosure () -> String) throws {
    guard buffer.count >= count else {
        throw DeviceError.invalidArgument("\(what()): buffer holds \(buffer.count) elements, needs \(count)")
    }
}
