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

    public func batchNormTraining(_ input: Buffer, view: AxisView, gamma: Buffer, beta: Buffer,
                                  runningMean: Buffer, runningVariance: Buffer, momentum: Float, epsilon: Float,
                                  savedMean: Buffer, savedInvStd: Buffer, output: Buffer) throws {
        try view.validateNorm(tensors: [input, output], channels: [gamma, beta, runningMean, runningVariance, savedMean, savedInvStd])
        let (x, y) = (input.host, output.host)
        let n = Float(view.outer * view.inner)
        parallelFor(view.axis, grain: 1) { channels in
            for c in channels {
                var sum: Float = 0
                forChannel(view, c) { sum += x[$0] }
                let mean = sum / n
                var squares: Float = 0
                forChannel(view, c) { squares += (x[$0] - mean) * (x[$0] - mean) }
                let variance = squares / n
                let invStd = 1 / (variance + epsilon).squareRoot()
                let (scale, shift) = (gamma.host[c] * invStd, beta.host[c] - gamma.host[c] * invStd * mean)
                forChannel(view, c) { y[$0] = x[$0] * scale + shift }
                savedMean.host[c] = mean
                savedInvStd.host[c] = invStd
                runningMean.host[c] = momentum * runningMean.host[c] + (1 - momentum) * mean
                runningVariance.host[c] = momentum * runningVariance.host[c] + (1 - momentum) * variance
            }
        }
    }

    public func batchNormInference(_ input: Buffer, view: AxisView, gamma: Buffer, beta: Buffer,
                                   runningMean: Buffer, runningVariance: Buffer, epsilon: Float, output: Buffer) throws {
        try view.validateNorm(tensors: [input, output], channels: [gamma, beta, runningMean, runningVariance])
        let (x, y) = (input.host, output.host)
        parallelFor(view.axis, grain: 1) { channels in
            for c in channels {
                let scale = gamma.host[c] / (runningVariance.host[c] + epsilon).squareRoot()
                let shift = beta.host[c] - runningMean.host[c] * scale
                forChannel(view, c) { y[$0] = x[$0] * scale + shift }
            }
        }
    }

    public func batchNormBackward(_ input: Buffer, gradOutput: Buffer, view: AxisView, gamma: Buffer,
                                  savedMean: Buffer, savedInvStd: Buffer,
                                  gradInput: Buffer, gradGamma: Buffer, gradBeta: Buffer) throws {
        try view.validateNorm(tensors: [input, gradOutput, gradInput], channels: [gamma, savedMean, savedInvStd, gradGamma, gradBeta])
        let (x, dy, dx) = (input.host, gradOutput.host, gradInput.host)
        let n = Float(view.outer * view.inner)
        parallelFor(view.axis, grain: 1) { channels in
            for c in channels {
                let (mean, invStd) = (savedMean.host[c], savedInvStd.host[c])
                var (sumDy, sumDyXhat): (Float, Float) = (0, 0)
                forChannel(view, c) { i in
                    sumDy += dy[i]
                    sumDyXhat += dy[i] * (x[i] - mean) * invStd
                }
                gradBeta.host[c] = sumDy
                gradGamma.host[c] = sumDyXhat
                let scale = gamma.host[c] * invStd / n
                forChannel(view, c) { i in
                    dx[i] = scale * (n * dy[i] - sumDy - (x[i] - mean) * invStd * sumDyXhat)
                }
            }
        }
    }

    public func applyUpdate(_ update: Update, parameter: Buffer, gradient: Buffer, slots: [Buffer], count: Int) throws {
        let stepSize = try update.validatedStepSize(slots: slots, count: count)
        try require(parameter, count, "applyUpdate parameter")
        try require(gradient, count, "applyUpdate gradient")
        let (w, g) = (parameter.host, gradient.host)
        let s0 = slots.first?.host, s1 = slots.count > 1 ? slots[1].host : nil
        let (lr, decay) = (update.learningRate, 1 - update.learningRate * update.weightDecay)
        parallelFor(count) { range in
            switch update.rule {
            case .sgd(let momentum, let nesterov):
                for i in range {
                    w[i] *= decay
                    guard let v = s0 else { w[i] -= lr * g[i]; continue }
                    v[i] = momentum * v[i] - lr * g[i]
                    w[i] += nesterov ? momentum * v[i] - lr * g[i] : v[i]
                }
            case .rmsprop(let rho, let momentum, let epsilon):
                for i in range {
                    w[i] *= decay
                    s0![i] = rho * s0![i] + (1 - rho) * g[i] * g[i]
                    let step = lr * g[i] / (s0![i] + epsilon).squareRoot()
                    if let m = s1 { m[i] = momentum * m[i] + step; w[i] -= m[i] } else { w[i] -= step }
                }
            case .adam(let beta1, let beta2, let epsilon):
                let first = range.lowerBound
                kiln_adam(w + first, g + first, s0! + first, s1! + first, range.count, decay, stepSize, beta1, beta2, epsilon)
            }
        }
    }
}

extension Update {
    /// Checks the slots and returns the step size, with Adam's bias correction folded in.
    func validatedStepSize(slots: [Buffer], count: Int) throws -> Float {
        guard slots.count == rule.slotCount else {
            throw DeviceError.invalidArgument("applyUpdate: \(rule) keeps \(rule.slotCount) slots, got \(slots.count)")
        }
        for slot in slots { try require(slot, count, "applyUpdate slot") }
        guard step >= 1 else { throw DeviceError.invalidArgument("applyUpdate: step must be at least 1, got \(step)") }
        if case .adam(let beta1, let beta2, _) = rule {
            let t = Double(step)
            let size = Double(learningRate) * (1 - pow(Double(beta2), t)).squareRoot() / (1 - pow(Double(beta1), t))
            return Float(size)
        }
        return learningRate
    }
}
