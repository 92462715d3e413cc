import CKernels

/// Depthwise convolutions (`ConvShape.groups` = input channels) on the CPU: the direct NHWC kernels
/// of CKernels/depthwise.c, padding clipped rather than copied, split over rows or images.
extension CPUDevice {
    func depthwiseConv2d(_ s: ConvShape, input: Buffer, weight: Buffer, bias: Buffer?, relu: Bool, output: Buffer) {
        withUnsafePointer(to: s.depthwiseGeometry) { g in
            parallelFor(s.batch * s.window.outputHeight, grain: 2) { rows in
                kiln_depthwise_forward(g, input.host, weight.host, bias.map { UnsafePointer($0.host) }, relu ? 1 : 0, output.host,
                                       rows.lowerBound, rows.upperBound)
            }
        }
    }

    func depthwiseBackwardData(_ s: ConvShape, gradOutput: Buffer, weight: Buffer, gradInput: Buffer) {
        withUnsafePointer(to: s.depthwiseGeometry) { g in
            parallelFor(s.batch * s.window.inputHeight, grain: 2) { rows in
                kiln_depthwise_input_grad(g, gradOutput.host, weight.host, gradInput.host, rows.lowerBound, rows.upperBound)
            }
        }
    }

    /// Each thread sums its share of the images into its own buffers; the shares are added at the end.
    func depthwiseBackwardWeights(_ s: ConvShape, input: Buffer, gradOutput: Buffer, gradWeight: Buffer, gradBias: Buffer?) throws {
        let parts = min(threads, s.batch), (weights, biases) = (s.weightCount, s.outChannels)
        let scratch = parts > 1 ? try makeBuffer(count: (parts - 1) * (weights + biases)) : nil
        func partial(_ part: Int) -> UnsafeMutablePointer<Float> { scratch!.host + (part - 1) * (weights + biases) }
        withUnsafePointer(to: s.depthwiseGeometry) { g in
            parallel(parts) { part in
                let dw = part == 0 ? gradWeight.host : partial(part)
                let db = gradBias == nil ? nil : part == 0 ? gradBias!.host : partial(part) + weights
                kiln_depthwise_weight_grad(g, input.host, gradOutput.host, dw, db, s.batch * part / parts, s.batch * (part + 1) / parts)
            }
        }
        for part in 1..<max(parts, 1) {
            kiln_accumulate(gradWeight.host, partial(part), weights)
            if let gradBias { kiln_accumulate(gradBias.host, partial(part) + weights, biases) }
        }
    }
}

extension ConvShape {
    var depthwiseGeometry: kiln_depthwise {
        let w = window
        return kiln_depthwise(batch: batch, in_h: w.inputHeight, in_w: w.inputWidth, channels: inChannels, multiplier: multiplier,
                              out_h: w.outputHeight, out_w: w.outputWidth, k_h: w.kernelHeight, k_w: w.kernelWidth,
                              stride_h: w.strideHeight, stride_w: w.strideWidth, dilation_h: w.dilationHeight, dilation_w: w.dilationWidth,
                              pad_top: w.padTop, pad_left: w.padLeft)
    }
}
