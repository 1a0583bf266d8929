#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import ModelFiles

/// Writes a safetensors file front to back without holding the tensors: the
/// header (all names, shapes and offsets) first, then each tensor's bytes in
/// header order through `append`. Layout as `huggingface/safetensors`
/// writes it: u64 LE header length, JSON header padded with spaces to a
/// multiple of 8, data. `__metadata__` is always written (`{"format":"pt"}`
/// by default) because older transformers versions need it.
public final class SafeTensorsWriter {
    public struct Entry: Sendable {
        public let name: String
        public let dtype: TensorDType
        public let shape: [Int]
        public init(name: String, dtype: TensorDType, shape: [Int]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
        }
        public var byteCount: Int { shape.reduce(1, *) * dtype.byteWidth }
    }

    public let path: String
    public let entries: [Entry]
    /// Bytes of the whole file once finished.
    public let fileSize: Int
    private let file: Output
    private var written = 0 // data bytes appended so far
    private let dataSize: Int
    /// Buffers filled here and written by the background queue, in turn:
    /// while it writes one, the caller fills the next.
    private var slots: [Slot]
    private var current = 0
    private var buffered = 0
    private let jobs = SerialJobs()
    private static let bufferSize = 4 << 20

    private struct Slot {
        var memory: UnsafeMutableRawPointer
        var capacity: Int
        /// The write job that last used it.
        var ticket = 0
    }

    /// Entries are written in the order given (the reference writer sorts by
    /// dtype alignment, then name; callers that want that order sort first).
    public init(path: String, entries: [Entry], metadata: [String: String] = ["format": "pt"]) throws {
        self.path = path
        self.entries = entries
        var names = Set<String>()
        var json = "{\"__metadata__\":{"
        json += metadata.keys.sorted().map { "\(Self.quote($0)):\(Self.quote(metadata[$0]!))" }.joined(separator: ",")
        json += "}"
        var offset = 0
        for e in entries {
            guard names.insert(e.name).inserted, e.name != "__metadata__" else {
                throw IOFormatError.corrupt(file: path, detail: "tensor '\(e.name)' written twice")
            }
            let begin = offset
            offset += e.byteCount
            json += ",\(Self.quote(e.name)):{\"dtype\":\"\(e.dtype.rawValue)\",\"shape\":[\(e.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(begin),\(offset)]}"
        }
        json += "}"
        var header = Array(json.utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        dataSize = offset
        fileSize = 8 + header.count + offset
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw IOFormatError.unwritable(file: path, reason: String(cString: strerror(errno)))
        }
        file = Output(fd: fd, path: path)
        slots = (0..<3).map { _ in Slot(memory: UnsafeMutableRawPointer.allocate(byteCount: Self.bufferSize, alignment: 64), capacity: Self.bufferSize) }
        var length = UInt64(header.count).littleEndian
        try withUnsafeBytes(of: &length) { try file.writeAll($0) }
        try header.withUnsafeBytes { try file.writeAll($0) }
    }

    deinit {
        jobs.stop()
        for s in slots { s.memory.deallocate() }
    }

    /// Appends data bytes (of the current tensor, in header order).
    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let k = min(bytes.count - done, Self.bufferSize)
            let dst = try reserve(k)
            dst.baseAddress!.copyMemory(from: bytes.baseAddress! + done, byteCount: k)
            try commit(k)
            done += k
        }
    }

    /// A contiguous area of `count` bytes (any size) to fill in place and
    /// then commit with `commit(count)`: the bytes go from there to the file
    /// with no further copy, written by the background queue.
    public func reserve(_ count: Int) throws -> UnsafeMutableRawBufferPointer {
        if buffered + count > slots[current].capacity {
            try submitCurrent()
            if slots[current].capacity < count {
                slots[current].memory.deallocate()
                slots[current].memory = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 64)
                slots[current].capacity = count
            }
        }
        return UnsafeMutableRawBufferPointer(start: slots[current].memory + buffered, count: count)
    }

    public func commit(_ count: Int) throws {
        guard count <= dataSize - written, buffered + count <= slots[current].capacity else {
            throw IOFormatError.corrupt(file: path, detail: "more tensor bytes than the header declares")
        }
        written += count
        buffered += count
    }

    /// Bytes worth handing over at a time.
    public static var chunkSize: Int { bufferSize }

    /// Checks every declared byte was written, waits for the writes, closes.
    public func finish() throws {
        try submitCurrent()
        try jobs.drain()
        guard written == dataSize else {
            throw IOFormatError.truncated(file: path, detail: "wrote \(written) of \(dataSize) tensor bytes")
        }
        try file.finish()
    }

    /// Hands the filled part of the current buffer to the queue and moves to
    /// the next buffer once its previous write is done. Throws the first
    /// write error as soon as it is known.
    private func submitCurrent() throws {
        if let error = jobs.error { throw error }
        guard buffered > 0 else { return }
        let bytes = UnsafeRawBufferPointer(start: slots[current].memory, count: buffered)
        let file = self.file
        slots[current].ticket = jobs.submit { try file.writeAll(bytes) }
        buffered = 0
        current = (current + 1) % slots.count
        jobs.wait(for: slots[current].ticket)
    }

    /// The output descriptor; used by the caller's thread for the header and
    /// then only by the background queue.
    private final class Output: @unchecked Sendable {
        var fd: Int32
        let path: String

        init(fd: Int32, path: String) {
            self.fd = fd
            self.path = path
        }

        deinit { if fd >= 0 { close(fd) } }

        func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
            if let code = IO.writeAll(fd, bytes) { throw IOFormatError.unwritable(file: path, reason: errorText(code)) }
        }

        func finish() throws {
            let rc = close(fd)
            fd = -1
            guard rc == 0 else { throw IOFormatError.unwritable(file: path, reason: "close failed: \(String(cString: strerror(errno)))") }
        }
    }

    /// A JSON string literal.
    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let h = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
