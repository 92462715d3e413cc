import ArgumentParser
import Foundation
import Kiln

struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List the devices Kiln can run on and the one `auto` picks.",
        discussion: "Select one with --device (auto, cpu, opencl, opencl:N or part of its name) or KILN_DEVICE.")

    func run() throws {
        let (devices, problem) = Devices.available()
        if let problem { print("OpenCL: \(problem)") }
        var openCLIndex = 0
        for device in devices {
            let info = device.info
            let selector = info.backend == "cpu" ? "cpu" : "opencl:\(openCLIndex)"
            if info.backend != "cpu" { openCLIndex += 1 }
            print("\(selector.padding(toLength: 10, withPad: " ", startingAt: 0)) \(info.name)")
            print("           platform \(info.platform), type \(info.kind.rawValue), \(info.computeUnits) compute units, "
                  + "\(info.globalMemory >> 20) MiB, \(info.version), driver \(info.driverVersion)")
        }
        let environment = ProcessInfo.processInfo.environment["KILN_DEVICE"]
        let chosen = try Devices.select(environment)
        print("\(environment.map { "KILN_DEVICE=\($0)" } ?? "auto") → \(chosen.info.name)")
    }
}
