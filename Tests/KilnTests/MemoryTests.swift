import Testing
@testable import Kiln

@Suite("Memory and data movement") struct MemoryTests {
    @Test(arguments: Backend.all)
    func roundTripFillAndCopy(_ backend: Backend) throws {
        let device = backend.device
        var random = Random("memory")
        let x = random.floats(1001)
        let buffer = try device.buffer(x)
        #expect(try device.read(buffer) == x)
        try device.fill(buffer, with: 2.5, offset: 10, count: 5)
        #expect(try device.read(buffer)[9...15] == [x[9], 2.5, 2.5, 2.5, 2.5, 2.5, x[15]])
        let ints = try device.buffer(ints: [1, -2, 3])
        try device.fill(ints, withInt: 9, offset: 1, count: 1)
        #expect(try device.readInts(ints) == [1, 9, 3])
    }

    @Test(arguments: Backend.all)
    func copy2DConcatenates(_ backend: Backend) throws {
        // Concatenating [3, 4] and [3, 2] along the last axis is two strided copies.
        let device = backend.device
        let a = (0..<12).map(Float.init), b = (100..<106).map(Float.init)
        let out = try device.makeBuffer(count: 18)
        try device.copy2D(rows: 3, columns: 4, from: device.buffer(a), offset: 0, stride: 4, to: out, offset: 0, stride: 6)
        try device.copy2D(rows: 3, columns: 2, from: device.buffer(b), offset: 0, stride: 2, to: out, offset: 4, stride: 6)
        #expect(try device.read(out) == [0, 1, 2, 3, 100, 101, 4, 5, 6, 7, 102, 103, 8, 9, 10, 11, 104, 105])
    }

    @Test(arguments: Backend.all)
    func permuteMatchesIndexArithmetic(_ backend: Backend) throws {
        // NHWC [3, 5, 4, 7] → NCHW [3, 7, 5, 4].
        let device = backend.device
        let shape = [3, 5, 4, 7], permutation = [0, 3, 1, 2]
        let x = (0..<shape.reduce(1, *)).map(Float.init)
        let y = try device.output(x.count) { try device.permute(device.buffer(x), shape: shape, permutation: permutation, into: $0) }
        var expected: [Float] = []
        for n in 0..<3 { for c in 0..<7 { for h in 0..<5 { for w in 0..<4 { expected.append(x[((n * 5 + h) * 4 + w) * 7 + c]) } } } }
        #expect(y == expected)
        // The last axis kept (rows of 11, copied whole on the CPU): [4, 3, 5, 11] → [5, 4, 3, 11].
        let rows = (0..<660).map(Float.init)
        let moved = try device.output(660) { try device.permute(device.buffer(rows), shape: [4, 3, 5, 11], permutation: [2, 0, 1, 3], into: $0) }
        var reference: [Float] = []
        for h in 0..<5 { for n in 0..<4 { for c in 0..<3 { for w in 0..<11 { reference.append(rows[((n * 3 + c) * 5 + h) * 11 + w]) } } } }
        #expect(moved == reference)
        #expect(throws: DeviceError.self) { try device.permute(device.buffer(x), shape: shape, permutation: [0, 1, 1, 2], into: device.makeBuffer(count: x.count)) }
    }

    @Test(arguments: Backend.all)
    func poolReusesFreedBuffers(_ backend: Backend) throws {
        // A training step's buffers come back to the pool; repeating the step allocates nothing new.
        let device = backend.device
        func step() throws { for _ in 0..<3 { _ = try device.makeBuffer(count: 4093); _ = try device.makeBuffer(count: 17) } }
        try step()
        let pool = (device as? CPUDevice)?.pool ?? (device as! OpenCLDevice).pool
        let before = pool.allocations
        for _ in 0..<5 { try step() }
        #expect(pool.allocations == before)
    }

    @Test(arguments: Backend.all)
    func rejectsOutOfRangeAccess(_ backend: Backend) throws {
        let device = backend.device
        let buffer = try device.makeBuffer(count: 8)
        #expect(throws: DeviceError.self) { try device.fill(buffer, with: 0, offset: 4, count: 5) }
        #expect(throws: DeviceError.self) { try device.copy(buffer, to: buffer, at: 1, count: 8) }
        #expect(throws: DeviceError.self) { try device.makeBuffer(count: 0) }
    }
}
