#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

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
    private var fd: Int32
    private var written = 0 // data bytes appended so far
    private let dataSize: Int
    private var buffer: UnsafeMutableRawPointer
    private var buffered = 0
    private static let bufferSize = 1 << 20

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
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw IOFormatError.unreadable(file: path, reason: "cannot create: \(String(cString: strerror(errno)))")
        }
        buffer = UnsafeMutableRawPointer.allocate(byteCount: Self.bufferSize, alignment: 64)
        var length = UInt64(header.count).littleEndian
        try withUnsafeBytes(of: &length) { try writeAll($0) }
        try header.withUnsafeBytes { try writeAll($0) }
    }

    deinit {
        buffer.deallocate()
        if fd >= 0 { close(fd) }
    }

    /// Appends data bytes (of the current tensor, in header order).
    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count <= dataSize - written else {
            throw IOFormatError.corrupt(file: path, detail: "more tensor bytes than the header declares")
        }
        written += bytes.count
        if bytes.count >= Self.bufferSize {
            try flush()
            try writeAll(bytes)
            return
        }
        if buffered + bytes.count > Self.bufferSize { try flush() }
        (buffer + buffered).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        buffered += bytes.count
    }

    /// A scratch area of up to `bufferSize` bytes to fill in place and then
    /// commit with `commit(count)`, saving one copy for converted data.
    public func reserve(_ count: Int) throws -> UnsafeMutableRawBufferPointer {
        precondition(count <= Self.bufferSize)
        if buffered + count > Self.bufferSize { try flush() }
        return UnsafeMutableRawBufferPointer(start: buffer + buffered, count: count)
    }

    public func commit(_ count: Int) throws {
        guard count <= dataSize - written else {
            throw IOFormatError.corrupt(file: path, detail: "more tensor bytes than the header declares")
        }
        written += count
        buffered += count
    }

    public static var chunkSize: Int { bufferSize }

    /// glibc's `copy_file_range` (not in Swift's Glibc module: it is a GNU
    /// extension), looked up once; nil where absent (then `sendfile`).
    private typealias CopyFileRange = @convention(c) (Int32, UnsafeMutablePointer<Int64>?, Int32, UnsafeMutablePointer<Int64>?, Int, UInt32) -> Int
    private static let copyFileRange: CopyFileRange? = {
        #if os(Linux)
        guard let sym = dlsym(nil, "copy_file_range") else { return nil }
        return unsafeBitCast(sym, to: CopyFileRange.self)
        #else
        return nil
        #endif
    }()

    /// Appends `count` bytes of another file, copied by the kernel
    /// (`copy_file_range`, page cache to page cache, as `cat` does) without
    /// passing through this process; falls back to pread/write where unsupported.
    func appendFile(_ source: MappedFile, offset: Int, count: Int) throws {
        guard count <= dataSize - written else {
            throw IOFormatError.corrupt(file: path, detail: "more tensor bytes than the header declares")
        }
        _ = try source.bytes(at: offset, count: count, what: "tensor data")
        try flush()
        var off = off_t(offset)
        var left = count
        #if os(Linux)
        while left > 0 {
            var n: Int
            if let copyFileRange = Self.copyFileRange {
                var inOff = Int64(off)
                n = copyFileRange(source.fd, &inOff, fd, nil, min(left, 1 << 30), 0)
                if n > 0 { off = off_t(inOff) }
            } else {
                n = sendfile(fd, source.fd, &off, min(left, 1 << 30))
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP || errno == EXDEV) { break }
            guard n > 0 else {
                throw IOFormatError.unreadable(file: path, reason: n == 0 ? "\(source.path) shrank while copying" : "copy failed: \(String(cString: strerror(errno)))")
            }
            left -= n
        }
        #endif
        while left > 0 { // fallback: through the buffer
            let k = min(left, Self.bufferSize)
            try source.read(at: Int(off), into: UnsafeMutableRawBufferPointer(start: buffer, count: k), what: "tensor data")
            try writeAll(UnsafeRawBufferPointer(start: buffer, count: k))
            off += off_t(k)
            left -= k
        }
        written += count
    }

    /// Checks every declared byte was written, flushes and closes.
    public func finish() throws {
        try flush()
        guard written == dataSize else {
            throw IOFormatError.truncated(file: path, detail: "wrote \(written) of \(dataSize) tensor bytes")
        }
        let rc = close(fd)
        fd = -1
        guard rc == 0 else { throw IOFormatError.unreadable(file: path, reason: "close failed: \(String(cString: strerror(errno)))") }
    }

    private func flush() throws {
        if buffered > 0 {
            try writeAll(UnsafeRawBufferPointer(start: buffer, count: buffered))
            buffered = 0
        }
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw IOFormatError.unreadable(file: path, reason: "write failed: \(String(cString: strerror(errno)))")
            }
            done += n
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
