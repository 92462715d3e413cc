import CBLAS
import CKernels
import Foundation

/// The native CPU backend: ops over host memory, their hot loops vectorised in CKernels (C), the
/// rest in Swift, matrix products in OpenBLAS. Ops run synchronously on the calling thread,
/// spreading large loops over all cores through CKernels' thread pool.
public final class CPUDevice: Device, @unchecked Sendable {
    public static let shared = CPUDevice()

    public let info: DeviceInfo
    let pool = BufferPool { storage in
        if case .host(let pointer) = storage { free(pointer) }
    }
    let threads = kiln_parallel_threads()
    let tasksPerThread = 4

    private init() {
        if let chosen = ProcessInfo.processInfo.environment["KILN_NUM_THREADS"], let wanted = Int(chosen), wanted > threads {
            FileHandle.standardError.write(Data("note: KILN_NUM_THREADS=\(wanted): running \(threads) threads (at most 4 per CPU this process may use, and as many as the system would start)\n".utf8))
        }
        openblas_set_num_threads(1)  // Kiln splits products over the cores itself (see `sgemm`)
        info = DeviceInfo(
            backend: "cpu", platform: "Kiln", name: "CPU (Kiln C kernels + OpenBLAS, \(threads) thread\(threads == 1 ? "" : "s"))", kind: .cpu,
            computeUnits: threads, globalMemory: Int(ProcessInfo.processInfo.physicalMemory),
            version: "native", driverVersion: "OpenBLAS \(Self.blasCore)")
    }

    /// The kernels OpenBLAS runs (its name for them, e.g. `SkylakeX`, `Haswell`, `Prescott`).
    public static var blasCore: String { String(cString: openblas_get_corename()) }

    /// The `OPENBLAS_CORETYPE` this CPU could use, when OpenBLAS did not recognise it and fell back
    /// to SSE3 kernels (about 5× slower matrix products on an AVX-512 CPU); nil when it did.
    /// OpenBLAS reads the variable once, when it loads, so only a new process can take it: the
    /// `kiln` command restarts itself with it set.
    public static var betterBLASCore: String? { kiln_blas_core_hint(openblas_get_corename()).map { String(cString: $0) } }

    public func makeBuffer(count: Int) throws -> Buffer {
        guard count > 0 else { throw DeviceError.invalidArgument("makeBuffer: count must be positive, got \(count)") }
        return try pool.buffer(count: count) {
            var raw: UnsafeMutableRawPointer?
            let (bytes, overflow) = count.multipliedReportingOverflow(by: 4)
            guard !overflow, posix_memalign(&raw, 64, bytes) == 0, let raw else {
                throw DeviceError.outOfMemory(what: "a buffer of \(count) floats", bytes: overflow ? nil : bytes, available: Memory.available)
            }
            return .host(raw.bindMemory(to: Float.self, capacity: count))
        }
    }

    public func write(_ values: UnsafeRawBufferPointer, to buffer: Buffer, offset: Int) throws {
        try require(buffer, offset + values.count / 4, "write")
        guard let source = values.baseAddress else { return }
        UnsafeMutableRawPointer(buffer.host + offset).copyMemory(from: source, byteCount: values.count)
    }

    public func read(_ buffer: Buffer, offset: Int, into values: UnsafeMutableRawBufferPointer) throws {
        try require(buffer, offset + values.count / 4, "read")
        values.baseAddress?.copyMemory(from: buffer.host + offset, byteCount: values.count)
    }

    public func synchronize() throws {}

    public func fill(_ buffer: Buffer, with value: Float, offset: Int, count: Int) throws {
        try require(buffer, offset + count, "fill")
        (buffer.host + offset).update(repeating: value, count: count)
    }

    public func fill(_ buffer: Buffer, withInt value: Int32, offset: Int, count: Int) throws {
        try require(buffer, offset + count, "fill")
        (buffer.hostInts + offset).update(repeating: value, count: count)
    }

    public func copy2D(rows: Int, columns: Int, from source: Buffer, offset sourceOffset: Int, stride sourceStride: Int,
                       to destination: Buffer, offset destinationOffset: Int, stride destinationStride: Int) throws {
        guard rows > 0, columns > 0 else { return }
        try require(source, sourceOffset + (rows - 1) * sourceStride + columns, "copy2D source")
        try require(destination, destinationOffset + (rows - 1) * destinationStride + columns, "copy2D destination")
        let (src, dst) = (source.host + sourceOffset, destination.host + destinationOffset)
        parallelFor(rows, grain: max(1, 65536 / columns)) { range in
            for r in range { (dst + r * destinationStride).update(from: src + r * sourceStride, count: columns) }
        }
    }

    public func permute(_ input: Buffer, shape: [Int], permutation: [Int], into output: Buffer) throws {
        let index = try StridedIndex(permuting: shape, by: permutation)
        try require(input, index.count, "permute input")
        try require(output, index.count, "permute output")
        let (x, y) = (input.host, output.host), n = Int(index.shape.last!)
        if stridedRows(index, { row, offsets in (y + row * n).update(from: x + offsets.0, count: n) }) { return }
        stridedLoop(index) { i, offsets in y[i] = x[offsets.0] }
    }

    public func gatherRows(_ g: RowGather, table: Buffer, indices: Buffer, into output: Buffer) throws {
        try g.validate(table: table, indices: indices, rows: output, "gatherRows")
        let (x, y) = (table.host, output.host)
        parallelFor(g.count, grain: max(1, 65536 / g.columns)) { range in
            for r in range {
                let out = y + r * g.columns
                if let row = row(g, indices, r) { out.update(from: x + row * g.columns, count: g.columns) } else { out.update(repeating: 0, count: g.columns) }
            }
        }
    }

    public func scatterAddRows(_ g: RowGather, rows: Buffer, indices: Buffer, into table: Buffer) throws {
        try g.validate(table: table, indices: indices, rows: rows, "scatterAddRows")
        let (x, y) = (rows.host, table.host)
        for r in 0..<g.count {
            if let row = row(g, indices, r) { kiln_accumulate(y + row * g.columns, x + r * g.columns, g.columns) }
        }
    }

    /// The table row of index `r` when it lies in the table.
    private func row(_ g: RowGather, _ indices: Buffer, _ r: Int) -> Int? {
        if g.floatIndices {
            let value = indices.host[r]
            return value >= 0 && value < Float(g.tableRows) ? Int(value) : nil
        }
        let value = Int(indices.hostInts[r])
        return (0..<g.tableRows).contains(value) ? value : nil
    }

    public func gemm(_ g: Gemm, a: Buffer, b: Buffer, c: Buffer) throws {
        try g.validate(a: a, b: b, c: c)
        for i in 0..<g.batch {
            let (pa, pb, pc) = (a.host + g.offsetA + i * g.strideA, b.host + g.offsetB + i * g.strideB, c.host + g.offsetC + i * g.strideC)
            if g.alpha == 1 {
                sgemm(m: g.m, n: g.n, k: g.k, pa, g.transposeA, pb, g.transposeB, pc, beta: g.beta)
            } else {
                cblas_sgemm(CblasRowMajor, g.transposeA ? CblasTrans : CblasNoTrans, g.transposeB ? CblasTrans : CblasNoTrans,
                            Int32(g.m), Int32(g.n), Int32(g.k), g.alpha, pa, Int32(g.lda), pb, Int32(g.ldb), g.beta, pc, Int32(g.ldc))
            }
        }
    }

    /// Runs `body` over `0..<count` in chunks of at least `grain` items, on all cores when it pays.
    /// Up to `tasksPerThread` chunks per core, claimed as threads come free: a core that another
    /// process (or the data loader) borrows for a moment then holds up less.
    func parallelFor(_ count: Int, grain: Int = 32768, _ body: (Range<Int>) -> Void) {
        let chunks = min(threads > 1 ? threads * tasksPerThread : 1, (count + grain - 1) / max(grain, 1))
        guard chunks > 1 else { return body(0..<count) }
        parallel(chunks) { chunk in body(count * chunk / chunks ..< count * (chunk + 1) / chunks) }
    }

    /// Runs `body(0 ..< tasks)` on CKernels' spinning thread pool (the caller takes part).
    func parallel(_ tasks: Int, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            var task = body
            withUnsafeMutablePointer(to: &task) { context in
                kiln_parallel(tasks, context) { context, index in
                    context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(index)
                }
            }
        }
    }

    /// Runs `body(row, offsets)` in parallel over the rows of `index`'s last axis, when that axis is at
    /// least 8 long and each operand holds it whole (stride 1) or repeats one element (stride 0):
    /// `offsets` are the operands' offsets of the row's first element. False, having run nothing, otherwise.
    func stridedRows(_ index: StridedIndex, _ body: (Int, (Int, Int)) -> Void) -> Bool {
        let shape = index.shape.map(Int.init), n = shape.last!
        let s0 = index.strides[0].map(Int.init), s1 = index.strides.count > 1 ? index.strides[1].map(Int.init) : s0
        guard n >= 8, [0, 1].contains(s0.last!), [0, 1].contains(s1.last!) else { return false }
        parallelFor(index.count / n, grain: max(1, 4096 / n)) { rows in
            for row in rows {
                var (o0, o1, rest) = (0, 0, row)
                for axis in shape.indices.dropLast().reversed() {
                    let c = rest % shape[axis]
                    rest /= shape[axis]
                    (o0, o1) = (o0 + c * s0[axis], o1 + c * s1[axis])
                }
                body(row, (o0, o1))
            }
        }
        return true
    }

    /// Visits every output element of `index` with its operands' element offsets.
    func stridedLoop(_ index: StridedIndex, _ body: (Int, (Int, Int)) -> Void) {
        let shape = index.shape.map(Int.init)
        let s0 = index.strides[0].map(Int.init)
        let s1 = index.strides.count > 1 ? index.strides[1].map(Int.init) : s0
        var coordinate = [Int](repeating: 0, count: shape.count)
        var (o0, o1) = (0, 0)
        for i in 0..<index.count {
            body(i, (o0, o1))
            var axis = shape.count - 1
            while axis >= 0 {
                coordinate[axis] += 1
                o0 += s0[axis]; o1 += s1[axis]
                if coordinate[axis] < shape[axis] { break }
                o0 -= s0[axis] * shape[axis]; o1 -= s1[axis] * shape[axis]
                coordinate[axis] = 0
                axis -= 1
            }
        }
    }
}
