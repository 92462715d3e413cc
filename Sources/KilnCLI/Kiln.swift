import ArgumentParser
import Foundation
import Kiln

@main
struct KilnCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kiln",
        abstract: "Train deep-learning models on OpenCL devices or the CPU.",
        subcommands: [TrainCommand.self, EvaluateCommand.self, PredictCommand.self, SummaryCommand.self, ConvertCommand.self,
                      DevicesCommand.self, SelfTestCommand.self, TuneCommand.self, BenchmarkCommand.self, FuzzCommand.self])

    static func main() {
        // OpenBLAS picks its kernels when it loads; on a CPU it does not know, restart with them named
        // (unless the user chose some): SSE3 kernels would make every matrix product ~5× slower.
        if ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil, let core = CPUDevice.betterBLASCore {
            setenv("OPENBLAS_CORETYPE", core, 1)
            execv("/proc/self/exe", CommandLine.unsafeArgv)  // returns only if the restart failed: carry on as we are
        }
        main(nil)
    }
}
