import Foundation
import XCTest

/// `--long window` through the binary (README "Long documents"): texts that
/// fit give the truncate shards, long ones one record with its windows,
/// bad options and pairs that cannot be cut refused, the setting part of
/// the run's identity, and evaluate and words over a windowed run.
final class LongDocumentEndToEndTests: XCTestCase {
    /// SST-2 dev sentences joined into `count` documents of `sentences` each, as JSONL.
    func documents(_ dir: URL, count: Int, sentences: Int, pair: String? = nil) throws -> URL {
        let rows = try String(contentsOf: checkout.appendingPathComponent("data/sst2/dev.tsv"), encoding: .utf8)
            .split(separator: "\n").dropFirst().map { $0.split(separator: "\t").map(String.init) }
        var lines: [String] = []
        for d in 0..<count {
            let part = rows[(d * sentences)..<((d + 1) * sentences)]
            var o: [String: Any] = ["text": part.map { $0[0] }.joined(separator: " "), "label": part.first![1]]
            if let pair { o["text_b"] = pair }
            lines.append(String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self))
        }
        let url = dir.appendingPathComponent("docs-\(count)-\(sentences).jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    func testTextsThatFitGiveTheTruncateShards() throws {
        let dir = try temporaryDirectory(self)
        let input = try sst2Subset(dir, records: 30)
        let a = dir.appendingPathComponent("truncate"), b = dir.appendingPathComponent("window")
        XCTAssertEqual(try runBinary(["-o", a.path, input.path]).status, 0)
        let r = try runBinary(["--long", "window", "--window-stride", "9", "-o", b.path, input.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try Data(contentsOf: b.appendingPathComponent("part-00000.jsonl.zst")),
                       try Data(contentsOf: a.appendingPathComponent("part-00000.jsonl.zst")))
        let manifest = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: b.appendingPathComponent("manifest.json"))) as? [String: Any])
        let identity = try XCTUnwrap(manifest["identity"] as? [String: Any] ?? manifest)
        XCTAssertEqual(identity["long"] as? String, "window", "\(manifest)")
        XCTAssertEqual(identity["window_stride"] as? Int, 9)
        let plain = try String(contentsOf: a.appendingPathComponent("manifest.json"), encoding: .utf8)
        XCTAssertFalse(plain.contains("\"long\""), "a truncate run's manifest is as before")
    }

    /// Windows of 16 tokens, stride 5, over texts with multi-piece words: the
    /// record has the whole text's tokens and offsets (as `tokenize` gives
    /// them without a limit) and the windows the rule makes.
    func testRecordCoversTheWholeTextAcrossWindowBoundaries() throws {
        let dir = try temporaryDirectory(self)
        let text = "Incomprehensibilities notwithstanding, the unquestionably overcomplicated antidisestablishmentarianism "
            + "bewildered émigrés and photosynthesizing xylophonists alike; nevertheless, unforgettable."
        let input = dir.appendingPathComponent("in.jsonl")
        try (String(decoding: try JSONSerialization.data(withJSONObject: ["text": text, "id": "w1"]), as: UTF8.self) + "\n")
            .write(to: input, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("out")
        let r = try runBinary(["--long", "window", "--max-seq-length", "16", "--window-stride", "5", "--methods", "gs,lat",
                                            "-o", out.path, input.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains(" windows ("), r.stderr)
        let record = try XCTUnwrap(try jsonObjects(try shardLines(out)).first)
        let t = try runBinary(["tokenize", input.path])
        XCTAssertEqual(t.status, 0, t.stderr)
        let whole = try XCTUnwrap(try jsonObjects(String(decoding: t.stdout, as: UTF8.self).split(separator: "\n").map(String.init)).first)
        let tokens = try XCTUnwrap(record["tokens"] as? [String])
        XCTAssertEqual(tokens, whole["tokens"] as? [String])
        XCTAssertEqual("\(record["offsets"]!)", "\(whole["offsets"]!)")
        XCTAssertEqual(record["truncated"] as? Bool, false)
        let windows = try XCTUnwrap(record["windows"] as? [[Int]])
        // 14 tokens of text a window, starts 5 apart, the last reaching the end.
        let n = tokens.count - 2
        var expected: [[Int]] = []
        var start = 0
        while true {
            let end = min(start + 14, n)
            expected.append([1 + start, 1 + end])
            if end == n { break }
            start += 5
        }
        XCTAssertEqual(windows, expected)
        XCTAssertGreaterThan(windows.filter { tokens[$0[0]].hasPrefix("##") }.count, 1, "some window starts inside a word")
        for key in ["lat"] { XCTAssertEqual((record[key] as? [Any])?.count, tokens.count) }
        let gs = try XCTUnwrap((record["attributions"] as? [[String: Any]])?.first?["gs"] as? [Double])
        XCTAssertEqual(gs.count, tokens.count)
    }

    func testBadOptionsAreOneLineExit2() throws {
        let dir = try temporaryDirectory(self)
        let input = try sst2Subset(dir, records: 3)
        for (args, message) in [
            (["--long", "window", "--window-stride", "0"], "--window-stride 0: at least 1"),
            (["--long", "window", "--window-stride", "127"], "--window-stride 127: larger than the window (--max-seq-length 128 holds 126 tokens of text)"),
            (["--long", "window", "--max-seq-length", "64", "--window-stride", "63"], "--window-stride 63: larger than the window"),
            (["--long", "sliding"], "The value 'sliding' is invalid for '--long <long>'. Please provide one of 'truncate' and 'window'."),
            (["--window-stride", "10"], "--window-stride 10: only with --long window"),
        ] {
            let out = dir.appendingPathComponent("out")
            let r = try runBinary(args + ["-o", out.path, input.path])
            XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(message), "\(args): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "\(args) left an output directory")
        }
    }

    /// A pair whose second segment does not fit beside any text is refused
    /// with its reason in errors.jsonl; the others are done.
    func testPairWithTooLongSecondSegmentIsABadRecord() throws {
        let dir = try temporaryDirectory(self)
        let long = Array(repeating: "a rather long hypothesis", count: 30).joined(separator: " ")
        let input = dir.appendingPathComponent("pairs.jsonl")
        let rows: [[String: Any]] = [["text": Array(repeating: "the film is good", count: 40).joined(separator: " "), "text_b": "is it good ?"],
                                     ["text": "short", "text_b": long],
                                     ["text": Array(repeating: "bad", count: 100).joined(separator: " "), "text_b": long]]
        try rows.map { String(decoding: try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]), as: UTF8.self) }
            .joined(separator: "\n").appending("\n").write(to: input, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("out")
        let r = try runBinary(["--long", "window", "--max-seq-length", "64", "--methods", "lat", "-o", out.path, input.path])
        XCTAssertEqual(r.status, 3, r.stderr)
        let records = try jsonObjects(try shardLines(out))
        XCTAssertEqual(records.map { $0["index"] as? Int }, [0])
        let first = records[0]
        let tokens = try XCTUnwrap(first["tokens"] as? [String]), segments = try XCTUnwrap(first["segments"] as? [Int])
        XCTAssertEqual(tokens.filter { $0 == "[SEP]" }.count, 2)
        XCTAssertEqual(segments.filter { $0 == 1 }.count, 5)  // "is it good ?" and its [SEP]
        XCTAssertGreaterThan((first["windows"] as? [[Int]])?.count ?? 0, 1)
        let errors = try String(contentsOf: out.appendingPathComponent("errors.jsonl"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(errors.count, 2)
        for e in errors { XCTAssertTrue(e.contains("--long window: text_b has"), String(e)) }
    }

    func testResumeWithAnotherSettingIsRefused() throws {
        let dir = try temporaryDirectory(self)
        let input = try sst2Subset(dir, records: 3)
        let out = dir.appendingPathComponent("out")
        XCTAssertEqual(try runBinary(["--long", "window", "--methods", "lat", "-o", out.path, input.path]).status, 0)
        for args in [["--methods", "lat"], ["--long", "window", "--window-stride", "20", "--methods", "lat"]] {
            let r = try runBinary(args + ["--resume", "-o", out.path, input.path])
            XCTAssertEqual(r.status, 2, r.stderr)
            XCTAssertTrue(r.stderr.contains("long-text handling differs (the run used --long window; now --long "), r.stderr)
        }
    }

    /// evaluate re-runs every window of each perturbed document (its
    /// prediction from their mean logits: the same class the run recorded,
    /// so no "predicts another class" note); words ranks the records' tokens.
    func testEvaluateAndWordsAcceptAWindowedRun() throws {
        let dir = try temporaryDirectory(self)
        let input = try documents(dir, count: 2, sentences: 6)
        let run = dir.appendingPathComponent("run")
        let r = try runBinary(["--long", "window", "--max-seq-length", "48", "--methods", "gs,lat", "-o", run.path, input.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try jsonObjects(try shardLines(run)).filter { $0["windows"] != nil }.count, 2)
        let e = try runBinary(["evaluate", run.path, "-k", "3"])
        XCTAssertEqual(e.status, 0, e.stderr)
        let doc = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("evaluation.json"))) as? [String: Any])
        XCTAssertEqual(doc["records"] as? Int, 2)
        XCTAssertNil(doc["notes"], "\(doc["notes"] ?? "")")
        let gs = try XCTUnwrap((doc["methods"] as? [String: [String: Any]])?["gs"]?["comprehensiveness"] as? [String: Any])
        XCTAssertEqual((gs["curve"] as? [Double])?.count, 4)
        let w = try runBinary(["words", run.path, "--json", "--top", "5"])
        XCTAssertEqual(w.status, 0, w.stderr)
        let words = try XCTUnwrap(JSONSerialization.jsonObject(with: w.stdout) as? [String: Any])
        XCTAssertEqual((((words["methods"] as? [String: Any])?["gs"] as? [String: Any])?["top"] as? [Any])?.count, 5)
    }
}
