import Foundation
import Testing
@testable import Kiln

/// Data-parallel training over the devices of one process: the in-memory collectives, replicas on
/// PoCL opened twice against one device, and `kiln train --device opencl:0,opencl:0`.
@Suite("Replicas on the devices of one process") struct ReplicaTests {
    static let openCL = Backend.all.map(\.device).first { $0 is OpenCLDevice }

    /// Members on threads of their own sum and broadcast alike; once one abandons the group, the
    /// others' calls throw instead of waiting for it.
    @Test func localCollectives() throws {
        let group = LocalCommunicator.group(size: 3)
        let results = Results(), done = DispatchGroup()
        for rank in 0..<3 {  // threads of their own: each call waits for the other members
            done.enter()
            Thread {
                var values: [Float] = [Float(rank + 1), 0.1 * Float(rank)], root: [Float] = [Float(10 * rank), 1]
                do {
                    try group[rank].allReduceSum(&values)
                    try group[rank].broadcast(&root, from: 2)
                    results.add(rank, values + root)
                } catch { results.add(rank, []) }
                done.leave()
            }.start()
        }
        #expect(done.wait(timeout: .now() + 10) == .success)
        let first = try #require(results.byRank[0])
        #expect(results.byRank.count == 3 && Set(results.byRank.values).count == 1, "every member gets the same bits: \(results.byRank)")
        #expect(first[0] == 6 && abs(first[1] - 0.3) < 1e-6 && first[2...] == [20, 1], "\(first)")
        let waiting = DispatchGroup()
        let outcome = Results()
        for rank in 1..<3 {
            waiting.enter()
            Thread {
                var values: [Float] = [1]
                do { try group[rank].allReduceSum(&values); outcome.add(rank, values) } catch { outcome.add(rank, [-1]) }
                waiting.leave()
            }.start()
        }
        Thread.sleep(forTimeInterval: 0.05)
        group[0].abandon(DistributedError.mismatch("rank 0 failed"))
        #expect(waiting.wait(timeout: .now() + 10) == .success, "the waiting members were released")
        #expect(outcome.byRank == [1: [-1], 2: [-1]], "\(outcome.byRank)")
    }

    /// Two replicas on one PoCL device opened twice, each training on half of every batch of 16 with
    /// synchronized batch norm, end an epoch on the weights and moving statistics of one device
    /// training on whole batches (float summation order apart), and on the same bits as each other.
    @Test(.enabled(if: openCL != nil)) func twoReplicasMatchOneDevice() throws {
        let device = try #require(Self.openCL as? OpenCLDevice)
        let second = try device.reopened()
        var random = Random("replicas")
        let data = Dataset(features: .floats(random.floats(96 * 6 * 6).map { ($0 + 1) / 2 }), sampleShape: [6, 6, 1],
                           labels: (0..<96).map { _ in Int32(random.next() % 3) }, classNames: ["a", "b", "c"])
        func model(on device: any Device) throws -> Model {
            let model = try Sequential([Input(shape: [6, 6, 1]), Conv2D(4, kernelSize: 3, useBias: false), BatchNormalization(synchronized: true),
                                        Activation(.relu), Flatten(), Dense(3)])
            try model.place(on: device, seed: 3)
            try model.compile(optimizer: SGD(learningRate: 0.1), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: ["accuracy"])
            return model
        }
        let one = try model(on: device)
        let alone = try one.fit(data, epochs: 1, batchSize: 16, seed: 4, progress: false)
        let replicas = try [model(on: device), model(on: second)]
        let together = try Model.fit(replicas: replicas, data, epochs: 1, batchSize: 16, seed: 4, progress: false)
        expectClose([together.values["loss"]![0]], [Double(alone.values["loss"]![0])], "epoch loss over the replicas", tolerance: 1e-5)
        var worst = 0.0
        for (a, (b, c)) in zip(one.weights, zip(replicas[0].weights, replicas[1].weights)) {
            let (p, q, r) = (try a.value.toArray(), try b.value.toArray(), try c.value.toArray())
            #expect(q == r, "replicas hold the same bits: \(b.path)")
            let scale = max(p.map { abs(Double($0)) }.max() ?? 0, 1e-30)
            worst = max(worst, zip(p, q).map { abs(Double($0) - Double($1)) / scale }.max() ?? 0)
        }
        #expect(worst <= 1e-5, "largest difference ÷ the weight's largest magnitude: \(worst)")
        #expect(throws: TrainingError.self) { try Model.fit(replicas: [replicas[0], replicas[0]], data, epochs: 1, progress: false) }
    }

    /// README's device-list command (on PoCL's one device listed twice, for a few batches): a replica
    /// per device, reported; the CPU backend is refused in a list.
    @Test(.enabled(if: openCL != nil)) func commandLineDeviceList() throws {
        let folder = try temporaryFolder()
        var command = try #require(try Documentation.shellBlocks(Documentation.readme).flatMap { $0 }.first { $0.contains("opencl:0,opencl:1") })
        #expect(command.starts(with: ["kiln", "train"]), "\(command)")
        command[command.firstIndex(of: "opencl:0,opencl:1")!] = "opencl:0,opencl:0"
        let run = try DeviceTests.run(Array(command.dropFirst()) + ["--limit", "256", "--epochs", "1", "--out", folder.path], environment: [:])
        #expect(run.status == 0 && run.output.contains("Data-parallel over 2 devices") && run.output.contains("split 32 per device"), "\(run.output)")
        let metrics = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("metrics.json"))) as! [String: Any]
        #expect(metrics["replicas"] as? Int == 2)
        let refused = try CLITests.kiln("train", "--dataset", "fashion-mnist", "--limit", "64", "--epochs", "1", "--device", "cpu,opencl:0")
        #expect(refused.status != 0 && refused.output.contains("'cpu' is the CPU backend, which trains alone"), "\(refused.output)")
    }

    private final class Results: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var byRank: [Int: [Float]] = [:]
        func add(_ rank: Int, _ values: [Float]) { lock.withLock { byRank[rank] = values } }
    }
}
