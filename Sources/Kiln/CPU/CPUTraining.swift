import CKernels
import Foundation

/// Batch normalization and optimizer updates on the CPU.
extension CPUDevice {
    /// Visits element offsets of channel `c` in an `[outer, axis, inner]` view.
    private func forChannel(_ view: AxisView, _ c: Int, _ body: (Int) -> Void) {
        for o in 0..<view.outer {
            let base = (o * view.axis + c) * view.inner
            for i in base..<base + view.inner { body(i) }
        }
    }

    /// Channels-last views (`inner` = 1, NHWC images and dense rows) run row by row, so that the
    /// channel loops are contiguous and vectorise; others channel by channel.
    private func isRows(_ view: AxisView) -> Bool { view.inner == 1 }

    /// `terms` sums per channel of a channels-last view: `add(rows, sums)` adds those rows' terms into
    /// `sums` (`terms` × channels floats). Each thread sums a fixed share of the rows; the shares
    /// are added in order, so the result does not depend on timing.
    private func rowSums(_ view: AxisView, terms: Int, _ add: (Range<Int>, UnsafeMutablePointer<Float>) -> Void) -> [Float] {
        let (parts, width) = (max(1, min(threads, view.outer)), terms * view.axis)
        var partial = [Float](repeating: 0, count: parts * width)
        partial.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            parallel(parts) { part in
                add(view.outer * part / parts ..< view.outer * (part + 1) / parts, base + part * width)
            }
        }
        return (0..<width).map { i in stride(from: i, to: partial.count, by: width).reduce(0) { $0 + partial[$1] } }
    }

    /// y = x · scale[c] + shift[c] over a view.
    private func scaleAndShift(_ view: AxisView, _ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, scale: [Float], shift: [Float]) {
        let channels = view.axis
        scale.withUnsafeBufferPointer { scale in
            shift.withUnsafeBufferPointer { shift in
                if isRows(view) {
                    parallelFor(view.outer, grain: max(1, 32768 / channels)) { rows in
                        kiln_norm_apply(x, nil, y, scale.baseAddress, nil, shift.baseAddress, channels, rows.lowerBound, rows.upperBound)
                    }
                } else {
                    parallelFor(channels, grain: 1) { range in
                        for c in range { forChannel(view, c) { y[$0] = x[$0] * scale[c] + shift[c] } }
                    }
                }
            }
        }
    }

    /// Per-channel sums of `term(i)` over the elements of a view that is not channels-last (those
    /// use `rowSums`, whose loops vectorise).
    private func channelSums(_ view: AxisView, _ term: (Int) -> Float) -> [Float] {
        let channels = view.axis
        var sums = [Float](repeating: 0, count: channels)
        sums.withUnsafeMutableBufferPointer { sums in
            let base = sums.baseAddress!
            parallelFor(channels, grain: 1) { range in
                for c in range {
                    var sum: Float = 0
                    forChannel(view, c) { sum += term($0) }
                    base[c] = sum
                }
            }
        }
        return sums
    }

    public func batchNormTraining(_ input: Buffer, view: AxisView, gamma: Buffer, beta: Buffer,
                                  runningMean: Buffer, runningVariance: Buffer, momentum: Float, epsilon: Float,
                                  savedMean: Buffer, savedInvStd: Buffer, output: Buffer) throws {
        try view.validateNorm(tensors: [input, output], channels: [gamma, beta, runningMean, runningVariance, savedMean, savedInvStd])
        let (x, channels) = (input.host, view.axis)
        let n = Float(view.outer * view.inner)
        let mean = (isRows(view) ? rowSums(view, terms: 1) { rows, sums in
            kiln_norm_sums(Int32(KILN_NORM_MEAN), x, nil, nil, nil, sums, channels, rows.lowerBound, rows.upperBound)
        } : channelSums(view) { x[$0] }).map { $0 / n }
        let variance = mean.withUnsafeBufferPointer { m in
            (isRows(view) ? rowSums(view, terms: 1) { rows, sums in
                kiln_norm_sums(Int32(KILN_NORM_VARIANCE), x, nil, m.baseAddress, nil, sums, channels, rows.lowerBound, rows.upperBound)
            } : channelSums(view) { i in (x[i] - m[i / view.inner % channels]) * (x[i] - m[i / view.inner % channels]) }).map { $0 / n }
        }
        let invStd = variance.map { 1 / ($0 + epsilon).squareRoot() }
        let scale = (0..<channels).map { Double(gamma.host[$0]) * Double(invStd[$0]) }  // folded in double precision, as inference
        scaleAndShift(view, x, output.host, scale: scale.map(Float.init),
                      shift: (0..<channels).map { Float(Double(beta.host[$0]) - scale[$0] * Double(mean[$0])) })
        for c in 0..<channels {
            (savedMean.host[c], savedInvStd.host[c]) = (mean[c], invStd[c])
            runningMean.host[c] = momentum * runningMean.host[c] + (1 - momentum) * mean[c]
            runningVariance.host[c] = momentum * runningVariance.host[c] + (1 - momentum) * variance[c]
        }
    }

    public func batchNormInference(_ input: Buffer, view: AxisView, gamma: Buffer, beta: Buffer,
                                   runningMean: Buffer, runningVariance: Buffer, epsilon: Float, output: Buffer) throws {
        try view.validateNorm(tensors: [input, output], channels: [gamma, beta, runningMean, runningVariance])
        // The per-channel affine map in double precision, rounded once: folded in float, the shift's
        // rounding (of mean · scale) cost ResNet101V2 1e-5 of its outputs against a float64 run.
        let scale = (0..<view.axis).map { Double(gamma.host[$0]) / (Double(runningVariance.host[$0]) + Double(epsilon)).squareRoot() }
        scaleAndShift(view, input.host, output.host, scale: scale.map(Float.init),
                      shift: (0..<view.axis).map { Float(Double(beta.host[$0]) - Double(runningMean.host[$0]) * scale[$0]) })
    }

    public func batchNormBackward(_ input: Buffer, gradOutput: Buffer, view: AxisView, gamma: Buffer,
                                  savedMean: Buffer, savedInvStd: Buffer,
                                  gradInput: Buffer, gradGamma: Buffer, gradBeta: Buffer) throws {
        try view.validateNorm(tensors: [input, gradOutput, gradInput], channels: [gamma, savedMean, savedInvStd, gradGamma, gradBeta])
        let (x, dy, dx, channels) = (input.host, gradOutput.host, gradInput.host, view.axis)
        let n = Float(view.outer * view.inner)
        let (mean, invStd) = (Array(UnsafeBufferPointer(start: savedMean.host, count: channels)),
                              Array(UnsafeBufferPointer(start: savedInvStd.host, count: channels)))
        let (sumDy, sumDyXhat): ([Float], [Float]) = mean.withUnsafeBufferPointer { m in
            invStd.withUnsafeBufferPointer { s in
                guard isRows(view) else {
                    return (channelSums(view) { dy[$0] }, channelSums(view) { i in dy[i] * (x[i] - m[i / view.inner % channels]) * s[i / view.inner % channels] })
                }
                let sums = rowSums(view, terms: 2) { rows, sums in
                    kiln_norm_sums(Int32(KILN_NORM_GRADIENT), x, dy, m.baseAddress, s.baseAddress, sums, channels, rows.lowerBound, rows.upperBound)
                }
                return (Array(sums[..<channels]), Array(sums[channels...]))
            }
        }
        for c in 0..<channels { (gradBeta.host[c], gradGamma.host[c]) = (sumDy[c], sumDyXhat[c]) }
        // dx = a·dy + b·x + shift per channel: scale·(n·dy − Σdy − (x − mean)·invStd·Σdy·x̂).
        let scale = (0..<channels).map { gamma.host[$0] * invStd[$0] / n }
        let b = (0..<channels).map { -scale[$0] * invStd[$0] * sumDyXhat[$0] }
        let shift = (0..<channels).map { -scale[$0] * sumDy[$0] - b[$0] * mean[$0] }
        let a = scale.map { $0 * n }
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                shift.withUnsafeBufferPointer { shift in
                    if isRows(view) {
                        parallelFor(view.outer, grain: max(1, 32768 / channels)) { rows in
                            kiln_norm_apply(x, dy, dx, a.baseAddress, b.baseAddress, shift.baseAddress, channels, rows.lowerBound, rows.upperBound)
                        }
                    } else {
                        parallelFor(channels, grain: 1) { range in
                            for c in range { forChannel(view, c) { dx[$0] = a[c] * dy[$0] + b[c] * x[$0] + shift[c] } }
                        }
                    }
                }
            }
        }
    }

    public func applyUpdate(_ update: Update, to targets: [UpdateTarget]) throws {
        let stepSize = try update.validatedStepSize(for: targets)
        let ends = targets.reduce(into: [Int]()) { $0.append(($0.last ?? 0) + $1.count) }
        let (lr, decay) = (update.learningRate, 1 - update.learningRate * update.weightDecay)
        // One parallel region over the targets laid end to end; a thread's range may span several.
        parallelFor(ends.last ?? 0) { range in
            for (index, target) in targets.enumerated() {
                let start = index == 0 ? 0 : ends[index - 1]
                let (lower, upper) = (max(range.lowerBound, start), min(range.upperBound, ends[index]))
                guard lower < upper else { continue }
                let part = lower..<upper
                let (w, g) = (target.parameter.host + (part.lowerBound - start), target.gradient.host + (part.lowerBound - start))
                let s0 = target.slots.first.map { $0.host + (part.lowerBound - start) }
                let s1 = target.slots.count > 1 ? target.slots[1].host + (part.lowerBound - start) : nil
                switch update.rule {
                case .sgd(let momentum, let nesterov):
                    for i in 0..<part.count {
                        w[i] *= decay
                        guard let v = s0 else { w[i] -= lr * g[i]; continue }
                        v[i] = momentum * v[i] - lr * g[i]
                        w[i] += nesterov ? momentum * v[i] - lr * g[i] : v[i]
                    }
                case .rmsprop(let rho, let momentum, let epsilon):
                    for i in 0..<part.count {
                        w[i] *= decay
                        s0![i] = rho * s0![i] + (1 - rho) * g[i] * g[i]
                        let step = lr * g[i] / (s0![i] + epsilon).squareRoot()
                        if let m = s1 { m[i] = momentum * m[i] + step; w[i] -= m[i] } else { w[i] -= step }
                    }
                case .adam(let beta1, let beta2, let epsilon):
                    kiln_adam(w, g, s0!, s1!, part.count, decay, stepSize, beta1, beta2, epsilon)
                }
            }
        }
    }
}

extension Update {
    /// Checks the targets' buffers and returns the step size, with Adam's bias correction folded in.
    func validatedStepSize(for targets: [UpdateTarget]) throws -> Float {
        for target in targets {
            guard target.slots.count == rule.slotCount, target.count >= 0 else {
                throw DeviceError.invalidArgument("applyUpdate: \(rule) keeps \(rule.slotCount) slots, got \(target.slots.count) for \(target.count) elements")
            }
            for buffer in [target.parameter, target.gradient] + target.slots { try require(buffer, target.count, "applyUpdate") }
        }
        guard step >= 1 else { throw DeviceError.invalidArgument("applyUpdate: step must be at least 1, got \(step)") }
        if case .adam(let beta1, let beta2, _) = rule {
            let t = Double(step)
            let size = Double(learningRate) * (1 - pow(Double(beta2), t)).squareRoot() / (1 - pow(Double(beta1), t))
            return Float(size)
        }
        return learningRate
    }
}
