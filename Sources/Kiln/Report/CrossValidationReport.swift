import Foundation

extension Report {
    /// The summary of a k-fold cross-validation as a dictionary for metrics.json: each fold's scores,
    /// their mean and standard deviation, and `extra`.
    public static func summary(of result: CrossValidation, extra: [String: Any] = [:]) -> [String: Any] {
        var metrics = extra
        metrics["k_fold"] = result.results.count
        metrics["folds"] = result.results
        metrics["mean"] = Dictionary(uniqueKeysWithValues: result.names.map { ($0, result.mean($0)) })
        metrics["std"] = Dictionary(uniqueKeysWithValues: result.names.map { ($0, result.standardDeviation($0)) })
        return metrics
    }

    /// folds.csv, folds.svg (a line per fold) and, unless a refit model's report writes it,
    /// metrics.json with `summary(of:extra:)`, each atomically.
    public static func write(crossValidation result: CrossValidation, to folder: URL, metrics extra: [String: Any]? = nil) throws {
        try writeAtomically(Data(result.csv().utf8), to: folder.appendingPathComponent("folds.csv"))
        try writeAtomically(Data(Charts.folds(result.histories).utf8), to: folder.appendingPathComponent("folds.svg"))
        if let extra {
            try writeAtomically(try JSONSerialization.data(withJSONObject: jsonSafe(summary(of: result, extra: extra)), options: [.prettyPrinted, .sortedKeys]),
                                to: folder.appendingPathComponent("metrics.json"))
        }
    }
}
