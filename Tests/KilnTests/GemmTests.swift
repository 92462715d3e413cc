import Testing
@testable import Kiln

@Suite("GEMM") struct GemmTests {
    /// C = alpha·op(A)·op(B) + beta·C in float64 for `batch` packed matrices.
    static func reference(_ g: Gemm, _ a: [Float], _ b: [Float], _ c: [Float]) -> [Double] {
        var result = c.map(Double.init)
        for p in 0..<g.batch {
            for i in 0..<g.m {
                for j in 0..<g.n {
                    var sum = 0.0
                    for l in 0..<g.k {
                        let x = a[g.offsetA + p * g.strideA + (g.transposeA ? l * g.m + i : i * g.k + l)]
                        let y = b[g.offsetB + p * g.strideB + (g.transposeB ? j * g.k + l : l * g.n + j)]
                        sum += Double(x) * Double(y)
                    }
                    let index = g.offsetC + p * g.strideC + i * g.n + j
                    result[index] = Double(g.alpha) * sum + Double(g.beta) * Double(c[index])
                }
            }
        }
        return result
    }

    @Test(arguments: Backend.all, [(false, false), (true, false), (false, true), (true, true)])
    func gemm(_ backend: Backend, transposes: (Bool, Bool)) throws {
        let device = backend.device
        var random = Random("gemm\(transposes)")
        for batch in [1, 3] {
            var g = Gemm(m: 13, n: 7, k: 29, transposeA: transposes.0, transposeB: transposes.1, alpha: 0.7, beta: -1.3, batch: batch)
            (g.offsetA, g.offsetB, g.offsetC) = (5, 3, 2)
            let a = random.floats(g.offsetA + batch * g.strideA)
            let b = random.floats(g.offsetB + batch * g.strideB)
            let c = random.floats(g.offsetC + batch * g.strideC)
            let cBuffer = try device.buffer(c)
            try device.gemm(g, a: device.buffer(a), b: device.buffer(b), c: cBuffer)
            expectClose(try device.read(cBuffer), Self.reference(g, a, b, c), "gemm batch \(batch)")
        }
    }

    @Test(arguments: Backend.all)
    func rejectsShortBuffers(_ backend: Backend) throws {
        let device = backend.device
        let small = try device.makeBuffer(count: 10)
        #expect(throws: DeviceError.self) {
            try device.gemm(Gemm(m: 4, n: 4, k: 4), a: small, b: small, c: small)
        }
    }
}
