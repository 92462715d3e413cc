import Foundation

/// Hooks into `fit`. Every method has an empty default.
public protocol Callback: AnyObject {
    func trainingWillBegin(_ state: TrainingState) throws
    func epochWillBegin(_ epoch: Int, _ state: TrainingState) throws
    /// After each step; `state.logs()` reads the running metrics (a device read: call sparingly).
    func batchDidEnd(_ step: Int, _ state: TrainingState) throws
    /// `logs` hold the epoch's metrics (`loss`, `accuracy`, `val_loss`, …).
    func epochDidEnd(_ epoch: Int, logs: [String: Float], _ state: TrainingState) throws
    func trainingDidEnd(_ state: TrainingState) throws
}

public extension Callback {
    func trainingWillBegin(_ state: TrainingState) throws {}
    func epochWillBegin(_ epoch: Int, _ state: TrainingState) throws {}
    func batchDidEnd(_ step: Int, _ state: TrainingState) throws {}
    func epochDidEnd(_ epoch: Int, logs: [String: Float], _ state: TrainingState) throws {}
    func trainingDidEnd(_ state: TrainingState) throws {}
}

/// What callbacks see of a running `fit`, and how they stop it.
public final class TrainingState {
    public let model: Model
    /// The last epoch (1-based, counting earlier `fit` calls) this run trains to.
    public let finalEpoch: Int
    public let stepsPerEpoch: Int
    public internal(set) var epoch = 0
    public internal(set) var samplesSeen = 0
    public internal(set) var history: History
    /// Set to end training after the current epoch.
    public var stopTraining = false
    /// Why training stopped early, when it did.
    public internal(set) var stopReason: String?
    /// Set by `interrupt(because:)`: training ends after the current step.
    public private(set) var interrupted = false
    let readLogs: () throws -> [String: Float]
    let tap: GradientTap

    init(model: Model, finalEpoch: Int, stepsPerEpoch: Int, history: History, tap: GradientTap = GradientTap(), readLogs: @escaping () throws -> [String: Float]) {
        (self.model, self.finalEpoch, self.stepsPerEpoch, self.history, self.readLogs) = (model, finalEpoch, stepsPerEpoch, history, readLogs)
        self.tap = tap
    }

    /// Whether each step keeps its gradients for `gradients` (references to tensors the step made anyway).
    public var keepsGradients: Bool {
        get { tap.enabled }
        set { tap.enabled = newValue }
    }

    /// The last step's gradients by weight path, while `keepsGradients` (compiled `fit` steps only).
    public var gradients: [String: Tensor] { tap.gradients }

    /// The running metrics of the current epoch.
    public func logs() throws -> [String: Float] { try readLogs() }

    public func stop(because reason: String) {
        stopTraining = true
        stopReason = reason
    }

    /// Ends training after the current step (Ctrl-C): the unfinished epoch counts neither in the
    /// epoch count nor in the history, so a checkpoint of the model resumes by redoing it.
    public func interrupt(because reason: String) {
        stop(because: reason)
        interrupted = true
    }
}

/// Where a compiled step leaves its gradients when asked.
final class GradientTap {
    var enabled = false
    var gradients: [String: Tensor] = [:]
}

/// Which way a monitored value improves: `auto` reads the name (accuracy-like metrics go up).
public enum MonitorMode: Sendable { case auto, min, max }

/// Tracks the best value of a monitored metric.
struct Monitor {
    let name: String
    let minDelta: Float
    let increasing: Bool
    var best: Float

    init(_ name: String, mode: MonitorMode, minDelta: Float) {
        increasing = mode == .max || (mode == .auto && (name.contains("acc") || name.hasPrefix("val_f1")))
        (self.name, self.minDelta) = (name, abs(minDelta))
        best = increasing ? -.infinity : .infinity
    }

    /// Whether `logs` improve on the best so far (and records it), or nil when the metric is absent.
    mutating func improves(_ logs: [String: Float]) -> Bool? {
        guard let value = logs[name] else { return nil }
        let better = increasing ? value > best + minDelta : value < best - minDelta
        if better { best = value }
        return better
    }
}

/// Stops when `monitor` has not improved by `minDelta` for `patience` epochs; optionally puts back
/// the weights of the best epoch.
public final class EarlyStopping: Callback {
    public let patience: Int
    public let restoreBestWeights: Bool
    private var monitor: Monitor
    private var wait = 0
    private var bestWeights: [Tensor]?
    public private(set) var bestEpoch: Int?

    public init(monitor: String = "val_loss", patience: Int = 0, minDelta: Float = 0, mode: MonitorMode = .auto, restoreBestWeights: Bool = false) {
        self.monitor = Monitor(monitor, mode: mode, minDelta: minDelta)
        (self.patience, self.restoreBestWeights) = (patience, restoreBestWeights)
    }

    public func epochDidEnd(_ epoch: Int, logs: [String: Float], _ state: TrainingState) throws {
        guard let improved = monitor.improves(logs) else {
            print("EarlyStopping: metric '\(monitor.name)' is not available (have: \(logs.keys.sorted().joined(separator: ", ")))")
            return
        }
        if improved {
            wait = 0
            bestEpoch = epoch
            if restoreBestWeights { bestWeights = try state.model.weights.map { try $0.value.copy() } }
            return
        }
        wait += 1
        if wait >= patience {  // as Keras: `patience` epochs without improvement stop training
            state.stop(because: "early stopping: \(monitor.name) did not improve for \(wait) epochs (best \(monitor.best) at epoch \(bestEpoch ?? 0))")
        }
    }

    public func trainingDidEnd(_ state: TrainingState) throws {
        guard restoreBestWeights, let bestWeights, state.stopTraining, let bestEpoch else { return }
        for (weight, saved) in zip(state.model.weights, bestWeights) {
            try weight.value.device.copy(saved.buffer, to: weight.value.buffer, count: weight.count)
        }
        print("Restored the weights of epoch \(bestEpoch).")
    }
}

/// Lowers the learning rate by `factor` when `monitor` has stalled for `patience` epochs.
public final class ReduceLROnPlateau: Callback {
    public let factor: Float, patience: Int, cooldown: Int, minLearningRate: Float
    private var monitor: Monitor
    private var wait = 0, cooling = 0

    public init(monitor: String = "val_loss", factor: Float = 0.1, patience: Int = 10, minDelta: Float = 1e-4, cooldown: Int = 0,
                minLearningRate: Float = 0, mode: MonitorMode = .auto) {
        self.monitor = Monitor(monitor, mode: mode, minDelta: minDelta)
        (self.factor, self.patience, self.cooldown, self.minLearningRate) = (factor, patience, cooldown, minLearningRate)
    }

    public func epochDidEnd(_ epoch: Int, logs: [String: Float], _ state: TrainingState) throws {
        guard let improved = monitor.improves(logs), let optimizer = state.model.compiled?.optimizer else { return }
        if cooling > 0 { cooling -= 1; wait = 0 }
        if improved { wait = 0; return }
        wait += 1
        guard wait >= patience, cooling == 0 else { return }
        let rate = max(optimizer.learningRate * factor, minLearningRate)
        if rate < optimizer.learningRate {
            optimizer.learningRate = rate
            print("Epoch \(epoch): ReduceLROnPlateau reducing learning rate to \(rate).")
            (cooling, wait) = (cooldown, 0)
        }
    }
}

/// Writes the model's whole training history to a CSV file after each epoch (the file is replaced atomically).
public final class CSVLogger: Callback {
    public let url: URL
    public init(_ url: URL) { self.url = url }

    public func epochDidEnd(_ epoch: Int, logs: [String: Float], _ state: TrainingState) throws {
        try writeAtomically(Data(state.model.trainingHistory.csv().utf8), to: url)
    }
}

/// Saves a checkpoint after each epoch, or only when `monitor` improves.
public final class ModelCheckpoint: Callback {
    public let url: URL
    public let saveBestOnly: Bool
    private var monitor: Monitor
    /// Extra metadata written with each checkpoint (e.g. preprocessing).
    public var metadata: [String: String] = [:]

    public init(_ url: URL, monitor: String = "val_loss", saveBestOnly: Bool = false, mode: MonitorMode = .auto) {
        self.monitor = Monitor(monitor, mode: mode, minDelta: 0)
        (self.url, self.saveBestOnly) = (url, saveBestOnly)
    }

    public func epochDidEnd(_ epoch: Int, logs: [String: Float], _ state: TrainingState) throws {
        if saveBestOnly, monitor.improves(logs) != true { return }
        try Checkpoint.save(state.model, metadata: metadata, to: url)
    }
}

/// Writes `data` to a temporary file beside `url`, then renames it over `url`: readers never see
/// a half-written file.
func writeAtomically(_ data: Data, to url: URL) throws {
    let directory = url.deletingLastPathComponent()
    let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp")
    do {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try data.write(to: temporary)
        if rename(temporary.path, url.path) != 0 { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    } catch {
        try? FileManager.default.removeItem(at: temporary)
        throw DataError(url.path, "cannot write (\(reason(error, at: url)))")
    }
}

/// Makes sure files can be written into `folder` (creating it), so that a run fails before it
/// trains rather than when it first saves.
public func ensureWritableFolder(_ folder: URL) throws {
    let probe = folder.appendingPathComponent(".kiln-write-check")
    do { try writeAtomically(Data(), to: probe) } catch let error as DataError { throw DataError(folder.path, error.problem) }
    try? FileManager.default.removeItem(at: probe)
}

/// Why writing `url` failed, in a few words: the system's reason ("No space left on device"), or
/// what is wrong with the nearest folder on the way that exists.
func reason(_ error: Error, at url: URL) -> String {
    var error = error as NSError
    while let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError { error = underlying }
    if let posix = error as Error as? POSIXError { return String(cString: strerror(posix.code.rawValue)) }
    if error.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(error.code))) }
    var ancestor = url.deletingLastPathComponent()
    var isFolder: ObjCBool = false
    while !FileManager.default.fileExists(atPath: ancestor.path, isDirectory: &isFolder), ancestor.path != "/" {
        ancestor = ancestor.deletingLastPathComponent()
    }
    if !isFolder.boolValue { return "\(ancestor.path) is a file, not a folder" }
    if !FileManager.default.isWritableFile(atPath: ancestor.path) { return "no permission to write in \(ancestor.path)" }
    return error.localizedDescription
}
