import Foundation
import Testing
@testable import Kiln

/// `kiln train --distributed` under `mpirun` (run when Open MPI is installed: Scripts/setup.sh installs it).
@Suite("Data-parallel training") struct DistributedTests {
    static let mpirun = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }
    /// Open MPI refuses root unless told (CI containers run as root); loopback only.
    static let environment = ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OMPI_MCA_btl": "self,vader,tcp",
                              "OMPI_MCA_btl_tcp_if_include": "lo"]

    /// README's command on 512 real Fashion-MNIST images for one epoch: two ranks with global batch 32
    /// end on the same weights as one process with batch 32 (dropout-free LeNet-5, the same seed), up to
    /// float summation order.
    @Test(.enabled(if: mpirun != nil)) func twoRanksMatchOne() throws {
        let folder = try temporaryFolder()
        let readme = try #require(try Documentation.shellBlocks(Documentation.readme).flatMap { $0 }.first { $0.first == "mpirun" })
        #expect(readme.starts(with: ["mpirun", "-np", "2", "kiln", "train"]) && readme.last == "--distributed", "\(readme)")
        let arguments = Array(readme.dropFirst(4).dropLast()) + ["--limit", "512", "--epochs", "1", "--device", "cpu", "--seed", "7"]
        let one = try DeviceTests.run(arguments + ["--out", folder.appendingPathComponent("one").path], environment: ["KILN_NUM_THREADS": "1"])
        #expect(one.status == 0, "\(one.output)")
        let two = try DeviceTests.run(["--oversubscribe"] + readme.dropFirst().prefix(2) + [DeviceTests.kiln.path] + arguments
                                      + ["--out", folder.appendingPathComponent("two").path, "--distributed"],
                                      environment: Self.environment, executable: URL(fileURLWithPath: Self.mpirun!))
        #expect(two.status == 0, "\(two.output)")
        #expect(two.output.components(separatedBy: "Test loss").count == 2, "only rank 0 reports: \(two.output)")
        #expect(two.output.contains("Data-parallel over 2 MPI ranks: each batch of 32 split 16 per rank"), "\(two.output)")
        let (a, b) = (try Checkpoint.load(folder.appendingPathComponent("one/model.safetensors"), device: CPUDevice.shared).model,
                      try Checkpoint.load(folder.appendingPathComponent("two/model.safetensors"), device: CPUDevice.shared).model)
        var worst = 0.0
        for (x, y) in zip(a.weights, b.weights) {
            let (p, q) = (try x.value.toArray(), try y.value.toArray())
            let scale = max(p.map { abs(Double($0)) }.max() ?? 0, 1e-30)
            worst = max(worst, zip(p, q).map { abs(Double($0) - Double($1)) / scale }.max() ?? 0)
        }
        #expect(worst <= 1e-5, "largest difference ÷ the weight's largest magnitude: \(worst)")
        #expect(a.epochsTrained == 1 && b.epochsTrained == 1)
    }

    /// With `--sync-batchnorm`, two ranks normalise over the global batch, so after two steps of a
    /// residual network the moving statistics rank 0 saves are one process's (measured 4.5e-5 of each
    /// tensor's largest value); without it rank 0's are its half-batch's (1.6e-2). The statistics, not
    /// the weights or predictions: this network's rounding grows fast (one process on 1 thread against 2
    /// ends an epoch 2% apart in some betas; a change in a sum's order moved two-step predictions from
    /// 2.6e-5 to 3.3e-4), while the statistics are what synchronizing changes.
    @Test(.enabled(if: mpirun != nil)) func synchronizedBatchNormMatchesOneProcess() throws {
        let folder = try temporaryFolder()
        let arguments = ["train", "--dataset", "fashion-mnist", "--limit", "64", "--model", "resnet-small", "--batch-size", "32", "--epochs", "1",
                         "--optimizer", "sgd", "--device", "cpu", "--seed", "5"]
        func statistics(_ run: String) throws -> [[Float]] {
            let model = try Checkpoint.load(folder.appendingPathComponent("\(run)/model.safetensors"), device: CPUDevice.shared).model
            return try model.weights.filter { $0.name.hasPrefix("moving_") }.map { try $0.value.toArray() }
        }
        let one = try DeviceTests.run(arguments + ["--out", folder.appendingPathComponent("one").path], environment: ["KILN_NUM_THREADS": "1"])
        #expect(one.status == 0, "\(one.output)")
        for (run, flags) in [("synchronized", ["--sync-batchnorm"]), ("per-rank", [])] {
            let two = try DeviceTests.run(["--oversubscribe", "-np", "2", DeviceTests.kiln.path] + arguments + flags
                                          + ["--out", folder.appendingPathComponent(run).path, "--distributed"],
                                          environment: Self.environment, executable: URL(fileURLWithPath: Self.mpirun!))
            #expect(two.status == 0, "\(two.output)")
            #expect(two.output.contains(flags.isEmpty ? "batch-norm statistics per rank" : "batch normalisation over the global batch"))
        }
        #expect(try DeviceTests.run(arguments + ["--sync-batchnorm", "--out", folder.path], environment: [:]).output
            .contains("--sync-batchnorm synchronizes data-parallel replicas: use it with --distributed under mpirun"))
        let reference = try statistics("one")
        #expect(reference.count == 8, "four batch normalisations, two statistics each")
        func difference(_ run: String) throws -> Double {
            zip(reference, try statistics(run)).map { p, q in
                zip(p, q).map { Double(abs($0 - $1)) }.max()! / Double(p.map(abs).max()!)
            }.max()!
        }
        let (synchronized, perRank) = (try difference("synchronized"), try difference("per-rank"))
        #expect(synchronized <= 1e-3, "synchronized: \(synchronized)")
        #expect(perRank > 10 * synchronized, "per rank: \(perRank), synchronized: \(synchronized)")
    }

    /// A checkpoint of one process resumes under two ranks (and the reverse would too: the run's
    /// state has no rank count in it) and reaches the weights one process reaches.
    @Test(.enabled(if: mpirun != nil)) func resumesWithAnotherRankCount() throws {
        let folder = try temporaryFolder()
        let arguments = ["train", "--dataset", "fashion-mnist", "--limit", "384", "--model", "lenet5", "--batch-size", "32", "--device", "cpu",
                         "--seed", "3"]
        let first = try DeviceTests.run(arguments + ["--epochs", "1", "--out", folder.appendingPathComponent("first").path], environment: [:])
        #expect(first.status == 0, "\(first.output)")
        let checkpoint = folder.appendingPathComponent("first/model.safetensors").path
        let one = try DeviceTests.run(["train", "--resume", checkpoint, "--epochs", "2", "--device", "cpu", "--out", folder.appendingPathComponent("one").path],
                                      environment: [:])
        #expect(one.status == 0, "\(one.output)")
        let two = try DeviceTests.run(["--oversubscribe", "-np", "2", DeviceTests.kiln.path, "train", "--resume", checkpoint, "--epochs", "2",
                                       "--device", "cpu", "--out", folder.appendingPathComponent("two").path, "--distributed"],
                                      environment: Self.environment, executable: URL(fileURLWithPath: Self.mpirun!))
        #expect(two.status == 0, "\(two.output)")
        let (a, b) = (try Checkpoint.load(folder.appendingPathComponent("one/model.safetensors"), device: CPUDevice.shared).model,
                      try Checkpoint.load(folder.appendingPathComponent("two/model.safetensors"), device: CPUDevice.shared).model)
        #expect(a.epochsTrained == 2 && b.epochsTrained == 2)
        for (x, y) in zip(a.weights, b.weights) {
            let (p, q) = (try x.value.toArray(), try y.value.toArray())
            let scale = max(p.map { abs(Double($0)) }.max() ?? 0, 1e-30)
            #expect(zip(p, q).allSatisfy { abs(Double($0) - Double($1)) <= 1e-5 * scale }, "\(x.path)")
        }
    }

    /// A rank killed mid-epoch (no chance to say anything) does not leave the other waiting in a
    /// reduction forever: mpirun ends the job.
    @Test(.enabled(if: mpirun != nil)) func aKilledRankEndsTheJob() throws {
        let marker = "kiln-killed-rank-\(UUID().uuidString)"
        let folder = try temporaryFolder().appendingPathComponent(marker)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.mpirun!)
        process.arguments = ["--oversubscribe", "-np", "2", DeviceTests.kiln.path, "train", "--dataset", "fashion-mnist", "--limit", "20000",
                             "--model", "lenet5", "--epochs", "3", "--device", "cpu", "--out", folder.path, "--distributed"]
        process.environment = ProcessInfo.processInfo.environment.merging(Self.environment) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        // Both ranks are training once the run folder exists (rank 0 makes it before its first step).
        var ranks: [Int32] = []
        for _ in 0..<300 where ranks.count < 2 || !FileManager.default.fileExists(atPath: folder.path) {
            Thread.sleep(forTimeInterval: 0.1)
            let pgrep = Process(), pipe = Pipe()
            pgrep.executableURL = URL(fileURLWithPath: "/usr/bin/pgrep")
            pgrep.arguments = ["-f", "kiln train .*\(marker)"]
            pgrep.standardOutput = pipe
            try pgrep.run()
            pgrep.waitUntilExit()
            ranks = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                .split(separator: "\n").compactMap { Int32($0) }.filter { $0 != process.processIdentifier }
        }
        try #require(ranks.count == 2 && process.isRunning, "both ranks should be training: \(ranks)")
        Thread.sleep(forTimeInterval: 1)
        kill(ranks.max()!, SIGKILL)
        let killed = Date()
        while process.isRunning && Date().timeIntervalSince(killed) < 60 { Thread.sleep(forTimeInterval: 0.1) }
        #expect(!process.isRunning, "mpirun still running 60 s after a rank was killed")
        #expect(process.terminationStatus != 0)
    }

    /// A rank that fails ends every rank (MPI_Abort) instead of leaving them waiting; without MPI the
    /// flag says so in one line.
    @Test(.enabled(if: mpirun != nil)) func failuresEndEveryRank() throws {
        let start = Date()
        let failed = try DeviceTests.run(["--oversubscribe", "-np", "2", DeviceTests.kiln.path, "train", "--dataset", "/no/such/data.csv",
                                          "--distributed"], environment: Self.environment, in: try temporaryFolder(),
                                          executable: URL(fileURLWithPath: Self.mpirun!))
        #expect(failed.status != 0 && failed.output.contains("/no/such/data.csv"), "\(failed.output)")
        #expect(Date().timeIntervalSince(start) < 60)
        let missing = try DeviceTests.run(["train", "--distributed"], environment: ["KILN_MPI_LIBRARY": "/no/libmpi.so"])
        #expect(missing.status != 0 && missing.output.contains("--distributed needs MPI: KILN_MPI_LIBRARY=/no/libmpi.so could not be loaded"),
                "\(missing.output)")
    }
}
