import Foundation

extension Model {
    /// Trains `replicas` — the same architecture built once per device, each placed on a device of its
    /// own and compiled alike — as one model, data-parallel within this process (PyTorch's
    /// `DataParallel`, Keras's `MirroredStrategy`): a thread per replica trains on its share of every
    /// batch of `batchSize`, and the replicas sum their gradients in shared memory during the backward
    /// pass (`DataParallel` over a `LocalCommunicator` group), so their weights stay identical; they
    /// start from replica 0's. Replica 0 shows progress, runs `callbacks` and returns the history; a
    /// replica that fails stops the others with its error.
    @discardableResult
    public static func fit(replicas: [Model], _ data: Dataset, epochs: Int, batchSize: Int = 32, shuffle: Bool = true,
                           validationSplit: Double? = nil, validationData: Dataset? = nil, normalization: Preprocessing = .unitRange,
                           augmentation: Augmentation? = nil, classWeight: [Int: Float]? = nil, seed: UInt64 = 0,
                           callbacks: [Callback] = [], progress: Bool = true) throws -> History {
        guard let first = replicas.first else { throw TrainingError.incompatible("fit(replicas:): no replicas") }
        for (index, replica) in replicas.enumerated() {
            guard let device = replica.device else { throw TrainingError.incompatible("fit(replicas:): replica \(index) ('\(replica.name)') is not placed on a device") }
            if let other = replicas[..<index].firstIndex(where: { $0.device === device }) {
                throw TrainingError.incompatible("fit(replicas:): replicas \(other) and \(index) share \(device.info.name); each needs a device of its own")
            }
            guard replica.weights.map(\.shape) == first.weights.map(\.shape) else {
                throw TrainingError.incompatible("fit(replicas:): replica \(index) ('\(replica.name)') has other weights than replica 0 ('\(first.name)')")
            }
        }
        let group = LocalCommunicator.group(size: replicas.count)
        let outcome = Outcome()
        @Sendable func train(_ index: Int) {
            do {
                let history = try replicas[index].fit(data, epochs: epochs, batchSize: batchSize, shuffle: shuffle, validationSplit: validationSplit,
                                                      validationData: validationData, normalization: normalization, augmentation: augmentation,
                                                      classWeight: classWeight, seed: seed, callbacks: index == 0 ? callbacks : [],
                                                      progress: progress && index == 0, distributed: DataParallel(group[index]))
                if index == 0 { outcome.history = history }
            } catch {
                outcome.fail(error)
                group[index].abandon(error)
            }
        }
        let others = DispatchGroup()
        for index in replicas.indices.dropFirst() {
            others.enter()
            let thread = Thread { train(index); others.leave() }
            thread.stackSize = 16 << 20
            thread.start()
        }
        train(0)
        others.wait()
        if let error = outcome.failure { throw error }
        return outcome.history!
    }

    /// What the replicas' threads leave: replica 0's history and the first error.
    private final class Outcome: @unchecked Sendable {
        private let lock = NSLock()
        var history: History?
        private(set) var failure: Error?

        func fail(_ error: Error) { lock.withLock { if failure == nil { failure = error } } }
    }
}
