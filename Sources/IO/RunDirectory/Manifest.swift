import Foundation
import ModelFiles

/// `DIR/manifest.json`: what a run computed and which shards are finished.
///
/// Crash safety: a shard is written under a temporary name, synced and renamed;
/// only then is the manifest rewritten (temporary file + rename), so a shard
/// listed here is complete. `errorsBytes` of a shard is the length of
/// `errors.jsonl` when that shard was committed: on `--resume` the errors file
/// is cut back to it, so a bad record is listed once however often the run
/// was interrupted.
///
/// A shard is listed here before it is renamed into place (ShardWriter), so
/// every `part-*.jsonl.zst` file in a run directory that the manifest does
/// not list was written by someone else and is never deleted or replaced.
public struct RunManifest: Codable, Equatable, Sendable {
    /// run/2: input content, shard input marks and the errors file's hash (run/1 had none of them).
    public static let formatName = "bertlrp-batch.run/2"
    public static let fileName = "manifest.json"
    public static let errorsFileName = "errors.jsonl"

    public var format: String
    /// "running" while the run goes on, "complete" once every record is written.
    public var status: String
    public var identity: RunIdentity
    /// Inputs as named on the command line (`-` for standard input).
    public var inputs: [String]
    /// Length and SHA-256 of each input read to its end so far (all of them
    /// once complete): what `merge` and `--resume` compare, not the names.
    public var inputContent: [InputContent]
    /// How `shards[].checksum` is computed.
    public var checksum: String
    public var shards: [ShardEntry]
    /// Records written (sum of the shard counts) and bad records listed in errors.jsonl.
    public var records: Int
    public var errors: Int
    /// Length of errors.jsonl that belongs to the committed shards (or to the whole run once complete).
    public var errorsBytes: Int
    /// SHA-256 of errors.jsonl once the run is complete (`merge` checks it).
    public var errorsSha256: String?
    /// Runs this one was merged from (`merge`), else nil.
    public var mergedFrom: [String]?
    public var updated: String

    public init(identity: RunIdentity, inputs: [String]) {
        self.format = RunManifest.formatName
        self.status = "running"
        self.identity = identity
        self.inputs = inputs
        self.inputContent = []
        self.checksum = "sha256 of the compressed shard file"
        self.shards = []
        self.records = 0
        self.errors = 0
        self.errorsBytes = 0
        self.errorsSha256 = nil
        self.mergedFrom = nil
        self.updated = ""
    }

    enum CodingKeys: String, CodingKey {
        case format, status, identity, inputs, inputContent = "input_content", checksum, shards, records, errors
        case errorsBytes = "errors_bytes", errorsSha256 = "errors_sha256", mergedFrom = "merged_from", updated
    }


    public static func read(directory: URL) throws -> RunManifest {
        let url = directory.appendingPathComponent(fileName)
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw IOFormatError.unreadable(file: url.path, reason: "no manifest (is this a bertlrp-batch output directory?)")
        }
        struct Format: Decodable { var format: String }
        do {
            // The format first: an older manifest lacks fields and says so.
            let f = try JSONDecoder().decode(Format.self, from: data)
            guard f.format == formatName else {
                throw IOFormatError.unsupported(file: url.path, detail: "manifest format '\(f.format)', expected '\(formatName)' (a run of an older bertlrp-batch: run it again)")
            }
            return try JSONDecoder().decode(RunManifest.self, from: data)
        } catch let e as IOFormatError {
            throw e
        } catch {
            throw IOFormatError.corrupt(file: url.path, detail: "not a bertlrp-batch manifest")
        }
    }

    /// Writes the manifest atomically: temporary file, fsync, rename.
    public func write(directory: URL) throws {
        var copy = self
        copy.updated = ISO8601DateFormatter().string(from: Date())
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(copy)
        data.append(0x0a)
        try AtomicFile.write(data, to: directory.appendingPathComponent(RunManifest.fileName))
    }
}

/// Everything that must be equal for `--resume` to continue a run and for
/// `merge` to combine runs (workers and the output place may differ).
public struct RunIdentity: Codable, Equatable, Sendable {
    public var tool: String
    public var model: ModelIdentity
    public var methods: [String]
    public var targets: String
    public var maxSeqLength: Int
    public var shardSize: Int
    /// "I/N" or nil for the whole input.
    public var partition: String?
    /// Reader options (format, field names, header), as given.
    public var reader: [String: String]
    /// `--long window` (nil: truncate, absent from older manifests) and its
    /// `--window-stride` when given (nil: the default, half a window).
    public var long: String?
    public var windowStride: Int?

    public init(tool: String, model: ModelIdentity, methods: [String], targets: String, maxSeqLength: Int,
                shardSize: Int, partition: String?, reader: [String: String], long: String? = nil, windowStride: Int? = nil) {
        self.tool = tool
        self.model = model
        self.methods = methods
        self.targets = targets
        self.maxSeqLength = maxSeqLength
        self.shardSize = shardSize
        self.partition = partition
        self.reader = reader
        self.long = long
        self.windowStride = windowStride
    }

    enum CodingKeys: String, CodingKey {
        case tool, model, methods, targets, maxSeqLength = "max_seq_length", shardSize = "shard_size", partition, reader
        case long, windowStride = "window_stride"
    }

    /// The first difference that makes `other` a different job, as a phrase, or nil.
    public func difference(from other: RunIdentity, ignoringPartition: Bool = false, ignoringShardSize: Bool = false,
                           ignoringReader: Bool = false) -> String? {
        // `self` is what is asked for now, `other` what the existing run used.
        if model.hash != other.model.hash {
            return "model differs (the run used \(other.model.path), hash \(other.model.hash.prefix(12)); now \(model.path), hash \(model.hash.prefix(12)))"
        }
        // Another version may compute other numbers: its records do not mix with these.
        if tool != other.tool { return "tool version differs (the run was made by \(other.tool); this is \(tool))" }
        if methods != other.methods {
            return "methods differ (the run used \(other.methods.joined(separator: ",")); now \(methods.joined(separator: ",")))"
        }
        if targets != other.targets { return "targets differ (the run used \(other.targets); now \(targets))" }
        if maxSeqLength != other.maxSeqLength { return "max-seq-length differs (the run used \(other.maxSeqLength); now \(maxSeqLength))" }
        if long != other.long || windowStride != other.windowStride {
            func show(_ i: RunIdentity) -> String {
                guard let long = i.long else { return "--long truncate" }
                return "--long \(long)" + (i.windowStride.map { " --window-stride \($0)" } ?? "")
            }
            return "long-text handling differs (the run used \(show(other)); now \(show(self)))"
        }
        if !ignoringShardSize && shardSize != other.shardSize { return "shard-size differs (the run used \(other.shardSize); now \(shardSize))" }
        if !ignoringPartition && partition != other.partition {
            return "partition differs (the run used \(other.partition ?? "none"); now \(partition ?? "none"))"
        }
        if !ignoringReader && reader != other.reader {
            func show(_ d: [String: String]) -> String { d.keys.sorted().map { "\($0)=\(d[$0]!)" }.joined(separator: " ") }
            return "input options differ (the run used \(show(other.reader)); now \(show(reader)))"
        }
        return nil
    }
}

/// The model a run used: where it was, and the SHA-256 of each file that
/// decides the results; `hash` is the SHA-256 of those "name:hash" lines.
public struct ModelIdentity: Codable, Equatable, Sendable {
    public var path: String
    public var hash: String
    public var files: [String: String]
    public var labels: [String]

    public init(path: String, hash: String, files: [String: String], labels: [String]) {
        self.path = path
        self.hash = hash
        self.files = files
        self.labels = labels
    }

    /// Files of a model directory (docs/CONTRACT.md section 1) that change results.
    public static let hashedFiles = ["config.json", "model.safetensors", "vocab.txt", "tokenizer.json", "tokenizer_config.json"]

    public static func compute(directory: URL, labels: [String]) throws -> ModelIdentity {
        var files: [String: String] = [:]
        for name in hashedFiles {
            let url = directory.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: url.path) {
                files[name] = try SHA256.hexDigest(ofFile: url)
            }
        }
        let summary = files.keys.sorted().map { "\($0):\(files[$0]!)\n" }.joined()
        return ModelIdentity(path: directory.path, hash: SHA256.hex(Array(summary.utf8)), files: files, labels: labels)
    }
}

/// One finished shard.
public struct ShardEntry: Codable, Equatable, Sendable {
    public var file: String
    /// Input indices of the first and last record in the shard.
    public var firstIndex: Int
    public var lastIndex: Int
    public var count: Int
    /// Size and SHA-256 of the compressed file.
    public var bytes: Int
    public var sha256: String
    /// Length of errors.jsonl when this shard was committed.
    public var errorsBytes: Int
    public var errors: Int
    /// How far the inputs had been read when the shard's last record was
    /// (nil in a merged run): what `--resume` checks the inputs against.
    public var inputMark: InputMark?

    public init(file: String, firstIndex: Int, lastIndex: Int, count: Int, bytes: Int, sha256: String, errorsBytes: Int, errors: Int,
                inputMark: InputMark? = nil) {
        self.file = file
        self.firstIndex = firstIndex
        self.lastIndex = lastIndex
        self.count = count
        self.bytes = bytes
        self.sha256 = sha256
        self.errorsBytes = errorsBytes
        self.errors = errors
        self.inputMark = inputMark
    }

    enum CodingKeys: String, CodingKey {
        case file, firstIndex = "first_index", lastIndex = "last_index", count, bytes, sha256
        case errorsBytes = "errors_bytes", errors, inputMark = "input_mark"
    }

    /// Whether the file in `directory` is this shard, byte for byte.
    public func verify(in directory: URL) -> Bool {
        let url = directory.appendingPathComponent(file)
        guard let attrs = try? FileManager.default.attributesOfItem(atPath: url.path),
              (attrs[.size] as? NSNumber)?.intValue == bytes,
              let digest = try? SHA256.hexDigest(ofFile: url) else { return false }
        return digest == sha256
    }
}

/// Whole-file writes that either happen completely or not at all.
public enum AtomicFile {
    public static func write(_ data: Data, to url: URL) throws {
        let tmp = url.deletingLastPathComponent().appendingPathComponent("." + url.lastPathComponent + ".tmp")
        let fd = open(tmp.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw OutputError.errno(tmp.path, "cannot create") }
        var failure = data.withUnsafeBytes { writeAll(fd, $0) }
        if failure == nil && fsync(fd) != 0 { failure = errno }
        close(fd)
        if let failure { throw OutputError.errno(tmp.path, "write failed", code: failure) }
        try rename(tmp, to: url)
    }

    public static func rename(_ from: URL, to: URL) throws {
        guard Foundation.rename(from.path, to.path) == 0 else {
            throw OutputError.errno(to.path, "cannot rename \(from.lastPathComponent)")
        }
        syncDirectory(to.deletingLastPathComponent())
    }

    /// Makes a rename durable (best effort).
    public static func syncDirectory(_ dir: URL) {
        let fd = open(dir.path, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
    }
}
