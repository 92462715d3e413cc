import Foundation

/// Ends the process with one line when a guarded call into a library that cannot be interrupted
/// (libhdf5 looping on a damaged file) runs past its limit: a clear error instead of a hang.
enum Watchdog {
    private static let lock = Lock()
    nonisolated(unsafe) private static var deadline: (time: DispatchTime, message: String)?
    private static let watcher: Thread = {
        let thread = Thread {
            while true {
                Thread.sleep(forTimeInterval: 0.25)
                if let (time, message) = lock.withLock({ deadline }), DispatchTime.now() > time {
                    FileHandle.standardError.write(Data("Error: \(message)\n".utf8))
                    _exit(1)  // not exit(): atexit handlers (libhdf5's) could wait on the stuck call
                }
            }
        }
        thread.start()
        return thread
    }()

    /// Runs `body` (not reentrant: callers hold their own lock) with a deadline `seconds` from now.
    static func guarding<T>(_ message: @autoclosure () -> String, seconds: Double, _ body: () throws -> T) rethrows -> T {
        _ = watcher
        lock.withLock { deadline = (.now() + seconds, message()) }
        defer { lock.withLock { deadline = nil } }
        return try body()
    }
}
