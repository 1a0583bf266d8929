import Foundation
import Inference
import IO
@testable import Pipeline
import Tokenizer
import XCTest

/// `--long window` with the bundled model (README "Long documents"): each
/// window run alone as an ordinary example, for the class of the
/// document's mean logits, reproduces the record by the stated averaging.
final class LongDocumentTests: XCTestCase {
    static let modelDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("models/minilm-sst2")

    /// SST-2 dev sentences: `positive` positive ones, then `negative` negative ones, as one text.
    func document(positive: Int, negative: Int) throws -> String {
        let rows = try String(contentsOfFile: sst2Path(), encoding: .utf8).split(separator: "\n").dropFirst()
            .map { $0.split(separator: "\t") }
        let pos = rows.filter { $0[1] == "1" }.prefix(positive).map { String($0[0]) }
        let neg = rows.filter { $0[1] == "0" }.prefix(negative).map { String($0[0]) }
        return (pos + neg).joined(separator: " ")
    }

    func run(_ text: String, target: TargetOption, methods: Methods, maxLength: Int, batchTokens: Int) throws
        -> (record: [String: Any], stats: PipelineStats.Snapshot, loaded: LoadedModel) {
        let loaded = try LoadedModel.load(Self.modelDir, workers: 2, igSteps: 4)
        var options = PipelineOptions(methods: methods, target: target, labels: loaded.labels, maxSeqLength: maxLength,
                                      workers: 2, long: .window(stride: nil))
        options.batchTokens = batchTokens
        let pipeline = Pipeline(options: options, encoder: loaded.encoder, makeRunner: loaded.makeRunner)
        let sink = MemorySink()
        let item = ReadItem.record(InputRecord(index: 0, input: "test", line: 1, text: text))
        var items = [item]
        try pipeline.run(next: { items.popLast() }, sink: sink)
        XCTAssertEqual(sink.errors.count, 0, "\(sink.errors)")
        let record = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(try XCTUnwrap(sink.lines.first).utf8)) as? [String: Any])
        return (record, pipeline.stats.snapshot, loaded)
    }

    /// Windows of 64 tokens over ~390 tokens of text whose first part is
    /// positive and the rest negative, two windows a micro-batch, one
    /// worker's view of the mean at a time: the first windows are explained
    /// for a provisional class and run again for the document's.
    func testWindowsAloneReproduceTheRecord() throws {
        let text = try document(positive: 4, negative: 14)
        let methods: Methods = .every
        for (target, methods) in [(TargetOption.predicted, methods), (.all, [.gs, .lat])] {
            let (record, stats, loaded) = try run(text, target: target, methods: methods, maxLength: 64, batchTokens: 128)
            let tokens = try XCTUnwrap(record["tokens"] as? [String])
            let windows = try XCTUnwrap(record["windows"] as? [[Int]])
            XCTAssertGreaterThan(windows.count, 8)
            XCTAssertEqual(record["truncated"] as? Bool, false)
            XCTAssertEqual(tokens.first, "[CLS]")
            XCTAssertEqual(tokens.last, "[SEP]")
            XCTAssertEqual(tokens.filter { $0 == "[SEP]" || $0 == "[CLS]" }.count, 2)

            // Each window alone, as an ordinary example.
            let tokenizer = try BertTokenizer.load(modelDirectory: Self.modelDir)
            let whole = tokenizer.encode(text)
            XCTAssertEqual(tokenizer.tokens(whole.ids), tokens)
            let cut = try XCTUnwrap(try TokenWindows.of(segments: whole.segments, maxLength: 64, stride: nil))
            XCTAssertEqual(cut.spans.map { [$0.lowerBound, $0.upperBound] }, windows)
            let inputs = cut.spans.indices.map { EncodedInput(ids: cut.cut(whole.ids, $0), segments: cut.cut(whole.segments, $0)) }
            let runner = try loaded.makeRunner()
            let heads = try inputs.map { try runner.run([$0], methods: [], targets: [.predicted])[0] }
            // The document's class: the mean of the windows' logits, in double.
            let mean = (0..<2).map { c in heads.reduce(0.0) { $0 + Double($1.logits[c]) } / Double(heads.count) }
            let docClass = mean[1] > mean[0] ? 1 : 0
            let classes = target == .all ? [0, 1] : [docClass]
            let alone = try inputs.map { try runner.run([$0], methods: methods, targets: [.classes(classes)])[0] }
            if target == .predicted {
                XCTAssertNotEqual(Set(heads.map(\.predicted)).count, 1, "the windows should disagree")
                XCTAssertGreaterThan(stats.windowsRedone, 0, "some windows explained for a provisional class")
            }
            XCTAssertEqual(stats.windows, windows.count)

            let logits = try XCTUnwrap(record["logits"] as? [Double])
            for c in 0..<2 { XCTAssertEqual(logits[c], mean[c], accuracy: 1e-5) }
            XCTAssertEqual(record["predicted"] as? Int, docClass)
            // The mean over the windows holding each token (specials: every window's own).
            func expected(_ pick: (ExampleResult) -> [Float]) -> [Double] {
                var sum = [Double](repeating: 0, count: tokens.count), n = sum
                for (k, r) in alone.enumerated() {
                    for (v, p) in zip(pick(r), cut.positions(k)) {
                        sum[p] += Double(v)
                        n[p] += 1
                    }
                }
                XCTAssertFalse(n.contains(0), "a token in no window")
                return zip(sum, n).map { $0 / $1 }
            }
            var worst: [String: Double] = [:]
            func check(_ key: String, _ got: Any?, _ want: [Double], tolerance: Double) throws {
                let g = try XCTUnwrap(got as? [Double], key)
                XCTAssertEqual(g.count, want.count, key)
                let scale = max(1e-30, want.map(abs).max()!)
                let err = zip(g, want).map { abs($0 - $1) }.max()! / scale
                worst[key] = max(worst[key] ?? 0, err)
                XCTAssertLessThanOrEqual(err, tolerance, key)
            }
            // Tolerances as BatchInvarianceTests': the record's windows ran two to a
            // micro-batch, these alone (OpenBLAS may round another matrix size
            // differently, which the backward passes amplify).
            try check("lat", record["lat"], expected { $0.lat! }, tolerance: 1e-5)
            let entries = try XCTUnwrap(record["attributions"] as? [[String: Any]])
            XCTAssertEqual(entries.map { $0["target"] as? Int }, classes)
            for (a, entry) in entries.enumerated() {
                try check("gs", entry["gs"], expected { $0.attributions[a].gs! }, tolerance: 1e-3)
                guard methods == .every else { continue }
                try check("rollout", record["rollout"], expected { $0.rollout! }, tolerance: 1e-5)
                try check("gi", entry["gi"], expected { $0.attributions[a].gi! }, tolerance: 1e-3)
                try check("lrp", entry["lrp"], expected { $0.attributions[a].lrp! }, tolerance: 1e-2)
                for key in ["ixg", "attnlrp", "cplrp", "ig"] {
                    let path: KeyPath<Attribution, [Float]?> = key == "ixg" ? \.ixg : key == "attnlrp" ? \.attnlrp : key == "cplrp" ? \.cplrp : \.ig
                    try check(key, entry[key], expected { $0.attributions[a][keyPath: path]! }, tolerance: 1e-4)
                }
                let delta = alone.reduce(0.0) { $0 + Double($1.attributions[a].igDelta!) } / Double(alone.count)
                XCTAssertEqual(try XCTUnwrap(entry["ig_delta"] as? Double), delta, accuracy: 1e-4)
            }
            print("target \(target): \(windows.count) windows, \(stats.windowsRedone) run twice; worst relative differences \(worst)")
        }
    }

    /// A text that fits one window: the record `--long truncate` makes, byte for byte.
    func testFitsOneWindowIsTheTruncateRecord() throws {
        let loaded = try LoadedModel.load(Self.modelDir, workers: 2, igSteps: 4)
        let input = sst2Path()
        func lines(_ long: LongMode) throws -> [String] {
            var options = PipelineOptions(methods: .every, labels: loaded.labels, maxSeqLength: 128, workers: 2, long: long)
            options.batchTokens = loaded.batchTokens(methods: .every, targetsPerExample: 1, longest: 128)
            let reader = RecordReader(inputs: [input])
            var n = 0
            let sink = MemorySink()
            try Pipeline(options: options, encoder: loaded.encoder, makeRunner: loaded.makeRunner).run(next: {
                n += 1
                return n > 12 ? nil : try reader.next()
            }, sink: sink)
            return sink.lines
        }
        let truncate = try lines(.truncate), window = try lines(.window(stride: 7))
        XCTAssertEqual(truncate.count, 12)
        XCTAssertEqual(window, truncate)
        XCTAssertFalse(window.contains { $0.contains("\"windows\"") })
    }
}

/// The pipeline's handling of long records with the fakes: the records'
/// values do not depend on how the windows were batched or how long they
/// waited (a small gate, long records heavier than half of it).
final class LongDocumentStreamingTests: XCTestCase {
    func testLongRecordsStreamThroughASmallGateInOrder() throws {
        let dir = try temporaryDirectory(self)
        let input = dir.appendingPathComponent("in.jsonl")
        let words = ["good", "bad", "film", "plot", "acting", "dull", "bright", "slow", "moving", "end"]
        var lines: [String] = []
        for i in 0..<40 {
            // Every third record short (one window), the others 20 to 180 words.
            let n = i % 3 == 0 ? 4 : 20 + (i * 37) % 160
            let text = (0..<n).map { words[($0 * 7 + i) % words.count] }.joined(separator: " ")
            lines.append(i == 17 ? "{not json" : "{\"text\": \"\(text)\"}")
        }
        try (lines.joined(separator: "\n") + "\n").write(to: input, atomically: true, encoding: .utf8)
        func run(window: Int, batchTokens: Int, workers: Int, delay: Int) throws -> MemorySink {
            let sink = MemorySink()
            var options = PipelineOptions(methods: .all, labels: testLabels, maxSeqLength: 12, workers: workers,
                                          batchTokens: batchTokens, maxBatch: 3, window: window, long: .window(stride: 4))
            options.shardSize = 7
            let stats = try runPipeline(input: input.path, sink: sink, options: options, delayPerToken: delay)
            XCTAssertGreaterThan(stats.snapshot.windows, 200)
            return sink
        }
        // A sort window of 4 examples: the gate holds 16, a long record weighs at most 8.
        let small = try run(window: 4, batchTokens: 24, workers: 3, delay: 20)
        let large = try run(window: 512, batchTokens: 4096, workers: 1, delay: 0)
        XCTAssertEqual(small.indices, (0..<40).filter { $0 != 17 })
        XCTAssertEqual(small.errors.map(\.index), [17])
        XCTAssertEqual(small.lines, large.lines)
        let records = small.lines.map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        for (i, r) in zip(small.indices, records) {
            let tokens = r["tokens"] as! [String]
            XCTAssertEqual(r["windows"] == nil, i % 3 == 0, "record \(i)")
            XCTAssertEqual((r["lat"] as! [Any]).count, tokens.count)
            XCTAssertEqual(((r["attributions"] as! [[String: Any]])[0]["gs"] as! [Any]).count, tokens.count)
        }
    }
}
