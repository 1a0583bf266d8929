import Foundation
import XCTest
@testable import IO

/// Paths and helpers shared by the checkpoint tests.
enum TestPaths {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let tiny = fixtures.appendingPathComponent("tiny-bert")

    /// A fresh empty folder under the system temporary directory.
    static func scratch(_ name: String = #function) throws -> URL {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("convert-tests-\(safe)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Reads a model.safetensors into name -> float values (for comparisons).
func loadFloats(_ url: URL) throws -> [String: (shape: [Int], values: [Float])] {
    let f = try SafeTensorsFile(url: url)
    var out: [String: ([Int], [Float])] = [:]
    for (name, info) in f.tensors { out[name] = (info.shape, try f.floats(info)) }
    return out
}

/// Writes TensorFlow V2 checkpoints (TensorBundle) the way TF's
/// `BundleWriter` + `TableBuilder` do, for tests: sorted keys, the header
/// under "", data blocks with prefix compression and restart points, an
/// empty metaindex block, an index block, the footer, masked crc32c in every
/// block trailer and entry.
struct TFBundleBuilder {
    struct Tensor {
        var name: String
        var dtype: Int          // TF DataType enum: 1 float, 9 int64, 14 bfloat16, 19 half
        var shape: [Int]
        var bytes: [UInt8]
        /// Test hooks: override what the entry says.
        var offsetOverride: Int?
        var sizeOverride: Int?
        var crcOverride: UInt32?
    }

    var tensors: [Tensor] = []
    var bigEndian = false
    var blockSize = 262_144
    var restartInterval = 16
    /// Compress data blocks with (literal-only) snappy.
    var snappy = false

    static func float32(_ name: String, _ shape: [Int], _ values: [Float]) -> Tensor {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(values.count * 4)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        return Tensor(name: name, dtype: 1, shape: shape, bytes: bytes)
    }

    /// Writes `prefix.index` and `prefix.data-00000-of-00001`.
    func write(prefix: String) throws {
        var data: [UInt8] = []
        var entries: [([UInt8], [UInt8])] = []
        for t in tensors.sorted(by: { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }) {
            let offset = data.count
            data.append(contentsOf: t.bytes)
            var e: [UInt8] = []
            Self.field(&e, 1, varint: UInt64(t.dtype))
            var shape: [UInt8] = []
            for d in t.shape {
                var dim: [UInt8] = []
                Self.field(&dim, 1, varint: UInt64(d))
                Self.field(&shape, 2, bytes: dim)
            }
            Self.field(&e, 2, bytes: shape)
            let off = t.offsetOverride ?? offset
            if off != 0 { Self.field(&e, 4, varint: UInt64(bitPattern: Int64(off))) }
            let size = t.sizeOverride ?? t.bytes.count
            if size != 0 { Self.field(&e, 5, varint: UInt64(bitPattern: Int64(size))) }
            let crc = t.crcOverride ?? CRC32C.mask(CRC32C.checksum(t.bytes))
            e.append(0x35)
            withUnsafeBytes(of: crc.littleEndian) { e.append(contentsOf: $0) }
            entries.append((Array(t.name.utf8), e))
        }
        var header: [UInt8] = []
        Self.field(&header, 1, varint: 1)
        if bigEndian { Self.field(&header, 2, varint: 1) }
        Self.field(&header, 3, bytes: [0x08, 0x01])
        entries.insert(([], header), at: 0)

        var file: [UInt8] = []
        var index: [([UInt8], [UInt8])] = []
        var i = 0
        while i < entries.count {
            var block = BlockBuilder(restartInterval: restartInterval)
            var last: [UInt8] = []
            repeat {
                block.add(entries[i].0, entries[i].1)
                last = entries[i].0
                i += 1
            } while i < entries.count && block.size < blockSize
            let handle = appendBlock(&file, block.finish(), compress: snappy)
            // The index key only needs to be >= the block's last key and < the next block's first.
            index.append((last + [0xFF], handle))
        }
        let meta = appendBlock(&file, BlockBuilder(restartInterval: 16).finish(), compress: false)
        var indexBlock = BlockBuilder(restartInterval: 1)
        for (k, v) in index { indexBlock.add(k, v) }
        let indexHandle = appendBlock(&file, indexBlock.finish(), compress: false)
        var footer = meta + indexHandle
        footer += [UInt8](repeating: 0, count: 40 - footer.count)
        withUnsafeBytes(of: SSTable.magic.littleEndian) { footer.append(contentsOf: $0) }
        file += footer
        try Data(file).write(to: URL(fileURLWithPath: prefix + ".index"))
        try Data(data).write(to: URL(fileURLWithPath: prefix + ".data-00000-of-00001"))
    }

    private func appendBlock(_ file: inout [UInt8], _ contents: [UInt8], compress: Bool) -> [UInt8] {
        let offset = file.count
        var stored = contents
        if compress {
            // Snappy with literals only: a valid stream any decoder must accept.
            stored = []
            Self.varint(&stored, UInt64(contents.count))
            var p = 0
            while p < contents.count {
                let n = min(60, contents.count - p)
                stored.append(UInt8((n - 1) << 2))
                stored += contents[p..<(p + n)]
                p += n
            }
        }
        let type: UInt8 = compress ? 1 : 0
        file += stored
        file.append(type)
        let crc = CRC32C.mask(CRC32C.checksum(stored + [type]))
        withUnsafeBytes(of: crc.littleEndian) { file.append(contentsOf: $0) }
        var handle: [UInt8] = []
        Self.varint(&handle, UInt64(offset))
        Self.varint(&handle, UInt64(stored.count))
        return handle
    }

    struct BlockBuilder {
        let restartInterval: Int
        var buffer: [UInt8] = []
        var restarts: [UInt32] = [0]
        var counter = 0
        var lastKey: [UInt8] = []
        var size: Int { buffer.count + 4 * restarts.count + 4 }

        init(restartInterval: Int) { self.restartInterval = restartInterval }

        mutating func add(_ key: [UInt8], _ value: [UInt8]) {
            var shared = 0
            if counter < restartInterval {
                while shared < min(lastKey.count, key.count) && lastKey[shared] == key[shared] { shared += 1 }
            } else {
                restarts.append(UInt32(buffer.count))
                counter = 0
            }
            TFBundleBuilder.varint(&buffer, UInt64(shared))
            TFBundleBuilder.varint(&buffer, UInt64(key.count - shared))
            TFBundleBuilder.varint(&buffer, UInt64(value.count))
            buffer += key[shared...]
            buffer += value
            lastKey = key
            counter += 1
        }

        func finish() -> [UInt8] {
            var out = buffer
            for r in restarts { withUnsafeBytes(of: r.littleEndian) { out.append(contentsOf: $0) } }
            withUnsafeBytes(of: UInt32(restarts.count).littleEndian) { out.append(contentsOf: $0) }
            return out
        }
    }

    static func varint(_ out: inout [UInt8], _ v: UInt64) {
        var v = v
        while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        out.append(UInt8(v))
    }
    static func field(_ out: inout [UInt8], _ number: Int, varint v: UInt64) {
        varint(&out, UInt64(number << 3))
        varint(&out, v)
    }
    static func field(_ out: inout [UInt8], _ number: Int, bytes b: [UInt8]) {
        varint(&out, UInt64(number << 3 | 2))
        varint(&out, UInt64(b.count))
        out += b
    }
}

/// Writes stored-only zip archives shaped like torch.save's: local headers
/// with zero sizes and an "FB" padding extra field aligning data to 64 bytes,
/// sizes in the central directory, optionally everything through ZIP64.
struct ZipBuilder {
    var entries: [(String, [UInt8])] = []
    var zip64 = false

    func build() -> [UInt8] {
        var out: [UInt8] = []
        var central: [UInt8] = []
        func u16(_ a: inout [UInt8], _ v: Int) { a += [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
        func u32(_ a: inout [UInt8], _ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { a += $0 } }
        func u64(_ a: inout [UInt8], _ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { a += $0 } }
        for (name, data) in entries {
            let local = out.count
            let nameBytes = Array(name.utf8)
            let base = local + 30 + nameBytes.count + 4
            let pad = (64 - base % 64) % 64
            u32(&out, 0x0403_4B50); u16(&out, 20); u16(&out, 0x0808); u16(&out, 0); u16(&out, 0); u16(&out, 0)
            u32(&out, 0); u32(&out, 0); u32(&out, 0)
            u16(&out, nameBytes.count); u16(&out, 4 + pad)
            out += nameBytes
            u16(&out, 0x4246); u16(&out, pad); out += [UInt8](repeating: 0x5A, count: pad)
            out += data
            let crc = CRC32.checksum(data)
            u32(&out, 0x0807_4B50); u32(&out, crc); u32(&out, UInt32(data.count)); u32(&out, UInt32(data.count))
            u32(&central, 0x0201_4B50); u16(&central, 45); u16(&central, 45); u16(&central, 0x0808); u16(&central, 0)
            u16(&central, 0); u16(&central, 0); u32(&central, crc)
            if zip64 {
                u32(&central, 0xFFFF_FFFF); u32(&central, 0xFFFF_FFFF)
                u16(&central, nameBytes.count); u16(&central, 28); u16(&central, 0)
                u16(&central, 0); u16(&central, 0); u32(&central, 0); u32(&central, 0xFFFF_FFFF)
                central += nameBytes
                u16(&central, 1); u16(&central, 24)
                u64(&central, UInt64(data.count)); u64(&central, UInt64(data.count)); u64(&central, UInt64(local))
            } else {
                u32(&central, UInt32(data.count)); u32(&central, UInt32(data.count))
                u16(&central, nameBytes.count); u16(&central, 0); u16(&central, 0)
                u16(&central, 0); u16(&central, 0); u32(&central, 0); u32(&central, UInt32(local))
                central += nameBytes
            }
        }
        let cdOffset = out.count
        out += central
        let z64 = out.count
        u32(&out, 0x0606_4B50); u64(&out, 44); u16(&out, 45); u16(&out, 45); u32(&out, 0); u32(&out, 0)
        u64(&out, UInt64(entries.count)); u64(&out, UInt64(entries.count)); u64(&out, UInt64(central.count)); u64(&out, UInt64(cdOffset))
        u32(&out, 0x0706_4B50); u32(&out, 0); u64(&out, UInt64(z64)); u32(&out, 1)
        u32(&out, 0x0605_4B50); u16(&out, 0); u16(&out, 0)
        if zip64 {
            u16(&out, 0xFFFF); u16(&out, 0xFFFF); u32(&out, 0xFFFF_FFFF); u32(&out, 0xFFFF_FFFF)
        } else {
            u16(&out, entries.count); u16(&out, entries.count); u32(&out, UInt32(central.count)); u32(&out, UInt32(cdOffset))
        }
        u16(&out, 0)
        return out
    }
}

/// Small pickles written by hand, for the refusal tests.
enum PickleBytes {
    static func unicode(_ s: String) -> [UInt8] {
        let b = Array(s.utf8)
        var out: [UInt8] = [0x58]
        withUnsafeBytes(of: UInt32(b.count).littleEndian) { out += $0 }
        return out + b
    }

    static func global(_ module: String, _ name: String) -> [UInt8] {
        [0x63] + Array("\(module)\n\(name)\n".utf8)
    }

    /// `{'w': module.name('echo pwned')}`: a call of an arbitrary global.
    static func calling(_ module: String, _ name: String) -> [UInt8] {
        [0x80, 0x02, 0x7D, 0x28] + unicode("w") + global(module, name) + unicode("echo pwned") + [0x85, 0x52, 0x75, 0x2E]
    }
}
