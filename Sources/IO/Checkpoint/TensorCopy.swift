/// Reusable float buffers for the conversions that need a whole tensor
/// (transposes, strided torch views); grown as needed, freed at the end.
final class TensorScratch {
    private var buffers: [UnsafeMutablePointer<Float>?] = [nil, nil]
    private var capacities = [0, 0]

    func floats(_ slot: Int, _ n: Int) -> UnsafeMutablePointer<Float> {
        if capacities[slot] < n || buffers[slot] == nil {
            buffers[slot]?.deallocate()
            buffers[slot] = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
            capacities[slot] = max(n, 1)
        }
        return buffers[slot]!
    }

    deinit { for b in buffers { b?.deallocate() } }
}

/// Moves one checkpoint tensor into the safetensors writer: verifies its
/// checksum, decodes (F32/F16/BF16/F64, either byte order, any strides),
/// transposes TF kernels and encodes to the output type, touching each byte
/// once. An F32 tensor that needs nothing is written straight from the map.
enum TensorCopy {
    static func write(_ t: CheckpointTensor, transpose: Bool, as out: TensorDType,
                      into w: SafeTensorsWriter, scratch: TensorScratch, file: String) throws {
        try t.check?.verify()
        guard let src = t.dtype, let mf = t.file else {
            throw IOFormatError.unsupported(file: file, detail: "tensor '\(t.name)' is \(t.typeName)")
        }
        let n = t.count
        let encode = Encoder(out: out, name: t.name, file: file)
        if t.isContiguous {
            let bytes = try mf.bytes(at: t.byteOffset, count: n * src.byteWidth, what: "tensor '\(t.name)'")
            defer { mf.release(offset: t.byteOffset, count: bytes.count) }
            if !transpose {
                if src == out && !t.bigEndian {
                    try w.append(bytes)
                    return
                }
                // Decode and encode a chunk at a time: no whole-tensor buffer.
                let chunk = SafeTensorsWriter.chunkSize / 4
                let floats = scratch.floats(0, min(n, chunk))
                var i = 0
                while i < n {
                    let k = min(chunk, n - i)
                    decode(bytes.baseAddress! + i * src.byteWidth, src, bigEndian: t.bigEndian, count: k, into: floats)
                    try encode.write(floats, count: k, into: w)
                    i += k
                }
                return
            }
            let (rows, cols) = (t.shape[0], t.shape[1])
            let transposed = scratch.floats(1, n)
            if src == .f32 && !t.bigEndian {
                transposeF32(bytes.baseAddress!, rows: rows, cols: cols, into: transposed)
            } else {
                let floats = scratch.floats(0, n)
                decode(bytes.baseAddress!, src, bigEndian: t.bigEndian, count: n, into: floats)
                transposeF32(UnsafeRawPointer(floats), rows: rows, cols: cols, into: transposed)
            }
            try encode.write(transposed, count: n, into: w)
            return
        }
        // A strided torch view: gather in logical (row-major) order.
        let gathered = scratch.floats(0, n)
        gather(t, src, from: mf.whole.baseAddress!, into: gathered)
        var result = gathered
        if transpose {
            result = scratch.floats(1, n)
            transposeF32(UnsafeRawPointer(gathered), rows: t.shape[0], cols: t.shape[1], into: result)
        }
        try encode.write(result, count: n, into: w)
    }

    /// Row-major `[rows, cols]` float32 (little-endian, maybe unaligned) into `[cols, rows]`.
    static func transposeF32(_ src: UnsafeRawPointer, rows: Int, cols: Int, into dst: UnsafeMutablePointer<Float>) {
        let block = 32
        var i0 = 0
        while i0 < rows {
            let i1 = min(i0 + block, rows)
            var j0 = 0
            while j0 < cols {
                let j1 = min(j0 + block, cols)
                for i in i0..<i1 {
                    let row = src + 4 * i * cols
                    for j in j0..<j1 {
                        dst[j * rows + i] = Float(bitPattern: UInt32(littleEndian: row.loadUnaligned(fromByteOffset: 4 * j, as: UInt32.self)))
                    }
                }
                j0 = j1
            }
            i0 = i1
        }
    }

    static func decode(_ raw: UnsafeRawPointer, _ dtype: TensorDType, bigEndian: Bool, count n: Int, into dst: UnsafeMutablePointer<Float>) {
        switch (dtype, bigEndian) {
        case (.f32, false):
            for i in 0..<n { dst[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case (.f32, true):
            for i in 0..<n { dst[i] = Float(bitPattern: UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case (.f16, _):
            for i in 0..<n {
                let v = raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                dst[i] = HalfFloat.toFloat(bigEndian ? UInt16(bigEndian: v) : UInt16(littleEndian: v))
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
                for j in 0..<k {
                    let f = src[i + j]
                    let h = out == .f16 ? HalfFloat.fromFloat(f) : Self.bfloat16(f)
                    dst.storeBytes(of: h.littleEndian, toByteOffset: 2 * j, as: UInt16.self)
                    overflow = overflow || (out == .f16 && (h & 0x7FFF) == 0x7C00 && f.isFinite)
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
