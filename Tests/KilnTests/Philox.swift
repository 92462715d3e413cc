import Foundation

/// Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"), the reference the
/// devices' dropout masks are checked against: a counter-based generator, so element `i` of a mask
/// depends only on (seed, i) and every device draws the same numbers (Sources/CKernels/random.c,
/// Kernels/random.cl).
enum Philox {
    typealias Words = (UInt32, UInt32, UInt32, UInt32)

    /// The full Philox-4x32-10 block of `counter` under `key`.
    static func block(_ counter: Words, key: (UInt32, UInt32)) -> Words {
        var (c0, c1, c2, c3) = counter
        var (k0, k1) = key
        for round in 0..<10 {
            let p0 = UInt64(0xD251_1F53) &* UInt64(c0), p1 = UInt64(0xCD9E_8D57) &* UInt64(c2)
            let (hi0, lo0) = (UInt32(p0 >> 32), UInt32(truncatingIfNeeded: p0))
            let (hi1, lo1) = (UInt32(p1 >> 32), UInt32(truncatingIfNeeded: p1))
            (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
            if round < 9 { k0 &+= 0x9E37_79B9; k1 &+= 0xBB67_AE85 }
        }
        return (c0, c1, c2, c3)
    }

    /// The first word of the block of counter (lo, hi, 0, 0) under key (lo(seed), hi(seed)).
    static func word(seed: UInt64, counter: UInt64) -> UInt32 {
        block((UInt32(truncatingIfNeeded: counter), UInt32(truncatingIfNeeded: counter >> 32), 0, 0),
              key: (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))).0
    }

    /// A standard normal by Box–Muller from the block's first two words, in float64.
    static func normal(seed: UInt64, counter: UInt64) -> Double {
        let block = block((UInt32(truncatingIfNeeded: counter), UInt32(truncatingIfNeeded: counter >> 32), 0, 0),
                          key: (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32)))
        let u1 = Double((block.0 >> 8) + 1) * 0x1p-24, u2 = Double(block.1 >> 8) * 0x1p-24
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
    }

    /// A uniform float in [0, 1) with 24 random bits.
    static func uniform(seed: UInt64, counter: UInt64) -> Float {
        Float(word(seed: seed, counter: counter) >> 8) * 0x1p-24
    }
}
