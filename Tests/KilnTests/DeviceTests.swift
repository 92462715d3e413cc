import Foundation
import Testing
@testable import Kiln

@Suite("Devices") struct DeviceTests {
    @Test func selection() throws {
        #expect(try Devices.select("cpu") === CPUDevice.shared)
        let openCL = Devices.available().devices.filter { $0.info.backend == "opencl" }
        let auto = try Devices.select("auto")
        #expect(auto === (openCL.first { $0.info.kind == .gpu } ?? CPUDevice.shared))
        if let first = openCL.first {
            #expect(try Devices.select("opencl") === first)
            #expect(try Devices.select("opencl:0") === first)
            #expect(try Devices.select(String(first.info.name.prefix(6)).uppercased()) === first)
        }
        do {
            _ = try Devices.select("opencl:\(openCL.count)")
            Issue.record("an out-of-range index was accepted")
        } catch let error as DeviceError {
            #expect(error.description.contains("no device matches 'opencl:\(openCL.count)'"))
            #expect(error.description.contains("cpu"))
        }
        #expect(throws: DeviceError.self) { try Devices.select("no-such-device") }
    }

    /// The `kiln` executable built beside the test bundle.
    static var kiln: URL {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("kiln")
        if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.build/debug/kiln").standardized
    }

    /// Runs `kiln` (in `folder`, under `ulimit -v memoryKB` when given); a signal reads as 128 + its number.
    static func run(_ arguments: [String], environment: [String: String], in folder: URL? = nil,
                    memoryKB: Int? = nil, executable: URL = kiln) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", (memoryKB.map { "ulimit -v \($0); " } ?? "") + "exec \"$0\" \"$@\"", executable.path] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if let folder { process.currentDirectoryURL = folder }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus, output)
    }

    @Test func fallsBackToCPUWithoutOpenCL() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-no-icd-\(UUID())")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        let (status, output) = try Self.run(["devices"], environment: ["OCL_ICD_VENDORS": empty.path, "KILN_DEVICE": "auto"])
        #expect(status == 0, "\(output)")
        #expect(output.contains("using the CPU backend"), "\(output)")
        #expect(output.contains("KILN_DEVICE=auto → CPU"), "\(output)")
        #expect(!output.contains("opencl:0"), "\(output)")
    }

    @Test func devicesCommandHonoursKilnDevice() throws {
        let (status, output) = try Self.run(["devices"], environment: ["KILN_DEVICE": "cpu"])
        #expect(status == 0 && output.contains("KILN_DEVICE=cpu → CPU"), "\(output)")
        let (badStatus, badOutput) = try Self.run(["devices"], environment: ["KILN_DEVICE": "opencl:99"])
        #expect(badStatus != 0 && badOutput.contains("no device matches 'opencl:99'"), "\(badOutput)")
    }

    @Test func commandRunsTheOpenBLASKernelsThisCPUCanRun() throws {
        let expected = CPUDevice.betterBLASCore ?? CPUDevice.blasCore
        let (status, output) = try Self.run(["devices"], environment: ["KILN_DEVICE": "cpu"])
        #expect(status == 0 && output.contains("driver OpenBLAS \(expected)"), "\(output)")
        let (chosenStatus, chosen) = try Self.run(["devices"], environment: ["KILN_DEVICE": "cpu", "OPENBLAS_CORETYPE": "Prescott"])
        #expect(chosenStatus == 0 && chosen.contains("driver OpenBLAS Prescott"), "a chosen core type stays: \(chosen)")
    }

    @Test func threadCountFollowsKilnNumThreads() throws {
        for (value, expected) in [("1", "1 thread)"), ("3", "3 threads)")] {
            let (status, output) = try Self.run(["devices"], environment: ["KILN_DEVICE": "cpu", "KILN_NUM_THREADS": value])
            #expect(status == 0 && output.contains("OpenBLAS, \(expected)"), "\(output)")
        }
    }

    @Test(arguments: Backend.all.filter { $0.device is OpenCLDevice })
    func programsAreCachedOnDisk(_ backend: Backend) throws {
        let device = backend.device as! OpenCLDevice
        var cache = device.programs
        cache.directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-cache-\(UUID())")
        defer { try? FileManager.default.removeItem(at: cache.directory) }
        let source = try ProgramCache.source(of: "elementwise")
        #expect(try cache.program("elementwise", source: source).cached == false)
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache.directory.path).count == 1)
        #expect(try cache.program("elementwise", source: source).cached == true)
        // An edited source is a different program.
        #expect(try cache.program("elementwise", source: source + "\n// edited\n").cached == false)
    }

    @Test(arguments: Backend.all.filter { $0.device is OpenCLDevice })
    func buildFailureCarriesTheLog(_ backend: Backend) throws {
        let device = backend.device as! OpenCLDevice
        do {
            _ = try device.programs.program("broken", source: "__kernel void f(__global float* x) { x[0] = undeclared; }")
            Issue.record("a broken program built")
        } catch DeviceError.buildFailed(let family, _, let log) {
            #expect(family == "broken")
            #expect(log.contains("undeclared"), "\(log)")
        }
    }
}
