import CCLBlast
import COpenCL
import Foundation

/// An OpenCL device: kernels from `Kernels/`, GEMM through CLBlast, one in-order queue.
/// Ops are enqueued and return at once; `read` and `synchronize` wait.
public final class OpenCLDevice: Device, @unchecked Sendable {
    public let info: DeviceInfo
    let context: cl_context
    let queue: cl_command_queue
    let device: cl_device_id
    private let platform: cl_platform_id?
    let pool: BufferPool
    let programs: ProgramCache
    let convTuner: ConvTuner
    private var kernels: [String: cl_kernel] = [:]
    private var builtFamilies: [String: cl_program] = [:]
    private let lock = Lock()
    /// Seconds per kernel or CLBlast routine, kept when `KILN_OPENCL_PROFILE=1` (each launch then waits).
    private var profile: [String: (calls: Int, seconds: Double)]? =
        ProcessInfo.processInfo.environment["KILN_OPENCL_PROFILE"] == "1" ? [:] : nil
    /// Bound where a kernel takes an optional buffer that the call does not use.
    private(set) var placeholder: Buffer!

    init(platform: cl_platform_id?, device: cl_device_id) throws {
        info = try CL.info(platform: platform, device: device)
        (self.device, self.platform) = (device, platform)
        var status: cl_int = 0
        var id: cl_device_id? = device
        guard let context = clCreateContext(nil, 1, &id, nil, nil, &status) else {
            throw DeviceError.openCL(call: "clCreateContext(\(info.name))", status: status)
        }
        try CL.check(status, "clCreateContext(\(info.name))")
        guard let queue = clCreateCommandQueue(context, device, 0, &status), status == CL_SUCCESS else {
            clReleaseContext(context)
            throw DeviceError.openCL(call: "clCreateCommandQueue(\(info.name))", status: status)
        }
        (self.context, self.queue) = (context, queue)
        pool = BufferPool { storage in if case .openCL(let mem) = storage { clReleaseMemObject(mem) } }
        programs = ProgramCache(context: context, device: device, info: info)
        convTuner = try ConvTuner(programs: programs, device: device)
        placeholder = try makeBuffer(count: 1)
    }

    /// The same device opened again: a context, queue and buffers of its own (a second replica on it).
    func reopened() throws -> OpenCLDevice { try OpenCLDevice(platform: platform, device: device) }

    deinit {
        try? synchronize()
        kernels.values.forEach { clReleaseKernel($0) }
        builtFamilies.values.forEach { clReleaseProgram($0) }
        clReleaseCommandQueue(queue)
        // Live buffers keep the context alive until the pool releases them.
        clReleaseContext(context)
    }

    public func makeBuffer(count: Int) throws -> Buffer {
        guard count > 0 else { throw DeviceError.invalidArgument("makeBuffer: count must be positive, got \(count)") }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: 4)
        guard !overflow else { throw DeviceError.outOfMemory(what: "a buffer of \(count) floats", bytes: nil, available: info.globalMemory) }
        return try pool.buffer(count: count) {
            var status: cl_int = 0
            let mem = clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_WRITE), bytes, nil, &status)
            try CL.check(status, "clCreateBuffer(\(bytes) bytes)")
            return .openCL(mem!)
        }
    }

    public func write(_ values: UnsafeRawBufferPointer, to buffer: Buffer, offset: Int) throws {
        try require(buffer, offset + values.count / 4, "write")
        guard !values.isEmpty else { return }
        try lock.withLock {
            try CL.check(clEnqueueWriteBuffer(queue, buffer.mem, cl_bool(CL_TRUE), offset * 4, values.count, values.baseAddress,
                                              0, nil, nil), "clEnqueueWriteBuffer")
        }
    }

    public func read(_ buffer: Buffer, offset: Int, into values: UnsafeMutableRawBufferPointer) throws {
        try require(buffer, offset + values.count / 4, "read")
        guard !values.isEmpty else { return }
        try lock.withLock {
            try CL.check(clEnqueueReadBuffer(queue, buffer.mem, cl_bool(CL_TRUE), offset * 4, values.count, values.baseAddress,
                                             0, nil, nil), "clEnqueueReadBuffer")
        }
    }

    public func synchronize() throws {
        try lock.withLock { try CL.check(clFinish(queue), "clFinish") }
    }

    /// The kernel `name` of `family` built with `defines`, building the program on first use.
    private func kernel(_ family: String, _ name: String, defines: String) throws -> cl_kernel {
        let key = defines.isEmpty ? name : name + " " + defines
        if let kernel = kernels[key] { return kernel }
        let variant = defines.isEmpty ? family : family + " " + defines
        let program: cl_program
        if let built = builtFamilies[variant] { program = built } else {
            program = try programs.program(family, source: ProgramCache.source(of: family), defines: defines).program
            builtFamilies[variant] = program
        }
        var status: cl_int = 0
        let kernel = clCreateKernel(program, name, &status)
        try CL.check(status, "clCreateKernel(\(name))")
        kernels[key] = kernel
        return kernel!
    }

    /// Enqueues `family.name` over `items` work-items in groups of `group` (the global size is
    /// rounded up; kernels check bounds), or over `groups` whole work-groups when given; `defines`
    /// selects a variant of the family built with those options.
    func launch(_ family: String, _ name: String, items: Int = 0, groups: Int? = nil, group: Int = 64,
                _ arguments: KernelArgument...) throws {
        try launch(family, name, items: items, groups: groups, group: group, arguments)
    }

    func launch(_ family: String, _ name: String, defines: String = "", items: Int = 0, groups: Int? = nil, group: Int = 64,
                _ arguments: [KernelArgument]) throws {
        let global = groups.map { $0 * group } ?? (items + group - 1) / group * group
        guard global > 0 else { return }
        try lock.withLock {
            let kernel = try kernel(family, name, defines: defines)
            for (index, argument) in arguments.enumerated() {
                try argument.bind(to: kernel, at: cl_uint(index), name)
            }
            var (globalSize, localSize) = (global, group)
            try timed(name) {
                try CL.check(clEnqueueNDRangeKernel(queue, kernel, 1, nil, &globalSize, &localSize, 0, nil, nil),
                             "clEnqueueNDRangeKernel(\(name), global \(global), local \(group))")
            }
        }
    }

    /// Runs `body` (an enqueue); when profiling, waits for it and adds its time to `name`'s row.
    private func timed(_ name: String, _ body: () throws -> Void) throws {
        guard profile != nil else { return try body() }
        try CL.check(clFinish(queue), "clFinish")
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        try CL.check(clFinish(queue), "clFinish")
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        profile![name, default: (0, 0)].calls += 1
        profile![name, default: (0, 0)].seconds += seconds
    }

    /// The profile kept under `KILN_OPENCL_PROFILE=1`, slowest first: one line per kernel or routine.
    public func profileReport() -> String? {
        lock.withLock {
            guard let profile, !profile.isEmpty else { return nil }
            let total = profile.values.reduce(0) { $0 + $1.seconds }
            return profile.sorted { $0.value.seconds > $1.value.seconds }.map { name, row in
                String(format: "%6.1f%% %9.3f s %8d calls  %@", 100 * row.seconds / total, row.seconds, row.calls, name)
            }.joined(separator: "\n")
        }
    }

    /// Runs a CLBlast routine on this device's queue.
    func clblast(_ call: String, _ body: (UnsafeMutablePointer<cl_command_queue?>) -> CLBlastStatusCode) throws {
        try lock.withLock {
            var queue: cl_command_queue? = self.queue
            var status = CLBlastSuccess
            try timed(String(call.prefix { $0 != "(" })) { status = body(&queue) }
            guard status == CLBlastSuccess else { throw DeviceError.clblast(call: call, status: status.rawValue) }
        }
    }
}

/// A value that can be bound to a kernel parameter.
protocol KernelArgument {
    func bind(to kernel: cl_kernel, at index: cl_uint, _ name: String) throws
}

extension KernelArgument {
    func bindBytes(to kernel: cl_kernel, at index: cl_uint, _ name: String) throws {
        try withUnsafeBytes(of: self) { bytes in
            try CL.check(clSetKernelArg(kernel, index, bytes.count, bytes.baseAddress), "clSetKernelArg(\(name), \(index))")
        }
    }
}

extension Buffer: KernelArgument {
    func bind(to kernel: cl_kernel, at index: cl_uint, _ name: String) throws {
        var mem: cl_mem? = self.mem
        try CL.check(clSetKernelArg(kernel, index, MemoryLayout<cl_mem>.size, &mem), "clSetKernelArg(\(name), \(index))")
    }
}

extension Int32: KernelArgument {
    func bind(to kernel: cl_kernel, at index: cl_uint, _ name: String) throws { try bindBytes(to: kernel, at: index, name) }
}

extension Float: KernelArgument {
    func bind(to kernel: cl_kernel, at index: cl_uint, _ name: String) throws { try bindBytes(to: kernel, at: index, name) }
}

extension UInt64: KernelArgument {
    func bind(to kernel: cl_kernel, at index: cl_uint, _ name: String) throws { try bindBytes(to: kernel, at: index, name) }
}

extension Int: KernelArgument {
    func bind(to kernel: cl_kernel, at index: cl_uint, _ name: String) throws {
        guard let value = Int32(exactly: self) else {
            throw DeviceError.invalidArgument("\(name): argument \(index) = \(self) exceeds the 32-bit range of OpenCL indices")
        }
        try value.bind(to: kernel, at: index, name)
    }
}

extension Bool: KernelArgument {
    func bind(to kernel: cl_kernel, at index: cl_uint, _ name: String) throws { try Int32(self ? 1 : 0).bind(to: kernel, at: index, name) }
}

/// An OpenCL `int8` (eight 32-bit ints): shapes and strides of `StridedIndex`.
struct IntVector8: KernelArgument {
    var values: (Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32)
    init(_ array: [Int32]) {
        precondition(array.count == 8)
        values = (array[0], array[1], array[2], array[3], array[4], array[5], array[6], array[7])
    }
    func bind(to kernel: cl_kernel, at index: cl_uint, _ name: String) throws { try bindBytes(to: kernel, at: index, name) }
}
