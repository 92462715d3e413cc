/// k-fold cross-validation (scikit-learn's `KFold`/`StratifiedKFold`): the samples are cut into
/// `k` folds, each the validation data of one model trained on the others. Stratified folds hold
/// each class in proportion (every fold within one sample of the others, per class); the order is
/// shuffled from `seed`, so folds are reproducible.
public struct KFold: Sendable {
    public let k: Int
    public let shuffle: Bool
    public let seed: UInt64

    public init(k: Int = 5, shuffle: Bool = true, seed: UInt64 = 0) throws {
        guard k >= 2 else { throw DataError("k-fold", "needs k ≥ 2 folds, got \(k)") }
        (self.k, self.shuffle, self.seed) = (k, shuffle, seed)
    }

    /// The validation indices of each fold: disjoint, together every sample once. With `labels`,
    /// each class is dealt round-robin over the folds, continuing where the previous class stopped.
    public func folds(count: Int, labels: [Int32]? = nil) throws -> [[Int]] {
        guard count >= k else { throw DataError("k-fold", "\(count) samples are too few for \(k) folds") }
        if let labels, labels.count != count { throw DataError("k-fold", "\(labels.count) labels for \(count) samples") }
        let order = epochOrder(count: count, shuffle: shuffle, seed: seed, epoch: 0)
        var folds = [[Int]](repeating: [], count: k)
        guard let labels else {  // contiguous parts of the (shuffled) order, sizes differing by at most one
            for fold in 0..<k { folds[fold] = Array(order[(fold * count / k)..<((fold + 1) * count / k)]).sorted() }
            return folds
        }
        var next = 0
        for label in Set(labels).sorted() {
            for sample in order where labels[sample] == label {
                folds[next].append(sample)
                next = (next + 1) % k
            }
        }
        return folds.map { $0.sorted() }
    }

    /// (training, validation) datasets per fold, stratified by label when the data has labels.
    public func splits(_ data: Dataset, stratified: Bool = true) throws -> [(training: Dataset, validation: Dataset)] {
        let folds = try self.folds(count: data.count, labels: stratified ? data.labels : nil)
        return folds.map { validation in
            let held = Set(validation)
            return (data.subset((0..<data.count).filter { !held.contains($0) }), data.subset(validation))
        }
    }

    /// Trains a fresh model per fold (`makeModel(fold)`, compiled) with `train(model, training,
    /// validation)` (which calls `fit` as it likes: augmentation, early stopping…), then evaluates it
    /// on the fold's validation samples.
    public func crossValidate(_ data: Dataset, stratified: Bool = true, batchSize: Int = 32, normalization: Preprocessing = .unitRange,
                              makeModel: (_ fold: Int) throws -> Model,
                              train: (_ model: Model, _ training: Dataset, _ validation: Dataset) throws -> Void) throws -> CrossValidation {
        var histories: [History] = [], results: [[String: Float]] = []
        for (fold, split) in try splits(data, stratified: stratified).enumerated() {
            let model = try makeModel(fold)
            try train(model, split.training, split.validation)
            let scores = try model.evaluate(split.validation, batchSize: batchSize, normalization: normalization)
            histories.append(model.trainingHistory)
            results.append(Dictionary(uniqueKeysWithValues: scores.map { ("val_" + $0.key, $0.value) }))
        }
        return CrossValidation(histories: histories, results: results)
    }
}

/// What k-fold cross-validation found: each fold's history and its validation scores after training.
public struct CrossValidation: Sendable {
    public let histories: [History]
    /// Per fold: `val_loss`, `val_accuracy`, … of the trained model on the fold's validation samples.
    public let results: [[String: Float]]

    /// Metric names, in the history's column order.
    public var names: [String] { results.first.map { $0.keys.sorted(by: History.columnOrder) } ?? [] }

    public func mean(_ name: String) -> Float {
        let values = results.compactMap { $0[name] }
        return values.reduce(0, +) / Float(max(values.count, 1))
    }

    /// The standard deviation over folds (population, as NumPy's `std` of `cross_val_score`).
    public func standardDeviation(_ name: String) -> Float {
        let values = results.compactMap { $0[name] }, m = mean(name)
        return (values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Float(max(values.count, 1))).squareRoot()
    }

    /// `fold,epochs,val_loss,…` per fold, then `mean` and `std` rows.
    public func csv() -> String {
        var lines = [(["fold", "epochs"] + names).joined(separator: ",")]
        for (fold, result) in results.enumerated() {
            lines.append(([String(fold + 1), String(histories[fold].epochs.count)] + names.map { "\(result[$0] ?? .nan)" }).joined(separator: ","))
        }
        let epochs = Float(histories.map(\.epochs.count).reduce(0, +)) / Float(max(histories.count, 1))
        lines.append((["mean", "\(epochs)"] + names.map { "\(mean($0))" }).joined(separator: ","))
        lines.append((["std", ""] + names.map { "\(standardDeviation($0))" }).joined(separator: ","))
        return lines.joined(separator: "\n") + "\n"
    }
}
