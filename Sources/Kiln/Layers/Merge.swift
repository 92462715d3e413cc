/// Sums inputs of one shape (residual connections).
public final class Add: Layer {
    public init(name: String? = nil) { super.init(name: name, kind: "add") }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        guard inputShapes.count >= 2, inputShapes.allSatisfy({ $0 == inputShapes[0] }) else {
            throw shapeError("needs two or more inputs of one shape, got \(inputShapes)")
        }
        return inputShapes[0]
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try inputs.dropFirst().reduce(inputs[0]) { try $0 + $1 }
    }
}

/// Joins inputs along an axis (default: the last, channels).
public final class Concatenate: Layer {
    public let axis: Int
    public init(axis: Int = -1, name: String? = nil) {
        self.axis = axis
        super.init(name: name, kind: "concatenate")
    }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        guard inputShapes.count >= 2, let rank = inputShapes.first?.count, inputShapes.allSatisfy({ $0.count == rank }) else {
            throw shapeError("needs two or more inputs of one rank, got \(inputShapes)")
        }
        let resolved = axis < 0 ? axis + rank : axis - 1  // `axis` counts the batch axis, as in Keras
        guard (0..<rank).contains(resolved),
              inputShapes.allSatisfy({ zip($0, inputShapes[0]).enumerated().allSatisfy { $0.offset == resolved || $0.element.0 == $0.element.1 } })
        else { throw shapeError("shapes \(inputShapes) differ off axis \(axis)") }
        var output = inputShapes[0]
        output[resolved] = inputShapes.map { $0[resolved] }.reduce(0, +)
        return output
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try Tensor.concatenate(inputs, axis: axis)
    }
}
