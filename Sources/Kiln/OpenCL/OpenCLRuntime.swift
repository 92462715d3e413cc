import COpenCL
import Foundation

/// Thin, checked wrappers over the OpenCL C API.
enum CL {
    /// Throws `DeviceError.openCL` unless `status` is CL_SUCCESS.
    static func check(_ status: cl_int, _ call: @autoclosure () -> String) throws {
        guard status == CL_SUCCESS else { throw DeviceError.openCL(call: call(), status: status) }
    }

    static func platforms() throws -> [cl_platform_id?] {
        var count: cl_uint = 0
        try check(clGetPlatformIDs(0, nil, &count), "clGetPlatformIDs")
        var ids = [cl_platform_id?](repeating: nil, count: Int(count))
        try check(clGetPlatformIDs(count, &ids, nil), "clGetPlatformIDs")
        return ids
    }

    static func devices(of platform: cl_platform_id?) throws -> [cl_device_id?] {
        var count: cl_uint = 0
        let status = clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), 0, nil, &count)
        if status == CL_DEVICE_NOT_FOUND { return [] }
        try check(status, "clGetDeviceIDs")
        var ids = [cl_device_id?](repeating: nil, count: Int(count))
        try check(clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), count, &ids, nil), "clGetDeviceIDs")
        return ids
    }

    static func string(platform: cl_platform_id?, _ parameter: Int32) throws -> String {
        try text { size, value, written in clGetPlatformInfo(platform, cl_platform_info(parameter), size, value, written) }
    }

    static func string(device: cl_device_id?, _ parameter: Int32) throws -> String {
        try text { size, value, written in clGetDeviceInfo(device, cl_device_info(parameter), size, value, written) }
    }

    static func value<T>(device: cl_device_id?, _ parameter: Int32, as _: T.Type) throws -> T {
        var result = [UInt8](repeating: 0, count: MemoryLayout<T>.size)
        try check(clGetDeviceInfo(device, cl_device_info(parameter), result.count, &result, nil), "clGetDeviceInfo(\(parameter))")
        return result.withUnsafeBytes { $0.loadUnaligned(as: T.self) }
    }

    private static func text(_ query: (Int, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int>?) -> cl_int) throws -> String {
        var size = 0
        try check(query(0, nil, &size), "clGet*Info")
        var bytes = [UInt8](repeating: 0, count: size)
        try check(query(size, &bytes, nil), "clGet*Info")
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self).trimmingCharacters(in: .whitespaces)
    }

    /// Describes a device for `kiln devices` and for selection by name.
    static func info(platform: cl_platform_id?, device: cl_device_id?) throws -> DeviceInfo {
        let type = try value(device: device, CL_DEVICE_TYPE, as: cl_device_type.self)
        let kind: DeviceInfo.Kind =
            type & cl_device_type(CL_DEVICE_TYPE_GPU) != 0 ? .gpu
            : type & cl_device_type(CL_DEVICE_TYPE_CPU) != 0 ? .cpu
            : type & cl_device_type(CL_DEVICE_TYPE_ACCELERATOR) != 0 ? .accelerator : .other
        return DeviceInfo(
            backend: "opencl", platform: try string(platform: platform, CL_PLATFORM_NAME),
            name: try string(device: device, CL_DEVICE_NAME), kind: kind,
            computeUnits: Int(try value(device: device, CL_DEVICE_MAX_COMPUTE_UNITS, as: cl_uint.self)),
            globalMemory: Int(try value(device: device, CL_DEVICE_GLOBAL_MEM_SIZE, as: cl_ulong.self)),
            version: try string(device: device, CL_DEVICE_VERSION),
            driverVersion: try string(device: device, CL_DRIVER_VERSION))
    }
}
