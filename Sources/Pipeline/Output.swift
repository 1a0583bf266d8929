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
    /// Where the inputs had been read, for the manifest (nil: the manifest records no input content, as in merge).
    public var inputProgress: InputProgress?
    private let shardSize: Int
    private let errors: ErrorsFile
    private var shard: ShardWriter?
    private var errorCount: Int
    /// A new run (`RunDirectory.start`), in a directory this process made (`createdDirectory`).
    private let fresh: Bool
    private let createdDirectory: Bool

    /// Opens a run directory prepared by `RunDirectory.start` or `.resume`.
    init(directory: URL, manifest: RunManifest, shardSize: Int, fresh: Bool = false, createdDirectory: Bool = false) throws {
        self.directory = directory
        self.manifest = manifest
        self.shardSize = shardSize
        self.fresh = fresh
        self.createdDirectory = createdDirectory
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

    func setMerged(from dirs: [String], inputContent: [InputContent]) {
        manifest.mergedFrom = dirs
        manifest.inputContent = inputContent
    }

    /// Shards committed so far (by this run or the one it resumes).
    public var committedShards: Int { manifest.shards.count }

    private func commitShard() throws {
        guard let s = shard else { return }
        shard = nil
        try errors.sync()
        var entry = try s.finish()
        entry.errorsBytes = errors.bytes
        entry.errors = errorCount
        if let p = inputProgress {
            entry.inputMark = p.mark(through: entry.lastIndex)
            manifest.inputContent = p.finished
        }
        manifest.shards.append(entry)
        manifest.records += entry.count
        manifest.errors = errorCount
        manifest.errorsBytes = errors.bytes
        // Listed first, then renamed into place (RunManifest).
        try manifest.write(directory: directory)
        try s.place()
    }

    public func finish() throws {
        try commitShard()
        try errors.sync()
        errors.close()
        manifest.errors = errorCount
        manifest.errorsBytes = errors.bytes
        if let p = inputProgress { manifest.inputContent = p.finished }
        manifest.errorsSha256 = try SHA256.hexDigest(ofFile: directory.appendingPathComponent(RunManifest.errorsFileName))
        manifest.status = "complete"
        try manifest.write(directory: directory)
    }

    /// Leaves an unfinished shard's temporary file behind no more.
    public func abandon() {
        shard?.abandon()
        shard = nil
    }

    /// Removes everything a new run wrote (its shards, errors.jsonl, the
    /// manifest, the lock; the directory when this process made it): a run
    /// that stops before its first shard, or a failed merge, leaves nothing
    /// behind. A resumed run keeps what it had (it can be resumed again).
    public func discard() {
        abandon()
        guard fresh else { return }
        errors.close()
        let fm = FileManager.default
        for s in manifest.shards { try? fm.removeItem(at: directory.appendingPathComponent(s.file)) }
        for name in [RunManifest.errorsFileName, RunManifest.fileName] {
            try? fm.removeItem(at: directory.appendingPathComponent(name))
        }
        RunDirectory.unlock(directory)
        if createdDirectory { rmdir(directory.path) }
    }
}

/// Where a run's reader has got to, handed from the reader thread to the
/// writer: for each shard, the input prefix its records came from
/// (`InputMark`), and the content of the inputs read to their end.
public final class InputProgress: @unchecked Sendable {
    private let lock = NSLock()
    /// Marks in reading order with the first record index read under each
    /// (one per read(2) chunk, not per record).
    private var marks: [(firstIndex: Int, mark: InputMark)] = []
    private var done: [InputContent] = []

    public init() {}

    func note(index: Int, mark: InputMark) {
        lock.lock()
        defer { lock.unlock() }
        if let last = marks.last?.mark, last.input == mark.input, last.bytes == mark.bytes { return }
        marks.append((index, mark))
    }

    func setFinished(_ inputs: [InputContent]) {
        lock.lock()
        done = inputs
        lock.unlock()
    }

    public var finished: [InputContent] {
        lock.lock()
        defer { lock.unlock() }
        return done
    }

    /// The mark under which the record `index` was read; earlier marks are forgotten.
    func mark(through index: Int) -> InputMark? {
        lock.lock()
        defer { lock.unlock() }
        guard let at = marks.lastIndex(where: { $0.firstIndex <= index }) else { return nil }
        marks.removeFirst(at)
        return marks[0].mark
    }
}

/// A RecordReader that reports to an InputProgress, and can read its first
/// item before the output directory exists (so that a bad header or a wrong
/// `--format` stops the run before anything is written).
public final class TrackedReader {
    public let reader: RecordReader
    public let progress = InputProgress()
    private var finishedCount = 0
    private var held: ReadItem??

    public init(_ reader: RecordReader) { self.reader = reader }

    /// Reads the first item now; `next` returns it first.
    @discardableResult
    public func prefetch() throws -> ReadItem? {
        let item = try read()
        held = .some(item)
        return item
    }

    public func next() throws -> ReadItem? {
        if let h = held {
            held = nil
            return h
        }
        return try read()
    }

    private func read() throws -> ReadItem? {
        let item = try reader.next()
        if reader.finished.count != finishedCount {
            finishedCount = reader.finished.count
            progress.setFinished(reader.finished)
        }
        if let item, let m = reader.mark() { progress.note(index: item.index, mark: m) }
        return item
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
        if let code = buffer.withUnsafeBytes({ writeAll(1, $0) }) {
            throw OutputError.cannotWrite(file: "standard output", reason: errorText(code))
        }
        buffer.removeAll(keepingCapacity: true)
    }

    public func finish() throws { try flush() }
}

/// Preparing an output directory for a new run or a resumed one. The tool
/// deletes or overwrites only files it can prove it wrote: a directory with
/// entries but no manifest of ours is refused; so is a run directory holding
/// a shard its manifest does not list, and any input found in the output
/// directory (under whatever name or link).
public enum RunDirectory {
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

    /// Releases and removes the lock of a run that leaves nothing behind.
    static func unlock(_ dir: URL) {
        lockGuard.lock()
        defer { lockGuard.unlock() }
        let path = dir.appendingPathComponent(".lock").path
        guard let fd = heldLocks.removeValue(forKey: path) else { return }
        unlink(path)
        close(fd)
    }

    /// The entries of `dir`, or nil when it does not exist.
    static func entries(_ dir: URL) -> [String]? {
        try? FileManager.default.contentsOfDirectory(atPath: dir.path)
    }

    /// Refuses a run whose input is one of the files of its output directory
    /// (or the directory itself), by device and inode: symlinks, `..`,
    /// hard links and standard input redirected from such a file included.
    public static func checkInputsOutside(_ dir: URL, inputs: [String]) throws {
        guard let names = entries(dir) else { return }
        var inside: [FileID: String] = [:]
        if let id = FileID(path: dir.path) { inside[id] = "the output directory itself" }
        for n in names { if let id = FileID(path: dir.appendingPathComponent(n).path) { inside[id] = dir.appendingPathComponent(n).path } }
        for input in inputs {
            let id = input == "-" ? FileID(descriptor: 0) : FileID(path: input)
            if let id, let at = inside[id] {
                let name = input == "-" ? "standard input" : input
                throw RunSetupError("\(name): is in the output directory \(dir.path) (\(at)); a run never writes where its inputs are: choose another -o")
            }
        }
    }

    /// A new run: refuses a directory that holds one already, with `whenTaken`
    /// telling the user what to do instead, and a directory holding anything
    /// that is not ours.
    public static func start(_ dir: URL, identity: RunIdentity, inputs: [String],
                             whenTaken: String = "add --resume to finish it, or choose another -o") throws -> DirectorySink {
        try checkInputsOutside(dir, inputs: inputs)
        let existed = entries(dir) != nil
        if !existed, let reason = makeDirectories(dir.path) {
            throw RunSetupError("\(dir.path): cannot create the output directory: \(reason)")
        }
        // Checked before the lock is taken: a refused directory gains no `.lock` either.
        let manifestURL = dir.appendingPathComponent(RunManifest.fileName)
        if FileManager.default.fileExists(atPath: manifestURL.path), (try? RunManifest.read(directory: dir)) != nil {
            throw RunSetupError("\(manifestURL.path): the output directory already holds a run; \(whenTaken)")
        }
        // `.lock` is ours, and opening it changes no byte of it.
        let foreign = (entries(dir) ?? []).filter { $0 != ".lock" }
        if !foreign.isEmpty {
            throw RunSetupError("\(dir.path): not a bertlrp-batch run directory: it holds \(describeEntries(foreign, in: dir)) and no manifest of ours; nothing was written: choose a new or empty directory")
        }
        try lock(dir)
        if (entries(dir) ?? []).contains(where: { $0 != ".lock" }) {
            throw RunSetupError("\(dir.path): another process wrote into the output directory while this run started")
        }
        let manifest = RunManifest(identity: identity, inputs: inputs)
        try manifest.write(directory: dir)
        return try DirectorySink(directory: dir, manifest: manifest, shardSize: identity.shardSize, fresh: true, createdDirectory: !existed)
    }

    /// What `--resume` found, before anything in the directory is changed.
    public struct ResumePlan {
        public var directory: URL
        public var manifest: RunManifest
        public var identity: RunIdentity
        /// The longest prefix of shards that verify.
        public var kept: [ShardEntry]
        /// The run was complete already (and its inputs are the same).
        public var complete: Bool
        /// What the inputs must hold as the resumed run reads them (RecordReader.expectation).
        public var expectation: InputExpectation?
        public var startIndex: Int { (kept.last?.lastIndex ?? -1) + 1 }
        public var dropped: Int { manifest.shards.count - kept.count }
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

    /// Checks a run directory for `--resume` without changing it; nil when
    /// there is no run to resume (a new one is started). Refuses another
    /// job (options, inputs by content), a shard file the manifest does not
    /// list, and inputs whose length already shows they changed.
    public static func plan(_ dir: URL, identity: RunIdentity, inputs: [String]) throws -> ResumePlan? {
        let manifestURL = dir.appendingPathComponent(RunManifest.fileName)
        guard let names = entries(dir), names.contains(RunManifest.fileName) else { return nil }
        try checkInputsOutside(dir, inputs: inputs)
        let manifest: RunManifest
        do { manifest = try RunManifest.read(directory: dir) } catch {
            throw RunSetupError("\(error); nothing was written: choose a new or empty directory")
        }
        try lock(dir)
        func refuse(_ why: String) -> RunSetupError { RunSetupError("\(manifestURL.path): cannot resume: \(why)") }
        if let diff = identity.difference(from: manifest.identity) {
            throw refuse("\(diff); rerun with the original options or choose another -o")
        }
        if manifest.inputs.count != inputs.count {
            throw refuse("inputs differ (the run read \(manifest.inputs.count): \(manifest.inputs.joined(separator: " ")); now \(inputs.count): \(inputs.joined(separator: " ")))")
        }
        let listed = Set(manifest.shards.map(\.file))
        let strangers = names.filter { ShardName.isShard($0) && !listed.contains($0) }
        if !strangers.isEmpty {
            throw refuse("\(dir.path) holds \(describeEntries(strangers, in: dir)) that its manifest does not list (not written by this run); move them away first")
        }
        let errorsURL = dir.appendingPathComponent(RunManifest.errorsFileName)
        let errorsSize = ((try? FileManager.default.attributesOfItem(atPath: errorsURL.path))?[.size] as? NSNumber)?.intValue ?? 0
        var kept: [ShardEntry] = []
        for s in manifest.shards {
            guard s.errorsBytes <= errorsSize, s.verify(in: dir) else { break }
            kept.append(s)
        }
        let complete = kept.count == manifest.shards.count && manifest.status == "complete" && manifest.errorsBytes <= errorsSize
        func changed(_ input: String, _ why: String) -> RunSetupError {
            RunSetupError("\(input): changed since the run in \(dir.path) read it: \(why); resume with the input the run read, or start a new run in another directory")
        }
        if complete {
            // Nothing left to compute: the inputs are read once to compare them.
            guard manifest.inputContent.count == inputs.count else { throw refuse("the manifest does not record its inputs' content") }
            for (i, input) in inputs.enumerated() {
                let now: InputContent
                do { now = try InputContent.compute(path: input) } catch { throw RunSetupError("\(error)") }
                if !now.sameContent(as: manifest.inputContent[i]) {
                    throw changed(input == "-" ? "standard input" : input, "\(now.bytes) bytes, SHA-256 \(now.sha256.prefix(12)); the run read \(manifest.inputContent[i].bytes) bytes, SHA-256 \(manifest.inputContent[i].sha256.prefix(12))")
                }
            }
            return ResumePlan(directory: dir, manifest: manifest, identity: identity, kept: kept, complete: true, expectation: nil)
        }
        var expectation: InputExpectation?
        if let mark = kept.last?.inputMark {
            guard mark.input < inputs.count, manifest.inputContent.count >= mark.input else {
                throw refuse("the manifest's input marks do not fit its inputs")
            }
            expectation = InputExpectation(before: Array(manifest.inputContent.prefix(mark.input)), mark: mark, run: dir.path)
            // Plain files: a length that already differs is refused now.
            for (i, input) in inputs.enumerated() where i <= mark.input && input != "-" {
                guard let size = (try? FileManager.default.attributesOfItem(atPath: input))?[.size] as? NSNumber else { continue }
                if i < mark.input, size.int64Value != manifest.inputContent[i].bytes {
                    throw changed(input, "\(size.int64Value) bytes; the run read \(manifest.inputContent[i].bytes)")
                }
                if i == mark.input, size.int64Value < mark.bytes {
                    throw changed(input, "\(size.int64Value) bytes, fewer than the \(mark.bytes) the run had read")
                }
            }
        }
        return ResumePlan(directory: dir, manifest: manifest, identity: identity, kept: kept, complete: false, expectation: expectation)
    }

    /// Continues the planned run: keeps the verified prefix of shards (and
    /// the errors they vouch for); everything after is redone.
    public static func resume(_ plan: ResumePlan) throws -> Resumed {
        let dir = plan.directory
        var manifest = plan.manifest
        if !plan.complete {
            manifest.shards = plan.kept
            manifest.records = plan.kept.reduce(0) { $0 + $1.count }
            manifest.errors = plan.kept.last?.errors ?? 0
            manifest.errorsBytes = plan.kept.last?.errorsBytes ?? 0
            manifest.errorsSha256 = nil
            manifest.status = "running"
            // Our own files only: shards the manifest listed, then dropped, and unfinished temporary shards.
            let keep = Set(plan.kept.map(\.file))
            let ours = Set(plan.manifest.shards.map(\.file)).subtracting(keep)
            for name in entries(dir) ?? [] where ours.contains(name) || ShardName.isTemporary(name) {
                try? FileManager.default.removeItem(at: dir.appendingPathComponent(name))
            }
            try manifest.write(directory: dir)
        }
        let sink = try DirectorySink(directory: dir, manifest: manifest, shardSize: plan.identity.shardSize)
        return Resumed(sink: sink, startIndex: plan.startIndex, complete: plan.complete, dropped: plan.dropped)
    }

    /// Continues the run in `dir` (or starts one when there is none).
    public static func resume(_ dir: URL, identity: RunIdentity, inputs: [String]) throws -> Resumed {
        guard let p = try plan(dir, identity: identity, inputs: inputs) else {
            return Resumed(sink: try start(dir, identity: identity, inputs: inputs), startIndex: 0, complete: false, dropped: 0)
        }
        return try resume(p)
    }
}
