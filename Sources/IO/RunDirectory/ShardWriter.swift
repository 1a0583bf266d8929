import Foundation
import ModelFiles

/// Errors writing a run's output; each names the file.
public enum OutputError: Error, CustomStringConvertible, Equatable {
    case cannotWrite(file: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotWrite(file, reason): return "\(file): cannot write: \(reason)"
        }
    }

    static func errno(_ file: String, _ what: String, code: Int32 = Foundation.errno) -> OutputError {
        .cannotWrite(file: file, reason: "\(what): \(errorText(code))")
    }
}

/// The names of a run directory's shard files, in one place: `part-00000.jsonl.zst`,
/// `part-00001.jsonl.zst`, ...; a shard being written is `.part-NNNNN.jsonl.zst.tmp`.
public enum ShardName {
    public static func of(_ number: Int) -> String {
        "part-" + String(repeating: "0", count: max(0, 5 - String(number).count)) + String(number) + ".jsonl.zst"
    }

    public static func temporary(_ name: String) -> String { "." + name + ".tmp" }

    public static func isShard(_ name: String) -> Bool { name.hasPrefix("part-") && name.hasSuffix(".jsonl.zst") }

    public static func isTemporary(_ name: String) -> Bool {
        name.hasPrefix(".part-") && name.hasSuffix(".jsonl.zst.tmp")
    }
}

/// A file descriptor opened for writing, with a loop over short writes.
final class OutputFile {
    let path: String
    private(set) var fd: Int32
    private(set) var bytesWritten = 0

    init(path: String, append: Bool = false) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0o644)
        guard fd >= 0 else { throw OutputError.errno(path, "cannot create") }
        if append { bytesWritten = Int(lseek(fd, 0, SEEK_END)) }
    }

    deinit { if fd >= 0 { _ = Foundation.close(fd) } }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        if let code = writeAll(fd, bytes) { throw OutputError.errno(path, "write failed", code: code) }
        bytesWritten += bytes.count
    }

    func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    func sync() throws {
        guard fsync(fd) == 0 else { throw OutputError.errno(path, "fsync failed") }
    }

    func close() {
        if fd >= 0 { _ = Foundation.close(fd); fd = -1 }
    }
}

/// Writes one shard: JSONL lines compressed into one zstd frame, under a
/// temporary name (`.part-00003.jsonl.zst.tmp`) until `commit` syncs it and
/// renames it into place, so a shard file with its final name is complete.
/// The SHA-256 of the compressed bytes is computed on the way.
public final class ShardWriter {
    public let directory: URL
    public let number: Int
    public let fileName: String
    private let tmpURL: URL
    private let file: OutputFile
    private var compressor: ZstdCompressor!
    private var hash = SHA256()
    public private(set) var count = 0
    public private(set) var firstIndex = -1
    public private(set) var lastIndex = -1

    public init(directory: URL, number: Int, level: Int32 = 3) throws {
        self.directory = directory
        self.number = number
        self.fileName = ShardName.of(number)
        self.tmpURL = directory.appendingPathComponent(ShardName.temporary(fileName))
        self.file = try OutputFile(path: tmpURL.path)
        let file = self.file
        compressor = try ZstdCompressor(name: tmpURL.path, level: level) { [unowned self] bytes in
            try file.write(bytes)
            self.hash.update(bytes)
        }
    }

    /// Appends one record line (without its newline).
    public func append(line: UnsafeRawBufferPointer, index: Int) throws {
        if count == 0 { firstIndex = index }
        lastIndex = index
        count += 1
        try compressor.write(line)
        try compressor.write([0x0A])
    }

    public func append(line: [UInt8], index: Int) throws {
        try line.withUnsafeBytes { try append(line: $0, index: index) }
    }

    /// Ends the frame and syncs the temporary file; returns its manifest
    /// entry (errors fields and input mark left for the caller). The caller
    /// lists the entry in the manifest, then calls `place`: a shard's final
    /// name is only ever one its manifest names (RunManifest).
    public func finish() throws -> ShardEntry {
        try compressor.finish()
        try file.sync()
        let bytes = file.bytesWritten
        file.close()
        return ShardEntry(file: fileName, firstIndex: firstIndex, lastIndex: lastIndex, count: count,
                          bytes: bytes, sha256: hash.hexDigest(), errorsBytes: 0, errors: 0)
    }

    /// Renames the finished file into place.
    public func place() throws {
        try AtomicFile.rename(tmpURL, to: directory.appendingPathComponent(fileName))
    }

    /// Drops an unfinished shard.
    public func abandon() {
        file.close()
        unlink(tmpURL.path)
    }
}

/// errors.jsonl, appended to; `sync` before a manifest names its length.
public final class ErrorsFile {
    private let file: OutputFile
    public private(set) var count = 0

    /// Opens `url` for appending after cutting it back to `keepBytes`
    /// (the length the manifest vouches for).
    public init(url: URL, keepBytes: Int) throws {
        if !FileManager.default.fileExists(atPath: url.path) {
            _ = FileManager.default.createFile(atPath: url.path, contents: nil) // a failure shows in truncate below
        }
        guard truncate(url.path, off_t(keepBytes)) == 0 else { throw OutputError.errno(url.path, "cannot truncate") }
        file = try OutputFile(path: url.path, append: true)
    }

    public var bytes: Int { file.bytesWritten }

    public func append(_ line: String) throws {
        var l = line
        l.append("\n")
        try l.withUTF8 { try file.write(UnsafeRawBufferPointer($0)) }
        count += 1
    }

    public func sync() throws { try file.sync() }
    public func close() { file.close() }
}
