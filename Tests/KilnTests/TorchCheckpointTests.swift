import Foundation
import Testing
@testable import Kiln

/// `torch.save` files made by PyTorch 2.13 (Scripts/make-fixtures.sh), read by the restricted unpickler.
@Suite("PyTorch checkpoints") struct TorchCheckpointTests {
    /// The ResidualCNN's state dict, in both formats, gives PyTorch's outputs on both backends.
    @Test(arguments: Backend.all, ["torch_cnn.pth", "torch_cnn_legacy.pth"])
    func stateDictMatchesPyTorch(_ backend: Backend, _ name: String) throws {
        let model = try ImportTests.residualCNN()
        try model.place(on: backend.device)
        try PyTorchWeights.load(fixtures.appendingPathComponent(name), into: model)
        let x = try NumPy.read(fixtures.appendingPathComponent("torch_cnn_x.npy"))
        let expected = try NumPy.read(fixtures.appendingPathComponent("torch_cnn_y.npy"))
        let y = try model(Tensor(x.values, shape: x.shape, on: backend.device).permuted([0, 2, 3, 1])).toArray()
        expectClose(y, expected.values.map(Double.init), "\(name) vs PyTorch", tolerance: 1e-5)
    }

    /// Transposed, offset and strided views of shared storages, in seven dtypes, nested under
    /// `state_dict` beside non-tensor values: every value equals PyTorch's (as float32).
    @Test(arguments: ["torch_views.pth", "torch_views_legacy.pth"])
    func viewsAndDtypes(_ name: String) throws {
        let file = try TorchCheckpoint(contentsOf: fixtures.appendingPathComponent(name))
        let expected = try NumPy.readArchive(fixtures.appendingPathComponent("torch_views.npz"))
        #expect(Set(file.shapes.keys) == Set(expected.keys), "only the tensors are read")
        for (key, array) in expected {
            #expect(file.shapes[key] == (array.shape == [1] && key == "scalar" ? [] : array.shape), "\(key) shape")  // NumPy.read gives () as [1]
            #expect(try file.floats(key) == array.values, "\(key) values")
        }
    }

    /// A pickle that would run a shell command is refused, naming the global, and runs nothing.
    @Test func maliciousPickleIsRefused() throws {
        let url = fixtures.appendingPathComponent("torch_malicious.pth")
        #expect { try TorchCheckpoint(contentsOf: url) } throws: { "\($0)".contains("refusing global 'posix.system'") && "\($0)".contains(url.path) }
        #expect(!FileManager.default.fileExists(atPath: "/tmp/kiln-pickle-was-executed"))
    }

    /// Hand-written pickles: other ways in (classes, builtins), and malformed streams; each a one-line error.
    @Test(arguments: [
        ("c__builtin__\neval\n(X\u{4}\0\0\0exit\u{85}R.", "refusing global '__builtin__.eval'"),
        ("\u{80}\u{4}\u{8C}\u{8}builtins\u{8C}\u{4}exec\u{93}.", "refusing global 'builtins.exec'"),
        ("ccollections\nOrderedDict\n)\u{81}.", "refusing opcode 0x81"),
        ("ccollections\nOrderedDict\n(K\u{1}tR.", "OrderedDict with arguments"),
        ("}(X\u{2}\0\0\0abh\u{9}u.", "memo entry 9"),
        ("X\u{FF}\u{FF}\u{FF}\u{7F}ab", "runs past the end"),
        ("]K\u{1}", "runs past the end"),
        ("K\u{1}b.", "BUILD on something other than a dict"),
        ("(X\u{7}\0\0\0storagectorch\nFloatStorage\nX\u{1}\0\0\0\u{30}X\u{3}\0\0\0cpuK\u{4}tQ.", "storage archive/data/0 is missing"),
    ])
    func badPicklesAreNamed(_ pickle: String, _ message: String) throws {
        let url = try temporaryFolder().appendingPathComponent("bad.pth")
        try Zip.archive([("archive/data.pkl", Data(pickle.unicodeScalars.map { UInt8($0.value) }))]).write(to: url)
        #expect { try TorchCheckpoint(contentsOf: url) } throws: { "\($0)".contains(message) && "\($0)".contains(url.path) }
    }

    /// A million nested lists and a list appended to a million times read in linear time and free
    /// without recursion (the arena holds indices, not references).
    @Test func deepAndWideContainersAreSafe() throws {
        let depth = 1_000_000
        var deep = [UInt8](repeating: 0x5D, count: 1)  // ]  then  (] a) repeated: each list appended to the previous
        for _ in 0..<depth { deep += [0x5D, 0x71, 0x00, 0x61] }
        deep += [0x2E]
        #expect(try Pickle(deep, file: "deep").objects.count == depth + 1)
        let wide = [0x5D] + [UInt8]((0..<depth).flatMap { _ in [0x4B, 0x01, 0x61] }) + [0x2E]
        let pickle = try Pickle(wide, file: "wide")
        guard case .object(let root) = pickle.root, case .list(let items) = pickle.objects[root] else { Issue.record("not a list"); return }
        #expect(items.count == depth)
    }

    /// `kiln convert` reads a .pth as the weights of a model file, like a .safetensors state dict.
    @Test func convertReadsPth() throws {
        let folder = try temporaryFolder()
        let json = folder.appendingPathComponent("model.json")
        try JSONSerialization.data(withJSONObject: KerasConfig.json(of: ImportTests.residualCNN())).write(to: json)
        let out = folder.appendingPathComponent("model.safetensors")
        let (status, output) = try DeviceTests.run(["convert", json.path, out.path, "--weights", fixtures.appendingPathComponent("torch_cnn.pth").path],
                                                   environment: [:])
        #expect(status == 0, "\(output)")
        let (model, _) = try Checkpoint.load(out, device: CPUDevice.shared)
        let original = try TorchCheckpoint(contentsOf: fixtures.appendingPathComponent("torch_cnn.pth"))
        let variance = try #require(model.weights.first { $0.path == "bn2/moving_variance" })
        #expect(try variance.value.toArray() == original.floats("bn2.running_var"))
    }
}
