import Foundation
import XCTest
@testable import Tokenizer

/// Cases generated with Hugging Face's `tokenizers` by
/// tools/gen_tokenizer_cases.py (Tests/Fixtures/tokenizer-extra): random
/// Unicode of every plane mixed into SST-2 sentences, under every normalizer
/// option, and full encodings by the bundled model's tokenizer.json.
final class GeneratedCaseTests: XCTestCase {
    func testAllNormalizerOptions() throws {
        let data = try Data(contentsOf: Fixtures.url("tokenizer-extra/options.jsonl"))
        let vocabulary = try Vocabulary.load(vocabFile: Fixtures.url("tokenizer/vocab.txt"))
        var tokenizers: [String: BertTokenizer] = [:]
        var failures: [String] = []
        var passed = 0, total = 0
        var perOptions: [String: Int] = [:]
        let workspace = TokenizerWorkspace()
        for (n, line) in data.split(separator: 0x0A).enumerated() where !line.isEmpty {
            let v = try JSONParser.parse([UInt8](line))
            let o = try XCTUnwrap(v["options"])
            var options = BertTokenizerOptions(lowercase: o["lowercase"]?.bool ?? true,
                                               stripAccents: o["strip_accents"]?.bool,
                                               handleChineseChars: o["chinese"]?.bool ?? true)
            options.cleanText = o["clean_text"]?.bool ?? true
            let key = "\(options.lowercase)/\(String(describing: options.stripAccents))/\(options.handleChineseChars)/\(options.cleanText)"
            let tokenizer = try tokenizers[key] ?? BertTokenizer(vocabulary: vocabulary, options: options)
            tokenizers[key] = tokenizer
            let text = try XCTUnwrap(v["text"]?.string)
            guard case let .array(wantTokens)? = v["tokens"], case let .array(wantIDs)? = v["ids"],
                  case let .array(wantOffsets)? = v["offsets"] else { return XCTFail("line \(n + 1): bad case") }
            let want = (tokens: wantTokens.map { $0.string ?? "" }, ids: wantIDs.map { Int32($0.int ?? -1) },
                        offsets: wantOffsets.map { o -> TokenOffset in
                            guard case let .array(p) = o else { return TokenOffset(start: -1, end: -1) }
                            return TokenOffset(start: Int32(p[0].int ?? -1), end: Int32(p[1].int ?? -1))
                        })
            let got = tokenizer.tokenize(text, workspace: workspace)
            let gotTokens = tokenizer.tokens(got.ids)
            total += 1
            perOptions[key, default: 0] += 1
            if got.ids == want.ids && got.offsets == want.offsets && gotTokens == want.tokens {
                passed += 1
            } else if failures.count < 5 {
                failures.append("""
                options.jsonl:\(n + 1) \(key) text "\(Fixtures.escaped(text))"
                  want \(want.tokens.map(Fixtures.escaped)) \(want.ids) \(Fixtures.describe(want.offsets))
                  got  \(gotTokens.map(Fixtures.escaped)) \(got.ids) \(Fixtures.describe(got.offsets))
                """)
            }
        }
        XCTAssertGreaterThan(total, 1000)
        XCTAssertEqual(perOptions.count, 8)
        XCTAssertEqual(passed, total, "options.jsonl: \(total - passed) of \(total) differ:\n" + failures.joined(separator: "\n"))
        print("options.jsonl: \(passed)/\(total) cases identical over \(perOptions.count) option sets")
    }

    func testBundledTokenizerJSON() throws {
        let tokenizer = try BertTokenizer.load(modelDirectory: Fixtures.checkout.appendingPathComponent("models/minilm-sst2"))
        let data = try Data(contentsOf: Fixtures.url("tokenizer-extra/bundled.jsonl"))
        var failures: [String] = []
        var passed = 0, total = 0, pairs = 0
        let workspace = TokenizerWorkspace()
        for (n, line) in data.split(separator: 0x0A).enumerated() where !line.isEmpty {
            let v = try JSONParser.parse([UInt8](line))
            let text = try XCTUnwrap(v["text"]?.string)
            let textB = v["text_b"]?.string
            guard case let .array(t)? = v["tokens"], case let .array(i)? = v["ids"],
                  case let .array(s)? = v["segments"], case let .array(o)? = v["offsets"] else {
                return XCTFail("line \(n + 1): bad case")
            }
            let wantTokens = t.map { $0.string ?? "" }
            let wantIDs = i.map { Int32($0.int ?? -1) }
            let wantSegments = s.map { Int32($0.int ?? -1) }
            let wantOffsets: [TokenOffset?] = o.map { o in
                guard case let .array(p) = o else { return nil }
                return TokenOffset(start: Int32(p[0].int ?? -1), end: Int32(p[1].int ?? -1))
            }
            let got = tokenizer.encode(text, pair: textB, workspace: workspace)
            total += 1
            if textB != nil { pairs += 1 }
            if got.ids == wantIDs && got.segments == wantSegments && got.offsets == wantOffsets
                && tokenizer.tokens(got.ids) == wantTokens && !got.truncated && got.isPair == (textB != nil) {
                passed += 1
            } else if failures.count < 5 {
                failures.append("""
                bundled.jsonl:\(n + 1) "\(Fixtures.escaped(text))" / "\(Fixtures.escaped(textB ?? "-"))"
                  want \(wantTokens.map(Fixtures.escaped)) \(wantIDs) \(wantSegments)
                  got  \(tokenizer.tokens(got.ids).map(Fixtures.escaped)) \(got.ids) \(got.segments)
                """)
            }
        }
        XCTAssertGreaterThan(pairs, 50)
        XCTAssertEqual(passed, total, "bundled.jsonl: \(total - passed) of \(total) differ:\n" + failures.joined(separator: "\n"))
        print("bundled.jsonl: \(passed)/\(total) encodings identical (\(pairs) pairs)")
    }
}
