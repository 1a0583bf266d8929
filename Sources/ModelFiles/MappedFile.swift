#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A whole file mapped read-only, plus its descriptor. The structure of a
/// checkpoint (index tables, pickles, zip directories) is parsed through the
/// map, so a 440 MB model is never copied into memory; tensor data is read
/// in pieces with `read(at:into:)` (pread) and checksummed as it is read.
///
/// Every access goes through `bytes(at:count:what:)`, which checks the range
/// against the file size and throws `IOFormatError.truncated` naming the file.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let count: Int
    private let base: UnsafeRawPointer?
    /// Kept open for `read(at:into:)` and in-kernel copies.
    package let fd: Int32

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw IOFormatError.unreadable(file: path, reason: String(cString: strerror(errno)))
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw IOFormatError.unreadable(file: path, reason: reason)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw IOFormatError.unreadable(file: path, reason: "not a regular file")
        }
        self.fd = fd
        count = Int(st.st_size)
        if count == 0 {
            base = nil
            return
        }
        let p = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            close(fd)
            throw IOFormatError.unreadable(file: path, reason: "cannot map: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(p)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), count) }
        close(fd)
    }

    /// Copies `buffer.count` bytes at `offset` into `buffer` with pread.
    ///
    /// Tensor data is streamed this way rather than through the mapping:
    /// `write(2)` from mapped pages that are not yet faulted in takes the
    /// kernel's fault-in-and-retry path, which measured about twice as slow
    /// as reading into a small buffer that stays in cache (what `cat` does).
    public func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer, what: @autoclosure () -> String) throws {
        _ = try bytes(at: offset, count: buffer.count, what: what())
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw IOFormatError.truncated(file: path, detail: "\(what()) at offset \(offset + done): \(n == 0 ? "file shrank while reading" : String(cString: strerror(errno)))")
            }
            done += n
        }
    }

    /// The whole mapping (empty for an empty file).
    public var whole: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// `count` bytes at `offset`, checked against the file size. `what` names
    /// the thing being read for the error message.
    public func bytes(at offset: Int, count n: Int, what: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        guard offset >= 0, n >= 0, offset <= count, n <= count - offset else {
            throw IOFormatError.truncated(file: path, detail: "\(what()) at offset \(offset) with \(n) bytes runs past the end of the file (\(count) bytes)")
        }
        return UnsafeRawBufferPointer(rebasing: whole[offset..<(offset + n)])
    }

    /// Drops the pages of a range from this process (they stay in the page
    /// cache and fault back in if read again), so that walking over a big
    /// checkpoint does not grow the resident set by the whole file.
    public func release(offset: Int, count n: Int) {
        guard let base, n > 0, offset >= 0, offset <= count - n else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (offset + page - 1) / page * page
        let end = (offset + n) / page * page
        if end > start {
            _ = madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_DONTNEED)
        }
    }
}

/// Little-endian loads from a raw buffer; callers check bounds first.
extension UnsafeRawBufferPointer {
    @inline(__always) package func u16(_ at: Int) -> UInt16 { UInt16(littleEndian: loadUnaligned(fromByteOffset: at, as: UInt16.self)) }
    @inline(__always) package func u32(_ at: Int) -> UInt32 { UInt32(littleEndian: loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
    @inline(__always) package func u64(_ at: Int) -> UInt64 { UInt64(littleEndian: loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
}
