/// Keras's `ZeroPadding2D`: rows of zeros above and below, columns left and right, of (H, W, C) images.
public final class ZeroPadding2D: Layer {
    public let padding: (top: Int, bottom: Int, left: Int, right: Int)

    public init(padding: (top: Int, bottom: Int, left: Int, right: Int), name: String? = nil) {
        self.padding = padding
        super.init(name: name, kind: "zero_padding2d")
    }

    /// The same padding on every side (`ZeroPadding2D(1)`), or per axis.
    public convenience init(_ size: Int = 1, name: String? = nil) { self.init(padding: (size, size, size, size), name: name) }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        let input = try single(inputShapes)
        let sizes = [padding.top, padding.bottom, padding.left, padding.right]
        guard input.count == 3, sizes.allSatisfy({ $0 >= 0 }) else { throw shapeError("pads (height, width, channels) images by sizes ≥ 0, got \(input) and \(sizes)") }
        return [input[0] + padding.top + padding.bottom, input[1] + padding.left + padding.right, input[2]]
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        var x = inputs[0]
        func zeros(_ shape: [Int]) throws -> Tensor { try Tensor.zeros(shape, on: x.device) }
        let (n, w, c) = (x.shape[0], x.shape[2], x.shape[3])
        let rows = [padding.top > 0 ? try zeros([n, padding.top, w, c]) : nil, x, padding.bottom > 0 ? try zeros([n, padding.bottom, w, c]) : nil]
        x = try Tensor.concatenate(rows.compactMap { $0 }, axis: 1)
        let h = x.shape[1]
        let columns = [padding.left > 0 ? try zeros([n, h, padding.left, c]) : nil, x, padding.right > 0 ? try zeros([n, h, padding.right, c]) : nil]
        return try Tensor.concatenate(columns.compactMap { $0 }, axis: 2)
    }
}

/// Keras's `Cropping2D`: rows cut from the top and bottom, columns from the left and right.
public final class Cropping2D: Layer {
    public let cropping: (top: Int, bottom: Int, left: Int, right: Int)

    public init(cropping: (top: Int, bottom: Int, left: Int, right: Int), name: String? = nil) {
        self.cropping = cropping
        super.init(name: name, kind: "cropping2d")
    }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        let input = try single(inputShapes)
        let c = cropping
        guard input.count == 3, [c.top, c.bottom, c.left, c.right].allSatisfy({ $0 >= 0 }),
              c.top + c.bottom < input[0], c.left + c.right < input[1] else {
            throw shapeError("cannot crop \(c) from (height, width, channels) images \(input)")
        }
        return [input[0] - c.top - c.bottom, input[1] - c.left - c.right, input[2]]
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0], c = cropping
        return try x.sliced(c.top..<x.shape[1] - c.bottom, axis: 1).sliced(c.left..<x.shape[2] - c.right, axis: 2)
    }
}

/// Keras's `UpSampling2D`: each image `size` times larger down and across, by repeating pixels
/// (`nearest`) or by `bilinear` interpolation at half-pixel centres (TensorFlow's `resize`, PyTorch's
/// `align_corners=False`). The gradient adds each output back into the pixels it was read from.
public final class UpSampling2D: Layer {
    public enum Interpolation: String, Sendable { case nearest, bilinear }
    public let size: (Int, Int)
    public let interpolation: Interpolation

    public init(size: (Int, Int) = (2, 2), interpolation: Interpolation = .nearest, name: String? = nil) {
        (self.size, self.interpolation) = (size, interpolation)
        super.init(name: name, kind: "up_sampling2d")
    }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        let input = try single(inputShapes)
        guard input.count == 3, size.0 > 0, size.1 > 0 else { throw shapeError("repeats (height, width, channels) images by sizes > 0, got \(input) and \(size)") }
        return [input[0] * size.0, input[1] * size.1, input[2]]
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try upsampled(upsampled(inputs[0], axis: 1, by: size.0), axis: 2, by: size.1)
    }

    private func upsampled(_ x: Tensor, axis: Int, by factor: Int) throws -> Tensor {
        let out = x.shape[axis] * factor
        guard interpolation == .bilinear else { return try x.gathered((0..<out).map { $0 / factor }, axis: axis) }
        return try x.interpolated(at: (0..<out).map { (Float($0) + 0.5) / Float(factor) - 0.5 }, axis: axis)  // half-pixel centres
    }
}
