/// Errors from the device layer. Each says which call or argument failed.
public enum DeviceError: Error, CustomStringConvertible, Equatable {
    /// An OpenCL call returned an error status.
    case openCL(call: String, status: Int32)
    /// A CLBlast routine returned an error status.
    case clblast(call: String, status: Int32)
    /// An OpenCL program failed to compile; `log` is the compiler's build log.
    case buildFailed(family: String, device: String, log: String)
    /// No device matches the selection.
    case notFound(selection: String, available: [String])
    /// A shape, size or parameter that the op cannot take.
    case invalidArgument(String)
    /// More memory than is left (`bytes` nil: more than a 64-bit size can say).
    case outOfMemory(what: String, bytes: Int?, available: Int)

    public var description: String {
        switch self {
        case .openCL(let call, let status):
            "OpenCL error \(status) (\(openCLStatusName(status))) in \(call)"
        case .clblast(let call, let status):
            "CLBlast error \(status) in \(call)\(status > -1024 && status < 0 ? " (\(openCLStatusName(status)))" : "")"
        case .buildFailed(let family, let device, let log):
            "OpenCL program '\(family).cl' failed to build for \(device):\n\(log)"
        case .notFound(let selection, let available):
            "no device matches '\(selection)'; available: \(available.joined(separator: ", "))"
        case .invalidArgument(let message):
            message
        case .outOfMemory(let what, let bytes, let available):
            "\(what) needs \(bytes.map(gigabytes) ?? "more than 2^63 bytes"), but only \(gigabytes(available)) of memory is available"
        }
    }
}

private func gigabytes(_ bytes: Int) -> String { String(format: "%.2f GB", Double(bytes) / 1e9) }

func openCLStatusName(_ status: Int32) -> String {
    let names: [Int32: String] = [
        -1: "CL_DEVICE_NOT_FOUND", -2: "CL_DEVICE_NOT_AVAILABLE", -3: "CL_COMPILER_NOT_AVAILABLE",
        -4: "CL_MEM_OBJECT_ALLOCATION_FAILURE", -5: "CL_OUT_OF_RESOURCES", -6: "CL_OUT_OF_HOST_MEMORY",
        -7: "CL_PROFILING_INFO_NOT_AVAILABLE", -8: "CL_MEM_COPY_OVERLAP", -9: "CL_IMAGE_FORMAT_MISMATCH",
        -11: "CL_BUILD_PROGRAM_FAILURE", -12: "CL_MAP_FAILURE", -13: "CL_MISALIGNED_SUB_BUFFER_OFFSET",
        -14: "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST", -15: "CL_COMPILE_PROGRAM_FAILURE",
        -17: "CL_LINK_PROGRAM_FAILURE", -30: "CL_INVALID_VALUE", -31: "CL_INVALID_DEVICE_TYPE",
        -32: "CL_INVALID_PLATFORM", -33: "CL_INVALID_DEVICE", -34: "CL_INVALID_CONTEXT",
        -35: "CL_INVALID_QUEUE_PROPERTIES", -36: "CL_INVALID_COMMAND_QUEUE", -37: "CL_INVALID_HOST_PTR",
        -38: "CL_INVALID_MEM_OBJECT", -42: "CL_INVALID_BINARY", -43: "CL_INVALID_BUILD_OPTIONS",
        -44: "CL_INVALID_PROGRAM", -45: "CL_INVALID_PROGRAM_EXECUTABLE", -46: "CL_INVALID_KERNEL_NAME",
        -47: "CL_INVALID_KERNEL_DEFINITION", -48: "CL_INVALID_KERNEL", -49: "CL_INVALID_ARG_INDEX",
        -50: "CL_INVALID_ARG_VALUE", -51: "CL_INVALID_ARG_SIZE", -52: "CL_INVALID_KERNEL_ARGS",
        -53: "CL_INVALID_WORK_DIMENSION", -54: "CL_INVALID_WORK_GROUP_SIZE", -55: "CL_INVALID_WORK_ITEM_SIZE",
        -56: "CL_INVALID_GLOBAL_OFFSET", -57: "CL_INVALID_EVENT_WAIT_LIST", -58: "CL_INVALID_EVENT",
        -59: "CL_INVALID_OPERATION", -61: "CL_INVALID_BUFFER_SIZE", -63: "CL_INVALID_GLOBAL_WORK_SIZE",
        -1001: "CL_PLATFORM_NOT_FOUND_KHR",
    ]
    return names[status] ?? "unknown status"
}
