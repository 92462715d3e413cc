import Foundation

/// Keras-style progress: `Epoch 3/10  1500/1875 [=========>....] ETA 4s - loss: 0.3412 - accuracy: 0.8745`,
/// redrawn in place on a terminal (at most 10 times a second), one line per epoch otherwise.
public final class ProgressBar: Callback {
    private let interactive = isatty(STDOUT_FILENO) != 0
    private var epochStart = Date(), lastDraw = Date.distantPast
    private var samplesAtEpochStart = 0

    public init() {}

    public func epochWillBegin(_ epoch: Int, _ state: TrainingState) throws {
        (epochStart, lastDraw, samplesAtEpochStart) = (Date(), .distantPast, state.samplesSeen)
    }

    public func batchDidEnd(_ step: Int, _ state: TrainingState) throws {
        guard interactive, Date().timeIntervalSince(lastDraw) >= 0.1 || step == state.stepsPerEpoch else { return }
        lastDraw = Date()
        let elapsed = Date().timeIntervalSince(epochStart)
        let eta = elapsed / Double(step) * Double(state.stepsPerEpoch - step)
        let line = "\(header(state)) \(bar(step, state.stepsPerEpoch)) ETA \(Int(eta.rounded()))s" + format(try state.logs())
        FileHandle.standardOutput.write(Data(("\r" + line + "\u{1B}[K").utf8))
    }

    public func epochDidEnd(_ epoch: Int, logs: [String: Float], _ state: TrainingState) throws {
        let elapsed = Date().timeIntervalSince(epochStart)
        let rate = Double(state.samplesSeen - samplesAtEpochStart) / max(elapsed, 1e-9)
        var shown = logs
        shown.removeValue(forKey: "learning_rate")
        let line = "\(header(state)) \(bar(state.stepsPerEpoch, state.stepsPerEpoch)) \(String(format: "%.1f", elapsed))s"
            + format(shown) + " - \(Int(rate)) samples/s"
        print((interactive ? "\r" : "") + line + (interactive ? "\u{1B}[K" : ""))
        fflush(stdout)
    }

    private func header(_ state: TrainingState) -> String {
        "Epoch \(state.epoch)/\(state.finalEpoch)"
    }

    private func bar(_ step: Int, _ total: Int) -> String {
        let width = 30, done = total == 0 ? width : width * step / total
        let arrow = done < width ? String(repeating: "=", count: max(done - 1, 0)) + ">" : String(repeating: "=", count: width)
        let digits = String(total).count
        return String(repeating: " ", count: digits - String(step).count) + "\(step)/\(total) [" + arrow.padding(toLength: width, withPad: ".", startingAt: 0) + "]"
    }

    private func format(_ logs: [String: Float]) -> String {
        logs.keys.sorted(by: History.columnOrder).map { " - \($0): \(String(format: "%.4f", logs[$0]!))" }.joined()
    }
}
