import Foundation

/// A seeded generator (SplitMix64) for weight initialisation and dropout seeds.
public struct RandomGenerator: Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Standard normal (Box–Muller).
    public mutating func normal() -> Double {
        let u = max(uniform(), 1e-300), v = uniform()
        return (-2 * Foundation.log(u)).squareRoot() * cos(2 * .pi * v)
    }

    /// Normal, redrawn until within two standard deviations (Keras's truncated normal).
    public mutating func truncatedNormal() -> Double {
        while true { let x = normal(); if Swift.abs(x) <= 2 { return x } }
    }

    /// `0..<count` in a random order (Fisher–Yates).
    public mutating func permutation(_ count: Int) -> [Int] {
        var order = Array(0..<count)
        for i in order.indices.reversed() { order.swapAt(i, Int(next() % UInt64(i + 1))) }
        return order
    }
}

/// Seeds the generator that layers called eagerly (`Dense(4)(x)`) draw their initial weights from,
/// as `torch.manual_seed` / `keras.utils.set_random_seed`. Models placed with `place(on:seed:)`
/// use their own seed.
public func seed(_ value: UInt64) { RandomGenerator.shared.withLock { $0 = RandomGenerator(seed: value) } }

extension RandomGenerator {
    /// The process-wide generator `seed(_:)` sets.
    static let shared = Shared()

    final class Shared: @unchecked Sendable {
        private let lock = Lock()
        private var generator = RandomGenerator(seed: 0)
        func withLock<T>(_ body: (inout RandomGenerator) throws -> T) rethrows -> T { try lock.withLock { try body(&generator) } }
    }
}

/// How a weight starts. Fan-in/fan-out follow Keras: for an HWIO kernel, fan-in = H·W·I and
/// fan-out = H·W·O; for a Dense kernel (in, out), the two sides.
public enum Initializer: Hashable, Sendable {
    case zeros, ones
    case constant(Float)
    case glorotUniform, glorotNormal, heUniform, heNormal
    case randomUniform(min: Float, max: Float)
    case randomNormal(stddev: Float)
    /// A random matrix with orthonormal rows or columns (Keras's recurrent kernels), times `gain`.
    case orthogonal(gain: Float = 1)
    /// Zeros, with ones for the forget gate of an LSTM of `units` (Keras's `unit_forget_bias`).
    case forgetGateOnes(units: Int)
    /// Keras's `VarianceScaling` (what the Glorot and He initializers are cases of): variance
    /// `scale / n` with n the fan-in, fan-out or their mean, drawn from `distribution`.
    case varianceScaling(scale: Float, fan: Fan, distribution: Distribution)

    public enum Fan: String, Hashable, Sendable { case fanIn = "fan_in", fanOut = "fan_out", fanAverage = "fan_avg" }
    public enum Distribution: String, Hashable, Sendable { case truncatedNormal = "truncated_normal", normal = "untruncated_normal", uniform }

    /// Keras's name for it (`glorot_uniform`, `he_normal`, …).
    public init?(kerasName: String) {
        switch kerasName {
        case "zeros", "Zeros": self = .zeros
        case "ones", "Ones": self = .ones
        case "glorot_uniform", "GlorotUniform": self = .glorotUniform
        case "glorot_normal", "GlorotNormal": self = .glorotNormal
        case "he_uniform", "HeUniform": self = .heUniform
        case "he_normal", "HeNormal": self = .heNormal
        case "orthogonal", "Orthogonal": self = .orthogonal()
        case "uniform", "random_uniform", "RandomUniform": self = .randomUniform(min: -0.05, max: 0.05)
        case "variance_scaling", "VarianceScaling": self = .varianceScaling(scale: 1, fan: .fanIn, distribution: .truncatedNormal)
        case "constant", "Constant": self = .constant(0)
        default: return nil
        }
    }

    func values(shape: [Int], random: inout RandomGenerator) -> [Float] {
        let count = shape.reduce(1, *)
        let receptive = shape.count > 2 ? shape.dropLast(2).reduce(1, *) : 1
        let fanIn = Double(shape.count >= 2 ? shape[shape.count - 2] * receptive : count)
        let fanOut = Double(shape.count >= 2 ? shape[shape.count - 1] * receptive : count)
        func uniform(_ limit: Double) -> [Float] { (0..<count).map { _ in Float((random.uniform() * 2 - 1) * limit) } }
        // Keras scales the truncated normal's stddev by 1/0.8796 so that the truncated spread matches.
        func truncated(_ stddev: Double) -> [Float] { (0..<count).map { _ in Float(random.truncatedNormal() * stddev / 0.879_625_661_034_239_8) } }
        switch self {
        case .zeros: return [Float](repeating: 0, count: count)
        case .ones: return [Float](repeating: 1, count: count)
        case .constant(let value): return [Float](repeating: value, count: count)
        case .glorotUniform: return uniform((6 / (fanIn + fanOut)).squareRoot())
        case .glorotNormal: return truncated((2 / (fanIn + fanOut)).squareRoot())
        case .heUniform: return uniform((6 / fanIn).squareRoot())
        case .heNormal: return truncated((2 / fanIn).squareRoot())
        case .randomUniform(let low, let high): return (0..<count).map { _ in low + (high - low) * Float(random.uniform()) }
        case .randomNormal(let stddev): return (0..<count).map { _ in Float(random.normal()) * stddev }
        case .orthogonal(let gain): return Self.orthogonal(rows: count / max(shape.last ?? 1, 1), columns: shape.last ?? 1, &random).map { $0 * gain }
        case .forgetGateOnes(let units): return (0..<count).map { (units..<2 * units).contains($0) ? 1 : 0 }
        case .varianceScaling(let scale, let fan, let distribution):
            let variance = Double(scale) / max(1, fan == .fanIn ? fanIn : fan == .fanOut ? fanOut : (fanIn + fanOut) / 2)
            switch distribution {
            case .truncatedNormal: return truncated(variance.squareRoot())
            case .normal: return (0..<count).map { _ in Float(random.normal() * variance.squareRoot()) }
            case .uniform: return uniform((3 * variance).squareRoot())
            }
        }
    }

    /// Keras's orthogonal matrix: the Q of a normal matrix with the longer side first (by modified
    /// Gram–Schmidt, so R's diagonal is positive), transposed when there are fewer rows than columns.
    private static func orthogonal(rows: Int, columns: Int, _ random: inout RandomGenerator) -> [Float] {
        let (long, short) = (max(rows, columns), min(rows, columns))
        var q = (0..<long * short).map { _ in random.normal() }  // column-major: column c at c * long
        for c in 0..<short {
            for p in 0..<c {
                let dot = (0..<long).reduce(0.0) { $0 + q[p * long + $1] * q[c * long + $1] }
                for i in 0..<long { q[c * long + i] -= dot * q[p * long + i] }
            }
            let norm = (0..<long).reduce(0.0) { $0 + q[c * long + $1] * q[c * long + $1] }.squareRoot()
            for i in 0..<long { q[c * long + i] /= max(norm, 1e-12) }
        }
        // Element (r, c) of the result: Q[r][c] when rows ≥ columns, else Q[c][r].
        return (0..<rows * columns).map { index in
            let (r, c) = (index / columns, index % columns)
            return Float(rows >= columns ? q[c * long + r] : q[r * long + c])
        }
    }
}

/// A weight penalty added to the loss (Keras `kernel_regularizer`).
public enum Regularizer: Hashable, Sendable {
    /// `factor · Σ|w|`
    case l1(Float = 0.01)
    /// `factor · Σw²`
    case l2(Float = 0.01)
    case l1l2(l1: Float = 0.01, l2: Float = 0.01)

    func penalty(_ w: Tensor) throws -> Tensor {
        switch self {
        case .l1(let factor): try w.abs().sum() * factor
        case .l2(let factor): try w.square().sum() * factor
        case .l1l2(let a, let b): try w.abs().sum() * a + w.square().sum() * b
        }
    }
}
