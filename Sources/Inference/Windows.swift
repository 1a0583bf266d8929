import Foundation

extension ModelConfig {
    /// `probs` and `predicted` from a classifier's logits `[C]`: a softmax, or
    /// independent sigmoids for a multi-label model (docs/CONTRACT.md section 1);
    /// `predicted` is the first highest logit.
    public func prediction(logits: [Double]) -> (probs: [Float], predicted: Int) {
        ModelConfig.prediction(logits: logits, multiLabel: multiLabel)
    }

    public static func prediction(logits: [Double], multiLabel: Bool) -> (probs: [Float], predicted: Int) {
        let m = logits.max()!
        let e = logits.map { exp($0 - m) }
        let sum = e.reduce(0, +)
        let probs = multiLabel ? logits.map { Float(1 / (1 + exp(-$0))) } : e.map { Float($0 / sum) }
        return (probs, logits.firstIndex(of: m)!)
    }
}

/// The one rule that makes a long document's result from its windows'
/// (`--long window`, README "Long documents"), used by the pipeline and by
/// `evaluate`: the document's logits are the mean of the windows' logits
/// (each window's float32 logits summed in double), `probs` and `predicted`
/// come from that mean; every per-token score is the mean, over the windows
/// that contain the token, of that window's score (a special token: over the
/// windows' own [CLS] / [SEP]); `ig_delta` is the windows' mean.
public enum WindowAverage {
    /// The mean of the windows' logits, `[C]`.
    public static func logits(_ windows: [[Float]]) -> [Double] {
        precondition(!windows.isEmpty, "no windows")
        var sum = [Double](repeating: 0, count: windows[0].count)
        for w in windows {
            for c in sum.indices { sum[c] += Double(w[c]) }
        }
        return sum.map { $0 / Double(windows.count) }
    }

    /// Per-token means: `scores[w]` window `w`'s scores, `positions[w]` where
    /// each of its tokens lies in the document of `count` tokens.
    public static func scores(_ scores: [[Float]], positions: [[Int]], count: Int) -> [Float] {
        var sum = [Double](repeating: 0, count: count), n = [Int](repeating: 0, count: count)
        for (s, p) in zip(scores, positions) {
            precondition(s.count == p.count, "\(s.count) scores for a window of \(p.count) tokens")
            for (v, i) in zip(s, p) {
                sum[i] += Double(v)
                n[i] += 1
            }
        }
        return zip(sum, n).map { Float($0 / Double(max($1, 1))) }
    }

    /// The document's result from its windows' (each explained for the same
    /// target classes, in the same order).
    public static func combine(_ windows: [ExampleResult], positions: [[Int]], count: Int, multiLabel: Bool) -> ExampleResult {
        let mean = logits(windows.map(\.logits))
        let (probs, predicted) = ModelConfig.prediction(logits: mean, multiLabel: multiLabel)
        func average(_ pick: (ExampleResult) -> [Float]?) -> [Float]? {
            let all = windows.compactMap(pick)
            return all.count == windows.count ? scores(all, positions: positions, count: count) : nil
        }
        var result = ExampleResult(logits: mean.map { Float($0) }, probs: probs, predicted: predicted,
                                   lat: average(\.lat), attributions: [], rollout: average(\.rollout))
        for (a, first) in windows[0].attributions.enumerated() {
            precondition(windows.allSatisfy { $0.attributions.count > a && $0.attributions[a].target == first.target },
                         "windows explained for different targets")
            func method(_ pick: @escaping (Attribution) -> [Float]?) -> [Float]? { average { pick($0.attributions[a]) } }
            let deltas = windows.compactMap { $0.attributions[a].igDelta }
            result.attributions.append(Attribution(
                target: first.target, gs: method(\.gs), gi: method(\.gi), lrp: method(\.lrp), ixg: method(\.ixg),
                attnlrp: method(\.attnlrp), cplrp: method(\.cplrp), ig: method(\.ig),
                igDelta: deltas.count == windows.count ? Float(deltas.reduce(0.0) { $0 + Double($1) } / Double(deltas.count)) : nil))
        }
        return result
    }
}
