import Foundation

/// SplitMix64 (Steele, Lea & Flood 2014): a small seeded generator, so that
/// `random` deletion and the bootstrap give the same numbers on every run.
public struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    /// A stream of its own for (seed, a, b): e.g. a record and a repeat.
    public init(seed: UInt64, _ a: UInt64, _ b: UInt64) {
        var g = SeededGenerator(seed: seed ^ 0x9E37_79B9_7F4A_7C15)
        let x = g.next() ^ (a &* 0xBF58_476D_1CE4_E5B9)
        var h = SeededGenerator(seed: x)
        state = h.next() ^ (b &* 0x94D0_49BB_1331_11EB)
    }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

public enum Statistics {
    public static func mean(_ x: [Double]) -> Double { x.isEmpty ? .nan : x.reduce(0, +) / Double(x.count) }

    /// numpy's `percentile(x, q)` with its default linear interpolation; `q` in [0, 100].
    public static func percentile(sorted x: [Double], _ q: Double) -> Double {
        guard !x.isEmpty else { return .nan }
        let pos = q / 100 * Double(x.count - 1)
        let lo = Int(pos.rounded(.down)), hi = min(lo + 1, x.count - 1)
        return x[lo] + (x[hi] - x[lo]) * (pos - Double(lo))
    }

    /// The 95% percentile bootstrap interval of the mean: `resamples` draws of
    /// n values with replacement, the 2.5th and 97.5th percentiles of their means.
    public static func bootstrapMeanCI(_ x: [Double], resamples: Int = 1000, seed: UInt64) -> (Double, Double) {
        guard !x.isEmpty else { return (.nan, .nan) }
        var g = SeededGenerator(seed: seed)
        var means = [Double](repeating: 0, count: resamples)
        for b in 0..<resamples {
            var s = 0.0
            for _ in 0..<x.count { s += x[Int.random(in: 0..<x.count, using: &g)] }
            means[b] = s / Double(x.count)
        }
        means.sort()
        return (percentile(sorted: means, 2.5), percentile(sorted: means, 97.5))
    }

    /// Pearson's r (as scipy.stats.pearsonr): NaN when a side is constant or n < 2.
    public static func pearson(_ x: [Double], _ y: [Double]) -> Double {
        precondition(x.count == y.count)
        guard x.count >= 2 else { return .nan }
        let mx = mean(x), my = mean(y)
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for i in x.indices {
            let a = x[i] - mx, b = y[i] - my
            sxy += a * b; sxx += a * a; syy += b * b
        }
        guard sxx > 0, syy > 0 else { return .nan }
        return max(-1, min(1, sxy / (sxx.squareRoot() * syy.squareRoot())))
    }

    /// Ranks 1..n, ties given their average rank (scipy.stats.rankdata's "average").
    public static func averageRanks(_ x: [Double]) -> [Double] {
        let order = x.indices.sorted { x[$0] < x[$1] || (x[$0] == x[$1] && $0 < $1) }
        var ranks = [Double](repeating: 0, count: x.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && x[order[j + 1]] == x[order[i]] { j += 1 }
            let r = Double(i + j) / 2 + 1
            for k in i...j { ranks[order[k]] = r }
            i = j + 1
        }
        return ranks
    }

    /// Spearman's rho (as scipy.stats.spearmanr): Pearson's r of the average ranks.
    public static func spearman(_ x: [Double], _ y: [Double]) -> Double {
        pearson(averageRanks(x), averageRanks(y))
    }
}

/// sklearn's `classification_report` and `confusion_matrix` (labels = the
/// classes present in y_true or y_pred, sorted; a zero denominator gives 0,
/// sklearn's default `zero_division="warn"`).
public struct ClassificationReport: Equatable {
    public struct Scores: Equatable {
        public var precision: Double
        public var recall: Double
        public var f1: Double
        public var support: Int
    }
    public var classes: [Int]
    public var accuracy: Double
    public var perClass: [Scores]
    public var macro: Scores
    public var weighted: Scores
    /// [true class][predicted class], in `classes` order.
    public var confusion: [[Int]]

    public init?(truth: [Int], predicted: [Int]) {
        precondition(truth.count == predicted.count)
        guard !truth.isEmpty else { return nil }
        classes = Array(Set(truth).union(predicted)).sorted()
        let at = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
        var cm = [[Int]](repeating: [Int](repeating: 0, count: classes.count), count: classes.count)
        for (t, p) in zip(truth, predicted) { cm[at[t]!][at[p]!] += 1 }
        confusion = cm
        func ratio(_ a: Int, _ b: Int) -> Double { b == 0 ? 0 : Double(a) / Double(b) }
        var rows: [Scores] = []
        for i in classes.indices {
            let tp = cm[i][i]
            let predictedCount = (0..<classes.count).reduce(0) { $0 + cm[$1][i] }
            let support = cm[i].reduce(0, +)
            let p = ratio(tp, predictedCount), r = ratio(tp, support)
            // sklearn: F1 = 2·tp / (2·tp + fp + fn), 0 when that is 0/0.
            let f1 = ratio(2 * tp, predictedCount + support)
            rows.append(Scores(precision: p, recall: r, f1: f1, support: support))
        }
        perClass = rows
        let n = truth.count
        accuracy = Double(classes.indices.reduce(0) { $0 + cm[$1][$1] }) / Double(n)
        let k = Double(rows.count)
        macro = Scores(precision: rows.reduce(0) { $0 + $1.precision } / k, recall: rows.reduce(0) { $0 + $1.recall } / k,
                       f1: rows.reduce(0) { $0 + $1.f1 } / k, support: n)
        func w(_ f: (Scores) -> Double) -> Double { rows.reduce(0) { $0 + f($1) * Double($1.support) } / Double(n) }
        weighted = Scores(precision: w(\.precision), recall: w(\.recall), f1: w(\.f1), support: n)
    }
}
