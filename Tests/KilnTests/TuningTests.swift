import Foundation
import Testing
@testable import Kiln

/// `kiln tune` and the convolution tuner's disk cache.
@Suite("Tuning") struct TuningTests {
    /// README's command: times every pass of the workshop CNN's convolutions, prints each candidate,
    /// keeps the choices in the cache folder, and survives a cache file it cannot read.
    @Test(arguments: Backend.all.compactMap { $0.device as? OpenCLDevice })
    func tuneCommand(_ device: OpenCLDevice) throws {
        let cache = try temporaryFolder()
        let readme = try #require(try Documentation.shellBlocks(Documentation.readme).flatMap { $0 }.first { $0.starts(with: ["kiln", "tune"]) })
        let (status, output) = try DeviceTests.run(Array(readme.dropFirst()), environment: ["KILN_CACHE_DIR": cache.path])
        #expect(status == 0, "\(output)")
        for batch in [32, 128] {
            for pass in ["forward + max pool", "input gradient", "weight gradient"] {
                let variant = pass == "forward + max pool" ? ", max pool 2×2 stride 2×2" : ""
                #expect(output.contains("\(pass), batch \(batch), 13×13×32 → 11×11×32, kernel 3×3, stride 1×1, pad 0,0\(variant): "), "\(output)")
            }
        }
        #expect(!output.contains("input gradient, batch 32, 28×28×1"), "the first layer needs no input gradient: \(output)")
        for algorithm in device.convolutionAlgorithms { #expect(output.contains("×  \(algorithm)\n"), "\(algorithm): \(output)") }

        let files = try FileManager.default.contentsOfDirectory(at: cache.appendingPathComponent("kernels"), includingPropertiesForKeys: nil)
            .filter { $0.lastPathComponent.hasPrefix("conv-tuning-") }
        let file = try #require(files.first)
        let stored = try JSONDecoder().decode([String: String].self, from: Data(contentsOf: file))
        #expect(stored.count == 16 && stored.values.allSatisfy(device.convolutionAlgorithms.contains), "\(stored)")

        try Data("{ not json".utf8).write(to: file)
        let again = try DeviceTests.run(["tune", "--device", "opencl", "--batch-sizes", "3"], environment: ["KILN_CACHE_DIR": cache.path])
        #expect(again.status == 0, "\(again.output)")
        #expect(try JSONDecoder().decode([String: String].self, from: Data(contentsOf: file)).count == 8)
    }

    @Test func cpuNeedsNoTuning() throws {
        let (status, output) = try DeviceTests.run(["tune", "--device", "cpu"], environment: [:])
        #expect(status == 0 && output.contains("need no tuning"), "\(output)")
    }
}
