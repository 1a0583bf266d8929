import Foundation
import Inference
import Pipeline
import Tokenizer

// Stand-ins for the tokenizer and the engine with the same contracts as the
// real ones, so that the pipeline's own behaviour (order, resume, partitions,
// errors) is testable quickly and independently of the model. Tests only:
// no shipping module depends on this target (as swift-nio's NIOEmbedded).

/// Splits on whitespace; ids are a hash of the lowercased word.
public struct WhitespaceEncoder: TextEncoder {
    public init() {}

    public func encode(text: String, textB: String?, maxLength: Int?) throws -> TokenizedInput {
        var a = WhitespaceEncoder.words(text)
        var b = textB.map(WhitespaceEncoder.words) ?? []
        let budget = (maxLength ?? Int.max / 2) - (textB == nil ? 2 : 3)
        guard budget >= 0 else { throw TargetError("max length \(maxLength ?? 0) leaves no room for text") }
        var truncated = false
        while a.count + b.count > budget {
            truncated = true
            if a.count >= b.count { a.removeLast() } else { b.removeLast() }
        }
        var ids: [Int32] = [101], segments: [Int32] = [0], tokens = ["[CLS]"], offsets: [TokenOffset?] = [nil]
        func add(_ words: [(String, TokenOffset)], segment: Int32) {
            for (w, span) in words {
                ids.append(WhitespaceEncoder.id(w))
                segments.append(segment)
                tokens.append(w)
                offsets.append(span)
            }
            ids.append(102)
            segments.append(segment)
            tokens.append("[SEP]")
            offsets.append(nil)
        }
        add(a, segment: 0)
        if textB != nil { add(b, segment: 1) }
        return TokenizedInput(encoding: Encoding(ids: ids, segments: segments, offsets: offsets, truncated: truncated, isPair: textB != nil && !b.isEmpty),
                              tokens: tokens)
    }

    static func words(_ text: String) -> [(String, TokenOffset)] {
        var out: [(String, TokenOffset)] = []
        var current = ""
        var start = 0
        var i = 0
        for s in text.unicodeScalars {
            if s.properties.isWhitespace {
                if !current.isEmpty { out.append((current.lowercased(), TokenOffset(start: Int32(start), end: Int32(i)))) }
                current = ""
            } else {
                if current.isEmpty { start = i }
                current.unicodeScalars.append(s)
            }
            i += 1
        }
        if !current.isEmpty { out.append((current.lowercased(), TokenOffset(start: Int32(start), end: Int32(i)))) }
        return out
    }

    static func id(_ w: String) -> Int32 {
        var h: UInt32 = 2166136261
        for b in w.utf8 { h = (h ^ UInt32(b)) &* 16777619 }
        return Int32(1000 + h % 29000)
    }
}

/// Deterministic per-example "results" computed from the ids alone, so any
/// batching must give identical output; optionally slow, to test interrupts.
public final class FakeRunner: ExampleRunner {
    public let numClasses: Int
    public let microsecondsPerToken: Int

    public init(numClasses: Int, microsecondsPerToken: Int = 0) {
        self.numClasses = numClasses
        self.microsecondsPerToken = microsecondsPerToken
    }

    public func run(_ inputs: [EncodedInput], methods: Methods, targets: [TargetSelection],
                    chooseTargets: (([ExampleResult]) -> [TargetSelection])?) throws -> [ExampleResult] {
        if microsecondsPerToken > 0 {
            usleep(UInt32(min(10_000_000, microsecondsPerToken * inputs.reduce(0) { $0 + $1.ids.count })))
        }
        let heads = inputs.map { input in
            let sum = input.ids.reduce(0) { $0 + Int($1) }
            let logits = (0..<numClasses).map { c in Float((sum * (c + 7)) % 1001) / 97 - 5 }
            let m = logits.max()!
            let e = logits.map { expf($0 - m) }
            let z = e.reduce(0, +)
            return ExampleResult(logits: logits, probs: e.map { $0 / z }, predicted: logits.firstIndex(of: m)!, lat: nil, attributions: [])
        }
        let targets = chooseTargets?(heads) ?? targets
        return zip(inputs, zip(heads, targets)).map { input, ht in
            let (head, target) = ht
            let logits = head.logits, probs = head.probs, predicted = head.predicted
            let classes: [Int]
            switch target {
            case .predicted: classes = [predicted]
            case .all: classes = Array(0..<numClasses)
            case let .classes(c): classes = c
            }
            func score(_ salt: Int, _ c: Int) -> [Float] {
                input.ids.enumerated().map { t, id in Float((Int(id) &* (salt + c) &+ t * 31) % 1009) / 1009 * logits[c] }
            }
            let attributions = methods.needsTargets ? classes.map { c in
                Attribution(target: c,
                            gs: methods.contains(.gs) ? score(3, c) : nil,
                            gi: methods.contains(.gi) ? score(5, c) : nil,
                            lrp: methods.contains(.lrp) ? score(11, c) : nil)
            } : []
            let lat: [Float]? = methods.contains(.lat) ? input.ids.map { Float(Int($0) % 13) / 7 + 1e-7 } : nil
            return ExampleResult(logits: logits, probs: probs, predicted: predicted, lat: lat, attributions: attributions)
        }
    }
}
