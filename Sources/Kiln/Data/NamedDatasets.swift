import Foundation

/// The datasets `kiln train --dataset NAME` knows, read from local files (nothing is downloaded).
public enum NamedDataset: String, CaseIterable, Sendable {
    case fashionMNIST = "fashion-mnist"
    case mnist
    case cifar10

    public enum Split: String, Sendable { case train, test }

    /// Where the files are looked for without `--data`.
    public var defaultDirectory: URL {
        switch self {
        case .fashionMNIST: URL(fileURLWithPath: "/usr/share/datasets/fashion-mnist")
        default: FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/kiln/datasets/\(rawValue)")
        }
    }

    /// Where the files come from, for error messages.
    var source: String {
        switch self {
        case .fashionMNIST: "install the Debian package dataset-fashion-mnist, or get the four *-ubyte.gz files from https://github.com/zalandoresearch/fashion-mnist"
        case .mnist: "get train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from http://yann.lecun.com/exdb/mnist/"
        case .cifar10: "get the binary version (cifar-10-binary.tar.gz) from https://www.cs.toronto.edu/~kriz/cifar.html and unpack it"
        }
    }

    public var classNames: [String] {
        switch self {
        case .fashionMNIST: ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
        case .mnist: (0...9).map(String.init)
        case .cifar10: ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        }
    }

    /// Loads one split from `directory` (default: `defaultDirectory`).
    public func load(_ split: Split, from directory: URL? = nil) throws -> Dataset {
        let folder = directory ?? defaultDirectory
        switch self {
        case .fashionMNIST, .mnist:
            let prefix = split == .train ? "train" : "t10k"
            let images = try find(folder, ["\(prefix)-images-idx3-ubyte.gz", "\(prefix)-images-idx3-ubyte", "\(prefix)-images.idx3-ubyte"])
            let labels = try find(folder, ["\(prefix)-labels-idx1-ubyte.gz", "\(prefix)-labels-idx1-ubyte", "\(prefix)-labels.idx1-ubyte"])
            return try IDX.dataset(images: images, labels: labels, classNames: classNames)
        case .cifar10:
            let names = split == .train ? (1...5).map { "data_batch_\($0).bin" } : ["test_batch.bin"]
            let inner = folder.appendingPathComponent("cifar-10-batches-bin")
            let base = FileManager.default.fileExists(atPath: inner.path) ? inner : folder
            return try CIFAR10.dataset(files: try names.map { try find(base, [$0]) }, classNames: classNames)
        }
    }

    private func find(_ folder: URL, _ candidates: [String]) throws -> URL {
        for name in candidates {
            let url = folder.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: url.path) { return url }
        }
        throw DataError(folder.appendingPathComponent(candidates[0]).path, "missing (\(rawValue) expects \(candidates[0]) here; \(source))")
    }
}

/// CIFAR-10's binary batches: records of one label byte and 3072 pixel bytes (1024 red, 1024 green,
/// 1024 blue, each 32×32 row-major), turned into (32, 32, 3) images.
public enum CIFAR10 {
    static let recordSize = 1 + 3072

    public static func dataset(files: [URL], classNames: [String]? = nil) throws -> Dataset {
        var pixels: [UInt8] = [], labels: [Int32] = []
        for url in files {
            let data: Data
            do { data = try Data(contentsOf: url) } catch { throw DataError(url.path, "cannot read (\(error.localizedDescription))") }
            guard !data.isEmpty, data.count % recordSize == 0 else {
                throw DataError(url.path, "\(data.count) bytes is not a whole number of 3073-byte CIFAR-10 records (truncated or not a CIFAR-10 binary batch)")
            }
            let bytes = [UInt8](data)
            pixels.reserveCapacity(pixels.count + bytes.count)
            for record in stride(from: 0, to: bytes.count, by: recordSize) {
                let label = bytes[record]
                guard label < 10 else { throw DataError(url.path, "record \(record / recordSize) has label \(label); CIFAR-10 labels are 0–9") }
                labels.append(Int32(label))
                for pixel in 0..<1024 { for channel in 0..<3 { pixels.append(bytes[record + 1 + channel * 1024 + pixel]) } }
            }
        }
        return Dataset(features: .bytes(pixels), sampleShape: [32, 32, 3], labels: labels, classNames: classNames)
    }
}
