import CZlib
import Foundation

/// NumPy's `.npy` arrays (format versions 1–3, C order) and `.npz` bundles (zip archives of .npy files).
public enum NumPy {
    /// An array as float32 values with its shape; `<f4 <f8 <f2 |u1 |i1 <i4 <i8 <u2 |b1` are read.
    public struct Array: Sendable {
        public var shape: [Int]
        public var values: [Float]
        /// The stored dtype (`<f4`, `|u1`, …).
        public var dtype: String
    }

    public static func read(_ url: URL) throws -> Array {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw DataError(url.path, "cannot read (\(error.localizedDescription))") }
        return try parse(data, file: url.path)
    }

    static func parse(_ data: Data, file: String) throws -> Array {
        let bytes = [UInt8](data)
        guard bytes.count >= 10, bytes[0] == 0x93, Swift.Array(bytes[1...5]) == Swift.Array("NUMPY".utf8) else {
            throw DataError(file, "not a .npy file (expected the magic \\x93NUMPY)")
        }
        let major = bytes[6]
        let (lengthSize, start) = major == 1 ? (2, 10) : (4, 12)
        guard major >= 1, major <= 3, bytes.count >= start else { throw DataError(file, ".npy format version \(major) is not supported") }
        let headerLength = bytes[8..<(8 + lengthSize)].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        guard start + headerLength <= bytes.count else { throw DataError(file, ".npy header length \(headerLength) points past the end of the file") }
        let header = String(decoding: bytes[start..<(start + headerLength)], as: UTF8.self)
        func field(_ key: String) -> String? {
            guard let range = header.range(of: "'\(key)':") else { return nil }
            return String(header[range.upperBound...]).trimmingCharacters(in: .whitespaces)
        }
        guard let descrField = field("descr"), let quote = descrField.first, quote == "'" || quote == "\"",
              let dtype = descrField.dropFirst().split(separator: quote).first.map(String.init) else {
            throw DataError(file, ".npy header has no 'descr': \(header)")
        }
        if field("fortran_order")?.hasPrefix("True") == true { throw DataError(file, "Fortran-ordered arrays are not supported; save with np.ascontiguousarray") }
        guard let shapeField = field("shape"), let open = shapeField.firstIndex(of: "("), let close = shapeField.firstIndex(of: ")") else {
            throw DataError(file, ".npy header has no 'shape': \(header)")
        }
        guard open < close else { throw DataError(file, ".npy header has no 'shape': \(header)") }
        let dimensions = shapeField[shapeField.index(after: open)..<close].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        let shape = dimensions.compactMap { Int($0) }
        guard shape.count == dimensions.count, let count = Memory.count(shape) else {
            throw DataError(file, ".npy shape (\(dimensions.joined(separator: ", "))) is not a list of sizes whose product fits in 64 bits")
        }
        let sizes = ["<f4": 4, "<f8": 8, "<f2": 2, "|u1": 1, "|i1": 1, "<i4": 4, "<i8": 8, "<u2": 2, "|b1": 1]
        guard let size = sizes[dtype] else { throw DataError(file, ".npy dtype \(dtype) is not supported (\(sizes.keys.sorted().joined(separator: " ")))") }
        let payload = start + headerLength
        guard count <= (bytes.count - payload) / size, bytes.count - payload == count * size else {
            throw DataError(file, ".npy shape \(shape) of \(dtype) needs \(count) × \(size) bytes, file holds \(bytes.count - payload) (truncated?)")
        }
        try Memory.require(count, for: "\(file) (\(count) values)")
        let values: [Float] = bytes.withUnsafeBytes { raw in
            let base = payload
            switch dtype {
            case "<f4": return (0..<count).map { Float(bitPattern: raw.loadUnaligned(fromByteOffset: base + 4 * $0, as: UInt32.self).littleEndian) }
            case "<f8": return (0..<count).map { Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: base + 8 * $0, as: UInt64.self).littleEndian)) }
            case "<f2": return (0..<count).map { Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: base + 2 * $0, as: UInt16.self).littleEndian)) }
            case "<i4": return (0..<count).map { Float(Int32(bitPattern: raw.loadUnaligned(fromByteOffset: base + 4 * $0, as: UInt32.self).littleEndian)) }
            case "<i8": return (0..<count).map { Float(Int64(bitPattern: raw.loadUnaligned(fromByteOffset: base + 8 * $0, as: UInt64.self).littleEndian)) }
            case "<u2": return (0..<count).map { Float(raw.loadUnaligned(fromByteOffset: base + 2 * $0, as: UInt16.self).littleEndian) }
            case "|i1": return (0..<count).map { Float(Int8(bitPattern: raw[base + $0])) }
            default: return (0..<count).map { Float(raw[base + $0]) }
            }
        }
        return Array(shape: shape, values: values, dtype: dtype)
    }

    /// Writes a float32 C-order `.npy` (version 1) atomically.
    public static func write(_ values: [Float], shape: [Int], to url: URL) throws {
        guard values.count == shape.reduce(1, *) else { throw DataError(url.path, "\(values.count) values for shape \(shape)") }
        try writeAtomically(encode(values, shape: shape), to: url)
    }

    /// The bytes of a float32 C-order `.npy` (version 1).
    static func encode(_ values: [Float], shape: [Int]) -> Data {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        var data = Data([0x93] + Swift.Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xff), UInt8(header.utf8.count >> 8)])
        data.append(contentsOf: header.utf8)
        values.withUnsafeBytes { data.append(contentsOf: $0) }
        return data
    }

    /// The arrays of an `.npz` file by name (without `.npy`).
    public static func readArchive(_ url: URL) throws -> [String: Array] {
        var arrays: [String: Array] = [:]
        for (name, data) in try Zip.entries(url) where name.hasSuffix(".npy") {
            arrays[String(name.dropLast(4))] = try parse(data, file: "\(url.path)[\(name)]")
        }
        return arrays
    }

    /// A dataset from Keras-datasets-style arrays: `x` (N, …) and integer labels `y` (N) or (N, 1).
    /// Byte arrays stay bytes; other dtypes become floats.
    public static func dataset(x: Array, y: Array, file: String) throws -> Dataset {
        guard x.shape.count >= 2 else { throw DataError(file, "x must have a sample axis and at least one more, got shape \(x.shape)") }
        guard y.shape.first == x.shape.first, y.shape.dropFirst().allSatisfy({ $0 == 1 }) else {
            throw DataError(file, "y has shape \(y.shape); expected \(x.shape[0]) labels to match x \(x.shape)")
        }
        if let bad = y.values.first(where: { $0 < 0 || $0 != $0.rounded() }) {
            throw DataError(file, "y holds \(bad), which is not a class index")
        }
        let features: Dataset.Features = x.dtype == "|u1" ? .bytes(x.values.map { UInt8($0) }) : .floats(x.values)
        var sample = Swift.Array(x.shape.dropFirst())
        if sample.count == 2 { sample.append(1) }  // (N, H, W) images get a channel axis
        return Dataset(features: features, sampleShape: sample, labels: y.values.map { Int32($0) })
    }
}

/// Reads the entries of a zip archive (stored or deflated; no zip64, no encryption) and writes
/// stored ones.
enum Zip {
    /// A zip archive holding `entries` uncompressed.
    static func archive(_ entries: [(name: String, data: Data)]) -> Data {
        func u16(_ v: Int) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8 & 0xff)] }
        func u32(_ v: Int) -> [UInt8] { u16(v & 0xffff) + u16(v >> 16 & 0xffff) }
        var body: [UInt8] = [], central: [UInt8] = []
        for (name, data) in entries {
            let crc = data.withUnsafeBytes { Int(crc32(0, $0.bindMemory(to: UInt8.self).baseAddress, uInt(data.count))) }
            let common = u16(20) + u16(0) + u16(0) + u16(0) + u16(0) + u32(crc) + u32(data.count) + u32(data.count) + u16(name.utf8.count) + u16(0)
            central += u32(0x0201_4b50) + u16(20) + common + u16(0) + u16(0) + u16(0) + u32(0) + u32(body.count) + Array(name.utf8)
            body += u32(0x0403_4b50) + common + Array(name.utf8) + [UInt8](data)
        }
        let end = u32(0x0605_4b50) + u16(0) + u16(0) + u16(entries.count) + u16(entries.count) + u32(central.count) + u32(body.count) + u16(0)
        return Data(body + central + end)
    }

    static func entries(_ url: URL) throws -> [(name: String, data: Data)] {
        let file = url.path
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw DataError(file, "cannot read (\(error.localizedDescription))") }
        let bytes = [UInt8](data)
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }
        guard bytes.count >= 22, let end = stride(from: bytes.count - 22, through: max(0, bytes.count - 65_557), by: -1)
            .first(where: { u32($0) == 0x0605_4b50 }) else {
            throw DataError(file, "not a zip archive (no end-of-central-directory record; truncated?)")
        }
        let count = u16(end + 10)
        var at = u32(end + 16)
        var result: [(String, Data)] = []
        for _ in 0..<count {
            guard at + 46 <= bytes.count, u32(at) == 0x0201_4b50 else { throw DataError(file, "corrupt zip central directory") }
            let (method, crc, compressed, size) = (u16(at + 10), u32(at + 16), u32(at + 20), u32(at + 24))
            let (nameLength, extraLength, commentLength, local) = (u16(at + 28), u16(at + 30), u16(at + 32), u32(at + 42))
            guard compressed != 0xffff_ffff, size != 0xffff_ffff else { throw DataError(file, "zip64 archives are not supported") }
            guard at + 46 + nameLength <= bytes.count else { throw DataError(file, "corrupt zip central directory (a name runs past the end)") }
            let name = String(decoding: bytes[(at + 46)..<(at + 46 + nameLength)], as: UTF8.self)
            guard local + 30 <= bytes.count, u32(local) == 0x0403_4b50 else { throw DataError(file, "corrupt local header for \(name)") }
            let start = local + 30 + u16(local + 26) + u16(local + 28)
            guard start + compressed <= bytes.count else { throw DataError(file, "entry \(name) runs past the end of the archive (truncated?)") }
            let raw = Data(bytes[start..<(start + compressed)])
            let content: Data
            switch method {
            case 0: content = raw
            case 8: content = try Compression.inflateRaw(raw, expectedCount: size, file: "\(file)[\(name)]")
            default: throw DataError(file, "entry \(name) uses compression method \(method) (only stored and deflate)")
            }
            guard content.count == size, content.withUnsafeBytes({ Int(crc32(0, $0.bindMemory(to: UInt8.self).baseAddress, uInt($0.count))) }) == crc else {
                throw DataError(file, "entry \(name) fails its CRC check (corrupt archive)")
            }
            result.append((name, content))
            at += 46 + nameLength + extraLength + commentLength
        }
        return result
    }
}
