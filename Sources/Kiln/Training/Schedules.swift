import Foundation

/// A learning rate as a function of the optimizer step (0-based), as Keras's schedules.
public enum LearningRateSchedule: Hashable, Sendable, Codable {
    case constant(Float)
    /// `initial · rate^(step / decaySteps)`, with the exponent floored when `staircase`.
    case exponentialDecay(initial: Float, decaySteps: Int, decayRate: Float, staircase: Bool = false)
    /// `values[i]` while `step < boundaries[i]`, then the last value (Keras `PiecewiseConstantDecay`).
    case piecewiseConstant(boundaries: [Int], values: [Float])
    /// Cosine from `initial` to `initial · alpha` over `decaySteps`, then flat.
    case cosineDecay(initial: Float, decaySteps: Int, alpha: Float = 0)

    public func callAsFunction(_ step: Int) -> Float {
        switch self {
        case .constant(let rate):
            return rate
        case .exponentialDecay(let initial, let decaySteps, let decayRate, let staircase):
            let exponent = Double(step) / Double(decaySteps)
            return initial * Float(pow(Double(decayRate), staircase ? exponent.rounded(.down) : exponent))
        case .piecewiseConstant(let boundaries, let values):
            return values[boundaries.firstIndex { step < $0 } ?? boundaries.count]
        case .cosineDecay(let initial, let decaySteps, let alpha):
            let progress = Double(min(step, decaySteps)) / Double(decaySteps)
            let cosine = 0.5 * (1 + cos(.pi * progress))
            return initial * Float((1 - Double(alpha)) * cosine + Double(alpha))
        }
    }
}
