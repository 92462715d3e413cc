extension Model {
    /// A Keras-style table: each layer with its type, output shape and parameter count, then the
    /// totals of trainable and non-trainable parameters.
    public func summary() -> String {
        var longest = 0
        for layer in layers {
            longest = max(longest, layer.name.count + layer.typeName.count + 3)
            for inner in layer.summaryRows { longest = max(longest, inner.name.count + inner.type.count + 5) }
        }
        let columns = [("Layer (type)", max(34, longest + 1)), ("Output Shape", 26), ("Param #", 12)]
        let rule = String(repeating: "─", count: columns.reduce(0) { $0 + $1.1 })
        func row(_ cells: [String]) -> String {
            zip(cells, columns).map { cell, column in cell.padding(toLength: max(column.1, cell.count + 1), withPad: " ", startingAt: 0) }
                .joined().trimmingTrailingSpaces()
        }
        var lines = ["Model: \"\(name)\"", rule, row(columns.map(\.0)), rule]
        for layer in layers where !(self is Sequential && layer is Input) {
            func shape(_ dims: [Int]) -> String { "(None, " + dims.map(String.init).joined(separator: ", ") + ")" }
            lines.append(row(["\(layer.name) (\(layer.typeName))", shape(layer.outputShape ?? (layer as? Input)?.shape ?? []),
                              grouped(layer.parameterCount)]))
            for inner in layer.summaryRows {
                lines.append(row(["  \(inner.name) (\(inner.type))", shape(inner.shape), grouped(inner.parameters)]))
            }
        }
        lines.append(rule)
        let trainable = trainableParameterCount
        lines += ["Total params: \(grouped(parameterCount))", "Trainable params: \(grouped(trainable))",
                  "Non-trainable params: \(grouped(parameterCount - trainable))"]
        return lines.joined(separator: "\n")
    }
}

/// 21674 → "21,674".
func grouped(_ n: Int) -> String {
    let digits = String(n)
    return digits.enumerated().map { ($0.offset > 0 && (digits.count - $0.offset) % 3 == 0 ? "," : "") + String($0.element) }.joined()
}

private extension String {
    func trimmingTrailingSpaces() -> String {
        var copy = self
        while copy.last == " " { copy.removeLast() }
        return copy
    }
}
