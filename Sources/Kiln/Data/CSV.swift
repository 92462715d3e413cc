import Foundation

/// Comma-separated numeric data with a header row: every column a feature except the label column,
/// which holds integer class indices (or class names, numbered in sorted order).
public enum CSVData {
    public static func dataset(_ url: URL, labelColumn: String? = nil) throws -> Dataset {
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
        var features: [Float] = [], rawLabels: [String] = []
        for (line, row) in rows.dropFirst().enumerated() {
            guard row.count == header.count else { throw DataError(file, "line \(line + 2) has \(row.count) fields, the header has \(header.count)") }
            for (column, field) in row.enumerated() where column != labelIndex {
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
        return Dataset(features: .floats(features), sampleShape: [header.count - 1], labels: labels, classNames: names)
    }
}
