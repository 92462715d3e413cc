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

/// Keras's elementwise merges of inputs whose shapes broadcast (a squeeze-and-excitation block's
/// `Multiply()([x, se])` scales (H, W, C) features by a (1, 1, C) gate).
public class ElementwiseMerge: Layer {
    let combine: ([Tensor]) throws -> Tensor
    let inputCount: ClosedRange<Int>

    init(name: String?, kind: String, inputs: ClosedRange<Int> = 2...Int.max, _ combine: @escaping ([Tensor]) throws -> Tensor) {
        (self.combine, self.inputCount) = (combine, inputs)
        super.init(name: name, kind: kind)
    }

    override public func build(_ inputShapes: [[Int]]) throws -> [Int] {
        guard inputCount.contains(inputShapes.count), let rank = inputShapes.map(\.count).max() else {
            throw shapeError("needs \(inputCount.upperBound == Int.max ? "two or more" : "\(inputCount.lowerBound)") inputs, got \(inputShapes.count)")
        }
        let padded = inputShapes.map { [Int](repeating: 1, count: rank - $0.count) + $0 }
        return try (0..<rank).map { axis in
            let sizes = Set(padded.map { $0[axis] }).subtracting([1])
            guard sizes.count <= 1 else { throw shapeError("input shapes \(inputShapes) do not broadcast") }
            return sizes.first ?? 1
        }
    }

    override public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { try combine(inputs) }
}

public final class Multiply: ElementwiseMerge {
    public init(name: String? = nil) { super.init(name: name, kind: "multiply") { try $0.dropFirst().reduce($0[0]) { try $0 * $1 } } }
}

/// `inputs[0] + inputs[1] · scale` (Keras's `CustomScaleLayer` of InceptionResNetV2's residual blocks).
public final class CustomScaleLayer: ElementwiseMerge {
    public let scale: Float
    public init(scale: Float, name: String? = nil) {
        self.scale = scale
        super.init(name: name, kind: "custom_scale_layer", inputs: 2...2) { try $0[0] + $0[1] * scale }
    }
}

/// The first input minus the second.
public final class Subtract: ElementwiseMerge {
    public init(name: String? = nil) { super.init(name: name, kind: "subtract", inputs: 2...2) { try $0[0] - $0[1] } }
}

public final class Average: ElementwiseMerge {
    public init(name: String? = nil) {
        super.init(name: name, kind: "average") { try $0.dropFirst().reduce($0[0]) { try $0 + $1 } / Float($0.count) }
    }
}

public final class Maximum: ElementwiseMerge {
    public init(name: String? = nil) { super.init(name: name, kind: "maximum") { try $0.dropFirst().reduce($0[0]) { try Tensor.maximum($0, $1) } } }
}

public final class Minimum: ElementwiseMerge {
    public init(name: String? = nil) { super.init(name: name, kind: "minimum") { try $0.dropFirst().reduce($0[0]) { try Tensor.minimum($0, $1) } } }
}
