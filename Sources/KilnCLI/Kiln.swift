import ArgumentParser
import Kiln

@main
struct KilnCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kiln",
        abstract: "Train deep-learning models on OpenCL devices or the CPU.",
        subcommands: [TrainCommand.self, EvaluateCommand.self, PredictCommand.self, SummaryCommand.self, ConvertCommand.self,
                      DevicesCommand.self, BenchmarkCommand.self])
}
