import CBLAS
import CCLBlast
import CKernels
import COpenCL
import Foundation

/// Throughput of the heavy ops on one device, beside the library they are built on called directly
/// (OpenBLAS on the CPU backend, CLBlast on OpenCL). `kiln benchmark ops` prints these rows.
public struct OpBenchmark {
    public struct Row: Sendable {
        public var backend: String, op: String, size: String
        public var gflops: Double
        /// The same work through OpenBLAS/CLBlast directly, where there is such a call.
        public var rawGflops: Double?
    }

    public let device: any Device
    /// Seconds each measurement runs for (after one warm-up call).
    public var seconds: Double

    public init(device: any Device, seconds: Double = 0.5) {
        self.device = device
        self.seconds = seconds
    }

    private var backend: String { device.info.backend == "cpu" ? "cpu" : "opencl" }

    /// Square GEMMs of each size.
    public func gemm(sizes: [Int]) throws -> [Row] {
        try sizes.map { n in
            let flops = 2 * Double(n) * Double(n) * Double(n)
            let (a, b, c) = (try device.buffer(repeating: 0.5, count: n * n), try device.buffer(repeating: 0.25, count: n * n),
                             try device.makeBuffer(count: n * n))
            let g = Gemm(m: n, n: n, k: n)
            // Alternate the two so that machine drift hits both alike; keep the best of three.
            var (kiln, raw) = (0.0, 0.0)
            for _ in 0..<3 {
                kiln = max(kiln, try rate(flops) { try device.gemm(g, a: a, b: b, c: c) })
                // Raw OpenBLAS with its own threading (Kiln keeps it single-threaded and splits rows itself).
                if device is CPUDevice { openblas_set_num_threads(Int32(ProcessInfo.processInfo.activeProcessorCount)) }
                defer { if device is CPUDevice { openblas_set_num_threads(1) } }
                raw = max(raw, try rate(flops) { try rawGemm(n, n, n, a, b, c) })
            }
            return Row(backend: backend, op: "gemm", size: "\(n)×\(n)×\(n)", gflops: kiln, rawGflops: raw)
        }
    }

    /// Forward, backward-data and backward-weights of one convolution layer, each beside the GEMM of
    /// the same m × n × k (the same FLOPs) through OpenBLAS/CLBlast directly: forward (pixels × outputs
    /// × taps), input gradient (pixels × taps × outputs), weight gradient (taps × outputs × pixels).
    public func conv2d(_ s: ConvShape) throws -> [Row] {
        let w = s.window
        let (pixels, outputs, taps) = (s.batch * w.outputPixels, s.outChannels, s.patchSize)
        let flops = 2 * Double(pixels * outputs * taps)
        let size = "\(s.batch)×\(w.inputHeight)×\(w.inputWidth)×\(s.inChannels) → \(s.outChannels) \(w.kernelHeight)×\(w.kernelWidth)"
        let x = try device.buffer(repeating: 0.5, count: s.inputCount), y = try device.makeBuffer(count: s.outputCount)
        let weight = try device.buffer(repeating: 0.1, count: s.weightCount), bias = try device.buffer(repeating: 0, count: s.outChannels)
        let (dx, dw) = (try device.makeBuffer(count: s.inputCount), try device.makeBuffer(count: s.weightCount))
        func row(_ op: String, _ m: Int, _ n: Int, _ k: Int, _ body: () throws -> Void) throws -> Row {
            let (a, b, c) = (try device.buffer(repeating: 0.5, count: m * k), try device.buffer(repeating: 0.25, count: k * n),
                             try device.makeBuffer(count: m * n))
            var (kiln, raw) = (0.0, 0.0)
            for _ in 0..<2 {
                kiln = max(kiln, try rate(flops, body))
                raw = max(raw, try rate(flops) { try rawGemm(m, n, k, a, b, c) })
            }
            return Row(backend: backend, op: op, size: size, gflops: kiln, rawGflops: raw)
        }
        return [
            try row("conv2d forward", pixels, outputs, taps) {
                try device.conv2d(s, input: x, weight: weight, bias: bias, relu: false, output: y)
            },
            try row("conv2d backward data", pixels, taps, outputs) {
                try device.conv2dBackwardData(s, gradOutput: y, reluOutput: nil, weight: weight, gradInput: dx)
            },
            try row("conv2d backward weights", taps, outputs, pixels) {
                try device.conv2dBackwardWeights(s, input: x, gradOutput: y, reluOutput: nil, gradWeight: dw, gradBias: bias)
            },
        ]
    }

    /// The machine's FP32 peak: independent fused multiply-add chains on every core, at the widest
    /// vector width the CPU has.
    public static func fmaPeak(seconds: Double = 0.5) -> Double {
        let threads = ProcessInfo.processInfo.activeProcessorCount
        let start = DispatchTime.now().uptimeNanoseconds
        var (flops, elapsed) = (0.0, 0.0)
        repeat {
            let done = Lock()
            DispatchQueue.concurrentPerform(iterations: threads) { _ in
                let f = kiln_fma_flops(20_000_000)
                done.withLock { flops += f }
            }
            elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        } while elapsed < seconds
        return flops / elapsed / 1e9
    }

    /// GFLOP/s of `body` over at least `seconds`, after one warm-up call.
    private func rate(_ flops: Double, _ body: () throws -> Void) throws -> Double {
        try body()
        try device.synchronize()
        let start = DispatchTime.now().uptimeNanoseconds
        var calls = 0
        var elapsed = 0.0
        while elapsed < seconds || calls < 3 {
            try body()
            calls += 1
            if calls % 4 == 0 || elapsed + 0.05 > seconds {
                try device.synchronize()
                elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            }
        }
        try device.synchronize()
        elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return flops * Double(calls) / elapsed / 1e9
    }

    /// The same product through OpenBLAS or CLBlast, without Kiln's checks and bookkeeping.
    private func rawGemm(_ m: Int, _ n: Int, _ k: Int, _ a: Buffer, _ b: Buffer, _ c: Buffer) throws {
        if let device = device as? OpenCLDevice {
            var queue: cl_command_queue? = device.queue
            let status = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, m, n, k, 1,
                                      a.mem, 0, k, b.mem, 0, n, 0, c.mem, 0, n, &queue, nil)
            guard status == CLBlastSuccess else { throw DeviceError.clblast(call: "CLBlastSgemm", status: status.rawValue) }
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1,
                        a.host, Int32(k), b.host, Int32(n), 0, c.host, Int32(n))
        }
    }
}
