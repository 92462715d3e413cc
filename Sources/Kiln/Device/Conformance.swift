import Foundation

/// Every op of the `Device` protocol, forward and backward, as a row that runs it on random inputs
/// of awkward (odd, non-power-of-two) sizes: what `kiln selftest` checks on a user's own device and
/// driver. A device other than the CPU backend is compared with the CPU backend on the same inputs;
/// the CPU backend with the row's float64 reference where the row has one (the test suite checks
/// the rest against references of their own), else with a second run of itself (determinism).
public enum Conformance {
    /// One op: inputs drawn from a seed, the op run on a device, and its float64 reference.
    public struct Row: Sendable {
        public let name: String
        let inputs: @Sendable (inout RandomGenerator) -> [[Float]]
        let run: @Sendable (any Device, [[Float]]) throws -> [[Float]]
        let reference: (@Sendable ([[Float]]) -> [[Double]])?
        /// Relative error allowed (to the larger of an element and the outputs' RMS).
        let tolerance: Double

        init(_ name: String, tolerance: Double = 1e-4, inputs: @escaping @Sendable (inout RandomGenerator) -> [[Float]],
             run: @escaping @Sendable (any Device, [[Float]]) throws -> [[Float]], reference: (@Sendable ([[Float]]) -> [[Double]])? = nil) {
            (self.name, self.tolerance, self.inputs, self.run, self.reference) = (name, tolerance, inputs, run, reference)
        }
    }

    /// A row's outcome on one device.
    public struct Result: Sendable {
        public let name: String
        /// `cpu`, `float64` or `itself` (determinism).
        public let against: String
        public let error: Double
        public let tolerance: Double
        public let seconds: Double
        public var passed: Bool { error <= tolerance }
    }

    /// Runs every row on `device` with inputs from `seed`; on an OpenCL device the dense convolution
    /// rows (the three passes, the transposed convolution and the fused max pooling) run again under
    /// each algorithm its tuner may pick ("conv2d … [tiled 64×32×16/4×4]"), so a
    /// user's driver is checked on every kernel variant, not only on the ones chosen for these sizes.
    public static func check(_ device: any Device, seed: UInt64) throws -> [Result] {
        var results = try rows.enumerated().map { index, row in try check(row, index, on: device, seed: seed) }
        guard let openCL = device as? OpenCLDevice else { return results }
        for algorithm in openCL.convolutionAlgorithms {
            for (index, row) in rows.enumerated() where row.name.hasPrefix("conv2d") {
                let result = try openCL.forcingConvolution(algorithm) { try check(row, index, on: device, seed: seed) }
                results.append(Result(name: "\(row.name) [\(algorithm)]", against: result.against, error: result.error,
                                      tolerance: result.tolerance, seconds: result.seconds))
            }
        }
        return results
    }

    private static func check(_ row: Row, _ index: Int, on device: any Device, seed: UInt64) throws -> Result {
        let cpu = CPUDevice.shared
        var random = RandomGenerator(seed: seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        let inputs = row.inputs(&random)
        let start = Date()
        let outputs = try row.run(device, inputs)
        let seconds = Date().timeIntervalSince(start)
        let (expected, against): ([[Double]], String)
        if device !== cpu {
            (expected, against) = (try row.run(cpu, inputs).map { $0.map(Double.init) }, "cpu")
        } else if let reference = row.reference {
            (expected, against) = (reference(inputs), "float64")
        } else {
            (expected, against) = (try row.run(cpu, inputs).map { $0.map(Double.init) }, "itself")
        }
        let error = zip(outputs, expected).map { relativeError($0, $1) }.max() ?? 0
        return Result(name: row.name, against: against, error: outputs.count == expected.count ? error : .infinity,
                      tolerance: against == "itself" ? 0 : row.tolerance, seconds: seconds)
    }

    /// Each difference over the larger of the element's magnitude and the reference's RMS (so values
    /// near zero do not inflate it); a count mismatch or NaN is infinite.
    public static func relativeError(_ actual: [Float], _ reference: [Double]) -> Double {
        guard actual.count == reference.count else { return .infinity }
        let rms = (reference.reduce(0) { $0 + $1 * $1 } / Double(max(reference.count, 1))).squareRoot()
        return zip(actual, reference).reduce(0) { worst, pair in
            let difference = abs(Double(pair.0) - pair.1)
            return difference.isNaN ? .infinity : max(worst, difference / max(abs(pair.1), rms, 1e-30))
        }
    }
}
