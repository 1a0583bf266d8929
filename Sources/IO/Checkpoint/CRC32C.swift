import CIsal

/// The two CRC-32 flavours checkpoints carry, computed by Intel ISA-L, which
/// picks at run time the fastest code the processor allows (the SSE4.2 crc32
/// instruction, carry-less multiply folding, AVX-512) so that checking a
/// checkpoint keeps up with copying it (through the wrappers in
/// Sources/CIsal/shim.h, which clear the AVX upper state ISA-L leaves dirty):
/// - `CRC32C`: Castagnoli (reflected 0x82F63B78), used by TensorFlow's
///   TensorBundle for block trailers and tensor data, with TF's masking
///   (`tensorflow/core/lib/hash/crc32c.h`).
/// - `CRC32`: IEEE / zlib (reflected 0xEDB88320), used by zip entries.
///
/// Both start from 0 and `extend` chains: `extend(extend(0, a), b) == checksum(a ++ b)`.
public enum CRC32C {
    static let maskDelta: UInt32 = 0xA282_EAD8

    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 { extend(0, bytes) }
    public static func checksum(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { extend(0, $0) } }

    public static func extend(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress else { return crc }
        // ISA-L's iSCSI CRC works on the raw register (no inversion in or out)
        // and takes an Int32 length.
        let p = base.assumingMemoryBound(to: UInt8.self)
        var c = ~crc
        var done = 0
        while done < bytes.count {
            let k = min(bytes.count - done, 1 << 30)
            c = bertlrp_crc32c_raw(c, p + done, Int32(k))
            done += k
        }
        return ~c
    }

    /// TF's `crc32c::Mask`: rotate right by 15 bits and add a constant, so that
    /// a CRC stored inside CRC'd data does not cancel out.
    public static func mask(_ crc: UInt32) -> UInt32 { ((crc >> 15) | (crc << 17)) &+ maskDelta }

    public static func unmask(_ masked: UInt32) -> UInt32 {
        let rot = masked &- maskDelta
        return (rot >> 17) | (rot << 15)
    }
}

public enum CRC32 {
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 { extend(0, bytes) }
    public static func checksum(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { extend(0, $0) } }

    /// zlib's `crc32(crc, buf, len)`.
    public static func extend(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress else { return crc }
        return bertlrp_crc32(crc, base.assumingMemoryBound(to: UInt8.self), UInt64(bytes.count))
    }
}
