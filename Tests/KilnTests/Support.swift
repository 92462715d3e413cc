import Foundation
import Testing
@testable import Kiln

/// A device under test, named in test output.
struct Backend: Sendable, CustomTestStringConvertible {
    let device: any Device
    var testDescription: String { device.info.backend == "cpu" ? "cpu" : "opencl(\(device.info.name))" }

    /// The CPU backend and every OpenCL device present. When OpenCL has none, the reason is printed
    /// once and the OpenCL cases are absent (on our machines PoCL is installed, so they run).
    static let all: [Backend] = {
        let (devices, problem) = Devices.available()
        if let problem { print("note: OpenCL tests skipped: \(problem)") }
        return devices.map(Backend.init)
    }()
}

/// Fresh random inputs each run; the seed is printed so that a failure can be replayed
/// with KILN_TEST_SEED.
struct Random {
    static let seed: UInt64 = {
        let seed = ProcessInfo.processInfo.environment["KILN_TEST_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64.max)
        print("note: test inputs drawn with KILN_TEST_SEED=\(seed)")
        return seed
    }()
    private var state: UInt64

    init(_ salt: String) { state = Random.seed ^ salt.utf8.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 } }

    mutating func next() -> UInt64 {  // splitmix64
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func uniform(_ range: ClosedRange<Float> = -1...1) -> Float {
        range.lowerBound + (range.upperBound - range.lowerBound) * Float(next() >> 40) / Float(1 << 24)
    }

    mutating func floats(_ count: Int, _ range: ClosedRange<Float> = -1...1) -> [Float] {
        (0..<count).map { _ in uniform(range) }
    }

    mutating func int(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}

/// Relative error of `actual` against a float64 reference (`Conformance.relativeError`: RMS-relative,
/// NaN or a count mismatch infinite).
func relativeError(_ actual: [Float], _ reference: [Double]) -> Double { Conformance.relativeError(actual, reference) }

/// Float32 kernels against float64 references: far under this in practice.
let tolerance = 1e-4

func expectClose(_ actual: [Float], _ reference: [Double], _ what: String, tolerance: Double = tolerance,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    let error = relativeError(actual, reference)
    #expect(error <= tolerance, "\(what): relative error \(error) exceeds \(tolerance)", sourceLocation: sourceLocation)
}

/// Checks a backward kernel by central finite differences of the forward one: for random directions
/// `v`, `(L(x + εv) − L(x − εv)) / 2ε ≈ ⟨gradient, v⟩` with `L(x) = ⟨forward(x), weights⟩`. The error
/// is measured against the L2 norm of the terms `gradient[i]·v[i]`, which float32 rounding noise in
/// `L` scales with, so a sum that happens to cancel does not make the check flaky, and against the
/// rounding of `L` itself seen through the step (a few ulps of `magnitude` / ε), below which slopes cannot
/// be told apart. `magnitude` is the size of the terms `L` sums (Σ|termᵢ|), |L| when not given: a sum
/// that cancels rounds at the size of its terms, not its own.
func expectGradient(at x: [Float], gradient: [Float], epsilon: Float = 1e-2, tolerance: Double = 2e-2, magnitude: Double? = nil,
                    _ what: String, sourceLocation: SourceLocation = #_sourceLocation, loss: ([Float]) throws -> Double) throws {
    var random = Random("fd-\(what)")
    let floor = (try magnitude ?? abs(loss(x))) * 1e-6 / Double(epsilon)
    for _ in 0..<3 {
        let v = random.floats(x.count)
        let plus = try loss(zip(x, v).map { $0 + epsilon * $1 })
        let minus = try loss(zip(x, v).map { $0 - epsilon * $1 })
        let numeric = (plus - minus) / (2 * Double(epsilon))
        let analytic = dot(gradient, v)
        let terms = zip(gradient, v).reduce(0.0) { $0 + pow(Double($1.0) * Double($1.1), 2) }.squareRoot()
        let scale = max(abs(numeric), abs(analytic), terms, floor, 1e-6)
        #expect(abs(numeric - analytic) / scale <= tolerance,
                "\(what): finite difference \(numeric) vs backward \(analytic)", sourceLocation: sourceLocation)
    }
}

func dot(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) } }

extension Device {
    /// Runs `body` with fresh output buffers and reads them back.
    func output(_ count: Int, _ body: (Buffer) throws -> Void) throws -> [Float] {
        let buffer = try makeBuffer(count: count)
        try body(buffer)
        return try read(buffer)
    }
}
