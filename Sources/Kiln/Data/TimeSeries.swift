import Foundation

/// A table of time-ordered numeric rows (a CSV file), cut into windows as Keras's
/// `timeseries_dataset_from_array`: window i holds rows i·stride + k·samplingRate for k < length, and
/// its target is the target column `horizon` rows after the window's last row. The rows are split in
/// time order (training, validation, test) before windowing, and every column is standardised with
/// the training rows' mean and standard deviation.
public struct TimeSeries {
    /// The numeric columns (text columns such as dates are left out), and the rows, row-major.
    public let columns: [String]
    public let values: [Float]
    public var rowCount: Int { values.count / columns.count }

    /// How windows are cut, and the standardisation fitted on the training rows: what a checkpoint
    /// keeps to cut and scale new data the same way.
    public struct Windowing: Codable, Sendable, Equatable {
        public var target: String
        public var length: Int, samplingRate: Int, stride: Int, horizon: Int
        public var columns: [String] = [], mean: [Float] = [], std: [Float] = []

        public init(target: String, length: Int, samplingRate: Int = 1, stride: Int = 1, horizon: Int = 1) {
            (self.target, self.length, self.samplingRate, self.stride, self.horizon) = (target, length, samplingRate, stride, horizon)
        }

        var targetIndex: Int { columns.firstIndex(of: target)! }
        /// Undoes the target's standardisation.
        public func targetValue(_ standardized: Float) -> Float { standardized * std[targetIndex] + mean[targetIndex] }
    }

    /// Windows of one part of the series: a dataset of standardised windows `[length, columns]` with
    /// standardised targets, and the persistence forecast ("the next value is the last one") per window.
    public struct Part {
        public var dataset: Dataset
        public var lastValues: [Float]
    }

    public init(csv url: URL) throws {
        let file = url.path
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch { throw DataError(file, "cannot read as UTF-8 text (\(error.localizedDescription))") }
        let rows = text.split(whereSeparator: \.isNewline).map { $0.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) } }
        guard let header = rows.first, rows.count > 1 else { throw DataError(file, "expected a header row and data rows") }
        for (line, row) in rows.enumerated().dropFirst() where row.count != header.count {
            throw DataError(file, "line \(line + 1) has \(row.count) fields, the header has \(header.count)")
        }
        let numeric = header.indices.filter { column in rows.dropFirst().allSatisfy { Float($0[column]) != nil } }
        guard !numeric.isEmpty else { throw DataError(file, "no column holds numbers in every row") }
        columns = numeric.map { header[$0] }
        var values: [Float] = []
        values.reserveCapacity((rows.count - 1) * numeric.count)
        for row in rows.dropFirst() { for column in numeric { values.append(Float(row[column])!) } }
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw DataError(file, "line \(bad / numeric.count + 2), column '\(columns[bad % numeric.count])' is \(values[bad])")
        }
        self.values = values
    }

    /// Training, validation and test windows: the last `validation` and `test` fractions of the rows
    /// are the later parts. Uses `windowing`'s standardisation when it has one (a checkpoint's), else
    /// fits it on the training rows and fills it in.
    public func split(_ windowing: inout Windowing, validation: Double, test: Double, file: String) throws -> (training: Part, validation: Part, test: Part) {
        guard let targetIndex = columns.firstIndex(of: windowing.target) else {
            throw DataError(file, "no numeric column named '\(windowing.target)' (numeric columns: \(columns.joined(separator: ", ")))")
        }
        let w = windowing
        guard w.length > 0, w.samplingRate > 0, w.stride > 0, w.horizon >= 0 else {
            throw DataError(file, "window length, sampling rate and stride must be positive and the horizon not negative")
        }
        guard validation > 0, test > 0, validation + test < 1 else { throw DataError(file, "validation and test fractions must be positive and leave training rows") }
        let span = (w.length - 1) * w.samplingRate + 1 + w.horizon
        let testStart = rowCount - Int((Double(rowCount) * test).rounded()), validationStart = testStart - Int((Double(rowCount) * validation).rounded())
        for (name, range) in [("training", 0..<validationStart), ("validation", validationStart..<testStart), ("test", testStart..<rowCount)] where range.count < span {
            throw DataError(file, "the \(name) part has \(range.count) rows, fewer than one window needs (\(span): length \(w.length), sampling rate \(w.samplingRate), horizon \(w.horizon))")
        }
        let width = columns.count
        let mean = (0..<width).map { c in (0..<validationStart).reduce(0.0) { $0 + Double(values[$1 * width + c]) } / Double(validationStart) }
        let std = (0..<width).map { c in ((0..<validationStart).reduce(0.0) { $0 + pow(Double(values[$1 * width + c]) - mean[c], 2) } / Double(validationStart)).squareRoot() }
        if windowing.mean.isEmpty {
            windowing.columns = columns
            (windowing.mean, windowing.std) = (mean.map(Float.init), std.map { Float($0 > 1e-12 ? $0 : 1) })
        } else if windowing.columns != columns {
            throw DataError(file, "has columns \(columns.joined(separator: ", ")), the model was trained on \(windowing.columns.joined(separator: ", "))")
        }
        let scaled = windowing
        func part(_ rows: Range<Int>) -> Part {
            var features: [Float] = [], targets: [Float] = [], last: [Float] = []
            for start in stride(from: rows.lowerBound, through: rows.upperBound - span, by: w.stride) {
                for k in 0..<w.length {
                    let row = start + k * w.samplingRate
                    for c in 0..<width { features.append((values[row * width + c] - scaled.mean[c]) / scaled.std[c]) }
                }
                let lastRow = start + (w.length - 1) * w.samplingRate
                targets.append((values[(lastRow + w.horizon) * width + targetIndex] - scaled.mean[targetIndex]) / scaled.std[targetIndex])
                last.append(values[lastRow * width + targetIndex])
            }
            return Part(dataset: Dataset(features: .floats(features), sampleShape: [w.length, width], targets: targets, targetShape: [1]),
                        lastValues: last)
        }
        return (part(0..<validationStart), part(validationStart..<testStart), part(testStart..<rowCount))
    }
}
