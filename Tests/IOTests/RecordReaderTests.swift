import Foundation
import XCTest
@testable import IO

final class RecordReaderTests: XCTestCase {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    private func temp(_ name: String, _ bytes: [UInt8]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rr-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    private func readAll(_ inputs: [String], _ options: RecordReaderOptions = .init()) throws -> [ReadItem] {
        let reader = RecordReader(inputs: inputs, options: options)
        var items: [ReadItem] = []
        while let item = try reader.next() { items.append(item) }
        return items
    }

    func testSST2TSVAndJSONLGiveTheSameRecords() throws {
        let tsv = try readAll([Self.repo.appendingPathComponent("data/sst2/dev.tsv").path])
        let jsonl = try readAll([Self.repo.appendingPathComponent("data/sst2/dev.jsonl").path])
        XCTAssertEqual(tsv.count, 872)
        XCTAssertEqual(jsonl.count, 872)
        for (a, b) in zip(tsv, jsonl) {
            guard case let .record(ra) = a, case let .record(rb) = b else { return XCTFail("bad record in SST-2") }
            XCTAssertEqual(ra.index, rb.index)
            XCTAssertEqual(ra.text, rb.text)
            XCTAssertEqual(ra.label, rb.label)
        }
        guard case let .record(first) = tsv[0] else { return XCTFail() }
        XCTAssertEqual(first.line, 2, "line numbers count the header")
    }

    /// Progress: the bytes behind the records returned so far, record by
    /// record (not the reader's 1 MiB chunks), across inputs; for a `.zst`
    /// input in proportion, reaching its compressed size at the end.
    func testBytesReadFollowsTheRecords() throws {
        let lines = (0..<300).map { "{\"text\": \"sentence number \($0)\"}\n" }
        let plain = try temp("a.jsonl", Array(lines.joined().utf8))
        let tsv = try temp("b.tsv", Array(("sentence\n" + lines.map { "tsv \($0.count)\n" }.joined()).utf8))
        let reader = RecordReader(inputs: [plain, tsv])
        var expected: Int64 = 0
        for line in lines {
            XCTAssertNotNil(try reader.next())
            expected += Int64(line.utf8.count)
            XCTAssertEqual(reader.bytesRead, expected)
        }
        XCTAssertNotNil(try reader.next())
        expected += Int64("sentence\n".utf8.count + "tsv \(lines[0].count)\n".utf8.count)
        XCTAssertEqual(reader.bytesRead, expected)
        while try reader.next() != nil {}
        XCTAssertEqual(reader.bytesRead, reader.totalBytes)

        let zst = try temp("c.jsonl.zst", try Zstd.compress(Array(lines.joined().utf8)))
        let compressed = RecordReader(inputs: [zst])
        var previous: Int64 = -1
        while try compressed.next() != nil {
            XCTAssertGreaterThanOrEqual(compressed.bytesRead, previous)
            previous = compressed.bytesRead
        }
        XCTAssertEqual(previous, compressed.totalBytes)
    }

    /// A UTF-8 byte order mark opening a file (spreadsheet exports) is not
    /// part of the header or the first record, whatever the format.
    func testByteOrderMarkIsSkipped() throws {
        let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
        let tsv = try temp("a.tsv", bom + Array("sentence\tlabel\nhello\t1\n".utf8))
        let jsonl = try temp("b.jsonl", bom + Array("{\"text\": \"hi\"}\n".utf8))
        let sniffed = try temp("c.txt", bom + Array("{\"text\": \"yo\"}\n".utf8))
        let texts = try readAll([tsv, jsonl, sniffed]).map { item -> String in
            guard case let .record(r) = item else { return "bad" }
            return r.text
        }
        XCTAssertEqual(texts, ["hello", "hi", "yo"])
    }

    func testBadRecordsAreReportedWithIndexLineAndReason() throws {
        let lines: [[UInt8]] = [
            Array(#"{"text": "good one", "id": 7, "label": 1}"#.utf8),
            Array(#"{"text": "broken"#.utf8),
            Array(#"{"sentence": "fallback field"}"#.utf8),
            Array(#"{"id": "x"}"#.utf8),
            [0x7B, 0x22, 0x74, 0x65, 0x78, 0x74, 0x22, 0x3A, 0x22, 0xFF, 0x22, 0x7D],   // {"text":"\xFF"}
            Array(#"{"text": 5}"#.utf8),
            [],
            Array(#"{"text": "pair", "text_b": "second"}"#.utf8),
        ]
        let path = try temp("in.jsonl", Array(lines.joined(separator: [0x0A])))
        let items = try readAll([path])
        XCTAssertEqual(items.map(\.index), Array(0..<7))
        let reasons = items.compactMap { item -> String? in if case let .bad(b) = item { return "\(b.line):\(b.reason)" } else { return nil } }
        XCTAssertEqual(reasons, ["2:malformed JSON", "4:missing text field 'text'", "5:invalid UTF-8", "6:field 'text' is not a string"])
        guard case let .record(r0) = items[0], case let .record(r2) = items[2], case let .record(r6) = items[6] else { return XCTFail() }
        XCTAssertEqual(r0.id, "7")
        XCTAssertEqual(r0.label, "1")
        XCTAssertEqual(r2.text, "fallback field")
        XCTAssertEqual(r6.textB, "second")
        XCTAssertEqual(r6.line, 8)
    }

    func testTSVColumnCountAndNoHeader() throws {
        let path = try temp("in.tsv", Array("text\tlabel\na\t1\nb\t0\textra\nc\n\td\t1\n".utf8))
        let items = try readAll([path])
        XCTAssertEqual(items.count, 4)
        if case let .bad(b) = items[1] { XCTAssertEqual(b.reason, "expected 2 tab-separated columns, found 3") } else { XCTFail() }
        if case let .bad(b) = items[2] { XCTAssertEqual(b.line, 4) } else { XCTFail() }

        let headerless = try temp("h.tsv", Array("1\tfirst text\n0\tsecond\n".utf8))
        let items2 = try readAll([headerless], RecordReaderOptions(textField: "2", labelField: "1", header: false))
        guard case let .record(r) = items2[1] else { return XCTFail() }
        XCTAssertEqual(r.text, "second")
        XCTAssertEqual(r.label, "0")

        let noText = try temp("n.tsv", Array("foo\tbar\nx\ty\n".utf8))
        XCTAssertThrowsError(try readAll([noText])) { XCTAssertTrue("\($0)".contains("n.tsv")) }
    }

    func testIndicesRunAcrossInputsAndZstdInputsAreRead() throws {
        let a = try temp("a.jsonl", Array("{\"text\": \"one\"}\n{\"text\": \"two\"}\n".utf8))
        let compressed = try Zstd.compress(Array("sentence\tlabel\nthree\t1\n".utf8))
        let b = try temp("b.tsv.zst", compressed)
        let items = try readAll([a, b])
        XCTAssertEqual(items.map(\.index), [0, 1, 2])
        guard case let .record(r) = items[2] else { return XCTFail() }
        XCTAssertEqual(r.text, "three")
        XCTAssertEqual(r.input, b)

        let truncated = try temp("c.jsonl.zst", Array(compressed.prefix(compressed.count - 3)))
        XCTAssertThrowsError(try readAll([truncated])) { XCTAssertTrue("\($0)".contains("c.jsonl.zst"), "\($0)") }
        XCTAssertThrowsError(try readAll(["/nonexistent/in.tsv"])) { XCTAssertTrue("\($0)".contains("/nonexistent/in.tsv")) }
    }

    func testUnknownExtensionIsSniffed() throws {
        let j = try temp("x.txt", Array("\n{\"text\": \"json\"}\n".utf8))
        guard case let .record(r) = try readAll([j])[0] else { return XCTFail() }
        XCTAssertEqual(r.text, "json")
        let t = try temp("y.txt", Array("text\nplain\n".utf8))
        guard case let .record(r2) = try readAll([t])[0] else { return XCTFail() }
        XCTAssertEqual(r2.text, "plain")
    }
}
