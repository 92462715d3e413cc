import Foundation

/// Comma-separated numeric data with a header row: every column a feature except the label column,
/// which holds integer class indices (or class names, numbered in sorted order), and the optional
/// weight column, which holds each sample's weight in the loss; `ignoring` names columns to leave out
/// (dates, ids).
public enum CSVData {
    public static func dataset(_ url: URL, labelColumn: String? = nil, weightColumn: String? = nil, ignoring: [String] = []) throws -> Dataset {
        let file = url.path
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch { throw DataError(file, "cannot read as UTF-8 text (\(error.localizedDescription))") }
        let rows = text.split(whereSeparator: \.isNewline).map { $0.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) } }
            .filter { !($0.count == 1 && $0[0].isEmpty) }
        guard let header = rows.first, rows.count > 1 else { throw DataError(file, "expected a header row and at least one data row") }
        let labelIndex: Int
        if let labelColumn {
            guard let index = header.firstIndex(of: labelColumn) else {
                throw DataError(file, "no column named '\(labelColumn)' (columns: \(header.joined(separator: ", ")))")
            }
            labelIndex = index
        } else { labelIndex = header.count - 1 }
        let weightIndex = try weightColumn.map { name in
            guard let index = header.firstIndex(of: name), index != labelIndex else {
                throw DataError(file, "no weight column named '\(name)' apart from the labels (columns: \(header.joined(separator: ", ")))")
            }
            return index
        }
        let ignored = try Set(ignoring.map { name in
            guard let index = header.firstIndex(of: name), index != labelIndex, index != weightIndex else {
                throw DataError(file, "no feature column named '\(name)' to ignore (columns: \(header.joined(separator: ", ")))")
            }
            return index
        })
        var features: [Float] = [], rawLabels: [String] = [], weights: [Float] = []
        for (line, row) in rows.dropFirst().enumerated() {
            guard row.count == header.count else { throw DataError(file, "line \(line + 2) has \(row.count) fields, the header has \(header.count)") }
            if let weightIndex {
                guard let weight = Float(row[weightIndex]), weight.isFinite, weight >= 0 else {
                    throw DataError(file, "line \(line + 2), weight column '\(header[weightIndex])': '\(row[weightIndex])' is not a non-negative number")
                }
                weights.append(weight)
            }
            for (column, field) in row.enumerated() where column != labelIndex && column != weightIndex && !ignored.contains(column) {
                guard let value = Float(field) else { throw DataError(file, "line \(line + 2), column '\(header[column])': '\(field)' is not a number") }
                features.append(value)
            }
            rawLabels.append(row[labelIndex])
        }
        let numeric = rawLabels.compactMap { Int32($0) }
        let (labels, names): ([Int32], [String]?)
        if numeric.count == rawLabels.count {
            guard numeric.allSatisfy({ $0 >= 0 }) else { throw DataError(file, "label column '\(header[labelIndex])' holds negative class indices") }
            (labels, names) = (numeric, nil)
        } else {
            let classes = Set(rawLabels).sorted()
            (labels, names) = (rawLabels.map { Int32(classes.firstIndex(of: $0)!) }, classes)
        }
        var data = Dataset(features: .floats(features), sampleShape: [header.count - 1 - ignored.count - (weightIndex == nil ? 0 : 1)], labels: labels, classNames: names)
        if weightIndex != nil { data.sampleWeights = weights }
        return data
    }
}
