import Foundation
import IO
import XCTest

/// The `attribute` and `merge` commands, run as the built binary.
final class AttributeEndToEndTests: XCTestCase {
    /// `cat dev.tsv | bertlrp-batch`: every record in input order across the
    /// shards, matching the reference values (docs/CONTRACT.md section 5) where the
    /// reference has the sentence.
    func testSST2DevFromStandardInputMatchesReference() throws {
        let base = try temporaryDirectory(self)
        let out = base.appendingPathComponent("out")
        let dev = checkout.appendingPathComponent("data/sst2/dev.tsv")
        let r = try runBinary(["--shard-size", "300", "-o", out.path], stdin: dev)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("bertlrp-batch: 872 records, 0 errors"), r.stderr)
        let names = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { !$0.hasPrefix(".") }.sorted()
        XCTAssertEqual(names, ["errors.jsonl", "manifest.json", "part-00000.jsonl.zst", "part-00001.jsonl.zst", "part-00002.jsonl.zst"])
        let lines = try shardLines(out)
        let records = try jsonObjects(lines)
        XCTAssertEqual(records.map { $0["index"] as? Int }, Array(0..<872))
        let sentences = try String(contentsOf: dev, encoding: .utf8).split(separator: "\n").dropFirst().map { $0.split(separator: "\t", omittingEmptySubsequences: false) }
        for (rec, cols) in zip(records, sentences) {
            XCTAssertEqual(rec["text"] as? String, String(cols[0]))
            XCTAssertEqual(rec["label"] as? String, String(cols[1]))
        }
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("manifest.json"))) as! [String: Any]
        XCTAssertEqual(manifest["status"] as? String, "complete")
        XCTAssertEqual(manifest["records"] as? Int, 872)
        XCTAssertEqual((manifest["shards"] as? [[String: Any]])?.map { $0["count"] as? Int }, [300, 300, 272])

        // The system's zstdcat reads the shards too.
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/zstdcat") {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/zstdcat")
            p.arguments = names.filter { $0.hasPrefix("part-") }.map { out.appendingPathComponent($0).path }
            let pipe = Pipe()
            p.standardOutput = pipe
            try p.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0)
            XCTAssertEqual(String(decoding: data, as: UTF8.self), lines.joined(separator: "\n") + "\n")
        }

        try compareWithReference(records)
    }

    func compareWithReference(_ records: [[String: Any]]) throws {
        let fixtures = checkout.appendingPathComponent("Tests/Fixtures/reference")
        let texts = try jsonObjects(String(contentsOf: fixtures.appendingPathComponent("minilm-sst2.texts.jsonl"), encoding: .utf8).split(separator: "\n").map(String.init))
        let refs = try jsonObjects(String(contentsOf: fixtures.appendingPathComponent("minilm-sst2.jsonl"), encoding: .utf8).split(separator: "\n").map(String.init))
        var byText: [String: [String: Any]] = [:]
        for r in records where r["text_b"] == nil { byText[r["text"] as! String] = r }
        /// A JSON number array; null (a non-finite value) as NaN, which fails every comparison.
        func numbers(_ v: Any?) -> [Double] { (v as? [Any] ?? []).map { ($0 as? NSNumber)?.doubleValue ?? .nan } }
        func relErr(_ a: [Double], _ ref: [Double]) -> Double {
            guard a.count == ref.count, !a.isEmpty else { return .infinity }
            let scale = max(1e-30, ref.map(abs).max() ?? 0)
            return zip(a, ref).map { abs($0 - $1) }.reduce(0) { $1.isNaN || $0.isNaN ? .nan : max($0, $1) } / scale
        }
        var compared = 0, lrpPairs = 0, lrpWithin = 0
        var worst: [String: Double] = [:]
        for (t, ref) in zip(texts, refs) where t["text_b"] == nil {
            guard let rec = byText[t["text"] as! String] else { continue }
            compared += 1
            let id = ref["id"] as! String
            XCTAssertEqual(rec["tokens"] as? [String], ref["tokens"] as? [String], id)
            let f64 = ref["f64"] as! [String: Any], f32 = ref["f32"] as! [String: Any]
            let logits = numbers(rec["logits"])
            let refLogits = numbers(f64["logits"])
            let logitErr = relErr(logits, refLogits) * max(1e-30, refLogits.map(abs).max() ?? 0)
            worst["logits"] = max(worst["logits"] ?? 0, logitErr)
            XCTAssertTrue(logitErr <= 1e-4, "\(id): logits error \(logitErr)")
            let predicted = rec["predicted"] as! Int
            XCTAssertEqual(predicted, refLogits.firstIndex(of: refLogits.max()!)!, "\(id): predicted class")
            func check(_ key: String, _ mine: [Double], floor: Double) -> Bool {
                let truth = numbers(f64[key])
                let seed = numbers(f32[key])
                let e = relErr(mine, truth)
                if !e.isNaN { worst[key.components(separatedBy: "_")[0]] = max(worst[key.components(separatedBy: "_")[0]] ?? 0, e) }
                if e.isNaN { worst["non-finite " + key.components(separatedBy: "_")[0], default: 0] += 1 }
                return e <= max(floor, 3 * relErr(seed, truth))
            }
            XCTAssertTrue(check("lat", numbers(rec["lat"]), floor: 1e-3), "\(id): lat")
            let a = (rec["attributions"] as! [[String: Any]])[0]
            XCTAssertEqual(a["target"] as? Int, predicted)
            let c = predicted
            XCTAssertTrue(check("gs_\(c)", numbers(a["gs"]), floor: 1e-3), "\(id): gs")
            XCTAssertTrue(check("gi_\(c)", numbers(a["gi"]), floor: 1e-3), "\(id): gi")
            let lrp = numbers(a["lrp"])
            lrpPairs += 1
            if check("lrp_\(c)", lrp, floor: 1e-2) { lrpWithin += 1 }
            let lrpErr = relErr(lrp, numbers(f64["lrp_\(c)"]))
            XCTAssertTrue(lrpErr <= 1e-1, "\(id): lrp relative error \(lrpErr)")
        }
        print("compared \(compared) records with the reference; worst: \(worst); lrp within: \(lrpWithin)/\(lrpPairs)")
        XCTAssertGreaterThanOrEqual(compared, 150)
        XCTAssertGreaterThanOrEqual(Double(lrpWithin), 0.99 * Double(lrpPairs))
    }

    /// A run killed with SIGKILL at random moments, resumed each time, ends
    /// with exactly the records and errors of an uninterrupted run.
    func testKilledAndResumedRunEqualsUninterruptedRun() throws {
        let base = try temporaryDirectory(self)
        // Some bad lines too, so that errors.jsonl is checked under resume.
        let n = 240
        let subset = try sst2Subset(base, records: n)
        var lines = try String(contentsOf: subset, encoding: .utf8).split(separator: "\n").map(String.init)
        for at in stride(from: lines.count - 1, to: 1, by: -37) { lines.insert("broken line without a label column", at: at) }
        let input = base.appendingPathComponent("input.tsv")
        try (lines.joined(separator: "\n") + "\n").write(to: input, atomically: true, encoding: .utf8)
        let args = ["--shard-size", "25", "--workers", "2", input.path]

        let whole = base.appendingPathComponent("whole")
        let started = Date()
        let w = try runBinary(args + ["-o", whole.path])
        let duration = Date().timeIntervalSince(started)
        XCTAssertEqual(w.status, 3, w.stderr)

        let resumed = base.appendingPathComponent("resumed")
        var generator = SystemRandomNumberGenerator()
        var kills = 0
        for attempt in 0..<6 {
            // Early enough that most attempts are killed: each resumed run still has
            // its model to load and at least what the last kill left to do.
            let delay = Double.random(in: 0.05...max(0.1, 0.35 * duration), using: &generator)
            let r = try runBinary(args + ["-o", resumed.path] + (attempt == 0 ? [] : ["--resume"]), killAfter: delay)
            if r.killed { kills += 1 } else { XCTAssertEqual(r.status, 3, r.stderr) }
        }
        let last = try runBinary(args + ["-o", resumed.path, "--resume"])
        XCTAssertEqual(last.status, 3, last.stderr)
        XCTAssertGreaterThanOrEqual(kills, 3, "too few runs were killed to test anything")
        XCTAssertEqual(try shardLines(resumed), try shardLines(whole), "records after \(kills) kills")
        XCTAssertEqual(try Data(contentsOf: resumed.appendingPathComponent("errors.jsonl")),
                       try Data(contentsOf: whole.appendingPathComponent("errors.jsonl")))
        let names = try FileManager.default.contentsOfDirectory(atPath: resumed.path).sorted()
        XCTAssertEqual(names, try FileManager.default.contentsOfDirectory(atPath: whole.path).sorted())
        print("\(kills) kills; uninterrupted run \(String(format: "%.1f", duration)) s")
    }

    /// Three partitions merged give the records of one run; merging runs of
    /// different models is refused.
    func testPartitionsMergedEqualOneRun() throws {
        let base = try temporaryDirectory(self)
        let input = try sst2Subset(base, records: 150)
        let whole = base.appendingPathComponent("whole")
        XCTAssertEqual(try runBinary(["--shard-size", "40", "-o", whole.path, input.path]).status, 0)
        var parts: [String] = []
        for i in 0..<3 {
            let dir = base.appendingPathComponent("part\(i)").path
            let r = try runBinary(["--shard-size", "40", "--partition", "\(i)/3", "-o", dir, input.path])
            XCTAssertEqual(r.status, 0, r.stderr)
            parts.append(dir)
        }
        let merged = base.appendingPathComponent("merged")
        let m = try runBinary(["merge"] + parts + [parts[1], "-o", merged.path])
        XCTAssertEqual(m.status, 0, m.stderr)
        try assertSameRecords(try shardLines(merged), try shardLines(whole))
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: merged.appendingPathComponent("manifest.json"))) as! [String: Any]
        XCTAssertEqual(manifest["status"] as? String, "complete")
        XCTAssertEqual((manifest["shards"] as? [Any])?.count, try shardLines(whole).count / 40 + 1)
        // Merging into a directory that holds a run is refused, without pointing to --resume (merge has none).
        let again = try runBinary(["merge"] + parts + ["-o", merged.path])
        XCTAssertEqual(again.status, 2)
        XCTAssertTrue(again.stderr.contains("choose another -o") && !again.stderr.contains("--resume"), again.stderr)

        // A run of another model (the tiny test model) cannot be merged in.
        let other = base.appendingPathComponent("other")
        let tiny = checkout.appendingPathComponent("Tests/Fixtures/tiny-bert/hf").path
        let o = try runBinary(["--model", tiny, "--max-seq-length", "64", "--partition", "0/3", "-o", other.path, input.path])
        XCTAssertEqual(o.status, 0, o.stderr)
        let refused = try runBinary(["merge", parts[1], parts[2], other.path, "-o", base.appendingPathComponent("bad").path])
        XCTAssertEqual(refused.status, 2)
        XCTAssertTrue(refused.stderr.contains("model differs"), refused.stderr)
        XCTAssertEqual(refused.stderr.split(separator: "\n").count, 1, refused.stderr)
        // So is a run with other methods.
        let lat = base.appendingPathComponent("lat")
        XCTAssertEqual(try runBinary(["--methods", "lat", "--partition", "0/3", "-o", lat.path, input.path]).status, 0)
        let refused2 = try runBinary(["merge", parts[1], parts[2], lat.path, "-o", base.appendingPathComponent("bad2").path])
        XCTAssertEqual(refused2.status, 2)
        XCTAssertTrue(refused2.stderr.contains("methods differ"), refused2.stderr)
    }

    /// 5% garbage lines: every good record, one errors.jsonl entry per bad line, exit 3.
    func testGarbageLinesGoToErrorsFile() throws {
        let base = try temporaryDirectory(self)
        let n = 200
        var jsonl = Data(), tsv = Data("sentence\tlabel\n".utf8)
        var expectedBad: [(input: String, line: Int)] = []
        var good = 0
        let jsonlURL = base.appendingPathComponent("a.jsonl"), tsvURL = base.appendingPathComponent("b.tsv")
        for i in 0..<n {
            let bad = i % 20 == 7
            switch (bad, i % 3) {
            case (false, _):
                jsonl.append(Data("{\"id\": \"a\(i)\", \"text\": \"a fine sentence number \(i) .\", \"label\": \"1\"}\n".utf8))
                tsv.append(Data("another sentence , number \(i) .\t0\n".utf8))
                good += 2
                continue
            case (true, 0):
                jsonl.append(Data("{\"id\": \"a\(i)\", \"text\": \"unterminated\n".utf8))
                tsv.append(Data("too\tmany\tcolumns\n".utf8))
            case (true, 1):
                jsonl.append(Data("{\"id\": \"a\(i)\", \"label\": \"1\"}\n".utf8))
                tsv.append(Data("no label column\n".utf8))
            default:
                jsonl.append(Data("{\"text\": \"bad ".utf8) + Data([0xC3, 0x28, 0xFF]) + Data("\"}\n".utf8))
                tsv.append(Data("bad ".utf8) + Data([0xFF, 0xFE]) + Data("\t1\n".utf8))
            }
            expectedBad.append((jsonlURL.path, i + 1))
            expectedBad.append((tsvURL.path, i + 2))
        }
        try jsonl.write(to: jsonlURL)
        try tsv.write(to: tsvURL)
        let out = base.appendingPathComponent("out")
        let r = try runBinary(["-o", out.path, jsonlURL.path, tsvURL.path])
        XCTAssertEqual(r.status, 3, r.stderr)
        let records = try jsonObjects(try shardLines(out))
        XCTAssertEqual(records.count, good)
        let errors = try jsonObjects(try String(contentsOf: out.appendingPathComponent("errors.jsonl"), encoding: .utf8).split(separator: "\n").map(String.init))
        XCTAssertEqual(errors.count, expectedBad.count)
        XCTAssertEqual(errors.map { "\($0["input"] as? String ?? "?"):\($0["line"] as? Int ?? -1)" }.sorted(),
                       expectedBad.map { "\($0.input):\($0.line)" }.sorted())
        XCTAssertTrue(errors.allSatisfy { ($0["reason"] as? String)?.isEmpty == false && $0["index"] is Int })
        // Good and bad indices together are every index once.
        let all = (records.map { $0["index"] as! Int } + errors.map { $0["index"] as! Int }).sorted()
        XCTAssertEqual(all, Array(0..<(2 * n)))
        XCTAssertTrue(r.stderr.contains("\(good) records, \(expectedBad.count) errors"), r.stderr)

        // The same input in two partitions, merged: the same records and bad
        // records, and merge reports them with exit 3 as the run did.
        var parts: [String] = []
        for i in 0..<2 {
            let dir = base.appendingPathComponent("part\(i)").path
            let p = try runBinary(["--methods", "lat", "--partition", "\(i)/2", "-o", dir, jsonlURL.path, tsvURL.path])
            XCTAssertEqual(p.status, i == 1 ? 3 : 0, p.stderr) // the bad lines all have odd indices
            parts.append(dir)
        }
        let merged = base.appendingPathComponent("merged")
        let m = try runBinary(["merge"] + parts + ["-o", merged.path])
        XCTAssertEqual(m.status, 3, m.stderr)
        XCTAssertTrue(m.stderr.contains("\(good) records, \(expectedBad.count) errors"), m.stderr)
        XCTAssertEqual(try shardLines(merged).count, good)
        let mergedErrors = try jsonObjects(try String(contentsOf: merged.appendingPathComponent("errors.jsonl"), encoding: .utf8).split(separator: "\n").map(String.init))
        XCTAssertEqual(mergedErrors.map { $0["index"] as! Int }, errors.map { $0["index"] as! Int }.sorted())
    }

    /// Usage and configuration errors: exit 2 and one line naming what is wrong.
    func testConfigurationErrorsExitTwo() throws {
        let base = try temporaryDirectory(self)
        let input = try sst2Subset(base, records: 5)
        let out = base.appendingPathComponent("out").path
        let cases: [([String], String)] = [
            (["--model", base.appendingPathComponent("nowhere").path, input.path], "nowhere/config.json"),
            (["--partition", "3/3", input.path], "--partition"),
            (["--target", "neutral", input.path], "--target neutral"),
            (["--methods", "gs,shap", input.path], "shap"),
            (["--shard-size", "0", input.path], "--shard-size"),
            ([base.appendingPathComponent("missing.tsv").path], "missing.tsv"),
            (["--bogus", input.path], "--bogus"),
        ]
        for (args, needle) in cases {
            let r = try runBinary(["-o", out] + args)
            XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(needle), "\(args): \(r.stderr)")
            XCTAssertEqual(r.stderr.split(separator: "\n").filter { !$0.hasPrefix("bertlrp-batch: 0 records") }.count, 1, "\(args): \(r.stderr)")
            try? FileManager.default.removeItem(atPath: out)
        }
        // An output directory that cannot be made: the system's reason, one line.
        let blocked = try runBinary(["-o", input.path + "/out", input.path])
        XCTAssertEqual(blocked.status, 2, blocked.stderr)
        XCTAssertTrue(blocked.stderr.hasPrefix("bertlrp-batch: \(input.path)/out: cannot create the output directory: \(input.path) is not a directory"), blocked.stderr)
        // A finished directory is not overwritten; a resume with other options is refused.
        XCTAssertEqual(try runBinary(["-o", out, input.path]).status, 0)
        let again = try runBinary(["-o", out, input.path])
        XCTAssertEqual(again.status, 2)
        XCTAssertTrue(again.stderr.contains("--resume"), again.stderr)
        let other = try runBinary(["-o", out, "--resume", "--target", "all", input.path])
        XCTAssertEqual(other.status, 2)
        XCTAssertTrue(other.stderr.contains("targets differ"), other.stderr)
        let same = try runBinary(["-o", out, "--resume", input.path])
        XCTAssertEqual(same.status, 0, same.stderr)
    }

    /// `-o -`: plain JSONL on standard output, the same records as the shards.
    func testStandardOutput() throws {
        let base = try temporaryDirectory(self)
        let input = try sst2Subset(base, records: 30)
        let r = try runBinary(["--target", "all", "-o", "-", input.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = String(decoding: r.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 30)
        let out = base.appendingPathComponent("out")
        XCTAssertEqual(try runBinary(["--target", "all", "-o", out.path, input.path]).status, 0)
        try assertSameRecords(lines, try shardLines(out))
        XCTAssertEqual(try jsonObjects(lines).map { ($0["attributions"] as! [[String: Any]]).map { $0["target"] as! Int } }, Array(repeating: [0, 1], count: 30))
    }
}
