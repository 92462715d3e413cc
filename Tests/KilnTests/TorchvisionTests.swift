import Foundation
import Testing
@testable import Kiln

/// torchvision's architectures with torchvision's names, read from `torch.save` state dicts.
@Suite("torchvision architectures") struct TorchvisionTests {
    /// torchvision's own parameter counts (`sum(p.numel() for p in model.parameters())`, which leaves out
    /// batch norm's running statistics, Kiln's non-trainable weights).
    @Test func parameterCountsAreTorchvisions() throws {
        let counts: [TorchvisionZoo: Int] = [.resnet18: 11_689_512, .resnet34: 21_797_672, .resnet50: 25_557_032, .vgg11: 132_863_336,
                                             .vgg11BN: 132_868_840, .vgg16: 138_357_544, .vgg16BN: 138_365_992, .mobilenetV2: 3_504_872,
                                             .efficientnetB0: 5_288_548]
        for zoo in TorchvisionZoo.allCases { #expect(try zoo.make().trainableParameterCount == counts[zoo], "\(zoo.rawValue)") }
    }

    /// Outputs equal PyTorch's for state dicts saved by torch.save (Scripts/make-fixtures.sh writes them
    /// to Fixtures/large/, which is not committed: without it the test says so and checks nothing).
    @Test(arguments: [("resnet18", TorchvisionZoo.resnet18), ("resnet50", .resnet50), ("vgg11_bn_features", .vgg11BN), ("mobilenet_v2", .mobilenetV2),
                      ("efficientnet_b0", .efficientnetB0)])
    func outputsMatchPyTorch(_ name: String, _ zoo: TorchvisionZoo) throws {
        let large = fixtures.appendingPathComponent("large/torchvision_\(name)")
        guard FileManager.default.fileExists(atPath: large.path + ".pth") else {
            print("note: \(large.lastPathComponent).pth is absent (Scripts/make-fixtures.sh makes it with PyTorch); skipping its comparison")
            return
        }
        let x = try NumPy.read(URL(fileURLWithPath: large.path + "_x.npy"))
        let expected = try NumPy.read(URL(fileURLWithPath: large.path + "_y.npy"))
        let features = zoo == .vgg11BN  // only the convolutional part: its classifier is 400 MB at 224×224
        var model = try zoo.make(inputShape: [x.shape[2], x.shape[3], 3])
        if features { model = try model.truncated(at: "features.28") }
        try model.place(on: CPUDevice.shared, seed: 1)
        try PyTorchWeights.load(URL(fileURLWithPath: large.path + ".pth"), into: model, strict: !features)
        var y = try model(Tensor(x.values, shape: x.shape, on: CPUDevice.shared).permuted([0, 2, 3, 1]))
        if features { y = try y.permuted([0, 3, 1, 2]) }  // PyTorch's NCHW
        expectClose(try y.toArray(), expected.values.map(Double.init), "\(name) vs PyTorch", tolerance: 1e-4)
    }

    /// `kiln train --base resnet18 --weights W --cut avgpool --freeze-base --head dense:N` on an image
    /// folder, W a state dict with torchvision's names: the base keeps W's weights exactly.
    @Test func transferFromAStateDict() throws {
        let folder = try temporaryFolder()
        let base = try TorchvisionZoo.resnet18.make(inputShape: [32, 32, 3])
        try base.place(on: CPUDevice.shared, seed: 9)
        let weights = folder.appendingPathComponent("resnet18.safetensors")
        try PyTorchWeights.save(base, to: weights)
        var random = Random("torchvision transfer")
        try writeImageFolder(folder.appendingPathComponent("images"), classes: ["a", "b"], count: 10, side: 32, channels: 3) { UInt8($0 * 120 + random.int(130)) }
        let run = folder.appendingPathComponent("run")
        let (status, output) = try ReliabilityTests.kiln(["train", "--dataset", folder.appendingPathComponent("images").path, "--image-size", "32,32",
                                                          "--base", "resnet18", "--weights", weights.path, "--cut", "avgpool", "--freeze-base",
                                                          "--head", "dense:N", "--epochs", "1", "--batch-size", "4", "--out", run.path])
        #expect(status == 0, "\(output)")
        let trained = try TransferRecipeTests.weights(run.path + "/model.safetensors")
        for layer in ["conv1", "layer1.0.conv1", "layer4.1.conv2", "layer4.0.downsample.0"] {
            #expect(trained["weights/\(layer)/kernel"] == (try base.weights.first { $0.path == "\(layer)/kernel" }!.value.toArray()), "\(layer)")
        }
        #expect(trained["weights/layer4.1.bn2/moving_variance"] == (try base.weights.first { $0.path == "layer4.1.bn2/moving_variance" }!.value.toArray()))
    }
}
