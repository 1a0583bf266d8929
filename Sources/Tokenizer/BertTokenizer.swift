import Foundation

/// Settings of the BERT tokenizer, named and defaulted as in Hugging Face's
/// `BertNormalizer` / `WordPiece` / `BertTokenizer`.
public struct BertTokenizerOptions: Sendable, Equatable {
    /// `do_lower_case` / `lowercase`.
    public var lowercase = true
    /// `strip_accents`; nil follows `lowercase` (as HF: `strip_accents.unwrap_or(lowercase)`).
    public var stripAccents: Bool? = nil
    /// `tokenize_chinese_chars` / `handle_chinese_chars`.
    public var handleChineseChars = true
    /// `clean_text`: drop control characters, turn whitespace into spaces.
    public var cleanText = true
    /// A longer word (in code points, after normalization) becomes the unknown token.
    public var maxInputCharsPerWord = 100
    public var continuingSubwordPrefix = "##"
    public var unkToken = "[UNK]"
    public var clsToken = "[CLS]"
    public var sepToken = "[SEP]"
    public var padToken = "[PAD]"
    public var maskToken = "[MASK]"

    public init(lowercase: Bool = true, stripAccents: Bool? = nil, handleChineseChars: Bool = true) {
        self.lowercase = lowercase
        self.stripAccents = stripAccents
        self.handleChineseChars = handleChineseChars
    }
}

/// `[start, end)` of a token in its segment's original text, in Unicode scalars.
public struct TokenOffset: Sendable, Hashable {
    public var start: Int32
    public var end: Int32
    public init(start: Int32, end: Int32) { self.start = start; self.end = end }
}

/// One text's WordPiece tokens, without [CLS]/[SEP].
public struct TokenizedText: Sendable, Equatable {
    public var ids: [Int32]
    public var offsets: [TokenOffset]
}

/// A model input: `[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]`.
public struct Encoding: Sendable, Equatable {
    public var ids: [Int32]
    /// Token type ids: 0 for [CLS], A and its [SEP]; 1 for B and its [SEP].
    public var segments: [Int32]
    /// nil for the [CLS]/[SEP] the template adds; spans into each segment's own text.
    public var offsets: [TokenOffset?]
    /// Whether tokens were dropped to fit `maxSequenceLength`.
    public var truncated: Bool
    /// Whether B took part (false also when B was given but has no tokens).
    public var isPair: Bool

    public init(ids: [Int32], segments: [Int32], offsets: [TokenOffset?], truncated: Bool, isPair: Bool) {
        self.ids = ids
        self.segments = segments
        self.offsets = offsets
        self.truncated = truncated
        self.isPair = isPair
    }
}

/// BERT's tokenizer with the behaviour of Hugging Face's current (Rust
/// `tokenizers`) BertTokenizer: added tokens split out of the raw text,
/// BertNormalizer, BertPreTokenizer, WordPiece, and the `[CLS] A [SEP] (B [SEP])`
/// template. Immutable and shareable between threads; each thread passes its
/// own `TokenizerWorkspace`.
public final class BertTokenizer: Sendable {
    public let vocabulary: Vocabulary
    public let options: BertTokenizerOptions
    public let unkID: Int32
    public let clsID: Int32
    public let sepID: Int32
    public let padID: Int32

    let stripAccents: Bool
    let tables = UnicodeTables.shared
    /// Added tokens matched in the raw text (longest first), with their ids.
    let addedTokens: [(bytes: [UInt8], scalarCount: Int32, id: Int32)]
    let addedFirstByte: [Bool]  // [256]

    /// - Parameters:
    ///   - addedTokens: strings split out of the raw text before normalization
    ///     (HF's added vocabulary); nil means the five BERT special tokens of
    ///     `options` that the vocabulary has.
    ///   - source: the file named in errors.
    public init(vocabulary: Vocabulary, options: BertTokenizerOptions = BertTokenizerOptions(),
                addedTokens: [(token: String, id: Int)]? = nil, source: String = "vocabulary") throws {
        guard vocabulary.count > 0 else { throw TokenizerError.emptyVocabulary(file: source) }
        self.vocabulary = vocabulary
        self.options = options
        stripAccents = options.stripAccents ?? options.lowercase
        func required(_ token: String) throws -> Int32 {
            guard let id = vocabulary.id(of: token) else { throw TokenizerError.missingToken(file: source, token: token) }
            return Int32(id)
        }
        unkID = try required(options.unkToken)
        clsID = try required(options.clsToken)
        sepID = try required(options.sepToken)
        padID = Int32(vocabulary.id(of: options.padToken) ?? 0)

        var added: [(bytes: [UInt8], scalarCount: Int32, id: Int32)] = []
        if let addedTokens {
            for (token, id) in addedTokens where !token.isEmpty {
                added.append((Array(token.utf8), Int32(token.unicodeScalars.count), Int32(id)))
            }
        } else {
            for token in [options.padToken, options.unkToken, options.clsToken, options.sepToken, options.maskToken] {
                if let id = vocabulary.id(of: token), !token.isEmpty {
                    added.append((Array(token.utf8), Int32(token.unicodeScalars.count), Int32(id)))
                }
            }
        }
        // Leftmost-longest matching, as the aho-corasick split of HF's AddedVocabulary.
        added.sort { $0.bytes.count > $1.bytes.count }
        self.addedTokens = added
        var first = [Bool](repeating: false, count: 256)
        for t in added { first[Int(t.bytes[0])] = true }
        addedFirstByte = first
    }

    /// The token strings of `ids`.
    public func tokens(_ ids: [Int32]) -> [String] {
        ids.map { vocabulary.token(of: Int($0)) }
    }

    /// WordPiece tokens of one text, without [CLS]/[SEP]; offsets in scalars of `text`.
    public func tokenize(_ text: String, workspace: TokenizerWorkspace = TokenizerWorkspace()) -> TokenizedText {
        run(text, workspace)
        let n = workspace.buffers.ids.count
        return TokenizedText(
            ids: Array(UnsafeBufferPointer(start: workspace.buffers.ids.base, count: n)),
            offsets: (0..<n).map { TokenOffset(start: workspace.buffers.starts[$0], end: workspace.buffers.ends[$0]) })
    }

    /// The model input for `text` (and `pair`), as the seed builds it
    /// (run_classifier.py `convert_single_example`):
    /// - single: `[CLS] A [SEP]`, A cut to `maxSequenceLength - 2`;
    /// - pair: `[CLS] A [SEP] B [SEP]`, with `_truncate_seq_pair` to
    ///   `maxSequenceLength - 3` (drop the last token of the longer one, of B on ties);
    /// - a pair whose B has no tokens (nil, empty or whitespace-only) is a single
    ///   sentence, as in the seed (`if tokens_b:`).
    /// No truncation when `maxSequenceLength` is nil.
    public func encode(_ text: String, pair: String? = nil, maxSequenceLength: Int? = nil,
                       workspace: TokenizerWorkspace = TokenizerWorkspace()) -> Encoding {
        run(text, workspace)
        var nA = workspace.buffers.ids.count
        let a = (ids: Array(UnsafeBufferPointer(start: workspace.buffers.ids.base, count: nA)),
                 starts: Array(UnsafeBufferPointer(start: workspace.buffers.starts.base, count: nA)),
                 ends: Array(UnsafeBufferPointer(start: workspace.buffers.ends.base, count: nA)))
        var nB = 0
        if let pair {
            run(pair, workspace)
            nB = workspace.buffers.ids.count
        }
        let isPair = nB > 0
        var truncated = false
        if let maxSequenceLength {
            if isPair {
                let budget = max(maxSequenceLength - 3, 0)
                while nA + nB > budget {
                    if nA > nB { nA -= 1 } else { nB -= 1 }
                    truncated = true
                }
            } else {
                let budget = max(maxSequenceLength - 2, 0)
                if nA > budget { nA = budget; truncated = true }
            }
        }
        let total = nA + 2 + (isPair ? nB + 1 : 0)
        var ids = [Int32](); ids.reserveCapacity(total)
        var segments = [Int32](); segments.reserveCapacity(total)
        var offsets = [TokenOffset?](); offsets.reserveCapacity(total)
        ids.append(clsID); segments.append(0); offsets.append(nil)
        for k in 0..<nA {
            ids.append(a.ids[k]); segments.append(0)
            offsets.append(TokenOffset(start: a.starts[k], end: a.ends[k]))
        }
        ids.append(sepID); segments.append(0); offsets.append(nil)
        if isPair {
            for k in 0..<nB {
                ids.append(workspace.buffers.ids[k]); segments.append(1)
                offsets.append(TokenOffset(start: workspace.buffers.starts[k], end: workspace.buffers.ends[k]))
            }
            ids.append(sepID); segments.append(1); offsets.append(nil)
        }
        return Encoding(ids: ids, segments: segments, offsets: offsets, truncated: truncated, isPair: isPair)
    }

    // MARK: - The pipeline, writing the pieces of one text into the workspace's ids/starts/ends.

    func run(_ text: String, _ ws: TokenizerWorkspace) {
        var pass = Pass(self, ws.buffers)
        let done: Void? = text.utf8.withContiguousStorageIfAvailable { pass.run($0) }
        if done == nil {
            var copy = text
            copy.makeContiguousUTF8()
            copy.utf8.withContiguousStorageIfAvailable { pass.run($0) }
        }
        ws.buffers = pass.b
    }
}

/// One tokenization: the tokenizer's settings copied into locals and the
/// workspace's buffers, so that the loops below touch no class storage.
struct Pass {
    var b: PassBuffers
    let tables: UnicodeTables
    let vocabulary: Vocabulary
    let cleanText: Bool
    let handleChineseChars: Bool
    let stripAccents: Bool
    let lowercase: Bool
    let maxInputCharsPerWord: Int
    let prefixLength: Int
    let unkID: Int32
    let addedTokens: [(bytes: [UInt8], scalarCount: Int32, id: Int32)]
    let addedFirstByte: [Bool]

    init(_ t: BertTokenizer, _ buffers: PassBuffers) {
        b = buffers
        tables = t.tables
        vocabulary = t.vocabulary
        cleanText = t.options.cleanText
        handleChineseChars = t.options.handleChineseChars
        stripAccents = t.stripAccents
        lowercase = t.options.lowercase
        maxInputCharsPerWord = t.options.maxInputCharsPerWord
        prefixLength = t.options.continuingSubwordPrefix.utf8.count
        unkID = t.unkID
        addedTokens = t.addedTokens
        addedFirstByte = t.addedFirstByte
    }

    mutating func run(_ bytes: UnsafeBufferPointer<UInt8>) {
        b.ids.count = 0
        b.starts.count = 0
        b.ends.count = 0
        guard let p = bytes.baseAddress else { return }
        let n = bytes.count
        var i = 0
        var scalarIndex: Int32 = 0
        beginSegment(at: 0)
        while i < n {
            let b0 = p[i]
            if addedFirstByte[Int(b0)], let match = matchAddedToken(p + i, available: n - i) {
                finishSegment()
                b.ids.append(match.id)
                b.starts.append(scalarIndex)
                b.ends.append(scalarIndex + match.scalarCount)
                i += match.byteCount
                scalarIndex += match.scalarCount
                beginSegment(at: scalarIndex)
                continue
            }
            // Decode one scalar (the String's UTF-8 is valid).
            var cp = UInt32(b0)
            if b0 < 0x80 {
                i += 1
            } else if b0 < 0xE0 {
                cp = (UInt32(b0 & 0x1F) << 6) | UInt32(p[i + 1] & 0x3F)
                i += 2
            } else if b0 < 0xF0 {
                cp = (UInt32(b0 & 0x0F) << 12) | (UInt32(p[i + 1] & 0x3F) << 6) | UInt32(p[i + 2] & 0x3F)
                i += 3
            } else {
                cp = (UInt32(b0 & 0x07) << 18) | (UInt32(p[i + 1] & 0x3F) << 12)
                    | (UInt32(p[i + 2] & 0x3F) << 6) | UInt32(p[i + 3] & 0x3F)
                i += 4
            }
            normalize(cp, origin: scalarIndex)
            scalarIndex += 1
        }
        finishSegment()
    }

    @inline(__always)
    private func matchAddedToken(_ p: UnsafePointer<UInt8>, available: Int) -> (id: Int32, byteCount: Int, scalarCount: Int32)? {
        for t in addedTokens where t.bytes.count <= available && t.bytes[0] == p[0] {
            let same = t.bytes.withUnsafeBufferPointer { memcmp($0.baseAddress!, p, $0.count) == 0 }
            if same { return (t.id, t.bytes.count, t.scalarCount) }
        }
        return nil
    }

    @inline(__always)
    private mutating func beginSegment(at origin: Int32) {
        b.scalars.count = 0
        b.flags.count = 0
        b.origins.count = 0
        b.originQueue.count = 0
        b.originQueueHead = 0
        b.lastOrigin = origin
    }

    // MARK: Normalization (BertNormalizer: clean_text, handle_chinese_chars, strip_accents, lowercase)

    /// Stage 1: clean_text and handle_chinese_chars, on one original character.
    @inline(__always)
    private mutating func normalize(_ scalar: UInt32, origin: Int32) {
        var cp = scalar
        var f = tables.flags(cp)
        if cleanText && f & (UnicodeTables.removed | UnicodeTables.cleanWhitespace) != 0 {
            if f & UnicodeTables.removed != 0 { return }
            cp = 0x20
            f = tables.flags(cp)
        }
        if handleChineseChars && f & UnicodeTables.chinese != 0 {
            // " c ": every piece keeps the character's alignment.
            let space = tables.flags(0x20)
            decompose(0x20, space, origin: origin)
            decompose(cp, f, origin: origin)
            decompose(0x20, space, origin: origin)
            return
        }
        decompose(cp, f, origin: origin)
    }

    /// Stage 2: strip_accents = NFD (canonical decomposition and ordering) then
    /// drop nonspacing marks.
    ///
    /// Alignment follows the `unicode-normalization-alignments` crate as the
    /// library uses it (NormalizedString::transform): the first character of each
    /// decomposition is marked as replacing a character, the others as inserted;
    /// after canonical reordering, replacing characters take the positions of
    /// the input characters in order and inserted ones the alignment of the
    /// last position taken.
    @inline(__always)
    private mutating func decompose(_ cp: UInt32, _ f: UInt16, origin: Int32) {
        guard stripAccents else {
            lowercase(cp, f, origin: origin)
            return
        }
        if f & (UnicodeTables.decomposes | UnicodeTables.nonStarter) == 0 {
            if b.pendingScalars.count > 0 { flushRun() }
            if b.originQueue.count == 0 {
                // Nothing pending: the character keeps its own position (the common case).
                b.lastOrigin = origin
                if f & UnicodeTables.nonspacingMark == 0 { lowercase(cp, f, origin: origin) }
                return
            }
            b.originQueue.append(origin)
            emitDecomposed(cp, f, first: true)
            return
        }
        b.originQueue.append(origin)
        if f & UnicodeTables.decomposes == 0 {
            pushDecomposed(cp, first: true)
        } else if cp >= UnicodeTables.hangulFirst && cp <= UnicodeTables.hangulLast {
            let s = cp - UnicodeTables.hangulFirst
            pushDecomposed(0x1100 + s / 588, first: true)
            pushDecomposed(0x1161 + (s % 588) / 28, first: false)
            if s % 28 != 0 { pushDecomposed(0x11A7 + s % 28, first: false) }
        } else {
            let (start, count) = tables.decomposition(cp)
            for k in 0..<count { pushDecomposed(tables.pool[start + k], first: k == 0) }
        }
    }

    @inline(__always)
    private mutating func pushDecomposed(_ cp: UInt32, first: Bool) {
        let f = tables.flags(cp)
        if f & UnicodeTables.nonStarter == 0 {
            if b.pendingScalars.count > 0 { flushRun() }
            emitDecomposed(cp, f, first: first)
        } else {
            b.pendingScalars.append(cp)
            b.pendingClasses.append(tables.combiningClass(cp))
            b.pendingFirst.append(first)
        }
    }

    /// Sorts the pending non-starters by combining class (stable) and emits them.
    private mutating func flushRun() {
        let n = b.pendingScalars.count
        if n > 1 {
            for i in 1..<n {  // insertion sort: stable, runs are short
                let s = b.pendingScalars[i], c = b.pendingClasses[i], f = b.pendingFirst[i]
                var j = i
                while j > 0 && b.pendingClasses[j - 1] > c {
                    b.pendingScalars[j] = b.pendingScalars[j - 1]
                    b.pendingClasses[j] = b.pendingClasses[j - 1]
                    b.pendingFirst[j] = b.pendingFirst[j - 1]
                    j -= 1
                }
                b.pendingScalars[j] = s; b.pendingClasses[j] = c; b.pendingFirst[j] = f
            }
        }
        for i in 0..<n {
            let cp = b.pendingScalars[i]
            emitDecomposed(cp, tables.flags(cp), first: b.pendingFirst[i])
        }
        b.pendingScalars.count = 0
        b.pendingClasses.count = 0
        b.pendingFirst.count = 0
    }

    @inline(__always)
    private mutating func emitDecomposed(_ cp: UInt32, _ f: UInt16, first: Bool) {
        if first {
            b.lastOrigin = b.originQueue[b.originQueueHead]
            b.originQueueHead += 1
            if b.originQueueHead == b.originQueue.count {
                b.originQueue.count = 0
                b.originQueueHead = 0
            }
        }
        if f & UnicodeTables.nonspacingMark != 0 { return }
        lowercase(cp, f, origin: b.lastOrigin)
    }

    /// Stage 3: per-character lowercase (Rust `char::to_lowercase`, no final sigma).
    @inline(__always)
    private mutating func lowercase(_ cp: UInt32, _ f: UInt16, origin: Int32) {
        if lowercase && f & UnicodeTables.hasLowercase != 0 {
            if cp < 0x80 {  // A-Z
                let m = cp | 0x20
                b.scalars.append(m)
                b.flags.append(tables.flags(m))
                b.origins.append(origin)
                return
            }
            let (start, count) = tables.lowercase(cp)
            for k in 0..<count {
                let m = tables.pool[start + k]
                b.scalars.append(m)
                b.flags.append(tables.flags(m))
                b.origins.append(origin)
            }
        } else {
            b.scalars.append(cp)
            b.flags.append(f)
            b.origins.append(origin)
        }
    }

    // MARK: Pre-tokenization (BertPreTokenizer) and WordPiece

    private mutating func finishSegment() {
        if b.pendingScalars.count > 0 { flushRun() }
        let n = b.scalars.count
        var wordStart = -1
        for j in 0..<n {
            let f = b.flags[j]
            if f & (UnicodeTables.whitespace | UnicodeTables.punctuation) != 0 {
                if wordStart >= 0 { wordPiece(wordStart, j); wordStart = -1 }
                if f & UnicodeTables.whitespace == 0 { wordPiece(j, j + 1) }
            } else if wordStart < 0 {
                wordStart = j
            }
        }
        if wordStart >= 0 { wordPiece(wordStart, n) }
        b.scalars.count = 0
        b.flags.count = 0
        b.origins.count = 0
    }

    /// Greedy longest-match-first WordPiece on normalized characters `[s, e)`.
    private mutating func wordPiece(_ s: Int, _ e: Int) {
        let nChars = e - s
        if nChars > maxInputCharsPerWord {
            appendPiece(unkID, s, e)
            return
        }
        // UTF-8 of the word; charStarts[k] = byte offset of character k, charStarts[nChars] = length.
        b.wordBytes.count = 0
        b.charStarts.count = 0
        b.wordBytes.reserve(nChars * 4)
        b.charStarts.reserve(nChars + 1)
        var ascii = true
        for k in s..<e {
            let cp = b.scalars[k]
            b.charStarts.append(Int32(b.wordBytes.count))
            if cp < 0x80 {
                b.wordBytes.append(UInt8(cp))
            } else {
                ascii = false
                if cp < 0x800 {
                    b.wordBytes.append(UInt8(0xC0 | cp >> 6))
                    b.wordBytes.append(UInt8(0x80 | cp & 0x3F))
                } else if cp < 0x10000 {
                    b.wordBytes.append(UInt8(0xE0 | cp >> 12))
                    b.wordBytes.append(UInt8(0x80 | (cp >> 6) & 0x3F))
                    b.wordBytes.append(UInt8(0x80 | cp & 0x3F))
                } else {
                    b.wordBytes.append(UInt8(0xF0 | cp >> 18))
                    b.wordBytes.append(UInt8(0x80 | (cp >> 12) & 0x3F))
                    b.wordBytes.append(UInt8(0x80 | (cp >> 6) & 0x3F))
                    b.wordBytes.append(UInt8(0x80 | cp & 0x3F))
                }
            }
        }
        b.charStarts.append(Int32(b.wordBytes.count))
        let bytes = b.wordBytes.base
        let piecesBefore = b.ids.count
        let maxKey = vocabulary.maxKeyLength
        var start = 0
        while start < nChars {
            let startByte = ascii ? start : Int(b.charStarts[start])
            let continuation = start > 0
            let room = maxKey - (continuation ? prefixLength : 0)
            // Candidates [start, end) for end from the longest that fits a
            // vocabulary entry down to start + 1; the hash state of each is the
            // one of the previous end plus its bytes, computed once here.
            var maxEnd = nChars
            if ascii {
                maxEnd = min(nChars, start + max(room, 0))
            } else {
                while maxEnd > start && Int(b.charStarts[maxEnd]) - startByte > room { maxEnd -= 1 }
            }
            b.hashStates.count = 0
            b.hashStates.reserve(maxEnd - start + 1)
            var state = vocabulary.initialState(continuation: continuation)
            var byte = startByte
            for k in start..<maxEnd {
                let next = ascii ? k + 1 : Int(b.charStarts[k + 1])
                while byte < next { state = Vocabulary.step(state, bytes[byte]); byte += 1 }
                b.hashStates.append(state)
            }
            var end = maxEnd
            var found: Int32 = -1
            while end > start {
                let endByte = ascii ? end : Int(b.charStarts[end])
                found = vocabulary.lookup(state: b.hashStates[end - start - 1], bytes + startByte,
                                          count: endByte - startByte, continuation: continuation)
                if found >= 0 { break }
                end -= 1
            }
            if found < 0 {
                // One unmatched piece makes the whole word unknown.
                b.ids.count = piecesBefore
                b.starts.count = piecesBefore
                b.ends.count = piecesBefore
                appendPiece(unkID, s, e)
                return
            }
            appendPiece(found, s + start, s + end)
            start = end
        }
    }

    /// Offsets as the library converts them: from the alignment of the first
    /// character to that of the last.
    @inline(__always)
    private mutating func appendPiece(_ id: Int32, _ s: Int, _ e: Int) {
        b.ids.append(id)
        b.starts.append(b.origins[s])
        b.ends.append(b.origins[e - 1] + 1)
    }
}
