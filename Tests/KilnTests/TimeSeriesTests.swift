import Foundation
import Testing
@testable import Kiln

/// Windows over time series (Keras's timeseries_dataset_from_array) and forecasting from the CLI.
@Suite("Time series") struct TimeSeriesTests {
    static let seattle = URL(fileURLWithPath: "/usr/lib/python3/dist-packages/vega_datasets/_data/seattle-temps.csv")

    /// Windows, targets, the chronological split and the standardisation on a series whose values
    /// name their rows.
    @Test func windowsFollowKeras() throws {
        let csv = "date,value,double,kind\n" + (0..<40).map { "d\($0),\($0),\(2 * $0),x" }.joined(separator: "\n")
        let url = try temporaryFolder().appendingPathComponent("series.csv")
        try Data(csv.utf8).write(to: url)
        let series = try TimeSeries(csv: url)
        #expect(series.columns == ["value", "double"] && series.rowCount == 40)
        var w = TimeSeries.Windowing(target: "value", length: 3, samplingRate: 2, stride: 4, horizon: 2)
        let parts = try series.split(&w, validation: 0.25, test: 0.25, file: url.path)
        // Training rows 0..<20: mean 9.5, population std √33.25.
        #expect(abs(w.mean[0] - 9.5) < 1e-5 && abs(w.std[0] - Float(33.25.squareRoot())) < 1e-5 && abs(w.mean[1] - 19) < 1e-5)
        let training = parts.training.dataset
        #expect(training.sampleShape == [3, 2] && training.count == 4, "windows start at 0, 4, 8, 12 (the last needs rows up to 12 + 4 + 2 = 18)")
        guard case .floats(let x) = training.features else { Issue.record("float windows"); return }
        let rows = [0, 2, 4, 4, 6, 8].map { Float($0) }
        #expect(zip(stride(from: 0, to: 12, by: 2).map { x[$0] }, rows).allSatisfy { abs(w.targetValue($0) - $1) < 1e-4 }, "steps every 2 rows")
        #expect(training.targets!.map(w.targetValue).map { $0.rounded() } == [6, 10, 14, 18], "the value 2 rows after the last step")
        #expect(parts.training.lastValues == [4, 8, 12, 16])
        #expect(parts.validation.dataset.count == 1 && parts.test.lastValues == [34], "validation rows 20..<30, test rows 30..<40")
        var tooLong = TimeSeries.Windowing(target: "value", length: 8)
        #expect { try series.split(&tooLong, validation: 0.2, test: 0.2, file: url.path) } throws: { "\($0)".contains("fewer than one window needs") }
        var missing = TimeSeries.Windowing(target: "kind", length: 2)
        #expect { try series.split(&missing, validation: 0.2, test: 0.2, file: url.path) } throws: { "\($0)".contains("no numeric column named 'kind'") }
    }

    /// The workshop lesson from the command line, README's block as written: an LSTM forecaster of
    /// Seattle's hourly temperature beats "the next hour is as warm as this one" on the test weeks.
    @Test func readmeForecastBeatsPersistence() throws {
        guard FileManager.default.fileExists(atPath: Self.seattle.path) else {
            print("note: python3-vega-datasets is not installed; skipping README's forecast")
            return
        }
        let block = try #require(try Documentation.shellBlocks(Documentation.readme).first { $0.contains { $0.contains("--window") } })
        let root = try temporaryFolder()
        try FileManager.default.createDirectory(at: root.appendingPathComponent("runs/seattle-lstm/eval"), withIntermediateDirectories: true)
        var outputs: [String] = []
        for command in block {
            let (status, output) = try Documentation.kiln(Array(command.dropFirst()), in: root)
            #expect(command.first == "kiln" && status == 0, "\(command.joined(separator: " ")): \(output)")
            outputs.append(output)
        }
        let folder = root.appendingPathComponent("runs/seattle-lstm")
        let metrics = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("metrics.json"))) as! [String: Any]
        let (mae, baseline) = (metrics["test_mae"] as! Double, metrics["baseline_mae"] as! Double)
        #expect(mae < baseline * 0.95, "test MAE \(mae) vs persistence \(baseline)")
        let evaluated = ExamplesTests.numbers(after: "Test MAE ", in: outputs.last ?? "")
        #expect(evaluated.count == 1 && abs(Double(evaluated[0]) - mae) < 1e-3, "kiln evaluate: \(outputs.last ?? "")")
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("runs/seattle-lstm/eval/forecast.svg").path))
        // `kiln predict` on raw windows: the hours after two windows of the series, in °F.
        let temperatures = try TimeSeries(csv: Self.seattle).values
        let windows = root.appendingPathComponent("windows.npy")
        try NumPy.write(Array(temperatures[0..<48] + temperatures[1000..<1048]), shape: [2, 48, 1], to: windows)
        let predicted = try CLITests.kiln("predict", folder.appendingPathComponent("model.safetensors").path, windows.path)
        let forecasts = ExamplesTests.numbers(after: "temp ", in: predicted.output)
        #expect(predicted.status == 0 && forecasts.count == 2, "\(predicted.output)")
        for (forecast, next) in zip(forecasts, [temperatures[48], temperatures[1048]]) {
            #expect(abs(forecast - next) < 4, "forecast \(forecast) °F, the next hour was \(next) °F")
        }
        for file in ["history.csv", "model.safetensors", "curves.svg", "forecast.svg"] {
            #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent(file).path), "\(file)")
        }
        let resumed = try CLITests.kiln("train", "--resume", folder.appendingPathComponent("model.safetensors").path, "--epochs", "11",
                                        "--out", folder.appendingPathComponent("more").path)
        #expect(resumed.status == 0 && resumed.output.contains("Resuming") && resumed.output.contains("Epoch 11/11"), "\(resumed.output)")
        let wrong = try CLITests.kiln("train", "--dataset", Self.seattle.path, "--target", "temp", "--window", "48", "--model", "text-lstm", "--epochs", "1")
        #expect(wrong.status != 0 && wrong.output.contains("is not a forecaster"), "\(wrong.output)")
    }
}
