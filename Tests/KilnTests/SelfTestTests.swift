import Foundation
import Testing
@testable import Kiln

/// `kiln selftest`: the conformance table on every backend (the OpenCL device against the CPU
/// backend, the CPU backend against float64 references).
@Suite("Self test") struct SelfTestTests {
    @Test(arguments: Backend.all)
    func everyOpPasses(_ backend: Backend) throws {
        let results = try Conformance.check(backend.device, seed: Random.seed)
        for result in results { #expect(result.passed, "\(result.name) on \(backend) against \(result.against): \(result.error)") }
        if backend.device !== CPUDevice.shared {
            #expect(results.allSatisfy { $0.against == "cpu" })
            // Each tiling of the implicit-GEMM kernels and the im2col path, on every dense convolution row.
            let variants = results.filter { $0.name.hasPrefix("conv2d") && $0.name.hasSuffix("]") }
            #expect(variants.count == 5 * ((backend.device as? OpenCLDevice)?.convolutionAlgorithms.count ?? 0) && variants.count >= 6)
        }
        // The CPU backend is held to float64 where a reference exists: the heavy ops all have one.
        let referenced = Set(try Conformance.check(CPUDevice.shared, seed: Random.seed).filter { $0.against == "float64" }.map(\.name))
        for name in ["gemm A·B + 0.5C", "conv2d + bias + relu", "conv2d backward data", "conv2d backward weights and bias", "conv2dTranspose",
                     "softmaxCrossEntropy (labels)", "reduce sum", "batchNormInference", "scatterAddRows"] {
            #expect(referenced.contains(name), "\(name)")
        }
    }

    /// Every elementwise op code, binary op and reduction has a row, forward and (unary) backward.
    @Test func tableCoversTheOps() {
        let names = Set(Conformance.rows.map(\.name))
        let unary = Conformance.rows.filter { $0.name.hasPrefix("unary ") && !$0.name.hasSuffix(" backward") }
        #expect(unary.count == 13, "UnaryOp has 13 codes (0…12)")
        for row in unary { #expect(names.contains(row.name + " backward")) }
        for op in BinaryOp.allCases { #expect(names.contains("binary \(op) (broadcast)")) }
        for op in ReduceOp.allCases { #expect(names.contains("reduce \(op)")) }
    }

    /// Errors count NaN and length mismatches as failures.
    @Test func errorsCatchNaNAndMismatch() {
        #expect(Conformance.relativeError([1, 2], [1, 2]) == 0)
        #expect(Conformance.relativeError([1, .nan], [1, 2]) == .infinity)
        #expect(Conformance.relativeError([1], [1, 2]) == .infinity)
        #expect(Conformance.relativeError([1, 2.001], [1, 2]) > 1e-4)
    }

    /// The command: a row per op, exit 0, on the CPU backend and as README writes it (on OpenCL);
    /// README's row count is the CPU backend's.
    @Test func command() throws {
        let readme = try #require(try Documentation.shellBlocks(Documentation.readme).flatMap { $0 }.first { $0.starts(with: ["kiln", "selftest"]) })
        for arguments in [["selftest", "--device", "cpu", "--quick"]] + (Backend.all.count > 1 ? [Array(readme.dropFirst())] : []) {
            let (status, output) = try DeviceTests.run(arguments, environment: [:])
            let count = try Conformance.check(arguments.contains("cpu") ? CPUDevice.shared : Devices.select(arguments.last!), seed: 1).count
            #expect(status == 0 && output.contains("All \(count) ops pass."), "\(arguments) (\(count) rows): \(output)")
        }
        let rows = try Conformance.check(CPUDevice.shared, seed: 1).count
        let stated = try String(contentsOf: Documentation.readme, encoding: .utf8).replacingOccurrences(of: "\n", with: " ").contains("(\(rows) rows on the CPU backend")
        #expect(stated, "README states the selftest's \(rows) rows on the CPU backend")
    }
}
