import Foundation

/// Random image transformations applied on the fly to training batches, seeded per sample and epoch
/// (the same seed gives the same images). One affine map per image, sampled bilinearly; pixels
/// from outside the image are 0.
public struct Augmentation: Hashable, Sendable {
    /// Mirror left-right with probability 1/2.
    public var horizontalFlip = false
    /// Shift by up to this fraction of the height/width (Keras `RandomTranslation`).
    public var translation: Double = 0
    /// Rotate by up to this fraction of a full turn either way (Keras `RandomRotation`).
    public var rotation: Double = 0
    /// Zoom in or out by up to this fraction (Keras `RandomZoom`).
    public var zoom: Double = 0
    /// Pad by this many pixels, then crop back at a random offset.
    public var cropPadding = 0

    public init(horizontalFlip: Bool = false, translation: Double = 0, rotation: Double = 0, zoom: Double = 0, cropPadding: Int = 0) {
        (self.horizontalFlip, self.translation, self.rotation, self.zoom, self.cropPadding) = (horizontalFlip, translation, rotation, zoom, cropPadding)
    }

    /// Parses `flip,shift=0.1,rotate=0.05,zoom=0.1,crop=4` (any subset, any order).
    public init(spec: String) throws {
        for item in spec.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            let value = parts.count == 2 ? Double(parts[1]) : nil
            switch (parts[0], value) {
            case ("flip", nil) where parts.count == 1: horizontalFlip = true
            case ("shift", let v?) where (0...1).contains(v): translation = v
            case ("rotate", let v?) where (0...1).contains(v): rotation = v
            case ("zoom", let v?) where (0..<1).contains(v): zoom = v
            case ("crop", let v?) where v >= 0 && v == v.rounded(): cropPadding = Int(v)
            default:
                throw DataError("--augment", "cannot read '\(item)'; expected flip, shift=F, rotate=F, zoom=F (fractions) or crop=PIXELS")
            }
        }
    }

    public var isIdentity: Bool { self == Augmentation() }

    /// Writes a transformed copy of one HWC image (`source` already normalised) into `target`.
    func apply(_ source: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>, shape: [Int], random: inout RandomGenerator) {
        let (h, w, c) = (shape[0], shape[1], shape[2])
        let flip = horizontalFlip && random.uniform() < 0.5
        let angle = (random.uniform() * 2 - 1) * rotation * 2 * .pi
        let scale = 1 + (random.uniform() * 2 - 1) * zoom
        var dy = (random.uniform() * 2 - 1) * translation * Double(h)
        var dx = (random.uniform() * 2 - 1) * translation * Double(w)
        if cropPadding > 0 {
            dy += Double(Int(random.next() % UInt64(2 * cropPadding + 1)) - cropPadding)
            dx += Double(Int(random.next() % UInt64(2 * cropPadding + 1)) - cropPadding)
        }
        let (cy, cx) = (Double(h - 1) / 2, Double(w - 1) / 2)
        let (cosA, sinA) = (cos(angle), sin(angle))
        for y in 0..<h {
            for x in 0..<w {
                // Inverse map: output pixel → source position.
                let u = (Double(x) - cx - dx) / scale, v = (Double(y) - cy - dy) / scale
                var sx = cosA * u + sinA * v + cx
                let sy = -sinA * u + cosA * v + cy
                if flip { sx = Double(w - 1) - sx }
                let out = target + (y * w + x) * c
                let (x0, y0) = (Int(floor(sx)), Int(floor(sy)))
                let (fx, fy) = (Float(sx - Double(x0)), Float(sy - Double(y0)))
                for ch in 0..<c {
                    func pixel(_ yy: Int, _ xx: Int) -> Float {
                        yy >= 0 && yy < h && xx >= 0 && xx < w ? source[(yy * w + xx) * c + ch] : 0
                    }
                    let top = pixel(y0, x0) * (1 - fx) + pixel(y0, x0 + 1) * fx
                    let bottom = pixel(y0 + 1, x0) * (1 - fx) + pixel(y0 + 1, x0 + 1) * fx
                    out[ch] = top * (1 - fy) + bottom * fy
                }
            }
        }
    }
}
