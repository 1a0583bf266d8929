/// A pickle reader for `torch.save` state dicts. It interprets the opcodes
/// torch writes (protocol 2, plus the few extra ones of protocols 3-5) and
/// knows exactly these globals: `collections.OrderedDict`, the tensor
/// rebuilders of `torch._utils`, `torch.Size` and the `torch.*Storage`
/// classes. Any other global (`os.system`, `builtins.eval`, ...) or opcode is
/// refused with an error naming it. Nothing in a checkpoint is executed: a
/// "call" of a known global just builds a value.
///
/// Opcode semantics follow CPython's `Lib/pickle.py`; the torch side follows
/// `torch/serialization.py` and `torch/_utils.py` (docs/formats.md 2.3).
final class PickleReader {
    /// Values the reader builds. Lists and dicts are classes because pickles
    /// mutate them after they are memoized.
    indirect enum Value {
        case none
        case bool(Bool)
        case int(Int)
        /// An integer too wide for Int (LONG1/LONG4), little-endian two's complement.
        case bigInt([UInt8])
        case float(Double)
        case string(String)
        case bytes([UInt8])
        /// Items and nesting depth (kept so that checking it never walks shared subtrees).
        case tuple([Value], depth: Int)
        case list(ListBox)
        case dict(DictBox)
        case global(Global)
        case storage(StorageRef)
        case tensor(TensorRef)
    }

    final class ListBox { var items: [Value] = []; var depth = 1 }
    final class DictBox {
        var items: [(key: Value, value: Value)] = []
        var depth = 1
        private var stringKeys: [String: Int] = [:]
        func set(_ k: Value, _ v: Value) {
            if case let .string(s) = k {
                if let i = stringKeys[s] { items[i].value = v; return }
                stringKeys[s] = items.count
            }
            items.append((k, v))
        }
    }

    enum Global: Equatable {
        case orderedDict
        case rebuildTensorV2, rebuildTensor, rebuildParameter, rebuildParameterWithState
        case torchSize
        case storageType(TensorDType?, String)
    }

    /// A storage as torch's `persistent_id` names it: `('storage', type, key, location, numel)`.
    struct StorageRef {
        let key: String
        let dtype: TensorDType
        let typeName: String
        let numel: Int
    }

    /// `_rebuild_tensor_v2(storage, storage_offset, size, stride, ...)`.
    struct TensorRef {
        let storage: StorageRef
        let offset: Int
        let shape: [Int]
        let strides: [Int]
    }

    let file: String
    let what: String
    private let bytes: UnsafeRawBufferPointer
    private(set) var pos: Int
    private var stack: [Value] = []
    private var marks: [Int] = []
    private var memo: [Int: Value] = [:]
    /// Every storage the pickle named, by key (the legacy format needs the
    /// element size of each to find the next one).
    private(set) var storages: [String: StorageRef] = [:]
    /// The legacy format's persistent ids carry a 6th field (view metadata).
    let legacyPersistentIDs: Bool

    static let maxDepth = 64

    init(bytes: UnsafeRawBufferPointer, at start: Int, file: String, what: String = "data.pkl", legacy: Bool = false) {
        self.bytes = bytes
        self.pos = start
        self.file = file
        self.what = what
        self.legacyPersistentIDs = legacy
    }

    private func bad(_ detail: String) -> IOFormatError {
        IOFormatError.corrupt(file: file, detail: "\(what): \(detail)")
    }

    private func refuse(_ detail: String) -> IOFormatError {
        IOFormatError.unsupported(file: file, detail: "\(what): \(detail)")
    }

    // MARK: reading bytes

    private func need(_ n: Int, _ op: String) throws {
        guard n >= 0, n <= bytes.count - pos else {
            throw IOFormatError.truncated(file: file, detail: "\(what): \(op) at offset \(pos) runs past the end")
        }
    }
    private func u8(_ op: String) throws -> Int { try need(1, op); defer { pos += 1 }; return Int(bytes[pos]) }
    private func u16(_ op: String) throws -> Int { try need(2, op); defer { pos += 2 }; return Int(bytes.u16(pos)) }
    private func u32(_ op: String) throws -> Int { try need(4, op); defer { pos += 4 }; return Int(bytes.u32(pos)) }
    private func i32(_ op: String) throws -> Int { try need(4, op); defer { pos += 4 }; return Int(Int32(bitPattern: bytes.u32(pos))) }
    private func u64(_ op: String) throws -> Int {
        try need(8, op)
        let v = bytes.u64(pos)
        guard v <= UInt64(bytes.count) else { throw bad("\(op) at offset \(pos) declares \(v) bytes") }
        pos += 8
        return Int(v)
    }
    private func raw(_ n: Int, _ op: String) throws -> [UInt8] {
        try need(n, op)
        defer { pos += n }
        return Array(bytes[pos..<(pos + n)])
    }
    private func line(_ op: String) throws -> String {
        var end = pos
        while end < bytes.count && bytes[end] != 0x0A {
            end += 1
            guard end - pos < 256 else { throw bad("\(op) argument longer than 256 bytes") }
        }
        guard end < bytes.count else { throw IOFormatError.truncated(file: file, detail: "\(what): \(op) at offset \(pos) runs past the end") }
        let s = String(decoding: bytes[pos..<end], as: UTF8.self)
        pos = end + 1
        return s
    }
    private func text(_ n: Int, _ op: String) throws -> String {
        try need(n, op)
        defer { pos += n }
        guard let s = String(validating: bytes[pos..<(pos + n)], as: UTF8.self) else {
            throw bad("\(op) at offset \(pos) is not valid UTF-8")
        }
        return s
    }

    // MARK: stack

    private func pop() throws -> Value {
        guard let v = stack.popLast() else { throw bad("stack underflow at offset \(pos - 1)") }
        if let m = marks.last, stack.count < m { throw bad("stack underflow past a MARK at offset \(pos - 1)") }
        return v
    }
    private func top() throws -> Value {
        guard let v = stack.last, stack.count > (marks.last ?? 0) else { throw bad("empty stack at offset \(pos - 1)") }
        return v
    }
    private func popMark() throws -> [Value] {
        guard let m = marks.popLast() else { throw bad("no MARK at offset \(pos - 1)") }
        let items = Array(stack[m...])
        stack.removeLast(stack.count - m)
        return items
    }
    private func push(_ v: Value) throws {
        guard stack.count < 1_000_000 else { throw bad("stack deeper than 1000000") }
        stack.append(v)
    }

    static func depth(_ v: Value) -> Int {
        switch v {
        case let .tuple(_, d): return d
        case let .list(l): return l.depth
        case let .dict(d): return d.depth
        default: return 0
        }
    }
    private func tuple(_ items: [Value]) throws -> Value {
        let d = 1 + (items.map(Self.depth).max() ?? 0)
        guard d <= Self.maxDepth else { throw bad("values nest deeper than \(Self.maxDepth)") }
        return .tuple(items, depth: d)
    }

    // MARK: the machine

    /// Runs from the current position to STOP and returns the result.
    func load() throws -> Value {
        while true {
            let opPos = pos
            let op = try u8("opcode")
            switch op {
            case 0x80: // PROTO
                let v = try u8("PROTO")
                guard v <= 5 else { throw refuse("pickle protocol \(v) is not supported") }
            case 0x95: // FRAME: only a hint for buffering
                _ = try u64("FRAME")
            case 0x2E: // STOP
                guard marks.isEmpty else { throw bad("STOP inside a MARK") }
                guard stack.count == 1 else { throw bad("STOP with \(stack.count) values on the stack") }
                return stack.removeLast()
            case 0x28: // MARK
                guard marks.count < 10_000 else { throw bad("more than 10000 open MARKs") }
                marks.append(stack.count)
            case 0x7D: try push(.dict(DictBox()))                 // EMPTY_DICT
            case 0x5D: try push(.list(ListBox()))                 // EMPTY_LIST
            case 0x29: try push(.tuple([], depth: 1))                       // EMPTY_TUPLE
            case 0x74: try push(try tuple(try popMark()))         // TUPLE
            case 0x85: let a = try pop(); try push(try tuple([a])) // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); try push(try tuple([a, b]))
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); try push(try tuple([a, b, c]))
            case 0x4E: try push(.none)                            // NONE
            case 0x88: try push(.bool(true))                      // NEWTRUE
            case 0x89: try push(.bool(false))                     // NEWFALSE
            case 0x4A: try push(.int(try i32("BININT")))
            case 0x4B: try push(.int(try u8("BININT1")))
            case 0x4D: try push(.int(try u16("BININT2")))
            case 0x8A: try push(try long(try u8("LONG1")))
            case 0x8B: // LONG4
                let n = try i32("LONG4")
                guard n >= 0 else { throw bad("LONG4 with negative length") }
                try push(try long(n))
            case 0x47: // BINFLOAT: big-endian double
                try need(8, "BINFLOAT")
                let v = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: pos, as: UInt64.self))
                pos += 8
                try push(.float(Double(bitPattern: v)))
            case 0x58: try push(.string(try text(try u32("BINUNICODE"), "BINUNICODE")))
            case 0x8C: try push(.string(try text(try u8("SHORT_BINUNICODE"), "SHORT_BINUNICODE")))
            case 0x8D: try push(.string(try text(try u64("BINUNICODE8"), "BINUNICODE8")))
            // Python 2 strings: torch.load decodes them as UTF-8.
            case 0x55: try push(.string(try text(try u8("SHORT_BINSTRING"), "SHORT_BINSTRING")))
            case 0x54:
                let n = try i32("BINSTRING")
                guard n >= 0 else { throw bad("BINSTRING with negative length") }
                try push(.string(try text(n, "BINSTRING")))
            case 0x43: try push(.bytes(try raw(try u8("SHORT_BINBYTES"), "SHORT_BINBYTES")))
            case 0x42: try push(.bytes(try raw(try u32("BINBYTES"), "BINBYTES")))
            case 0x8E: try push(.bytes(try raw(try u64("BINBYTES8"), "BINBYTES8")))
            case 0x71: try memoize(try u8("BINPUT"))
            case 0x72: try memoize(try u32("LONG_BINPUT"))
            case 0x94: try memoize(memo.count)                    // MEMOIZE
            case 0x68: try push(try recall(try u8("BINGET")))
            case 0x6A: try push(try recall(try u32("LONG_BINGET")))
            case 0x63: // GLOBAL
                let module = try line("GLOBAL"), name = try line("GLOBAL")
                try push(.global(try global(module, name)))
            case 0x93: // STACK_GLOBAL
                let nameV = try pop(), moduleV = try pop()
                guard case let .string(module) = moduleV, case let .string(name) = nameV else {
                    throw bad("STACK_GLOBAL needs two strings")
                }
                try push(.global(try global(module, name)))
            case 0x52: // REDUCE
                let args = try pop(), callable = try pop()
                try push(try reduce(callable, args))
            case 0x51: // BINPERSID
                try push(try persistentLoad(try pop()))
            case 0x62: // BUILD: state for the object below it. Dicts get `_metadata`
                // this way (OrderedDict.__reduce__); nothing here uses it.
                _ = try pop()
                _ = try top()
            case 0x73: // SETITEM
                let v = try pop(), k = try pop()
                try setItems(try top(), [k, v])
            case 0x75: // SETITEMS
                let items = try popMark()
                try setItems(try top(), items)
            case 0x61: // APPEND
                let v = try pop()
                try append(try top(), [v])
            case 0x65: // APPENDS
                let items = try popMark()
                try append(try top(), items)
            case 0x30: _ = try pop()                              // POP
            case 0x31: _ = try popMark()                          // POP_MARK
            case 0x32: try push(try top())                        // DUP
            default:
                throw refuse("pickle opcode \(Self.opcodeName(op)) at offset \(opPos) is not allowed in a checkpoint")
            }
        }
    }

    private func long(_ n: Int) throws -> Value {
        let b = try raw(n, "LONG")
        if n == 0 { return .int(0) }
        if n <= 8 {
            var v: UInt64 = 0
            for (k, byte) in b.enumerated() { v |= UInt64(byte) << (8 * UInt64(k)) }
            if n < 8 && (b[n - 1] & 0x80) != 0 { v |= ~0 << (8 * UInt64(n)) } // sign-extend
            return .int(Int(Int64(bitPattern: v)))
        }
        return .bigInt(b)
    }

    private func memoize(_ index: Int) throws {
        guard memo.count < 10_000_000 else { throw bad("memo larger than 10000000") }
        memo[index] = try top()
    }

    private func recall(_ index: Int) throws -> Value {
        guard let v = memo[index] else { throw bad("memo index \(index) is used before it is set") }
        return v
    }

    private func setItems(_ target: Value, _ items: [Value]) throws {
        guard case let .dict(d) = target else { throw refuse("SETITEM(S) on something that is not a dict") }
        guard items.count % 2 == 0 else { throw bad("SETITEMS with an odd number of values") }
        var i = 0
        while i < items.count {
            d.set(items[i], items[i + 1])
            d.depth = max(d.depth, 1 + Self.depth(items[i + 1]))
            i += 2
        }
        guard d.depth <= Self.maxDepth else { throw bad("values nest deeper than \(Self.maxDepth)") }
    }

    private func append(_ target: Value, _ items: [Value]) throws {
        guard case let .list(l) = target else { throw refuse("APPEND(S) on something that is not a list") }
        for v in items { l.depth = max(l.depth, 1 + Self.depth(v)) }
        guard l.depth <= Self.maxDepth else { throw bad("values nest deeper than \(Self.maxDepth)") }
        l.items.append(contentsOf: items)
    }

    // MARK: the globals a state dict needs, and nothing else

    static let storageTypes: [String: TensorDType?] = [
        "FloatStorage": .f32, "HalfStorage": .f16, "BFloat16Storage": .bf16, "DoubleStorage": .f64,
        "LongStorage": .i64, "IntStorage": .i32, "ShortStorage": .i16, "CharStorage": .i8,
        "ByteStorage": .u8, "BoolStorage": .bool,
        "ComplexFloatStorage": nil, "ComplexDoubleStorage": nil,
    ]

    private func global(_ module: String, _ name: String) throws -> Global {
        switch (module, name) {
        case ("collections", "OrderedDict"): return .orderedDict
        case ("torch._utils", "_rebuild_tensor_v2"): return .rebuildTensorV2
        case ("torch._utils", "_rebuild_tensor"): return .rebuildTensor
        case ("torch._utils", "_rebuild_parameter"): return .rebuildParameter
        case ("torch._utils", "_rebuild_parameter_with_state"): return .rebuildParameterWithState
        case ("torch", "Size"): return .torchSize
        default:
            if module == "torch", let t = Self.storageTypes[name] { return .storageType(t, name) }
            let shown = (module + "." + name).unicodeScalars.prefix(80).map { $0.isASCII && $0.value >= 0x20 ? String($0) : "?" }.joined()
            throw refuse("pickle refers to '\(shown)'; only torch tensor rebuilders and OrderedDict are allowed (nothing in a checkpoint is executed)")
        }
    }

    private func reduce(_ callable: Value, _ argsValue: Value) throws -> Value {
        guard case let .global(g) = callable else { throw refuse("REDUCE calls something that is not a known global") }
        guard case let .tuple(args, _) = argsValue else { throw bad("REDUCE arguments are not a tuple") }
        switch g {
        case .orderedDict:
            guard args.isEmpty else { throw refuse("OrderedDict built from arguments") }
            return .dict(DictBox())
        case .torchSize:
            guard args.count == 1, case .tuple = args[0] else { throw bad("torch.Size needs one tuple") }
            return args[0]
        case .rebuildTensorV2, .rebuildTensor:
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            let minArgs = g == .rebuildTensorV2 ? 6 : 4
            guard args.count >= minArgs, args.count <= 7 else {
                throw bad("tensor rebuild with \(args.count) arguments")
            }
            guard case let .storage(s) = args[0] else { throw bad("tensor rebuild without a storage") }
            guard case let .int(offset) = args[1] else { throw bad("tensor storage offset is not an integer") }
            let shape = try ints(args[2], "tensor size")
            let strides = try ints(args[3], "tensor stride")
            guard shape.count == strides.count else { throw bad("tensor size \(shape) and stride \(strides) differ in length") }
            if args.count == 7, case let .dict(meta) = args[6], !meta.items.isEmpty {
                throw refuse("tensor with metadata (conjugate/negative bits) is not supported")
            }
            return .tensor(TensorRef(storage: s, offset: offset, shape: shape, strides: strides))
        case .rebuildParameter, .rebuildParameterWithState:
            guard args.count >= 1, case .tensor = args[0] else { throw bad("parameter rebuild without a tensor") }
            return args[0]
        case let .storageType(_, name):
            throw refuse("pickle calls torch.\(name) directly")
        }
    }

    private func ints(_ v: Value, _ what: String) throws -> [Int] {
        guard case let .tuple(items, _) = v else { throw bad("\(what) is not a tuple") }
        return try items.map {
            guard case let .int(i) = $0 else { throw bad("\(what) holds something that is not an integer") }
            return i
        }
    }

    private func persistentLoad(_ pid: Value) throws -> Value {
        guard case let .tuple(t, _) = pid, t.count >= 5, case let .string(kind) = t[0], kind == "storage" else {
            throw refuse("persistent id that is not a torch storage")
        }
        guard case let .global(.storageType(dtype, typeName)) = t[1] else { throw bad("storage without a storage type") }
        guard case let .string(key) = t[2] else { throw bad("storage key is not a string") }
        guard case let .int(numel) = t[4], numel >= 0, numel <= 1 << 40 else { throw bad("storage '\(key)' has a bad element count") }
        if legacyPersistentIDs {
            guard t.count == 6 else { throw bad("legacy storage id with \(t.count) fields") }
            if case .none = t[5] {} else {
                throw refuse("storage views (torch < 0.4) are not supported")
            }
        } else {
            guard t.count == 5 else { throw bad("storage id with \(t.count) fields") }
        }
        guard let dtype else { throw refuse("storage type torch.\(typeName) is not supported") }
        let ref = StorageRef(key: key, dtype: dtype, typeName: typeName, numel: numel)
        if let seen = storages[key], seen.dtype != dtype || seen.numel != numel {
            throw bad("storage '\(key)' appears as \(seen.numel) \(seen.typeName) and as \(numel) \(typeName)")
        }
        storages[key] = ref
        return .storage(ref)
    }

    static func opcodeName(_ op: Int) -> String {
        let names: [Int: String] = [
            0x81: "NEWOBJ", 0x92: "NEWOBJ_EX", 0x69: "INST", 0x6F: "OBJ", 0x50: "PERSID",
            0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4", 0x8F: "EMPTY_SET", 0x90: "ADDITEMS",
            0x91: "FROZENSET", 0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
            0x49: "INT", 0x4C: "LONG", 0x46: "FLOAT", 0x53: "STRING", 0x56: "UNICODE",
            0x70: "PUT", 0x67: "GET", 0x6C: "LIST", 0x64: "DICT",
        ]
        let h = "0x" + String(op, radix: 16)
        if let n = names[op] { return "\(n) (\(h))" }
        return h
    }
}
