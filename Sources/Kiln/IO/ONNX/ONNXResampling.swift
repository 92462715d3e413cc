/// ONNX's upsampling ops: ConvTranspose (NCHW, weights (in, out, kh, kw)) and Resize/Upsample
/// (nearest and linear, per axis, with ONNX's coordinate transformations).
extension ONNXOp {
    func transposedConvolution(_ x: Tensor, _ w: Tensor, _ bias: Tensor?) throws -> Tensor {
        guard int("group", 1) == 1 else { throw fail("group \(int("group", 1)) is not supported") }
        guard x.rank == w.rank, x.rank == 3 || x.rank == 4, x.shape[1] == w.shape[0] else {
            throw fail("input \(x.shape) and kernel \(w.shape): other than 1-D or 2-D transposed convolution is not supported, or they do not fit")
        }
        let lift = x.rank == 3  // 1-D: height-1 images
        let kernel = lift ? try w.reshaped([w.shape[0], w.shape[1], 1, w.shape[2]]) : w
        func pair(_ values: [Int]?, _ fallback: Int) throws -> [Int] {
            let v = values ?? [Int](repeating: fallback, count: x.rank - 2)
            guard v.count == x.rank - 2 else { throw fail("\(v) does not fit \(x.rank - 2)-D input") }
            return lift ? [fallback] + v : v
        }
        let strides = try pair(ints("strides"), 1), dilations = try pair(ints("dilations"), 1)
        guard dilations.allSatisfy({ $0 >= 1 }) else { throw fail("dilations \(dilations) must be at least 1") }
        var extra = try pair(ints("output_padding"), 0)
        let size = lift ? [1, x.shape[2]] : [x.shape[2], x.shape[3]]
        let k = [(kernel.shape[2] - 1) * dilations[0] + 1, (kernel.shape[3] - 1) * dilations[1] + 1]  // the dilated span
        var pads = ints("pads") ?? [Int](repeating: 0, count: 2 * (x.rank - 2))
        guard pads.count == 2 * (x.rank - 2) else { throw fail("pads \(pads) do not fit \(x.rank - 2)-D input") }
        if lift { pads = [0, pads[0], 0, pads[1]] }
        let autoPad = string("auto_pad") ?? "NOTSET"
        let same: [Int]? = autoPad.hasPrefix("SAME") ? (0..<x.rank - 2).map { (i: Int) -> Int in x.shape[2 + i] * strides[strides.count - (x.rank - 2) + i] } : nil
        if let wanted = ints("output_shape") ?? same {
            // ONNX: the total padding that gives `output_shape`; SAME_UPPER puts its odd pixel at the end, the others at the start.
            let target = lift ? [1] + wanted.suffix(1) : Array(wanted.suffix(2))
            let totals: [Int] = (0..<2).map { (i: Int) -> Int in
                let reach: Int = strides[i] * (size[i] - 1) + extra[i] + k[i]
                return reach - target[i]
            }
            let upper = autoPad == "SAME_UPPER"
            let half = totals.map { $0 >= 0 ? $0 / 2 : ($0 - 1) / 2 }  // rounded down, as ONNX's reference (Python's //)
            let start = zip(totals, half).map { upper ? $1 : $0 - $1 }
            pads = [start[0], start[1], totals[0] - start[0], totals[1] - start[1]]
        } else if autoPad == "VALID" { pads = [0, 0, 0, 0] }
        for i in 0..<2 where pads[i + 2] < 0 {  // a negative end pad is extra output: output padding
            (extra[i], pads[i + 2]) = (extra[i] - pads[i + 2], 0)
        }
        let shape: TransposedConvShape
        do {
            shape = try TransposedConvShape(batch: x.shape[0], input: (size[0], size[1]), inChannels: x.shape[1], filters: kernel.shape[1],
                                            kernel: (k[0], k[1]), stride: (strides[0], strides[1]),
                                            pads: (pads[0], pads[1], pads[2], pads[3]), outputPadding: (extra[0], extra[1]))
        } catch { throw fail("\(error)") }
        return try asImages(x) {
            try $0.permuted([0, 2, 3, 1]).conv2dTranspose(kernel.permuted([2, 3, 1, 0]).dilatedKernel((dilations[0], dilations[1])), bias: bias,
                                                          shape: shape).permuted([0, 3, 1, 2])
        }
    }

    /// Resize (opset 10+: X, roi, scales, sizes; opset 10: X, scales) and Upsample (X, scales), one axis at a time.
    func resized(_ x: Tensor, _ arguments: [Tensor?]) throws -> Tensor {
        let mode = string("mode") ?? "nearest"
        guard mode == "nearest" || mode == "linear" else { throw fail("mode '\(mode)' is not supported (nearest and linear are)") }
        guard int("antialias", 0) == 0, (string("keep_aspect_ratio_policy") ?? "stretch") == "stretch", attribute("axes") == nil else {
            throw fail("antialias, keep_aspect_ratio_policy and axes are not supported")
        }
        // Before opset 11, Resize and Upsample scale asymmetrically and pick the nearest pixel below.
        let modern = node.opType == "Resize" && opset >= 11
        let transform = modern ? string("coordinate_transformation_mode") ?? "half_pixel" : "asymmetric"
        let rounding = modern ? string("nearest_mode") ?? "round_prefer_floor" : "floor"
        let scaleInput = modern ? 2 : 1
        let sizes = modern ? try hostValues(3, arguments) : nil
        let scales = try hostValues(scaleInput, arguments).flatMap { $0.isEmpty ? nil : $0 } ?? attribute("scales")?.floats
        var y = x
        for axis in 0..<x.rank {
            let n = x.shape[axis]
            let (out, scale): (Int, Float)
            if let sizes, sizes.count == x.rank {
                (out, scale) = (Int(sizes[axis]), sizes[axis] / Float(n))
            } else if let scales, scales.count == x.rank, scales[axis] > 0 {
                (out, scale) = (Int((Float(n) * scales[axis]).rounded(.down)), scales[axis])
            } else { throw fail("needs scales or sizes for each of the \(x.rank) axes of \(x.shape)") }
            let length = Float(n) * scale  // the unrounded output length, which align_corners divides by
            guard out >= 1 else { throw fail("axis \(axis) of \(x.shape) resizes to \(out) elements") }
            guard out != n || scale != 1 else { continue }
            let positions = try (0..<out).map { try source(Float($0), scale: scale, input: n, output: out, length: length, transform) }
            if mode == "linear" {
                y = try y.interpolated(at: positions, axis: axis)
            } else {
                y = try y.gathered(positions.map { min(max(nearest($0, rounding), 0), n - 1) }, axis: axis)
            }
        }
        return y
    }

    /// The input coordinate that output element `o` samples (ONNX's coordinate_transformation_mode).
    private func source(_ o: Float, scale: Float, input: Int, output: Int, length: Float, _ transform: String) throws -> Float {
        switch transform {
        case "half_pixel": return (o + 0.5) / scale - 0.5
        case "pytorch_half_pixel": return length > 1 ? (o + 0.5) / scale - 0.5 : 0
        case "align_corners": return length == 1 ? 0 : o * Float(input - 1) / (length - 1)
        case "asymmetric": return o / scale
        case "tf_half_pixel_for_nn": return (o + 0.5) / scale
        case "half_pixel_symmetric":
            let adjustment = Float(output) / length, center = Float(input) / 2
            return center * (1 - adjustment) + (o + 0.5) / scale - 0.5
        default: throw fail("coordinate_transformation_mode '\(transform)' is not supported")
        }
    }

    private func nearest(_ x: Float, _ rounding: String) -> Int {
        switch rounding {
        case "floor": return Int(x.rounded(.down))
        case "ceil": return Int(x.rounded(.up))
        case "round_prefer_ceil": return Int((x + 0.5).rounded(.down))
        default: return Int((x - 0.5).rounded(.up))  // round_prefer_floor
        }
    }
}
