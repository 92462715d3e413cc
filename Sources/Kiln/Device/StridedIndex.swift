/// Index maps for broadcasting and permutation: an output element's coordinates (row-major over
/// `shape`) are dotted with each operand's `strides`. Ranks are padded to `maxRank` with leading 1s.
struct StridedIndex: Equatable {
    static let maxRank = 8
    var shape: [Int32]
    var strides: [[Int32]]
    var count: Int { shape.reduce(1) { $0 * Int($1) } }

    /// Row-major strides of `shape`.
    static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        for i in shape.indices.dropLast().reversed() { strides[i] = strides[i + 1] * shape[i + 1] }
        return strides
    }

    /// NumPy broadcasting of `a` and `b` into `output` (which may be larger than both).
    init(broadcasting a: [Int], _ b: [Int], to output: [Int]) throws {
        let joint = try Self.broadcastShape(a, b)
        guard output == (try? Self.broadcastShape(joint, output)) else {
            throw DeviceError.invalidArgument("broadcast: shapes \(a) and \(b) broadcast to \(joint), which does not broadcast to \(output)")
        }
        func operandStrides(_ shape: [Int]) -> [Int] {
            let padded = [Int](repeating: 1, count: output.count - shape.count) + shape
            return zip(padded, Self.contiguousStrides(padded)).map { $0 == 1 ? 0 : $1 }
        }
        try self.init(shape: output, strides: [operandStrides(a), operandStrides(b)])
    }

    /// Output `i` takes input element at permuted coordinates: `output.shape[j] = input[permutation[j]]`.
    init(permuting input: [Int], by permutation: [Int]) throws {
        guard permutation.sorted() == Array(input.indices) else {
            throw DeviceError.invalidArgument("permute: \(permutation) is not a permutation of the \(input.count) axes of \(input)")
        }
        let strides = Self.contiguousStrides(input)
        try self.init(shape: permutation.map { input[$0] }, strides: [permutation.map { strides[$0] }])
    }

    private init(shape: [Int], strides: [[Int]]) throws {
        guard shape.count <= Self.maxRank else {
            throw DeviceError.invalidArgument("rank \(shape.count) exceeds the supported \(Self.maxRank)")
        }
        let pad = Self.maxRank - shape.count
        self.shape = ([Int](repeating: 1, count: pad) + shape).map { Int32($0) }
        self.strides = strides.map { ([Int](repeating: 0, count: pad) + $0).map { Int32($0) } }
    }

    static func broadcastShape(_ a: [Int], _ b: [Int]) throws -> [Int] {
        let rank = max(a.count, b.count)
        let pa = [Int](repeating: 1, count: rank - a.count) + a
        let pb = [Int](repeating: 1, count: rank - b.count) + b
        return try zip(pa, pb).map { x, y in
            guard x == y || x == 1 || y == 1 else {
                throw DeviceError.invalidArgument("broadcast: shapes \(a) and \(b) are incompatible")
            }
            return x == 1 ? y : x
        }
    }
}
