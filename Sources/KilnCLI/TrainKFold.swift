import ArgumentParser
import Foundation
import Kiln

extension TrainCommand {
    /// `kiln train … --k-fold K` on classification data: a fresh model per stratified fold of the
    /// training data (the test part stays aside); with --refit, a final model trained on all the
    /// training data for the folds' mean best epoch count, tested and saved as usual.
    func crossValidate(_ k: Int, _ settings: RunSettings, training: Dataset, test: Dataset, normalization: Preprocessing,
                       folder: URL, device: any Device) throws {
        guard training.labels != nil else { throw ValidationError("--k-fold: the data has no class labels to stratify by") }
        let (result, bestEpochs) = try runFolds(try KFold(k: k, seed: settings.seed), training, stratified: true, settings, normalization: normalization,
                                                folder: folder) { try freshModel(settings, training: training, device: device).0 }
        let summary = try report(result, bestEpochs: bestEpochs, folder: folder)
        guard refit else { return }
        let refitEpochs = meanEpochs(bestEpochs)
        print("Refitting on all \(training.count) training samples for \(refitEpochs) epochs")
        let model = try freshModel(settings, training: training, device: device).0
        try model.fit(try weighted(training, settings, classes: model.outputs[0].shape.last ?? 1), epochs: refitEpochs, batchSize: settings.batchSize,
                      normalization: normalization, augmentation: try settings.augment.map { try Augmentation(spec: $0) }, seed: settings.seed)
        var metadata = ["training": String(decoding: try JSONEncoder().encode(settings), as: UTF8.self), "preprocessing": settings.preprocess]
        if let names = training.classNames { metadata["class_names"] = String(decoding: try JSONEncoder().encode(names), as: UTF8.self) }
        try Checkpoint.save(model, metadata: metadata, to: folder.appendingPathComponent("model.safetensors"))
        let test = try Report.evaluate(model, on: test, classNames: training.classNames, normalization: normalization)
        try Report.write(history: model.trainingHistory, report: test, to: folder, extra: summary.merging(["refit_epochs": refitEpochs]) { a, _ in a })
        print(String(format: "Refit model: test loss %.4f - test accuracy %.4f", test.loss, test.accuracy))
        print("Wrote \(folder.path)/{model.safetensors,history.csv,metrics.json,curves.svg,confusion.svg}")
    }

    /// Trains `makeModel()`'s fresh models on the folds of `data` (with the run's class weights,
    /// augmentation, early stopping and TensorBoard logs per fold), printing each fold's scores;
    /// returns the result and each fold's best epoch count (by val_loss under early stopping).
    func runFolds(_ folds: KFold, _ data: Dataset, stratified: Bool, _ settings: RunSettings, normalization: Preprocessing, folder: URL,
                  makeModel: () throws -> Model) throws -> (CrossValidation, bestEpochs: [Int]) {
        let augmentation = try settings.augment.map { try Augmentation(spec: $0) }
        let signals = InterruptOnSignal()
        defer { signals.uninstall() }
        print("\(folds.k)-fold cross-validation of \(settings.model) on \(settings.dataset) (\(data.count) training samples\(stratified ? ", stratified by class" : ", in order"))")
        var bestEpochs: [Int] = []
        let result = try folds.crossValidate(data, stratified: stratified, batchSize: settings.batchSize, normalization: normalization, makeModel: { fold in
            print("Fold \(fold + 1)/\(folds.k)")
            return try makeModel()
        }, train: { model, part, validation in
            let fold = bestEpochs.count + 1
            var callbacks: [Callback] = [signals, CSVLogger(folder.appendingPathComponent("history-fold-\(fold).csv"))]
            if let earlyStopping { callbacks.insert(EarlyStopping(monitor: "val_loss", patience: earlyStopping, restoreBestWeights: true), at: 0) }
            callbacks += [try tensorBoard(folder.appendingPathComponent("fold-\(fold)"))].compactMap { $0 }
            try model.fit(try weighted(part, settings, classes: model.outputs[0].shape.last ?? 1), epochs: epochs, batchSize: settings.batchSize,
                          validationData: validation, normalization: normalization, augmentation: augmentation, seed: settings.seed, callbacks: callbacks)
            let losses = model.trainingHistory["val_loss"] ?? []
            bestEpochs.append(earlyStopping == nil ? losses.count : (losses.indices.min { losses[$0] < losses[$1] } ?? 0) + 1)
            if let signal = signals.received { throw ExitCode(128 + signal) }
        })
        for (fold, scores) in result.results.enumerated() {
            print("Fold \(fold + 1): " + result.names.map { String(format: "%@ %.4f", $0, scores[$0] ?? .nan) }.joined(separator: " - "))
        }
        return (result, bestEpochs)
    }

    /// Prints the mean ± std and writes folds.csv, folds.svg and (unless --refit writes the final
    /// model's) metrics.json; returns the summary for metrics.json.
    func report(_ result: CrossValidation, bestEpochs: [Int], folder: URL) throws -> [String: Any] {
        let summary = result.names.map { String(format: "%@ %.4f ± %.4f", $0, result.mean($0), result.standardDeviation($0)) }.joined(separator: " - ")
        print("\(result.results.count)-fold cross-validation: \(summary)")
        let extra: [String: Any] = ["best_epochs": bestEpochs]
        try Report.write(crossValidation: result, to: folder, metrics: refit ? nil : extra)
        if !refit { print("Wrote \(folder.path)/{folds.csv,folds.svg,metrics.json,history-fold-1…\(result.results.count).csv}") }
        return Report.summary(of: result, extra: extra)
    }

    func meanEpochs(_ bestEpochs: [Int]) -> Int { max(1, Int((Double(bestEpochs.reduce(0, +)) / Double(max(bestEpochs.count, 1))).rounded())) }
}
