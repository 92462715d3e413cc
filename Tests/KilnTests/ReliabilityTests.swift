import Foundation
import Testing
@testable import Kiln

/// Bad input, faults and exhausted resources: one clear line, never a signal, a hang or silent garbage.
@Suite("Reliability") struct ReliabilityTests {
    /// Runs `kiln` on the CPU backend, optionally under an address-space limit (`ulimit -v`, in kB).
    static func kiln(_ arguments: [String], memoryKB: Int? = nil) throws -> (status: Int32, output: String) {
        try DeviceTests.run(arguments, environment: ["KILN_DEVICE": "cpu"], memoryKB: memoryKB)
    }

    /// The command fails with an error line that contains each of `words`, and no crash report.
    static func expectClearError(_ arguments: [String], memoryKB: Int? = nil, _ words: String..., sourceLocation: SourceLocation = #_sourceLocation) throws {
        let (status, output) = try kiln(arguments, memoryKB: memoryKB)
        #expect(status == 1 || status == 64, "exit \(status): \(output)", sourceLocation: sourceLocation)
        let errorLine = output.split(separator: "\n").first { $0.hasPrefix("Error: ") } ?? ""
        for word in words { #expect(errorLine.contains(word), "'\(word)' in: \(output)", sourceLocation: sourceLocation) }
        #expect(!output.contains("Fatal error") && !output.contains("Crash") && !output.contains("Backtrac"), "\(output)", sourceLocation: sourceLocation)
    }

    static func write(_ text: String, _ name: String, in folder: URL) throws -> String {
        let url = folder.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    /// A trained checkpoint of a small MLP on a CSV dataset, and the CSV.
    static func smallRun(in folder: URL) throws -> (checkpoint: String, csv: String) {
        let rows = (0..<40).map { i in "\(Float(i % 4) + 0.1 * Float(i % 7)),\(Float(i % 3)),\(i % 2)" }
        let csv = try write("a,b,label\n" + rows.joined(separator: "\n") + "\n", "data.csv", in: folder)
        let run = folder.appendingPathComponent("run").path
        let (status, output) = try kiln(["train", "--dataset", csv, "--model", "mlp", "--epochs", "2", "--batch-size", "8", "--out", run])
        #expect(status == 0, "\(output)")
        return (run + "/model.safetensors", csv)
    }

    @Test func hugeZeroAndNegativeSizes() throws {
        let folder = try temporaryFolder()
        try NumPy.write([], shape: [0, 28, 28, 1], to: folder.appendingPathComponent("empty.npy"))
        let (checkpoint, _) = try Self.smallRun(in: folder)
        try NumPy.write([], shape: [0, 2], to: folder.appendingPathComponent("none.npy"))
        try Self.expectClearError(["predict", checkpoint, folder.appendingPathComponent("none.npy").path], "none.npy", "no samples")

        let labels = try Self.write("a,label\n1,0\n2,2000000000\n3,1\n4,0\n5,1\n", "huge-label.csv", in: folder)
        try Self.expectClearError(["train", "--dataset", labels, "--model", "mlp", "--epochs", "1", "--out", folder.appendingPathComponent("r1").path],
                                  "needs", "available")
        let npz = folder.appendingPathComponent("huge-label.npz")
        try Zip.archive([("x.npy", NumPy.encode((0..<12).map(Float.init), shape: [6, 2])),
                         ("y.npy", NumPy.encode([0, 1, 2_000_000_000, 1, 0, 1], shape: [6]))]).write(to: npz)
        try Self.expectClearError(["train", "--dataset", npz.path, "--model", "mlp", "--epochs", "1", "--out", folder.appendingPathComponent("r2").path],
                                  "needs", "available")
        let images = folder.appendingPathComponent("images/a")
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        try Data(png(width: 2, height: 2, channels: 3, pixels: Array(repeating: 9, count: 12))).write(to: images.appendingPathComponent("x.png"))
        try Self.expectClearError(["train", "--dataset", images.deletingLastPathComponent().path, "--image-size", "100000,100000", "--epochs", "1"],
                                  "images", "needs")

        let dense = #"{"class_name": "Sequential", "config": {"name": "s", "layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 4]}}, {"class_name": "Dense", "config": {"name": "big", "units": UNITS}}]}}"#
        for (units, words) in [("4611686018427387904", ["big", "weight 'kernel'"]), ("0", ["big", "units"])] {
            let json = try Self.write(dense.replacingOccurrences(of: "UNITS", with: units), "dense-\(units).json", in: folder)
            try Self.expectClearError(["summary", json], words[0], words[1])
        }
        // 16 inputs × 2^31 units: 137 GB of weights, more than any machine we test on has.
        let wide = try Self.write(dense.replacingOccurrences(of: "UNITS", with: "2147483648").replacingOccurrences(of: "[null, 4]", with: "[null, 16]"),
                                  "wide.json", in: folder)
        let features = try Self.write((0..<16).map { "f\($0)" }.joined(separator: ",") + ",label\n"
                                      + (0..<20).map { i in (0..<16).map { _ in "0.5" }.joined(separator: ",") + ",\(i % 2)" }.joined(separator: "\n"),
                                      "wide.csv", in: folder)
        try Self.expectClearError(["train", "--model", wide, "--dataset", features, "--epochs", "1"], "model", "needs")
        let conv = #"{"class_name": "Sequential", "config": {"name": "s", "layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 8, 8, 1]}}, {"class_name": "Conv2D", "config": {"name": "negative", "filters": -1, "kernel_size": 3}}]}}"#
        try Self.expectClearError(["summary", try Self.write(conv, "conv.json", in: folder)], "negative", "-1")
        try Self.expectClearError(["train", "--epochs", "-1"], "--epochs must be positive")
        try Self.expectClearError(["train", "--batch-size", "-3"], "--batch-size must be positive")
    }

    /// Under a 1 GB address-space limit: a batch too big, and a .gz that inflates past the limit.
    @Test func exhaustedMemory() throws {
        let folder = try temporaryFolder()
        let (_, csv) = try Self.smallRun(in: folder)
        _ = csv
        guard (try? NamedDataset.fashionMNIST.load(.test)) != nil else { return }
        try Self.expectClearError(["train", "--batch-size", "60000", "--epochs", "1", "--out", folder.appendingPathComponent("big").path],
                                  memoryKB: 1_000_000, "needs", "available")
        let bomb = folder.appendingPathComponent("mnist")
        try FileManager.default.createDirectory(at: bomb, withIntermediateDirectories: true)
        let zeros = try Compression.gzip(Data([0, 0, 8, 3, 0, 0x98, 0x96, 0x80, 0, 0, 0, 28, 0, 0, 0, 28] + [UInt8](repeating: 0, count: 600_000_000)))
        for name in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
            try zeros.write(to: bomb.appendingPathComponent(name))
        }
        try Self.expectClearError(["train", "--dataset", "mnist", "--data", bomb.path, "--epochs", "1"], memoryKB: 400_000, "train-images", "inflat")
    }

    @Test(arguments: Backend.all)
    func emptyTransfersTouchNoMemory(_ backend: Backend) throws {
        let buffer = try backend.device.makeBuffer(count: 4)
        try [Float]().withUnsafeBytes { try backend.device.write($0, to: buffer, offset: 0) }
        var none: [Float] = []
        try none.withUnsafeMutableBytes { try backend.device.read(buffer, offset: 0, into: $0) }
        #expect { try backend.device.makeBuffer(count: Int.max / 2) } throws: { "\($0)".contains("needs") || "\($0)".contains("CL_") }
    }

    @Test func checkpointsAndResume() throws {
        let folder = try temporaryFolder()
        let (checkpoint, csv) = try Self.smallRun(in: folder)
        let (status, output) = try Self.kiln(["train", "--resume", checkpoint, "--epochs", "2"])
        #expect(status == 1 && output.contains("already trained 2 epochs") && !output.contains("Epoch 3"), "\(output)")

        let url = URL(fileURLWithPath: checkpoint)
        let file = try SafeTensors(contentsOf: url)
        let tensors = try file.entries.keys.sorted().map { (name: $0, shape: file.entries[$0]!.shape, values: try file.floats($0)) }
        for (edit, message) in [(#""epoch":2"#, #""epoch":5"#), (#""epoch":2"#, #""epoch":-1"#), (#""epoch":2"#, #""epoch":9223372036854775807"#),
                                (#""epochs":[1,2]"#, #""epochs":[1,2,3]"#)].map({ ($0, "damaged") }) {
            var metadata = file.metadata
            #expect(metadata["kiln"]!.contains(edit.0), "\(metadata["kiln"]!)")
            metadata["kiln"] = metadata["kiln"]!.replacingOccurrences(of: edit.0, with: edit.1)
            let damaged = folder.appendingPathComponent("damaged.safetensors")
            try SafeTensors.write(tensors, metadata: metadata, to: damaged)
            try Self.expectClearError(["train", "--resume", damaged.path, "--epochs", "9"], "damaged.safetensors", message)
        }
        let nan = try Self.write("a,b,label\n" + (0..<30).map { "\($0),\($0 == 13 ? "nan" : "1"),\($0 % 2)" }.joined(separator: "\n"), "nan.csv", in: folder)
        try Self.expectClearError(["train", "--dataset", nan, "--model", "mlp", "--epochs", "1"], "sample", "nan")
        try Self.expectClearError(["convert", try Self.write("{}", "m.json", in: folder), folder.appendingPathComponent("o.safetensors").path],
                                  "--weights")
        let blocker = try Self.write("", "file", in: folder)
        try Self.expectClearError(["train", "--dataset", csv, "--model", "mlp", "--out", blocker + "/run"], "is a file, not a folder")
    }

    /// A diverging run stops at the first check of a non-finite loss, puts back the last finite weights
    /// and still writes a readable run folder and a checkpoint of those weights.
    @Test func nonFiniteLossWritesTheRunFolder() throws {
        let folder = try temporaryFolder()
        let rows = (0..<40).map { i in "\(i % 2 == 0 ? 3e38 : -3e38),\(i % 2)" }
        let csv = try Self.write("x,label\n" + rows.joined(separator: "\n") + "\n", "wild.csv", in: folder)
        let run = folder.appendingPathComponent("run")
        let (status, output) = try Self.kiln(["train", "--dataset", csv, "--model", "mlp", "--epochs", "3", "--batch-size", "4", "--preprocess", "none",
                                              "--out", run.path])
        #expect(status == 1 && output.contains("TerminateOnNaN"), "\(output)")
        let metrics = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("metrics.json"))) as? [String: Any]
        #expect((metrics?["stopped"] as? String)?.contains("TerminateOnNaN") == true, "\(String(describing: metrics))")
        #expect(FileManager.default.fileExists(atPath: run.appendingPathComponent("history.csv").path))
        #expect(output.contains("put back") && !output.contains("not written"), "\(output)")
        let (model, _) = try Checkpoint.load(run.appendingPathComponent("model.safetensors"), device: CPUDevice.shared)
        #expect(try model.weights.allSatisfy { try $0.value.toArray().allSatisfy(\.isFinite) }, "the checkpoint holds the last finite weights")
    }

    @Test func stricterReaders() throws {
        let folder = try temporaryFolder()
        let url = folder.appendingPathComponent("t.safetensors")
        func raw(_ header: String, _ data: Int) throws {
            var header = Data(header.utf8)
            while header.count % 8 != 0 { header.append(0x20) }
            try (withUnsafeBytes(of: UInt64(header.count).littleEndian) { Data($0) } + header + Data(count: data)).write(to: url)
        }
        try raw(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, 12)
        #expect { try SafeTensors(contentsOf: url) } throws: { "\($0)".contains("overlapping") }
        try raw(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, 16)
        #expect { try SafeTensors(contentsOf: url) } throws: { "\($0)".contains("8 bytes after the last tensor") }
        try raw(#"{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}"#, 8)
        #expect { try SafeTensors(contentsOf: url) } throws: { "\($0)".contains("does not match") }

        var npz = [UInt8](Zip.archive([("x.npy", NumPy.encode([1, 2], shape: [2]))]))
        npz[40] ^= 1  // inside the stored .npy
        try Data(npz).write(to: folder.appendingPathComponent("x.npz"))
        #expect { try NumPy.readArchive(folder.appendingPathComponent("x.npz")) } throws: { "\($0)".contains("CRC") }

        // .keras: a damaged weights member is reported under the .keras file's own name.
        var keras = try Zip.entries(fixtures.appendingPathComponent("keras_cnn.keras"))
        keras = keras.map { $0.name == "model.weights.h5" ? ($0.name, Data($0.data.prefix(2000))) : $0 }
        let damagedKeras = folder.appendingPathComponent("cut.keras")
        try Zip.archive(keras).write(to: damagedKeras)
        #expect { try KerasFile.load(damagedKeras) } throws: { "\($0)".contains("cut.keras[model.weights.h5]") }
    }

    @Test func onnxGraphsAreValidated() throws {
        let folder = try temporaryFolder()
        let proto = try Onnx_ModelProto(serializedBytes: Data(contentsOf: fixtures.appendingPathComponent("torch_cnn.onnx")))
        func load(_ edit: (inout Onnx_ModelProto) -> Void) throws -> Model {
            var copy = proto
            edit(&copy)
            let url = folder.appendingPathComponent("edited.onnx")
            try copy.serializedData().write(to: url)
            return try ONNXImport.load(url, device: CPUDevice.shared)
        }
        #expect { try load { $0.graph.node[2].output = [] } } throws: { "\($0)".contains("has no output") }
        #expect { try load { $0.graph.node.swapAt(0, 3) } } throws: { "\($0)".contains("which no earlier node produces") }
        #expect { try load { $0.graph.node[1].input[0] = $0.graph.node[3].output[0] } } throws: { "\($0)".contains("cyclic, dangling") }
        #expect { try load { $0.graph.initializer[0].dims = [Int64.max, 4] } } throws: { "\($0)".contains("not a valid size") }
        #expect { try load { $0.graph.initializer[0].rawData = Data() } } throws: { "\($0)".contains("holds 0 values") }
        #expect {
            try load {
                $0.graph.initializer[0].rawData = Data()
                $0.graph.initializer[0].dataLocation = .external
                var entry = Onnx_StringStringEntryProto()
                (entry.key, entry.value) = ("location", "../../../../etc/passwd")
                $0.graph.initializer[0].externalData = [entry]
            }
        } throws: { "\($0)".contains("external file") }
    }

    @Test func sparseLabelsAndThreads() throws {
        let folder = try temporaryFolder()
        let csv = try Self.write("x,label\n" + (0..<30).map { "\($0),\($0 % 2 * 200)" }.joined(separator: "\n"), "sparse.csv", in: folder)
        let (status, output) = try Self.kiln(["train", "--dataset", csv, "--model", "mlp", "--epochs", "1", "--out", folder.appendingPathComponent("r").path])
        #expect(status == 0 && output.contains("labels run from 0 to 200 but only 2 of them occur") && output.contains("--classes"), "\(output)")
        try Self.expectClearError(["train", "--dataset", csv, "--model", "mlp", "--classes", "7", "--epochs", "1"], "--classes 7", "200")
        let (threadStatus, threads) = try DeviceTests.run(["devices"], environment: ["KILN_DEVICE": "cpu", "KILN_NUM_THREADS": "600"])
        #expect(threadStatus == 0 && threads.contains("KILN_NUM_THREADS=600: running") && !threads.contains("600 threads"), "\(threads)")
    }

    /// Ctrl-C finishes the step, writes a checkpoint that resumes and the run folder, and exits 130;
    /// kill -9 at any moment leaves no half-written file.
    @Test func interruptsAndKills() throws {
        let folder = try temporaryFolder()
        let rows = (0..<4000).map { i in "\(Float(i % 5)),\(Float(i % 3)),\(Float(i % 7)),\(i % 2)" }
        let csv = try Self.write("a,b,c,label\n" + rows.joined(separator: "\n") + "\n", "data.csv", in: folder)
        var random = Random("kill")
        for (signal, name) in [(SIGINT, "int"), (SIGKILL, "kill"), (SIGKILL, "kill2")] {
            let run = folder.appendingPathComponent(name)
            let process = Process()
            process.executableURL = DeviceTests.kiln
            process.arguments = ["train", "--dataset", csv, "--model", "mlp", "--epochs", "400", "--batch-size", "4", "--out", run.path]
            process.environment = ProcessInfo.processInfo.environment.merging(["KILN_DEVICE": "cpu"]) { $1 }
            let pipe = Pipe()
            (process.standardOutput, process.standardError) = (pipe, pipe)
            try process.run()
            Thread.sleep(forTimeInterval: 1.5 + Double(random.int(1500)) / 1000)
            kill(process.processIdentifier, signal)
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            let files = (try? FileManager.default.contentsOfDirectory(atPath: run.path)) ?? []
            #expect(!files.contains { $0.hasSuffix(".tmp") && signal == SIGINT }, "\(files)")
            if signal == SIGINT {
                #expect(process.terminationStatus == 130 && output.contains("Ctrl-C at epoch"), "\(output)")
                for file in ["history.csv", "metrics.json", "model.safetensors", "curves.svg"] { #expect(files.contains(file), "\(file)") }
            }
            guard files.contains("model.safetensors") else { continue }
            let saved = try Checkpoint.load(run.appendingPathComponent("model.safetensors"), device: CPUDevice.shared).model
            let (status, resumed) = try Self.kiln(["train", "--resume", run.appendingPathComponent("model.safetensors").path,
                                                   "--epochs", String(saved.epochsTrained + 1), "--out", run.path])
            #expect(status == 0 && resumed.contains("Epoch \(saved.epochsTrained + 1)/\(saved.epochsTrained + 1)"), "\(resumed)")
        }
    }
}

/// The loss is read from the device every `lossCheckInterval` steps, not every step.
@Suite("Deferred loss checks") struct DeferredLossCheckTests {
    /// A sample that overflows the loss at step 50 is caught at the check after step 64; the weights
    /// and optimizer go back to those after step 32, exactly those of a run that stopped there.
    @Test func divergenceRestoresTheLastCheckedWeights() throws {
        let interval = Model.lossCheckInterval
        var random = Random("deferred loss")
        let values = random.floats(100 * 2)
        var targets = random.floats(100)
        targets[49] = 3e38  // its squared error overflows
        func model() throws -> Model {
            let m = try Sequential([Input(shape: [2]), Dense(1)])
            try m.place(on: CPUDevice.shared, seed: 4)
            try m.compile(optimizer: Adam(), loss: MeanSquaredError())
            return m
        }
        func data(_ count: Int) -> Dataset {
            Dataset(features: .floats(Array(values[..<(2 * count)])), sampleShape: [2], targets: Array(targets[..<count]), targetShape: [1])
        }
        let diverging = try model()
        try diverging.fit(data(100), epochs: 1, batchSize: 1, shuffle: false, progress: false)
        let reason = try #require(diverging.lastStopReason)
        #expect(reason.contains("within steps \(interval + 1)–\(2 * interval)") && reason.contains("after step \(interval)"), "\(reason)")
        let reference = try model()
        try reference.fit(data(interval), epochs: 1, batchSize: 1, shuffle: false, progress: false)
        for (a, b) in zip(diverging.weights, reference.weights) { #expect(try a.value.toArray() == b.value.toArray(), "\(a.path)") }
        #expect(diverging.compiled!.optimizer.iterations == interval)
    }
}
