import Foundation
import SwiftProtobuf

/// TensorFlow's event files (`events.out.tfevents.*`), which TensorBoard reads: a sequence of
/// records, each a little-endian uint64 length, the masked CRC32C of those 8 bytes, the serialized
/// `Event`, and the masked CRC32C of the event. No TensorFlow is needed to write or read them.
enum EventRecords {
    /// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord uses.
    static let table: [UInt32] = (0..<256).map { n in
        (0..<8).reduce(UInt32(n)) { c, _ in c & 1 == 1 ? 0x82F6_3B78 ^ (c >> 1) : c >> 1 }
    }

    static func crc32c<S: Sequence>(_ bytes: S) -> UInt32 where S.Element == UInt8 {
        ~bytes.reduce(~UInt32(0)) { table[Int(($0 ^ UInt32($1)) & 0xFF)] ^ ($0 >> 8) }
    }

    /// TFRecord's masking, so a CRC stored in data does not look like data's CRC.
    static func masked(_ crc: UInt32) -> UInt32 { ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8 }

    static func record(_ payload: Data) -> Data {
        var length = Data()
        withUnsafeBytes(of: UInt64(payload.count).littleEndian) { length.append(contentsOf: $0) }
        var record = length
        withUnsafeBytes(of: masked(crc32c(length)).littleEndian) { record.append(contentsOf: $0) }
        record.append(payload)
        withUnsafeBytes(of: masked(crc32c(payload)).littleEndian) { record.append(contentsOf: $0) }
        return record
    }

    /// The payloads of `data`, each CRC checked; a damaged or cut record is an error naming its offset.
    static func payloads(_ data: Data, file: String) throws -> [Data] {
        let bytes = [UInt8](data)
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) } }
        var payloads: [Data] = [], at = 0
        while at < bytes.count {
            guard bytes.count - at >= 12 else { throw DataError(file, "record at byte \(at) is cut short (truncated?)") }
            let length = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) }
            guard masked(crc32c(bytes[at..<(at + 8)])) == u32(at + 8) else { throw DataError(file, "record at byte \(at) fails its length CRC") }
            guard length <= UInt64(bytes.count - at - 16) else { throw DataError(file, "record at byte \(at) claims \(length) bytes, past the end (truncated?)") }
            let start = at + 12, end = start + Int(length)
            guard masked(crc32c(bytes[start..<end])) == u32(end) else { throw DataError(file, "record at byte \(at) fails its data CRC") }
            payloads.append(Data(bytes[start..<end]))
            at = end + 4
        }
        return payloads
    }
}

/// One run's event file, written whole and atomically (temporary file, then rename) at every
/// `flush`, so a reader never sees half a record.
final class EventFileWriter {
    let url: URL
    private var contents = Data()

    /// A new file `events.out.tfevents.<seconds>.<host>.<pid>.kiln` in `folder`, opened with the
    /// `file_version` event TensorBoard expects first.
    init(folder: URL) throws {
        try ensureWritableFolder(folder)
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "localhost"
        url = folder.appendingPathComponent("events.out.tfevents.\(Int(Date().timeIntervalSince1970)).\(host).\(getpid()).kiln")
        var event = Tensorboard_Event()
        event.wallTime = Date().timeIntervalSince1970
        event.fileVersion = "brain.Event:2"
        try append(event)
        try flush()
    }

    func append(_ event: Tensorboard_Event) throws { contents.append(EventRecords.record(try event.serializedData())) }

    /// Summary values at `step`.
    func write(_ values: [Tensorboard_Summary.Value], step: Int) throws {
        guard !values.isEmpty else { return }
        var event = Tensorboard_Event()
        (event.wallTime, event.step) = (Date().timeIntervalSince1970, Int64(step))
        event.summary.value = values
        try append(event)
    }

    func flush() throws { try writeAtomically(contents, to: url) }
}

/// Reads event files back (Kiln's own or TensorFlow's), checking every CRC.
public enum EventFile {
    /// A value of one summary: a scalar, a histogram (bucket limits and counts), text, or an image.
    public enum Value: Equatable, Sendable {
        case scalar(Float)
        case histogram(limits: [Double], counts: [Double])
        case text(String)
        case image(width: Int, height: Int, png: Data)
    }

    /// Every summary value in the file: (tag, step, value), in file order.
    public static func read(_ url: URL) throws -> [(tag: String, step: Int, value: Value)] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw DataError(url.path, "cannot read (\(error.localizedDescription))") }
        var values: [(tag: String, step: Int, value: Value)] = []
        for (index, payload) in try EventRecords.payloads(data, file: url.path).enumerated() {
            let event: Tensorboard_Event
            do { event = try Tensorboard_Event(serializedBytes: payload) } catch { throw DataError(url.path, "record \(index) is not an Event (\(error))") }
            for value in event.summary.value {
                switch value.value {
                case .simpleValue(let x): values.append((value.tag, Int(event.step), .scalar(x)))
                case .histo(let h): values.append((value.tag, Int(event.step), .histogram(limits: h.bucketLimit, counts: h.bucket)))
                case .image(let i): values.append((value.tag, Int(event.step), .image(width: Int(i.width), height: Int(i.height), png: i.encodedImageString)))
                case .tensor(let t) where t.dtype == 7 && t.stringVal.count == 1:
                    values.append((value.tag, Int(event.step), .text(String(decoding: t.stringVal[0], as: UTF8.self))))
                case .tensor(let t) where t.dtype == 1 && (t.floatVal.count == 1 || t.tensorContent.count == 4):  // TF 2's scalars are tensors
                    let x = t.floatVal.first ?? Float(bitPattern: t.tensorContent.reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
                    values.append((value.tag, Int(event.step), .scalar(x)))
                default: continue
                }
            }
        }
        return values
    }
}
