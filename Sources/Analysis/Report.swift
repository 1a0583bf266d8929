import Foundation
import Inference
import IO

public struct ReportOptions {
    /// Records embedded in the page (`--records`).
    public var records = 500
    /// Seed of the random group of the sample.
    public var seed: UInt64 = 1
    /// Words shown at the top and at the bottom per method and class.
    public var top = 15
    /// The words ranking's `--min-count` (2: a word seen once or twice is
    /// its sentence's top word by chance as often as not).
    public var minCount = 2
    /// The name and version of the tool writing the page.
    public var tool = ""
    public init() {}
}

/// The data of `report` (docs/CONTRACT.md section 7): the run's summary, the
/// classification report and the words ranking over every record (streamed),
/// a documented sample of records with all their scores, and the run's
/// evaluation when there is one. `ReportPage` turns it into the HTML page.
public enum ReportData {
    /// The sample's groups, in the order the page shows them.
    public static let groups: [(name: String, description: String)] = [
        ("misclassified", "every record whose label is not the predicted class, most confident first (as many as fit)"),
        ("least confident", "of the rest, the lowest probability of the predicted class first, in half of the remaining places (at most half of the rest)"),
        ("random", "the other remaining places: a seeded random sample of the rest, in input order"),
    ]

    /// The record's class by its label (nil: none, or not a class of the model).
    static func gold(_ r: RunRecord, labels: [String]) -> Int? {
        r.label.flatMap { ModelConfig.classIndex(ofLabel: $0, labels: labels) }
    }

    static func confidence(_ r: RunRecord) -> Double {
        r.predicted < r.probs.count ? Double(r.probs[r.predicted]) : .nan
    }

    /// Which records the page shows, each with its group (an index of `groups`),
    /// in the page's order: misclassified by confidence descending, least
    /// confident ascending, random in index order.
    public static func sample(indices: [Int], confidence: [Double], wrong: [Bool], budget: Int, seed: UInt64) -> [(index: Int, group: Int)] {
        let all = indices.indices
        func conf(_ i: Int) -> Double { confidence[i].isNaN ? -1 : confidence[i] }
        let misclassified = all.filter { wrong[$0] }.sorted { conf($0) > conf($1) || (conf($0) == conf($1) && $0 < $1) }
        var chosen = Array(misclassified.prefix(budget))
        var out = chosen.map { (indices[$0], 0) }
        var taken = Set(chosen)
        let remaining = budget - chosen.count
        let rest = all.filter { !taken.contains($0) }
        chosen = Array(rest.sorted { conf($0) < conf($1) || (conf($0) == conf($1) && $0 < $1) }.prefix(min(remaining + 1, rest.count + 1) / 2))
        out += chosen.map { (indices[$0], 1) }
        taken.formUnion(chosen)
        var g = SeededGenerator(seed: seed)
        let random = all.filter { !taken.contains($0) }.shuffled(using: &g).prefix(budget - out.count).sorted()
        out += random.map { (indices[$0], 2) }
        return out.map { (index: $0.0, group: $0.1) }
    }

    /// A score with 4 significant digits (the page shows the raw value on hover; 4 digits keep it small).
    static func compact(_ x: Float) -> JSONValue {
        guard x.isFinite else { return .null }
        return .number(Double(String(format: "%.4g", Double(x)))!)
    }

    /// The run's evaluation document, checked to be of this run (its model hash and record count).
    public static func evaluation(_ url: URL, run: FinishedRun) throws -> String {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw AnalysisError("\(url.path): cannot read the evaluation: \(error.localizedDescription)") }
        guard let doc = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let hash = doc["model_sha256"] as? String, let methods = doc["methods"] as? [String: Any] else {
            throw AnalysisError("\(url.path): not an evaluation document (evaluate -o writes one)")
        }
        let expected = run.manifest.identity.model.hash
        guard hash == expected else {
            throw AnalysisError("\(url.path): an evaluation of another run (model hash \(hash.prefix(12)), the run's is \(expected.prefix(12)))")
        }
        let read = (doc["read"] as? NSNumber)?.intValue ?? (doc["records"] as? NSNumber)?.intValue ?? -1
        guard read == run.manifest.records else {
            throw AnalysisError("\(url.path): an evaluation of another run (it read \(read) records, the run has \(run.manifest.records))")
        }
        if let m = methods.keys.first(where: { $0 != "random" && !run.methods.contains($0) }) {
            throw AnalysisError("\(url.path): an evaluation of another run (method \(m) is not one of the run's: \(run.methods.joined(separator: ",")))")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// The page's data document (without the evaluation, which the page embeds as written).
    public static func build(_ run: FinishedRun, options o: ReportOptions, now: Date = Date()) throws -> JSONValue {
        guard o.records >= 1 else { throw AnalysisError("--records \(o.records): at least 1") }
        guard o.top >= 1 else { throw AnalysisError("--top \(o.top): at least 1") }
        let identity = run.manifest.identity
        let methods = run.methods.filter { $0 != "ig_delta" }
        var labels = identity.model.labels
        let runName = run.directory.path

        // Pass 1, every record: the prediction, the words ranking per method and class.
        var indices: [Int] = [], confidence: [Double] = [], wrong: [Bool] = []
        var truth: [Int] = [], predictions: [Int] = []
        var classCount = labels.count
        var perClass: [Int: [WordRanking.Tally]] = [:]  // class -> [method]
        var recordsPerClass: [Int: Int] = [:]
        var overall = methods.map { _ in WordRanking.Tally() }
        try run.forEachRecord { r in
            indices.append(r.index)
            confidence.append(Self.confidence(r))
            let g = gold(r, labels: labels)
            wrong.append(g != nil && g != r.predicted)
            if let g {
                truth.append(g)
                predictions.append(r.predicted)
            }
            classCount = max(classCount, r.predicted + 1, r.probs.count)
            recordsPerClass[r.predicted, default: 0] += 1
            var tallies = perClass[r.predicted] ?? methods.map { _ in WordRanking.Tally() }
            for (m, method) in methods.enumerated() {
                let scores = try r.requireScores(method, target: .first, run: runName)
                for (w, v) in WordRanking.normalised(tokens: r.tokens, scores: scores, isWord: r.isWord, specials: false, merge: false) {
                    tallies[m].add(w, v)
                    overall[m].add(w, v)
                }
            }
            perClass[r.predicted] = tallies
        }
        while labels.count < classCount { labels.append("LABEL_\(labels.count)") }

        // Pass 2: the sample's records in full.
        let chosen = sample(indices: indices, confidence: confidence, wrong: wrong, budget: o.records, seed: o.seed)
        let groupOf = Dictionary(uniqueKeysWithValues: chosen.map { ($0.index, $0.group) })
        var embedded: [Int: JSONValue] = [:]
        try run.forEachRecord { r in
            guard let group = groupOf[r.index] else { return }
            var f: [(String, JSONValue)] = [("i", .int(r.index))]
            if let id = r.id { f.append(("id", .string(id))) }
            f.append(("g", .int(group)))
            if let label = r.label { f.append(("label", .string(label))) }
            f.append(("gold", gold(r, labels: labels).map { .int($0) } ?? .null))
            f.append(("p", .int(r.predicted)))
            f.append(("pr", .array(r.probs.map { compact($0) })))
            f.append(("text", .string(r.text)))
            if let b = r.textB { f.append(("text_b", .string(b))) }
            f.append(("t", .array(r.tokens.map { .string($0) })))
            if r.segments.contains(where: { $0 != 0 }) { f.append(("sg", .array(r.segments.map { .int(Int($0)) }))) }
            f.append(("sp", .array(r.isWord.indices.filter { !r.isWord[$0] }.map { .int($0) })))
            var s: [(String, JSONValue)] = []
            for method in methods {
                s.append((method, .array(try r.requireScores(method, target: .first, run: runName).map { compact($0) })))
            }
            f.append(("s", .object(s)))
            embedded[r.index] = .object(f)
        }

        func entries(_ xs: ArraySlice<(token: String, mean: Double, count: Int)>) -> JSONValue {
            .array(xs.map { .array([.string($0.token), .number(($0.mean * 1e4).rounded() / 1e4), .int($0.count)]) })
        }
        func ranking(_ t: WordRanking.Tally) -> [(String, JSONValue)] {
            let ranked = t.ranked(minCount: o.minCount)
            return [("words", .int(ranked.count)), ("top", entries(ranked.prefix(o.top))), ("bottom", entries(ranked.reversed().prefix(o.top)))]
        }
        var words: [(String, JSONValue)] = []
        for (m, method) in methods.enumerated() {
            var classes: [JSONValue] = [.object([("class", .null), ("records", .int(indices.count))] + ranking(overall[m]))]
            for c in perClass.keys.sorted() {
                classes.append(.object([("class", .int(c)), ("records", .int(recordsPerClass[c] ?? 0))] + ranking(perClass[c]![m])))
            }
            words.append((method, .array(classes)))
        }

        let model = identity.model
        let summary: [(String, JSONValue)] = [
            ("run", .string(run.directory.standardizedFileURL.lastPathComponent)),
            ("run_path", .string(runName)),
            ("model", .string(model.path)), ("model_sha256", .string(model.hash)),
            ("methods", .array(methods.map { .string($0) })), ("targets", .string(identity.targets)),
            ("max_seq_length", .int(identity.maxSeqLength)),
            ("inputs", .array(run.manifest.inputs.map { .string($0) })),
            ("records", .int(run.manifest.records)), ("errors", .int(run.manifest.errors)),
            ("tool", .string(identity.tool)), ("updated", .string(run.manifest.updated)),
            ("report_tool", .string(o.tool)), ("generated", .string(ISO8601DateFormatter().string(from: now))),
        ]
        var doc: [(String, JSONValue)] = [
            ("summary", .object(summary)),
            ("labels", .array(labels.map { .string($0) })),
            ("signed", .array(methods.filter { signedMethods.contains($0) }.map { .string($0) })),
            ("sampling", .object([
                ("budget", .int(o.records)), ("seed", .int(Int(truncatingIfNeeded: o.seed))),
                ("groups", .array(groups.enumerated().map { g, d in
                    .object([("name", .string(d.name)), ("description", .string(d.description)),
                             ("count", .int(chosen.filter { $0.group == g }.count))])
                })),
            ])),
        ]
        if let c = ClassificationReport(truth: truth, predicted: predictions) {
            var j = Evaluation.classificationJSON(c, labels: labels)
            if case var .object(fields) = j {
                fields.append(("classes", .array(c.classes.map { .int($0) })))
                fields.append(("unlabeled", .int(indices.count - truth.count)))
                j = .object(fields)
            }
            doc.append(("classification", j))
        } else {
            doc.append(("classification", .null))
        }
        doc.append(("words", .object([("top", .int(o.top)), ("min_count", .int(o.minCount)), ("methods", .object(words))])))
        doc.append(("records", .array(chosen.compactMap { embedded[$0.index] })))
        return .object(doc)
    }
}
