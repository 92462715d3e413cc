import COpenCL
import Foundation

/// The tile sizes of the implicit-GEMM convolution kernels (`TM`… in `Kernels/conv.cl`): a work-group
/// computes `rows × columns` outputs, staging `depth`-deep slices in local memory; each work-item
/// keeps `rowsPerItem × columnsPerItem` of them in registers.
struct ConvTiling: Hashable, Sendable, CustomStringConvertible {
    let rows: Int, columns: Int, depth: Int, rowsPerItem: Int, columnsPerItem: Int

    var threads: Int { rows / rowsPerItem * (columns / columnsPerItem) }
    var localBytes: Int { 4 * depth * (rows + columns) }
    var defines: String { "-D TM=\(rows) -D TN=\(columns) -D TK=\(depth) -D WM=\(rowsPerItem) -D WN=\(columnsPerItem)" }
    var description: String { "tiled \(rows)×\(columns)×\(depth)/\(rowsPerItem)×\(columnsPerItem)" }

    /// What the tuner times (CLBlast's and DLPrimitives' tuners search wider): small tiles for small
    /// layers, the square register blocks GPUs favour, and tall blocks (many rows per work-item), which
    /// CPU drivers that vectorise across work-items favour (PoCL: 256×32/32×4 runs the workshop CNN's
    /// second convolution 2.5× faster than 32×32/4×4).
    static let candidates = [
        ConvTiling(rows: 16, columns: 16, depth: 16, rowsPerItem: 2, columnsPerItem: 2),
        ConvTiling(rows: 32, columns: 32, depth: 16, rowsPerItem: 4, columnsPerItem: 4),
        ConvTiling(rows: 64, columns: 64, depth: 16, rowsPerItem: 4, columnsPerItem: 4),
        ConvTiling(rows: 64, columns: 64, depth: 16, rowsPerItem: 8, columnsPerItem: 8),
        ConvTiling(rows: 64, columns: 32, depth: 16, rowsPerItem: 16, columnsPerItem: 4),
        ConvTiling(rows: 128, columns: 32, depth: 16, rowsPerItem: 16, columnsPerItem: 4),
        ConvTiling(rows: 128, columns: 64, depth: 16, rowsPerItem: 16, columnsPerItem: 8),
        ConvTiling(rows: 256, columns: 32, depth: 16, rowsPerItem: 32, columnsPerItem: 4),
        ConvTiling(rows: 256, columns: 32, depth: 4, rowsPerItem: 32, columnsPerItem: 4),
        ConvTiling(rows: 128, columns: 32, depth: 8, rowsPerItem: 16, columnsPerItem: 4),
        ConvTiling(rows: 16, columns: 32, depth: 16, rowsPerItem: 4, columnsPerItem: 4),
    ]
}

/// How one pass of a convolution runs on an OpenCL device.
enum ConvAlgorithm: Hashable, Sendable, CustomStringConvertible {
    case tiled(ConvTiling)
    /// The window copied out as a matrix (`im2col`/`col2im`), multiplied by CLBlast's SGEMM.
    case im2col

    var description: String {
        switch self {
        case .tiled(let tiling): tiling.description
        case .im2col: "im2col + CLBlast"
        }
    }

    init?(_ text: String) {
        if text == Self.im2col.description { self = .im2col; return }
        guard let tiling = ConvTiling.candidates.first(where: { $0.description == text }) else { return nil }
        self = .tiled(tiling)
    }
}

/// The three passes of a convolution, and the forward pass fused with max pooling, each tuned on its own.
enum ConvPass: String, Sendable {
    case forward, inputGradient = "input gradient", weightGradient = "weight gradient", forwardMaxPool = "forward + max pool"
}

/// One tuned convolution pass: what was chosen, and (when timed in this process) each candidate's time.
public struct ConvTuningChoice: Sendable {
    public let pass: String, shape: String, chosen: String
    /// Milliseconds per run of each candidate; empty when the choice came from the disk cache.
    public let timings: [(algorithm: String, milliseconds: Double)]
}

/// Picks each convolution pass's algorithm on first use by timing the candidates on the real shape,
/// and keeps the choices on disk beside the kernel binaries, keyed by device, driver and the kernel
/// source, as CLBlast's tuner and DLPrimitives do.
final class ConvTuner: @unchecked Sendable {
    private let file: URL
    private let limits: (threads: Int, localBytes: Int)
    private var choices: [String: ConvAlgorithm] = [:]
    /// `choices` by pass and shape, filled on first lookup: the per-call path formats no key.
    private var memo: [Key: ConvAlgorithm] = [:]
    private struct Key: Hashable { let pass: ConvPass, shape: ConvShape, variant: String }
    private var report: [String: ConvTuningChoice] = [:]
    private let lock = Lock()
    /// Used for every pass instead of the tuned choice during `forcing`.
    private var forced: ConvAlgorithm?
    private let forcingTurn = Lock()

    init(programs: ProgramCache, device: cl_device_id) throws {
        let source = try ProgramCache.source(of: "conv")
        let key = programs.fnv1a([programs.info.platform, programs.info.name, programs.info.driverVersion, source].joined(separator: "\u{1}"))
        file = programs.directory.appendingPathComponent("conv-tuning-\(String(key, radix: 16)).json")
        limits = (Int(try CL.value(device: device, CL_DEVICE_MAX_WORK_GROUP_SIZE, as: Int.self)),
                  Int(try CL.value(device: device, CL_DEVICE_LOCAL_MEM_SIZE, as: cl_ulong.self)))
        if let data = try? Data(contentsOf: file), let stored = try? JSONDecoder().decode([String: String].self, from: data) {
            choices = stored.compactMapValues(ConvAlgorithm.init)
        }
    }

    /// The candidates this device can run.
    var candidates: [ConvAlgorithm] {
        ConvTiling.candidates.filter { $0.threads <= limits.threads && $0.localBytes <= limits.localBytes }.map { .tiled($0) } + [.im2col]
    }

    /// The algorithm for `pass` of `shape` (and `variant`, what else the pass depends on), timing
    /// every `eligible` candidate with `run` (which enqueues one pass; `synchronize` waits for it) the
    /// first time the pair is seen. A candidate that fails (a driver refusing a work-group size) is skipped.
    func algorithm(_ pass: ConvPass, _ shape: ConvShape, variant: String = "", eligible: (ConvAlgorithm) -> Bool = { _ in true },
                   synchronize: () throws -> Void, run: (ConvAlgorithm) throws -> Void) throws -> ConvAlgorithm {
        let memoKey = Key(pass: pass, shape: shape, variant: variant)
        if let known = lock.withLock({ forced ?? memo[memoKey] }) { return known }
        let key = "\(pass.rawValue): \(Self.describe(shape))\(variant)"
        if let stored = lock.withLock({ choices[key] }), eligible(stored) {
            lock.withLock { memo[memoKey] = stored }
            return stored
        }
        var timings: [(ConvAlgorithm, Double)] = []
        var lastError: Error?
        for candidate in candidates where eligible(candidate) {
            do {
                try run(candidate)  // builds the variant and warms up
                try synchronize()
                var best = Double.infinity
                for _ in 0..<2 {
                    let start = DispatchTime.now().uptimeNanoseconds
                    try run(candidate)
                    try synchronize()
                    best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
                }
                timings.append((candidate, best))
            } catch {
                lastError = error
            }
        }
        guard let chosen = timings.min(by: { $0.1 < $1.1 })?.0 else { throw lastError ?? DeviceError.invalidArgument("no convolution candidate") }
        lock.withLock {
            choices[key] = chosen
            memo[memoKey] = chosen
            report[key] = ConvTuningChoice(pass: pass.rawValue, shape: Self.describe(shape) + variant, chosen: chosen.description,
                                           timings: timings.map { ($0.0.description, $0.1) })
            store()
        }
        return chosen
    }

    /// Runs `body` with every pass using `algorithm`; callers from several threads take turns.
    func forcing<T>(_ algorithm: ConvAlgorithm, _ body: () throws -> T) rethrows -> T {
        try forcingTurn.withLock {
            lock.withLock { forced = algorithm }
            defer { lock.withLock { forced = nil } }
            return try body()
        }
    }

    /// Forgets the choices (the disk cache keeps them until new ones replace them), so the next
    /// use of each shape is timed again.
    func forget() { lock.withLock { choices = [:]; memo = [:]; report = [:] } }

    /// The choices made or loaded in this process.
    var made: [ConvTuningChoice] {
        lock.withLock {
            choices.map { key, algorithm in
                report[key] ?? ConvTuningChoice(pass: String(key.prefix { $0 != ":" }), shape: String(key.drop { $0 != ":" }.dropFirst(2)),
                                                chosen: algorithm.description, timings: [])
            }.sorted { ($0.shape, $0.pass) < ($1.shape, $1.pass) }
        }
    }

    /// Writes the choices atomically (temp file + rename), merged with what is on disk; a cache that
    /// cannot be written only means tuning again next time.
    private func store() {
        var merged = (try? Data(contentsOf: file)).flatMap { try? JSONDecoder().decode([String: String].self, from: $0) } ?? [:]
        for (key, algorithm) in choices { merged[key] = algorithm.description }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        guard let data = try? encoder.encode(merged) else { return }
        try? FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? data.write(to: file, options: .atomic)
    }

    /// "batch 32, 28×28×1 → 26×26×32, kernel 3×3, stride 1×1, pad 0,0": everything the kernels' work depends on.
    static func describe(_ s: ConvShape) -> String {
        let w = s.window
        return "batch \(s.batch), \(w.inputHeight)×\(w.inputWidth)×\(s.inChannels) → \(w.outputHeight)×\(w.outputWidth)×\(s.outChannels), "
            + "kernel \(w.kernelHeight)×\(w.kernelWidth), stride \(w.strideHeight)×\(w.strideWidth), pad \(w.padTop),\(w.padLeft)"
    }
}
