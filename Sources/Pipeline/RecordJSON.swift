import Foundation
import Inference
import IO

/// The output record of docs/CONTRACT.md section 3, written by hand in the
/// contract's key order: index, id, label, text, text_b, tokens, offsets,
/// segments, truncated, windows (long records only), logits, probs, predicted, lat, rollout, attributions.
/// Keys for methods not asked for are left out (`lat`, `rollout`; `gs`, `gi`,
/// `lrp`, `ixg`, `attnlrp`, `cplrp`, `ig`, `ig_delta` inside each attribution;
/// `attributions` when only target-independent methods were asked for). Floats are
/// Swift's shortest round-trip float32 form; non-finite values are `null`.
public enum RecordJSON {
    /// `windows`: a long record's windows (`--long window`), each its span of
    /// the first segment's tokens, end exclusive; written after `truncated`.
    public static func line(record: InputRecord, tokenized: TokenizedInput, result: ExampleResult, methods: Methods,
                            windows: [Range<Int>]? = nil) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256 + tokenized.tokens.count * (32 + 12 * (1 + 3 * max(1, result.attributions.count))))
        out.append(contentsOf: "{\"index\": ".utf8)
        JSONText.appendInt(record.index, to: &out)
        if let id = record.id {
            out.append(contentsOf: ", \"id\": ".utf8)
            JSONText.appendString(id, to: &out)
        }
        if let label = record.label {
            out.append(contentsOf: ", \"label\": ".utf8)
            JSONText.appendString(label, to: &out)
        }
        out.append(contentsOf: ", \"text\": ".utf8)
        JSONText.appendString(record.text, to: &out)
        if let b = record.textB {
            out.append(contentsOf: ", \"text_b\": ".utf8)
            JSONText.appendString(b, to: &out)
        }
        out.append(contentsOf: ", \"tokens\": ".utf8)
        JSONText.appendStrings(tokenized.tokens, to: &out)
        out.append(contentsOf: ", \"offsets\": ".utf8)
        JSONText.appendSpans(tokenized.offsets.lazy.map { $0.map { (Int($0.start), Int($0.end)) } }, to: &out)
        out.append(contentsOf: ", \"segments\": ".utf8)
        JSONText.appendInts(tokenized.segments.lazy.map { Int($0) }, to: &out)
        out.append(contentsOf: ", \"truncated\": ".utf8)
        out.append(contentsOf: (tokenized.truncated ? "true" : "false").utf8)
        if let windows {
            out.append(contentsOf: ", \"windows\": ".utf8)
            JSONText.appendSpans(windows.lazy.map { (start: $0.lowerBound, end: $0.upperBound) as (start: Int, end: Int)? }, to: &out)
        }
        out.append(contentsOf: ", \"logits\": ".utf8)
        JSONText.appendFloats(result.logits, to: &out)
        out.append(contentsOf: ", \"probs\": ".utf8)
        JSONText.appendFloats(result.probs, to: &out)
        out.append(contentsOf: ", \"predicted\": ".utf8)
        JSONText.appendInt(result.predicted, to: &out)
        if methods.contains(.lat), let lat = result.lat {
            out.append(contentsOf: ", \"lat\": ".utf8)
            JSONText.appendFloats(lat, to: &out)
        }
        if methods.contains(.rollout), let rollout = result.rollout {
            out.append(contentsOf: ", \"rollout\": ".utf8)
            JSONText.appendFloats(rollout, to: &out)
        }
        if methods.needsTargets {
            out.append(contentsOf: ", \"attributions\": [".utf8)
            for (i, a) in result.attributions.enumerated() {
                if i > 0 { out.append(contentsOf: ", ".utf8) }
                out.append(contentsOf: "{\"target\": ".utf8)
                JSONText.appendInt(a.target, to: &out)
                if methods.contains(.gs), let v = a.gs {
                    out.append(contentsOf: ", \"gs\": ".utf8)
                    JSONText.appendFloats(v, to: &out)
                }
                if methods.contains(.gi), let v = a.gi {
                    out.append(contentsOf: ", \"gi\": ".utf8)
                    JSONText.appendFloats(v, to: &out)
                }
                if methods.contains(.lrp), let v = a.lrp {
                    out.append(contentsOf: ", \"lrp\": ".utf8)
                    JSONText.appendFloats(v, to: &out)
                }
                for (key, method, value) in [("ixg", Methods.ixg, a.ixg), ("attnlrp", .attnlrp, a.attnlrp),
                                             ("cplrp", .cplrp, a.cplrp), ("ig", .ig, a.ig)] {
                    guard methods.contains(method), let v = value else { continue }
                    out.append(contentsOf: ", \"\(key)\": ".utf8)
                    JSONText.appendFloats(v, to: &out)
                }
                if methods.contains(.ig), let delta = a.igDelta {
                    out.append(contentsOf: ", \"ig_delta\": ".utf8)
                    JSONText.appendFloat(delta, to: &out)
                }
                out.append(0x7D)
            }
            out.append(0x5D)
        }
        out.append(0x7D)
        return out
    }

    /// The input index of a record line, read from its start (`{"index": N, ...`).
    public static func index(ofLine line: some Collection<UInt8>) -> Int? {
        let prefix = Array("{\"index\": ".utf8)
        guard line.count > prefix.count, line.prefix(prefix.count).elementsEqual(prefix) else { return nil }
        var n = 0
        var digits = 0
        for b in line.dropFirst(prefix.count) {
            guard b >= 0x30 && b <= 0x39 else { break }
            n = n * 10 + Int(b - 0x30)
            digits += 1
            if digits > 18 { return nil }
        }
        return digits > 0 ? n : nil
    }
}
