import Foundation
import IO

/// A configuration problem found before any record is processed (exit 2):
/// one line naming the file and what is wrong.
public struct RunSetupError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// `-o DIR`: shards, manifest.json and errors.jsonl (see RunManifest for the
/// order of writes that makes `--resume` safe).
public final class DirectorySink: RecordSink, @unchecked Sendable {
    public let directory: URL
    public private(set) var manifest: RunManifest
    private let shardSize: Int
    private let errors: ErrorsFile
    private var shard: ShardWriter?
    private var errorCount: Int

    /// Opens a run directory prepared by `RunDirectory.start` or `.resume`.
    init(directory: URL, manifest: RunManifest, shardSize: Int) throws {
        self.directory = directory
        self.manifest = manifest
        self.shardSize = shardSize
        self.errors = try ErrorsFile(url: directory.appendingPathComponent(RunManifest.errorsFileName), keepBytes: manifest.errorsBytes)
        self.errorCount = manifest.errors
    }

    public func write(line: [UInt8], index: Int) throws {
        if shard == nil { shard = try ShardWriter(directory: directory, number: manifest.shards.count) }
        try shard!.append(line: line, index: index)
        if shard!.count >= shardSize { try commitShard() }
    }

    public func write(error: BadRecord) throws {
        try errors.append(error.jsonLine)
        errorCount += 1
    }

    /// An errors.jsonl line as it is (merge).
    func writeRawError(_ line: [UInt8]) throws {
        try errors.append(String(decoding: line, as: UTF8.self))
        errorCount += 1
    }

    func setMergedFrom(_ dirs: [String]) {
        manifest.mergedFrom = dirs
    }

    private func commitShard() throws {
        guard let s = shard else { return }
        shard = nil
        try errors.sync()
        var entry = try s.commit()
        entry.errorsBytes = errors.bytes
        entry.errors = errorCount
        manifest.shards.append(entry)
        manifest.records += entry.count
        manifest.errors = errorCount
        manifest.errorsBytes = errors.bytes
        try manifest.write(directory: directory)
    }

    public func finish() throws {
        try commitShard()
        try errors.sync()
        errors.close()
        manifest.errors = errorCount
        manifest.errorsBytes = errors.bytes
        manifest.status = "complete"
        try manifest.write(directory: directory)
    }

    /// Leaves an unfinished shard's temporary file behind no more.
    public func abandon() {
        shard?.abandon()
        shard = nil
    }
}

/// `-o -`: plain JSONL on standard output; bad records as lines on standard error.
public final class StdoutSink: RecordSink, @unchecked Sendable {
    private var buffer: [UInt8] = []
    public private(set) var errors = 0

    public init() {}

    public func write(line: [UInt8], index: Int) throws {
        buffer.append(contentsOf: line)
        buffer.append(0x0A)
        if buffer.count >= 1 << 16 { try flush() }
    }

    public func write(error: BadRecord) throws {
        errors += 1
        FileHandle.standardError.write(Data("bertlrp-batch: bad record: \(error.jsonLine)\n".utf8))
    }

    private func flush() throws {
        var off = 0
        while off < buffer.count {
            let n = buffer.withUnsafeBytes { Foundation.write(1, $0.baseAddress! + off, $0.count - off) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw OutputError.cannotWrite(file: "standard output", reason: String(cString: strerror(errno))) }
            off += n
        }
        buffer.removeAll(keepingCapacity: true)
    }

    public func finish() throws { try flush() }
}

/// Preparing an output directory for a new run or a resumed one.
public enum RunDirectory {
    static func isShardName(_ name: String) -> Bool {
        (name.hasPrefix("part-") && name.hasSuffix(".jsonl.zst")) || (name.hasPrefix(".part-") && name.hasSuffix(".tmp"))
    }

    /// Removes shard files (finished or not) other than `keep`.
    static func removeStrayShards(in dir: URL, keep: Set<String>) throws {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        for name in names where isShardName(name) && !keep.contains(name) {
            try? FileManager.default.removeItem(at: dir.appendingPathComponent(name))
        }
    }

    /// Lock files held by this process (one per output directory), released
    /// by the kernel when the process ends, however it ends.
    nonisolated(unsafe) private static var heldLocks: [String: Int32] = [:]
    private static let lockGuard = NSLock()

    /// Takes `DIR/.lock` so that two processes never write one run directory.
    static func lock(_ dir: URL) throws {
        lockGuard.lock()
        defer { lockGuard.unlock() }
        let path = dir.appendingPathComponent(".lock").path
        if heldLocks[path] != nil { return }
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RunSetupError("\(path): cannot create: \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw RunSetupError("\(dir.path): another bertlrp-batch process is writing this output directory")
        }
        heldLocks[path] = fd
    }

    /// A new run: refuses a directory that holds one already, with `whenTaken`
    /// telling the user what to do instead.
    public static func start(_ dir: URL, identity: RunIdentity, inputs: [String],
                             whenTaken: String = "add --resume to finish it, or choose another -o") throws -> DirectorySink {
        if let reason = makeDirectories(dir.path) {
            throw RunSetupError("\(dir.path): cannot create the output directory: \(reason)")
        }
        try lock(dir)
        let manifestURL = dir.appendingPathComponent(RunManifest.fileName)
        if FileManager.default.fileExists(atPath: manifestURL.path) {
            throw RunSetupError("\(manifestURL.path): the output directory already holds a run; \(whenTaken)")
        }
        try removeStrayShards(in: dir, keep: [])
        let manifest = RunManifest(identity: identity, inputs: inputs)
        let errorsURL = dir.appendingPathComponent(RunManifest.errorsFileName)
        try? FileManager.default.removeItem(at: errorsURL)
        try manifest.write(directory: dir)
        return try DirectorySink(directory: dir, manifest: manifest, shardSize: identity.shardSize)
    }

    public struct Resumed {
        public var sink: DirectorySink
        /// First input index not yet written.
        public var startIndex: Int
        /// The run was complete already.
        public var complete: Bool
        /// Shards found damaged or unfinished and redone.
        public var dropped: Int
    }

    /// Continues the run in `dir` (or starts one when there is none). Keeps
    /// the longest prefix of shards that verify against the manifest and
    /// whose errors are in errors.jsonl; everything after is redone.
    public static func resume(_ dir: URL, identity: RunIdentity, inputs: [String]) throws -> Resumed {
        let manifestURL = dir.appendingPathComponent(RunManifest.fileName)
        if FileManager.default.fileExists(atPath: dir.path) { try lock(dir) }
        guard FileManager.default.fileExists(atPath: manifestURL.path) else {
            return Resumed(sink: try start(dir, identity: identity, inputs: inputs), startIndex: 0, complete: false, dropped: 0)
        }
        var manifest: RunManifest
        do { manifest = try RunManifest.read(directory: dir) } catch {
            throw RunSetupError("\(error)")
        }
        if let diff = identity.difference(from: manifest.identity) {
            throw RunSetupError("\(manifestURL.path): cannot resume: \(diff); rerun with the original options or choose another -o")
        }
        if manifest.inputs != inputs {
            throw RunSetupError("\(manifestURL.path): cannot resume: inputs differ (the run read \(manifest.inputs.joined(separator: " ")); now \(inputs.joined(separator: " ")))")
        }
        let errorsURL = dir.appendingPathComponent(RunManifest.errorsFileName)
        let errorsSize = ((try? FileManager.default.attributesOfItem(atPath: errorsURL.path))?[.size] as? NSNumber)?.intValue ?? 0
        var kept: [ShardEntry] = []
        for s in manifest.shards {
            guard s.errorsBytes <= errorsSize, s.verify(in: dir) else { break }
            kept.append(s)
        }
        let dropped = manifest.shards.count - kept.count
        let allGood = dropped == 0 && manifest.status == "complete" && manifest.errorsBytes <= errorsSize
        if !allGood {
            manifest.shards = kept
            manifest.records = kept.reduce(0) { $0 + $1.count }
            manifest.errors = kept.last?.errors ?? 0
            manifest.errorsBytes = kept.last?.errorsBytes ?? 0
            manifest.status = "running"
        }
        try removeStrayShards(in: dir, keep: Set(manifest.shards.map(\.file)))
        try manifest.write(directory: dir)
        let sink = try DirectorySink(directory: dir, manifest: manifest, shardSize: identity.shardSize)
        return Resumed(sink: sink, startIndex: (kept.last?.lastIndex ?? -1) + 1, complete: allGood, dropped: dropped)
    }
}
