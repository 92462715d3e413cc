import ArgumentParser
import Foundation
import Kiln

struct FuzzCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuzz",
        abstract: "Feed every file reader damaged copies of valid files; count clean errors, crashes and hangs.",
        discussion: """
            Each case damages a valid file of the format (bit flips, overwritten, inserted or cut bytes, truncation, integers \
            and numbers set to edge values, white space changed inside padding) and reads it as a user's command would, in a \
            worker process under a memory limit. A case passes when the read succeeds or ends in an error; it fails on a \
            signal, a hang (no answer within --timeout seconds), or a padding-only change that alters what is read. \
            Cases are drawn from --seed, so a failure replays with --formats F --from CASE --cases 1.
            """)

    @Option(help: "Formats, comma-separated (default: all): \(FuzzFormat.allCases.map(\.rawValue).joined(separator: ", ")).")
    var formats: String?

    @Option(help: "Cases per format.")
    var cases = 300

    @Option(help: "First case number.")
    var from = 0

    @Option(help: "Seed the damage is drawn from.")
    var seed: UInt64 = 1

    @Option(help: "Seconds one case may take before it counts as a hang (libhdf5's own watchdog fires at half of it).")
    var timeout = 20.0

    @Option(help: "Memory limit of the worker process, in GB.")
    var memoryLimit = 4.0

    @Option(help: "Folder with the Keras, PyTorch and image fixtures.")
    var fixtures = "Tests/KilnTests/Fixtures"

    @Option(help: .hidden) var worker: String?

    func validate() throws {
        guard cases > 0, from >= 0, timeout > 0, memoryLimit > 0 else { throw ValidationError("--cases, --timeout and --memory-limit must be positive, --from not negative") }
        _ = try chosenFormats()
    }

    private func chosenFormats() throws -> [FuzzFormat] {
        guard let formats else { return FuzzFormat.allCases }
        return try formats.split(separator: ",").map {
            guard let format = FuzzFormat(rawValue: String($0)) else { throw ValidationError("--formats: unknown format '\($0)'") }
            return format
        }
    }

    func run() throws {
        if let worker, let format = FuzzFormat(rawValue: worker) { return try work(format) }
        var failed = false
        print("format        cases  rejected  accepted  signals  hangs  watchdog  padding-changed   seconds")
        for format in try chosenFormats() {
            let start = Date()
            var tally = Tally()
            var next = from
            while next < from + cases {
                next = try runWorker(format, from: next, tally: &tally)
            }
            failed = failed || !tally.failures.isEmpty
            print(format.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0) + String(format: " %6d  %8d  %8d  %7d  %5d  %8d  %15d  %8.1f", cases, tally.rejected,
                         tally.accepted, tally.signals, tally.hangs, tally.watchdog, tally.changed, Date().timeIntervalSince(start)))
            for failure in tally.failures.prefix(5) { print("  \(failure)") }
        }
        if failed { throw ExitCode.failure }
    }

    struct Tally {
        var rejected = 0, accepted = 0, signals = 0, hangs = 0, watchdog = 0, changed = 0
        var failures: [String] = []
    }

    /// Runs a worker from case `first` until it finishes or fails; returns the next case to run.
    private func runWorker(_ format: FuzzFormat, from first: Int, tally: inout Tally) throws -> Int {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        process.arguments = ["fuzz", "--worker", format.rawValue, "--from", String(first), "--cases", String(from + cases - first),
                             "--seed", String(seed), "--memory-limit", String(memoryLimit), "--fixtures", fixtures]
        var environment = ProcessInfo.processInfo.environment
        environment["KILN_HDF5_TIMEOUT"] = String(timeout / 2)
        environment["KILN_NUM_THREADS"] = "1"
        process.environment = environment
        let pipe = Pipe()
        (process.standardOutput, process.standardError) = (pipe, pipe)
        try process.run()
        let reader = LineReader(pipe.fileHandleForReading.fileDescriptor)
        var current: Int?
        var log: [String] = []
        func replay(_ index: Int) -> String { "case \(index) (\(format.rawValue)): kiln fuzz --formats \(format.rawValue) --seed \(seed) --from \(index) --cases 1" }
        while let line = reader.next(timeout: timeout) {
            let words = line.split(separator: " ").map(String.init)
            guard words.first == "@@", words.count >= 3, let index = Int(words[2]) else { log = Array((log + [line]).suffix(5)); continue }
            switch words[1] {
            case "start": current = index
            case "rejected": tally.rejected += 1; current = nil
            case "accepted": tally.accepted += 1; current = nil
            case "changed": tally.changed += 1; tally.failures.append("padding change altered the result: \(replay(index))"); current = nil
            default: break
            }
        }
        if reader.timedOut {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            tally.hangs += 1
            tally.failures.append("hang: \(replay(current ?? first))")
            return (current ?? first) + 1
        }
        process.waitUntilExit()
        guard let current else {  // the worker finished its cases, or could not start them
            if process.terminationStatus != 0 || process.terminationReason == .uncaughtSignal {
                throw CleanExit.message("fuzz \(format.rawValue): the worker could not start: \(log.joined(separator: " | "))")
            }
            return from + cases
        }
        if process.terminationReason == .uncaughtSignal {
            tally.signals += 1
            tally.failures.append("signal \(process.terminationStatus): \(replay(current)) — \(log.joined(separator: " | "))")
        } else if log.contains(where: { $0.contains("libhdf5 did not finish") }) {
            tally.watchdog += 1
        } else {
            tally.signals += 1
            tally.failures.append("exit \(process.terminationStatus): \(replay(current)) — \(log.joined(separator: " | "))")
        }
        return current + 1
    }

    /// The worker: reads each damaged copy in this process and reports how it went.
    private func work(_ format: FuzzFormat) throws {
        var limit = rlimit(rlim_cur: rlim_t(memoryLimit * 1e9), rlim_max: rlim_t(memoryLimit * 1e9))
        setrlimit(Int32(RLIMIT_AS.rawValue), &limit)
        let seedFile = try format.seed(fixtures: URL(fileURLWithPath: fixtures))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-fuzz-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("case.\(format.fileExtension)")
        try seedFile.write(to: file)
        let original = try format.read(file)
        for index in from..<(from + cases) {
            let mutation = Mutation(of: seedFile, format: format, seed: seed, case: index)
            try mutation.bytes.write(to: file)
            say("@@ start \(index)")
            do {
                let result = try format.read(file)
                say(mutation.kind == .padding && result != original ? "@@ changed \(index)" : "@@ accepted \(index)")
            } catch {
                say("@@ rejected \(index)")
            }
        }
    }

    private func say(_ line: String) {
        print(line)
        fflush(stdout)
    }
}

/// Lines from a file descriptor, each waited for at most a timeout.
final class LineReader {
    private let descriptor: Int32
    private var buffer: [UInt8] = []
    private(set) var timedOut = false

    init(_ descriptor: Int32) { self.descriptor = descriptor }

    /// The next line; nil at the end of the stream or after `timeout` seconds without one (`timedOut`).
    func next(timeout: Double) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                defer { buffer.removeSubrange(...newline) }
                return String(decoding: buffer[..<newline], as: UTF8.self)
            }
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let left = deadline.timeIntervalSinceNow
            guard left > 0, poll(&poller, 1, Int32(min(left, 1) * 1000)) >= 0 else { timedOut = left <= 0; return nil }
            if poller.revents == 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = read(descriptor, &chunk, chunk.count)
            if count <= 0 { return buffer.isEmpty ? nil : String(decoding: buffer.splice(), as: UTF8.self) }
            buffer += chunk[..<count]
        }
    }
}

private extension Array where Element == UInt8 {
    /// Empties the array and returns what it held.
    mutating func splice() -> [UInt8] {
        defer { removeAll() }
        return self
    }
}
