import Foundation
import IO
import XCTest

/// Nothing lost, ever (issue 9): the tool deletes or overwrites only files it
/// can prove it wrote; `--resume` and `merge` accept exactly the runs of the
/// same inputs (by content) and options; usage errors leave nothing behind;
/// `convert --force` never touches a source. All through the built binary.
final class OutputSafetyEndToEndTests: XCTestCase {
    let tiny = checkout.appendingPathComponent("Tests/Fixtures/tiny-bert")

    /// Every file under `dir` (relative path -> bytes; directories and links as markers).
    func snapshot(_ dir: URL) throws -> [String: Data] {
        var out: [String: Data] = [:]
        let fm = FileManager.default
        for rel in try fm.subpathsOfDirectory(atPath: dir.path) {
            let path = dir.appendingPathComponent(rel).path
            let attrs = try fm.attributesOfItem(atPath: path)
            switch attrs[.type] as? FileAttributeType {
            case .typeDirectory?: out[rel] = Data("<dir>".utf8)
            case .typeSymbolicLink?: out[rel] = Data("<link \(try fm.destinationOfSymbolicLink(atPath: path))>".utf8)
            default: out[rel] = try Data(contentsOf: URL(fileURLWithPath: path))
            }
        }
        return out
    }

    func assertRefused(_ r: RunResult, naming needle: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 2, "\(what): \(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "\(what): one line: \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.contains(needle), "\(what): '\(needle)' not in: \(r.stderr)", file: file, line: line)
    }

    /// A small JSONL input with one bad line (so that errors.jsonl is not empty).
    func smallInput(_ dir: URL, name: String = "in.jsonl", records: Int = 12) throws -> URL {
        var text = ""
        for i in 0..<records {
            text += i == 5 ? "{\"id\": \"r\(i)\", \"label\": \"1\"}\n" : "{\"id\": \"r\(i)\", \"text\": \"a quite good film , number \(i) .\", \"label\": \"\(i % 2)\"}\n"
        }
        let url = dir.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// A directory full of other people's files, of several kinds: every
    /// attempt to write there is refused with one line and every byte survives.
    func testForeignFilesInTheOutputDirectoryAreNeverTouched() throws {
        let base = try temporaryDirectory(self)
        let input = try smallInput(base)
        // A real run, whose shard and errors file make realistic foreign files.
        let run = base.appendingPathComponent("run")
        XCTAssertEqual(try runBinary(["--methods", "lat", "--shard-size", "4", "-o", run.path, input.path]).status, 3)

        let fm = FileManager.default
        var kinds: [String: (URL) throws -> Void] = [
            "a shard of another run": { try fm.copyItem(at: run.appendingPathComponent("part-00000.jsonl.zst"), to: $0.appendingPathComponent("part-00000.jsonl.zst")) },
            "an errors.jsonl": { try Data("{\"index\": 3, \"reason\": \"mine\"}\n".utf8).write(to: $0.appendingPathComponent("errors.jsonl")) },
            "a manifest.json of something else": { try Data("{\"name\": \"not ours\"}\n".utf8).write(to: $0.appendingPathComponent("manifest.json")) },
            "a plain file": { try Data("notes\n".utf8).write(to: $0.appendingPathComponent("notes.txt")) },
            "a hidden file": { try Data("x".utf8).write(to: $0.appendingPathComponent(".part-00000.jsonl.zst.tmp")) },
            "a subdirectory": {
                try fm.createDirectory(at: $0.appendingPathComponent("sub"), withIntermediateDirectories: false)
                try Data("deep".utf8).write(to: $0.appendingPathComponent("sub/part-00001.jsonl.zst"))
            },
            "a symbolic link": { try fm.createSymbolicLink(atPath: $0.appendingPathComponent("part-00002.jsonl.zst").path, withDestinationPath: input.path) },
        ]
        kinds["all of them"] = { dir in for (k, make) in kinds where k != "all of them" { try make(dir) } }
        let inputBytes = try Data(contentsOf: input)

        for (kind, make) in kinds.sorted(by: { $0.key < $1.key }) {
            let dir = base.appendingPathComponent("foreign-\(kind.replacingOccurrences(of: " ", with: "-"))")
            try fm.createDirectory(at: dir, withIntermediateDirectories: false)
            try make(dir)
            let before = try snapshot(dir)
            var attempts: [(String, [String])] = [
                ("attribute", ["--methods", "lat", "-o", dir.path, input.path]),
                ("attribute --resume", ["--methods", "lat", "--shard-size", "4", "--resume", "-o", dir.path, input.path]),
                ("merge -o", ["merge", run.path, "-o", dir.path]),
            ]
            if kind == "all of them" {
                attempts += [
                    ("attribute of a file in it", ["--methods", "lat", "-o", dir.path, dir.appendingPathComponent("part-00000.jsonl.zst").path]),
                    ("convert -o", ["convert", tiny.appendingPathComponent("hf").path, "-o", dir.path, "--labels", "negative,neutral,positive"]),
                    ("convert -o --force", ["convert", tiny.appendingPathComponent("hf").path, "-o", dir.path, "--force", "--labels", "negative,neutral,positive"]),
                    ("attribute into a directory path spelled otherwise", ["--methods", "lat", "-o", dir.path + "/../" + dir.lastPathComponent + "/.", input.path]),
                ]
            }
            for (what, args) in attempts {
                let r = try runBinary(args)
                assertRefused(r, naming: dir.lastPathComponent, "\(kind): \(what)")
                XCTAssertEqual(try snapshot(dir), before, "\(kind): \(what) changed the directory")
            }
        }
        XCTAssertEqual(try Data(contentsOf: input), inputBytes)
        // The message says what is there.
        let r = try runBinary(["--methods", "lat", "-o", base.appendingPathComponent("foreign-a-plain-file").path, input.path])
        XCTAssertTrue(r.stderr.contains("1 entry (notes.txt)") && r.stderr.contains("no manifest"), r.stderr)
    }

    /// A run's inputs are never within its output's reach: not as a file of
    /// the output directory, through a symbolic link, a hard link, another
    /// spelling of the path, nor standard input redirected from one.
    func testInputsInsideTheOutputDirectoryAreRefused() throws {
        let base = try temporaryDirectory(self)
        let input = try smallInput(base)
        let out = base.appendingPathComponent("out")
        let args = ["--methods", "lat", "--shard-size", "4"]
        XCTAssertEqual(try runBinary(args + ["-o", out.path, input.path]).status, 3)
        // The issue's case: explaining an earlier output in a directory that holds it.
        let d = base.appendingPathComponent("d")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: false)
        try FileManager.default.copyItem(at: out.appendingPathComponent("part-00000.jsonl.zst"), to: d.appendingPathComponent("part-00000.jsonl.zst"))
        let dBefore = try snapshot(d)
        assertRefused(try runBinary(args + ["-o", d.path, d.appendingPathComponent("part-00000.jsonl.zst").path]), naming: "is in the output directory", "input in a foreign directory")
        XCTAssertEqual(try snapshot(d), dBefore)

        // A run directory of ours, with --resume: its own files are never inputs.
        try FileManager.default.createSymbolicLink(atPath: base.appendingPathComponent("link.jsonl").path, withDestinationPath: out.appendingPathComponent("errors.jsonl").path)
        try FileManager.default.linkItem(at: out.appendingPathComponent("errors.jsonl"), to: base.appendingPathComponent("hard.jsonl"))
        // Damage a shard so that a resume would redo (and so delete) it, were it allowed to start.
        var m = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("manifest.json"))) as! [String: Any]
        m["status"] = "running"
        try JSONSerialization.data(withJSONObject: m).write(to: out.appendingPathComponent("manifest.json"))
        let before = try snapshot(out)
        let spellings = [
            out.appendingPathComponent("part-00001.jsonl.zst").path,
            base.path + "/out/../out/errors.jsonl",
            base.appendingPathComponent("link.jsonl").path,
            base.appendingPathComponent("hard.jsonl").path,
        ]
        for s in spellings {
            assertRefused(try runBinary(args + ["--resume", "-o", out.path, s]), naming: "is in the output directory", s)
            XCTAssertEqual(try snapshot(out), before, s)
        }
        assertRefused(try runBinary(args + ["--resume", "-o", out.path, "-"], stdin: out.appendingPathComponent("errors.jsonl")),
                      naming: "standard input: is in the output directory", "standard input")
        XCTAssertEqual(try snapshot(out), before)
    }

    /// A kill after some shards, simulated exactly: the manifest and files a
    /// killed run leaves (its shards up to `keep`, status running).
    func cutBack(_ dir: URL, keepShards keep: Int) throws {
        let url = dir.appendingPathComponent("manifest.json")
        var m = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let shards = m["shards"] as! [[String: Any]]
        for s in shards.dropFirst(keep) { try FileManager.default.removeItem(at: dir.appendingPathComponent(s["file"] as! String)) }
        m["shards"] = Array(shards.prefix(keep))
        m["status"] = "running"
        m["records"] = shards.prefix(keep).reduce(0) { $0 + ($1["count"] as! Int) }
        try JSONSerialization.data(withJSONObject: m).write(to: url)
    }

    /// `--resume` compares the inputs' content, not their names: an input
    /// edited (or cut short) after the kill is refused before any new record
    /// is written; the same bytes under another path resume, byte-identical.
    func testResumeChecksTheInputsContent() throws {
        let base = try temporaryDirectory(self)
        let input = try smallInput(base, records: 20)
        let args = ["--methods", "lat", "--shard-size", "4"]
        let whole = base.appendingPathComponent("whole")
        XCTAssertEqual(try runBinary(args + ["-o", whole.path, input.path]).status, 3)
        let original = try Data(contentsOf: input)

        let run = base.appendingPathComponent("run")
        try FileManager.default.copyItem(at: whole, to: run)
        try cutBack(run, keepShards: 2)
        let shardsBefore = try snapshot(run).filter { $0.key.hasPrefix("part-") }

        // Edited: one letter of a record the run had already read, then the file cut short, then one more record.
        var edited = original
        edited[40] = UInt8(ascii: "X")
        let variants: [(String, Data, String)] = [
            ("edited", edited, "differ from those the run read"),
            ("cut short", original.prefix(original.count / 2), "fewer than"),
            ("another file", Data("{\"text\": \"something else\"}\n".utf8), "changed since the run"),
        ]
        for (what, bytes, needle) in variants {
            try bytes.write(to: input)
            let r = try runBinary(args + ["--resume", "-o", run.path, input.path])
            XCTAssertEqual(r.status, 2, "\(what): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("bertlrp-batch: \(input.path): changed since the run in \(run.path) read it"), "\(what): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(needle), "\(what): \(r.stderr)")
            XCTAssertEqual(try snapshot(run).filter { $0.key.hasPrefix("part-") }, shardsBefore, "\(what): shards changed")
        }
        try original.write(to: input)

        // The same bytes by another path: a copy, and another spelling of the original.
        let copy = base.appendingPathComponent("sub/copy.jsonl")
        try FileManager.default.createDirectory(at: copy.deletingLastPathComponent(), withIntermediateDirectories: false)
        try original.write(to: copy)
        let r = try runBinary(args + ["--resume", "-o", run.path, copy.path])
        XCTAssertEqual(r.status, 3, r.stderr)
        XCTAssertTrue(r.stderr.contains("resumed at index"), r.stderr)
        XCTAssertEqual(try shardLines(run), try shardLines(whole))
        XCTAssertEqual(try Data(contentsOf: run.appendingPathComponent("errors.jsonl")), try Data(contentsOf: whole.appendingPathComponent("errors.jsonl")))
        for s in try FileManager.default.contentsOfDirectory(atPath: whole.path) where s.hasPrefix("part-") {
            XCTAssertEqual(try Data(contentsOf: run.appendingPathComponent(s)), try Data(contentsOf: whole.appendingPathComponent(s)), s)
        }
        let again = try runBinary(args + ["--resume", "-o", run.path, base.path + "/sub/../in.jsonl"])
        XCTAssertEqual(again.status, 3, again.stderr)
        XCTAssertTrue(again.stderr.contains("complete already"), again.stderr)
        // A complete run, resumed with an edited input: refused too.
        try edited.write(to: input)
        let stale = try runBinary(args + ["--resume", "-o", run.path, input.path])
        XCTAssertEqual(stale.status, 2, stale.stderr)
        XCTAssertTrue(stale.stderr.contains("changed since the run"), stale.stderr)
        // Another number of inputs is another job.
        try original.write(to: input)
        let two = try runBinary(args + ["--resume", "-o", run.path, input.path, copy.path])
        assertRefused(two, naming: "inputs differ", "two inputs")
    }

    /// `merge` takes exactly the runs of one job: same inputs by content and
    /// same reader options; it checks every shard's count and checksum and
    /// every errors file against its manifest; a refused merge leaves nothing.
    func testMergeAcceptsOnlyTheSameJobAndVerifiesEverything() throws {
        let base = try temporaryDirectory(self)
        let input = try smallInput(base, records: 16)
        let args = ["--methods", "lat", "--shard-size", "3"]
        func part(_ i: Int, _ name: String, _ extra: [String] = [], input: URL) throws -> String {
            let dir = base.appendingPathComponent(name).path
            let r = try runBinary(args + extra + ["--partition", "\(i)/2", "-o", dir, input.path])
            XCTAssertTrue(r.status == 0 || r.status == 3, r.stderr)
            return dir
        }
        let p0 = try part(0, "p0", input: input), p1 = try part(1, "p1", input: input)
        let whole = base.appendingPathComponent("whole")
        XCTAssertEqual(try runBinary(args + ["-o", whole.path, input.path]).status, 3)
        let good = base.appendingPathComponent("merged")
        let ok = try runBinary(["merge", p0, p1, "-o", good.path])
        XCTAssertEqual(ok.status, 3, ok.stderr)
        try assertSameRecords(try shardLines(good), try shardLines(whole))

        // The same bytes under another name: the same job.
        let renamed = base.appendingPathComponent("renamed.jsonl")
        try FileManager.default.copyItem(at: input, to: renamed)
        let p1r = try part(1, "p1-renamed", input: renamed)
        XCTAssertEqual(try runBinary(["merge", p0, p1r, "-o", base.appendingPathComponent("merged2").path]).status, 3)

        // Other inputs, other reader options: refused, naming the difference.
        var other = try Data(contentsOf: input)
        other[30] = UInt8(ascii: "Z")
        let otherURL = base.appendingPathComponent("other.jsonl")
        try other.write(to: otherURL)
        let p1o = try part(1, "p1-other", input: otherURL)
        let p1t = try part(1, "p1-field", ["--text-field", "text"], input: input)

        // Tampered runs: an emptied errors.jsonl, a shard count, a shard swapped for another valid one.
        func tampered(_ name: String, _ change: (URL) throws -> Void) throws -> String {
            let dir = base.appendingPathComponent(name)
            try FileManager.default.copyItem(at: URL(fileURLWithPath: p1), to: dir)
            try change(dir)
            return dir.path
        }
        let emptied = try tampered("emptied") { try Data().write(to: $0.appendingPathComponent("errors.jsonl")) }
        let extraError = try tampered("extra-error") {
            let h = try FileHandle(forWritingTo: $0.appendingPathComponent("errors.jsonl"))
            h.seekToEndOfFile()
            h.write(Data("{\"index\": 99, \"reason\": \"x\"}\n".utf8))
            try h.close()
        }
        let miscounted = try tampered("miscounted") { dir in
            let url = dir.appendingPathComponent("manifest.json")
            var m = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
            var shards = m["shards"] as! [[String: Any]]
            shards[1]["count"] = (shards[1]["count"] as! Int) + 1
            m["shards"] = shards
            try JSONSerialization.data(withJSONObject: m).write(to: url)
        }
        let swapped = try tampered("swapped") { dir in
            try FileManager.default.removeItem(at: dir.appendingPathComponent("part-00001.jsonl.zst"))
            try FileManager.default.copyItem(at: dir.appendingPathComponent("part-00000.jsonl.zst"), to: dir.appendingPathComponent("part-00001.jsonl.zst"))
        }
        let cases: [(String, String)] = [
            (p1o, "inputs differ"), (p1t, "input options differ"),
            (emptied, "errors.jsonl: 0 bytes"), (extraError, "errors.jsonl"),
            (miscounted, "its manifest says"), (swapped, "checksum"),
        ]
        for (i, (run, needle)) in cases.enumerated() {
            let out = base.appendingPathComponent("bad\(i)")
            assertRefused(try runBinary(["merge", p0, run, "-o", out.path]), naming: needle, run)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "\(run): a refused merge left \(out.path)")
        }
        // The output may not be one of the runs, however spelled.
        assertRefused(try runBinary(["merge", p0, p1, "-o", p1 + "/../p1/."]), naming: "must not be one of its inputs", "merge into an input")
    }

    /// Usage errors the first record shows (a `--text-field` typo, `--format
    /// tsv` on JSONL, a TSV without a text column, also as a later input):
    /// exit 2, the cause on the first line, no output directory; the
    /// corrected command then runs in the same place.
    func testUsageErrorsFoundInTheInputLeaveNothingBehind() throws {
        let base = try temporaryDirectory(self)
        let tsv = try sst2Subset(base, records: 6)
        let jsonl = try smallInput(base, records: 6)
        let noText = base.appendingPathComponent("notext.tsv")
        try "a\tb\nx\ty\n".write(to: noText, atomically: true, encoding: .utf8)
        let out = base.appendingPathComponent("out")
        let empty = base.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: false)
        let cases: [([String], String)] = [
            (["--text-field", "sentense", tsv.path], "has no column 'sentense' (--text-field)"),
            (["--text-field", "txt", jsonl.path], "in.jsonl:1: the first record has no field 'txt' (--text-field)"),
            ([jsonl.path, "--text-field", "text", tsv.path], "has no column 'text' (--text-field)"),
            (["--format", "tsv", jsonl.path], "has no text column"),
            ([noText.path], "notext.tsv:1: the TSV header (a, b) has no text column"),
            ([tsv.path, noText.path], "notext.tsv:1: the TSV header (a, b) has no text column"),
            (["--no-header", "--text-field", "first", tsv.path], "--no-header needs 1-based column numbers"),
        ]
        for (args, needle) in cases {
            for dir in [out, empty] {
                let r = try runBinary(["--methods", "lat", "-o", dir.path] + args)
                XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)")
                XCTAssertTrue(r.stderr.hasPrefix("bertlrp-batch: ") && r.stderr.split(separator: "\n").first!.contains(needle), "\(args): \(r.stderr)")
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "\(args): left \(out.path)")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: empty.path), [], "\(args): left files in an existing directory")
        }
        // The corrected command, in the same place, and its --resume.
        let fixed = try runBinary(["--methods", "lat", "--text-field", "sentence", "-o", out.path, tsv.path])
        XCTAssertEqual(fixed.status, 0, fixed.stderr)
        XCTAssertEqual(try shardLines(out).count, 6)
        XCTAssertTrue(try runBinary(["--methods", "lat", "--text-field", "sentence", "--resume", "-o", out.path, tsv.path]).stderr.contains("complete already"))
    }

    /// `convert --force` never touches a source: SRC as -o, SRC inside -o,
    /// through a symbolic link, a vocabulary inside -o; every byte survives.
    /// It replaces an earlier conversion as before.
    func testConvertForceNeverTouchesTheSource() throws {
        let base = try temporaryDirectory(self)
        let fm = FileManager.default
        let hf = base.appendingPathComponent("hf"), tf = base.appendingPathComponent("tf")
        try fm.copyItem(at: tiny.appendingPathComponent("hf"), to: hf)
        try fm.copyItem(at: tiny.appendingPathComponent("tf"), to: tf)
        try fm.createSymbolicLink(at: base.appendingPathComponent("hf-link"), withDestinationURL: hf)
        let labels = ["--labels", "negative,neutral,positive"]
        let before = try snapshot(base)
        let cases: [([String], String)] = [
            ([hf.path, "-o", hf.path, "--force"], hf.path),
            ([hf.appendingPathComponent("model.safetensors").path, "-o", hf.path, "--force"], hf.path),
            ([base.appendingPathComponent("hf-link").path, "-o", hf.path + "/.", "--force"], "hf"),
            ([tf.appendingPathComponent("bert_model.ckpt").path, "-o", tf.path, "--force"], tf.path),
            ([hf.path, "-o", base.path, "--force"], base.path),
            ([tf.appendingPathComponent("bert_model.ckpt").path, "--vocab", hf.appendingPathComponent("vocab.txt").path, "-o", hf.path, "--force"], "vocab.txt"),
        ]
        for (args, needle) in cases {
            let r = try runBinary(["convert"] + args + labels)
            assertRefused(r, naming: needle, "\(args)")
            XCTAssertEqual(try snapshot(base), before, "\(args) changed files")
        }
        // An earlier conversion is still replaced with --force.
        let out = base.appendingPathComponent("out")
        XCTAssertEqual(try runBinary(["convert", tf.path, "-o", out.path] + labels).status, 0)
        let redo = try runBinary(["convert", tiny.appendingPathComponent("torch-hf").path, "-o", out.path, "--force"] + labels)
        XCTAssertEqual(redo.status, 0, redo.stderr)
        XCTAssertTrue(String(decoding: redo.stdout, as: UTF8.self).contains("torch.save"), String(decoding: redo.stdout, as: UTF8.self))
    }
}
