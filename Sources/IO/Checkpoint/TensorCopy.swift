import Foundation

/// Reusable float buffers for whole-tensor work (transposes, strided torch
/// views) and decoded chunks; grown as needed, freed at the end.
final class TensorScratch {
    private var buffers: [UnsafeMutableRawPointer?] = [nil, nil]
    private var capacities = [0, 0]

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


    deinit { for b in buffers { b?.deallocate() } }
}

/// Moves one checkpoint tensor into the safetensors writer: reads it in
/// chunks (pread into a ring of buffers), hands each chunk to the checksum
/// worker, and meanwhile decodes (F32/F16/BF16/F64, either byte order, any
/// strides), transposes TF kernels and encodes to the output type. A tensor
/// that needs no conversion is copied by the kernel (`copy_file_range`)
/// while the worker checksums it through the map.
enum TensorCopy {
    /// Bytes read at a time for tensors streamed without a transpose.
    static let chunkBytes = 4 << 20

    static func write(_ t: CheckpointTensor, transpose: Bool, as out: TensorDType, into w: SafeTensorsWriter,
                      scratch: TensorScratch, ring: ChunkRing, worker: ChecksumWorker, file: String) throws {
        guard let src = t.dtype, let mf = t.file else {
            throw IOFormatError.unsupported(file: file, detail: "tensor '\(t.name)' is \(t.typeName)")
        }
        let n = t.count
        let width = src.byteWidth
        let byteCount = n * width
        let encode = Encoder(out: out, name: t.name, file: file)
        // Checksum while streaming when the tensor is exactly the checked range
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
            // Nothing to convert: the kernel copies the bytes while the worker
            // checksums them through the map.
            if let stream {
                worker.submitMapped(stream, try mf.bytes(at: t.byteOffset, count: byteCount, what: what))
            }
            try w.appendFile(mf, offset: t.byteOffset, count: byteCount)
            return
        }
        if !transpose {
            let elementsPerChunk = max(1, chunkBytes / width)
            // Decode and encode a chunk at a time: no whole-tensor buffer.
            let floats = scratch.floats(0, min(n, elementsPerChunk))
            var i = 0
            while i < n {
                let k = min(elementsPerChunk, n - i)
                let chunk = try ring.next(bytes: k * width, worker: worker)
                try mf.read(at: t.byteOffset + i * width, into: chunk.bytes, what: what)
                let bytes = UnsafeRawBufferPointer(chunk.bytes)
                if let stream { worker.submit(stream, bytes, last: i + k == n, slot: chunk.slot) }
                decode(bytes.baseAddress!, src, bigEndian: t.bigEndian, count: k, into: floats)
                try encode.write(floats, count: k, into: w)
                i += k
            }
            return
        }
        // A TF kernel [in, out] -> [out, in]: the whole tensor (at most a few MB in BERT).
        let chunk = try ring.next(bytes: byteCount, worker: worker)
        try mf.read(at: t.byteOffset, into: chunk.bytes, what: what)
        let raw = UnsafeRawBufferPointer(chunk.bytes)
        if let stream { worker.submit(stream, raw, last: true, slot: chunk.slot) }
        let (rows, cols) = (t.shape[0], t.shape[1])
        let transposed = scratch.floats(1, n)
        if src == .f32 && !t.bigEndian {
            transposeF32(raw.baseAddress!, rows: rows, cols: cols, into: transposed)
        } else {
            let floats = scratch.floats(0, n)
            decode(raw.baseAddress!, src, bigEndian: t.bigEndian, count: n, into: floats)
            transposeF32(UnsafeRawPointer(floats), rows: rows, cols: cols, into: transposed)
        }
        try encode.write(transposed, count: n, into: w)
    }

    /// Row-major `[rows, cols]` float32 (little-endian host, maybe unaligned)
    /// into `[cols, rows]`. Bands of 8 source rows by 64 columns; each step
    /// loads 4 columns of 8 rows and stores them as 4 runs of 8 output floats
    /// (about 5x faster than an element-wise blocked loop). Wrapping
    /// arithmetic: the caller's sizes are bounded.
    static func transposeF32(_ src: UnsafeRawPointer, rows: Int, cols: Int, into dst: UnsafeMutablePointer<Float>) {
        let rowStride = cols &* 4, outStride = rows &* 4
        var j0 = 0
        while j0 < cols {
            let j1 = min(j0 &+ 64, cols)
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

/// A few buffers the checkpoint is read into, used in turn: while the
/// converter works on one, the checksum worker may still be reading the
/// previous ones.
final class ChunkRing {
    private var buffers: [UnsafeMutableRawPointer?]
    private var capacities: [Int]
    private var turn = 0

    init(slots: Int = 3) {
        buffers = [UnsafeMutableRawPointer?](repeating: nil, count: slots)
        capacities = [Int](repeating: 0, count: slots)
    }

    /// The next buffer, once the worker is done with it, holding at least `bytes`.
    func next(bytes: Int, worker: ChecksumWorker) throws -> (slot: Int, bytes: UnsafeMutableRawBufferPointer) {
        let slot = turn
        turn = (turn + 1) % buffers.count
        worker.waitUntilFree(slot)
        if capacities[slot] < bytes || buffers[slot] == nil {
            buffers[slot]?.deallocate()
            buffers[slot] = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
            capacities[slot] = max(bytes, 64)
        }
        return (slot, UnsafeMutableRawBufferPointer(start: buffers[slot]!, count: bytes))
    }

    deinit { for b in buffers { b?.deallocate() } }
}

/// Computes the checksums of the chunks the converter reads, on a second
/// thread, so that checksumming overlaps reading, converting and writing.
/// Chunks of one check arrive in order; a mismatch is kept and thrown by
/// `drain()`, which the converter calls before it puts the output in place.
final class ChecksumWorker: @unchecked Sendable {
    private struct Job {
        let check: IntegrityCheck
        let bytes: UnsafeRawBufferPointer
        let last: Bool
        /// The ring buffer holding the bytes, or -1 for bytes in the map
        /// (whose pages the worker drops again when done).
        let slot: Int
    }

    private let condition = NSCondition()
    private var jobs: [Job] = []
    private var head = 0
    private var busy: [Bool]
    private var pending = 0
    private var closed = false
    private var exited = false
    private var failure: Error?
    // Worker-thread state: the check being summed and its running checksum.
    private var current: IntegrityCheck?
    private var running: UInt32 = 0

    init(slots: Int = 3) {
        busy = [Bool](repeating: false, count: slots)
        // A plain pthread: Foundation's Thread spun in sched_yield here
        // (thousands of calls, ~0.07 s of a 0.5 s conversion).
        var thread = pthread_t()
        let me = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&thread, nil, { arg in
            let worker = Unmanaged<ChecksumWorker>.fromOpaque(arg!).takeRetainedValue()
            worker.run()
            return nil
        }, me)
        precondition(rc == 0, "cannot start the checksum thread")
        pthread_detach(thread)
    }

    func submit(_ check: IntegrityCheck, _ bytes: UnsafeRawBufferPointer, last: Bool, slot: Int) {
        condition.lock()
        jobs.append(Job(check: check, bytes: bytes, last: last, slot: slot))
        busy[slot] = true
        pending += 1
        condition.broadcast()
        condition.unlock()
    }

    /// A whole checked range, read through the map.
    func submitMapped(_ check: IntegrityCheck, _ bytes: UnsafeRawBufferPointer) {
        condition.lock()
        jobs.append(Job(check: check, bytes: bytes, last: true, slot: -1))
        pending += 1
        condition.broadcast()
        condition.unlock()
    }

    func waitUntilFree(_ slot: Int) {
        condition.lock()
        while busy[slot] { condition.wait() }
        condition.unlock()
    }

    /// Waits for every submitted chunk and throws the first mismatch.
    func drain() throws {
        condition.lock()
        while pending > 0 { condition.wait() }
        let failure = self.failure
        condition.unlock()
        if let failure { throw failure }
    }

    /// Ends the worker thread (after the chunks already submitted).
    func stop() {
        condition.lock()
        closed = true
        condition.broadcast()
        while !exited { condition.wait() }
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while head == jobs.count && !closed { condition.wait() }
            if head == jobs.count {
                exited = true
                condition.broadcast()
                condition.unlock()
                return
            }
            let job = jobs[head]
            head += 1
            if head > 64 { jobs.removeFirst(head); head = 0 }
            let failed = failure != nil
            condition.unlock()

            var error: Error?
            if !failed {
                if current !== job.check { current = job.check; running = 0 }
                running = job.check.extend(running, job.bytes)
                if job.last {
                    do { try job.check.verify(computed: running) } catch let e { error = e }
                    current = nil
                }
            }
            if job.slot < 0 { job.check.file.release(offset: job.check.offset, count: job.check.count) }
            condition.lock()
            if let error, failure == nil { failure = error }
            if job.slot >= 0 { busy[job.slot] = false }
            pending -= 1
            condition.broadcast()
            condition.unlock()
        }
    }
}
