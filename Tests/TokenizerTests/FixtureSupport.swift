import Foundation
import XCTest
@testable import Tokenizer

/// Fixture files, found relative to this source file.
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let checkout = root.deletingLastPathComponent().deletingLastPathComponent()

    static func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }

    /// One expected tokenization (tokens without [CLS]/[SEP]).
    struct Case {
        var line: Int
        var text: String
        var lower: Bool
        var tokens: [String]
        var ids: [Int32]
        var offsets: [TokenOffset]
    }

    /// Reads a JSONL fixture with our own JSON reader (exact scalars, no
    /// canonical-equivalence surprises).
    static func cases(_ relative: String) throws -> [Case] {
        let data = try Data(contentsOf: url(relative))
        var out: [Case] = []
        for (n, line) in data.split(separator: 0x0A).enumerated() where !line.isEmpty {
            let v = try JSONParser.parse([UInt8](line))
            guard let text = v["text"]?.string, case let .array(tokens)? = v["tokens"],
                  case let .array(ids)? = v["ids"], case let .array(offsets)? = v["offsets"] else {
                throw NSError(domain: "fixture", code: 1, userInfo: [NSLocalizedDescriptionKey: "\(relative):\(n + 1): bad case"])
            }
            out.append(Case(
                line: n + 1, text: text, lower: v["lower"]?.bool ?? true,
                tokens: tokens.map { $0.string ?? "" },
                ids: ids.map { Int32($0.int ?? -1) },
                offsets: offsets.map {
                    guard case let .array(pair) = $0, pair.count == 2 else { return TokenOffset(start: -1, end: -1) }
                    return TokenOffset(start: Int32(pair[0].int ?? -1), end: Int32(pair[1].int ?? -1))
                }))
        }
        return out
    }

    static func describe(_ offsets: [TokenOffset]) -> String {
        "[" + offsets.map { "[\($0.start),\($0.end)]" }.joined(separator: ",") + "]"
    }

    static func escaped(_ s: String) -> String {
        s.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 ? String($0) : String(format: "\\u{%X}", $0.value) }.joined()
    }

    /// Runs every case through `tokenizer(lower)` and fails with the first mismatches.
    static func check(_ cases: [Case], file: String, tokenizer: (Bool) -> BertTokenizer,
                      testFile: StaticString = #filePath, line: UInt = #line) {
        var failures: [String] = []
        var passed = 0
        let workspace = TokenizerWorkspace()
        for c in cases {
            let tok = tokenizer(c.lower)
            let got = tok.tokenize(c.text, workspace: workspace)
            let tokens = tok.tokens(got.ids)
            if got.ids == c.ids && got.offsets == c.offsets && tokens == c.tokens {
                passed += 1
                continue
            }
            if failures.count < 5 {
                failures.append("""
                \(file):\(c.line) lower=\(c.lower) text "\(escaped(c.text))"
                  want \(c.tokens.map(escaped)) \(c.ids) \(describe(c.offsets))
                  got  \(tokens.map(escaped)) \(got.ids) \(describe(got.offsets))
                """)
            }
        }
        if passed != cases.count {
            XCTFail("\(file): \(cases.count - passed) of \(cases.count) cases differ; first ones:\n" + failures.joined(separator: "\n"),
                    file: testFile, line: line)
        }
        print("\(file): \(passed)/\(cases.count) cases identical")
    }
}
