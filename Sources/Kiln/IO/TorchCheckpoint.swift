import Foundation

/// Named float tensors read from a file, whatever its format (safetensors, a PyTorch checkpoint).
public protocol TensorFile {
    var file: String { get }
    /// Each tensor's shape by name.
    var shapes: [String: [Int]] { get }
    /// A tensor's values as float32, in row-major order.
    func floats(_ name: String) throws -> [Float]
}

/// Opens a state dict by its contents: a PyTorch checkpoint (`.pt`, `.pth`, `.bin`: zip or legacy
/// pickle) or a safetensors file.
public func openTensorFile(_ url: URL) throws -> any TensorFile {
    let head = [UInt8]((try? FileHandle(forReadingFrom: url).read(upToCount: 2)) ?? Data())
    return head == [0x50, 0x4B] || head.first == 0x80 ? try TorchCheckpoint(contentsOf: url) : try SafeTensors(contentsOf: url)
}

/// A checkpoint written by `torch.save(model.state_dict())`: a zip of `data.pkl` and one raw file per
/// storage (PyTorch ≥ 1.6), or the legacy stream of pickles followed by the storages. The pickle
/// is read by `Pickle`, which executes nothing and refuses anything but tensors and containers.
/// The state dict is the top-level dict, or a dict under `state_dict`, `model_state_dict` or
/// `model` in it (training checkpoints); values that are not tensors are skipped.
public struct TorchCheckpoint: TensorFile {
    public let file: String
    public private(set) var shapes: [String: [Int]] = [:]
    private var views: [String: Pickle.TensorView] = [:]
    private var storages: [(dtype: String, data: Data)] = []

    public init(contentsOf url: URL) throws {
        file = url.path
        let bytes: [UInt8]
        do { bytes = [UInt8](try Data(contentsOf: url)) } catch { throw DataError(file, "cannot read (\(error.localizedDescription))") }
        let pickle: Pickle
        if bytes.starts(with: [0x50, 0x4B]) {
            let entries = Dictionary(try Zip.entries(url).map { ($0.name, $0.data) }, uniquingKeysWith: { a, _ in a })
            guard let main = entries.keys.filter({ $0.hasSuffix("data.pkl") }).min(by: { $0.count < $1.count }) else {
                throw DataError(file, "a zip without data.pkl is not a PyTorch checkpoint")
            }
            let prefix = String(main.dropLast("data.pkl".count))
            if let order = entries[prefix + "byteorder"], String(decoding: order, as: UTF8.self) != "little" {
                throw DataError(file, "big-endian checkpoints are not supported")
            }
            pickle = try Pickle([UInt8](entries[main]!), file: "\(file)[\(main)]")
            storages = try pickle.storages.map { storage in
                guard let data = entries[prefix + "data/" + storage.key] else { throw DataError(file, "storage \(prefix)data/\(storage.key) is missing") }
                return (storage.dtype, data)
            }
        } else {
            pickle = try Self.readLegacy(bytes, file: file, storages: &storages)
        }
        for (index, storage) in pickle.storages.enumerated() {
            let needed = storage.count.multipliedReportingOverflow(by: SafeTensors.elementSize[storage.dtype]!)
            guard !needed.overflow, storages[index].data.count == needed.partialValue else {
                throw DataError(file, "storage '\(storage.key)' holds \(storages[index].data.count) bytes, not \(storage.count) \(storage.dtype) elements")
            }
        }
        for (key, value) in try Self.stateDict(pickle, file: file) {
            guard case .string(let name) = key, case .tensor(let index) = value else { continue }
            views[name] = pickle.tensors[index]
            shapes[name] = pickle.tensors[index].shape
        }
    }

    /// The legacy format: magic number, protocol version and system-info pickles, the object, the
    /// list of storage keys, then each storage as an int64 element count and its bytes.
    private static func readLegacy(_ bytes: [UInt8], file: String, storages: inout [(dtype: String, data: Data)]) throws -> Pickle {
        let magic: [UInt8] = [0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E]
        guard bytes.starts(with: magic) else { throw DataError(file, "neither a zip nor a legacy PyTorch checkpoint (bad magic number)") }
        let version = try Pickle(bytes, from: magic.count, file: file)
        guard case .int(1001) = version.root else { throw DataError(file, "unsupported legacy checkpoint protocol \(version.root)") }
        let info = try Pickle(bytes, from: version.end, file: file)
        let littleEndian = info.dict(info.root)?.first { if case .string("little_endian") = $0.key { true } else { false } }?.value
        guard case .bool(true) = littleEndian else { throw DataError(file, "big-endian checkpoints are not supported") }
        let main = try Pickle(bytes, from: info.end, file: file)
        let keyList = try Pickle(bytes, from: main.end, file: file)
        guard case .object(let list) = keyList.root, case .list(let keys) = keyList.objects[list] else {
            throw DataError(file, "the storage key list is missing (truncated?)")
        }
        var data: [String: Data] = [:], at = keyList.end
        for key in keys {
            guard case .string(let key) = key, let storage = main.storages.first(where: { $0.key == key }), at + 8 <= bytes.count else {
                throw DataError(file, "storage data at byte \(at) is missing or names an unknown storage (truncated?)")
            }
            let count = bytes[at..<(at + 8)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let size = UInt64(SafeTensors.elementSize[storage.dtype]!) &* count
            guard count == storage.count, size <= UInt64(bytes.count - at - 8) else {
                throw DataError(file, "storage '\(key)' at byte \(at) claims \(count) elements (truncated or corrupt)")
            }
            data[key] = Data(bytes[(at + 8)..<(at + 8 + Int(size))])
            at += 8 + Int(size)
        }
        storages = try main.storages.map { storage in
            guard let bytes = data[storage.key] else { throw DataError(file, "storage '\(storage.key)' has no data") }
            return (storage.dtype, bytes)
        }
        return main
    }

    private static func stateDict(_ pickle: Pickle, file: String) throws -> [(key: Pickle.Value, value: Pickle.Value)] {
        guard let root = pickle.dict(pickle.root) else { throw DataError(file, "the checkpoint holds no dict of tensors (a state dict)") }
        let hasTensors = root.contains { if case .tensor = $0.value { true } else { false } }
        if !hasTensors {
            for name in ["state_dict", "model_state_dict", "model"] {
                if let nested = root.first(where: { if case .string(name) = $0.key { true } else { false } }), let dict = pickle.dict(nested.value) {
                    return dict
                }
            }
        }
        return root
    }

    public func floats(_ name: String) throws -> [Float] {
        guard let view = views[name] else { throw DataError(file, "no tensor named '\(name)'") }
        let (dtype, data) = storages[view.storage]
        let count = view.shape.reduce(1, *)
        guard count > 0 else { return [] }
        let last = zip(view.shape, view.strides).reduce(view.offset) { $0 + ($1.0 - 1) * $1.1 }  // checked by Pickle
        let size = SafeTensors.elementSize[dtype]!
        let span = SafeTensors.decode(data[(data.startIndex + view.offset * size)..<(data.startIndex + (last + 1) * size)], dtype: dtype)
        let rowMajor = view.shape.indices.map { view.shape[($0 + 1)...].reduce(1, *) }
        if span.count == count, zip(zip(view.shape, view.strides), rowMajor).allSatisfy({ $0.0 == 1 || $0.1 == $1 }) { return span }  // contiguous
        var values = [Float](), index = [Int](repeating: 0, count: view.shape.count)
        values.reserveCapacity(count)
        for _ in 0..<count {  // walk the view's row-major order through its strides
            values.append(span[zip(index, view.strides).reduce(0) { $0 + $1.0 * $1.1 }])
            for axis in index.indices.reversed() {
                index[axis] += 1
                if index[axis] < view.shape[axis] { break }
                index[axis] = 0
            }
        }
        return values
    }
}
