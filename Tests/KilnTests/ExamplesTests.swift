import Foundation
import Testing
@testable import Kiln

/// The programs in Examples/, built with the package and run briefly here.
@Suite("Examples") struct ExamplesTests {
    /// The 1-D GAN learns the curve: its generated points end far closer to y = x² than they start.
    @Test func gan1DLearnsTheCurve() throws {
        let process = Process()
        process.executableURL = DeviceTests.kiln.deletingLastPathComponent().appendingPathComponent("GAN1D")
        process.arguments = ["2000"]
        process.environment = ProcessInfo.processInfo.environment.merging(["KILN_DEVICE": "cpu"]) { $1 }
        let pipe = Pipe()
        (process.standardOutput, process.standardError) = (pipe, pipe)
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(output)")
        let distances = output.split(separator: "\n").compactMap { line in
            line.range(of: "lie ").flatMap { Float(line[$0.upperBound...].split(separator: " ")[0]) }
        }
        #expect(distances.count == 3, "\(output)")
        #expect((distances.last ?? 1) < (distances.first ?? 0) / 5, "\(output)")
    }
}
