import Foundation
import XCTest

/// `report` as a user runs it: the page of a run the binary made, rendered
/// in headless Chromium (Debian's `chromium`, which scripts/setup installs),
/// and bad input (one line, exit 2).
final class ReportEndToEndTests: XCTestCase {
    /// A run of the bundled model over 10 SST-2 dev sentences and 2 pairs
    /// (text_b), with an unsigned, a signed and a top-level method, and its
    /// evaluation (-k 3).
    func makeRun(_ dir: URL, evaluate: Bool = true) throws -> URL {
        let tsv = try String(contentsOf: try sst2Subset(dir, records: 10), encoding: .utf8)
        var lines: [String] = []
        for row in tsv.split(separator: "\n").dropFirst() {
            let cols = row.split(separator: "\t", omittingEmptySubsequences: false)
            let o = ["text": String(cols[0]), "label": String(cols[1])]
            lines.append(String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self))
        }
        lines.append(#"{"text": "the film is a <b>mess</b> & a bore", "text_b": "i loved every minute of it", "label": "0"}"#)
        lines.append(#"{"text": "unflinchingly bleak and desperate", "text_b": "a charming journey", "label": "1"}"#)
        let input = dir.appendingPathComponent("input.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: input, atomically: true, encoding: .utf8)
        let run = dir.appendingPathComponent("run")
        let r = try runBinary(["--methods", "gs,lat,ixg", "-o", run.path, input.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        if evaluate {
            let e = try runBinary(["evaluate", run.path, "-k", "3"])
            XCTAssertEqual(e.status, 0, e.stderr)
        }
        return run
    }

    /// Debian's chromium, or another Chromium on PATH; nil (skip) only when
    /// there is none and CI is not set.
    func chromium() throws -> URL {
        let env = ProcessInfo.processInfo.environment
        var names = ["chromium", "chromium-browser", "google-chrome", "headless_shell"]
        if let own = env["BERTLRP_CHROMIUM"] { names.insert(own, at: 0) }
        let dirs = (env["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
        for n in names {
            if n.hasPrefix("/"), FileManager.default.isExecutableFile(atPath: n) { return URL(fileURLWithPath: n) }
            for d in dirs where FileManager.default.isExecutableFile(atPath: d + "/" + n) { return URL(fileURLWithPath: d + "/" + n) }
        }
        if env["CI"] != nil {
            XCTFail("no chromium on PATH, and CI is set: scripts/setup installs Debian's chromium")
        }
        throw XCTSkip("no chromium on PATH (scripts/setup installs it); the report's browser test is skipped")
    }

    /// The DOM after the page's script ran: `chromium --headless --dump-dom`.
    func dumpDOM(_ browser: URL, _ page: URL, fragment: String = "", _ dir: URL) throws -> String {
        let p = Process()
        p.executableURL = browser
        var args = ["--headless", "--disable-gpu", "--no-first-run", "--disable-extensions", "--disable-dev-shm-usage",
                    "--user-data-dir=" + dir.appendingPathComponent("chromium-profile").path,
                    "--virtual-time-budget=10000", "--window-size=1280,900", "--dump-dom"]
        if getuid() == 0 { args.insert("--no-sandbox", at: 0) }
        var url = page.absoluteString
        if !fragment.isEmpty { url += "#" + fragment }
        p.arguments = args + [url]
        let out = dir.appendingPathComponent("dom-\(UUID().uuidString).html"), err = dir.appendingPathComponent("chromium.err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        p.standardInput = FileHandle(forReadingAtPath: "/dev/null")!
        try p.run()
        let deadline = Date().addingTimeInterval(120)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        let dom = try String(contentsOf: out, encoding: .utf8)
        let log = try String(contentsOf: err, encoding: .utf8)
        XCTAssertEqual(p.terminationStatus, 0, log)
        XCTAssertTrue(dom.contains("</html>"), "chromium gave no DOM: " + log)
        return dom
    }

    /// The value of `name="..."` in the first tag of `s`.
    func attribute(_ name: String, in s: Substring) -> String? {
        guard let tagEnd = s.firstIndex(of: ">"), let r = s[..<tagEnd].range(of: " " + name + "=\"") else { return nil }
        let rest = s[r.upperBound...]
        return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
    }

    func unescape(_ s: String) -> String {
        s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&nbsp;", with: "\u{a0}")
            .replacingOccurrences(of: "&amp;", with: "&")
    }

    struct Shown {
        var index: Int
        var tokens: [String]
        /// method -> cells in the record
        var cells: [String: Int]
    }

    /// The rendered records: `<article class="rec" data-index=N>`, their token texts and heatmap cells.
    func shownRecords(_ dom: String, methods: [String]) -> [Shown] {
        var out: [Shown] = []
        for part in dom.components(separatedBy: "<article ").dropFirst() {
            let body = part.components(separatedBy: "</article>")[0]
            guard let index = attribute("data-index", in: Substring(body)).flatMap(Int.init) else { continue }
            var tokens: [String] = []
            for t in body.components(separatedBy: "<span class=\"tt\"").dropFirst() {
                let afterTag = t[t.index(after: t.firstIndex(of: ">")!)...]
                tokens.append(unescape(String(afterTag[..<afterTag.range(of: "</span>")!.lowerBound])))
            }
            var cells: [String: Int] = [:]
            for m in methods { cells[m] = body.components(separatedBy: "data-m=\"\(m)\"").count - 1 }
            out.append(Shown(index: index, tokens: tokens, cells: cells))
        }
        return out
    }

    func bodyAttribute(_ name: String, _ dom: String) -> String? {
        guard let r = dom.range(of: "<body") else { return nil }
        return attribute(name, in: dom[r.lowerBound...])
    }

    /// The page works by itself: no script errors, every shown record's tokens and
    /// every method's row, the curves, filters that change what is shown, nothing outside.
    func testPageRendersInChromium() throws {
        let browser = try chromium()
        let dir = try temporaryDirectory(self)
        let run = try makeRun(dir)
        let r = try runBinary(["report", run.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let page = run.appendingPathComponent("report.html")
        let html = try String(contentsOf: page, encoding: .utf8)
        let records = try jsonObjects(try shardLines(run))
        XCTAssertEqual(records.count, 12)
        let methods = ["gs", "lat", "ixg"]

        // Nothing outside the page: no src/href but fragments and data:, no url(), no fetching code.
        for pattern in ["src=", "href=", "srcset=", "action=", "url("] {
            var rest = Substring(html)
            while let hit = rest.range(of: pattern) {
                let value = rest[hit.upperBound...].drop { $0 == "\"" || $0 == "'" || $0 == " " }
                XCTAssertTrue(value.hasPrefix("#") || value.hasPrefix("data:"), "\(pattern) refers outside: \(value.prefix(60))")
                rest = rest[hit.upperBound...]
            }
        }
        for forbidden in ["http://", "https://", "file:", "fetch(", "XMLHttpRequest", "@import", "<link", "<iframe", "import(", "Worker("] {
            XCTAssertFalse(html.contains(forbidden), "the page contains \(forbidden)")
        }
        XCTAssertTrue(html.contains("default-src 'none'"), "the Content-Security-Policy forbids every fetch")
        // The data cannot end its <script> early: the pair's text holds "<b>" and "</b>".
        XCTAssertEqual(html.components(separatedBy: "</script>").count - 1, 3)

        let dom = try dumpDOM(browser, page, dir)
        XCTAssertEqual(bodyAttribute("data-ready", dom), "1", "the script did not finish")
        XCTAssertEqual(bodyAttribute("data-errors", dom), "0", "script errors: \(dom.components(separatedBy: "script-errors")[1].prefix(400))")
        for attr in ["src", "href"] {
            for part in dom.components(separatedBy: " \(attr)=\"").dropFirst() {
                XCTAssertTrue(part.hasPrefix("#") || part.hasPrefix("data:"), "the rendered DOM refers outside: \(part.prefix(60))")
            }
        }
        let shown = shownRecords(dom, methods: methods)
        XCTAssertEqual(Set(shown.map(\.index)), Set(0..<12), "every record of a small run is shown")
        for s in shown {
            let tokens = try XCTUnwrap(records[s.index]["tokens"] as? [String])
            XCTAssertEqual(s.tokens, tokens, "record \(s.index)")
            for m in methods { XCTAssertEqual(s.cells[m], tokens.count, "record \(s.index): the row of \(m)") }
        }
        // The pair is shown as two segments (a line each) with both texts.
        XCTAssertTrue(dom.contains("the film is a &lt;b&gt;mess&lt;/b&gt; &amp; a bore"))
        let pairRecord = try XCTUnwrap(dom.components(separatedBy: "<article ").first { $0.contains("data-index=\"10\"") })
        XCTAssertTrue(pairRecord.contains(">A token<") && pairRecord.contains(">B token<"), "pair shown as segments A and B")
        // The evaluation's curves and AOPC table, random as the baseline; the words tables.
        for m in methods + ["random"] { XCTAssertTrue(dom.contains("<th scope=\"row\">\(m)</th>"), "AOPC row \(m)") }
        for m in methods { XCTAssertTrue(dom.contains("aria-label=\"Deletion curves, \(m)\""), "deletion curve of \(m)") }
        XCTAssertTrue(dom.contains("class=\"ln r\""), "random's curve")
        XCTAssertTrue(dom.contains("Predicted positive"), "words by predicted class")
        XCTAssertTrue(dom.contains("Confusion matrix"))

        // Filters by the URL fragment, applied as the controls' own choice.
        func classIndex(_ o: [String: Any]) -> Int { Int(o["label"] as! String)! }
        let predicted = records.map { $0["predicted"] as! Int }
        let correct = Set(records.indices.filter { predicted[$0] == classIndex(records[$0]) })
        let cases: [(String, Set<Int>)] = [
            ("outcome=correct", correct),
            ("outcome=wrong", Set(records.indices).subtracting(correct)),
            ("pred=positive", Set(records.indices.filter { predicted[$0] == 1 })),
            ("gold=negative&pred=positive", Set(records.indices.filter { predicted[$0] == 1 && classIndex(records[$0]) == 0 })),
            ("q=charming", Set(records.indices.filter { ($0 < 10 ? (records[$0]["text"] as! String) : (records[$0]["text"] as! String) + " " + (records[$0]["text_b"] as! String)).contains("charming") })),
            ("cmin=0.9&cmax=1", Set(records.indices.filter { (records[$0]["probs"] as! [Double])[predicted[$0]] >= 0.9 })),
        ]
        var changedSomething = false
        for (fragment, expected) in cases {
            let d = try dumpDOM(browser, page, fragment: fragment, dir)
            XCTAssertEqual(bodyAttribute("data-errors", d), "0", fragment)
            let got = Set(shownRecords(d, methods: methods).map(\.index))
            XCTAssertEqual(got, expected, fragment)
            XCTAssertEqual(bodyAttribute("data-matching", d), String(expected.count), fragment)
            if got != Set(0..<12) { changedSomething = true }
        }
        XCTAssertTrue(changedSomething, "no filter changed what is shown")
        // The word view joins ## pieces: "unflinchingly" is one word there.
        let words = try dumpDOM(browser, page, fragment: "view=words&q=unflinchingly", dir)
        let w = shownRecords(words, methods: methods)
        XCTAssertEqual(Set(w.map(\.index)), [1, 11], "SST-2's record 1 and the pair 11")
        for s in w {
            XCTAssertTrue(s.tokens.contains("unflinchingly"), "\(s.tokens)")
            XCTAssertFalse(s.tokens.contains { $0.hasPrefix("##") }, "\(s.tokens)")
            XCTAssertEqual(s.cells["gs"], s.tokens.count)
        }
        print("report: \(html.utf8.count) bytes; open in headless chromium: \(bodyAttribute("data-load-ms", dom) ?? "?") ms (performance.now() at the end of the script)")
    }

    /// Without an evaluation the page says how to make one; --records limits the sample.
    func testReportWithoutEvaluationAndSampleSize() throws {
        let dir = try temporaryDirectory(self)
        let run = try makeRun(dir, evaluate: false)
        let out = dir.appendingPathComponent("page.html")
        let r = try runBinary(["report", run.path, "-o", out.path, "--records", "4"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let html = try String(contentsOf: out, encoding: .utf8)
        let start = try XCTUnwrap(html.range(of: "<script type=\"application/json\" id=\"report-data\">"))
        let json = html[start.upperBound...].components(separatedBy: "</script>")[0]
        let doc = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let embedded = try XCTUnwrap(doc["records"] as? [[String: Any]])
        XCTAssertEqual(embedded.count, 4)
        XCTAssertTrue(html.contains(#"<script type="application/json" id="report-evaluation">null</script>"#))
        // The corpus tables are over all 12 records, not the sample.
        let words = try XCTUnwrap((doc["words"] as? [String: Any])?["methods"] as? [String: [[String: Any]]])
        XCTAssertEqual(words["gs"]?.first?["records"] as? Int, 12)
        let confusion = try XCTUnwrap((doc["classification"] as? [String: Any])?["confusion"] as? [[Int]])
        XCTAssertEqual(confusion.joined().reduce(0, +), 12)
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.appendingPathComponent("report.html").path))
    }

    /// One line on standard error, exit 2, and no page written.
    func assertRefused(_ args: [String], mentions: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try runBinary(args)
        XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "\(args): \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.contains(mentions), "\(args): \(r.stderr) should mention \(mentions)", file: file, line: line)
    }

    func testBadInput() throws {
        let dir = try temporaryDirectory(self)
        let run = try makeRun(dir)
        let page = run.appendingPathComponent("report.html")
        // An evaluation of another run: another model hash, another record count.
        let evaluation = run.appendingPathComponent("evaluation.json")
        let text = try String(contentsOf: evaluation, encoding: .utf8)
        let doc = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let hash = try XCTUnwrap(doc["model_sha256"] as? String)
        let otherModel = dir.appendingPathComponent("other-model.json")
        try text.replacingOccurrences(of: hash, with: String(repeating: "0", count: 64)).write(to: otherModel, atomically: true, encoding: .utf8)
        try assertRefused(["report", run.path, "--evaluation", otherModel.path], mentions: "another run (model hash 000000000000")
        let fewer = dir.appendingPathComponent("fewer.json")
        try text.replacingOccurrences(of: "\"read\": 12", with: "\"read\": 11").write(to: fewer, atomically: true, encoding: .utf8)
        try assertRefused(["report", run.path, "--evaluation", fewer.path], mentions: "it read 11 records, the run has 12")
        // The run's own evaluation.json of another run is refused the same way.
        try FileManager.default.copyItem(at: evaluation, to: dir.appendingPathComponent("good.json"))
        try FileManager.default.removeItem(at: evaluation)
        try FileManager.default.copyItem(at: fewer, to: evaluation)
        try assertRefused(["report", run.path], mentions: "evaluation.json: an evaluation of another run")
        try assertRefused(["report", run.path, "--evaluation", dir.appendingPathComponent("missing.json").path], mentions: "missing.json")
        try assertRefused(["report", run.path, "--evaluation", run.appendingPathComponent("manifest.json").path], mentions: "not an evaluation document")
        try FileManager.default.removeItem(at: evaluation)
        // An unwritable -o: a directory, a path under a file, a missing directory.
        try assertRefused(["report", run.path, "-o", dir.path], mentions: "names a directory")
        try assertRefused(["report", run.path, "-o", run.appendingPathComponent("manifest.json/report.html").path], mentions: "is not a directory")
        try assertRefused(["report", run.path, "-o", dir.appendingPathComponent("no/such/report.html").path], mentions: "no/such")
        try assertRefused(["report", run.path, "--records", "0"], mentions: "--records")
        // Not a finished run: an empty directory, a missing one, a run still running.
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        try assertRefused(["report", empty.path], mentions: empty.path)
        try assertRefused(["report", dir.appendingPathComponent("missing").path], mentions: "missing")
        let manifest = run.appendingPathComponent("manifest.json")
        let m = try String(contentsOf: manifest, encoding: .utf8)
        try m.replacingOccurrences(of: "\"complete\"", with: "\"running\"").write(to: manifest, atomically: true, encoding: .utf8)
        try assertRefused(["report", run.path], mentions: "not complete")
        XCTAssertFalse(FileManager.default.fileExists(atPath: page.path), "no page from bad input")
    }
}
