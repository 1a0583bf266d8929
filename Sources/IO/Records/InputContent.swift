import Foundation
import ModelFiles

/// One input as a run read it: its raw bytes' length and SHA-256 (what
/// `sha256sum` prints; for a `.zst` input the compressed file). Part of a
/// run's identity: `merge` and `--resume` compare this, not the path.
public struct InputContent: Codable, Equatable, Sendable {
    /// As named on the command line (informational: another spelling of the same bytes is the same input).
    public var name: String
    public var bytes: Int64
    public var sha256: String

    public init(name: String, bytes: Int64, sha256: String) {
        self.name = name
        self.bytes = bytes
        self.sha256 = sha256
    }

    /// Same bytes, whatever the name.
    public func sameContent(as other: InputContent) -> Bool { bytes == other.bytes && sha256 == other.sha256 }

    /// Hashes a whole input (`-` is standard input) in one streaming read.
    public static func compute(path: String) throws -> InputContent {
        let source = HashingSource(try FileSource(path: path), input: 0, expected: nil)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while try buffer.withUnsafeMutableBytes({ try source.read(into: $0) }) > 0 {}
        return InputContent(name: path, bytes: source.bytesConsumed, sha256: source.prefixDigest())
    }
}

/// How far into the inputs a shard's records had been read: the first
/// `bytes` raw bytes of input number `input` (0-based), with their SHA-256.
/// Reading buffers ahead, so the prefix may extend past the shard's last
/// record; it always covers it. A resumed run checks the same prefix as it
/// streams past it (RecordReader.expect), so an input edited between the
/// kill and the resume is refused before any new record is written.
public struct InputMark: Codable, Equatable, Sendable {
    public var input: Int
    public var bytes: Int64
    public var sha256: String

    public init(input: Int, bytes: Int64, sha256: String) {
        self.input = input
        self.bytes = bytes
        self.sha256 = sha256
    }
}

/// What a resumed run must find in its inputs: the whole content of the
/// inputs before `mark.input`, then `mark`'s prefix.
public struct InputExpectation: Sendable, Equatable {
    public var before: [InputContent]
    public var mark: InputMark
    /// Named in the message when an input differs (the run directory).
    public var run: String

    public init(before: [InputContent], mark: InputMark, run: String) {
        self.before = before
        self.mark = mark
        self.run = run
    }
}

/// A file source that hashes its raw bytes as they are read (no second
/// pass) and, given an expected prefix, checks it the moment the stream
/// passes its end.
final class HashingSource: ByteSource {
    let file: FileSource
    let input: Int
    private var hash = SHA256()
    /// Expected (length, SHA-256) of a prefix (or of the whole input), checked once.
    private var expected: (bytes: Int64, sha256: String, whole: Bool)?
    private var failure: String?
    private var cached: (at: Int64, digest: String)?
    /// Set by the owner: the message when the expected prefix differs.
    var describeMismatch: (_ what: String) -> String = { $0 }

    init(_ file: FileSource, input: Int, expected: (bytes: Int64, sha256: String, whole: Bool)?) {
        self.file = file
        self.input = input
        self.expected = expected
    }

    var bytesConsumed: Int64 { file.bytesConsumed }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let before = file.bytesConsumed
        let n = try file.read(into: buffer)
        if let e = expected, before + Int64(n) >= e.bytes || n == 0 {
            // Split the update at the expected length so that the prefix's digest is exact.
            let head = Int(max(0, min(Int64(n), e.bytes - before)))
            hash.update(UnsafeRawBufferPointer(rebasing: buffer[0..<head]))
            let consumed = before + Int64(head)
            var copy = hash
            if consumed < e.bytes {
                throw InputError(describeMismatch("holds \(consumed) bytes, fewer than the \(e.bytes) the run read"))
            }
            if e.whole && n > head {
                throw InputError(describeMismatch("is longer than the \(e.bytes) bytes the run read"))
            }
            if copy.hexDigest() != e.sha256 {
                throw InputError(describeMismatch(e.whole ? "its content differs from what the run read (SHA-256)"
                                                          : "its first \(e.bytes) bytes differ from those the run read (SHA-256)"))
            }
            if !e.whole || n == 0 { expected = nil }
            hash.update(UnsafeRawBufferPointer(rebasing: buffer[head..<n]))
        } else {
            hash.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
        return n
    }

    /// SHA-256 of the bytes read so far (computed once per read(2) chunk, not per record).
    func prefixDigest() -> String {
        let at = file.bytesConsumed
        if let c = cached, c.at == at { return c.digest }
        var copy = hash
        let d = copy.hexDigest()
        cached = (at, d)
        return d
    }
}
