import Foundation
import IO

/// `merge DIR... -o DIR`: the records and errors of several complete runs
/// of one job (partitions, reruns) as one ordered set of shards. An index
/// present in several runs is kept once (the first run's record; a record
/// wins over an error for the same index).
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

        init(name: String, sources: [() throws -> ByteSource]) throws {
            self.name = name
            self.sources = sources
            try advance()
        }

        /// The lines of the shard files, decompressed.
        convenience init(name: String, shards: [URL]) throws {
            try self.init(name: name, sources: shards.map { url in
                { try ZstdDecompressor(name: url.path, source: try FileSource(path: url.path)) }
            })
        }

        func advance() throws {
            while true {
                if lines == nil {
                    guard !sources.isEmpty else { current = nil; return }
                    lines = LineReader(source: try sources.removeFirst()())
                }
                guard let line = try lines!.nextLine() else { lines = nil; continue }
                if line.isEmpty { continue }
                guard let index = RecordJSON.index(ofLine: line) else {
                    throw RunSetupError("\(name): a line does not start with {\"index\": N")
                }
                guard index > lastIndex else {
                    throw RunSetupError("\(name): records out of order (index \(index) after \(lastIndex))")
                }
                lastIndex = index
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
                if let diff = first.identity.difference(from: m.identity, ignoringPartition: true, ignoringShardSize: true, ignoringReader: true) {
                    throw RunSetupError("\(path): cannot merge with \(dirs[0].path): \(diff)")
                }
            }
            for s in m.shards where !s.verify(in: d) {
                throw RunSetupError("\(d.appendingPathComponent(s.file).path): does not match its checksum in the manifest")
            }
            manifests.append(m)
        }
        let resolvedOut = out.standardizedFileURL.resolvingSymlinksInPath()
        for d in dirs where d.standardizedFileURL.resolvingSymlinksInPath() == resolvedOut {
            throw RunSetupError("\(out.path): the merge output must not be one of its inputs")
        }

        var identity = manifests[0].identity
        identity.shardSize = shardSize ?? identity.shardSize
        identity.partition = mergedPartition(manifests.map(\.identity.partition))
        // Merge has no --resume: an interrupted merge is simply run again.
        let sink = try RunDirectory.start(out, identity: identity, inputs: manifests[0].inputs,
                                          whenTaken: "choose another -o, or remove it (an interrupted merge is simply run again)")

        var recordStreams: [LineStream] = []
        var errorStreams: [LineStream] = []
        for (d, m) in zip(dirs, manifests) {
            recordStreams.append(try LineStream(name: d.path, shards: m.shards.map { d.appendingPathComponent($0.file) }))
            // errors.jsonl up to the length the manifest vouches for (small: one line a bad record).
            let errorsURL = d.appendingPathComponent(RunManifest.errorsFileName)
            var errorBytes: [UInt8] = []
            if m.errorsBytes > 0 {
                do { errorBytes = Array(try Data(contentsOf: errorsURL).prefix(m.errorsBytes)) } catch {
                    throw RunSetupError("\(errorsURL.path): cannot read: \(systemReason(error))")
                }
            }
            errorStreams.append(try LineStream(name: errorsURL.path, sources: [{ MemorySource(errorBytes) }]))
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
        sink.setMergedFrom(dirs.map(\.path))
        try sink.finish()
        summary.shards = sink.manifest.shards.count
        return summary
    }

    /// "0/3" + "1/3" + "2/3" is the whole input (nil); otherwise the parts, joined.
    static func mergedPartition(_ parts: [String?]) -> String? {
        if parts.contains(where: { $0 == nil }) { return nil }
        let ps = Set(parts.compactMap { $0 }).compactMap(Partition.parse)
        if let n = ps.first?.n, ps.allSatisfy({ $0.n == n }), Set(ps.map(\.i)).count == n { return nil }
        return ps.sorted { ($0.n, $0.i) < ($1.n, $1.i) }.map(\.description).joined(separator: "+")
    }
}

