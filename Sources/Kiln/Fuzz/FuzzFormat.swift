import Foundation

/// Each file format Kiln reads, for `kiln fuzz`: a valid file of it (written by Kiln itself, or one
/// of the test fixtures made by Keras and PyTorch), and the full read a user's command does with it.
public enum FuzzFormat: String, CaseIterable, Sendable {
    case idx, idxGzip = "idx-gz", cifar, csv, npy, npz, safetensors, pth, pthLegacy = "pth-legacy", kerasJSON = "keras-json", keras, h5, onnx, png, jpeg

    /// The file's extension, which picks the reader.
    public var fileExtension: String {
        switch self {
        case .idx: "idx"
        case .idxGzip: "gz"
        case .cifar: "bin"
        case .pthLegacy: "pth"
        case .kerasJSON: "json"
        default: rawValue
        }
    }

    /// A valid file (`fixtures`: Tests/KilnTests/Fixtures, for the formats Kiln cannot write).
    public func seed(fixtures: URL) throws -> Data {
        var random = RandomGenerator(seed: 7)
        func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) } }
        func fixture(_ name: String) throws -> Data {
            let url = fixtures.appendingPathComponent(name)
            guard let data = try? Data(contentsOf: url) else {
                throw DataError(url.path, "cannot read this fixture the \(rawValue) cases start from (give the fixtures folder with --fixtures)")
            }
            return data
        }
        switch self {
        case .idx, .idxGzip:
            let idx = Data([0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5] + bytes(60))
            return self == .idx ? idx : try Compression.gzip(idx)
        case .cifar:
            return Data((0..<2).flatMap { label in [UInt8(label)] + bytes(3072) })
        case .csv:
            return Data("x,y,z,label\n0.5,1,-2,0\n3,4.25,5,1\n-1,0,2.5,2\n7,8,9,1\n".utf8)
        case .npy:
            return NumPy.encode((0..<12).map { Float($0) / 4 }, shape: [3, 4])
        case .npz:
            return Zip.archive([("x_train.npy", NumPy.encode((0..<24).map(Float.init), shape: [2, 3, 4])),
                                ("y_train.npy", NumPy.encode([0, 1], shape: [2]))])
        case .safetensors:
            let model = try Sequential([Input(shape: [4, 4, 1]), Conv2D(2, kernelSize: 3), Flatten(), Dropout(0.5), Dense(3)])
            try model.place(on: CPUDevice.shared, seed: 1)
            try model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: ["accuracy"])
            let data = Dataset(features: .bytes(bytes(64)), sampleShape: [4, 4, 1], labels: [0, 1, 2, 1])
            try model.fit(data, epochs: 1, batchSize: 2, progress: false)
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-fuzz-seed-\(UUID()).safetensors")
            defer { try? FileManager.default.removeItem(at: url) }
            try Checkpoint.save(model, metadata: ["note": "fuzz seed"], to: url)
            return try Data(contentsOf: url)
        case .pth: return try fixture("torch_cnn.pth")
        case .pthLegacy: return try fixture("torch_cnn_legacy.pth")
        case .kerasJSON:
            return try fixture("keras_cnn.json")
        case .keras: return try fixture("keras_cnn.keras")
        case .h5: return try fixture("keras_cnn.h5")
        case .onnx: return try fixture("torch_cnn.onnx")
        case .png: return try fixture("image.png")
        case .jpeg: return try fixture("image.jpg")
        }
    }

    /// Reads `url` as a user's command would, down to running the model once, and returns a digest
    /// of what it read (equal digests: equal contents).
    public func read(_ url: URL) throws -> String {
        let device = CPUDevice.shared
        func digest(_ model: Model) throws -> String {
            let input = try Tensor.zeros([1] + model.inputs[0].shape, on: device)
            let output = try model(input).toArray()
            return try "\(model.summary())\(model.weights.map { try $0.value.toArray() })\(output)"
        }
        switch self {
        case .idx, .idxGzip:
            let (bytes, shape) = try IDX.read(url)
            return "\(shape)\(bytes)"
        case .cifar:
            let data = try CIFAR10.dataset(files: [url])
            return "\(data.sampleShape)\(data.labels ?? [])\(data.count)"
        case .csv:
            let data = try CSVData.dataset(url)
            try data.validate(url.path)
            return "\(data.sampleShape)\(data.labels ?? [])\(data.features)"
        case .npy:
            let array = try NumPy.read(url)
            return "\(array.shape)\(array.dtype)\(array.values)"
        case .npz:
            let arrays = try NumPy.readArchive(url)
            if let x = arrays["x_train"], let y = arrays["y_train"] { try NumPy.dataset(x: x, y: y, file: url.path).validate(url.path) }
            return arrays.keys.sorted().map { "\($0)\(arrays[$0]!.shape)\(arrays[$0]!.values)" }.joined()
        case .safetensors:
            let (model, metadata) = try Checkpoint.load(url, device: device)
            return try "\(metadata.sorted { $0.key < $1.key })\(model.epochsTrained)\(digest(model))"
        case .pth, .pthLegacy:
            let file = try TorchCheckpoint(contentsOf: url)
            return try file.shapes.keys.sorted().map { "\($0)\(file.shapes[$0]!)\(try file.floats($0))" }.joined()
        case .kerasJSON:
            let model = try KerasConfig.model(fromJSON: try Data(contentsOf: url), file: url.path)
            try model.place(on: device)
            return try digest(model)
        case .keras, .h5: return try digest(try KerasFile.load(url, device: device))
        case .onnx: return try digest(try ONNXImport.load(url, device: device))
        case .png, .jpeg:
            let image = try ImageFolder.decode(url)
            return "\(image.height)×\(image.width)×\(image.channels)\(image.pixels)"
        }
    }

    /// Byte ranges of the seed that are padding: changing a space there for other white space must
    /// leave what is read unchanged.
    func padding(of seed: Data) -> [Range<Int>] {
        let bytes = [UInt8](seed)
        switch self {
        case .npy:  // the header's spaces before its newline
            guard let newline = bytes.firstIndex(of: 0x0A) else { return [] }
            var start = newline
            while start > 0, bytes[start - 1] == 0x20 { start -= 1 }
            return [start..<newline]
        case .safetensors:  // the JSON header's trailing spaces
            guard bytes.count >= 8 else { return [] }
            let end = 8 + bytes.prefix(8).reversed().reduce(0) { $0 << 8 | Int($1) }
            var start = end
            while start > 8, bytes[start - 1] == 0x20 { start -= 1 }
            return [start..<end]
        default: return []
        }
    }
}
