import Foundation
import Testing
@testable import Kiln

/// Every file reader on damaged copies of valid files, in worker processes: no signal, no hang, and
/// padding-only changes read the same. `Scripts/fuzz.sh` runs the long version.
@Suite("Fuzzing") struct FuzzTests {
    @Test func everyReaderSurvivesDamagedFiles() throws {
        let seed = Random.seed % 1_000_000
        let (status, output) = try DeviceTests.run(["fuzz", "--cases", "300", "--seed", String(seed), "--fixtures", fixtures.path],
                                                   environment: [:])
        print(output)
        #expect(status == 0, "kiln fuzz --seed \(seed): \(output)")
        for format in FuzzFormat.allCases { #expect(output.contains("\n\(format.rawValue) "), "\(format.rawValue) ran") }
    }

    /// docs/reliability.md's command, as written, from the package folder.
    @Test func documentedRun() throws {
        let docs = Documentation.readme.deletingLastPathComponent().appendingPathComponent("docs/reliability.md")
        let command = try #require(try Documentation.shellBlocks(docs).flatMap { $0 }.first { $0.starts(with: ["kiln", "fuzz"]) })
        let (status, output) = try Documentation.kiln(Array(command.dropFirst()), in: docs.deletingLastPathComponent().deletingLastPathComponent())
        #expect(status == 0 && output.contains("jpeg "), "\(command.joined(separator: " ")): \(output)")
    }

    /// Damaged files the long runs found crashing readers (libhdf5 on variable-length string
    /// attributes; ONNX pooling attributes of the wrong length), replayed by (format, seed, case).
    @Test(arguments: [("h5", 2, [81, 1961, 2080, 2551, 2951]), ("onnx", 3, [4493, 5839, 5874])])
    func casesLongRunsFound(_ format: String, _ seed: Int, _ cases: [Int]) throws {
        for index in cases {
            let (status, output) = try DeviceTests.run(["fuzz", "--formats", format, "--seed", String(seed), "--from", String(index), "--cases", "1",
                                                        "--fixtures", fixtures.path], environment: [:])
            #expect(status == 0, "\(format) seed \(seed) case \(index): \(output)")
        }
    }

    /// Each mutation kind happens, and the same (seed, case) damages a file the same way.
    @Test func mutationsAreDeterministicAndVaried() throws {
        let seed = try FuzzFormat.npy.seed(fixtures: fixtures)
        let kinds = Set((0..<200).map { Mutation(of: seed, format: .npy, seed: 1, case: $0).kind })
        #expect(kinds == [.flip, .overwrite, .truncate, .insert, .cut, .integer, .number, .padding])
        #expect(Mutation(of: seed, format: .npy, seed: 1, case: 7).bytes == Mutation(of: seed, format: .npy, seed: 1, case: 7).bytes)
        #expect((0..<200).filter { Mutation(of: seed, format: .npy, seed: 1, case: $0).bytes != seed }.count > 180)
    }
}
