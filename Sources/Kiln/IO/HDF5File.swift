import CHDF5
import CHDF5Sandbox
import Foundation

/// Read-only access to an HDF5 file: groups, string attributes and float datasets. Debian's
/// serial libhdf5 is not thread-safe, so every call holds one process-wide lock. A damaged file
/// can make libhdf5 loop inside a read; each call runs under a watchdog (`KILN_HDF5_TIMEOUT`
/// seconds, default 60) that ends the process with one line naming the file rather than hang.
final class HDF5File {
    /// The file's name in messages (a `.keras` file's weights are read from a temporary copy).
    let path: String
    /// The file itself (`path` may name what it came from).
    private let url: URL
    private let id: hid_t
    private static let lock = Lock()

    init(_ url: URL, name: String? = nil) throws {
        (path, self.url) = (name ?? url.path, url)
        guard FileManager.default.fileExists(atPath: url.path) else { throw DataError(path, "no such file") }
        id = Self.call(path) {
            kiln_h5_quiet()  // errors come back as statuses, not printed stacks
            return H5Fopen(url.path, kiln_h5_read_only(), kiln_h5_default())
        }
        guard id >= 0 else { throw DataError(path, "not an HDF5 file (or damaged)") }
    }

    deinit { _ = Self.call(path) { H5Fclose(id) } }

    /// One libhdf5 call sequence: under the lock and the watchdog.
    private static func call<T>(_ path: String, _ body: () throws -> T) rethrows -> T {
        try lock.withLock {
            try Watchdog.guarding("\(path): libhdf5 did not finish reading (a damaged file can make it loop); giving up", seconds: timeout, body)
        }
    }

    private static let timeout = ProcessInfo.processInfo.environment["KILN_HDF5_TIMEOUT"].flatMap(Double.init) ?? 60

    func exists(_ object: String) -> Bool { Self.call(path) { linkExists(object) } }

    private func linkExists(_ object: String) -> Bool {
        var prefix = ""
        for part in object.split(separator: "/") {
            prefix += "/" + part
            guard H5Lexists(id, prefix, kiln_h5_default()) > 0 else { return false }
        }
        return true
    }

    /// Names of the links in a group, in name order.
    func children(_ group: String) throws -> [String] { try Self.call(path) { try links(group) } }

    private func links(_ group: String) throws -> [String] {
        let g = H5Gopen2(id, group, kiln_h5_default())
        guard g >= 0 else { throw DataError(path, "no group '\(group)'") }
        defer { H5Gclose(g) }
        var info = H5G_info_t()
        guard H5Gget_info(g, &info) >= 0 else { throw DataError(path, "cannot list group '\(group)'") }
        return (0..<info.nlinks).map { i in
            let size = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, kiln_h5_default())
            var name = [CChar](repeating: 0, count: Int(max(size, 0)) + 1)
            H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, &name, name.count, kiln_h5_default())
            return String(cString: name)
        }
    }

    /// A string (or string array) attribute of an object, fixed-length or variable-length.
    func strings(_ attribute: String, of object: String = "/") throws -> [String]? {
        try Self.call(path) { try readStrings(attribute, of: object) }
    }

    private func readStrings(_ attribute: String, of object: String) throws -> [String]? {
        guard H5Aexists_by_name(id, object, attribute, kiln_h5_default()) > 0 else { return nil }
        let a = H5Aopen_by_name(id, object, attribute, kiln_h5_default(), kiln_h5_default())
        guard a >= 0 else { throw DataError(path, "cannot open attribute '\(attribute)' of '\(object)'") }
        defer { H5Aclose(a) }
        let type = H5Aget_type(a), space = H5Aget_space(a)
        defer { H5Tclose(type); H5Sclose(space) }
        guard H5Tget_class(type) == H5T_STRING else { return [] }  // Keras writes empty lists as float arrays
        let count = max(Int(H5Sget_simple_extent_npoints(space)), 1)
        try Memory.require(count, of: max(H5Tget_size(type), MemoryLayout<UnsafeRawPointer>.size), for: "\(path): attribute '\(attribute)' of '\(object)'")
        let memory = H5Tcopy(kiln_h5_c_string())
        defer { H5Tclose(memory) }
        H5Tset_cset(memory, H5Tget_cset(type))  // Keras writes UTF-8; HDF5 will not convert between character sets
        if H5Tis_variable_str(type) > 0 {
            var text: UnsafeMutablePointer<CChar>?, length = 0
            switch kiln_h5_read_vlen_strings(url.path, object, attribute, count, Self.timeout / 2, &text, &length) {
            case Int32(KILN_H5_OK):
                defer { free(text) }
                let strings = UnsafeBufferPointer(start: text, count: length).split(separator: 0, omittingEmptySubsequences: false).dropLast()
                guard strings.count == count else { throw DataError(path, "attribute '\(attribute)' of '\(object)' is damaged") }
                return strings.map { String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
            case Int32(KILN_H5_CRASHED), Int32(KILN_H5_TIMED_OUT):
                throw DataError(path, "libhdf5 failed on attribute '\(attribute)' of '\(object)' (the file is damaged)")
            default:
                throw DataError(path, "cannot read attribute '\(attribute)' of '\(object)'")
            }
        }
        let size = H5Tget_size(type)
        H5Tset_size(memory, size)
        var bytes = [UInt8](repeating: 0, count: size * count)
        guard H5Aread(a, memory, &bytes) >= 0 else { throw DataError(path, "cannot read attribute '\(attribute)' of '\(object)'") }
        return (0..<count).map { i in String(decoding: bytes[(i * size)..<((i + 1) * size)].prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// A dataset's values converted to float32, and its shape.
    func floats(_ dataset: String) throws -> (values: [Float], shape: [Int]) {
        try Self.call(path) { try readFloats(dataset) }
    }

    private func readFloats(_ dataset: String) throws -> (values: [Float], shape: [Int]) {
        let d = H5Dopen2(id, dataset, kiln_h5_default())
        guard d >= 0 else { throw DataError(path, "no dataset '\(dataset)'") }
        defer { H5Dclose(d) }
        let space = H5Dget_space(d)
        defer { H5Sclose(space) }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        guard (0...32).contains(rank) else { throw DataError(path, "dataset '\(dataset)' has rank \(rank)") }
        var dims = [hsize_t](repeating: 0, count: max(rank, 1))
        H5Sget_simple_extent_dims(space, &dims, nil)
        let shape = dims.prefix(rank).map { Int(clamping: $0) }
        guard let count = Memory.count(shape) else { throw DataError(path, "dataset '\(dataset)' has dimensions \(dims) (too large)") }
        try Memory.require(count, for: "\(path): dataset '\(dataset)'")
        var values = [Float](repeating: 0, count: count)
        guard H5Dread(d, kiln_h5_native_float(), kiln_h5_all(), kiln_h5_all(), kiln_h5_default(), &values) >= 0 else {
            throw DataError(path, "dataset '\(dataset)' cannot be read as float32")
        }
        return (values, shape)
    }
}
