/// How a text longer than the model's window is cut (`--long window`, README
/// "Long documents"): overlapping windows over the first segment's content
/// tokens, `stride` tokens apart, each its own model input
/// `[CLS] A[span] [SEP] (B [SEP])` of at most `maxLength` tokens, the second
/// segment whole in every window. The last window ends at the text's end (it
/// may be shorter than the others).
///
/// Positions are those of the whole, uncut encoding `[CLS] A [SEP] (B [SEP])`:
/// A's tokens are positions `1...lengthA`.
public struct TokenWindows: Sendable, Equatable {
    /// Content tokens of the first and the second segment (no specials).
    public let lengthA: Int
    public let lengthB: Int
    /// Each window's share of the first segment, as whole-encoding positions, end exclusive.
    public let spans: [Range<Int>]

    /// - stride: content tokens from one window's start to the next; nil:
    ///   half of what a window holds of the first segment (at least 1).
    public init(lengthA: Int, lengthB: Int, maxLength: Int, stride: Int?) throws(WindowError) {
        guard lengthA >= 0 else { throw .notAnEncoding }
        precondition(lengthB >= 0 && maxLength >= 3, "window of negative size")
        self.lengthA = lengthA
        self.lengthB = lengthB
        let room = maxLength - 2 - (lengthB > 0 ? lengthB + 1 : 0)
        if lengthA <= room {
            spans = [1..<(1 + lengthA)]
            return
        }
        guard room >= 1 else { throw .secondSegmentTooLong(tokens: lengthB, maxLength: maxLength) }
        let step = stride ?? max(1, room / 2)
        guard step <= room else { throw .strideTooLarge(stride: step, room: room, secondSegment: lengthB) }
        var spans: [Range<Int>] = []
        var start = 0
        while true {
            let end = min(start + room, lengthA)
            spans.append((1 + start)..<(1 + end))
            if end == lengthA { break }
            start += step
        }
        self.spans = spans
    }

    /// The windows of a whole encoding, from its token types (0 for `[CLS] A
    /// [SEP]`, 1 for `B [SEP]`); nil when it fits in one window of `maxLength`.
    public static func of(segments: [Int32], maxLength: Int, stride: Int?) throws(WindowError) -> TokenWindows? {
        guard segments.count > maxLength else { return nil }
        let second = segments.reduce(0) { $0 + ($1 == 1 ? 1 : 0) }
        let w = try TokenWindows(lengthA: segments.count - second - 2, lengthB: max(0, second - 1), maxLength: maxLength, stride: stride)
        guard w.wholeLength == segments.count, segments.count - second >= 2 else { throw .notAnEncoding }
        return w
    }

    /// The whole encoding `[CLS] A [SEP] (B [SEP])` has this many tokens.
    public var wholeLength: Int { lengthA + 2 + (lengthB > 0 ? lengthB + 1 : 0) }

    /// The whole-encoding position of each token of window `w`, in the
    /// window's order: `[CLS]`, its span of A, A's `[SEP]`, then B and its `[SEP]`.
    public func positions(_ w: Int) -> [Int] {
        var p = [0]
        p.append(contentsOf: spans[w])
        p.append(lengthA + 1)
        if lengthB > 0 { p.append(contentsOf: (lengthA + 2)..<wholeLength) }
        return p
    }

    /// Window `w`'s values cut from per-token values of the whole encoding (ids, segments, ...).
    public func cut<T>(_ whole: [T], _ w: Int) -> [T] {
        precondition(whole.count == wholeLength, "\(whole.count) values for an encoding of \(wholeLength) tokens")
        return positions(w).map { whole[$0] }
    }
}

/// Why a record cannot be cut into windows (a bad record, README "Long documents").
public enum WindowError: Error, Sendable, Equatable, CustomStringConvertible {
    case secondSegmentTooLong(tokens: Int, maxLength: Int)
    case strideTooLarge(stride: Int, room: Int, secondSegment: Int)
    case notAnEncoding

    public var description: String {
        switch self {
        case let .secondSegmentTooLong(tokens, maxLength):
            return "text_b has \(tokens) tokens: kept whole in every window, with [CLS], two [SEP] and a token of text it does not fit in --max-seq-length \(maxLength)"
        case let .strideTooLarge(stride, room, secondSegment):
            return "--window-stride \(stride) is larger than the \(room) tokens of text a window holds beside text_b's \(secondSegment)"
        case .notAnEncoding:
            return "the tokens are not [CLS] text [SEP] (text_b [SEP]): cannot cut windows"
        }
    }
}
