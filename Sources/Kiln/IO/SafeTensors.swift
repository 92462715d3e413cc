import Foundation

/// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
/// header length, a JSON header `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {…}}`,
/// then the raw little-endian tensor data. Reading never executes anything from the file.
public struct SafeTensors: TensorFile {
    public struct Entry: Sendable {
        public let dtype: String
        public let shape: [Int]
        let range: Range<Int>
    }

    public let file: String
    public private(set) var entries: [String: Entry] = [:]
    public private(set) var metadata: [String: String] = [:]
    private let data: Data
    private let dataStart: Int

    /// Reads and checks a file: header bounds, JSON, dtypes, shapes against byte ranges.
    public init(contentsOf url: URL) throws {
        file = url.path
        do { data = try Data(contentsOf: url) } catch { throw DataError(file, "cannot read (\(error.localizedDescription))") }
        guard data.count >= 8 else { throw DataError(file, "too short for a safetensors file (\(data.count) bytes; truncated?)") }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength <= UInt64(data.count - 8) else {
            throw DataError(file, "header length \(headerLength) points past the end of the file (\(data.count) bytes; truncated?)")
        }
        dataStart = 8 + Int(headerLength)
        guard let header = try? JSONSerialization.jsonObject(with: data[8..<dataStart]) as? [String: Any] else {
            throw DataError(file, "the header is not a JSON object (not a safetensors file, or corrupted)")
        }
        let payload = data.count - dataStart
        for (name, value) in header {
            if name == "__metadata__" {
                guard let metadata = value as? [String: String] else { throw DataError(file, "__metadata__ must map strings to strings") }
                self.metadata = metadata
                continue
            }
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String, let shape = info["shape"] as? [Int],
                  let offsets = info["data_offsets"] as? [Int], offsets.count == 2 else {
                throw DataError(file, "tensor '\(name)': header entry lacks dtype, shape or data_offsets")
            }
            guard let size = Self.elementSize[dtype] else {
                throw DataError(file, "tensor '\(name)': unsupported dtype \(dtype) (supported: \(Self.elementSize.keys.sorted().joined(separator: ", ")))")
            }
            guard offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= payload else {
                throw DataError(file, "tensor '\(name)': data_offsets \(offsets) fall outside the \(payload) data bytes (truncated?)")
            }
            guard let count = Memory.count(shape), count <= payload / size, offsets[1] - offsets[0] == count * size else {
                throw DataError(file, "tensor '\(name)': shape \(shape) of \(dtype) does not match its \(offsets[1] - offsets[0]) bytes")
            }
            entries[name] = Entry(dtype: dtype, shape: shape, range: offsets[0]..<offsets[1])
        }
        // As the reference reader: the tensors tile the data exactly, with no overlap, gap or trailing bytes.
        var end = 0
        for (name, entry) in entries.sorted(by: { ($0.value.range.lowerBound, $0.value.range.upperBound) < ($1.value.range.lowerBound, $1.value.range.upperBound) }) {
            guard entry.range.lowerBound == end else {
                throw DataError(file, "tensor '\(name)' starts at byte \(entry.range.lowerBound) of the data, not at \(end) (overlapping or stray bytes)")
            }
            end = entry.range.upperBound
        }
        guard end == payload else { throw DataError(file, "\(payload - end) bytes after the last tensor belong to none") }
    }

    static let elementSize = ["F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1]

    public var shapes: [String: [Int]] { entries.mapValues(\.shape) }

    /// A tensor's values as float32 (F32, F16, BF16 and F64 convert; integers and booleans too).
    public func floats(_ name: String) throws -> [Float] {
        guard let entry = entries[name] else { throw DataError(file, "no tensor named '\(name)'") }
        return Self.decode(data[(dataStart + entry.range.lowerBound)..<(dataStart + entry.range.upperBound)], dtype: entry.dtype)
    }

    /// Little-endian elements of `dtype` (a key of `elementSize`) as float32.
    static func decode(_ bytes: Data, dtype: String) -> [Float] {
        bytes.withUnsafeBytes { raw -> [Float] in
            let count = raw.count / elementSize[dtype]!
            func load<T: FixedWidthInteger>(_ type: T.Type, _ i: Int) -> T { raw.loadUnaligned(fromByteOffset: MemoryLayout<T>.size * i, as: T.self).littleEndian }
            switch dtype {
            case "F32": return (0..<count).map { Float(bitPattern: load(UInt32.self, $0)) }
            case "F16": return (0..<count).map { Float(Float16(bitPattern: load(UInt16.self, $0))) }
            case "BF16": return (0..<count).map { Float(bitPattern: UInt32(load(UInt16.self, $0)) << 16) }
            case "F64": return (0..<count).map { Float(Double(bitPattern: load(UInt64.self, $0))) }
            case "I64": return (0..<count).map { Float(load(Int64.self, $0)) }
            case "I32": return (0..<count).map { Float(load(Int32.self, $0)) }
            case "I16": return (0..<count).map { Float(load(Int16.self, $0)) }
            case "I8": return (0..<count).map { Float(Int8(bitPattern: raw[$0])) }
            default: return (0..<count).map { Float(raw[$0]) }  // U8, BOOL
            }
        }
    }

    /// Writes float32 tensors (sorted by name) and string metadata, atomically.
    public static func write(_ tensors: [(name: String, shape: [Int], values: [Float])], metadata: [String: String], to url: URL) throws {
        var header: [String: Any] = ["__metadata__": metadata]
        var offset = 0
        let sorted = tensors.sorted { $0.name < $1.name }
        for t in sorted {
            guard t.values.count == t.shape.reduce(1, *) else { throw DataError(url.path, "tensor '\(t.name)': \(t.values.count) values for shape \(t.shape)") }
            header[t.name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + 4 * t.values.count]]
            offset += 4 * t.values.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))  // align the data to 8 bytes
        var file = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(json)
        for t in sorted { t.values.withUnsafeBytes { file.append(contentsOf: $0) } }
        try writeAtomically(file, to: url)
    }
}
