import Foundation

/// The IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/), gzipped or not:
/// a big-endian magic `0x00 0x00 type rank`, `rank` big-endian 32-bit sizes, then the data.
public enum IDX {
    /// The unsigned-byte array of an IDX file and its dimensions.
    public static func read(_ url: URL) throws -> (bytes: [UInt8], shape: [Int]) {
        let file = url.path
        let raw: Data
        do { raw = try Data(contentsOf: url) } catch { throw DataError(file, "cannot read (\(error.localizedDescription))") }
        let data = [UInt8](try Compression.gunzipIfNeeded(raw, file: file))
        guard data.count >= 4, data[0] == 0, data[1] == 0 else {
            throw DataError(file, "not an IDX file: expected magic 0x0000 then type and rank, found \(data.prefix(4).map { String(format: "%02x", $0) }.joined())")
        }
        guard data[2] == 0x08 else { throw DataError(file, "IDX type 0x\(String(data[2], radix: 16)) is not unsigned bytes (0x08)") }
        let rank = Int(data[3])
        guard rank >= 1, data.count >= 4 + 4 * rank else { throw DataError(file, "IDX header declares rank \(rank) but the file ends first") }
        let shape = (0..<rank).map { axis in
            data[4 + 4 * axis ..< 8 + 4 * axis].reduce(0) { $0 << 8 | Int($1) }
        }
        let start = 4 + 4 * rank
        guard let expected = Memory.count(shape), data.count - start == expected else {
            throw DataError(file, "IDX header promises \(shape.map(String.init).joined(separator: "×")) bytes, file holds \(data.count - start)")
        }
        return (Array(data[start...]), shape)
    }

    /// An images file (N×H×W) and its labels file (N) as a dataset of (H, W, 1) images.
    public static func dataset(images: URL, labels: URL, classNames: [String]? = nil) throws -> Dataset {
        let (pixels, imageShape) = try read(images)
        let (labelBytes, labelShape) = try read(labels)
        guard imageShape.count == 3 else { throw DataError(images.path, "expected images of rank 3 (N×H×W), found shape \(imageShape)") }
        guard labelShape == [imageShape[0]] else {
            throw DataError(labels.path, "expected \(imageShape[0]) labels to match \(images.lastPathComponent), found shape \(labelShape)")
        }
        return Dataset(features: .bytes(pixels), sampleShape: [imageShape[1], imageShape[2], 1],
                       labels: labelBytes.map { Int32($0) }, classNames: classNames)
    }
}
