import Foundation
import XCTest

/// `evaluate` and `words` as a user runs them: on a run the binary made, and
/// on bad input (one line, exit 2).
final class AnalysisEndToEndTests: XCTestCase {
    /// A run of the bundled model over the first 12 SST-2 dev sentences.
    func makeRun(_ dir: URL, methods: String = "gs,lat") throws -> URL {
        let run = dir.appendingPathComponent("run")
        let r = try runBinary(["--methods", methods, "-o", run.path, try sst2Subset(dir, records: 12).path])
        XCTAssertEqual(r.status, 0, r.stderr)
        return run
    }

    func json(_ url: URL) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    func testEvaluateWritesTheDocumentAndTheTable() throws {
        let dir = try temporaryDirectory(self)
        let run = try makeRun(dir)
        let shardBefore = try Data(contentsOf: run.appendingPathComponent("part-00000.jsonl.zst"))
        let manifestBefore = try Data(contentsOf: run.appendingPathComponent("manifest.json"))
        let r = try runBinary(["evaluate", run.path, "-k", "3"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let table = String(decoding: r.stdout, as: UTF8.self)
        for row in ["gs", "lat", "random"] {
            XCTAssertTrue(table.split(separator: "\n").contains { $0.hasPrefix(row + " ") }, "no row \(row) in\n\(table)")
        }
        let doc = try json(run.appendingPathComponent("evaluation.json"))
        XCTAssertEqual(doc["records"] as? Int, 12)
        XCTAssertEqual(doc["k"] as? Int, 3)
        XCTAssertEqual(doc["replace"] as? String, "pad")
        let methods = try XCTUnwrap(doc["methods"] as? [String: [String: Any]])
        XCTAssertEqual(Set(methods.keys), ["gs", "lat", "random"])
        for (name, m) in methods {
            let comp = try XCTUnwrap(m["comprehensiveness"] as? [String: Any], name)
            let curve = try XCTUnwrap(comp["curve"] as? [Double], name)
            XCTAssertEqual(curve.count, 4, name)
            XCTAssertEqual(curve[0], 0, name)
            // AOPC = the mean of the curve over k = 1..K.
            XCTAssertEqual(try XCTUnwrap(comp["aopc"] as? Double), curve.dropFirst().reduce(0, +) / 3, accuracy: 1e-12, name)
            let ci = try XCTUnwrap(comp["ci95"] as? [Double], name)
            XCTAssertLessThanOrEqual(ci[0], comp["aopc"] as! Double, name)
            XCTAssertGreaterThanOrEqual(ci[1], comp["aopc"] as! Double, name)
            XCTAssertEqual((m["accuracy"] as? [Double])?.count, 4, "SST-2 has labels: \(name)")
        }
        let classification = try XCTUnwrap(doc["classification"] as? [String: Any])
        let confusion = try XCTUnwrap(classification["confusion"] as? [[Int]])
        XCTAssertEqual(confusion.joined().reduce(0, +), 12)
        // The run is not changed.
        XCTAssertEqual(try Data(contentsOf: run.appendingPathComponent("part-00000.jsonl.zst")), shardBefore)
        XCTAssertEqual(try Data(contentsOf: run.appendingPathComponent("manifest.json")), manifestBefore)
        // -o elsewhere.
        let other = dir.appendingPathComponent("eval.json")
        XCTAssertEqual(try runBinary(["evaluate", run.path, "-k", "3", "-o", other.path]).status, 0)
        XCTAssertEqual(try json(other)["records"] as? Int, 12)
    }

    func testWordsTableAndJSON() throws {
        let dir = try temporaryDirectory(self)
        let run = try makeRun(dir)
        let r = try runBinary(["words", run.path, run.path, "--method", "gs", "--top", "4", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let doc = try XCTUnwrap(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
        let gs = try XCTUnwrap((doc["methods"] as? [String: [String: Any]])?["gs"])
        let top = try XCTUnwrap(gs["top"] as? [[String: Any]])
        XCTAssertEqual(top.count, 4)
        let means = top.map { $0["mean"] as! Double }
        XCTAssertEqual(means, means.sorted(by: >))
        XCTAssertEqual(means[0], 1, accuracy: 1e-12, "a word that is its sentence's largest score every time it occurs")
        // The same run twice correlates perfectly.
        let pearson = try XCTUnwrap(gs["pearson"] as? [[Double]])
        XCTAssertEqual(pearson[0][1], 1, accuracy: 1e-12)
        let table = try runBinary(["words", run.path, "--top", "3"])
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssertTrue(String(decoding: table.stdout, as: UTF8.self).contains("lat:"))
    }

    /// One line on standard error, exit 2.
    func assertRefused(_ args: [String], mentions: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try runBinary(args)
        XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)", file: file, line: line)
        let lines = r.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "\(args): \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.contains(mentions), "\(args): \(r.stderr) should mention \(mentions)", file: file, line: line)
    }

    func testBadInput() throws {
        let dir = try temporaryDirectory(self)
        let run = try makeRun(dir)
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        for command in ["evaluate", "words"] {
            try assertRefused([command, empty.path], mentions: empty.path)
            try assertRefused([command, dir.appendingPathComponent("missing").path], mentions: "missing")
        }
        try assertRefused(["evaluate", run.path, "--methods", "lrp"], mentions: "lrp")
        try assertRefused(["words", run.path, "--method", "attnlrp"], mentions: "attnlrp")
        try assertRefused(["evaluate", run.path, "--target", "bogus"], mentions: "bogus")
        try assertRefused(["evaluate", run.path, "--replace", "zero"], mentions: "zero")
        try assertRefused(["evaluate", run.path, "-k", "0"], mentions: "-k")
        // Another model than the run's.
        try assertRefused(["evaluate", run.path, "--model", checkout.appendingPathComponent("Tests/Fixtures/tiny-bert/hf").path],
                          mentions: "not the run's model")
        // A run that is not finished.
        let manifest = run.appendingPathComponent("manifest.json")
        let text = try String(contentsOf: manifest, encoding: .utf8)
        try text.replacingOccurrences(of: "\"complete\"", with: "\"running\"").write(to: manifest, atomically: true, encoding: .utf8)
        try assertRefused(["evaluate", run.path], mentions: "not complete")
        try assertRefused(["words", run.path], mentions: "not complete")
    }
}
