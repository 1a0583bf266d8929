import XCTest
@testable import Tokenizer

/// `--long window`'s cutting (README "Long documents"): spans, positions,
/// pairs, refusals, and a multi-piece word split across a window boundary.
final class TokenWindowsTests: XCTestCase {
    func testSpansSlideByTheStrideAndTheLastEndsAtTheText() throws {
        // 10 tokens of text, windows of 6 (4 of text): default stride 2.
        let w = try TokenWindows(lengthA: 10, lengthB: 0, maxLength: 6, stride: nil)
        XCTAssertEqual(w.spans, [1..<5, 3..<7, 5..<9, 7..<11])
        XCTAssertEqual(w.wholeLength, 12)
        XCTAssertEqual(w.positions(1), [0, 3, 4, 5, 6, 11])
        XCTAssertEqual(w.cut(Array(100..<112), 3), [100, 107, 108, 109, 110, 111])
        // Stride 3: the last window is shorter.
        XCTAssertEqual(try TokenWindows(lengthA: 10, lengthB: 0, maxLength: 6, stride: 3).spans, [1..<5, 4..<8, 7..<11])
        // Stride = the whole room: windows side by side, each token in one.
        XCTAssertEqual(try TokenWindows(lengthA: 9, lengthB: 0, maxLength: 6, stride: 4).spans, [1..<5, 5..<9, 9..<10])
        // A text that fits is one window: the whole encoding.
        let one = try TokenWindows(lengthA: 4, lengthB: 0, maxLength: 6, stride: 1)
        XCTAssertEqual(one.spans, [1..<5])
        XCTAssertEqual(one.positions(0), Array(0..<6))
        // Every text token is in some window, every window within the limit.
        for n in 1...40 {
            for stride in 1...5 {
                let v = try TokenWindows(lengthA: n, lengthB: 0, maxLength: 7, stride: stride)
                XCTAssertEqual(Set(v.spans.joined()), Set(1...n), "n \(n) stride \(stride)")
                XCTAssertTrue(v.spans.indices.allSatisfy { v.positions($0).count <= 7 })
            }
        }
    }

    func testPairsKeepTheSecondSegmentWholeInEveryWindow() throws {
        // [CLS] a1..a6 [SEP] b1 b2 [SEP]: 11 tokens; windows of 8 hold 3 of A.
        let w = try TokenWindows(lengthA: 6, lengthB: 2, maxLength: 8, stride: 2)
        XCTAssertEqual(w.spans, [1..<4, 3..<6, 5..<7])
        XCTAssertEqual(w.positions(0), [0, 1, 2, 3, 7, 8, 9, 10])
        XCTAssertEqual(w.positions(2), [0, 5, 6, 7, 8, 9, 10])
        XCTAssertEqual(try TokenWindows.of(segments: [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1], maxLength: 8, stride: 2), w)
        XCTAssertNil(try TokenWindows.of(segments: [0, 0, 0, 0, 1, 1, 1], maxLength: 8, stride: 2))
    }

    func testRefusals() {
        XCTAssertThrowsError(try TokenWindows(lengthA: 20, lengthB: 5, maxLength: 8, stride: nil)) { e in
            XCTAssertEqual(e as? WindowError, .secondSegmentTooLong(tokens: 5, maxLength: 8))
            XCTAssertTrue("\(e)".hasPrefix("text_b has 5 tokens"), "\(e)")
        }
        XCTAssertThrowsError(try TokenWindows(lengthA: 20, lengthB: 2, maxLength: 8, stride: 4)) { e in
            XCTAssertEqual(e as? WindowError, .strideTooLarge(stride: 4, room: 3, secondSegment: 2))
        }
        // Not [CLS] A [SEP] (B [SEP]): an empty second segment with its [SEP].
        XCTAssertThrowsError(try TokenWindows.of(segments: [0, 0, 0, 0, 0, 1], maxLength: 4, stride: 1))
    }

    /// The bundled model's tokenizer on a text of many-piece words: windows of
    /// 12 tokens, stride 5, so that boundaries fall inside words; each
    /// window is the whole encoding's tokens at its positions, and every
    /// token's offsets (the whole text's) still name its piece of the text.
    func testMultiPieceWordsSplitAcrossABoundary() throws {
        let tokenizer = try BertTokenizer.load(modelDirectory: Fixtures.checkout.appendingPathComponent("models/minilm-sst2"))
        let text = "Incomprehensibilities notwithstanding, the unquestionably overcomplicated antidisestablishmentarianism "
            + "bewildered émigrés and photosynthesizing xylophonists alike."
        let whole = tokenizer.encode(text)
        let w = try XCTUnwrap(try TokenWindows.of(segments: whole.segments, maxLength: 12, stride: 5))
        XCTAssertEqual(w.wholeLength, whole.ids.count)
        let tokens = tokenizer.tokens(whole.ids)
        let scalars = Array(text.lowercased().unicodeScalars)
        var splitWords = 0
        for k in w.spans.indices {
            let ids = w.cut(whole.ids, k)
            XCTAssertEqual(ids.first, tokenizer.clsID)
            XCTAssertEqual(ids.last, tokenizer.sepID)
            XCTAssertEqual(Array(ids[1..<(ids.count - 1)]), Array(whole.ids[w.spans[k]]))
            let first = w.spans[k].lowerBound
            if tokens[first].hasPrefix("##") { splitWords += 1 }
            for p in w.spans[k] {
                let o = try XCTUnwrap(whole.offsets[p])
                let piece = String(String.UnicodeScalarView(scalars[Int(o.start)..<Int(o.end)]))
                let token = tokens[p].hasPrefix("##") ? String(tokens[p].dropFirst(2)) : tokens[p]
                // Accents are stripped by the tokenizer (é -> e).
                XCTAssertEqual(piece.folding(options: .diacriticInsensitive, locale: nil), token, "window \(k) position \(p)")
            }
        }
        XCTAssertGreaterThan(splitWords, 2, "boundaries inside words: \(w.spans) of \(tokens)")
    }
}
