import Foundation
import ModelFiles
#if canImport(Glibc)
import Glibc
#endif

/// Something that fills a buffer with the next bytes of a stream; 0 means the end.
public protocol ByteSource: AnyObject {
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    /// Bytes taken from the underlying file so far (for progress).
    var bytesConsumed: Int64 { get }
}

/// A file or standard input, read with read(2) in large chunks.
public final class FileSource: ByteSource {
    public let name: String
    /// The file's size when it is a regular file (nil for pipes).
    public let size: Int64?
    private let fd: Int32
    private let ownsDescriptor: Bool
    public private(set) var bytesConsumed: Int64 = 0

    /// `path` "-" is standard input.
    public init(path: String) throws {
        if path == "-" {
            fd = 0
            ownsDescriptor = false
            name = "<stdin>"
        } else {
            fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw IOFormatError.unreadable(file: path, reason: String(cString: strerror(errno)))
            }
            ownsDescriptor = true
            name = path
        }
        var st = stat()
        if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG {
            size = Int64(st.st_size)
        } else if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
            if ownsDescriptor { close(fd) }
            throw IOFormatError.unreadable(file: path, reason: "is a directory")
        } else {
            size = nil
        }
    }

    deinit { if ownsDescriptor { close(fd) } }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 {
                bytesConsumed += Int64(n)
                return n
            }
            if errno == EINTR { continue }
            throw IOFormatError.unreadable(file: name, reason: String(cString: strerror(errno)))
        }
    }
}

/// Bytes already in memory.
public final class MemorySource: ByteSource {
    private let bytes: [UInt8]
    private var position = 0
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var bytesConsumed: Int64 { Int64(position) }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, bytes.count - position)
        if n > 0 {
            bytes.withUnsafeBytes { src in
                buffer.baseAddress!.copyMemory(from: src.baseAddress! + position, byteCount: n)
            }
            position += n
        }
        return n
    }
}

/// Splits a byte stream into lines (without the `\n`, and without a `\r`
/// before it), never holding more than one chunk plus the longest line, and
/// a line never more than `maxLineBytes`: a longer one is read past (its
/// bytes dropped as they arrive) and reported by `overlong`, so that a
/// stream without newlines (`/dev/zero`) is read in bounded memory.
public final class LineReader {
    private let source: ByteSource
    private var buffer: [UInt8]
    private var start = 0
    private var end = 0
    private var eof = false
    public let maxLineBytes: Int
    /// Set when the line last returned was longer than `maxLineBytes`: its
    /// length in bytes (newline excluded); the line returned is then only its
    /// first bytes (at most 1 KiB, enough to tell its format).
    public private(set) var overlong: Int64?
    /// While reading past an overlong line: its bytes so far and its first bytes.
    private var skipped: Int64?
    private var skippedHead: [UInt8] = []
    /// 1-based number of the line last returned.
    public private(set) var lineNumber = 0
    /// Bytes taken from the source so far.
    public private(set) var bytesProduced: Int64 = 0
    /// Bytes of the stream handed out as lines so far (newlines included).
    public var bytesReturned: Int64 { bytesProduced - Int64(end - start) }

    public init(source: ByteSource, chunkSize: Int = 1 << 20, maxLineBytes: Int = Int.max) {
        self.source = source
        self.buffer = [UInt8](repeating: 0, count: chunkSize)
        self.maxLineBytes = max(1, maxLineBytes)
    }

    /// The next line, or nil at the end of the stream. The slice is valid
    /// until the next call.
    public func nextLine() throws -> ArraySlice<UInt8>? {
        overlong = nil
        while true {
            if let nl = findNewline() {
                if skipped != nil || nl - start > maxLineBytes { return finishOverlong(through: nl, next: nl + 1) }
                var lineEnd = nl
                if lineEnd > start && buffer[lineEnd - 1] == 0x0D { lineEnd -= 1 }
                let line = buffer[start..<lineEnd]
                start = nl + 1
                return counted(line)
            }
            if eof {
                guard start < end || skipped != nil else { return nil }
                if skipped != nil || end - start > maxLineBytes { return finishOverlong(through: end, next: end) }
                var lineEnd = end
                if buffer[lineEnd - 1] == 0x0D { lineEnd -= 1 }
                let line = buffer[start..<lineEnd]
                start = end
                return counted(line)
            }
            // No newline yet: past the limit, keep the head and drop the rest as it comes.
            if skipped == nil && end - start > maxLineBytes {
                skippedHead = Array(buffer[start..<min(end, start + 1024)])
                skipped = 0
            }
            if let s = skipped {
                skipped = s + Int64(end - start)
                start = end
            }
            try refill()
        }
    }

    /// Ends an overlong line whose last byte is before `lineEnd`; reading resumes at `next`.
    private func finishOverlong(through lineEnd: Int, next: Int) -> ArraySlice<UInt8> {
        if skipped == nil { skippedHead = Array(buffer[start..<min(lineEnd, start + 1024)]) }
        overlong = (skipped ?? 0) + Int64(lineEnd - start)
        skipped = nil
        start = next
        return counted(skippedHead[...])
    }

    /// Counts the line; a UTF-8 byte order mark opening the stream (as
    /// spreadsheet programs write) is not part of its first line.
    private func counted(_ line: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        lineNumber += 1
        if lineNumber == 1 && line.starts(with: [0xEF, 0xBB, 0xBF]) { return line.dropFirst(3) }
        return line
    }

    private func findNewline() -> Int? {
        guard start < end else { return nil }
        return buffer.withUnsafeBytes { raw -> Int? in
            guard let p = memchr(raw.baseAddress! + start, 0x0A, end - start) else { return nil }
            return raw.baseAddress!.distance(to: UnsafeRawPointer(p))
        }
    }

    private func refill() throws {
        if start > 0 {
            // Move the partial line to the front.
            let count = end - start
            buffer.withUnsafeMutableBytes { raw in
                raw.baseAddress!.copyMemory(from: raw.baseAddress! + start, byteCount: count)
            }
            start = 0
            end = count
        }
        if end == buffer.count {
            // A line longer than the buffer: grow.
            buffer.append(contentsOf: [UInt8](repeating: 0, count: buffer.count))
        }
        let capacity = buffer.count
        let n = try buffer.withUnsafeMutableBytes { raw in
            try source.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[end..<capacity]))
        }
        if n == 0 { eof = true } else { end += n; bytesProduced += Int64(n) }
    }
}
