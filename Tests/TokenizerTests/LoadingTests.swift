import Foundation
import XCTest
@testable import Tokenizer

/// Loading vocabularies and configurations, and the errors for bad files.
final class LoadingTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("tokenizer-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    func write(_ name: String, _ text: String) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url
    }

    func message(_ body: () throws -> Void) -> String {
        do {
            try body()
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    let minimal = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n##s\n"

    func testMissingVocabFileNamesIt() {
        let url = dir.appendingPathComponent("nope/vocab.txt")
        let m = message { _ = try BertTokenizer.load(vocabFile: url) }
        XCTAssertEqual(m, "\(url.path): cannot read: no such file")
    }

    func testEmptyVocabNamesIt() throws {
        let url = try write("vocab.txt", "")
        let m = message { _ = try BertTokenizer.load(vocabFile: url) }
        XCTAssertEqual(m, "\(url.path): the vocabulary is empty (expected one WordPiece token a line)")
    }

    func testVocabWithoutUnknownToken() throws {
        let url = try write("vocab.txt", "hello\nworld\n")
        let m = message { _ = try BertTokenizer.load(vocabFile: url) }
        XCTAssertEqual(m, "\(url.path): the vocabulary has no '[UNK]' token")
    }

    func testInvalidUTF8Vocab() throws {
        let url = dir.appendingPathComponent("vocab.txt")
        try Data([0x61, 0x0A, 0xFF, 0xFE, 0x0A]).write(to: url)
        let m = message { _ = try BertTokenizer.load(vocabFile: url) }
        XCTAssertEqual(m, "\(url.path): malformed: line 2 is not valid UTF-8")
    }

    func testModelDirectoryWithoutVocabulary() {
        let m = message { _ = try BertTokenizer.load(modelDirectory: dir) }
        XCTAssertEqual(m, "\(dir.path): no tokenizer.json or vocab.txt in this model directory")
    }

    func testMalformedTokenizerJSON() throws {
        let url = try write("tokenizer.json", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0,}}")
        let m = message { _ = try BertTokenizer.load(modelDirectory: dir) }
        XCTAssertTrue(m.hasPrefix("\(url.path): malformed: invalid JSON"), m)
    }

    func testUnsupportedTokenizerJSON() throws {
        let url = try write("tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {}}}")
        let m = message { _ = try BertTokenizer.load(tokenizerJSON: url) }
        XCTAssertEqual(m, "\(url.path): unsupported: model type BPE (only WordPiece)")
    }

    /// Lines are trimmed at the end (CRLF, trailing spaces), ids are line numbers,
    /// a later duplicate takes over the id.
    func testVocabLines() throws {
        let url = try write("vocab.txt", "[PAD]\r\n[UNK] \r\n[CLS]\n[SEP]\n[MASK]\nhello\t\nhello\n##s")
        let t = try BertTokenizer.load(vocabFile: url)
        XCTAssertEqual(t.vocabulary.id(of: "[UNK]"), 1)
        XCTAssertEqual(t.vocabulary.id(of: "hello"), 6)
        XCTAssertEqual(t.vocabulary.id(of: "##s"), 7)
        XCTAssertEqual(t.tokenize("Hellos").ids, [6, 7])
        XCTAssertEqual(t.tokenize("hellox").ids, [1])
    }

    /// "é" and "e\u{301}" are different tokens (bytes), though equal as Swift Strings.
    func testVocabularyIsByteExact() throws {
        let url = try write("vocab.txt", minimal + "\u{E9}\ne\u{301}\n")
        let cased = try BertTokenizer.load(vocabFile: url, options: BertTokenizerOptions(lowercase: false))
        XCTAssertEqual(cased.vocabulary.id(of: "\u{E9}"), 7)
        XCTAssertEqual(cased.vocabulary.id(of: "e\u{301}"), 8)
        XCTAssertEqual(cased.tokenize("\u{E9} e\u{301}").ids, [7, 8])
        XCTAssertEqual(cased.vocabulary.token(of: 8).unicodeScalars.count, 2)
    }

    func testTokenizerConfigOptions() throws {
        _ = try write("vocab.txt", minimal)
        _ = try write("tokenizer_config.json", "{\"do_lower_case\": false, \"strip_accents\": true, \"tokenize_chinese_chars\": false, \"unk_token\": {\"content\": \"[UNK]\"}}")
        let t = try BertTokenizer.load(modelDirectory: dir)
        XCTAssertFalse(t.options.lowercase)
        XCTAssertEqual(t.options.stripAccents, true)
        XCTAssertFalse(t.options.handleChineseChars)
        _ = try write("tokenizer_config.json", "{\"do_lower_case\": \"yes\"}")
        let m = message { _ = try BertTokenizer.load(modelDirectory: self.dir) }
        XCTAssertTrue(m.hasSuffix("tokenizer_config.json: malformed: do_lower_case is not true/false"), m)
    }

    func testBundledModelMatchesItsVocabTxt() throws {
        let model = Fixtures.checkout.appendingPathComponent("models/minilm-sst2")
        let fromJSON = try BertTokenizer.load(modelDirectory: model)
        let fromText = try BertTokenizer.load(vocabFile: model.appendingPathComponent("vocab.txt"))
        XCTAssertEqual(fromJSON.vocabulary.count, fromText.vocabulary.count)
        XCTAssertEqual(fromJSON.vocabulary.tokens, fromText.vocabulary.tokens)
        XCTAssertEqual(fromJSON.options, fromText.options)
        XCTAssertEqual([fromJSON.clsID, fromJSON.sepID, fromJSON.unkID, fromJSON.padID], [101, 102, 100, 0])
    }
}
