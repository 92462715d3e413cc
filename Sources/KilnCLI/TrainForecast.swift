import ArgumentParser
import Foundation
import Kiln

extension TrainCommand {
    /// `kiln train --dataset SERIES.csv --target COLUMN --window N`: a forecaster trained with MSE on
    /// standardised windows (the last rows for validation and the final 15% for testing, in time
    /// order), reported in the target's units against the persistence baseline (forecast.svg).
    func forecast(_ settings: RunSettings, resumed: Model?, device: any Device) throws {
        var settings = settings
        if model == nil, resumed == nil { settings.model = ModelZoo.lstmForecast.rawValue }
        let url = URL(fileURLWithPath: settings.dataset)
        guard url.pathExtension.lowercased() == "csv" else { throw ValidationError("--window and --target read a .csv time series, got '\(settings.dataset)'") }
        var windowing = settings.windowing!
        let parts = try TimeSeries(csv: url).split(&windowing, validation: settings.validationSplit, test: 0.15, file: url.path)
        settings.windowing = windowing
        func forecaster() throws -> Model {
            if let zoo = ModelZoo(rawValue: settings.model), !zoo.isForecaster {
                throw ValidationError("--model \(zoo.rawValue) is not a forecaster; time series take \(ModelZoo.allCases.filter(\.isForecaster).map(\.rawValue).joined(separator: ", ")) or a Keras model JSON file")
            }
            let model = try loadArchitecture(settings, sampleShape: parts.training.dataset.sampleShape, classes: 1)
            try model.place(on: device, seed: settings.seed)
            try model.compile(optimizer: try makeOptimizer(), loss: MeanSquaredError(), metrics: ["mae"])
            return model
        }
        let folder = try runFolder(settings)
        var (finalEpochs, extra): (Int, [String: Any]) = (epochs, [:])
        if let kFold {  // contiguous folds of the training windows, in time order
            let (result, bestEpochs) = try runFolds(try KFold(k: kFold, shuffle: false, seed: settings.seed), parts.training.dataset, stratified: false,
                                                    settings, normalization: .none, folder: folder, makeModel: forecaster)
            extra = try report(result, bestEpochs: bestEpochs, folder: folder)
            guard refit else { return }
            finalEpochs = meanEpochs(bestEpochs)
            extra["refit_epochs"] = finalEpochs
            print("Refitting on the \(parts.training.dataset.count) training windows for \(finalEpochs) epochs")
        }
        let model = try resumed ?? forecaster()
        print("Training \(model.name) (\(model.parameterCount) parameters) on \(parts.training.dataset.count) windows of \(windowing.length) steps "
              + "of \(settings.dataset) (\(parts.validation.dataset.count) validation, \(parts.test.dataset.count) test) on \(model.device!.info.name)")
        let checkpoint = ModelCheckpoint(folder.appendingPathComponent("model.safetensors"))
        checkpoint.metadata["training"] = String(decoding: try JSONEncoder().encode(settings), as: UTF8.self)
        let signals = InterruptOnSignal()
        defer { signals.uninstall() }
        var callbacks: [Callback] = [signals, CSVLogger(folder.appendingPathComponent("history.csv"))]
        if let earlyStopping { callbacks.insert(EarlyStopping(monitor: "val_loss", patience: earlyStopping, restoreBestWeights: true), at: 0) }
        callbacks += [try tensorBoard(folder)].compactMap { $0 }
        let (start, startEpoch) = (Date(), model.epochsTrained)
        try model.fit(parts.training.dataset, epochs: max(finalEpochs - model.epochsTrained, 0), batchSize: settings.batchSize,
                      validationData: parts.validation.dataset, normalization: .none, seed: settings.seed, callbacks: callbacks + [checkpoint])
        signals.uninstall()
        do { try Checkpoint.save(model, metadata: checkpoint.metadata, to: checkpoint.url) } catch let error as TrainingError where model.lastStopReason != nil {
            print("note: \(error)")
        }
        let seconds = Date().timeIntervalSince(start)
        let report = try ForecastReport.evaluate(model, on: parts.test, windowing: windowing)
        try Report.write(history: model.trainingHistory, forecast: report, target: windowing.target, to: folder, extra: extra.merging([
            "device": model.device!.info.name, "seconds": seconds, "epochs": model.epochsTrained, "stopped": model.lastStopReason ?? "",
            "samples_per_second": Double(parts.training.dataset.count * (model.epochsTrained - startEpoch)) / max(seconds, 1e-9),
        ]) { _, b in b })
        print(String(format: "Test MAE %.4f %@ (persistence baseline %.4f) - test loss %.4f", report.mae, windowing.target, report.baselineMAE, report.loss))
        print("Wrote \(folder.path)/{history.csv,metrics.json,model.safetensors,curves.svg,forecast.svg}")
        if let signal = signals.received { throw ExitCode(128 + signal) }
        if let reason = model.lastStopReason, reason.contains("TerminateOnNaN") { throw ExitCode.failure }
    }
}
