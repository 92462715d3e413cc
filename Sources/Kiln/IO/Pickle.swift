import Foundation

/// A restricted reader for the pickles inside PyTorch checkpoints. It knows plain values, tuples,
/// lists, dicts, `collections.OrderedDict`, PyTorch's storages (persistent ids) and its tensor
/// rebuild functions, and refuses every other global, class or opcode with an error naming it:
/// nothing in the file is ever called. Containers live in a flat arena and refer to each other by
/// index, so shared, cyclic or deeply nested structures cannot recurse or overflow the stack.
struct Pickle {
    enum Value {
        case none, bool(Bool), int(Int), float(Double), string(String), bytes([UInt8])
        /// A module-level name (only the allowed ones ever get here).
        case global(String)
        /// A list, tuple or dict in `objects`.
        case object(Int)
        /// A tensor in `tensors`, a storage in `storages`.
        case tensor(Int), storage(Int)
        case mark
    }

    enum Object { case list([Value]), tuple([Value]), dict([(key: Value, value: Value)]) }

    /// Where a tensor's elements sit in its storage.
    struct TensorView { let storage: Int; let offset: Int; let shape: [Int]; let strides: [Int] }

    /// A storage named by the persistent id: `key` in the archive, `count` elements of `dtype`.
    struct Storage { let key: String; let dtype: String; let count: Int }

    private(set) var objects: [Object] = []
    private(set) var tensors: [TensorView] = []
    private(set) var storages: [Storage] = []
    /// The top-level value once `read` returns.
    private(set) var root = Value.none
    /// The byte after the STOP opcode (legacy checkpoints append more pickles and raw data).
    private(set) var end = 0

    /// PyTorch's legacy storage classes and the dtype names `SafeTensors.decode` reads.
    static let storageTypes = ["FloatStorage": "F32", "DoubleStorage": "F64", "HalfStorage": "F16", "BFloat16Storage": "BF16",
                               "LongStorage": "I64", "IntStorage": "I32", "ShortStorage": "I16", "CharStorage": "I8",
                               "ByteStorage": "U8", "BoolStorage": "BOOL"]
    static let allowedGlobals: Set<String> = Set(["collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor",
                                                  "torch._utils._rebuild_parameter"] + storageTypes.keys.map { "torch." + $0 })

    private let bytes: [UInt8]
    private let file: String
    private var position: Int
    private var stack: [Value] = []
    private var memo: [Int: Value] = [:]

    /// Reads one pickle from `bytes` starting at `start`.
    init(_ bytes: [UInt8], from start: Int = 0, file: String) throws {
        (self.bytes, self.file, position) = (bytes, file, start)
        try read()
    }

    private func fail(_ message: String) -> DataError { DataError(file, "pickle at byte \(position): \(message)") }

    private mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, count <= bytes.count - position else { throw fail("a field of \(count) bytes runs past the end (truncated?)") }
        defer { position += count }
        return bytes[position..<(position + count)]
    }

    private mutating func unsigned(_ count: Int) throws -> Int {
        let field = try take(count)
        guard count <= 8, field.count < 8 || field.last! < 0x80 else { throw fail("a length of \(count) bytes does not fit") }
        return field.reversed().reduce(0) { $0 << 8 | Int($1) }
    }

    /// A little-endian two's-complement integer of `count` bytes (LONG1, LONG4, BININT).
    private mutating func signed(_ count: Int) throws -> Int {
        let field = try take(count)
        guard count <= 8 else { throw fail("an integer of \(count) bytes is too large") }
        guard !field.isEmpty else { return 0 }
        let value = field.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let shift = UInt64(64 - 8 * count)  // sign-extend from the top bit of `last`
        return Int(Int64(bitPattern: value << shift) >> Int64(shift))
    }

    private mutating func line() throws -> String {
        guard let newline = bytes[position...].firstIndex(of: 0x0A) else { throw fail("a text field has no end of line") }
        defer { position = newline + 1 }
        return String(decoding: bytes[position..<newline], as: UTF8.self)
    }

    private mutating func pop() throws -> Value {
        guard let value = stack.popLast(), !isMark(value) else { throw fail("the stack is empty where a value was expected") }
        return value
    }

    /// The value on top of the stack, left there (APPEND and SETITEM keep their container on it).
    private func top() throws -> Value {
        guard let value = stack.last, !isMark(value) else { throw fail("the stack is empty where a container was expected") }
        return value
    }

    private func isMark(_ value: Value) -> Bool { if case .mark = value { true } else { false } }

    /// The values pushed since the last MARK, which is removed.
    private mutating func popToMark() throws -> [Value] {
        guard let mark = stack.lastIndex(where: isMark) else { throw fail("no MARK before a tuple, list or dict") }
        defer { stack.removeSubrange(mark...) }
        return Array(stack[(mark + 1)...])
    }

    private mutating func push(_ object: Object) throws -> Value {
        guard objects.count < 10_000_000 else { throw fail("more than 10,000,000 containers") }
        objects.append(object)
        return .object(objects.count - 1)
    }

    private func index(_ value: Value) throws -> Int {
        guard case .object(let index) = value else { throw fail("expected a list, tuple or dict") }
        return index
    }

    /// Appends in place (the arena's slot is emptied first, so the array is not copied).
    private mutating func append(_ items: [Value], to target: Value) throws {
        let i = try index(target)
        guard case .list(var list) = objects[i] else { throw fail("APPEND to something that is not a list") }
        objects[i] = .tuple([])
        list.append(contentsOf: items)
        objects[i] = .list(list)
    }

    private mutating func setItems(_ pairs: [Value], in target: Value) throws {
        let i = try index(target)
        guard pairs.count.isMultiple(of: 2) else { throw fail("SETITEMS with an odd number of values") }
        guard case .dict(var dict) = objects[i] else { throw fail("SETITEM on something that is not a dict") }
        objects[i] = .tuple([])
        for j in stride(from: 0, to: pairs.count, by: 2) { dict.append((pairs[j], pairs[j + 1])) }
        objects[i] = .dict(dict)
    }

    func tuple(_ value: Value) -> [Value]? {
        guard case .object(let index) = value, case .tuple(let items) = objects[index] else { return nil }
        return items
    }

    func dict(_ value: Value) -> [(key: Value, value: Value)]? {
        guard case .object(let index) = value, case .dict(let pairs) = objects[index] else { return nil }
        return pairs
    }

    private func integers(_ value: Value, _ what: String) throws -> [Int] {
        guard let items = tuple(value) else { throw fail("a tensor's \(what) is not a tuple") }
        return try items.map { item in
            guard case .int(let n) = item, n >= 0 else { throw fail("a tensor's \(what) holds \(item), not a count") }
            return n
        }
    }

    private mutating func persistentLoad(_ id: Value) throws -> Value {
        guard let items = tuple(id), items.count >= 5, case .string("storage") = items[0], case .global(let type) = items[1],
              let dtype = Self.storageTypes[String(type.dropFirst("torch.".count))] else {
            throw fail("a persistent id that is not a PyTorch storage")
        }
        guard case .string(let key) = items[2], case .int(let count) = items[4], count >= 0 else { throw fail("a storage id without key or size") }
        if let known = storages.firstIndex(where: { $0.key == key }) {
            guard storages[known].dtype == dtype, storages[known].count == count else { throw fail("storage '\(key)' is declared twice differently") }
            return .storage(known)
        }
        storages.append(Storage(key: key, dtype: dtype, count: count))
        return .storage(storages.count - 1)
    }

    /// REDUCE: only the allowed callables, each checked for the arguments PyTorch writes.
    private mutating func call(_ callable: Value, _ arguments: Value) throws -> Value {
        guard case .global(let name) = callable, let args = tuple(arguments) else { throw fail("REDUCE of something that is not an allowed global") }
        switch name {
        case "collections.OrderedDict":
            guard args.isEmpty else { throw fail("OrderedDict with arguments is not supported") }
            return try push(.dict([]))
        case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
            guard args.count >= 4, case .storage(let storage) = args[0], case .int(let offset) = args[1], offset >= 0 else {
                throw fail("\(name) without a storage, offset, size and stride")
            }
            let (shape, strides) = (try integers(args[2], "size"), try integers(args[3], "stride"))
            guard shape.count == strides.count else { throw fail("a tensor's size \(shape) and stride \(strides) differ in rank") }
            guard let count = Memory.count(shape) else { throw fail("a tensor's size \(shape) overflows") }
            if count > 0 {
                let last = zip(shape, strides).reduce(offset) { reach, pair in
                    let step = pair.1.multipliedReportingOverflow(by: pair.0 - 1)
                    return step.overflow ? Int.max : reach.addingReportingOverflow(step.partialValue).partialValue
                }
                guard last < storages[storage].count else {
                    throw fail("a tensor of size \(shape) at offset \(offset) reaches past its storage's \(storages[storage].count) elements")
                }
            }
            tensors.append(TensorView(storage: storage, offset: offset, shape: shape, strides: strides))
            return .tensor(tensors.count - 1)
        case "torch._utils._rebuild_parameter":
            guard let tensor = args.first, case .tensor = tensor else { throw fail("_rebuild_parameter without a tensor") }
            return tensor
        default:
            throw fail("calling \(name) is not allowed")
        }
    }

    private mutating func read() throws {
        while true {
            let opcode = try take(1).first!
            switch opcode {
            case 0x80: _ = try take(1)                                              // PROTO
            case 0x95: _ = try take(8)                                              // FRAME
            case 0x2E:                                                              // STOP
                root = try pop()
                end = position
                return
            case 0x28: stack.append(.mark)                                          // MARK
            case 0x4E: stack.append(.none)
            case 0x88, 0x89: stack.append(.bool(opcode == 0x88))
            case 0x4B: stack.append(.int(try unsigned(1)))                          // BININT1
            case 0x4D: stack.append(.int(try unsigned(2)))                          // BININT2
            case 0x4A: stack.append(.int(try signed(4)))                            // BININT
            case 0x8A: stack.append(.int(try signed(try unsigned(1))))              // LONG1
            case 0x8B: stack.append(.int(try signed(try unsigned(4))))              // LONG4
            case 0x49:                                                              // INT (text; I00/I01 are bools)
                let text = try line()
                guard let n = Int(text) else { throw fail("INT '\(text)' is not an integer") }
                stack.append(text == "00" || text == "01" ? .bool(n == 1) : .int(n))
            case 0x47:                                                              // BINFLOAT, big-endian
                let bits = try take(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                stack.append(.float(Double(bitPattern: bits)))
            case 0x58, 0x8C, 0x8D, 0x55, 0x54:                                      // unicode and byte strings
                let width = [0x58: 4, 0x8C: 1, 0x8D: 8, 0x55: 1, 0x54: 4][Int(opcode)]!
                stack.append(.string(String(decoding: try take(try unsigned(width)), as: UTF8.self)))
            case 0x42, 0x43, 0x8E:                                                  // BINBYTES, SHORT_BINBYTES, BINBYTES8
                stack.append(.bytes(Array(try take(try unsigned([0x42: 4, 0x43: 1, 0x8E: 8][Int(opcode)]!)))))
            case 0x29: stack.append(try push(.tuple([])))                           // EMPTY_TUPLE
            case 0x85, 0x86, 0x87:                                                  // TUPLE1-3
                let count = Int(opcode - 0x84)
                guard stack.count >= count, !stack.suffix(count).contains(where: isMark) else { throw fail("TUPLE\(count) on too short a stack") }
                let items = Array(stack.suffix(count))
                stack.removeLast(count)
                stack.append(try push(.tuple(items)))
            case 0x74: stack.append(try push(.tuple(try popToMark())))              // TUPLE
            case 0x5D: stack.append(try push(.list([])))                            // EMPTY_LIST
            case 0x6C: stack.append(try push(.list(try popToMark())))               // LIST
            case 0x7D: stack.append(try push(.dict([])))                            // EMPTY_DICT
            case 0x64:                                                              // DICT
                let items = try popToMark()
                let dict = try push(.dict([]))
                try setItems(items, in: dict)
                stack.append(dict)
            case 0x61:                                                              // APPEND
                let item = try pop()
                try append([item], to: try top())
            case 0x65:                                                              // APPENDS
                let items = try popToMark()
                try append(items, to: try top())
            case 0x73:                                                              // SETITEM
                let (value, key) = (try pop(), try pop())
                try setItems([key, value], in: try top())
            case 0x75:                                                              // SETITEMS
                let items = try popToMark()
                try setItems(items, in: try top())
            case 0x71, 0x72, 0x94, 0x70:                                            // BINPUT, LONG_BINPUT, MEMOIZE, PUT
                guard let top = stack.last, !isMark(top) else { throw fail("memoizing an empty stack") }
                let key = opcode == 0x94 ? memo.count : opcode == 0x70 ? (Int(try line()) ?? -1) : try unsigned(opcode == 0x71 ? 1 : 4)
                guard key >= 0 else { throw fail("PUT with a key that is not a number") }
                memo[key] = top
            case 0x68, 0x6A, 0x67:                                                  // BINGET, LONG_BINGET, GET
                let key = opcode == 0x67 ? (Int(try line()) ?? -1) : try unsigned(opcode == 0x68 ? 1 : 4)
                guard let value = memo[key] else { throw fail("GET of memo entry \(key), which was never stored") }
                stack.append(value)
            case 0x63:                                                              // GLOBAL module\nname\n
                let name = "\(try line()).\(try line())"
                guard Self.allowedGlobals.contains(name) else { throw fail("refusing global '\(name)': only tensors, storages and containers are read") }
                stack.append(.global(name))
            case 0x93:                                                              // STACK_GLOBAL
                guard case .string(let attribute) = try pop(), case .string(let module) = try pop() else { throw fail("STACK_GLOBAL without two strings") }
                guard Self.allowedGlobals.contains("\(module).\(attribute)") else {
                    throw fail("refusing global '\(module).\(attribute)': only tensors, storages and containers are read")
                }
                stack.append(.global("\(module).\(attribute)"))
            case 0x52:                                                              // REDUCE
                let arguments = try pop()
                stack.append(try call(try pop(), arguments))
            case 0x51: stack.append(try persistentLoad(try pop()))                  // BINPERSID
            case 0x62:                                                              // BUILD: an OrderedDict's attributes (`_metadata`) are ignored
                _ = try pop()
                guard let target = stack.last, let index = try? index(target), case .dict = objects[index] else {
                    throw fail("BUILD on something other than a dict (only plain containers are read)")
                }
            default:
                throw fail("refusing opcode 0x\(String(opcode, radix: 16)) (only tensors, storages and containers are read)")
            }
        }
    }
}
