import Foundation

/// Self-contained SVG charts for a run folder: training curves and the confusion matrix.
public enum Charts {
    /// Two panels, loss and accuracy per epoch, training (solid) against validation (dashed); a custom
    /// training step's numbers (a GAN's `d_loss` and `g_loss`) share one panel.
    public static func curves(_ history: History) -> String {
        let panels = [("Loss", "loss"), ("Accuracy", "accuracy"), ("MAE", "mae")].filter { history[$0.1] != nil }
        guard !panels.isEmpty else { return customCurves(history) }
        let (panelWidth, height) = (460.0, 340.0)
        var svg = header(width: panelWidth * Double(max(panels.count, 1)) + 20, height: height)
        for (index, (title, key)) in panels.enumerated() {
            let series = [("training", history[key] ?? [], "#1f77b4", ""), ("validation", history["val_" + key] ?? [], "#d62728", "6,4")]
                .filter { !$0.1.isEmpty && $0.1.contains { $0.isFinite } }
            svg += panel(title: title, epochs: history.epochs, series: series, x: 20 + Double(index) * panelWidth,
                         width: panelWidth - 20, height: height)
        }
        return svg + "</svg>\n"
    }

    private static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    /// k-fold cross-validation: a line per fold of the validation loss and accuracy per epoch.
    public static func folds(_ histories: [History]) -> String {
        let panels = [("Validation loss", "val_loss"), ("Validation accuracy", "val_accuracy"), ("Validation MAE", "val_mae")]
            .filter { key in histories.contains { $0[key.1] != nil } }
        let epochs = histories.max { $0.epochs.count < $1.epochs.count }?.epochs ?? []
        let (panelWidth, height) = (460.0, 340.0)
        var svg = header(width: panelWidth * Double(max(panels.count, 1)) + 20, height: height)
        for (index, (title, key)) in panels.enumerated() {
            let series = histories.enumerated().map { ("fold \($0.offset + 1)", $0.element[key] ?? [], colors[$0.offset % colors.count], "") }
            svg += panel(title: title, epochs: epochs, series: series, x: 20 + Double(index) * panelWidth, width: panelWidth - 20, height: height,
                         legendSpacing: 70)
        }
        return svg + "</svg>\n"
    }

    private static func customCurves(_ history: History) -> String {
        let names = history.names.filter { !$0.hasPrefix("val_") && $0 != "learning_rate" }
        let series = names.enumerated().map { ($0.element, history[$0.element] ?? [], colors[$0.offset % colors.count], "") }
        return header(width: 480, height: 340) + panel(title: "Training", epochs: history.epochs, series: series, x: 20, width: 440,
                                                      height: 340, yLabel: "value") + "</svg>\n"
    }

    /// The last test windows' forecasts against the truth and the persistence baseline, in the target's units.
    public static func forecast(_ report: ForecastReport, target: String, points: Int = 300) -> String {
        let shown = max(0, report.truth.count - points)..<report.truth.count
        let steps = Array(shown.map { $0 + 1 })
        let series = [("truth", Array(report.truth[shown]), "#444444", ""), ("forecast", Array(report.predictions[shown]), "#1f77b4", ""),
                      ("last value", Array(report.baseline[shown]), "#d62728", "4,3")]
        return header(width: 940, height: 360) + panel(title: "Test forecasts of \(escape(target))", epochs: steps, series: series, x: 20,
                                                      width: 900, height: 360, xLabel: "test window", yLabel: target, markers: false) + "</svg>\n"
    }

    private static func panel(title: String, epochs: [Int], series: [(String, [Float], String, String)],
                              x: Double, width: Double, height: Double, xLabel: String = "epoch", yLabel: String? = nil,
                              markers: Bool = true, legendSpacing: Double = 120) -> String {
        let (left, right, top, bottom) = (x + 60, x + width - 10, 40.0, height - 55)
        let values = series.flatMap(\.1).filter(\.isFinite)
        var (low, high) = (Double(values.min() ?? 0), Double(values.max() ?? 1))
        if high - low < 1e-6 { (low, high) = (low - 0.5, high + 0.5) }
        let margin = (high - low) * 0.08
        (low, high) = (low - margin, high + margin)
        let (first, last) = (Double(epochs.first ?? 1), Double(max(epochs.last ?? 1, (epochs.first ?? 1) + 1)))
        func px(_ epoch: Double) -> Double { left + (epoch - first) / (last - first) * (right - left) }
        func py(_ value: Double) -> Double { bottom - (value - low) / (high - low) * (bottom - top) }
        var svg = "<text x=\"\((left + right) / 2)\" y=\"24\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">\(title)</text>\n"
        svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(right - left)\" height=\"\(bottom - top)\" fill=\"none\" stroke=\"#444\"/>\n"
        for i in 0...4 {
            let value = low + (high - low) * Double(i) / 4
            svg += "<line x1=\"\(left)\" x2=\"\(right)\" y1=\"\(py(value))\" y2=\"\(py(value))\" stroke=\"#ddd\"/>"
            svg += "<text x=\"\(left - 6)\" y=\"\(py(value) + 4)\" text-anchor=\"end\" font-size=\"11\">\(String(format: "%.3f", value))</text>\n"
        }
        let step = max(1, epochs.count / 10)
        for epoch in epochs.enumerated().filter({ $0.offset % step == 0 || $0.offset == epochs.count - 1 }).map(\.element) {
            svg += "<text x=\"\(px(Double(epoch)))\" y=\"\(bottom + 16)\" text-anchor=\"middle\" font-size=\"11\">\(epoch)</text>\n"
        }
        svg += "<text x=\"\((left + right) / 2)\" y=\"\(bottom + 34)\" text-anchor=\"middle\" font-size=\"12\">\(xLabel)</text>\n"
        svg += "<text x=\"\(x + 14)\" y=\"\((top + bottom) / 2)\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 \(x + 14) \((top + bottom) / 2))\">\(escape(yLabel ?? title.lowercased()))</text>\n"
        for (i, (name, values, color, dash)) in series.enumerated() {
            let points = zip(epochs, values).filter { $0.1.isFinite }.map { "\(px(Double($0.0))),\(py(Double($0.1)))" }
            svg += "<polyline points=\"\(points.joined(separator: " "))\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" stroke-dasharray=\"\(dash)\"/>\n"
            for point in points where markers {
                let xy = point.split(separator: ",")
                svg += "<circle cx=\"\(xy[0])\" cy=\"\(xy[1])\" r=\"3\" fill=\"\(color)\"/>"
            }
            let ly = bottom + 50 - 0.0, lx = left + Double(i) * legendSpacing
            svg += "\n<line x1=\"\(lx)\" x2=\"\(lx + 24)\" y1=\"\(ly - 4)\" y2=\"\(ly - 4)\" stroke=\"\(color)\" stroke-width=\"2\" stroke-dasharray=\"\(dash)\"/>"
            svg += "<text x=\"\(lx + 30)\" y=\"\(ly)\" font-size=\"12\">\(name)</text>\n"
        }
        return svg
    }

    /// The confusion matrix as a labelled heat map, with counts in the cells.
    public static func confusion(_ report: ClassificationReport) -> String {
        let n = report.classNames.count
        let cell = n > 12 ? 28.0 : 44.0
        let labelWidth = Double((report.classNames.map(\.count).max() ?? 4) * 7 + 20)
        let (left, top) = (labelWidth + 30, 60.0)
        let width = left + cell * Double(n) + 30, height = top + cell * Double(n) + labelWidth + 40
        var svg = header(width: width, height: height)
        svg += "<text x=\"\(width / 2)\" y=\"24\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">"
            + "Confusion matrix (accuracy \(String(format: "%.2f%%", report.accuracy * 100)))</text>\n"
        for (row, counts) in report.confusion.enumerated() {
            let rowTotal = max(counts.reduce(0, +), 1)
            for (column, count) in counts.enumerated() {
                let share = Double(count) / Double(rowTotal)
                let shade = Int(255 - share * 200)
                let fill = row == column ? "rgb(\(shade),\(min(255, shade + 40)),255)" : "rgb(255,\(shade),\(shade))"
                let (cx, cy) = (left + Double(column) * cell, top + Double(row) * cell)
                svg += "<rect x=\"\(cx)\" y=\"\(cy)\" width=\"\(cell)\" height=\"\(cell)\" fill=\"\(count == 0 ? "#fafafa" : fill)\" stroke=\"#ccc\"/>"
                svg += "<text x=\"\(cx + cell / 2)\" y=\"\(cy + cell / 2 + 4)\" text-anchor=\"middle\" font-size=\"\(cell > 30 ? 11 : 8)\""
                    + " fill=\"\(share > 0.6 ? "#fff" : "#000")\">\(count)</text>\n"
            }
        }
        for (i, name) in report.classNames.enumerated() {
            let escaped = escape(name)
            svg += "<text x=\"\(left - 8)\" y=\"\(top + Double(i) * cell + cell / 2 + 4)\" text-anchor=\"end\" font-size=\"12\">\(escaped)</text>\n"
            let x = left + Double(i) * cell + cell / 2, y = top + cell * Double(n) + 10
            svg += "<text x=\"\(x)\" y=\"\(y)\" text-anchor=\"end\" font-size=\"12\" transform=\"rotate(-60 \(x) \(y))\">\(escaped)</text>\n"
        }
        svg += "<text x=\"14\" y=\"\(top + cell * Double(n) / 2)\" text-anchor=\"middle\" font-size=\"13\" transform=\"rotate(-90 14 \(top + cell * Double(n) / 2))\">true class</text>\n"
        svg += "<text x=\"\(left + cell * Double(n) / 2)\" y=\"\(height - 8)\" text-anchor=\"middle\" font-size=\"13\">predicted class</text>\n"
        return svg + "</svg>\n"
    }

    private static func header(width: Double, height: Double) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" "
            + "font-family=\"Helvetica, Arial, sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
