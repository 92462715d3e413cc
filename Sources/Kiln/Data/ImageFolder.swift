import CImageIO
import Foundation

/// Images in one sub-folder per class (`cats/…`, `dogs/…`), PNG or JPEG, resized to a fixed size.
public enum ImageFolder {
    /// Decodes an image file to 8-bit pixels (H, W, C) with C = 1 (gray), 3 (RGB) or 4 (RGBA).
    public static func decode(_ url: URL) throws -> (pixels: [UInt8], height: Int, width: Int, channels: Int) {
        var image = kiln_image()
        var message = [CChar](repeating: 0, count: 256)
        let status: Int32
        switch url.pathExtension.lowercased() {
        case "png": status = kiln_decode_png(url.path, &image, &message, message.count)
        case "jpg", "jpeg": status = kiln_decode_jpeg(url.path, &image, &message, message.count)
        default: throw DataError(url.path, "not a PNG or JPEG file (by its extension)")
        }
        guard status == 0 else { throw DataError(url.path, "cannot decode: \(String(cString: message))") }
        defer { kiln_image_free(&image) }
        let count = Int(image.width) * Int(image.height) * Int(image.channels)
        return ([UInt8](UnsafeBufferPointer(start: image.pixels, count: count)), Int(image.height), Int(image.width), Int(image.channels))
    }

    /// Converts to `channels` (1 or 3) and resizes bilinearly to `size`.
    public static func resize(_ image: (pixels: [UInt8], height: Int, width: Int, channels: Int), to size: (height: Int, width: Int),
                       channels: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: size.height * size.width * channels)
        let (sy, sx) = (Double(image.height) / Double(size.height), Double(image.width) / Double(size.width))
        func value(_ y: Int, _ x: Int, _ c: Int) -> Double {
            let base = (y * image.width + x) * image.channels
            let color = image.channels >= 3
            if channels == 1 {
                return color ? 0.299 * Double(image.pixels[base]) + 0.587 * Double(image.pixels[base + 1]) + 0.114 * Double(image.pixels[base + 2])
                    : Double(image.pixels[base])
            }
            return Double(image.pixels[base + (color ? c : 0)])
        }
        for y in 0..<size.height {
            let fy = max(0, min(Double(image.height - 1), (Double(y) + 0.5) * sy - 0.5))
            let (y0, wy) = (Int(fy), fy - Double(Int(fy)))
            let y1 = min(y0 + 1, image.height - 1)
            for x in 0..<size.width {
                let fx = max(0, min(Double(image.width - 1), (Double(x) + 0.5) * sx - 0.5))
                let (x0, wx) = (Int(fx), fx - Double(Int(fx)))
                let x1 = min(x0 + 1, image.width - 1)
                for c in 0..<channels {
                    let top = value(y0, x0, c) * (1 - wx) + value(y0, x1, c) * wx
                    let bottom = value(y1, x0, c) * (1 - wx) + value(y1, x1, c) * wx
                    out[(y * size.width + x) * channels + c] = UInt8(max(0, min(255, (top * (1 - wy) + bottom * wy).rounded())))
                }
            }
        }
        return out
    }

    /// Every PNG/JPEG under `folder/<class>/`, classes in sorted order, resized to `size` with `channels` (1 or 3).
    public static func dataset(_ folder: URL, size: (height: Int, width: Int), channels: Int = 3) throws -> Dataset {
        let manager = FileManager.default
        guard let classes = try? manager.contentsOfDirectory(atPath: folder.path).filter({
            var isDirectory: ObjCBool = false
            return !$0.hasPrefix(".") && manager.fileExists(atPath: folder.appendingPathComponent($0).path, isDirectory: &isDirectory) && isDirectory.boolValue
        }).sorted(), !classes.isEmpty else {
            throw DataError(folder.path, "expected one sub-folder per class with PNG or JPEG images in it")
        }
        guard size.height > 0, size.width > 0, let sample = Memory.count([size.height, size.width, channels]) else {
            throw DataError(folder.path, "image size \(size.height)×\(size.width)×\(channels) is not a positive size")
        }
        let files = try classes.enumerated().flatMap { label, name in
            try manager.contentsOfDirectory(atPath: folder.appendingPathComponent(name).path)
                .filter { ["png", "jpg", "jpeg"].contains(URL(fileURLWithPath: $0).pathExtension.lowercased()) }.sorted()
                .map { (url: folder.appendingPathComponent(name).appendingPathComponent($0), label: Int32(label)) }
        }
        try Memory.require(Memory.count([files.count + 1, sample]) ?? -1, of: 1,
                           for: "\(folder.path): \(files.count) images at \(size.height)×\(size.width)×\(channels)")
        var pixels: [UInt8] = [], labels: [Int32] = []
        pixels.reserveCapacity(files.count * sample)
        for (url, label) in files {
            pixels += resize(try decode(url), to: size, channels: channels)
            labels.append(label)
        }
        guard !labels.isEmpty else { throw DataError(folder.path, "no PNG or JPEG images in the class folders \(classes.joined(separator: ", "))") }
        return Dataset(features: .bytes(pixels), sampleShape: [size.height, size.width, channels], labels: labels, classNames: classes)
    }
}
