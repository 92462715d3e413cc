import Foundation
import Testing
@testable import Kiln

/// Every `keras.applications` model saved by Keras 3 (`.keras` and `.h5`, random weights, randomised
/// batch-norm statistics) loads and gives Keras's outputs. Scripts/make-fixtures.sh writes them to
/// Fixtures/large/, which is not committed; they run with KILN_LARGE_FIXTURES=1 (about 13 minutes of
/// debug-build inference; KILN_KERAS_APPS=Name,… for some), else the test says so and checks nothing.
@Suite("keras.applications") struct KerasApplicationsTests {
    static let names = ["VGG16", "VGG19", "ResNet50", "ResNet101", "ResNet152", "ResNet50V2", "ResNet101V2", "ResNet152V2", "MobileNet",
                        "MobileNetV2", "MobileNetV3Small", "MobileNetV3Large", "DenseNet121", "DenseNet169", "DenseNet201", "EfficientNetB0",
                        "EfficientNetB3", "EfficientNetB7", "EfficientNetV2B0", "EfficientNetV2S", "InceptionV3", "InceptionResNetV2",
                        "Xception", "NASNetMobile", "ConvNeXtTiny"]

    @Test(arguments: names, ["keras", "h5"])
    func matchesKeras(_ name: String, _ format: String) throws {
        let base = fixtures.appendingPathComponent("large/keras_app_\(name)")
        let file = URL(fileURLWithPath: base.path + "." + format)
        let environment = ProcessInfo.processInfo.environment
        guard environment["KILN_LARGE_FIXTURES"] == "1", FileManager.default.fileExists(atPath: file.path),
              environment["KILN_KERAS_APPS"].map({ $0.split(separator: ",").contains(Substring(name)) }) ?? true else {
            print("note: \(file.lastPathComponent) checked only with KILN_LARGE_FIXTURES=1 after Scripts/make-fixtures.sh; skipping it")
            return
        }
        let model = try KerasFile.load(file, device: CPUDevice.shared)
        let x = try NumPy.read(URL(fileURLWithPath: base.path + "_x.npy"))
        let expected = try NumPy.read(URL(fileURLWithPath: base.path + "_y.npy"))
        let y = try model(Tensor(x.values, shape: x.shape, on: CPUDevice.shared)).toArray()
        expectClose(y, expected.values.map(Double.init), "\(name).\(format) vs Keras", tolerance: 1e-5)
    }
}
