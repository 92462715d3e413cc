/// Keras's `class_weight`: a weight per class that scales each sample's loss by its label's weight.
public enum ClassWeight {
    /// scikit-learn's `balanced`: samples / (classes · samples of the class), so every class
    /// counts as much in total; classes with no samples get none.
    public static func balanced(_ labels: [Int32], classes: Int) -> [Int: Float] {
        var counts = [Int](repeating: 0, count: classes)
        for label in labels where (0..<classes).contains(Int(label)) { counts[Int(label)] += 1 }
        return Dictionary(uniqueKeysWithValues: counts.enumerated().compactMap { c, n in
            n == 0 ? nil : (c, Float(labels.count) / Float(classes * n))
        })
    }

    /// Parses `balanced` or `0:1.0,1:5.0` (classes left out weigh 1).
    public static func parse(_ spec: String, labels: [Int32], classes: Int) throws -> [Int: Float] {
        if spec == "balanced" { return balanced(labels, classes: classes) }
        var weights: [Int: Float] = [:]
        for item in spec.split(separator: ",") {
            let parts = item.split(separator: ":")
            guard parts.count == 2, let c = Int(parts[0].trimmingCharacters(in: .whitespaces)), (0..<classes).contains(c),
                  let w = Float(parts[1].trimmingCharacters(in: .whitespaces)), w.isFinite, w >= 0, weights[c] == nil else {
                throw DataError("--class-weight", "cannot read '\(item)'; expected balanced or CLASS:WEIGHT pairs such as 0:1.0,1:5.0 (classes 0–\(classes - 1), weights ≥ 0, each class once)")
            }
            weights[c] = w
        }
        return weights
    }

    /// Each sample's weight for `data`'s labels. Keras refuses class weights together with sample weights.
    public static func sampleWeights(_ weights: [Int: Float], for data: Dataset) throws -> [Float] {
        guard let labels = data.labels else { throw TrainingError.incompatible("classWeight needs class labels; the data has float targets") }
        guard data.sampleWeights == nil else {
            throw TrainingError.incompatible("classWeight and sample weights cannot be used together (as in Keras); fold the class weights into the sample weights")
        }
        if let bad = weights.first(where: { !($0.value.isFinite && $0.value >= 0) }) {
            throw TrainingError.incompatible("classWeight: class \(bad.key) has weight \(bad.value); weights must be finite and non-negative")
        }
        return labels.map { weights[Int($0)] ?? 1 }
    }
}
