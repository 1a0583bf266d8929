/// One tensor as a checkpoint stores it: its element type, shape and where its
/// bytes lie in a memory-mapped file. Nothing is read until the converter asks.
public struct CheckpointTensor: @unchecked Sendable {
    /// The name in the checkpoint (`bert/encoder/layer_0/...` or `bert.encoder.layer.0...`).
    public let name: String
    /// nil for element types the converter does not handle (strings, complex, ...);
    /// `typeName` then says what it is.
    public let dtype: TensorDType?
    public let typeName: String
    public let shape: [Int]
    /// The file holding the bytes (kept alive by this value) and the byte offset
    /// of element [0, ..., 0] in it.
    let file: MappedFile?
    let byteOffset: Int
    /// Element strides, outermost first; nil means contiguous row-major.
    let strides: [Int]?
    let bigEndian: Bool
    /// Verifies the bytes the tensor is read from (a checksum), once.
    let check: IntegrityCheck?

    public var count: Int { shape.reduce(1, *) }

    /// Row-major with no gaps (strides of size-1 dimensions do not matter).
    var isContiguous: Bool {
        guard let strides else { return true }
        var expected = 1
        for k in stride(from: shape.count - 1, through: 0, by: -1) {
            if shape[k] != 1 && strides[k] != expected { return false }
            expected *= shape[k]
        }
        return true
    }
}

/// A checksum over a byte range that is verified at most once, however many
/// tensors share the range (tied tensors in torch files share one storage).
final class IntegrityCheck {
    enum Kind {
        /// TensorBundle: masked crc32c over the range.
        case crc32cMasked(UInt32)
        /// zip entry: IEEE crc-32 over the range.
        case crc32(UInt32)
    }
    let file: MappedFile
    let offset: Int
    let count: Int
    let kind: Kind
    let what: String
    private var verified = false

    init(file: MappedFile, offset: Int, count: Int, kind: Kind, what: String) {
        self.file = file
        self.offset = offset
        self.count = count
        self.kind = kind
        self.what = what
    }

    /// Set by the converter when it has taken charge of this check (verified
    /// it, or is checksumming the bytes as it reads them).
    var claimed = false

    /// Checksums the range through the mapping (for views that cover only part of it).
    func verify() throws {
        if verified { return }
        let bytes = try file.bytes(at: offset, count: count, what: what)
        defer { file.release(offset: offset, count: count) }
        try verify(computed: extend(0, bytes))
    }

    /// Continues this check's checksum over more bytes of the range.
    func extend(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        switch kind {
        case .crc32cMasked: return CRC32C.extend(crc, bytes)
        case .crc32: return CRC32.extend(crc, bytes)
        }
    }

    /// Compares a checksum computed over the whole range (by a caller that
    /// streamed it) with the stored one.
    func verify(computed actual: UInt32) throws {
        switch kind {
        case let .crc32cMasked(stored):
            guard actual == CRC32C.unmask(stored) else {
                throw IOFormatError.corrupt(file: file.path, detail: "\(what): checksum does not match (crc32c 0x\(hex(actual)), expected 0x\(hex(CRC32C.unmask(stored))))")
            }
        case let .crc32(stored):
            guard actual == stored else {
                throw IOFormatError.corrupt(file: file.path, detail: "\(what): checksum does not match (crc-32 0x\(hex(actual)), expected 0x\(hex(stored)))")
            }
        }
        verified = true
    }
}

func hex(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: max(0, 8 - s.count)) + s
}

/// Multiplies dimensions, refusing negative ones and products beyond 2^40
/// elements (no real checkpoint comes near; a corrupt one easily does).
func elementCount(_ shape: [Int]) -> Int? {
    var n = 1
    for d in shape {
        guard d >= 0 else { return nil }
        let (p, overflow) = n.multipliedReportingOverflow(by: d)
        guard !overflow, p <= 1 << 40 else { return nil }
        n = p
    }
    return n
}
