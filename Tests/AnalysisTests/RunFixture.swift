@testable import Analysis
import Foundation
import Inference
import IO
import Tokenizer
import XCTest

let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let tinyModel = checkout.appendingPathComponent("Tests/Fixtures/tiny-bert/hf")

func temporaryDirectory(_ test: XCTestCase) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bertlrp-analysis-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
    return dir
}

/// A record of a hand-made run: text, label, and per method the scores.
struct FixtureRecord {
    var text: String
    var label: String?
    var topLevel: [String: [Float]] = [:]
    var entry: [String: [Float]] = [:]
    /// Tokens as written (nil: the tokenizer's).
    var tokens: [String]?
}

/// Writes a finished run directory (manifest + one zstd shard) as
/// `attribute` would, with the scores given: the evaluation ranks by
/// whatever a run's scores are, so synthetic ones (with ties) test it as well.
func writeRun(_ dir: URL, model: URL, methods: [String], maxSeqLength: Int = 64,
              records: (BertTokenizer, Engine) throws -> [FixtureRecord]) throws {
    let tokenizer = try BertTokenizer.load(modelDirectory: model)
    let engine = Engine(model: try BertModel(directory: model, relevance: false))
    var lines: [UInt8] = []
    for (i, r) in try records(tokenizer, engine).enumerated() {
        let e = tokenizer.encode(r.text, maxSequenceLength: maxSeqLength)
        let predicted = try engine.run([EncodedInput(ids: e.ids, segments: e.segments)], methods: [], targets: .predicted)[0].predicted
        var o: [UInt8] = Array("{\"index\": \(i)".utf8)
        if let l = r.label { o += Array(", \"label\": ".utf8); JSONText.appendString(l, to: &o) }
        o += Array(", \"text\": ".utf8); JSONText.appendString(r.text, to: &o)
        o += Array(", \"tokens\": ".utf8); JSONText.appendStrings(r.tokens ?? tokenizer.tokens(e.ids), to: &o)
        o += Array(", \"offsets\": [\(e.offsets.map { $0.map { "[\($0.start), \($0.end)]" } ?? "null" }.joined(separator: ", "))]".utf8)
        o += Array(", \"segments\": [\(e.segments.map(String.init).joined(separator: ", "))], \"predicted\": \(predicted)".utf8)
        for (k, v) in r.topLevel.sorted(by: { $0.key < $1.key }) { o += Array(", \"\(k)\": ".utf8); JSONText.appendFloats(v, to: &o) }
        o += Array(", \"attributions\": [{\"target\": \(predicted)".utf8)
        for (k, v) in r.entry.sorted(by: { $0.key < $1.key }) { o += Array(", \"\(k)\": ".utf8); JSONText.appendFloats(v, to: &o) }
        o += Array("}]}\n".utf8)
        lines += o
        _ = i
    }
    let shard = dir.appendingPathComponent(ShardName.of(0))
    try Data(try Zstd.compress(lines)).write(to: shard)
    let count = lines.split(separator: 0x0a).count
    var identityModel = try ModelIdentity.compute(directory: model, labels: [])
    identityModel.labels = try ModelConfig.load(model.appendingPathComponent("config.json")).labels
    let identity = RunIdentity(tool: "test", model: identityModel, methods: methods, targets: "predicted", maxSeqLength: maxSeqLength,
                               shardSize: 1000, partition: nil, reader: [:])
    var m = RunManifest(identity: identity, inputs: ["test"])
    m.status = "complete"
    m.records = count
    m.shards = [ShardEntry(file: shard.lastPathComponent, firstIndex: 0, lastIndex: count - 1, count: count,
                           bytes: try Data(contentsOf: shard).count, sha256: try SHA256.hexDigest(ofFile: shard), errorsBytes: 0, errors: 0)]
    try m.write(directory: dir)
}

func object(_ v: JSONValue?, _ key: String) -> JSONValue? {
    guard case let .object(fields)? = v else { return nil }
    return fields.first { $0.0 == key }?.1
}

func number(_ v: JSONValue?) -> Double? {
    switch v {
    case let .number(x)?: return x
    case let .int(i)?: return Double(i)
    default: return nil
    }
}

func numbers(_ v: JSONValue?) -> [Double]? {
    guard case let .array(xs)? = v else { return nil }
    return xs.compactMap { number($0) }
}
