import COpenCL
import Foundation

/// Finds devices and picks one by name: `auto`, `cpu`, `opencl`, `opencl:N` or a name substring.
public enum Devices {
    /// Every usable device (OpenCL ones first, in ICD order, then the CPU backend) and, when OpenCL
    /// offers nothing, the reason in one line.
    public static func available() -> (devices: [any Device], openCLProblem: String?) {
        let (openCL, problem) = registry.openCL
        return (openCL + [CPUDevice.shared], problem)
    }

    /// The device a selection names; `nil` reads `KILN_DEVICE`, and defaults to `auto`:
    /// the first OpenCL GPU, else the CPU backend (OpenCL on a CPU is for testing, not speed).
    public static func select(_ selection: String? = nil) throws -> any Device {
        let spec = (selection ?? ProcessInfo.processInfo.environment["KILN_DEVICE"] ?? "auto")
            .trimmingCharacters(in: .whitespaces)
        let openCL = registry.openCL.devices
        let lowered = spec.lowercased()
        func notFound() -> DeviceError {
            .notFound(selection: spec, available: ["auto", "cpu"] + openCL.indices.map { "opencl:\($0) (\(openCL[$0].info.name))" })
        }
        switch lowered {
        case "", "auto": return openCL.first { $0.info.kind == .gpu } ?? CPUDevice.shared
        case "cpu": return CPUDevice.shared
        case "opencl", "gpu":
            guard let device = lowered == "gpu" ? openCL.first(where: { $0.info.kind == .gpu }) : openCL.first else { throw notFound() }
            return device
        default:
            if lowered.hasPrefix("opencl:") {
                guard let index = Int(lowered.dropFirst("opencl:".count)), openCL.indices.contains(index) else { throw notFound() }
                return openCL[index]
            }
            let byName = openCL.filter { "\($0.info.platform) \($0.info.name)".lowercased().contains(lowered) }
            guard let device = byName.first else { throw notFound() }
            return device
        }
    }

    /// The devices of a comma-separated selection (`opencl:0,opencl:1`), one per replica of
    /// data-parallel training in one process; a single name selects as `select`. An OpenCL device
    /// named twice is opened again (two contexts on one device: how PoCL tests it). The CPU backend
    /// takes part only alone: it already runs on every core.
    public static func selectAll(_ selection: String) throws -> [any Device] {
        let names = selection.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard names.count > 1 else { return [try select(selection)] }
        var devices: [any Device] = []
        for name in names {
            guard !name.isEmpty else { throw DeviceError.invalidArgument("device list '\(selection)' has an empty name") }
            guard let device = try select(name) as? OpenCLDevice else {
                throw DeviceError.invalidArgument("device list '\(selection)': '\(name)' is the CPU backend, which trains alone (it already uses every core); list OpenCL devices")
            }
            devices.append(devices.contains { $0 === device } ? try device.reopened() : device)
        }
        return devices
    }

    /// OpenCL devices are opened once per process and shared.
    private static let registry = Registry()

    private final class Registry: @unchecked Sendable {
        lazy var openCL: (devices: [OpenCLDevice], problem: String?) = Devices.openOpenCLDevices()
    }

    private static func openOpenCLDevices() -> (devices: [OpenCLDevice], problem: String?) {
        let platforms: [cl_platform_id?]
        do { platforms = try CL.platforms() } catch {
            return ([], "no OpenCL platform (\(error)); using the CPU backend")
        }
        var devices: [OpenCLDevice] = [], problems: [String] = []
        for platform in platforms {
            do {
                for id in try CL.devices(of: platform) {
                    guard let id else { continue }
                    do { devices.append(try OpenCLDevice(platform: platform, device: id)) } catch { problems.append("\(error)") }
                }
            } catch { problems.append("\(error)") }
        }
        if devices.isEmpty {
            let why = problems.isEmpty ? "no OpenCL devices found" : problems.joined(separator: "; ")
            return ([], "\(why); using the CPU backend")
        }
        return (devices, nil)
    }
}
