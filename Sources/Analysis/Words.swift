import Foundation

public struct WordOptions {
    /// nil: every method common to the runs.
    public var methods: [String]?
    public var top = 30
    public var minCount = 0
    public var mergeSubwords = false
    public var specials = false
    public var target = ScoreTarget.first
    public init() {}
}

/// The seed's corpus word ranking (lrp_visualize.ipynb,
/// `load_attribution_scores(normalized=True)`): each record's |scores|
/// divided by their largest, each token's mean over the corpus, kept when
/// seen more than `min_freq` times, sorted by mean (a stable sort: ties in
/// the order first seen); and its experiment 3.4, the correlation of the
/// per-token means of several datasets over their common tokens.
public enum WordRanking {
    /// Per-token sums in the order tokens are first seen (Python dict order).
    public struct Tally {
        public var tokens: [String] = []
        public var sums: [Double] = []
        public var counts: [Int] = []
        var position: [String: Int] = [:]

        public mutating func add(_ token: String, _ score: Double) {
            if let i = position[token] {
                sums[i] += score
                counts[i] += 1
            } else {
                position[token] = tokens.count
                tokens.append(token)
                sums.append(score)
                counts.append(1)
            }
        }

        /// (token, mean, count) of the tokens seen more than `minCount` times, highest mean first.
        public func ranked(minCount: Int) -> [(token: String, mean: Double, count: Int)] {
            let kept = tokens.indices.filter { counts[$0] > minCount }
            // As Python's sum(v) * 1.0 / len(v), then its stable sort.
            let means = kept.map { sums[$0] / Double(counts[$0]) }
            let order = kept.indices.sorted { means[$0] > means[$1] || (means[$0] == means[$1] && $0 < $1) }
            return order.map { (tokens[kept[$0]], means[$0], counts[kept[$0]]) }
        }

        public func means(minCount: Int) -> [String: Double] {
            var out: [String: Double] = [:]
            for i in tokens.indices where counts[i] > minCount { out[tokens[i]] = sums[i] / Double(counts[i]) }
            return out
        }
    }

    /// One record's (word, normalised score) pairs: |s| / max|s| in float32
    /// (as torch), over every token with `specials`, else over the word
    /// tokens only; with `merge`, `##` pieces join the word before them
    /// (the sum of the pieces' normalised scores). Empty when every score is 0.
    public static func normalised(tokens: [String], scores: [Float], isWord: [Bool], specials: Bool, merge: Bool) -> [(String, Double)] {
        let considered = tokens.indices.filter { specials || isWord[$0] }
        var largest: Float = 0
        for i in considered { largest = max(largest, abs(scores[i])) }
        guard largest > 0, largest.isFinite else { return [] }
        var out: [(String, Double)] = []
        var previousWasWord = false
        for i in considered {
            let v = Double(abs(scores[i]) / largest)
            if merge, isWord[i], tokens[i].hasPrefix("##"), previousWasWord, let last = out.popLast() {
                out.append((last.0 + tokens[i].dropFirst(2), last.1 + v))
            } else {
                out.append((tokens[i], v))
            }
            previousWasWord = isWord[i]
        }
        return out
    }

    public struct Result {
        public var document: JSONValue
        public var table: String
        public var skipped: Int
    }

    public static func run(_ runs: [FinishedRun], options o: WordOptions) throws -> Result {
        precondition(!runs.isEmpty)
        var methods = runs[0].methods.filter { m in runs.allSatisfy { $0.methods.contains(m) } }
        if let asked = o.methods {
            for m in asked where !methods.contains(m) {
                let which = runs.first { !$0.methods.contains(m) }!
                throw AnalysisError("--method \(m): not a method of the run \(which.directory.path) (it has \(which.methods.joined(separator: ",")))")
            }
            methods = asked
        }
        guard o.top >= 1 else { throw AnalysisError("--top \(o.top): at least 1") }
        // [method][run]
        var perRun = methods.map { _ in runs.map { _ in Tally() } }
        var skipped = 0
        for (r, run) in runs.enumerated() {
            try run.forEachRecord { record in
                for (m, method) in methods.enumerated() {
                    let scores = try record.requireScores(method, target: o.target, run: run.directory.path)
                    let pairs = normalised(tokens: record.tokens, scores: scores, isWord: record.isWord,
                                           specials: o.specials, merge: o.mergeSubwords)
                    if pairs.isEmpty && record.isWord.contains(true) { skipped += 1 }
                    for (w, v) in pairs { perRun[m][r].add(w, v) }
                }
            }
        }
        var methodFields: [(String, JSONValue)] = []
        var text = ""
        for (m, method) in methods.enumerated() {
            // The ranking over all runs together: the records of every run in one corpus.
            var all = Tally()
            for t in perRun[m] { for i in t.tokens.indices { all.addMany(t.tokens[i], t.sums[i], t.counts[i]) } }
            let ranked = all.ranked(minCount: o.minCount)
            let top = Array(ranked.prefix(o.top)), bottom = Array(ranked.reversed().prefix(o.top))
            func entries(_ xs: [(token: String, mean: Double, count: Int)]) -> JSONValue {
                .array(xs.map { .object([("token", .string($0.token)), ("mean", .number($0.mean)), ("count", .int($0.count))]) })
            }
            var fields: [(String, JSONValue)] = [("top", entries(top)), ("bottom", entries(bottom))]
            text += "\(method): \(ranked.count) tokens\n" + columns(top, bottom)
            if runs.count >= 2 {
                let c = correlations(perRun[m].map { $0.means(minCount: o.minCount) })
                fields.append(("common_tokens", .int(c.common)))
                fields.append(("pearson", .array(c.pearson.map { .numbers($0) })))
                fields.append(("spearman", .array(c.spearman.map { .numbers($0) })))
                text += "common tokens: \(c.common)\n" + matrix("pearson", c.pearson) + matrix("spearman", c.spearman)
            }
            methodFields.append((method, .object(fields)))
            text += "\n"
        }
        var doc: [(String, JSONValue)] = [("runs", .array(runs.map { .string($0.directory.path) })), ("methods", .object(methodFields))]
        if skipped > 0 { doc.append(("skipped", .int(skipped))) }
        return Result(document: .object(doc), table: text, skipped: skipped)
    }

    /// Pearson and Spearman of every pair of runs over the tokens all have (sorted, for a fixed order).
    public static func correlations(_ means: [[String: Double]]) -> (common: Int, pearson: [[Double]], spearman: [[Double]]) {
        var common = Set(means[0].keys)
        for d in means.dropFirst() { common.formIntersection(d.keys) }
        let words = common.sorted()
        let vectors = means.map { d in words.map { d[$0]! } }
        let n = means.count
        var p = [[Double]](repeating: [Double](repeating: 0, count: n), count: n), s = p
        for i in 0..<n {
            for j in 0..<n {
                p[i][j] = Statistics.pearson(vectors[i], vectors[j])
                s[i][j] = Statistics.spearman(vectors[i], vectors[j])
            }
        }
        return (words.count, p, s)
    }

    static func columns(_ top: [(token: String, mean: Double, count: Int)], _ bottom: [(token: String, mean: Double, count: Int)]) -> String {
        func cell(_ x: (token: String, mean: Double, count: Int)?) -> String {
            guard let x else { return "" }
            return "\(x.token) \(String(format: "%.5f", x.mean)) (\(x.count))"
        }
        let rows = max(top.count, bottom.count)
        let width = max(3, (0..<rows).map { cell($0 < top.count ? top[$0] : nil).count }.max() ?? 0)
        var out = "  " + "top".padding(toLength: width, withPad: " ", startingAt: 0) + "  bottom\n"
        for i in 0..<rows {
            out += "  " + cell(i < top.count ? top[i] : nil).padding(toLength: width, withPad: " ", startingAt: 0)
                + "  " + cell(i < bottom.count ? bottom[i] : nil) + "\n"
        }
        return out
    }

    static func matrix(_ name: String, _ m: [[Double]]) -> String {
        "\(name):\n" + m.map { row in "  " + row.map { $0.isFinite ? String(format: "%7.4f", $0) : "      -" }.joined(separator: " ") }
            .joined(separator: "\n") + "\n"
    }
}

extension WordRanking.Tally {
    mutating func addMany(_ token: String, _ sum: Double, _ count: Int) {
        if let i = position[token] {
            sums[i] += sum
            counts[i] += count
        } else {
            position[token] = tokens.count
            tokens.append(token)
            sums.append(sum)
            counts.append(count)
        }
    }
}
