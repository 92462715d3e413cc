import COpenCL
import Foundation

/// Builds each kernel family once per context, keeping compiled binaries on disk so the next
/// process skips the compiler. Cache files live in `$KILN_CACHE_DIR`, else `$XDG_CACHE_HOME/kiln`,
/// else `~/.cache/kiln`, under `kernels/`, named by a hash of the device, driver, options and source.
struct ProgramCache {
    static let options = "-cl-std=CL1.2 -cl-mad-enable"

    static var defaultDirectory: URL {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["KILN_CACHE_DIR"], !path.isEmpty { return URL(fileURLWithPath: path).appendingPathComponent("kernels") }
        let base = environment["XDG_CACHE_HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        return base.appendingPathComponent("kiln/kernels")
    }

    let context: cl_context
    let device: cl_device_id
    let info: DeviceInfo
    var directory = Self.defaultDirectory

    /// Source of a family: the shared helpers, then the family's own kernels.
    static func source(of family: String) throws -> String {
        guard let body = KernelSources.families[family], let common = KernelSources.families["common"] else {
            throw DeviceError.invalidArgument("no kernel family '\(family)' in Kernels/")
        }
        return common + "\n" + body
    }

    /// The built program of `family` with extra build `defines` (`-D NAME=VALUE …`), and whether it came
    /// from the disk cache.
    func program(_ family: String, source: String, defines: String = "") throws -> (program: cl_program, cached: Bool) {
        let options = defines.isEmpty ? Self.options : Self.options + " " + defines
        let key = fnv1a([info.platform, info.name, info.version, info.driverVersion, options, source].joined(separator: "\u{1}"))
        let file = directory.appendingPathComponent("\(family)-\(String(key, radix: 16)).bin")
        if let binary = try? Data(contentsOf: file), let program = try? build(binary: binary, family, options) {
            return (program, true)
        }
        let program = try build(source: source, family, options)
        if let binary = try? binary(of: program) { store(binary, at: file) }
        return (program, false)
    }

    private func build(source: String, _ family: String, _ options: String) throws -> cl_program {
        var status: cl_int = 0
        let program = source.withCString { text -> cl_program? in
            var pointer: UnsafePointer<CChar>? = text
            return clCreateProgramWithSource(context, 1, &pointer, nil, &status)
        }
        try CL.check(status, "clCreateProgramWithSource(\(family))")
        try link(program!, family, options)
        return program!
    }

    private func build(binary: Data, _ family: String, _ options: String) throws -> cl_program {
        var status: cl_int = 0, binaryStatus: cl_int = 0
        var device: cl_device_id? = self.device
        var length = binary.count
        let program = binary.withUnsafeBytes { bytes -> cl_program? in
            var pointer: UnsafePointer<UInt8>? = bytes.bindMemory(to: UInt8.self).baseAddress
            return clCreateProgramWithBinary(context, 1, &device, &length, &pointer, &binaryStatus, &status)
        }
        try CL.check(status, "clCreateProgramWithBinary(\(family))")
        try CL.check(binaryStatus, "clCreateProgramWithBinary(\(family))")
        do { try link(program!, family, options) } catch { clReleaseProgram(program); throw error }
        return program!
    }

    private func link(_ program: cl_program, _ family: String, _ options: String) throws {
        var device: cl_device_id? = self.device
        let status = clBuildProgram(program, 1, &device, options, nil, nil)
        guard status == CL_SUCCESS else {
            let log = (try? buildLog(program)) ?? "(no build log)"
            clReleaseProgram(program)
            if status == CL_BUILD_PROGRAM_FAILURE { throw DeviceError.buildFailed(family: family, device: info.name, log: log) }
            throw DeviceError.openCL(call: "clBuildProgram(\(family))", status: status)
        }
    }

    private func buildLog(_ program: cl_program) throws -> String {
        var size = 0
        try CL.check(clGetProgramBuildInfo(program, device, cl_program_build_info(CL_PROGRAM_BUILD_LOG), 0, nil, &size), "clGetProgramBuildInfo")
        var bytes = [UInt8](repeating: 0, count: size)
        try CL.check(clGetProgramBuildInfo(program, device, cl_program_build_info(CL_PROGRAM_BUILD_LOG), size, &bytes, nil), "clGetProgramBuildInfo")
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    private func binary(of program: cl_program) throws -> Data {
        var size = 0
        try CL.check(clGetProgramInfo(program, cl_program_info(CL_PROGRAM_BINARY_SIZES), MemoryLayout<Int>.size, &size, nil),
                     "clGetProgramInfo(BINARY_SIZES)")
        guard size > 0 else { throw DeviceError.invalidArgument("driver returned an empty program binary") }
        var bytes = [UInt8](repeating: 0, count: size)
        try bytes.withUnsafeMutableBufferPointer { buffer in
            var pointer: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            try CL.check(clGetProgramInfo(program, cl_program_info(CL_PROGRAM_BINARIES), MemoryLayout<UnsafeMutablePointer<UInt8>?>.size,
                                          &pointer, nil), "clGetProgramInfo(BINARIES)")
        }
        return Data(bytes)
    }

    /// Writes atomically (temp file + rename); a cache that cannot be written is only slower.
    private func store(_ binary: Data, at file: URL) {
        try? FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? binary.write(to: file, options: .atomic)
    }

    /// 64-bit FNV-1a: a stable hash for cache keys (not for security).
    func fnv1a(_ text: String) -> UInt64 {
        text.utf8.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
    }
}
