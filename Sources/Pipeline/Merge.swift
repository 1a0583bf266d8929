import Foundation
import IO

/// `merge DIR... -o DIR`: the records and errors of several complete runs
/// of one job (partitions, reruns) as one ordered set of shards. An index
/// present in several runs is kept once (the first run's record; a record
/// wins over an error for the same index).
///
/// One job means the same model, methods, targets, reader options and
/// inputs by content (length and SHA-256, whatever their names). Every shard
/// is checked against its manifest entry (size, SHA-256, then count and
/// index range while it is read) and every errors.jsonl against the length,
/// SHA-256 and count its manifest records; anything else is refused, and a
/// merge that fails leaves no output behind.
public enum RunMerger {
    public struct Summary: Sendable {
        public var records: Int
        public var errors: Int
        public var duplicates: Int
        public var shards: Int
    }

    /// One run's lines (records or errors) in index order.
    final class LineStream {
        let name: String
        private var sources: [() throws -> ByteSource]
        private var lines: LineReader?
        private var lastIndex = -1
        private(set) var current: (index: Int, line: [UInt8])?
        /// What each source must hold (a shard's manifest entry), checked as it ends.
        private var expected: [(file: String, count: Int, first: Int, last: Int)?]
        private var seen: (count: Int, first: Int, last: Int) = (0, -1, -1)
        private var checking: (file: String, count: Int, first: Int, last: Int)?

        init(name: String, sources: [() throws -> ByteSource], expected: [(file: String, count: Int, first: Int, last: Int)?]? = nil) throws {
            self.name = name
            self.sources = sources
            self.expected = expected ?? sources.map { _ in nil }
            try advance()
        }

        /// The lines of the shard files, decompressed, each checked against its entry.
        convenience init(name: String, directory: URL, shards: [ShardEntry]) throws {
            let urls = shards.map { directory.appendingPathComponent($0.file) }
            try self.init(name: name, sources: urls.map { url in
                { try ZstdDecompressor(name: url.path, source: try FileSource(path: url.path)) }
            }, expected: zip(urls, shards).map { ($0.path, $1.count, $1.firstIndex, $1.lastIndex) })
        }

        /// The end of one source: its lines must be what its manifest entry says.
        private func endSource() throws {
            lines = nil
            if let e = checking, (seen.count, seen.first, seen.last) != (e.count, e.first, e.last) {
                throw RunSetupError("\(e.file): holds \(seen.count) records (indices \(seen.first)-\(seen.last)); its manifest says \(e.count) (indices \(e.first)-\(e.last))")
            }
            checking = nil
        }

        func advance() throws {
            while true {
                if lines == nil {
                    guard !sources.isEmpty else { current = nil; return }
                    lines = LineReader(source: try sources.removeFirst()())
                    checking = expected.removeFirst()
                    seen = (0, -1, -1)
                }
                guard let line = try lines!.nextLine() else { try endSource(); continue }
                if line.isEmpty { continue }
                guard let index = RecordJSON.index(ofLine: line) else {
                    throw RunSetupError("\(name): a line does not start with {\"index\": N")
                }
                guard index > lastIndex else {
                    throw RunSetupError("\(name): records out of order (index \(index) after \(lastIndex))")
                }
                lastIndex = index
                if seen.count == 0 { seen.first = index }
                seen.count += 1
                seen.last = index
                current = (index, Array(line))
                return
            }
        }
    }

    public static func merge(_ dirs: [URL], into out: URL, shardSize: Int?) throws -> Summary {
        guard !dirs.isEmpty else { throw RunSetupError("merge: name at least one run directory") }
        var manifests: [RunManifest] = []
        for d in dirs {
            let m: RunManifest
            do { m = try RunManifest.read(directory: d) } catch { throw RunSetupError("\(error)") }
            let path = d.appendingPathComponent(RunManifest.fileName).path
            guard m.status == "complete" else {
                throw RunSetupError("\(path): the run is not complete; finish it with --resume before merging")
            }
            if let first = manifests.first {
                if let diff = first.identity.difference(from: m.identity, ignoringPartition: true, ignoringShardSize: true) {
                    throw RunSetupError("\(path): cannot merge with \(dirs[0].path): \(diff)")
                }
                if let diff = inputDifference(first.inputContent, m.inputContent) {
                    throw RunSetupError("\(path): cannot merge with \(dirs[0].path): \(diff)")
                }
            }
            for s in m.shards where !s.verify(in: d) {
                throw RunSetupError("\(d.appendingPathComponent(s.file).path): does not match its size and checksum in the manifest")
            }
            manifests.append(m)
        }
        let outID = FileID(path: out.path)
        for d in dirs where outID != nil && FileID(path: d.path) == outID {
            throw RunSetupError("\(out.path): the merge output must not be one of its inputs (\(d.path))")
        }
        // errors.jsonl exactly as each manifest vouches for it (small: one line a bad record).
        var errorFiles: [[UInt8]] = []
        for (d, m) in zip(dirs, manifests) {
            let errorsURL = d.appendingPathComponent(RunManifest.errorsFileName)
            var bytes: [UInt8] = []
            if FileManager.default.fileExists(atPath: errorsURL.path) || m.errorsBytes > 0 {
                do { bytes = Array(try Data(contentsOf: errorsURL)) } catch {
                    throw RunSetupError("\(errorsURL.path): cannot read: \(systemReason(error))")
                }
            }
            let lines = bytes.split(separator: 0x0A).count
            guard bytes.count == m.errorsBytes, m.errorsSha256.map({ SHA256.hex(bytes) == $0 }) ?? bytes.isEmpty, lines == m.errors else {
                throw RunSetupError("\(errorsURL.path): \(bytes.count) bytes, \(lines) lines; its manifest says \(m.errorsBytes) bytes, \(m.errors) bad records\(m.errorsSha256 == nil ? "" : " and another SHA-256"): refusing to merge what may have lost records")
            }
            errorFiles.append(bytes)
        }

        var identity = manifests[0].identity
        identity.shardSize = shardSize ?? identity.shardSize
        identity.partition = mergedPartition(manifests.map(\.identity.partition))
        // Merge has no --resume: an interrupted merge is simply run again.
        let sink = try RunDirectory.start(out, identity: identity, inputs: manifests[0].inputs,
                                          whenTaken: "choose another -o, or remove it (an interrupted merge is simply run again)")
        do {
            let summary = try merge(dirs, manifests, errorFiles, into: sink)
            return summary
        } catch {
            sink.discard()
            throw error
        }
    }

    private static func merge(_ dirs: [URL], _ manifests: [RunManifest], _ errorFiles: [[UInt8]], into sink: DirectorySink) throws -> Summary {
        var recordStreams: [LineStream] = []
        var errorStreams: [LineStream] = []
        for (i, (d, m)) in zip(dirs, manifests).enumerated() {
            recordStreams.append(try LineStream(name: d.path, directory: d, shards: m.shards))
            let errorBytes = errorFiles[i]
            errorStreams.append(try LineStream(name: d.appendingPathComponent(RunManifest.errorsFileName).path, sources: [{ MemorySource(errorBytes) }]))
        }

        var summary = Summary(records: 0, errors: 0, duplicates: 0, shards: 0)
        while true {
            let next = (recordStreams + errorStreams).compactMap { $0.current?.index }.min()
            guard let index = next else { break }
            var chosenRecord: [UInt8]?
            var chosenError: [UInt8]?
            var copies = 0
            for s in recordStreams where s.current?.index == index {
                if chosenRecord == nil { chosenRecord = s.current!.line }
                copies += 1
                try s.advance()
            }
            for s in errorStreams where s.current?.index == index {
                if chosenError == nil { chosenError = s.current!.line }
                copies += 1
                try s.advance()
            }
            summary.duplicates += copies - 1
            if let r = chosenRecord {
                try sink.write(line: r, index: index)
                summary.records += 1
            } else if let e = chosenError {
                try sink.writeRawError(e)
                summary.errors += 1
            }
        }
        sink.setMerged(from: dirs.map(\.path), inputContent: manifests[0].inputContent)
        try sink.finish()
        summary.shards = sink.manifest.shards.count
        return summary
    }

    /// The first difference between two runs' inputs, by content, or nil.
    static func inputDifference(_ a: [InputContent], _ b: [InputContent]) -> String? {
        func show(_ c: [InputContent]) -> String {
            c.isEmpty ? "none recorded" : c.map { "\($0.name) (\($0.bytes) bytes, SHA-256 \($0.sha256.prefix(12)))" }.joined(separator: ", ")
        }
        if a.isEmpty || a.count != b.count || zip(a, b).contains(where: { !$0.sameContent(as: $1) }) {
            return "inputs differ (the first run read \(show(a)); this one \(show(b)))"
        }
        return nil
    }

    /// "0/3" + "1/3" + "2/3" is the whole input (nil); otherwise the parts, joined.
    static func mergedPartition(_ parts: [String?]) -> String? {
        if parts.contains(where: { $0 == nil }) { return nil }
        let ps = Set(parts.compactMap { $0 }).compactMap(Partition.parse)
        if let n = ps.first?.n, ps.allSatisfy({ $0.n == n }), Set(ps.map(\.i)).count == n { return nil }
        return ps.sorted { ($0.n, $0.i) < ($1.n, $1.i) }.map(\.description).joined(separator: "+")
    }
}

