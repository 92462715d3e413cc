import Foundation

/// Test-set results of a classifier: loss, accuracy, the confusion matrix and per-class
/// precision, recall and F1.
public struct ClassificationReport: Sendable {
    public let classNames: [String]
    /// `confusion[actual][predicted]` sample counts.
    public let confusion: [[Int]]
    public let loss: Float

    public init(classNames: [String], confusion: [[Int]], loss: Float) {
        (self.classNames, self.confusion, self.loss) = (classNames, confusion, loss)
    }

    /// From predicted and true labels.
    public init(predicted: [Int], actual: [Int], classNames: [String], loss: Float) {
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: classNames.count), count: classNames.count)
        for (p, a) in zip(predicted, actual) where classNames.indices.contains(p) && classNames.indices.contains(a) { confusion[a][p] += 1 }
        self.init(classNames: classNames, confusion: confusion, loss: loss)
    }

    public var total: Int { confusion.joined().reduce(0, +) }

    /// The confusion matrix as a PNG heat map (for TensorBoard): a 12-pixel cell per actual class
    /// (rows) and predicted class (columns), bluer for a larger share of the actual class.
    public func confusionPNG() throws -> Data {
        let (n, cell) = (max(classNames.count, 1), 12)
        let side = n * cell
        var pixels = [Float](repeating: 1, count: side * side * 3)
        for a in confusion.indices {
            let actual = Float(max(confusion[a].reduce(0, +), 1))
            for p in confusion[a].indices {
                let share = Float(confusion[a][p]) / actual
                let color: [Float] = [1 - 0.9 * share, 1 - 0.6 * share, 1 - 0.2 * share]
                for y in 0..<cell { for x in 0..<cell { for k in 0..<3 { pixels[((a * cell + y) * side + p * cell + x) * 3 + k] = color[k] } } }
            }
        }
        return try ImageGrid.png(Tensor(pixels, shape: [1, side, side, 3], on: CPUDevice.shared), columns: 1)
    }
    public var accuracy: Float { total == 0 ? 0 : Float(classNames.indices.reduce(0) { $0 + confusion[$1][$1] }) / Float(total) }

    public func precision(_ c: Int) -> Float {
        let predicted = confusion.reduce(0) { $0 + $1[c] }
        return predicted == 0 ? 0 : Float(confusion[c][c]) / Float(predicted)
    }

    public func recall(_ c: Int) -> Float {
        let actual = confusion[c].reduce(0, +)
        return actual == 0 ? 0 : Float(confusion[c][c]) / Float(actual)
    }

    public func f1(_ c: Int) -> Float {
        let (p, r) = (precision(c), recall(c))
        return p + r == 0 ? 0 : 2 * p * r / (p + r)
    }

    /// A plain-text table: per-class precision/recall/F1/support, then the confusion matrix.
    public var text: String {
        let width = max(12, (classNames.map(\.count).max() ?? 0) + 2)
        func pad(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }
        var lines = [pad("class", width) + pad("precision", 11) + pad("recall", 9) + pad("f1", 9) + pad("support", 9)]
        for (c, name) in classNames.enumerated() {
            lines.append(pad(name, width) + pad(String(format: "%.4f", precision(c)), 11) + pad(String(format: "%.4f", recall(c)), 9)
                         + pad(String(format: "%.4f", f1(c)), 9) + pad(String(confusion[c].reduce(0, +)), 9))
        }
        lines.append("")
        lines.append("Confusion matrix (rows: true class, columns: predicted):")
        let cell = max(6, String(confusion.joined().max() ?? 0).count + 2)
        lines.append(pad("", width) + classNames.indices.map { pad(String($0), cell) }.joined())
        for (c, name) in classNames.enumerated() { lines.append(pad("\(c) \(name)", width) + confusion[c].map { pad(String($0), cell) }.joined()) }
        return lines.joined(separator: "\n")
    }
}

/// Evaluation and the run folder's files.
public enum Report {
    /// Loss, predictions and the classification report of a compiled classifier on `data`.
    public static func evaluate(_ model: Model, on data: Dataset, classNames: [String]?, batchSize: Int = 256,
                                normalization: Preprocessing = .unitRange) throws -> ClassificationReport {
        guard let labels = data.labels else { throw TrainingError.incompatible("evaluation needs labelled data") }
        let logs = try model.evaluate(data, batchSize: batchSize, normalization: normalization)
        let outputs = try model.predict(data, batchSize: batchSize, normalization: normalization)
        let classes = model.outputs[0].shape.last ?? 1
        let predicted = (0..<data.count).map { row in
            (0..<classes).max { outputs[row * classes + $0] < outputs[row * classes + $1] }!
        }
        let names = classNames ?? data.classNames ?? (0..<classes).map(String.init)
        return ClassificationReport(predicted: predicted, actual: labels.map(Int.init), classNames: names, loss: logs["loss"] ?? .nan)
    }

    /// Writes history.csv, metrics.json, curves.svg and confusion.svg into `folder` (each atomically).
    /// JSON has no NaN or infinity: such numbers become null.
    static func jsonSafe(_ value: Any) -> Any {
        switch value {
        case let x as Float: x.isFinite ? x : NSNull()
        case let x as Double: x.isFinite ? x : NSNull()
        case let list as [Any]: list.map(jsonSafe)
        case let map as [String: Any]: map.mapValues(jsonSafe)
        default: value
        }
    }

    public static func write(history: History, report: ClassificationReport, to folder: URL, extra: [String: Any] = [:]) throws {
        try writeAtomically(Data(history.csv().utf8), to: folder.appendingPathComponent("history.csv"))
        var metrics: [String: Any] = extra
        metrics["test_loss"] = report.loss
        metrics["test_accuracy"] = report.accuracy
        metrics["per_class"] = report.classNames.enumerated().map { c, name in
            ["class": name, "precision": report.precision(c), "recall": report.recall(c), "f1": report.f1(c)] as [String: Any]
        }
        metrics["confusion_matrix"] = report.confusion
        try writeAtomically(try JSONSerialization.data(withJSONObject: jsonSafe(metrics), options: [.prettyPrinted, .sortedKeys]),
                            to: folder.appendingPathComponent("metrics.json"))
        try writeAtomically(Data(Charts.curves(history).utf8), to: folder.appendingPathComponent("curves.svg"))
        try writeAtomically(Data(Charts.confusion(report).utf8), to: folder.appendingPathComponent("confusion.svg"))
    }
}
