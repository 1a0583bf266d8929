import Foundation
import Inference
import IO
@testable import Pipeline
import PipelineTestSupport
import Tokenizer
import XCTest

final class BatchingTests: XCTestCase {
    func testPlanCoversEveryRecordOnceWithinBudget() {
        let lengths = (0..<500).map { ($0 * 7919) % 120 + 3 }
        let plan = Batching.plan(lengths: lengths, budget: 512, maxBatch: 16)
        XCTAssertEqual(plan.flatMap { $0 }.sorted(), Array(0..<500))
        for b in plan {
            let longest = b.map { lengths[$0] }.max()!
            XCTAssertLessThanOrEqual(b.count, 16)
            XCTAssertTrue(b.count == 1 || b.count * longest <= 512, "batch \(b.count) x \(longest) over budget")
        }
        // Sorting by length keeps padding small.
        let padded = plan.reduce(0) { $0 + $1.count * $1.map { lengths[$0] }.max()! }
        let real = lengths.reduce(0, +)
        XCTAssertLessThan(Double(padded) / Double(real), 1.1)
    }

    func testOverlongRecordGetsItsOwnBatch() {
        XCTAssertEqual(Batching.plan(lengths: [10, 600, 10], budget: 100, maxBatch: 8), [[0, 2], [1]])
    }
}

final class RecordJSONTests: XCTestCase {
    func testKeyOrderEscapingAndFloatRoundTrip() throws {
        let record = InputRecord(index: 16, input: "x", line: 18, id: "dev-17", text: "it's a \"charming\"\n\u{1}é", textB: "b", label: "1")
        let tok = TokenizedInput(encoding: Encoding(ids: [101, 5, 6, 102], segments: [0, 0, 0, 0],
                                                    offsets: [nil, TokenOffset(start: 0, end: 2), TokenOffset(start: 7, end: 8), nil],
                                                    truncated: false, isPair: false),
                                 tokens: ["[CLS]", "it", "\"", "[SEP]"])
        let values: [Float] = [0.1, 1e-30, -3.4028235e38, 1.0000001, Float.leastNonzeroMagnitude, 123456.79, -0.0]
        let result = ExampleResult(logits: [-2.09, 2.17], probs: [0.014, 0.986], predicted: 1, lat: values,
                                   attributions: [Attribution(target: 1, gs: values, gi: values, lrp: [Float.nan, .infinity, 1, 2, 3, 4, 5])])
        let line = String(decoding: RecordJSON.line(record: record, tokenized: tok, result: result, methods: .all), as: UTF8.self)
        let keys = ["index", "id", "label", "text", "text_b", "tokens", "offsets", "segments", "truncated", "logits", "probs", "predicted", "lat", "attributions"]
        var last = line.startIndex
        for k in keys {
            let r = try XCTUnwrap(line.range(of: "\"\(k)\": ", range: last..<line.endIndex), "key \(k) missing or out of order")
            last = r.upperBound
        }
        XCTAssertFalse(line.contains("nan") || line.contains("inf"))
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(obj["text"] as? String, record.text)
        let lat = try XCTUnwrap(obj["lat"] as? [NSNumber])
        XCTAssertEqual(lat.map { Float($0.doubleValue) }.map(\.bitPattern), values.map(\.bitPattern))
        XCTAssertEqual(RecordJSON.index(ofLine: Array(line.utf8)), 16)
        let attr = try XCTUnwrap((obj["attributions"] as? [[String: Any]])?.first)
        XCTAssertTrue(attr["lrp"] is [Any])
        XCTAssertTrue((attr["lrp"] as! [Any])[0] is NSNull)
    }

    func testOnlyRequestedMethodsAppear() throws {
        let record = InputRecord(index: 0, input: "x", line: 1, text: "a")
        let tok = TokenizedInput(encoding: Encoding(ids: [101, 5, 102], segments: [0, 0, 0], offsets: [nil, TokenOffset(start: 0, end: 1), nil],
                                                    truncated: true, isPair: false),
                                 tokens: ["[CLS]", "a", "[SEP]"])
        let r = try FakeRunner(numClasses: 2).run([EncodedInput(ids: tok.ids, segments: tok.segments)], methods: .lat, targets: [.predicted])[0]
        let line = String(decoding: RecordJSON.line(record: record, tokenized: tok, result: r, methods: .lat), as: UTF8.self)
        XCTAssertTrue(line.contains("\"lat\": "))
        XCTAssertFalse(line.contains("attributions"))
        XCTAssertFalse(line.contains("\"id\""))
        XCTAssertTrue(line.contains("\"truncated\": true"))
    }
}

final class TargetTests: XCTestCase {
    func testParseAndGold() {
        XCTAssertEqual(try TargetOption.parse("positive", labels: testLabels).get(), .classIndex(1))
        XCTAssertEqual(try TargetOption.parse("0", labels: testLabels).get(), .classIndex(0))
        XCTAssertNil(try? TargetOption.parse("2", labels: testLabels).get())
        XCTAssertNil(try? TargetOption.parse("neutral", labels: testLabels).get())
        let gold = TargetOption.gold
        XCTAssertEqual(try gold.selection(label: "1", labels: testLabels).get(), .classes([1]))
        XCTAssertEqual(try gold.selection(label: "Negative", labels: testLabels).get(), .classes([0]))
        XCTAssertNil(try? gold.selection(label: "7", labels: testLabels).get())
        XCTAssertNil(try? gold.selection(label: nil, labels: testLabels).get())
        XCTAssertEqual(try Methods.parse("lat,gs").get(), [.gs, .lat])
        XCTAssertNil(try? Methods.parse("gs,shap").get())
        XCTAssertEqual(Partition.parse("2/3"), Partition(i: 2, n: 3))
        XCTAssertNil(Partition.parse("3/3"))
    }
}

final class SHA256Tests: XCTestCase {
    func testKnownVectors() {
        XCTAssertEqual(SHA256.hex([]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // Fed in odd pieces.
        var h = SHA256()
        let a = [UInt8](repeating: 0x61, count: 1000)
        for _ in 0..<1000 { a.withUnsafeBytes { h.update(UnsafeRawBufferPointer(rebasing: $0[0..<333])); h.update(UnsafeRawBufferPointer(rebasing: $0[333...])) } }
        XCTAssertEqual(h.hexDigest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}

final class PipelineOrderTests: XCTestCase {
    /// Any worker count, window and budget: the same lines in input order.
    func testOutputIndependentOfWorkersAndBatching() throws {
        let configs: [(Int, Int, Int)] = [(1, 512, 2048), (3, 64, 300), (2, 7, 50)]
        var outputs: [[String]] = []
        for (workers, window, budget) in configs {
            let sink = MemorySink()
            let stats = try runPipeline(input: sst2Path(), sink: sink, options: PipelineOptions(
                labels: testLabels, workers: workers, shardSize: 100, batchTokens: budget, maxBatch: 16, window: window))
            XCTAssertEqual(sink.indices, Array(0..<872))
            XCTAssertTrue(sink.finished)
            XCTAssertEqual(stats.snapshot.records, 872)
            outputs.append(sink.lines)
        }
        XCTAssertEqual(outputs[0], outputs[1])
        XCTAssertEqual(outputs[0], outputs[2])
    }

    func testPartitionAndGoldTarget() throws {
        let dir = try temporaryDirectory(self)
        let file = dir.appendingPathComponent("in.jsonl")
        try """
        {"text": "good film", "label": "positive"}
        {"text": "bad film", "label": "0"}
        {"text": "no label"}
        {"text": "odd label", "label": "maybe"}
        {"text": "fine", "label": 1}

        """.write(to: file, atomically: true, encoding: .utf8)
        let sink = MemorySink()
        try runPipeline(input: file.path, sink: sink, options: PipelineOptions(target: .gold, labels: testLabels, workers: 2))
        XCTAssertEqual(sink.indices, [0, 1, 4])
        XCTAssertEqual(sink.errors.map(\.index), [2, 3])
        XCTAssertTrue(sink.lines[0].contains("\"attributions\": [{\"target\": 1,"))
        XCTAssertTrue(sink.lines[1].contains("\"attributions\": [{\"target\": 0,"))
        let part = MemorySink()
        try runPipeline(input: file.path, sink: part, options: PipelineOptions(target: .all, labels: testLabels, workers: 2, partition: Partition(i: 1, n: 2)))
        XCTAssertEqual(part.indices, [1, 3])
        XCTAssertEqual(part.errors, [])
    }
}

final class RunDirectoryTests: XCTestCase {
    func options(_ identity: RunIdentity, startIndex: Int = 0) -> PipelineOptions {
        PipelineOptions(labels: testLabels, workers: 2, shardSize: identity.shardSize, startIndex: startIndex, window: 64)
    }

    func testShardsManifestAndResumeAfterDamage() throws {
        let base = try temporaryDirectory(self)
        let identity = testIdentity(shardSize: 100)
        let whole = base.appendingPathComponent("whole")
        try runPipeline(input: sst2Path(), sink: try RunDirectory.start(whole, identity: identity, inputs: ["dev.tsv"]), options: options(identity))
        let m = try RunManifest.read(directory: whole)
        XCTAssertEqual(m.status, "complete")
        XCTAssertEqual(m.shards.count, 9)
        XCTAssertEqual(m.records, 872)
        XCTAssertEqual(m.shards.map(\.count), [100, 100, 100, 100, 100, 100, 100, 100, 72])
        XCTAssertEqual(m.shards[1].firstIndex, 100)
        XCTAssertTrue(m.shards.allSatisfy { $0.verify(in: whole) })
        let expected = try shardLines(whole)
        XCTAssertEqual(expected.count, 872)

        // Damage: a listed shard corrupted, a later one missing, a stray temporary file.
        let copy = base.appendingPathComponent("copy")
        try FileManager.default.copyItem(at: whole, to: copy)
        var cm = try RunManifest.read(directory: copy)
        cm.status = "running"
        try cm.write(directory: copy)
        let victim = copy.appendingPathComponent(m.shards[4].file)
        var bytes = try Data(contentsOf: victim)
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: victim)
        try FileManager.default.removeItem(at: copy.appendingPathComponent(m.shards[6].file))
        try Data("half".utf8).write(to: copy.appendingPathComponent(".part-00007.jsonl.zst.tmp"))
        let r = try RunDirectory.resume(copy, identity: identity, inputs: ["dev.tsv"])
        XCTAssertEqual(r.startIndex, 400)
        XCTAssertEqual(r.dropped, 5)
        try runPipeline(input: sst2Path(), sink: r.sink, options: options(identity, startIndex: r.startIndex))
        XCTAssertEqual(try shardLines(copy), expected)
        XCTAssertEqual(try RunManifest.read(directory: copy).shards.map(\.sha256), m.shards.map(\.sha256))
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: copy.path).contains { $0.hasSuffix(".tmp") })

        // Different options are refused.
        XCTAssertThrowsError(try RunDirectory.resume(copy, identity: testIdentity(methods: .lat, shardSize: 100), inputs: ["dev.tsv"]))
        XCTAssertThrowsError(try RunDirectory.resume(copy, identity: testIdentity(shardSize: 100, modelHash: "m2"), inputs: ["dev.tsv"]))
        XCTAssertThrowsError(try RunDirectory.start(copy, identity: identity, inputs: ["dev.tsv"]))
    }

    /// A good record followed by more bad records than the records-in-flight
    /// gate holds: the good one is submitted in time, nothing waits for ever
    /// (it did: the bad records filled the gate behind the unsubmitted record).
    func testARunOfBadRecordsNeverBlocksTheGoodOnes() throws {
        let base = try temporaryDirectory(self)
        let input = base.appendingPathComponent("in.jsonl")
        var text = "{\"text\": \"a fine film\"}\n"
        for i in 0..<5000 { text += "{broken \(i)\n" }
        text += "{\"text\": \"the end\"}\n"
        try text.write(to: input, atomically: true, encoding: .utf8)
        let sink = MemorySink()
        let done = DispatchSemaphore(value: 0)
        let result = ResultBox()
        DispatchQueue.global().async {
            result.value = Result {
                try runPipeline(input: input.path, sink: sink, options: PipelineOptions(labels: testLabels, workers: 2, window: 64))
            }
            done.signal()
        }
        XCTAssertEqual(done.wait(timeout: .now() + 120), .success, "the run did not finish: blocked")
        let stats = try XCTUnwrap(result.value).get()
        XCTAssertEqual(sink.indices, [0, 5001])
        XCTAssertEqual(sink.errors.count, 5000)
        XCTAssertEqual(stats.snapshot.errors, 5000)
    }

    /// errors.jsonl after interruptions: every bad record once.
    func testErrorsNeitherDuplicatedNorLostOnResume() throws {
        let base = try temporaryDirectory(self)
        let input = base.appendingPathComponent("in.jsonl")
        var text = ""
        for i in 0..<300 { text += i % 7 == 3 ? "{broken \(i)\n" : "{\"text\": \"record number \(i)\"}\n" }
        try text.write(to: input, atomically: true, encoding: .utf8)
        let identity = testIdentity(shardSize: 40)
        let whole = base.appendingPathComponent("whole")
        try runPipeline(input: input.path, sink: try RunDirectory.start(whole, identity: identity, inputs: ["in"]), options: options(identity))
        let errorsWhole = try String(contentsOf: whole.appendingPathComponent("errors.jsonl"), encoding: .utf8)
        XCTAssertEqual(errorsWhole.split(separator: "\n").count, 43)

        // Simulate a kill after shard 2 was committed and errors past it were appended.
        let partial = base.appendingPathComponent("partial")
        try FileManager.default.copyItem(at: whole, to: partial)
        var m = try RunManifest.read(directory: partial)
        // A killed run has no shard file its manifest does not list (listed before renamed, RunManifest).
        for s in m.shards.dropFirst(3) { try FileManager.default.removeItem(at: partial.appendingPathComponent(s.file)) }
        m.shards = Array(m.shards.prefix(3))
        m.status = "running"
        try m.write(directory: partial)
        let r = try RunDirectory.resume(partial, identity: identity, inputs: ["in"])
        try runPipeline(input: input.path, sink: r.sink, options: options(identity, startIndex: r.startIndex))
        XCTAssertEqual(try String(contentsOf: partial.appendingPathComponent("errors.jsonl"), encoding: .utf8), errorsWhole)
        XCTAssertEqual(try shardLines(partial), try shardLines(whole))
        XCTAssertEqual(try RunManifest.read(directory: partial).errors, 43)

        // A shard file the manifest does not list is someone else's: resume refuses and leaves it.
        var again = try RunManifest.read(directory: partial)
        again.status = "running"
        try again.write(directory: partial)
        let stranger = partial.appendingPathComponent("part-00042.jsonl.zst")
        try Data("not ours".utf8).write(to: stranger)
        XCTAssertThrowsError(try RunDirectory.resume(partial, identity: identity, inputs: ["in"])) { e in
            XCTAssertTrue("\(e)".contains("part-00042.jsonl.zst") && "\(e)".contains("does not list"), "\(e)")
        }
        XCTAssertEqual(try Data(contentsOf: stranger), Data("not ours".utf8))
    }

    func testMergePartitionsEqualsOneRun() throws {
        let base = try temporaryDirectory(self)
        let whole = base.appendingPathComponent("whole")
        let identity = testIdentity(shardSize: 100)
        try runPipeline(input: sst2Path(), sink: try RunDirectory.start(whole, identity: identity, inputs: ["dev.tsv"]), options: options(identity))
        var parts: [URL] = []
        for i in 0..<3 {
            let p = Partition(i: i, n: 3)
            let pid = testIdentity(partition: p.description, shardSize: 70)
            let dir = base.appendingPathComponent("p\(i)")
            var o = options(pid)
            o.partition = p
            try runPipeline(input: sst2Path(), sink: try RunDirectory.start(dir, identity: pid, inputs: ["dev.tsv"]), options: o)
            parts.append(dir)
        }
        // A rerun of partition 0 merged in as well: its records are kept once.
        let merged = base.appendingPathComponent("merged")
        let s = try RunMerger.merge(parts + [parts[0]], into: merged, shardSize: 100)
        XCTAssertEqual(s.records, 872)
        XCTAssertEqual(s.duplicates, 291)
        XCTAssertEqual(try shardLines(merged), try shardLines(whole))
        let m = try RunManifest.read(directory: merged)
        XCTAssertEqual(m.status, "complete")
        XCTAssertNil(m.identity.partition)
        XCTAssertEqual(m.shards.map(\.sha256), try RunManifest.read(directory: whole).shards.map(\.sha256))

        // Different model or methods: refused.
        let other = base.appendingPathComponent("other")
        let oid = testIdentity(shardSize: 100, modelHash: "m2")
        try runPipeline(input: sst2Path(), sink: try RunDirectory.start(other, identity: oid, inputs: ["dev.tsv"]), options: options(oid))
        XCTAssertThrowsError(try RunMerger.merge([whole, other], into: base.appendingPathComponent("bad"), shardSize: nil)) { e in
            XCTAssertTrue("\(e)".contains("model differs"), "\(e)")
        }
    }
}

final class ProgressLineTests: XCTestCase {
    func testShareAndETAFromTheDoneRecordsBytes() {
        var s = PipelineStats.Snapshot()
        s.doneRecords = 50
        s.doneTokens = 1000
        s.doneBytes = 250
        XCTAssertEqual(ProgressReporter.line(s, elapsed: 10, totalBytes: 1000),
                       "50 records, 5.0 records/s, 100 tokens/s, 0 errors, 25%, ETA 30s")
        // A resumed run: the skipped part counts as done, the pace is this run's.
        s.resumedBytes = 500
        XCTAssertEqual(ProgressReporter.line(s, elapsed: 10, totalBytes: 1000),
                       "50 records, 5.0 records/s, 100 tokens/s, 0 errors, 75%, ETA 10s")
        // Standard input: no size, no ETA.
        XCTAssertEqual(ProgressReporter.line(s, elapsed: 10, totalBytes: nil), "50 records, 5.0 records/s, 100 tokens/s, 0 errors")
        XCTAssertEqual(ProgressReporter.duration(3725), "1h02m")
    }
}

/// A result handed from a background queue to the test.
private final class ResultBox: @unchecked Sendable {
    var value: Result<PipelineStats, Error>?
}
