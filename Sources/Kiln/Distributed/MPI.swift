import CMPI
import Foundation

/// Why a distributed run cannot start or go on.
public enum DistributedError: Error, CustomStringConvertible {
    case unavailable(String)
    case failed(call: String, status: Int32)
    case mismatch(String)

    public var description: String {
        switch self {
        case .unavailable(let why): "--distributed needs MPI: \(why)"
        case .failed(let call, let status): "\(call) failed with MPI error \(status)"
        case .mismatch(let what): "the ranks disagree: \(what)"
        }
    }
}

/// The MPI world this process belongs to (`mpirun -np N` starts N of them; run alone, it is a world
/// of one). MPI is loaded at run time — Open MPI or MPICH, or the library `KILN_MPI_LIBRARY` names —
/// so Kiln builds and runs without it.
public final class MPICommunicator: @unchecked Sendable {
    public let rank: Int
    public let size: Int
    /// Whether MPI lets a thread other than the first call it (one at a time): what overlapping the
    /// gradient reduction with the backward pass needs.
    public let threadsMayCall: Bool

    private init(rank: Int, size: Int, threadsMayCall: Bool) { (self.rank, self.size, self.threadsMayCall) = (rank, size, threadsMayCall) }

    private static let shared = Lock()
    nonisolated(unsafe) private static var initialised: MPICommunicator?

    /// The world communicator, initialising MPI on first use.
    public static func world() throws -> MPICommunicator {
        try shared.withLock {
            if let initialised { return initialised }
            var error = [CChar](repeating: 0, count: 512)
            let library = ProcessInfo.processInfo.environment["KILN_MPI_LIBRARY"]
            let loaded = library.map { name in name.withCString { kiln_mpi_load($0, &error, error.count) } } ?? kiln_mpi_load(nil, &error, error.count)
            guard loaded == 0 else { throw DistributedError.unavailable(String(cString: error)) }
            var (rank, size, serialized): (Int32, Int32, Int32) = (0, 1, 0)
            try check(kiln_mpi_init(&rank, &size, &serialized), "MPI_Init_thread")
            let world = MPICommunicator(rank: Int(rank), size: Int(size), threadsMayCall: serialized != 0)
            initialised = world
            atexit { _ = kiln_mpi_finalize() }
            return world
        }
    }

    /// Sums `values` element by element over every rank, in place.
    public func allReduceSum(_ values: inout [Float]) throws {
        try Self.check(values.withUnsafeMutableBufferPointer { kiln_mpi_allreduce_sum_float($0.baseAddress, $0.count) }, "MPI_Allreduce")
    }

    public func allReduceSum(_ values: inout [Double]) throws {
        try Self.check(values.withUnsafeMutableBufferPointer { kiln_mpi_allreduce_sum_double($0.baseAddress, $0.count) }, "MPI_Allreduce")
    }

    /// `root`'s values on every rank.
    public func broadcast(_ values: inout [Float], from root: Int = 0) throws {
        try Self.check(values.withUnsafeMutableBufferPointer { kiln_mpi_broadcast_float($0.baseAddress, $0.count, Int32(root)) }, "MPI_Bcast")
    }

    public func barrier() throws { try Self.check(kiln_mpi_barrier(), "MPI_Barrier") }

    /// Ends every rank: what a rank that cannot go on does, so that the others do not wait for it forever.
    public func abort(code: Int32 = 1) -> Never {
        kiln_mpi_abort(code)
        exit(code)
    }

    private static func check(_ status: Int32, _ call: String) throws {
        guard status == 0 else { throw DistributedError.failed(call: call, status: status) }
    }
}
