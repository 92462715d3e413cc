import Foundation

/// A forecaster on its test windows, in the target's own units: its mean absolute error against that
/// of the persistence baseline ("the next value is the last one").
public struct ForecastReport {
    public var predictions: [Float], truth: [Float], baseline: [Float]
    /// The loss on standardised targets, as training reports it.
    public var loss: Float

    public var mae: Float { Self.meanAbsoluteError(predictions, truth) }
    public var baselineMAE: Float { Self.meanAbsoluteError(baseline, truth) }

    static func meanAbsoluteError(_ a: [Float], _ b: [Float]) -> Float {
        Float(zip(a, b).reduce(0.0) { $0 + Double(abs($1.0 - $1.1)) } / Double(max(a.count, 1)))
    }

    /// Runs a compiled forecaster on a test part and undoes the standardisation.
    public static func evaluate(_ model: Model, on part: TimeSeries.Part, windowing: TimeSeries.Windowing, batchSize: Int = 256) throws -> ForecastReport {
        let logs = try model.evaluate(part.dataset, batchSize: batchSize, normalization: .none)
        let predicted = try model.predict(part.dataset, batchSize: batchSize, normalization: .none)
        return ForecastReport(predictions: predicted.map(windowing.targetValue), truth: part.dataset.targets!.map(windowing.targetValue),
                              baseline: part.lastValues, loss: logs["loss"] ?? .nan)
    }
}

extension Report {
    /// Writes history.csv, metrics.json (with `test_mae` and `baseline_mae` in the target's units),
    /// curves.svg and forecast.svg into `folder` (each atomically).
    public static func write(history: History, forecast: ForecastReport, target: String, to folder: URL, extra: [String: Any] = [:]) throws {
        try writeAtomically(Data(history.csv().utf8), to: folder.appendingPathComponent("history.csv"))
        var metrics: [String: Any] = extra
        (metrics["test_loss"], metrics["test_mae"], metrics["baseline_mae"]) = (forecast.loss, forecast.mae, forecast.baselineMAE)
        try writeAtomically(try JSONSerialization.data(withJSONObject: jsonSafe(metrics), options: [.prettyPrinted, .sortedKeys]),
                            to: folder.appendingPathComponent("metrics.json"))
        try writeAtomically(Data(Charts.curves(history).utf8), to: folder.appendingPathComponent("curves.svg"))
        try writeAtomically(Data(Charts.forecast(forecast, target: target).utf8), to: folder.appendingPathComponent("forecast.svg"))
    }
}
