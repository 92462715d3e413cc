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
    let pool: BufferPool
    let programs: ProgramCache
    private var kernels: [String: cl_kernel] = [:]
    private var builtFamilies: [String: cl_program] = [:]
    private let lock = Lock()
    /// Bound where a kernel takes an optional buffer that the call does not use.
    private(set) var placeholder: Buffer!

    init(platform: cl_platform_id?, device: cl_device_id) throws {
        info = try CL.info(platform: platform, device: device)
        self.device = device
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
        placeholder = try makeBuffer(count: 1)
    }

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

    /// The kernel `name` of `family`, building the family's program on first use.
    private func kernel(_ family: String, _ name: String) throws -> cl_kernel {
        if let kernel = kernels[name] { return kernel }
        let program: cl_program
        if let built = builtFamilies[family] { program = built } else {
            program = try programs.program(family, source: ProgramCache.source(of: family)).program
            builtFamilies[family] = program
        }
        var status: cl_int = 0
        let kernel = clCreateKernel(program, name, &status)
        try CL.check(status, "clCreateKernel(\(name))")
        kernels[name] = kernel
        return kernel!
    }

    /// Enqueues `family.name` over `items` work-items in groups of `group` (the global size is
    /// rounded up; kernels check bounds), or over `groups` whole work-groups when given.
    func launch(_ family: String, _ name: String, items: Int = 0, groups: Int? = nil, group: Int = 64,
                _ arguments: KernelArgument...) throws {
        try launch(family, name, items: items, groups: groups, group: group, arguments)
    }

    func launch(_ family: String, _ name: String, items: Int = 0, groups: Int? = nil, group: Int = 64,
                _ arguments: [KernelArgument]) throws {
        let global = groups.map { $0 * group } ?? (items + group - 1) / group * group
        guard global > 0 else { return }
        try lock.withLock {
            let kernel = try kernel(family, name)
            for (index, argument) in arguments.enumerated() {
                try argument.bind(to: kernel, at: cl_uint(index), name)
            }
            var (globalSize, localSize) = (global, group)
            try CL.check(clEnqueueNDRangeKernel(queue, kernel, 1, nil, &globalSize, &localSize, 0, nil, nil),
                         "clEnqueueNDRangeKernel(\(name), global \(global), local \(group))")
        }
    }

    /// Runs a CLBlast routine on this device's queue.
    func clblast(_ call: String, _ body: (UnsafeMutablePointer<cl_command_queue?>) -> CLBlastStatusCode) throws {
        try lock.withLock {
            var queue: cl_command_queue? = self.queue
            let status = body(&queue)
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
