import CZlib
import Foundation

/// zlib inflation for gzip files (`.gz`) and zip entries (raw deflate).
enum Compression {
    /// The bytes of a gzip file, or the bytes themselves when they are not gzip-compressed.
    static func gunzipIfNeeded(_ data: Data, file: String) throws -> Data {
        guard data.count >= 2, data[data.startIndex] == 0x1f, data[data.startIndex + 1] == 0x8b else { return data }
        return try inflate(data, windowBits: 15 + 32, file: file)
    }

    /// `data` as a gzip file.
    static func gzip(_ data: Data) throws -> Data {
        var stream = z_stream()
        guard deflateInit2_(&stream, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
                            Int32(MemoryLayout<z_stream>.size)) == Z_OK else { throw DataError("gzip", "zlib could not start deflating") }
        defer { deflateEnd(&stream) }
        var output = Data(count: Int(deflateBound(&stream, uLong(data.count))) + 32)
        var input = [UInt8](data)
        let status = input.withUnsafeMutableBufferPointer { inp in
            output.withUnsafeMutableBytes { out in
                (stream.next_in, stream.avail_in) = (inp.baseAddress, uInt(inp.count))
                (stream.next_out, stream.avail_out) = (out.bindMemory(to: Bytef.self).baseAddress, uInt(out.count))
                return deflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END else { throw DataError("gzip", "zlib could not deflate (status \(status))") }
        output.count = Int(stream.total_out)
        return output
    }

    /// Raw deflate (zip method 8) with a known output size.
    static func inflateRaw(_ data: Data, expectedCount: Int, file: String) throws -> Data {
        let result = try inflate(data, windowBits: -15, file: file, sizeHint: expectedCount)
        guard result.count == expectedCount else {
            throw DataError(file, "inflated to \(result.count) bytes, expected \(expectedCount)")
        }
        return result
    }

    private static func inflate(_ data: Data, windowBits: Int32, file: String, sizeHint: Int? = nil) throws -> Data {
        var stream = z_stream()
        guard inflateInit2_(&stream, windowBits, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DataError(file, "zlib could not start inflating")
        }
        defer { inflateEnd(&stream) }
        let initial = max(sizeHint ?? data.count.multipliedReportingOverflow(by: 4).partialValue, 1024)
        try Memory.require(initial, of: 1, for: "inflating \(file)")
        var output = Data(count: initial)
        var produced = 0
        let status: Int32 = data.withUnsafeBytes { input in
            stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(input.count)
            while true {
                if produced == output.count {
                    do { try Memory.require(output.count * 2, of: 1, for: "inflating \(file)") } catch { return Z_MEM_ERROR }
                    output.count *= 2
                }
                let status = output.withUnsafeMutableBytes { out -> Int32 in
                    stream.next_out = out.bindMemory(to: Bytef.self).baseAddress! + produced
                    stream.avail_out = uInt(out.count - produced)
                    let status = CZlib.inflate(&stream, Z_NO_FLUSH)
                    produced = out.count - Int(stream.avail_out)
                    return status
                }
                // A gzip file may hold several members; carry on while input remains.
                if status == Z_STREAM_END, stream.avail_in > 0, windowBits > 0 {
                    inflateReset(&stream)
                    continue
                }
                if status != Z_OK { return status }
                if stream.avail_in == 0 && stream.avail_out > 0 { return Z_BUF_ERROR }
            }
        }
        guard status == Z_STREAM_END else {
            throw DataError(file, status == Z_BUF_ERROR ? "compressed data ends early (truncated file?)"
                : status == Z_MEM_ERROR ? "inflates to more than the \(Memory.available / 1_000_000) MB of memory available"
                : "corrupt compressed data (zlib status \(status))")
        }
        output.count = produced
        return output
    }
}
