import Foundation
import Testing
@testable import Kiln

/// Sample and class weights, against Keras 3 on keras_weighted.* (Scripts/make-fixtures.sh) and
/// against float64 references.
@Suite("Sample and class weights") struct SampleWeightTests {
    static let file = try! NumPy.readArchive(fixtures.appendingPathComponent("keras_weighted.npz"))

    /// The fixture's classifier before training, compiled as Keras compiled it.
    static func model(on device: any Device) throws -> Model {
        let model = try KerasFile.load(fixtures.appendingPathComponent("keras_weighted.keras"), device: device)
        try model.compile(optimizer: SGD(learningRate: 0.1), loss: SparseCategoricalCrossentropy(), metrics: ["accuracy"], weightedMetrics: ["accuracy"])
        return model
    }

    static func data(weighted: Bool) -> Dataset {
        var data = Dataset(features: .floats(file["x"]!.values), sampleShape: [4], labels: file["y"]!.values.map { Int32($0) })
        if weighted { data.sampleWeights = file["w"]!.values }
        return data
    }

    /// evaluate with sample weights, and one epoch of SGD with class weights and with sample weights:
    /// loss, accuracy, weighted accuracy and the weights after, as Keras reports them.
    @Test(arguments: Backend.all)
    func matchesKeras(_ backend: Backend) throws {
        let logs = try Self.model(on: backend.device).evaluate(Self.data(weighted: true), batchSize: 8)
        for name in ["loss", "accuracy", "weighted_accuracy"] {
            expectClose([logs[name]!], [Double(Self.file["evaluate_\(name)"]!.values[0])], "evaluate \(name)", tolerance: 1e-5)
        }
        let classWeight = Dictionary(uniqueKeysWithValues: Self.file["class_weight"]!.values.enumerated().map { ($0.offset, $0.element) })
        for run in ["class_weight", "sample_weight"] {
            let model = try Self.model(on: backend.device)
            let history = try model.fit(Self.data(weighted: run == "sample_weight"), epochs: 1, batchSize: 8, shuffle: false,
                                        classWeight: run == "class_weight" ? classWeight : nil, progress: false)
            for name in ["loss", "accuracy", "weighted_accuracy"] {
                expectClose([history[name]!.last!], [Double(Self.file["\(run)_\(name)"]!.values[0])], "\(run) \(name)", tolerance: 1e-5)
            }
            for (i, weight) in model.weights.enumerated() {
                expectClose(try weight.value.toArray(), Self.file["\(run)_weight_\(i)"]!.values.map(Double.init), "\(run) \(weight.path)", tolerance: 1e-5)
            }
        }
    }

    /// Tensors with `sampleWeight` train exactly as a dataset with `sampleWeights`.
    @Test func tensorsMatchDatasets() throws {
        let device = CPUDevice.shared
        let (a, b) = (try Self.model(on: device), try Self.model(on: device))
        try a.fit(Self.data(weighted: true), epochs: 1, batchSize: 8, shuffle: false, progress: false)
        let x = try Tensor(Self.file["x"]!.values, shape: [20, 4], on: device)
        let y = try Tensor(labels: Self.file["y"]!.values.map { Int32($0) }, on: device)
        let w = try Tensor(Self.file["w"]!.values, shape: [20], on: device)
        try b.fit(x: x, y: y, sampleWeight: w, epochs: 1, batchSize: 8, shuffle: false, progress: false)
        for (u, v) in zip(a.weights, b.weights) { #expect(try u.value.toArray() == v.value.toArray(), "\(u.path)") }
        #expect(a.trainingHistory["loss"] == b.trainingHistory["loss"])
    }

    /// Every loss's weighted form is Σ wᵢ·lossᵢ / n with lossᵢ the sample's mean penalty (float64
    /// reference on random odd-sized batches), and its gradient agrees with finite differences.
    @Test(arguments: Backend.all)
    func weightedLossesMatchReference(_ backend: Backend) throws {
        let d = backend.device
        var random = Random("weighted losses")
        let (n, k) = (5, 3)
        func uniform(_ count: Int, _ range: ClosedRange<Float>) -> [Double] { random.floats(count, range).map(Double.init) }
        let weights = uniform(n, 0...3), p = uniform(n * k, 0.05...0.95)
        // Targets at least 0.01 from the predictions: the finite differences must not step across |p − t|'s kink.
        let t = zip(p, uniform(n * k, 0...1)).map { abs($0 - $1) < 0.01 ? $0 + 0.02 : $1 }
        let labels = (0..<n).map { _ in Int32(random.int(k)) }
        let logSoftmax: (Int) -> [Double] = { row in
            let z = p[(row * k)..<((row + 1) * k)], m = z.max()!, s = log(z.map { exp($0 - m) }.reduce(0, +)) + m
            return z.map { $0 - s }
        }
        let cases: [(Loss, Tensor, (Int) -> Double)] = [
            (MeanSquaredError(), try Tensor(t.map(Float.init), shape: [n, k], on: d), { i in (0..<k).map { pow(p[i * k + $0] - t[i * k + $0], 2) }.reduce(0, +) / Double(k) }),
            (MeanAbsoluteError(), try Tensor(t.map(Float.init), shape: [n, k], on: d), { i in (0..<k).map { abs(p[i * k + $0] - t[i * k + $0]) }.reduce(0, +) / Double(k) }),
            (BinaryCrossentropy(), try Tensor(t.map(Float.init), shape: [n, k], on: d), { i in
                (0..<k).map { -(t[i * k + $0] * log(p[i * k + $0]) + (1 - t[i * k + $0]) * log(1 - p[i * k + $0])) }.reduce(0, +) / Double(k) }),
            (SparseCategoricalCrossentropy(fromLogits: true), try Tensor(labels: labels, on: d), { i in -logSoftmax(i)[Int(labels[i])] }),
            (CategoricalCrossentropy(fromLogits: true), try Tensor(t.map(Float.init), shape: [n, k], on: d), { i in
                -zip(t[(i * k)..<((i + 1) * k)], logSoftmax(i)).map(*).reduce(0, +) }),
        ]
        let w = try Tensor(weights.map(Float.init), shape: [n], on: d)
        let values = p.map(Float.init)
        for (loss, targets, reference) in cases {
            let predictions = try Tensor(values, shape: [n, k], on: d)
            predictions.requiresGrad = true
            let weighted = try loss.weighted(targets, predictions, weights: w)
            let expected = (0..<n).map { weights[$0] * reference($0) }.reduce(0, +) / Double(n)
            expectClose([try weighted.item()], [expected], "\(loss.name) weighted", tolerance: 1e-5)
            try weighted.backward()
            try expectGradient(at: values, gradient: try predictions.grad!.toArray(), epsilon: 1e-3, "\(loss.name) on \(backend)") { v in
                Double(try loss.weighted(targets, Tensor(v, shape: [n, k], on: d), weights: w).item())
            }
        }
    }

    /// Masked sequence outputs repeat each sample's weight over its kept steps: weights of 1 give the
    /// unweighted loss, and a zero weight removes its sequence.
    @Test func masksRepeatWeights() throws {
        let d = CPUDevice.shared
        let ids: [Float] = [3, 1, 4, 0, 0, 2, 7, 1, 8, 0]
        let labels: [Int32] = [0, 1, 2, 2, 2, 1, 0, 1, 2, 0]
        let model = try Sequential([Input(shape: [5]), Embedding(inputDim: 10, outputDim: 4, maskZero: true),
                                    LSTM(6, returnSequences: true), TimeDistributed(Dense(3))])
        try model.place(on: d, seed: 2)
        try model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true))
        let (x, y) = (try Tensor(ids, shape: [2, 5], on: d), try Tensor(labels: labels, shape: [2, 5], on: d))
        let plain = try model.evaluate(x: [x], y: [y])["loss"]!
        let ones = try model.evaluate(x: [x], y: [y], sampleWeight: Tensor([1, 1], shape: [2], on: d))["loss"]!
        #expect(abs(plain - ones) < 1e-6)
        let firstOnly = try model.evaluate(x: [x], y: [y], sampleWeight: Tensor([1, 0], shape: [2], on: d))["loss"]!
        let logits = try model(x).reshaped([10, 3]).gathered([0, 1, 2])
        let firstLoss = try SparseCategoricalCrossentropy(fromLogits: true)(Tensor(labels: [0, 1, 2], on: d), logits).item()
        #expect(abs(firstOnly - firstLoss * 3 / 7) < 1e-5, "3 of the 7 kept steps are the first sequence's")
    }

    @Test func classWeightSpecs() throws {
        let labels: [Int32] = [0, 0, 0, 1, 2, 2]
        #expect(ClassWeight.balanced(labels, classes: 4) == [0: 0.5, 1: 1.5, 2: 0.75])
        #expect(try ClassWeight.parse("0:1.0, 2:5", labels: labels, classes: 3) == [0: 1, 2: 5])
        for bad in ["0:x", "3:1", "0:-1", "0:1,0:2", "1"] {
            #expect { try ClassWeight.parse(bad, labels: labels, classes: 3) } throws: { "\($0)".contains("--class-weight") }
        }
        var data = Dataset(features: .floats([Float](repeating: 0, count: 6)), sampleShape: [1], labels: labels)
        data.sampleWeights = [1, 1, 1, 1, 1, -1]
        #expect { try data.validate("data") } throws: { "\($0)".contains("sample 5 has weight -1.0") }
        data.sampleWeights = [Float](repeating: 1, count: 6)
        #expect { try ClassWeight.sampleWeights([0: 2], for: data) } throws: { "\($0)".contains("cannot be used together") }
    }

    /// `kiln train` with a CSV weight column, an `.npz` `w_train` and `--class-weight`: zero weights
    /// give a zero training loss (so the weights reach the loss, and the column is not a feature);
    /// class weights with sample weights, or for a class the model lacks, are one clear line.
    @Test func commandLineWeights() throws {
        let folder = try temporaryFolder()
        let rows = (0..<40).map { i in "\(Float(i % 7) / 7),\(Float(i % 3)),0,\(i % 2)" }
        let csv = try ReliabilityTests.write("a,b,weight,label\n" + rows.joined(separator: "\n") + "\n", "data.csv", in: folder)
        let x = NumPy.encode((0..<80).map { Float($0 % 5) }, shape: [40, 2]), y = NumPy.encode((0..<40).map { Float($0 % 2) }, shape: [40])
        let npz = folder.appendingPathComponent("data.npz")
        try Zip.archive([("x_train.npy", x), ("y_train.npy", y), ("w_train.npy", NumPy.encode([Float](repeating: 0, count: 40), shape: [40]))]).write(to: npz)
        func trainingLosses(_ arguments: [String]) throws -> [Float] {
            let run = folder.appendingPathComponent("run-\(UUID())").path
            let (status, output) = try ReliabilityTests.kiln(["train", "--model", "mlp", "--epochs", "2", "--batch-size", "8", "--out", run] + arguments)
            #expect(status == 0, "\(arguments): \(output)")
            let history = try String(contentsOfFile: run + "/history.csv", encoding: .utf8).split(separator: "\n").dropFirst()
            return history.map { Float($0.split(separator: ",")[1])! }
        }
        #expect(try trainingLosses(["--dataset", csv, "--weight-column", "weight"]) == [0, 0])
        #expect(try trainingLosses(["--dataset", npz.path]) == [0, 0])
        #expect(try trainingLosses(["--dataset", csv, "--ignore-columns", "weight", "--class-weight", "0:0,1:0"]) == [0, 0])
        #expect(try trainingLosses(["--dataset", csv, "--ignore-columns", "weight", "--class-weight", "balanced"]).allSatisfy { $0 > 0 })
        try ReliabilityTests.expectClearError(["train", "--dataset", csv, "--model", "mlp", "--weight-column", "weight", "--class-weight", "balanced",
                                               "--out", folder.appendingPathComponent("x").path], "cannot be used together")
        try ReliabilityTests.expectClearError(["train", "--dataset", csv, "--model", "mlp", "--ignore-columns", "weight", "--class-weight", "2:1",
                                               "--out", folder.appendingPathComponent("y").path], "--class-weight", "'2:1'")
    }
}

@Suite("Workshop conveniences through the command line") struct WorkshopDocumentationTests {
    static let weather = "/usr/lib/python3/dist-packages/vega_datasets/_data/seattle-weather.csv"

    /// README's class-weight, k-fold and TensorBoard commands as written, on the real Seattle weather:
    /// class weights get every class present in the test days (the rare drizzle too) predicted right
    /// at least once; the folds and the refit model are written; TensorBoard (where installed, as
    /// `--inspect`, which reads the logs without serving them) or else Kiln's own reader finds the
    /// metrics, histograms and confusion matrix.
    @Test func readmeWorkshopCommands() throws {
        guard FileManager.default.fileExists(atPath: Self.weather) else {
            print("note: python3-vega-datasets is not installed; skipping README's class-weight, k-fold and TensorBoard commands")
            return
        }
        let block = try #require(try Documentation.shellBlocks(Documentation.readme).first { $0.contains { $0.contains("--class-weight") } })
        let folder = try temporaryFolder()
        for command in block where command.first == "kiln" {
            let (status, output) = try Documentation.kiln(Array(command.dropFirst()), in: folder)
            #expect(status == 0, "\(command.joined(separator: " ")): \(output)")
        }
        let run = folder.appendingPathComponent("runs/weather")
        let metrics = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("metrics.json"))) as! [String: Any]
        let confusion = try #require(metrics["confusion_matrix"] as? [[Int]])
        let present = confusion.indices.filter { confusion[$0].reduce(0, +) > 0 }
        #expect(present.allSatisfy { confusion[$0][$0] > 0 }, "every class in the test days predicted right at least once: \(confusion)")
        let folds = try String(contentsOf: folder.appendingPathComponent("runs/weather-5fold/folds.csv"), encoding: .utf8)
        #expect(folds.split(separator: "\n").count == 1 + 5 + 2)
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("runs/weather-5fold/model.safetensors").path))
        let tensorboard = try #require(block.first { $0.first == "tensorboard" })
        let installed = ["/usr/bin/tensorboard", "/usr/local/bin/tensorboard", Documentation.readme.deletingLastPathComponent().path + "/.venv-fixtures/bin/tensorboard"]
            .first { FileManager.default.isExecutableFile(atPath: $0) }
        if let installed {
            let (status, output) = try DeviceTests.run(Array(tensorboard.dropFirst()) + ["--inspect"], environment: [:], in: folder,
                                                       executable: URL(fileURLWithPath: installed))
            #expect(status == 0 && ["epoch_loss", "dense/kernel/gradient", "test/confusion_matrix", "model/summary"].allSatisfy(output.contains), "\(output)")
        } else {
            print("note: tensorboard is not installed; reading the README run's event files with Kiln's reader")
        }
        let train = try #require(try FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent("train").path).first)
        let tags = Set(try EventFile.read(run.appendingPathComponent("train/" + train)).map(\.tag))
        #expect(tags.isSuperset(of: ["epoch_loss", "epoch_accuracy", "epoch_learning_rate", "dense/kernel/histogram", "dense/kernel/gradient",
                                     "test/confusion_matrix", "model/summary"]), "\(tags)")
    }
}
