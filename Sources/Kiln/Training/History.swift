/// Metrics per epoch, as Keras's `History.history`.
public struct History: Codable, Sendable, Equatable {
    /// Metric names in the order they first appeared.
    public private(set) var names: [String] = []
    public private(set) var values: [String: [Float]] = [:]
    /// Epoch numbers (1-based) of the rows.
    public private(set) var epochs: [Int] = []

    public init() {}

    /// Decodes and checks a stored history: one value per epoch in every column, epochs increasing.
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        names = try container.decode([String].self, forKey: .names)
        values = try container.decode([String: [Float]].self, forKey: .values)
        epochs = try container.decode([Int].self, forKey: .epochs)
        guard Set(names).count == names.count, Set(values.keys) == Set(names), values.values.allSatisfy({ $0.count == epochs.count }),
              epochs.allSatisfy({ $0 > 0 }), zip(epochs, epochs.dropFirst()).allSatisfy({ $0 < $1 }) else {
            throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.epochs],
                                                    debugDescription: "the history's epochs and metric columns do not agree"))
        }
    }

    public mutating func append(epoch: Int, _ logs: [String: Float]) {
        for name in logs.keys.sorted(by: Self.columnOrder) where values[name] == nil {
            names.append(name)
            values[name] = [Float](repeating: .nan, count: epochs.count)
        }
        epochs.append(epoch)
        for name in names { values[name]!.append(logs[name] ?? .nan) }
    }

    public subscript(name: String) -> [Float]? { values[name] }

    /// `loss`, then other training metrics, then their `val_` counterparts, then the rest.
    static func columnOrder(_ a: String, _ b: String) -> Bool {
        func rank(_ name: String) -> (Int, String) {
            switch name {
            case "loss": (0, name)
            case "val_loss": (2, name)
            case "learning_rate": (4, name)
            default: name.hasPrefix("val_") ? (3, name) : (1, name)
            }
        }
        return rank(a) < rank(b)
    }

    /// `epoch,loss,accuracy,…` with one row per epoch.
    public func csv() -> String {
        var lines = [(["epoch"] + names).joined(separator: ",")]
        for (row, epoch) in epochs.enumerated() {
            lines.append(([String(epoch)] + names.map { String(values[$0]![row]) }).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
