import Foundation

/// The collective calls data-parallel training makes, over some group of replicas: the ranks of an
/// MPI world (`MPICommunicator`) or the threads of one process, one per device (`LocalCommunicator`).
/// Every member makes the same calls in the same order, as MPI requires.
public protocol Communicator: AnyObject, Sendable {
    var rank: Int { get }
    var size: Int { get }
    /// Whether a thread other than the one that started training may make the calls (one at a time):
    /// what overlapping the gradient reduction with the backward pass needs.
    var threadsMayCall: Bool { get }
    /// Sums `values` element by element over every member, in place.
    func allReduceSum(_ values: inout [Float]) throws
    func allReduceSum(_ values: inout [Double]) throws
    /// `root`'s values on every member.
    func broadcast(_ values: inout [Float], from root: Int) throws
}

extension MPICommunicator: Communicator {}

/// A group of replicas in one process, one thread each (several devices of one machine): the
/// collective calls meet in shared memory. Sums add the members' values in rank order (in double
/// precision), so every member gets the same bits. A member that fails calls `abandon`, and the
/// others' calls then throw instead of waiting for it forever.
public final class LocalCommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public var size: Int { meeting.size }
    public var threadsMayCall: Bool { true }
    private let meeting: Meeting

    /// The members of a new group of `size`, rank 0 first.
    public static func group(size: Int) -> [LocalCommunicator] {
        let meeting = Meeting(size: max(size, 1))
        return (0..<max(size, 1)).map { LocalCommunicator(rank: $0, meeting: meeting) }
    }

    private init(rank: Int, meeting: Meeting) { (self.rank, self.meeting) = (rank, meeting) }

    public func allReduceSum(_ values: inout [Float]) throws {
        var wide = values.map(Double.init)
        try allReduceSum(&wide)
        values = wide.map(Float.init)
    }

    public func allReduceSum(_ values: inout [Double]) throws {
        values = try meeting.meet(rank, values) { parts in (0..<parts[0].count).map { i in parts.reduce(0) { $0 + $1[i] } } }
    }

    public func broadcast(_ values: inout [Float], from root: Int) throws {
        guard (0..<size).contains(root) else { throw DistributedError.mismatch("broadcast from rank \(root) of \(size)") }
        values = try meeting.meet(rank, values.map(Double.init)) { $0[root] }.map(Float.init)
    }

    /// Makes every call of the group, present and future, throw an error naming `error` (a member cannot go on).
    public func abandon(_ error: Error) { meeting.abandon(error) }

    /// One collective call at a time: each member leaves its values, the last to arrive combines them,
    /// and all take the result. A member reaches the next call only after taking this one's result,
    /// so one result buffer serves.
    private final class Meeting: @unchecked Sendable {
        let size: Int
        private let condition = NSCondition()
        private var parts: [[Double]?]
        private var arrived = 0, generation = 0
        private var result: [Double] = []
        private var failure: Error?

        init(size: Int) { (self.size, parts) = (size, Array(repeating: nil, count: size)) }

        func meet(_ rank: Int, _ values: [Double], combine: ([[Double]]) -> [Double]) throws -> [Double] {
            condition.lock()
            defer { condition.unlock() }
            if let failure { throw failure }
            parts[rank] = values
            arrived += 1
            if arrived == size {
                let all = parts.map { $0! }
                guard all.allSatisfy({ $0.count == values.count }) else {
                    failure = DistributedError.mismatch("a collective call with \(all.map(\.count)) values per replica")
                    condition.broadcast()
                    throw failure!
                }
                result = combine(all)
                (parts, arrived, generation) = (Array(repeating: nil, count: size), 0, generation + 1)
                condition.broadcast()
                return result
            }
            let mine = generation
            while generation == mine, failure == nil { condition.wait() }
            if generation == mine, let failure { throw failure }
            return result
        }

        func abandon(_ error: Error) {
            condition.lock()
            if failure == nil { failure = DistributedError.mismatch("another replica stopped: \(error)") }
            condition.broadcast()
            condition.unlock()
        }
    }
}
