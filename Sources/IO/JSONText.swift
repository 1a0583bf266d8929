/// Writing JSON text by hand into a byte buffer: the output records are
/// written for every input record, so this avoids Foundation's encoders.
public enum JSONText {
    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// Appends `s` as a JSON string literal (quotes included). Control
    /// characters, `"` and `\` are escaped; everything else is written as UTF-8.
    public static func appendString(_ s: String, to out: inout [UInt8]) {
        out.append(0x22)
        var s = s
        s.withUTF8 { bytes in
            var runStart = 0
            for i in 0..<bytes.count {
                let b = bytes[i]
                if b >= 0x20 && b != 0x22 && b != 0x5C { continue }
                if runStart < i { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<i])) }
                runStart = i + 1
                switch b {
                case 0x22: out.append(0x5C); out.append(0x22)
                case 0x5C: out.append(0x5C); out.append(0x5C)
                case 0x0A: out.append(0x5C); out.append(0x6E)
                case 0x0D: out.append(0x5C); out.append(0x72)
                case 0x09: out.append(0x5C); out.append(0x74)
                default:
                    out.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 0xF)]])
                }
            }
            if runStart < bytes.count { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count])) }
        }
        out.append(0x22)
    }

    public static func quoted(_ s: String) -> String {
        var out: [UInt8] = []
        appendString(s, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends a float32 so that it reads back as the same float32 (Swift's
    /// shortest round-trip form); non-finite values, which JSON cannot hold, as null.
    public static func appendFloat(_ x: Float, to out: inout [UInt8]) {
        if x.isFinite {
            out.append(contentsOf: x.description.utf8)
        } else {
            out.append(contentsOf: "null".utf8)
        }
    }

    /// Appends `[x0, x1, ...]` (elements separated by ", "), each element
    /// written by `element`: the one array writer of the output records and
    /// of `tokenize`.
    @inlinable
    public static func appendArray<S: Sequence>(_ xs: S, to out: inout [UInt8], _ element: (S.Element, inout [UInt8]) -> Void) {
        out.append(0x5B)
        var first = true
        for x in xs {
            if !first { out.append(contentsOf: [0x2C, 0x20]) }
            first = false
            element(x, &out)
        }
        out.append(0x5D)
    }

    public static func appendFloats(_ xs: [Float], to out: inout [UInt8]) {
        appendArray(xs, to: &out) { appendFloat($0, to: &$1) }
    }

    public static func appendStrings(_ xs: some Sequence<String>, to out: inout [UInt8]) {
        appendArray(xs, to: &out) { appendString($0, to: &$1) }
    }

    public static func appendInts(_ xs: some Sequence<Int>, to out: inout [UInt8]) {
        appendArray(xs, to: &out) { appendInt($0, to: &$1) }
    }

    /// Token offsets: `[start, end]` each, `null` for special tokens.
    public static func appendSpans(_ xs: some Sequence<(start: Int, end: Int)?>, to out: inout [UInt8]) {
        appendArray(xs, to: &out) { span, out in
            guard let span else { return out.append(contentsOf: "null".utf8) }
            out.append(0x5B)
            appendInt(span.start, to: &out)
            out.append(contentsOf: [0x2C, 0x20])
            appendInt(span.end, to: &out)
            out.append(0x5D)
        }
    }

    public static func appendInt(_ x: Int, to out: inout [UInt8]) {
        out.append(contentsOf: String(x).utf8)
    }
}
