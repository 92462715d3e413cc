import ArgumentParser
import Foundation
import Kiln

struct SelfTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Check every op of the kernel library, forward and backward, on a device.",
        discussion: """
            Each op runs on fresh random inputs of awkward sizes: an OpenCL device is compared with the CPU backend, \
            the CPU backend with float64 references (or, for ops the test suite checks elsewhere, with itself, for \
            determinism). One row per op: worst relative error over the seeds, tolerance, time, result. Exits 1 if \
            any op fails, so it can check a new GPU or driver.
            """)

    @Option(help: "Device: auto, cpu, opencl, opencl:N or part of a device name (default: KILN_DEVICE or auto).")
    var device: String?

    @Flag(help: "One seed per op instead of three.")
    var quick = false

    @Option(help: "Seed of the first round (default: random, printed).")
    var seed: UInt64?

    func run() throws {
        try reportingErrors {
            let device = try Devices.select(self.device)
            let first = seed ?? UInt64.random(in: 1...UInt64(UInt32.max))
            print("kiln selftest on \(device.info.name) (\(device.info.backend)), seed \(first)\(quick ? ", quick" : "")")
            var worst: [String: Conformance.Result] = [:], order: [String] = []
            for round in 0..<(quick ? 1 : 3) {
                for result in try Conformance.check(device, seed: first &+ UInt64(round)) {
                    if worst[result.name] == nil { order.append(result.name) }
                    if worst[result.name].map({ result.error > $0.error || !(result.error <= $0.error) }) ?? true { worst[result.name] = result }
                }
            }
            let width = order.map(\.count).max() ?? 10
            print("op".padding(toLength: width, withPad: " ", startingAt: 0) + "  against   max error  tolerance      ms  result")
            for name in order {
                let r = worst[name]!
                print(name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + r.against.padding(toLength: 8, withPad: " ", startingAt: 0)
                      + String(format: "%11.2e  %9.0e  %6.2f  %@", r.error, r.tolerance, r.seconds * 1000, r.passed ? "pass" : "FAIL"))
            }
            let failed = order.filter { !worst[$0]!.passed }
            print(failed.isEmpty ? "All \(order.count) ops pass." : "\(failed.count) of \(order.count) ops FAIL: \(failed.joined(separator: ", "))")
            if !failed.isEmpty { throw ExitCode.failure }
        }
    }
}
