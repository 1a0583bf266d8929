import Foundation

/// Element types a model directory may hold (docs/CONTRACT.md section 1).
public enum TensorDType: String, Sendable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16"
    case f64 = "F64", i64 = "I64", i32 = "I32", u8 = "U8", i8 = "I8", i16 = "I16", bool = "BOOL"

    public var byteWidth: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .u8, .i8, .bool: return 1
        }
    }
}

/// One tensor's place in a safetensors file.
public struct TensorInfo: Sendable {
    public let name: String
    public let dtype: TensorDType
    public let shape: [Int]
    /// Byte range inside the data section (after the 8-byte length and the header).
    public let begin: Int
    public let end: Int
    public var count: Int { shape.reduce(1, *) }
}

/// A read-only safetensors file, memory-mapped (`MappedFile`). Layout: u64 LE header length N,
/// N bytes of JSON `{name: {dtype, shape, data_offsets: [b, e]}, "__metadata__": {...}}`,
/// then the data. Validation follows the reference reader (`Metadata::validate`):
/// contiguous, non-overlapping ranges that exactly fill the file.
public final class SafeTensorsFile: @unchecked Sendable {
    public let url: URL
    public let tensors: [String: TensorInfo]
    public let metadata: [String: String]
    private let mapped: MappedFile
    private let dataStart: Int

    public init(url: URL) throws {
        self.url = url
        let file = url.path
        let mapped = try MappedFile(path: file)
        let data = mapped.whole
        guard data.count >= 8 else { throw IOFormatError.truncated(file: file, detail: "shorter than the 8-byte header length") }
        let headerLength = data.u64(0)
        guard headerLength <= UInt64(data.count - 8), headerLength <= 100_000_000 else {
            throw IOFormatError.corrupt(file: file, detail: "header length \(headerLength) runs past the end of the file (\(data.count) bytes)")
        }
        let headerEnd = 8 + Int(headerLength)
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(data[8..<headerEnd]))
        } catch {
            throw IOFormatError.corrupt(file: file, detail: "header is not valid JSON")
        }
        guard let object = json as? [String: Any] else {
            throw IOFormatError.corrupt(file: file, detail: "header is not a JSON object")
        }
        var tensors: [String: TensorInfo] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in object {
            if name == "__metadata__" {
                if let m = value as? [String: Any] {
                    for (k, v) in m { if let s = v as? String { metadata[k] = s } }
                }
                continue
            }
            guard let entry = value as? [String: Any],
                  let dtypeName = entry["dtype"] as? String,
                  let shapeAny = entry["shape"] as? [Any],
                  let offsetsAny = entry["data_offsets"] as? [Any], offsetsAny.count == 2 else {
                throw IOFormatError.corrupt(file: file, detail: "tensor '\(name)' lacks dtype, shape or data_offsets")
            }
            guard let dtype = TensorDType(rawValue: dtypeName) else {
                throw IOFormatError.unsupported(file: file, detail: "tensor '\(name)' has dtype \(dtypeName)")
            }
            let shape = try shapeAny.map { v -> Int in
                guard let n = (v as? NSNumber)?.intValue, n >= 0, n < 1 << 40 else {
                    throw IOFormatError.corrupt(file: file, detail: "tensor '\(name)' has a bad shape")
                }
                return n
            }
            let offsets = try offsetsAny.map { v -> Int in
                guard let n = (v as? NSNumber)?.intValue, n >= 0 else {
                    throw IOFormatError.corrupt(file: file, detail: "tensor '\(name)' has bad data_offsets")
                }
                return n
            }
            var count = 1
            for d in shape {
                let (p, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow, p < 1 << 40 else { throw IOFormatError.corrupt(file: file, detail: "tensor '\(name)' has an absurd size") }
                count = p
            }
            guard offsets[1] >= offsets[0], offsets[1] - offsets[0] == count * dtype.byteWidth else {
                throw IOFormatError.corrupt(file: file, detail: "tensor '\(name)': data_offsets \(offsets) do not match shape \(shape) of \(dtypeName)")
            }
            tensors[name] = TensorInfo(name: name, dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1])
        }
        // Ranges must tile the data section exactly.
        var expected = 0
        for t in tensors.values.sorted(by: { ($0.begin, $0.end) < ($1.begin, $1.end) }) {
            guard t.begin == expected else {
                throw IOFormatError.corrupt(file: file, detail: "tensor '\(t.name)' starts at \(t.begin), expected \(expected) (gap or overlap)")
            }
            expected = t.end
        }
        guard headerEnd + expected == data.count else {
            throw IOFormatError.corrupt(file: file, detail: "data section is \(data.count - headerEnd) bytes, tensors declare \(expected)")
        }
        self.mapped = mapped
        self.dataStart = headerEnd
        self.tensors = tensors
        self.metadata = metadata
    }

    /// Raw bytes of one tensor (borrowed from the mapping).
    public func withBytes<R>(of info: TensorInfo, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(rebasing: mapped.whole[(dataStart + info.begin)..<(dataStart + info.end)]))
    }

    /// The tensor's values as float32 (F32, F16 and BF16 sources).
    public func floats(_ name: String) throws -> [Float] {
        guard let info = tensors[name] else { throw IOFormatError.missingTensor(file: url.path, name: name) }
        return try floats(info)
    }

    public func floats(_ info: TensorInfo) throws -> [Float] {
        try [Float](unsafeUninitializedCapacity: info.count) { buf, count in
            if let base = buf.baseAddress { try read(info, into: base) }
            count = info.count
        }
    }

    /// Decodes the tensor into `dst` (room for `info.count` floats) as float32,
    /// then drops its pages from this process: loading a model this way holds
    /// each weight once (in the caller's buffer), not twice.
    public func read(_ info: TensorInfo, into dst: UnsafeMutablePointer<Float>) throws {
        let n = info.count
        try withBytes(of: info) { raw in
            switch info.dtype {
            case .f32:
                for i in 0..<n { dst[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
            case .f16:
                if n > 0 { HalfFloat.toFloat(raw.baseAddress!, count: n, into: dst) }
            case .bf16:
                for i in 0..<n { dst[i] = Float(bitPattern: UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16) }
            default:
                throw IOFormatError.unsupported(file: url.path, detail: "tensor '\(info.name)' is \(info.dtype.rawValue), expected F32, F16 or BF16")
            }
        }
        mapped.release(offset: dataStart + info.begin, count: info.end - info.begin)
    }
}

/// IEEE binary16 <-> binary32, by hand (Float16 is not available everywhere).
public enum HalfFloat {
    @inline(__always)
    public static func toFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exp = UInt32(h >> 10) & 0x1F
        let mant = UInt32(h & 0x3FF)
        if exp == 0 {
            if mant == 0 { return Float(bitPattern: sign) }
            // subnormal: value = mant * 2^-24
            let v = Float(mant) * Float(bitPattern: 0x3380_0000) // 2^-24
            return sign != 0 ? -v : v
        }
        if exp == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)) }
        return Float(bitPattern: sign | ((exp + 112) << 23) | (mant << 13))
    }

    /// `n` little-endian halves at `src` (any alignment) into floats, with no
    /// branches (bits moved into place and rebiased; subnormals through one
    /// float subtraction), so that the compiler vectorizes the loop (about
    /// 0.4 ns a value here); same results as `toFloat(_:)`.
    public static func toFloat(_ src: UnsafeRawPointer, count n: Int, into dst: UnsafeMutablePointer<Float>) {
        for i in 0..<n {
            let h = UInt32(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 &* i, as: UInt16.self)))
            let em = (h & 0x7FFF) &<< 13
            let exp = h & 0x7C00
            var bits = em &+ (112 << 23) // rebias 15 -> 127
            bits = exp == 0x7C00 ? bits &+ (112 << 23) : bits // inf, NaN: exponent 255
            // exponent 0: (1.m x 2^-14) - 2^-14 = 0.m x 2^-14, exactly.
            let sub = (Float(bitPattern: em &+ (113 << 23)) - Float(bitPattern: 113 << 23)).bitPattern
            bits = exp == 0 ? sub : bits
            dst[i] = Float(bitPattern: bits | (h & 0x8000) &<< 16)
        }
    }

    /// `n` floats into little-endian halves at `dst` (any alignment), with no
    /// branches so that the compiler vectorizes the loop; same results as
    /// `fromFloat(_:)`. Returns true when a finite value was too large for a
    /// half (became infinity).
    public static func fromFloat(_ src: UnsafePointer<Float>, count n: Int, into dst: UnsafeMutableRawPointer) -> Bool {
        var overflowed: UInt32 = 0
        for i in 0..<n {
            let x = src[i].bitPattern
            let a = x & 0x7FFF_FFFF
            // Normal: rebias 127 -> 15, round the 13 dropped bits to nearest even.
            var o = (a &- 0x3800_0000 &+ 0xFFF &+ ((a &>> 13) & 1)) &>> 13
            // Below 2^-14: adding 0.5 (whose ulp, 2^-24, is a subnormal half's
            // unit) rounds to nearest even into the low bits.
            let sub = (Float(bitPattern: a) + 0.5).bitPattern &- 0x3F00_0000
            o = a < 0x3880_0000 ? sub : o
            let big = a >= 0x477F_F000 // rounds to >= 65520
            o = big ? 0x7C00 : o
            o = a > 0x7F80_0000 ? 0x7E00 : o // NaN
            overflowed |= big && a < 0x7F80_0000 ? 1 : 0
            (dst + 2 &* i).storeBytes(of: UInt16(truncatingIfNeeded: o | (x &>> 16) & 0x8000).littleEndian, as: UInt16.self)
        }
        return overflowed != 0
    }

    /// Round to nearest even, as torch's `.half()` does.
    public static func fromFloat(_ f: Float) -> UInt16 {
        let x = f.bitPattern
        let sign = UInt16((x >> 16) & 0x8000)
        let absBits = x & 0x7FFF_FFFF
        if absBits >= 0x7F80_0000 { // inf or nan
            return sign | 0x7C00 | (absBits > 0x7F80_0000 ? 0x200 : 0)
        }
        if absBits >= 0x477F_F000 { return sign | 0x7C00 } // rounds to >= 65520: inf
        if absBits < 0x3880_0000 { // below 2^-14: subnormal half
            let v = Float(bitPattern: absBits) * Float(1 << 24) // in units of 2^-24
            let r = v.rounded(.toNearestOrEven)
            return sign | UInt16(r)
        }
        var bits = absBits - 0x3800_0000 // rebias exponent 127 -> 15
        let roundBit: UInt32 = 1 << 12
        let lower = bits & 0x1FFF
        bits >>= 13
        if lower > roundBit || (lower == roundBit && (bits & 1) == 1) { bits += 1 }
        return sign | UInt16(bits)
    }
}
