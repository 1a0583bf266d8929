import Foundation
import XCTest
@testable import Tokenizer

/// The shared reference cases (Tests/Fixtures/tokenizer, produced by Hugging
/// Face's fast BertTokenizer): identical tokens, ids and offsets.
final class FixtureTests: XCTestCase {
    static let uncased = try! BertTokenizer.load(vocabFile: Fixtures.url("tokenizer/vocab.txt"))
    static let cased = try! BertTokenizer.load(vocabFile: Fixtures.url("tokenizer/vocab.txt"),
                                               options: BertTokenizerOptions(lowercase: false))

    static func tokenizer(_ lower: Bool) -> BertTokenizer { lower ? uncased : cased }

    func testUncasedFixtures() throws {
        let cases = try Fixtures.cases("tokenizer/uncased.jsonl")
        XCTAssertEqual(cases.count, 1472)
        Fixtures.check(cases, file: "uncased.jsonl", tokenizer: Self.tokenizer)
    }

    func testCasedFixtures() throws {
        let cases = try Fixtures.cases("tokenizer/cased.jsonl")
        XCTAssertEqual(cases.count, 300)
        Fixtures.check(cases, file: "cased.jsonl", tokenizer: Self.tokenizer)
    }
}
