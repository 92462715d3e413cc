import ArgumentParser
import Foundation
import Kiln

extension TrainCommand {
    /// `kiln train … --k-fold K`: a fresh model per stratified fold of the training data (the test part
    /// stays aside), each fold's validation scores and their mean ± std on the terminal and in
    /// folds.csv, metrics.json and folds.svg (a line per fold); with --refit, a final model trained on
    /// all the training data for the folds' mean best epoch count, tested and saved as usual.
    func crossValidate(_ k: Int, _ settings: RunSettings, training: Dataset, test: Dataset, normalization: Preprocessing,
                       folder: URL, device: any Device) throws {
        if settings.windowing != nil || training.labels == nil { throw ValidationError("--k-fold takes classification data (labels)") }
        let folds = try KFold(k: k, seed: settings.seed)
        let augmentation = try settings.augment.map { try Augmentation(spec: $0) }
        let signals = InterruptOnSignal()
        defer { signals.uninstall() }
        print("\(k)-fold cross-validation of \(settings.model) on \(settings.dataset) (\(training.count) training samples, stratified by class)")
        var bestEpochs: [Int] = []
        let result = try folds.crossValidate(training, batchSize: settings.batchSize, normalization: normalization, makeModel: { fold in
            print("Fold \(fold + 1)/\(k)")
            return try freshModel(settings, training: training, device: device).0
        }, train: { model, part, validation in
            let training = try weighted(part, settings, classes: model.outputs[0].shape.last ?? 1)
            var callbacks: [Callback] = [signals, CSVLogger(folder.appendingPathComponent("history-fold-\(bestEpochs.count + 1).csv"))]
            if let earlyStopping { callbacks.insert(EarlyStopping(monitor: "val_loss", patience: earlyStopping, restoreBestWeights: true), at: 0) }
            try model.fit(training, epochs: epochs, batchSize: settings.batchSize, validationData: validation, normalization: normalization,
                          augmentation: augmentation, seed: settings.seed, callbacks: callbacks)
            let losses = model.trainingHistory["val_loss"] ?? []
            bestEpochs.append(earlyStopping == nil ? losses.count : (losses.indices.min { losses[$0] < losses[$1] } ?? 0) + 1)
            if let signal = signals.received { throw ExitCode(128 + signal) }
        })
        let summary = result.names.map { String(format: "%@ %.4f ± %.4f", $0, result.mean($0), result.standardDeviation($0)) }.joined(separator: " - ")
        print("\(k)-fold cross-validation: \(summary)")
        let extra: [String: Any] = ["best_epochs": bestEpochs]
        try Report.write(crossValidation: result, to: folder, metrics: refit ? nil : extra)
        var written = ["folds.csv", "folds.svg", "metrics.json"] + (1...k).map { "history-fold-\($0).csv" }
        if refit {
            let refitEpochs = max(1, Int((Double(bestEpochs.reduce(0, +)) / Double(k)).rounded()))
            print("Refitting on all \(training.count) training samples for \(refitEpochs) epochs")
            let model = try freshModel(settings, training: training, device: device).0
            let all = try weighted(training, settings, classes: model.outputs[0].shape.last ?? 1)
            try model.fit(all, epochs: refitEpochs, batchSize: settings.batchSize, normalization: normalization, augmentation: augmentation,
                          seed: settings.seed, callbacks: [signals])
            var metadata = ["training": String(decoding: try JSONEncoder().encode(settings), as: UTF8.self), "preprocessing": settings.preprocess]
            if let names = training.classNames { metadata["class_names"] = String(decoding: try JSONEncoder().encode(names), as: UTF8.self) }
            try Checkpoint.save(model, metadata: metadata, to: folder.appendingPathComponent("model.safetensors"))
            let report = try Report.evaluate(model, on: test, classNames: training.classNames, normalization: normalization)
            try Report.write(history: model.trainingHistory, report: report, to: folder,
                             extra: Report.summary(of: result, extra: extra.merging(["refit_epochs": refitEpochs]) { a, _ in a }))
            print(String(format: "Refit model: test loss %.4f - test accuracy %.4f", report.loss, report.accuracy))
            written += ["model.safetensors", "history.csv", "curves.svg", "confusion.svg"]
        }
        print("Wrote \(folder.path)/{\(written.joined(separator: ","))}")
    }
}
