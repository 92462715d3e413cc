import CImageIO
import Foundation

/// Images tiled into one PNG: an autoencoder's reconstructions or a generator's samples after each
/// epoch, as the Keras tutorials show them with matplotlib.
public enum ImageGrid {
    /// Writes `images` (NHWC, 1 or 3 channels) `columns` across with a 2-pixel dark gap, values mapped
    /// from `range` to 0–255 (clipped; a tanh generator's is -1...1), atomically.
    public static func write(_ images: Tensor, columns: Int = 8, range: ClosedRange<Float> = 0...1, to url: URL) throws {
        try writeAtomically(try png(images, columns: columns, range: range), to: url)
    }

    /// The grid's PNG bytes.
    public static func png(_ images: Tensor, columns: Int = 8, range: ClosedRange<Float> = 0...1) throws -> Data {
        guard images.rank == 4, [1, 3].contains(images.shape[3]), columns > 0, range.upperBound > range.lowerBound else {
            throw TensorError.shape("image grid: takes NHWC images of 1 or 3 channels and columns > 0, got \(images.shape) and \(columns)")
        }
        let (n, h, w, c) = (images.shape[0], images.shape[1], images.shape[2], images.shape[3])
        let (gap, across) = (2, min(columns, n))
        let down = (n + across - 1) / across
        let (width, height) = (across * (w + gap) + gap, down * (h + gap) + gap)
        let values = try images.toArray()
        var pixels = [UInt8](repeating: 24, count: width * height * c)
        let scale = 255 / (range.upperBound - range.lowerBound)
        for image in 0..<n {
            let (top, left) = (gap + image / across * (h + gap), gap + image % across * (w + gap))
            for y in 0..<h { for x in 0..<w { for k in 0..<c {
                let v = (values[((image * h + y) * w + x) * c + k] - range.lowerBound) * scale
                pixels[((top + y) * width + left + x) * c + k] = v.isNaN ? 0 : UInt8(min(max(v.rounded(), 0), 255))
            }}}
        }
        var output: UnsafeMutablePointer<UInt8>?
        var size = 0
        var error = [CChar](repeating: 0, count: 256)
        guard kiln_encode_png(pixels, Int32(width), Int32(height), Int32(c), &output, &size, &error, error.count) == 0, let output else {
            throw TensorError.shape("image grid: \(String(cString: error))")
        }
        defer { free(output) }
        return Data(bytes: output, count: size)
    }
}
