import XCTest
@testable import Tokenizer

/// The fast-tokenizer behaviours listed in docs/formats.md section 4.5 (the
/// "F" column), which the generated tables must reproduce.
final class DocumentedBehaviourTests: XCTestCase {
    let uncased = FixtureTests.uncased
    let cased = FixtureTests.cased

    /// Word spans of `text` (one span per WordPiece word when every word is one token).
    func spans(_ t: BertTokenizer, _ text: String) -> [[Int32]] {
        t.tokenize(text).offsets.map { [$0.start, $0.end] }
    }

    func testFinalSigmaIsLowercasedPerCharacter() {
        XCTAssertEqual(uncased.tokenize("ΟΔΟΣ").ids, uncased.tokenize("οδοσ").ids)
        XCTAssertNotEqual(uncased.tokenize("ΟΔΟΣ").ids, uncased.tokenize("οδος").ids)
    }

    func testChineseRangeStartsAt2B920() {
        XCTAssertEqual(spans(uncased, "a\u{2B820}b"), [[0, 3]], "U+2B820 is not isolated")
        XCTAssertEqual(spans(uncased, "a\u{2B920}b"), [[0, 1], [1, 2], [2, 3]])
        XCTAssertEqual(spans(uncased, "a\u{4E00}b"), [[0, 1], [1, 2], [2, 3]])
    }

    func testControlPrivateUseAndUnassigned() {
        XCTAssertEqual(uncased.tokenize("a\u{E000}b").ids, uncased.tokenize("ab").ids, "private use removed")
        XCTAssertEqual(spans(uncased, "a\u{E000}b"), [[0, 3]])
        XCTAssertEqual(uncased.tokenize("a\u{378}b").ids, [uncased.unkID], "unassigned kept")
        XCTAssertEqual(uncased.tokenize("a\u{0}\u{7}\u{FFFD}b").ids, uncased.tokenize("ab").ids)
    }

    func testOldCategoryTables() {
        XCTAssertEqual(spans(uncased, "a\u{2E4F}b"), [[0, 3]], "U+2E4F (Unicode 11) is not punctuation")
        XCTAssertEqual(uncased.tokenize("a\u{898}b").ids, [uncased.unkID], "U+0898 (Unicode 14) is not stripped")
        XCTAssertEqual(uncased.tokenize("a\u{301}b").ids, uncased.tokenize("ab").ids, "U+0301 is stripped")
    }

    func testCasedKeepsDecomposedAccents() {
        XCTAssertEqual(spans(cased, "cafe\u{301}"), [[0, 5]])
        XCTAssertEqual(uncased.tokenize("cafe\u{301}").ids, uncased.tokenize("cafe").ids)
        XCTAssertEqual(uncased.tokenize("café").ids, uncased.tokenize("cafe").ids)
    }

    func testLongWordsAreUnknown() {
        XCTAssertEqual(uncased.tokenize(String(repeating: "x", count: 150)).ids, [uncased.unkID])
        XCTAssertEqual(uncased.tokenize(String(repeating: "x", count: 101)).ids, [uncased.unkID])
        XCTAssertNotEqual(uncased.tokenize(String(repeating: "x", count: 100)).ids, [uncased.unkID])
        // Counted after normalization: İ lower-cases to two characters without strip_accents.
        let noStrip = BertTokenizerOptions(lowercase: true, stripAccents: false)
        let t = try! BertTokenizer(vocabulary: uncased.vocabulary, options: noStrip)
        XCTAssertEqual(t.tokenize(String(repeating: "\u{130}", count: 51)).ids, [t.unkID])
    }

    func testSpecialTokensAreSplitFromRawText() {
        XCTAssertEqual(uncased.tokens(uncased.tokenize("hello [CLS]").ids), ["hello", "[CLS]"])
        XCTAssertEqual(uncased.tokens(uncased.tokenize("a[SEP]b").ids), ["a", "[SEP]", "b"])
        XCTAssertEqual(uncased.tokens(uncased.tokenize("[Cls]").ids), ["[", "cl", "##s", "]"])
    }
}
