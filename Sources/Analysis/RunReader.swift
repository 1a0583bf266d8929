import Foundation
import IO
import Inference
import Tokenizer

/// A problem with the run, the model or the options (exit 2): one line
/// naming the file, record or option.
public struct AnalysisError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One record of a run's shards (docs/CONTRACT.md section 3), as the analyses
/// need it: the text, the tokens, the prediction and every method's scores.
public struct RunRecord {
    public var index: Int
    public var id: String?
    public var label: String?
    public var text: String
    public var textB: String?
    public var tokens: [String]
    public var segments: [Int32]
    /// false for the `[CLS]`/`[SEP]` the template added (offset null).
    public var isWord: [Bool]
    public var predicted: Int
    /// The model's class probabilities.
    public var probs: [Float]
    /// Target-independent scores at the top level (`lat`, `rollout`).
    public var topLevel: [String: [Float]]
    /// `attributions`: per explained target, its methods' scores.
    public var attributions: [(target: Int, scores: [String: [Float]])]

    /// The scores of `method` for `target` (nil: the first `attributions`
    /// entry); top-level methods do not depend on the target. nil when the
    /// record does not have them.
    public func scores(_ method: String, target: Int?) -> [Float]? {
        if let v = topLevel[method] { return v }
        let entry = target.map { t in attributions.first { $0.target == t } } ?? attributions.first
        return entry?.scores[method]
    }

    static let notScores: Set<String> = ["index", "id", "label", "text", "text_b", "tokens", "offsets", "segments",
                                         "truncated", "windows", "logits", "probs", "predicted", "attributions"]

    /// Parses one JSONL line; nil with the reason when it is not a record.
    static func parse(_ line: ArraySlice<UInt8>) -> Result<RunRecord, AnalysisError> {
        guard let any = try? JSONSerialization.jsonObject(with: Data(line)), let o = any as? [String: Any] else {
            return .failure(AnalysisError("not a JSON object"))
        }
        func floats(_ v: Any?) -> [Float]? {
            guard let a = v as? [Any] else { return nil }
            var out = [Float]()
            out.reserveCapacity(a.count)
            for x in a {
                if let n = x as? NSNumber { out.append(Float(n.doubleValue)) } else if x is NSNull { out.append(.nan) } else { return nil }
            }
            return out
        }
        guard let index = (o["index"] as? NSNumber)?.intValue else { return .failure(AnalysisError("no index")) }
        guard let text = o["text"] as? String, let tokens = o["tokens"] as? [String],
              let segments = (o["segments"] as? [NSNumber])?.map({ Int32(truncating: $0) }),
              let offsets = o["offsets"] as? [Any], let predicted = (o["predicted"] as? NSNumber)?.intValue,
              segments.count == tokens.count, offsets.count == tokens.count else {
            return .failure(AnalysisError("record \(index): text, tokens, offsets, segments or predicted missing or of other lengths"))
        }
        var top: [String: [Float]] = [:]
        for (k, v) in o where !notScores.contains(k) {
            if let f = floats(v), f.count == tokens.count { top[k] = f }
        }
        var entries: [(target: Int, scores: [String: [Float]])] = []
        for e in (o["attributions"] as? [[String: Any]]) ?? [] {
            guard let t = (e["target"] as? NSNumber)?.intValue else { return .failure(AnalysisError("record \(index): an attributions entry has no target")) }
            var s: [String: [Float]] = [:]
            for (k, v) in e where k != "target" {
                if let f = floats(v), f.count == tokens.count { s[k] = f }
            }
            entries.append((t, s))
        }
        let label: String? = (o["label"] as? String) ?? (o["label"] as? NSNumber).map { "\($0)" }
        let id: String? = (o["id"] as? String) ?? (o["id"] as? NSNumber).map { "\($0)" }
        return .success(RunRecord(index: index, id: id, label: label, text: text, textB: o["text_b"] as? String, tokens: tokens,
                                  segments: segments, isWord: offsets.map { !($0 is NSNull) }, predicted: predicted,
                                  probs: floats(o["probs"]) ?? [],
                                  topLevel: top, attributions: entries))
    }
}

/// A finished run directory: its manifest says complete and every shard
/// matches its checksum (as `merge` checks, Pipeline/Merge.swift).
public struct FinishedRun {
    public let directory: URL
    public let manifest: RunManifest

    public init(_ directory: URL) throws {
        self.directory = directory
        let m: RunManifest
        do { m = try RunManifest.read(directory: directory) } catch { throw AnalysisError("\(error)") }
        let path = directory.appendingPathComponent(RunManifest.fileName).path
        guard m.status == "complete" else {
            throw AnalysisError("\(path): the run is not complete (status \(m.status)); finish it with attribute --resume first")
        }
        for s in m.shards where !s.verify(in: directory) {
            throw AnalysisError("\(directory.appendingPathComponent(s.file).path): does not match its checksum in the manifest")
        }
        manifest = m
    }

    /// The methods the run computed, as the manifest names them.
    public var methods: [String] { manifest.identity.methods }

    /// Calls `body` with each record in index order, one shard open at a
    /// time (memory bounded by one line).
    public func forEachRecord(_ body: (RunRecord) throws -> Void) throws {
        for s in manifest.shards {
            let url = directory.appendingPathComponent(s.file)
            let lines: LineReader
            do { lines = LineReader(source: try ZstdDecompressor(name: url.path, source: try FileSource(path: url.path))) } catch {
                throw AnalysisError("\(url.path): cannot read: \(error)")
            }
            while true {
                let next: ArraySlice<UInt8>?
                do { next = try lines.nextLine() } catch { throw AnalysisError("\(url.path): \(error)") }
                guard let line = next else { break }
                if line.isEmpty { continue }
                switch RunRecord.parse(line) {
                case let .success(r): try body(r)
                case let .failure(e): throw AnalysisError("\(url.path): line \(lines.lineNumber): \(e)")
                }
            }
        }
    }
}

/// Methods whose scores carry a sign (positive = evidence for the target,
/// docs/CONTRACT.md 5b): ranked by score. Every other method is ranked by
/// magnitude (the seed's four are non-negative norms or |R| sums already).
public let signedMethods: Set<String> = ["ixg", "attnlrp", "cplrp", "ig"]

/// `--target` of the analyses: which `attributions` entry a record's scores come from.
public enum ScoreTarget: Equatable, CustomStringConvertible {
    /// The run's first entry per record.
    case first
    /// The entry for the record's predicted class.
    case predicted
    case classIndex(Int)

    public static func parse(_ text: String?, labels: [String]) throws -> ScoreTarget {
        guard let text else { return .first }
        if text == "predicted" { return .predicted }
        if let i = labels.firstIndex(of: text) { return .classIndex(i) }
        if let n = Int(text), n >= 0, n < labels.count { return .classIndex(n) }
        throw AnalysisError("--target \(text): expected predicted, a class number (0..<\(labels.count)) or a class name (\(labels.joined(separator: ", ")))")
    }

    func resolve(_ r: RunRecord) -> Int? {
        switch self {
        case .first: return nil
        case .predicted: return r.predicted
        case let .classIndex(i): return i
        }
    }

    public var description: String {
        switch self {
        case .first: return "first"
        case .predicted: return "predicted"
        case let .classIndex(i): return String(i)
        }
    }
}

extension RunRecord {
    /// The method's scores for the target, or the one-line reason there are none.
    func requireScores(_ method: String, target: ScoreTarget, run: String) throws -> [Float] {
        let t = target.resolve(self)
        if let s = scores(method, target: t) { return s }
        if topLevel[method] == nil, let t, !attributions.isEmpty, !attributions.contains(where: { $0.target == t }) {
            throw AnalysisError("\(run): record \(index) has no attributions for target \(t) (explained: \(attributions.map { String($0.target) }.joined(separator: ",")))")
        }
        throw AnalysisError("\(run): record \(index) has no '\(method)' scores")
    }
}

/// The run's model, found where the manifest says or at `override`, and
/// checked by its hash (docs/CONTRACT.md section 7: evaluate uses the run's model).
public struct RunModel {
    public let directory: URL
    public let hash: String
    public let model: BertModel
    public let tokenizer: BertTokenizer

    public init(run: FinishedRun, override: URL?) throws {
        let expected = run.manifest.identity.model
        let dir = override ?? URL(fileURLWithPath: expected.path)
        guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("config.json").path) else {
            if override != nil { throw AnalysisError("\(dir.path): no model here (no config.json)") }
            throw AnalysisError("\(dir.path): the run's model is not there any more; name where it lies now with --model DIR")
        }
        let identity: ModelIdentity
        do { identity = try ModelIdentity.compute(directory: dir, labels: []) } catch { throw AnalysisError("\(dir.path): \(error)") }
        guard identity.hash == expected.hash else {
            throw AnalysisError("\(dir.path): not the run's model (hash \(identity.hash.prefix(12)), the run used \(expected.hash.prefix(12)) from \(expected.path))")
        }
        directory = dir
        hash = identity.hash
        do {
            model = try BertModel(directory: dir, relevance: false)
            tokenizer = try BertTokenizer.load(modelDirectory: dir)
        } catch { throw AnalysisError("\(dir.path): \(error)") }
    }
}
