/// Element type of a tensor: float32 values, or int32 class labels.
public enum DType: String, Sendable { case float32, int32 }

/// An n-dimensional array that lives on a device and records the ops that made it, so that
/// `backward()` from a scalar can compute gradients (reverse-mode automatic differentiation).
///
/// Images are NHWC. Reshaping shares the buffer; every other op writes a new one from the device's
/// pool. Nothing is copied to the host until `toArray()` or `item()`.
public final class Tensor: @unchecked Sendable, CustomStringConvertible {
    public let shape: [Int]
    public let dtype: DType
    public let device: any Device
    public let buffer: Buffer
    /// Whether gradients flow to this tensor. Trainable parameters set it; op results inherit it.
    public var requiresGrad: Bool
    /// The accumulated gradient of a leaf tensor after `backward()`.
    public internal(set) var grad: Tensor?
    /// How this tensor was computed, when recorded.
    var node: Node?
    /// The logits a softmax or sigmoid output came from, so that losses with `fromLogits: false`
    /// can use the stable fused form (as Keras does).
    var logits: (tensor: Tensor, activation: UnaryOp?)?

    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }

    init(shape: [Int], dtype: DType = .float32, buffer: Buffer, device: any Device, requiresGrad: Bool = false) {
        (self.shape, self.dtype, self.buffer, self.device, self.requiresGrad) = (shape, dtype, buffer, device, requiresGrad)
    }

    /// A tensor holding `values` (row-major) on `device`.
    public convenience init(_ values: [Float], shape: [Int], on device: any Device = CPUDevice.shared) throws {
        try Self.checkCount(values.count, shape)
        self.init(shape: shape, buffer: try device.buffer(values), device: device)
    }

    /// An int32 tensor of class labels.
    public convenience init(labels: [Int32], shape: [Int]? = nil, on device: any Device = CPUDevice.shared) throws {
        let shape = shape ?? [labels.count]
        try Self.checkCount(labels.count, shape)
        self.init(shape: shape, dtype: .int32, buffer: try device.buffer(ints: labels), device: device)
    }

    public static func full(_ value: Float, shape: [Int], on device: any Device = CPUDevice.shared) throws -> Tensor {
        try checkCount(nil, shape)
        return Tensor(shape: shape, buffer: try device.buffer(repeating: value, count: shape.reduce(1, *)), device: device)
    }

    public static func zeros(_ shape: [Int], on device: any Device = CPUDevice.shared) throws -> Tensor {
        try full(0, shape: shape, on: device)
    }

    public static func ones(_ shape: [Int], on device: any Device = CPUDevice.shared) throws -> Tensor {
        try full(1, shape: shape, on: device)
    }

    /// Zeros (or ones) of `other`'s shape on its device, as `torch.zeros_like`.
    public static func zeros(like other: Tensor) throws -> Tensor { try zeros(other.shape, on: other.device) }
    public static func ones(like other: Tensor) throws -> Tensor { try ones(other.shape, on: other.device) }

    /// `0, 1, …` below `end`, as `torch.arange(end)`.
    public static func arange(_ end: Float, on device: any Device = CPUDevice.shared) throws -> Tensor {
        try arange(0, end, step: 1, on: device)
    }

    /// `start, start + step, …` below `end` (above it for a negative step), as `torch.arange`.
    public static func arange(_ start: Float, _ end: Float, step: Float = 1, on device: any Device = CPUDevice.shared) throws -> Tensor {
        guard step != 0, step.isFinite, start.isFinite, end.isFinite else { throw TensorError.shape("arange: step \(step) from \(start) to \(end)") }
        let count = max(0, Int(((end - start) / step).rounded(.up)))
        try Memory.require(count, for: "arange(\(start), \(end), step: \(step))")
        return try Tensor((0..<count).map { start + Float($0) * step }, shape: [count], on: device)
    }

    /// The `n`×`n` identity matrix, as `torch.eye`.
    public static func eye(_ n: Int, on device: any Device = CPUDevice.shared) throws -> Tensor {
        guard let count = Memory.count([n, n]) else { throw TensorError.shape("eye: \(n) is not a size") }
        try Memory.require(count, for: "eye(\(n))")
        return try Tensor((0..<count).map { $0 / n == $0 % n ? 1 : 0 }, shape: [n, n], on: device)
    }

    static func checkCount(_ count: Int?, _ shape: [Int]) throws {
        guard shape.allSatisfy({ $0 > 0 }) else { throw TensorError.shape("tensor shape \(shape) has a non-positive dimension") }
        if let count, count != shape.reduce(1, *) {
            throw TensorError.shape("\(count) values do not fill shape \(shape) (\(shape.reduce(1, *)) elements)")
        }
    }

    /// The values, downloaded from the device.
    public func toArray() throws -> [Float] {
        guard dtype == .float32 else { throw TensorError.dtype("toArray() reads float32 tensors; use toLabels() for int32") }
        return try device.read(buffer, count: count)
    }

    public func toLabels() throws -> [Int32] {
        guard dtype == .int32 else { throw TensorError.dtype("toLabels() reads int32 tensors; use toArray() for float32") }
        return try device.readInts(buffer, count: count)
    }

    /// The single value of a one-element tensor.
    public func item() throws -> Float {
        guard count == 1 else { throw TensorError.shape("item() needs a one-element tensor, got shape \(shape)") }
        return try toArray()[0]
    }

    /// The tensor on `device` (itself when it is there already); gradients flow back to this one.
    public func to(_ device: any Device) throws -> Tensor {
        if device === self.device { return self }
        let moved = Tensor(shape: shape, dtype: dtype, buffer: try device.makeBuffer(count: count), device: device)
        switch dtype {
        case .float32: try toArray().withUnsafeBytes { try device.write($0, to: moved.buffer, offset: 0) }
        case .int32: try toLabels().withUnsafeBytes { try device.write($0, to: moved.buffer, offset: 0) }
        }
        guard GradMode.isEnabled, requiresGrad else { return moved }
        moved.requiresGrad = true
        moved.node = Node(inputs: [self]) { [source = self.device] g in [try g.to(source)] }
        return moved
    }

    /// A copy of the values in a new buffer on the same device (no history).
    public func copy() throws -> Tensor {
        let result = Tensor(shape: shape, dtype: dtype, buffer: try device.makeBuffer(count: count), device: device)
        try device.copy(buffer, to: result.buffer, count: count)
        return result
    }

    /// A tensor that shares this one's values but records no history.
    public func detached() -> Tensor { Tensor(shape: shape, dtype: dtype, buffer: buffer, device: device) }

    public var description: String { "Tensor(\(shape), \(dtype), \(device.info.backend))" }
}

/// Errors from tensor ops and the layers above them.
public enum TensorError: Error, CustomStringConvertible, Equatable {
    case shape(String)
    case dtype(String)
    case device(String)
    case gradient(String)

    public var description: String {
        switch self {
        case .shape(let message), .dtype(let message), .device(let message), .gradient(let message): message
        }
    }
}
