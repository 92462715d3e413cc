import Foundation

/// One deterministic damage to a file, drawn from (seed, format, case): the mutations a fuzzer
/// makes (bit flips, overwritten and inserted bytes, truncation, cut chunks, integers set to edge
/// values, numbers in text set to extremes) plus white space changed inside padding.
public struct Mutation: Sendable {
    public enum Kind: String, Sendable { case flip, overwrite, truncate, insert, cut, integer, number, padding }
    public let kind: Kind
    public let bytes: Data

    static let edgeIntegers: [UInt64] = [0, 1, 0xFF, 0x7F, 0x80, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x7FFF_FFFF_FFFF_FFFF,
                                         0x8000_0000_0000_0000, 0xFFFF_FFFF_FFFF_FFFF, 3073, 1 << 20, 1 << 31]
    static let edgeNumbers = ["-1", "0", "1e30", "-1e30", "nan", "inf", "99999999999999999999", "2000000000", "-2147483648", "1.5", "", "x"]

    public init(of seed: Data, format: FuzzFormat, seed fuzzSeed: UInt64, case index: Int) {
        var random = RandomGenerator(seed: fuzzSeed ^ UInt64(truncatingIfNeeded: index) &* 0x9E37_79B9_7F4A_7C15
                                     ^ format.rawValue.utf8.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 })
        func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(random.next() % UInt64(n)) }
        var bytes = [UInt8](seed)
        let padding = format.padding(of: seed).filter { !$0.isEmpty }
        var kinds: [Kind] = [.flip, .overwrite, .truncate, .insert, .cut, .integer]
        switch format {  // numbers written as text: all of a CSV or JSON file, the headers of .npy and safetensors
        case .csv, .kerasJSON: kinds += [.number, .number, .number]
        case .npy, .safetensors: kinds.append(.number)
        default: break
        }
        if !padding.isEmpty { kinds.append(.padding) }
        let kind = kinds[below(kinds.count)]
        switch kind {
        case .flip:
            for _ in 0...below(4) where !bytes.isEmpty { bytes[below(bytes.count)] ^= 1 << UInt8(below(8)) }
        case .overwrite:
            for _ in 0...below(8) where !bytes.isEmpty { bytes[below(bytes.count)] = UInt8(truncatingIfNeeded: random.next()) }
        case .truncate:
            bytes.removeLast(1 + below(bytes.count))
        case .insert:
            bytes.insert(contentsOf: (0...below(16)).map { _ in UInt8(truncatingIfNeeded: random.next()) }, at: below(bytes.count + 1))
        case .cut:
            let start = below(bytes.count)
            bytes.removeSubrange(start..<min(bytes.count, start + 1 + below(64)))
        case .integer:
            let width = [1, 2, 4, 8][below(4)], value = Self.edgeIntegers[below(Self.edgeIntegers.count)]
            let bigEndian = below(2) == 0, at = below(max(bytes.count - width, 1))
            for i in 0..<min(width, bytes.count - at) {
                let shift = UInt64(8 * (bigEndian ? width - 1 - i : i))
                bytes[at + i] = UInt8(truncatingIfNeeded: value >> shift)
            }
        case .number:
            let digits = bytes.indices.filter { (0x30...0x39).contains(bytes[$0]) }
            if let at = digits.isEmpty ? nil : digits[below(digits.count)] {
                var (start, end) = (at, at + 1)
                while start > 0, "0123456789.-e".utf8.contains(bytes[start - 1]) { start -= 1 }
                while end < bytes.count, "0123456789.-e".utf8.contains(bytes[end]) { end += 1 }
                bytes.replaceSubrange(start..<end, with: Array(Self.edgeNumbers[below(Self.edgeNumbers.count)].utf8))
            }
        case .padding:
            let range = padding[below(padding.count)]
            bytes[range.lowerBound + below(range.count)] = [0x09, 0x0D, 0x20][below(3)]
        }
        (self.kind, self.bytes) = (kind, Data(bytes))
    }
}
