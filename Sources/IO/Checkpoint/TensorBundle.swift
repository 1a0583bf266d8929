import Foundation
import ModelFiles

/// A TensorFlow V2 checkpoint (TensorBundle): `PREFIX.index`, a LevelDB-style
/// sorted table mapping tensor names to `BundleEntryProto`s, plus the data
/// shards `PREFIX.data-NNNNN-of-NNNNN` holding the raw tensor bytes.
///
/// Follows `tensorflow/core/util/tensor_bundle/tensor_bundle.cc` and
/// `tensorflow/core/lib/io/{format,block,table}.cc` (docs/formats.md section 1):
/// every block trailer's masked crc32c is checked, and each tensor's own
/// crc32c is checked when the tensor is read.
public final class TensorBundle {
    public let prefix: String
    public let indexPath: String
    /// Tensor names in table (bytewise sorted) order.
    public let names: [String]
    let entries: [String: BundleEntry]
    let numShards: Int
    let bigEndian: Bool
    private var shards: [Int: MappedFile] = [:]

    struct BundleEntry {
        var dtype: Int = 0
        var shape: [Int] = []
        var shardID: Int = 0
        var offset: Int = 0
        var size: Int = 0
        var crc32c: UInt32 = 0
        var sliced = false
    }

    /// TF `DataType` enum values the converter can read (types.proto).
    static func dtype(_ v: Int) -> (TensorDType?, String) {
        switch v {
        case 1: return (.f32, "DT_FLOAT")
        case 2: return (.f64, "DT_DOUBLE")
        case 3: return (.i32, "DT_INT32")
        case 4: return (.u8, "DT_UINT8")
        case 5: return (.i16, "DT_INT16")
        case 6: return (.i8, "DT_INT8")
        case 7: return (nil, "DT_STRING")
        case 9: return (.i64, "DT_INT64")
        case 10: return (.bool, "DT_BOOL")
        case 14: return (.bf16, "DT_BFLOAT16")
        case 19: return (.f16, "DT_HALF")
        default: return (nil, "DataType \(v)")
        }
    }

    /// `prefix` is the checkpoint prefix (`.../bert_model.ckpt`), without `.index`.
    public init(prefix: String) throws {
        self.prefix = prefix
        indexPath = prefix + ".index"
        guard FileManager.default.fileExists(atPath: indexPath) else {
            if FileManager.default.fileExists(atPath: prefix) {
                throw IOFormatError.unsupported(file: prefix, detail: "no \(prefix).index beside it: a TF V1 checkpoint, which is not supported (re-save it with TF >= 0.12)")
            }
            throw IOFormatError.unreadable(file: indexPath, reason: "no such file")
        }
        let index = try MappedFile(path: indexPath)
        let table = try SSTable(file: index)
        var names: [String] = []
        var entries: [String: BundleEntry] = [:]
        var header: (numShards: Int, bigEndian: Bool)?
        for (key, value) in table.entries {
            if key.isEmpty {
                header = try Self.decodeHeader(value, file: indexPath)
                continue
            }
            // Keys of partitioned-variable slices start with 0x00 (OrderedCode).
            if key.first == 0 { continue }
            let name = String(decoding: key, as: UTF8.self)
            let entry = try Self.decodeEntry(value, name: name, file: indexPath)
            if entries[name] == nil { names.append(name) }
            entries[name] = entry
        }
        guard let header else {
            throw IOFormatError.corrupt(file: indexPath, detail: "the table has no header entry (empty key)")
        }
        self.names = names
        self.entries = entries
        self.numShards = header.numShards
        self.bigEndian = header.bigEndian
    }

    public static func dataPath(prefix: String, shard: Int, of numShards: Int) -> String {
        func pad(_ n: Int) -> String { let s = String(n); return String(repeating: "0", count: max(0, 5 - s.count)) + s }
        return "\(prefix).data-\(pad(shard))-of-\(pad(numShards))"
    }

    private func shard(_ id: Int) throws -> MappedFile {
        if let f = shards[id] { return f }
        let path = Self.dataPath(prefix: prefix, shard: id, of: numShards)
        let f = try MappedFile(path: path)
        shards[id] = f
        return f
    }

    /// The tensor's description without reading its bytes; its checksum is
    /// verified when the converter reads it.
    public func tensor(_ name: String) throws -> CheckpointTensor {
        guard let e = entries[name] else { throw IOFormatError.missingTensor(file: indexPath, name: name) }
        let (dtype, typeName) = Self.dtype(e.dtype)
        if e.sliced {
            throw IOFormatError.unsupported(file: indexPath, detail: "tensor '\(name)' is a partitioned variable, which is not supported")
        }
        guard let dtype else {
            return CheckpointTensor(name: name, dtype: nil, typeName: typeName, shape: e.shape, file: nil,
                                    byteOffset: 0, strides: nil, bigEndian: bigEndian, check: nil)
        }
        guard let n = elementCount(e.shape) else {
            throw IOFormatError.corrupt(file: indexPath, detail: "tensor '\(name)' has an absurd shape \(e.shape)")
        }
        guard e.size == n * dtype.byteWidth else {
            throw IOFormatError.corrupt(file: indexPath, detail: "tensor '\(name)': size \(e.size) does not match shape \(e.shape) of \(typeName)")
        }
        guard e.shardID >= 0, e.shardID < numShards else {
            throw IOFormatError.corrupt(file: indexPath, detail: "tensor '\(name)' is in shard \(e.shardID) of \(numShards)")
        }
        let file = try shard(e.shardID)
        _ = try file.bytes(at: e.offset, count: e.size, what: "tensor '\(name)'")
        // TF always checks (`GetValue`); a missing field is a stored 0.
        let check = IntegrityCheck(file: file, offset: e.offset, count: e.size, kind: .crc32cMasked(e.crc32c), what: "tensor '\(name)'")
        return CheckpointTensor(name: name, dtype: dtype, typeName: typeName, shape: e.shape, file: file,
                                byteOffset: e.offset, strides: nil, bigEndian: bigEndian, check: check)
    }

    // MARK: protobuf values, decoded by hand (proto3 wire format)

    static func decodeHeader(_ bytes: [UInt8], file: String) throws -> (numShards: Int, bigEndian: Bool) {
        var numShards = 0, endianness = 0
        var r = ProtoReader(bytes: bytes, file: file, what: "BundleHeaderProto")
        while let (field, wire) = try r.nextField() {
            switch (field, wire) {
            case (1, 0): numShards = try r.int()
            case (2, 0): endianness = try r.int()
            case (3, 2):
                // VersionDef: min_consumer (field 2) above 1 means a newer
                // format than kTensorBundleVersion = 1.
                var v = ProtoReader(bytes: try r.lengthDelimited(), file: file, what: "VersionDef")
                while let (f, w) = try v.nextField() {
                    if f == 2 && w == 0 {
                        let minConsumer = try v.int()
                        guard minConsumer <= 1 else {
                            throw IOFormatError.unsupported(file: file, detail: "bundle version needs a reader of version \(minConsumer) (this one reads 1)")
                        }
                    } else { try v.skip(wire: w) }
                }
            default: try r.skip(wire: wire)
            }
        }
        guard numShards >= 1, numShards <= 100_000 else {
            throw IOFormatError.corrupt(file: file, detail: "header says \(numShards) data shards")
        }
        guard endianness == 0 || endianness == 1 else {
            throw IOFormatError.corrupt(file: file, detail: "header has endianness \(endianness)")
        }
        return (numShards, endianness == 1)
    }

    static func decodeEntry(_ bytes: [UInt8], name: String, file: String) throws -> BundleEntry {
        var e = BundleEntry()
        var r = ProtoReader(bytes: bytes, file: file, what: "entry of '\(name)'")
        while let (field, wire) = try r.nextField() {
            switch (field, wire) {
            case (1, 0): e.dtype = try r.int()
            case (2, 2): e.shape = try decodeShape(try r.lengthDelimited(), name: name, file: file)
            case (3, 0): e.shardID = try r.int()
            case (4, 0): e.offset = try r.int()
            case (5, 0): e.size = try r.int()
            case (6, 5): e.crc32c = try r.fixed32()
            case (7, 2): _ = try r.lengthDelimited(); e.sliced = true
            default: try r.skip(wire: wire)
            }
        }
        guard e.offset >= 0, e.size >= 0 else {
            throw IOFormatError.corrupt(file: file, detail: "tensor '\(name)' has offset \(e.offset) and size \(e.size)")
        }
        return e
    }

    static func decodeShape(_ bytes: [UInt8], name: String, file: String) throws -> [Int] {
        var dims: [Int] = []
        var r = ProtoReader(bytes: bytes, file: file, what: "shape of '\(name)'")
        while let (field, wire) = try r.nextField() {
            switch (field, wire) {
            case (2, 2):
                var d = ProtoReader(bytes: try r.lengthDelimited(), file: file, what: "shape of '\(name)'")
                var size = 0
                while let (f, w) = try d.nextField() {
                    if f == 1 && w == 0 { size = try d.int() } else { try d.skip(wire: w) }
                }
                guard size >= 0 else {
                    throw IOFormatError.corrupt(file: file, detail: "tensor '\(name)' has a dimension of size \(size)")
                }
                dims.append(size)
                guard dims.count <= 64 else {
                    throw IOFormatError.corrupt(file: file, detail: "tensor '\(name)' has more than 64 dimensions")
                }
            case (3, 0):
                if try r.int() != 0 {
                    throw IOFormatError.corrupt(file: file, detail: "tensor '\(name)' has an unknown rank")
                }
            default: try r.skip(wire: wire)
            }
        }
        return dims
    }
}

/// Protobuf wire-format reader over a byte array.
struct ProtoReader {
    let bytes: [UInt8]
    let file: String
    let what: String
    var pos = 0

    init(bytes: [UInt8], file: String, what: String) {
        self.bytes = bytes
        self.file = file
        self.what = what
    }

    private func bad(_ detail: String) -> IOFormatError {
        IOFormatError.corrupt(file: file, detail: "\(what): \(detail)")
    }

    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard pos < bytes.count else { throw bad("varint runs past the end") }
            let b = bytes[pos]
            pos += 1
            guard shift < 64 else { throw bad("varint longer than 10 bytes") }
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
        }
    }

    /// int32/int64 fields: plain varints, negative numbers as 10-byte two's complement.
    mutating func int() throws -> Int { Int(truncatingIfNeeded: try varint()) }

    mutating func fixed32() throws -> UInt32 {
        guard bytes.count - pos >= 4 else { throw bad("fixed32 runs past the end") }
        let v = UInt32(bytes[pos]) | UInt32(bytes[pos + 1]) << 8 | UInt32(bytes[pos + 2]) << 16 | UInt32(bytes[pos + 3]) << 24
        pos += 4
        return v
    }

    mutating func lengthDelimited() throws -> [UInt8] {
        let n = try varint()
        guard n <= UInt64(bytes.count - pos) else { throw bad("field of \(n) bytes runs past the end") }
        let out = Array(bytes[pos..<(pos + Int(n))])
        pos += Int(n)
        return out
    }

    /// The next (field number, wire type), or nil at the end.
    mutating func nextField() throws -> (Int, Int)? {
        guard pos < bytes.count else { return nil }
        let tag = try varint()
        let field = Int(truncatingIfNeeded: tag >> 3)
        guard field > 0 else { throw bad("field number 0") }
        return (field, Int(tag & 7))
    }

    mutating func skip(wire: Int) throws {
        switch wire {
        case 0: _ = try varint()
        case 1:
            guard bytes.count - pos >= 8 else { throw bad("fixed64 runs past the end") }
            pos += 8
        case 2: _ = try lengthDelimited()
        case 5: _ = try fixed32()
        default: throw bad("wire type \(wire) is not allowed")
        }
    }
}

/// The LevelDB-style table of `tensorflow::table` (`table_format.txt`): data
/// blocks, an empty metaindex block, an index block, and a 48-byte footer.
struct SSTable {
    static let magic: UInt64 = 0xDB47_7524_8B80_FB57
    static let footerLength = 48
    static let trailerLength = 5
    /// Key/value pairs of all data blocks, in table order.
    var entries: [([UInt8], [UInt8])] = []
    let file: MappedFile

    init(file: MappedFile) throws {
        self.file = file
        let path = file.path
        guard file.count >= Self.footerLength else {
            throw IOFormatError.truncated(file: path, detail: "file is too short to be an sstable (\(file.count) bytes)")
        }
        let footer = try file.bytes(at: file.count - Self.footerLength, count: Self.footerLength, what: "footer")
        guard footer.u64(40) == Self.magic else {
            throw IOFormatError.corrupt(file: path, detail: "not an sstable (bad magic number)")
        }
        var handles = ProtoReader(bytes: Array(footer[0..<40]), file: path, what: "footer")
        _ = try Self.handle(&handles) // metaindex: always empty in TF tables
        let index = try Self.handle(&handles)
        let indexBlock = try readBlock(index, what: "index block")
        for (_, value) in try Self.parseBlock(indexBlock, file: path, what: "index block") {
            var r = ProtoReader(bytes: value, file: path, what: "index entry")
            let handle = try Self.handle(&r)
            let block = try readBlock(handle, what: "data block at offset \(handle.offset)")
            entries.append(contentsOf: try Self.parseBlock(block, file: path, what: "data block at offset \(handle.offset)"))
        }
    }

    static func handle(_ r: inout ProtoReader) throws -> (offset: Int, size: Int) {
        let offset = try r.varint(), size = try r.varint()
        guard offset < 1 << 48, size < 1 << 48 else {
            throw IOFormatError.corrupt(file: r.file, detail: "block handle (\(offset), \(size)) is absurd")
        }
        return (Int(offset), Int(size))
    }

    /// The block's contents after checking the trailer (type byte + masked crc32c).
    func readBlock(_ h: (offset: Int, size: Int), what: String) throws -> [UInt8] {
        guard h.size <= Int.max - Self.trailerLength else {
            throw IOFormatError.corrupt(file: file.path, detail: "\(what) has an absurd size")
        }
        let raw = try file.bytes(at: h.offset, count: h.size + Self.trailerLength, what: what)
        let type = raw[h.size]
        let stored = raw.u32(h.size + 1)
        let actual = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<(h.size + 1)]))
        guard CRC32C.unmask(stored) == actual else {
            throw IOFormatError.corrupt(file: file.path, detail: "\(what): block checksum does not match")
        }
        let contents = UnsafeRawBufferPointer(rebasing: raw[0..<h.size])
        switch type {
        case 0: return Array(contents)
        case 1: return try Snappy.decompress(contents, file: file.path, what: what)
        default: throw IOFormatError.corrupt(file: file.path, detail: "\(what): bad block type \(type)")
        }
    }

    /// Every entry of a block, from offset 0 up to the restart array.
    static func parseBlock(_ block: [UInt8], file: String, what: String) throws -> [([UInt8], [UInt8])] {
        guard block.count >= 4 else { throw IOFormatError.corrupt(file: file, detail: "\(what) is shorter than 4 bytes") }
        let n = block.count
        let numRestarts = Int(UInt32(block[n - 4]) | UInt32(block[n - 3]) << 8 | UInt32(block[n - 2]) << 16 | UInt32(block[n - 1]) << 24)
        guard numRestarts <= (n - 4) / 4 else {
            throw IOFormatError.corrupt(file: file, detail: "\(what) claims \(numRestarts) restart points")
        }
        let restartOffset = n - 4 * (1 + numRestarts)
        var r = ProtoReader(bytes: Array(block[0..<restartOffset]), file: file, what: what)
        var out: [([UInt8], [UInt8])] = []
        var key: [UInt8] = []
        while r.pos < restartOffset {
            let shared = try r.varint(), unshared = try r.varint(), valueLength = try r.varint()
            guard shared <= UInt64(key.count) else {
                throw IOFormatError.corrupt(file: file, detail: "\(what): entry shares \(shared) bytes with a \(key.count)-byte key")
            }
            let rest = UInt64(restartOffset - r.pos)
            guard unshared <= rest, valueLength <= rest - unshared else {
                throw IOFormatError.corrupt(file: file, detail: "\(what): entry runs past the end of the block")
            }
            key.removeLast(key.count - Int(shared))
            key.append(contentsOf: r.bytes[r.pos..<(r.pos + Int(unshared))])
            r.pos += Int(unshared)
            let value = Array(r.bytes[r.pos..<(r.pos + Int(valueLength))])
            r.pos += Int(valueLength)
            out.append((key, value))
        }
        return out
    }
}

/// Snappy block decompression (`google/snappy` format_description.txt), for
/// tables written with compression on (BERT's are not; TF disables it).
enum Snappy {
    static func decompress(_ src: UnsafeRawBufferPointer, file: String, what: String) throws -> [UInt8] {
        func bad(_ d: String) -> IOFormatError { IOFormatError.corrupt(file: file, detail: "\(what): snappy: \(d)") }
        var r = ProtoReader(bytes: Array(src), file: file, what: what)
        let length = try r.varint()
        // A block never decompresses to more than ~6x... guard against absurd claims.
        guard length <= UInt64(src.count) * 64 + 64, length <= 1 << 32 else { throw bad("claims \(length) bytes") }
        var out: [UInt8] = []
        out.reserveCapacity(Int(length))
        let b = r.bytes
        var i = r.pos
        while i < b.count {
            let tag = b[i]; i += 1
            var len = 0, offset = 0
            switch tag & 3 {
            case 0:
                len = Int(tag >> 2) + 1
                if len > 60 {
                    let extra = len - 60
                    guard b.count - i >= extra else { throw bad("literal length runs past the end") }
                    var l = 0
                    for k in 0..<extra { l |= Int(b[i + k]) << (8 * k) }
                    i += extra
                    len = l + 1
                }
                guard b.count - i >= len, out.count + len <= Int(length) else { throw bad("literal runs past the end") }
                out.append(contentsOf: b[i..<(i + len)])
                i += len
                continue
            case 1:
                guard i < b.count else { throw bad("copy runs past the end") }
                len = 4 + Int((tag >> 2) & 7)
                offset = Int(tag >> 5) << 8 | Int(b[i]); i += 1
            case 2:
                guard b.count - i >= 2 else { throw bad("copy runs past the end") }
                len = 1 + Int(tag >> 2)
                offset = Int(b[i]) | Int(b[i + 1]) << 8; i += 2
            default:
                guard b.count - i >= 4 else { throw bad("copy runs past the end") }
                len = 1 + Int(tag >> 2)
                offset = Int(b[i]) | Int(b[i + 1]) << 8 | Int(b[i + 2]) << 16 | Int(b[i + 3]) << 24; i += 4
            }
            guard offset > 0, offset <= out.count, out.count + len <= Int(length) else { throw bad("bad copy offset \(offset)") }
            let start = out.count - offset
            for k in 0..<len { out.append(out[start + k]) }
        }
        guard out.count == Int(length) else { throw bad("produced \(out.count) bytes, expected \(length)") }
        return out
    }
}
