import COpenCL

/// Device memory holding `count` 4-byte elements (Float32, or Int32 for labels and indices).
///
/// A buffer owns its memory; when the last reference goes, the memory returns to its device's
/// pool and the next request of the same size reuses it, so a training step allocates nothing
/// once it has run once.
public final class Buffer: @unchecked Sendable {
    public let count: Int
    let storage: Storage
    private let pool: BufferPool

    enum Storage {
        case host(UnsafeMutablePointer<Float>)
        case openCL(cl_mem)
    }

    init(count: Int, storage: Storage, pool: BufferPool) {
        self.count = count
        self.storage = storage
        self.pool = pool
    }

    deinit { pool.recycle(storage, count: count) }

    /// The host memory of a CPU-backend buffer.
    var host: UnsafeMutablePointer<Float> {
        guard case .host(let pointer) = storage else { preconditionFailure("not a host buffer") }
        return pointer
    }

    /// The same memory seen as Int32 (labels, argmax indices).
    var hostInts: UnsafeMutablePointer<Int32> {
        UnsafeMutableRawPointer(host).assumingMemoryBound(to: Int32.self)
    }

    var mem: cl_mem {
        guard case .openCL(let mem) = storage else { preconditionFailure("not an OpenCL buffer") }
        return mem
    }
}

/// Free allocations of one device, bucketed by exact element count (training steps repeat shapes).
final class BufferPool: @unchecked Sendable {
    private var free: [Int: [Buffer.Storage]] = [:]
    private let lock = Lock()
    private let release: (Buffer.Storage) -> Void
    private(set) var allocations = 0

    init(release: @escaping (Buffer.Storage) -> Void) { self.release = release }

    /// A pooled buffer of `count` elements, or a new one made by `allocate`.
    func buffer(count: Int, allocate: () throws -> Buffer.Storage) rethrows -> Buffer {
        let reused = lock.withLock { free[count]?.popLast() }
        if let reused { return Buffer(count: count, storage: reused, pool: self) }
        let storage = try allocate()
        lock.withLock { allocations += 1 }
        return Buffer(count: count, storage: storage, pool: self)
    }

    func recycle(_ storage: Buffer.Storage, count: Int) {
        lock.withLock { free[count, default: []].append(storage) }
    }

    /// Gives every free allocation back to the driver or the system.
    func trim() {
        let all = lock.withLock { () -> [Buffer.Storage] in
            defer { free.removeAll() }
            return free.values.flatMap { $0 }
        }
        all.forEach(release)
    }

    deinit { trim() }
}
