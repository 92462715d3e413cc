import ArgumentParser
import Foundation
import Kiln

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a model to Kiln's checkpoint, or export it to ONNX or its weights for PyTorch or NumPy.",
        discussion: """
            IN is a Keras model (.h5, .keras), an ONNX model, a Kiln checkpoint, or a Keras model JSON with --weights \
            (.h5, .npz, or a PyTorch state dict, .pth or .safetensors, whose keys follow the Kiln layer names).
            """)

    @Argument(help: "The model to convert.")
    var input: String

    @Argument(help: "Where to write it.")
    var output: String

    @Option(help: "Weights for a model JSON: .h5, .npz or a PyTorch state dict (.pt, .pth, .bin, .safetensors).")
    var weights: String?

    @Option(help: "kiln (checkpoint), pytorch (state dict .safetensors), npz (layer/weight arrays) or onnx.")
    var format = "kiln"

    func run() throws {
        try reportingErrors {
            if input.lowercased().hasSuffix(".json"), weights == nil {
                throw ValidationError("\(input) is a model architecture without weights; give them with --weights (.h5, .npz, .pth or .safetensors)")
            }
            let model = try loadModel(input, device: CPUDevice.shared, weights: weights).model
            let url = URL(fileURLWithPath: output)
            switch format.lowercased() {
            case "kiln": try Checkpoint.save(model, to: url)
            case "pytorch": try PyTorchWeights.save(model, to: url)
            case "npz": try WeightBundle.save(model, to: url)
            case "onnx": try ONNXExport.save(model, to: url)
            default: throw ValidationError("--format: '\(format)' is not kiln, pytorch, npz or onnx")
            }
            print("Wrote \(output) (\(model.name), \(model.parameterCount) parameters)")
        }
    }
}
