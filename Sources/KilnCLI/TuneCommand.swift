import ArgumentParser
import Foundation
import Kiln

struct TuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tune",
        abstract: "Time the convolution kernels on an OpenCL device for a model's layers, and keep the fastest.",
        discussion: """
            Runs one training step of the model at each batch size; every convolution pass (forward, input \
            gradient, weight gradient) of every layer shape is timed with each kernel tiling and with im2col + \
            CLBlast, and the fastest is kept on disk beside the compiled kernels (keyed by device, driver and \
            kernel source). Training does the same on first use of a shape; this command re-times and prints \
            what it chose.
            """)

    @Option(help: "Device: auto, opencl, opencl:N or part of a device name (default: KILN_DEVICE or auto).")
    var device: String?

    @Option(help: "A built-in model name (also torchvision's: resnet18, …).")
    var model = "workshop-cnn"

    @Option(help: "Input shape H,W,C (default 28,28,1; torchvision's 224,224,3).")
    var inputShape: String?

    @Option(help: "Output classes.")
    var classes = 10

    @Option(help: "Batch sizes, comma-separated.")
    var batchSizes = "32,128"

    func run() throws {
        try reportingErrors {
            let device = try Devices.select(self.device)
            guard let openCL = device as? OpenCLDevice else {
                print("\(device.info.name) is the CPU backend: its kernels need no tuning (pick an OpenCL device with --device).")
                return
            }
            let torchvision = TorchvisionZoo(rawValue: model)
            let shape = try builtInInputShape(inputShape, torchvision: torchvision != nil)
            let batches = batchSizes.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !batches.isEmpty, batches.allSatisfy({ $0 > 0 }) else { throw ValidationError("--batch-sizes takes positive integers like 32,128") }
            guard let net = try ModelZoo(rawValue: model)?.make(inputShape: shape, classes: classes)
                    ?? torchvision?.make(inputShape: shape, classes: classes) else {
                throw ValidationError("--model: no built-in model '\(model)'")
            }
            print("kiln tune on \(device.info.name): \(model), input \(shape.map(String.init).joined(separator: "×")), batches \(batches)")
            openCL.forgetConvolutionTuning()
            try net.place(on: device, seed: 1)
            for batch in batches {
                let input = try Tensor.uniform([batch] + shape, seed: 1, on: device)
                try net(input, training: true).sum().backward()
                try device.synchronize()
            }
            for choice in openCL.convolutionTuning {
                print("\(choice.pass), \(choice.shape): \(choice.chosen)")
                let fastest = choice.timings.map(\.milliseconds).min() ?? 0
                for (algorithm, milliseconds) in choice.timings {
                    print(String(format: "    %8.3f ms  %5.2f×  %@", milliseconds, milliseconds / max(fastest, 1e-9), algorithm))
                }
            }
        }
    }
}
