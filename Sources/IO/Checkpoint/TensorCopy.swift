import Foundation
import ModelFiles

/// Reusable buffers for whole-tensor work (transposes, strided torch views),
/// decoded chunks and bytes read from the checkpoint; grown as needed, freed
/// at the end.
final class TensorScratch {
    private var buffers: [UnsafeMutableRawPointer?] = [nil, nil, nil]
    private var capacities = [0, 0, 0]

    private func buffer(_ slot: Int, bytes: Int) -> UnsafeMutableRawPointer {
        if capacities[slot] < bytes || buffers[slot] == nil {
            buffers[slot]?.deallocate()
            buffers[slot] = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
            capacities[slot] = max(bytes, 64)
        }
        return buffers[slot]!
    }

    /// Float buffers 0 and 1.
    func floats(_ slot: Int, _ n: Int) -> UnsafeMutablePointer<Float> {
        buffer(slot, bytes: 4 * n).bindMemory(to: Float.self, capacity: n)
    }

    /// The buffer checkpoint bytes are read into.
    func raw(_ bytes: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: buffer(2, bytes: bytes), count: bytes)
    }

    deinit { for b in buffers { b?.deallocate() } }
}

/// Moves one checkpoint tensor into the safetensors writer: reads it (pread,
/// in chunks where no transpose needs the whole), checksums what it read
/// while it is in cache, decodes (F32/F16/BF16/F64, either byte order, any
/// strides), transposes TF kernels and encodes to the output type, into the
/// writer's buffers, which its own thread writes out meanwhile. A tensor
/// with nothing to convert is read straight into the writer's buffer.
enum TensorCopy {
    /// Bytes read at a time for tensors streamed without a transpose.
    static let chunkBytes = 4 << 20

    static func write(_ t: CheckpointTensor, transpose: Bool, as out: TensorDType, into w: SafeTensorsWriter,
                      scratch: TensorScratch, file: String) throws {
        guard let src = t.dtype, let mf = t.file else {
            throw IOFormatError.unsupported(file: file, detail: "tensor '\(t.name)' is \(t.typeName)")
        }
        let n = t.count
        let width = src.byteWidth
        let byteCount = n * width
        let encode = Encoder(out: out, name: t.name, file: file)
        // Checksum while reading when the tensor is exactly the checked range
        // (TF always; torch when the tensor is its whole storage); a view on
        // part of a storage has its storage checked first, through the map.
        var stream: IntegrityCheck?
        if let check = t.check, !check.claimed {
            check.claimed = true
            if t.isContiguous && check.offset == t.byteOffset && check.count == byteCount {
                stream = check
            } else {
                try check.verify()
            }
        }
        if n == 0 { return }
        guard t.isContiguous else {
            // A strided torch view: gather in logical (row-major) order.
            let gathered = scratch.floats(0, n)
            gather(t, src, from: mf.whole.baseAddress!, into: gathered)
            var result = gathered
            if transpose {
                result = scratch.floats(1, n)
                transposeF32(UnsafeRawPointer(gathered), rows: t.shape[0], cols: t.shape[1], into: result)
            }
            try encode.write(result, count: n, into: w)
            return
        }
        let what = "tensor '\(t.name)'"
        if !transpose && src == out && !t.bigEndian {
            // Nothing to convert: read straight into the writer's buffer and
            // checksum there while the bytes are in cache. (Cheaper than the
            // kernel's copy_file_range here, which measured 1.6x the time of
            // `cp` on BERT-base: tensors start at offsets that are not page
            // aligned in either file, and a separate checksum pass through the
            // map pays for page faults besides.)
            var crc: UInt32 = 0
            var i = 0
            while i < byteCount {
                let k = min(SafeTensorsWriter.chunkSize, byteCount - i)
                let dst = try w.reserve(k)
                try mf.read(at: t.byteOffset + i, into: dst, what: what)
                if let stream { crc = stream.extend(crc, UnsafeRawBufferPointer(dst)) }
                try w.commit(k)
                i += k
            }
            try stream?.verify(computed: crc)
            return
        }
        if !transpose {
            let elementsPerChunk = max(1, chunkBytes / width)
            // Decode and encode a chunk at a time: no whole-tensor buffer.
            // Float32 output is decoded straight into the writer's buffer.
            let floats = out == .f32 ? nil : scratch.floats(0, min(n, elementsPerChunk))
            var crc: UInt32 = 0
            var i = 0
            while i < n {
                let k = min(elementsPerChunk, n - i)
                let chunk = scratch.raw(k * width)
                try mf.read(at: t.byteOffset + i * width, into: chunk, what: what)
                let bytes = UnsafeRawBufferPointer(chunk)
                if let stream { crc = stream.extend(crc, bytes) }
                if let floats {
                    decode(bytes.baseAddress!, src, bigEndian: t.bigEndian, count: k, into: floats)
                    try encode.write(floats, count: k, into: w)
                } else {
                    let dst = try w.reserve(4 * k).bindMemory(to: Float.self)
                    decode(bytes.baseAddress!, src, bigEndian: t.bigEndian, count: k, into: dst.baseAddress!)
                    try w.commit(4 * k)
                }
                i += k
            }
            try stream?.verify(computed: crc)
            return
        }
        // A TF kernel [in, out] -> [out, in]: the whole tensor (at most a few MB in BERT).
        let chunk = scratch.raw(byteCount)
        try mf.read(at: t.byteOffset, into: chunk, what: what)
        let raw = UnsafeRawBufferPointer(chunk)
        if let stream { try stream.verify(computed: stream.extend(0, raw)) }
        let (rows, cols) = (t.shape[0], t.shape[1])
        var floats = UnsafeRawPointer(raw.baseAddress!)
        if src != .f32 || t.bigEndian {
            let decoded = scratch.floats(0, n)
            decode(raw.baseAddress!, src, bigEndian: t.bigEndian, count: n, into: decoded)
            floats = UnsafeRawPointer(decoded)
        }
        if out == .f32 {
            // Straight into the writer's buffer: no copy between here and the file.
            let dst = try w.reserve(4 * n).bindMemory(to: Float.self)
            transposeF32(floats, rows: rows, cols: cols, into: dst.baseAddress!)
            try w.commit(4 * n)
        } else {
            // Bands of output rows, each transposed into a buffer that stays
            // in cache and encoded from there: one pass over memory, not two.
            let band = 64
            let transposed = scratch.floats(1, min(cols, band) * rows)
            var j0 = 0
            while j0 < cols {
                let j1 = min(j0 + band, cols)
                transposeF32(floats, rows: rows, cols: cols, columns: j0..<j1, into: transposed)
                try encode.write(transposed, count: (j1 - j0) * rows, into: w)
                j0 = j1
            }
        }
    }

    /// Row-major `[rows, cols]` float32 (little-endian host, maybe unaligned)
    /// into `[cols, rows]`. Bands of 8 source rows by 64 columns; each step
    /// loads 4 columns of 8 rows and stores them as 4 runs of 8 output floats
    /// (about 5x faster than an element-wise blocked loop). Wrapping
    /// arithmetic: the caller's sizes are bounded.
    /// `columns` (default all) picks the source columns, i.e. the output
    /// rows, to write: `dst` then holds output rows `columns` from its start.
    static func transposeF32(_ src: UnsafeRawPointer, rows: Int, cols: Int, columns: Range<Int>? = nil,
                             into out: UnsafeMutablePointer<Float>) {
        let rowStride = cols &* 4, outStride = rows &* 4
        let columns = columns ?? 0..<cols
        let dst = out - columns.lowerBound &* rows  // output row j at dst + j·rows
        var j0 = columns.lowerBound
        while j0 < columns.upperBound {
            let j1 = min(j0 &+ 64, columns.upperBound)
            var i = 0
            while i &+ 8 <= rows {
                var j = j0
                while j &+ 4 <= j1 {
                    let p = src + (i &* cols &+ j) &* 4
                    let r0 = p.loadUnaligned(as: SIMD4<Float>.self)
                    let r1 = (p + rowStride).loadUnaligned(as: SIMD4<Float>.self)
                    let r2 = (p + 2 &* rowStride).loadUnaligned(as: SIMD4<Float>.self)
                    let r3 = (p + 3 &* rowStride).loadUnaligned(as: SIMD4<Float>.self)
                    let r4 = (p + 4 &* rowStride).loadUnaligned(as: SIMD4<Float>.self)
                    let r5 = (p + 5 &* rowStride).loadUnaligned(as: SIMD4<Float>.self)
                    let r6 = (p + 6 &* rowStride).loadUnaligned(as: SIMD4<Float>.self)
                    let r7 = (p + 7 &* rowStride).loadUnaligned(as: SIMD4<Float>.self)
                    let d = UnsafeMutableRawPointer(dst + (j &* rows &+ i))
                    d.storeBytes(of: SIMD8<Float>(r0[0], r1[0], r2[0], r3[0], r4[0], r5[0], r6[0], r7[0]), as: SIMD8<Float>.self)
                    (d + outStride).storeBytes(of: SIMD8<Float>(r0[1], r1[1], r2[1], r3[1], r4[1], r5[1], r6[1], r7[1]), as: SIMD8<Float>.self)
                    (d + 2 &* outStride).storeBytes(of: SIMD8<Float>(r0[2], r1[2], r2[2], r3[2], r4[2], r5[2], r6[2], r7[2]), as: SIMD8<Float>.self)
                    (d + 3 &* outStride).storeBytes(of: SIMD8<Float>(r0[3], r1[3], r2[3], r3[3], r4[3], r5[3], r6[3], r7[3]), as: SIMD8<Float>.self)
                    j &+= 4
                }
                while j < j1 {
                    for k in 0..<8 { dst[j &* rows &+ i &+ k] = (src + ((i &+ k) &* cols &+ j) &* 4).loadUnaligned(as: Float.self) }
                    j &+= 1
                }
                i &+= 8
            }
            while i < rows {
                for j in j0..<j1 { dst[j &* rows &+ i] = (src + (i &* cols &+ j) &* 4).loadUnaligned(as: Float.self) }
                i &+= 1
            }
            j0 = j1
        }
    }

    static func decode(_ raw: UnsafeRawPointer, _ dtype: TensorDType, bigEndian: Bool, count n: Int, into dst: UnsafeMutablePointer<Float>) {
        switch (dtype, bigEndian) {
        case (.f32, false):
            for i in 0..<n { dst[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case (.f32, true):
            for i in 0..<n { dst[i] = Float(bitPattern: UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case (.f16, false):
            HalfFloat.toFloat(raw, count: n, into: dst)
        case (.f16, true):
            for i in 0..<n {
                let v = raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                dst[i] = HalfFloat.toFloat(UInt16(bigEndian: v))
            }
        case (.bf16, _):
            for i in 0..<n {
                let v = raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                dst[i] = Float(bitPattern: UInt32(bigEndian ? UInt16(bigEndian: v) : UInt16(littleEndian: v)) << 16)
            }
        case (.f64, _):
            for i in 0..<n {
                let v = raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)
                dst[i] = Float(Double(bitPattern: bigEndian ? UInt64(bigEndian: v) : UInt64(littleEndian: v)))
            }
        default:
            preconditionFailure("decode of \(dtype) is checked out before")
        }
    }

    /// Walks a strided view element by element (odometer over the shape).
    static func gather(_ t: CheckpointTensor, _ dtype: TensorDType, from base: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>) {
        let n = t.count
        guard n > 0, let strides = t.strides else { return }
        let rank = t.shape.count
        var index = [Int](repeating: 0, count: rank)
        var element = 0 // offset in elements from element [0, ..., 0]
        let width = dtype.byteWidth
        for k in 0..<n {
            decode(base + t.byteOffset + element * width, dtype, bigEndian: t.bigEndian, count: 1, into: dst + k)
            var d = rank - 1
            while d >= 0 {
                index[d] += 1
                element += strides[d]
                if index[d] < t.shape[d] { break }
                element -= strides[d] * index[d]
                index[d] = 0
                d -= 1
            }
        }
    }

    /// Float32 into the output element type, through the writer's buffer.
    struct Encoder {
        let out: TensorDType
        let name: String
        let file: String

        func write(_ src: UnsafeMutablePointer<Float>, count n: Int, into w: SafeTensorsWriter) throws {
            if out == .f32 {
                try w.append(UnsafeRawBufferPointer(start: src, count: 4 * n))
                return
            }
            let chunk = SafeTensorsWriter.chunkSize / 2
            var i = 0
            while i < n {
                let k = min(chunk, n - i)
                let dst = try w.reserve(2 * k)
                var overflow = false
                if out == .f16 {
                    overflow = HalfFloat.fromFloat(src + i, count: k, into: dst.baseAddress!)
                } else {
                    for j in 0..<k { dst.storeBytes(of: Self.bfloat16(src[i + j]).littleEndian, toByteOffset: 2 * j, as: UInt16.self) }
                }
                if overflow {
                    throw IOFormatError.unsupported(file: file, detail: "tensor '\(name)' has values beyond the float16 range (65504); use --dtype f32")
                }
                try w.commit(2 * k)
                i += k
            }
        }

        /// Round to nearest even, keeping NaN a NaN.
        static func bfloat16(_ f: Float) -> UInt16 {
            let x = f.bitPattern
            if f.isNaN { return UInt16(x >> 16) | 0x40 }
            let rounded = x &+ 0x7FFF &+ ((x >> 16) & 1)
            return UInt16(rounded >> 16)
        }
    }
}
