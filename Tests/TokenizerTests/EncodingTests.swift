import Foundation
import Synchronization
import XCTest
@testable import Tokenizer

/// Sequence assembly and truncation as the seed does it (run_classifier.py
/// `convert_single_example` and `_truncate_seq_pair`).
final class EncodingTests: XCTestCase {
    static let tokenizer = try! BertTokenizer.load(vocabFile: Fixtures.url("tokenizer/vocab.txt"))
    var tok: BertTokenizer { Self.tokenizer }

    /// n distinct one-token words.
    func words(_ n: Int, from start: Int = 0) -> String {
        let pool = ["the", "film", "is", "a", "good", "one", "and", "it", "was", "not", "bad", "at", "all", "for", "me"]
        return (0..<n).map { pool[(start + $0) % pool.count] }.joined(separator: " ")
    }

    func testSingleSentence() {
        let e = tok.encode("it's a charming")
        XCTAssertEqual(tok.tokens(e.ids), ["[CLS]", "it", "'", "s", "a", "charming", "[SEP]"])
        XCTAssertEqual(e.segments, [0, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(e.offsets, [nil, TokenOffset(start: 0, end: 2), TokenOffset(start: 2, end: 3),
                                   TokenOffset(start: 3, end: 4), TokenOffset(start: 5, end: 6),
                                   TokenOffset(start: 7, end: 15), nil])
        XCTAssertFalse(e.truncated)
        XCTAssertFalse(e.isPair)
        XCTAssertEqual(e.ids.first, 101)
        XCTAssertEqual(e.ids.last, 102)
    }

    func testSingleTruncation() {
        let e = tok.encode(words(10), maxSequenceLength: 8)
        XCTAssertEqual(e.ids.count, 8)
        XCTAssertEqual(tok.tokens(e.ids), ["[CLS]", "the", "film", "is", "a", "good", "one", "[SEP]"])
        XCTAssertTrue(e.truncated)
        let exact = tok.encode(words(6), maxSequenceLength: 8)
        XCTAssertEqual(exact.ids.count, 8)
        XCTAssertFalse(exact.truncated)
        XCTAssertEqual(tok.encode(words(300)).ids.count, 302, "no truncation without a maximum")
    }

    func testPairAssemblyAndOffsets() {
        let e = tok.encode("good film", pair: "not bad")
        XCTAssertEqual(tok.tokens(e.ids), ["[CLS]", "good", "film", "[SEP]", "not", "bad", "[SEP]"])
        XCTAssertEqual(e.segments, [0, 0, 0, 0, 1, 1, 1])
        // B's offsets are into B's own text.
        XCTAssertEqual(e.offsets, [nil, TokenOffset(start: 0, end: 4), TokenOffset(start: 5, end: 9), nil,
                                   TokenOffset(start: 0, end: 3), TokenOffset(start: 4, end: 7), nil])
        XCTAssertTrue(e.isPair)
    }

    /// The cases of docs/formats.md 4.6 with budget 7 (max_seq_length 10),
    /// where Google/HF-slow and HF-fast differ: we follow Google.
    func testPairTruncationTies() {
        for (a, b, wantA, wantB) in [(4, 4, 4, 3), (4, 8, 4, 3), (8, 4, 4, 3), (3, 3, 3, 3), (10, 1, 6, 1), (1, 10, 1, 6)] {
            let e = tok.encode(words(a), pair: words(b, from: 3), maxSequenceLength: 10)
            let nA = e.segments.filter { $0 == 0 }.count - 2
            let nB = e.segments.filter { $0 == 1 }.count - 1
            XCTAssertEqual([nA, nB], [wantA, wantB], "lengths (\(a), \(b))")
            XCTAssertEqual(e.truncated, a + b > 7, "lengths (\(a), \(b))")
            XCTAssertLessThanOrEqual(e.ids.count, 10)
        }
    }

    /// `_truncate_seq_pair` written out, against encode() on random lengths.
    func testPairTruncationAgainstSeedLoop() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let a = Int.random(in: 1...40, using: &rng), b = Int.random(in: 1...40, using: &rng)
            let maxLength = Int.random(in: 3...64, using: &rng)
            let ta = tok.tokenize(words(a)), tb = tok.tokenize(words(b, from: 5))
            var ia = ta.ids, ib = tb.ids
            while ia.count + ib.count > maxLength - 3 {
                if ia.count > ib.count { ia.removeLast() } else { ib.removeLast() }
            }
            let want = [101] + ia + [102] + ib + [102]
            let e = tok.encode(words(a), pair: words(b, from: 5), maxSequenceLength: maxLength)
            XCTAssertEqual(e.ids, want, "a \(a) b \(b) max \(maxLength)")
            XCTAssertEqual(e.offsets.compactMap { $0 }, Array(ta.offsets.prefix(ia.count)) + Array(tb.offsets.prefix(ib.count)))
        }
    }

    /// The seed treats a B without tokens as a single sentence (`if tokens_b:`).
    func testEmptySecondSegmentIsSingle() {
        for b in ["", "   ", "\t\n", "\u{0}\u{7}"] {
            let e = tok.encode(words(200), pair: b, maxSequenceLength: 16)
            XCTAssertFalse(e.isPair, "B \(Fixtures.escaped(b))")
            XCTAssertEqual(e.ids.count, 16)
            XCTAssertEqual(e.segments, [Int32](repeating: 0, count: 16))
        }
    }

    func testSpecialTokensInTextKeepTheirSpans() {
        let e = tok.encode("hello [SEP]world[MASK] [cls]")
        XCTAssertEqual(tok.tokens(e.ids), ["[CLS]", "hello", "[SEP]", "world", "[MASK]", "[", "cl", "##s", "]", "[SEP]"])
        XCTAssertEqual(e.offsets[2], TokenOffset(start: 6, end: 11))
        XCTAssertEqual(e.offsets[4], TokenOffset(start: 16, end: 22))
    }

    func testEmptyText() {
        let e = tok.encode("")
        XCTAssertEqual(e.ids, [101, 102])
        XCTAssertEqual(tok.tokenize(" \t\n").ids, [])
    }

    /// One tokenizer, many threads, each with its own workspace: same results.
    func testConcurrentUse() throws {
        let texts = try Fixtures.cases("tokenizer/uncased.jsonl").map(\.text)
        let expected = texts.map { tok.encode($0) }
        let mismatches = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            let workspace = TokenizerWorkspace()
            var bad = 0
            for (k, text) in texts.enumerated() where k % 4 == worker {
                if Self.tokenizer.encode(text, workspace: workspace) != expected[k] { bad += 1 }
            }
            mismatches.withLock { $0 += bad }
        }
        XCTAssertEqual(mismatches.withLock { $0 }, 0)
    }
}
