/// What a device reports about itself (`kiln devices`).
public struct DeviceInfo: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable { case cpu, gpu, accelerator, other }
    public var backend: String          // "cpu" or "opencl"
    public var platform: String
    public var name: String
    public var kind: Kind
    public var computeUnits: Int
    public var globalMemory: Int        // bytes
    public var version: String
    public var driverVersion: String

    public var description: String {
        "\(backend == "cpu" ? "CPU backend" : platform): \(name) [\(kind.rawValue), \(computeUnits) compute units, "
            + "\(globalMemory >> 20) MiB, \(version)]"
    }
}

/// A compute device: owns memory and runs the kernel library on it.
///
/// Every op reads and writes device buffers the caller provides and is enqueued on the device's
/// in-order queue; nothing moves to the host until `read` is called. Shapes follow `Geometry.swift`
/// (row-major, NHWC images, HWIO kernels). Implementations: `CPUDevice` (Swift + CKernels + OpenBLAS) and
/// `OpenCLDevice` (OpenCL C kernels from `Kernels/` + CLBlast).
public protocol Device: AnyObject, Sendable {
    var info: DeviceInfo { get }

    // Memory
    /// An uninitialised buffer of `count` 4-byte elements, reused from the pool when possible.
    func makeBuffer(count: Int) throws -> Buffer
    func write(_ values: UnsafeRawBufferPointer, to buffer: Buffer, offset: Int) throws
    func read(_ buffer: Buffer, offset: Int, into values: UnsafeMutableRawBufferPointer) throws
    /// Waits until every enqueued op has finished.
    func synchronize() throws

    // Data movement
    func fill(_ buffer: Buffer, with value: Float, offset: Int, count: Int) throws
    func fill(_ buffer: Buffer, withInt value: Int32, offset: Int, count: Int) throws
    /// Copies `rows` runs of `columns` elements between two strided layouts (copies, slices, concat).
    func copy2D(rows: Int, columns: Int, from source: Buffer, offset: Int, stride: Int,
                to destination: Buffer, offset: Int, stride: Int) throws
    /// `output = input.transposed(permutation)` for a row-major `shape`.
    func permute(_ input: Buffer, shape: [Int], permutation: [Int], into output: Buffer) throws
    /// `output[r] = table[indices[r]]`, a row of `columns` each (zeros for an index outside the table).
    func gatherRows(_ gather: RowGather, table: Buffer, indices: Buffer, into output: Buffer) throws
    /// `table[indices[r]] += rows[r]` for r in order, so repeated indices add up the same way on every
    /// device (the backward of `gatherRows`); indices outside the table are skipped.
    func scatterAddRows(_ gather: RowGather, rows: Buffer, indices: Buffer, into table: Buffer) throws

    // Linear algebra and convolution
    func gemm(_ gemm: Gemm, a: Buffer, b: Buffer, c: Buffer) throws
    /// `output = input ⊛ weight + bias`, then `max(output, 0)` when `relu` (the fused activation).
    func conv2d(_ shape: ConvShape, input: Buffer, weight: Buffer, bias: Buffer?, relu: Bool, output: Buffer) throws
    /// The backward passes take `reluOutput`, the output of a forward pass with `relu`, to route
    /// `gradOutput` through the activation first (zero where the output is zero).
    func conv2dBackwardData(_ shape: ConvShape, gradOutput: Buffer, reluOutput: Buffer?, weight: Buffer, gradInput: Buffer) throws
    /// Overwrites `gradWeight` (and `gradBias`, the sums of `gradOutput` per output channel).
    func conv2dBackwardWeights(_ shape: ConvShape, input: Buffer, gradOutput: Buffer, reluOutput: Buffer?,
                               gradWeight: Buffer, gradBias: Buffer?) throws

    /// The transposed convolution, `output = convolutionᵀ(input) + bias`, then `max(output, 0)` when `relu`.
    func conv2dTranspose(_ shape: TransposedConvShape, input: Buffer, weight: Buffer, bias: Buffer?, relu: Bool, output: Buffer) throws

    /// `conv2d` then max pooling of its output (`pool.window` over the convolution's output) into
    /// `output` and `argmax`, where a backend can do so without storing the convolution's output.
    func conv2dMaxPool(_ shape: ConvShape, pool: PoolShape, input: Buffer, weight: Buffer, bias: Buffer?, relu: Bool,
                       output: Buffer, argmax: Buffer) throws

    // Pooling
    /// Max pooling also writes `argmax`: the Int32 index (row * width + column) of each maximum.
    func pool2d(_ shape: PoolShape, mode: PoolMode, input: Buffer, output: Buffer, argmax: Buffer?) throws
    func pool2dBackward(_ shape: PoolShape, mode: PoolMode, gradOutput: Buffer, argmax: Buffer?, gradInput: Buffer) throws

    // Elementwise
    func unary(_ op: UnaryOp, _ input: Buffer, into output: Buffer, count: Int) throws
    /// `gradInput = gradOutput * op'(input)`; `output` is the forward result (sigmoid and tanh use it).
    func unaryBackward(_ op: UnaryOp, input: Buffer, output: Buffer, gradOutput: Buffer, gradInput: Buffer, count: Int) throws
    /// NumPy-broadcasting `output = a ∘ b`.
    func binary(_ op: BinaryOp, _ a: Buffer, shape aShape: [Int], _ b: Buffer, shape bShape: [Int],
                into output: Buffer, shape outputShape: [Int]) throws
    /// `output = scale * input + shift`.
    func affine(_ input: Buffer, scale: Float, shift: Float, into output: Buffer, count: Int) throws
    /// `output[o, c, i] = input[o, c, i] + bias[c]`.
    func addBias(_ input: Buffer, _ bias: Buffer, view: AxisView, into output: Buffer) throws
    /// Reduces along the view's axis into `view.outer * view.inner` elements.
    func reduce(_ op: ReduceOp, _ input: Buffer, view: AxisView, into output: Buffer) throws
    /// Int32 index of the first maximum along the view's axis.
    func argmax(_ input: Buffer, view: AxisView, into output: Buffer) throws
    /// `output = input * mask / (1 - rate)` with `mask = uniform(seed, offset + i) >= rate` (Philox-4x32-10),
    /// the same mask on every device. The backward pass is the same call on the gradient.
    func dropout(_ input: Buffer, rate: Float, seed: UInt64, offset: UInt64, into output: Buffer, count: Int) throws
    /// Fills `count` elements with draws from `distribution`, element `i` from Philox(seed, offset + i).
    func fillRandom(_ buffer: Buffer, distribution: RandomDistribution, seed: UInt64, offset: UInt64, count: Int) throws

    // Recurrent cells
    /// Step `step.time`: from the pre-activations `gates[t]` (input projection + bias, plus h[t]·U for
    /// SimpleRNN and LSTM; GRU's h[t]·U is in `recurrent[t]`, which gets its bias added), writes h[t + 1]
    /// (and c[t + 1]), keeping the state where `mask[t]` is 0; the gate activations replace the
    /// pre-activations for the backward pass.
    func recurrentStep(_ step: RecurrentStep, _ sequence: RecurrentSequence) throws
    /// The backward of step `step.time`, after the forward pass of the whole sequence: reads
    /// `gradients.hidden` (+ `output[t]`) and `cell`, the gradients reaching h[t + 1] and c[t + 1];
    /// writes the pre-activation gradients of step t, and leaves in `hidden` and `cell` the gradients
    /// reaching h[t] and c[t], except h[t]'s through U (the caller adds `gates[t]·Uᵀ`).
    func recurrentStepBackward(_ step: RecurrentStep, _ sequence: RecurrentSequence, gradients: RecurrentGradients) throws
    /// The whole time loop (`step.time` is not read): for t in 0..<length, h[t]·U (U = `recurrentKernel`
    /// `[units, width]`; h from `dropped` under recurrent dropout) is added to `gates[t]` (a GRU's is
    /// written to `recurrent[t]`), then `recurrentStep` at t.
    func recurrentForward(_ step: RecurrentStep, _ sequence: RecurrentSequence, recurrentKernel: Buffer) throws
    /// The backward time loop, after `recurrentForward`: for t from length − 1 down to 0,
    /// `recurrentStepBackward` at t, then the step's (GRU: recurrent) pre-activation gradients times Uᵀ
    /// are added to `gradients.hidden`, or written to `through` under recurrent dropout.
    func recurrentBackward(_ step: RecurrentStep, _ sequence: RecurrentSequence, recurrentKernel: Buffer, gradients: RecurrentGradients) throws

    // Softmax family (along the last axis of `[rows, columns]`)
    func softmax(_ input: Buffer, rows: Int, columns: Int, log: Bool, into output: Buffer) throws
    func softmaxBackward(output: Buffer, gradOutput: Buffer, rows: Int, columns: Int, log: Bool, gradInput: Buffer) throws
    /// Mean cross-entropy of `softmax(logits)` against `targets` into `loss[0]`, and, when asked,
    /// its gradient with respect to the logits.
    func softmaxCrossEntropy(logits: Buffer, targets: Targets, rows: Int, columns: Int,
                             loss: Buffer, gradLogits: Buffer?) throws

    /// 1 for each row whose target class (a label, or the argmax of a target row) is among the `k`
    /// largest scores (ties count as in), else 0: accuracy and top-k accuracy.
    func topKHits(scores: Buffer, targets: Targets, rows: Int, columns: Int, k: Int, into output: Buffer) throws

    // Batch normalization along the view's axis (channels)
    /// Normalises with batch statistics, saves mean and 1/sqrt(var + eps) for the backward pass and
    /// moves the running averages: `running = momentum * running + (1 - momentum) * batch`.
    func batchNormTraining(_ input: Buffer, view: AxisView, gamma: Buffer, beta: Buffer,
                           runningMean: Buffer, runningVariance: Buffer, momentum: Float, epsilon: Float,
                           savedMean: Buffer, savedInvStd: Buffer, output: Buffer) throws
    func batchNormInference(_ input: Buffer, view: AxisView, gamma: Buffer, beta: Buffer,
                            runningMean: Buffer, runningVariance: Buffer, epsilon: Float, output: Buffer) throws
    func batchNormBackward(_ input: Buffer, gradOutput: Buffer, view: AxisView, gamma: Buffer,
                           savedMean: Buffer, savedInvStd: Buffer,
                           gradInput: Buffer, gradGamma: Buffer, gradBeta: Buffer) throws

    // Optimizers
    /// One optimizer step over every target at once (a multi-tensor update: one launch, or one
    /// parallel region, for many weights): each parameter moves in place from its gradient and slots.
    func applyUpdate(_ update: Update, to targets: [UpdateTarget]) throws
}

public extension Device {
    /// Uploads an array into a new buffer.
    func buffer(_ values: [Float]) throws -> Buffer {
        let buffer = try makeBuffer(count: values.count)
        try values.withUnsafeBytes { try write($0, to: buffer, offset: 0) }
        return buffer
    }

    /// Uploads Int32 values (labels) into a new buffer.
    func buffer(ints values: [Int32]) throws -> Buffer {
        let buffer = try makeBuffer(count: values.count)
        try values.withUnsafeBytes { try write($0, to: buffer, offset: 0) }
        return buffer
    }

    /// A buffer of `count` copies of `value`.
    func buffer(repeating value: Float, count: Int) throws -> Buffer {
        let buffer = try makeBuffer(count: count)
        try fill(buffer, with: value, offset: 0, count: count)
        return buffer
    }

    /// Downloads the first `count` elements (all by default).
    func read(_ buffer: Buffer, count: Int? = nil) throws -> [Float] {
        let n = count ?? buffer.count
        try require(buffer, n, "read")
        return try [Float](unsafeUninitializedCapacity: n) { values, initialized in
            try read(buffer, offset: 0, into: UnsafeMutableRawBufferPointer(values))
            initialized = n
        }
    }

    func readInts(_ buffer: Buffer, count: Int? = nil) throws -> [Int32] {
        try read(buffer, count: count).map { $0.bitPattern }.map { Int32(bitPattern: $0) }
    }

    func copy(_ source: Buffer, offset sourceOffset: Int = 0, to destination: Buffer, at destinationOffset: Int = 0,
              count: Int) throws {
        try copy2D(rows: 1, columns: count, from: source, offset: sourceOffset, stride: count,
                   to: destination, offset: destinationOffset, stride: count)
    }
}

extension Device {
    /// `conv2dMaxPool` as its two ops, through a buffer for the convolution's output.
    public func conv2dMaxPool(_ shape: ConvShape, pool: PoolShape, input: Buffer, weight: Buffer, bias: Buffer?, relu: Bool,
                              output: Buffer, argmax: Buffer) throws {
        try conv2dThenMaxPool(shape, pool: pool, input: input, weight: weight, bias: bias, relu: relu, output: output, argmax: argmax)
    }

    /// `recurrentForward` as a GEMM and a cell kernel per step, all enqueued with no host round-trip.
    public func recurrentForward(_ step: RecurrentStep, _ s: RecurrentSequence, recurrentKernel: Buffer) throws {
        for t in 0..<step.length {
            var at = step
            at.time = t
            var projection = Gemm(m: step.batch, n: step.width, k: step.units, beta: step.cell == .gru ? 0 : 1)
            (projection.offsetA, projection.offsetC) = (at.stateOffset, at.gatesOffset)
            try gemm(projection, a: s.dropped ?? s.hidden, b: recurrentKernel, c: s.recurrent ?? s.gates)
            try recurrentStep(at, s)
        }
    }

    /// `recurrentBackward` as a cell kernel and a GEMM per step, last step first.
    public func recurrentBackward(_ step: RecurrentStep, _ s: RecurrentSequence, recurrentKernel: Buffer, gradients g: RecurrentGradients) throws {
        for t in (0..<step.length).reversed() {
            var at = step
            at.time = t
            try recurrentStepBackward(at, s, gradients: g)
            var projection = Gemm(m: step.batch, n: step.units, k: step.width, transposeB: true, beta: g.through == nil ? 1 : 0)
            projection.offsetA = at.gatesOffset
            try gemm(projection, a: g.recurrent ?? g.gates, b: recurrentKernel, c: g.through ?? g.hidden)
        }
    }

    /// `conv2dTranspose` as the convolution's input gradient, a bias and a ReLU, in place.
    public func conv2dTranspose(_ shape: TransposedConvShape, input: Buffer, weight: Buffer, bias: Buffer?, relu: Bool, output: Buffer) throws {
        let s = shape.convolution
        try conv2dBackwardData(s, gradOutput: input, reluOutput: nil, weight: weight, gradInput: output)
        if let bias {
            try addBias(output, bias, view: AxisView(outer: s.inputCount / s.inChannels, axis: s.inChannels), into: output)
        }
        if relu { try unary(.relu, output, into: output, count: s.inputCount) }
    }

    func conv2dThenMaxPool(_ shape: ConvShape, pool: PoolShape, input: Buffer, weight: Buffer, bias: Buffer?, relu: Bool,
                           output: Buffer, argmax: Buffer) throws {
        let convolved = try makeBuffer(count: shape.outputCount)
        try conv2d(shape, input: input, weight: weight, bias: bias, relu: relu, output: convolved)
        try pool2d(pool, mode: .max, input: convolved, output: output, argmax: argmax)
    }

    /// `gradOutput` where `reluOutput` > 0, else 0, in a new buffer (backward of a fused ReLU).
    func throughReLU(_ gradOutput: Buffer, _ reluOutput: Buffer, count: Int) throws -> Buffer {
        let masked = try makeBuffer(count: count)
        try unaryBackward(.relu, input: reluOutput, output: reluOutput, gradOutput: gradOutput, gradInput: masked, count: count)
        return masked
    }
}
