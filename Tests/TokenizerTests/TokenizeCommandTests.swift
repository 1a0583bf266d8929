import Foundation
import XCTest

/// `bertlrp-batch tokenize`, run as a process: the binary `swift test` builds
/// next to the test bundle (skipped when it is not there).
final class TokenizeCommandTests: XCTestCase {
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    var binary: URL!
    var dir: URL!

    override func setUpWithError() throws {
        // The test bundle sits in .build/<config>/, as does the executable.
        let candidates = [Bundle(for: Self.self).bundleURL.deletingLastPathComponent(),
                          URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
        guard let found = candidates.map({ $0.appendingPathComponent("bertlrp-batch") })
            .first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw XCTSkip("bertlrp-batch is not built next to the tests")
        }
        binary = found
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("tokenize-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    func run(_ arguments: [String], stdin: Data? = nil) throws -> Run {
        let p = Process()
        p.executableURL = binary
        p.arguments = arguments
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = input
        try p.run()
        if let stdin { input.fileHandleForWriting.write(stdin) }
        try input.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    func file(_ name: String, _ bytes: [UInt8]) throws -> String {
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    var model: String { Fixtures.checkout.appendingPathComponent("models/minilm-sst2").path }

    func testSST2Sentence() throws {
        let tsv = try file("in.tsv", Array("sentence\tlabel\nit 's a charming and often affecting journey . \t1\n".utf8))
        let r = try run(["tokenize", "--model", model, tsv])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, """
        {"index": 0, "tokens": ["[CLS]", "it", "'", "s", "a", "charming", "and", "often", "affecting", "journey", ".", "[SEP]"], \
        "ids": [101, 2009, 1005, 1055, 1037, 11951, 1998, 2411, 12473, 4990, 1012, 102], \
        "offsets": [null, [0, 2], [3, 4], [4, 5], [6, 7], [8, 16], [17, 20], [21, 26], [27, 36], [37, 44], [45, 46], null], \
        "segments": [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]}

        """)
    }

    func testPairsIdsTruncationAndBadRecords() throws {
        let lines = "{\"id\": \"p1\", \"text\": \"good film\", \"text_b\": \"not bad at all\"}\n{\"text\": 3}\nnot json\n{\"sentence\": \"ok\"}\n"
        let errors = dir.appendingPathComponent("errors.jsonl").path
        let r = try run(["tokenize", "--vocab", Fixtures.url("tokenizer/vocab.txt").path, "--max-seq-length", "6",
                         "--errors", errors, "-"], stdin: Data(lines.utf8))
        XCTAssertEqual(r.status, 3)
        XCTAssertEqual(r.stdout, """
        {"index": 0, "id": "p1", "tokens": ["[CLS]", "good", "film", "[SEP]", "not", "[SEP]"], "ids": [101, 2204, 2143, 102, 2025, 102], \
        "offsets": [null, [0, 4], [5, 9], null, [0, 3], null], "segments": [0, 0, 0, 0, 1, 1], "truncated": true}
        {"index": 3, "tokens": ["[CLS]", "ok", "[SEP]"], "ids": [101, 7929, 102], "offsets": [null, [0, 2], null], "segments": [0, 0, 0], "truncated": false}

        """)
        let logged = try String(contentsOfFile: errors, encoding: .utf8)
        XCTAssertEqual(logged, """
        {"index": 1, "input": "<stdin>", "line": 2, "reason": "field 'text' is not a string"}
        {"index": 2, "input": "<stdin>", "line": 3, "reason": "malformed JSON"}

        """)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 3, r.stderr)
    }

    func testInvalidUTF8RecordIsReported() throws {
        let tsv = try file("bad.tsv", Array("sentence\tlabel\n".utf8) + [0x61, 0xFF, 0x62, 0x09, 0x31, 0x0A] + Array("fine\t0\n".utf8))
        let r = try run(["tokenize", "--model", model, tsv])
        XCTAssertEqual(r.status, 3)
        XCTAssertTrue(r.stdout.hasPrefix("{\"index\": 1, "), r.stdout)
        XCTAssertTrue(r.stderr.contains("bad.tsv:2: record 0: invalid UTF-8"), r.stderr)
    }

    func testConfigurationErrorsAreOneLineExit2() throws {
        let missing = dir.appendingPathComponent("nope/vocab.txt").path
        var r = try run(["tokenize", "--vocab", missing], stdin: Data())
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stderr, "bertlrp-batch: error: \(missing): cannot read: no such file\n")
        let empty = try file("vocab.txt", [])
        r = try run(["tokenize", "--vocab", empty], stdin: Data())
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stderr, "bertlrp-batch: error: \(empty): the vocabulary is empty (expected one WordPiece token a line)\n")
        let noFiles = dir.appendingPathComponent("model")
        try FileManager.default.createDirectory(at: noFiles, withIntermediateDirectories: true)
        r = try run(["tokenize", "--model", noFiles.path], stdin: Data())
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stderr, "bertlrp-batch: error: \(noFiles.path): no tokenizer.json or vocab.txt in this model directory\n")
    }
}
