import Foundation

/// Sizes that come from files and arguments, checked before anything is allocated for them: a
/// count that overflows or a request larger than the memory left ends in an error, not in the allocator.
public enum Memory {
    /// The product of `dimensions`, or nil when one is negative or the product overflows `Int`.
    public static func count(_ dimensions: [Int]) -> Int? {
        var product = 1
        for d in dimensions {
            guard d >= 0 else { return nil }
            let (next, overflow) = product.multipliedReportingOverflow(by: d)
            guard !overflow else { return nil }
            product = next
        }
        return product
    }

    /// Bytes the process can still allocate: the least of the memory the kernel has available, the
    /// headroom under the address-space limit (`ulimit -v`) and under the cgroup's memory limit.
    public static var available: Int {
        var limits = [meminfo("MemAvailable") ?? Int.max]
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_AS.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max {
            limits.append(max(0, Int(clamping: limit.rlim_cur) - (status("VmSize") ?? 0)))
        }
        if let max = number("/sys/fs/cgroup/memory.max"), let current = number("/sys/fs/cgroup/memory.current") {
            limits.append(Swift.max(0, max - current))
        }
        return limits.min()!
    }

    /// Throws unless `count` elements of `size` bytes fit in the memory available.
    public static func require(_ count: Int, of size: Int = 4, for what: @autoclosure () -> String) throws {
        let (bytes, overflow) = count.multipliedReportingOverflow(by: size)
        let free = available
        guard count >= 0, !overflow, bytes <= free else {
            throw DeviceError.outOfMemory(what: what(), bytes: overflow || count < 0 ? nil : bytes, available: free)
        }
    }

    /// A `Key: N kB` line of /proc/meminfo, in bytes.
    private static func meminfo(_ key: String) -> Int? { field(key, in: "/proc/meminfo") }
    /// A `Key: N kB` line of /proc/self/status, in bytes.
    private static func status(_ key: String) -> Int? { field(key, in: "/proc/self/status") }

    private static func field(_ key: String, in path: String) -> Int? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }),
              let kB = Int(line.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces).split(separator: " ")[0]) else { return nil }
        return kB * 1024
    }

    private static func number(_ path: String) -> Int? {
        (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }
}
