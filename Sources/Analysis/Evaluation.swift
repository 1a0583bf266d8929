import Foundation
import Inference
import IO
import Tokenizer

/// What a deleted token becomes (docs/CONTRACT.md section 7, `--replace`).
public enum Replacement: String, CaseIterable, Sendable {
    case pad, mask, unk, delete
}

public struct EvaluationOptions {
    public var k = 10
    public var replace = Replacement.pad
    public var onlyCorrect = false
    public var minTokens = 0
    public var randomRepeats = 1
    public var seed: UInt64 = 1
    public var target = ScoreTarget.first
    /// nil: every method of the run.
    public var methods: [String]?
    public var workers = ProcessInfo.processInfo.activeProcessorCount
    public var batchTokens: Int?
    public init() {}
}

/// Word deletion (comprehensiveness) and keep-only (sufficiency) of each
/// method's ranking, their AOPCs, accuracy after deletion, and the
/// classification report (docs/CONTRACT.md section 7; the seed's notebook's
/// `evaluate_with_word_deletion` and ERASER, DeYoung et al. 2020).
public enum Evaluation {
    /// ERASER's bins: 1, 5, 10, 20, 50% of the word tokens.
    public static let eraserPercents = [1, 5, 10, 20, 50]

    /// Word-token positions, best first: signed methods by score (most
    /// positive first), the others by magnitude; ties by position; NaN last.
    public static func ranking(_ scores: [Float], isWord: [Bool], signed: Bool) -> [Int] {
        let key: (Int) -> Float = { i in
            let v = signed ? scores[i] : abs(scores[i])
            return v.isNaN ? -.infinity : v
        }
        return scores.indices.filter { isWord[$0] }.sorted { a, b in
            let ka = key(a), kb = key(b)
            return ka > kb || (ka == kb && a < b)
        }
    }

    /// Tokens deleted at each ERASER fraction of `n` word tokens, rounded up.
    public static func eraserCounts(_ n: Int) -> [Int] { eraserPercents.map { (n * $0 + 99) / 100 } }

    /// The input with the positions in `chosen` replaced by `id`, or removed (`id` nil).
    public static func perturb(_ x: EncodedInput, _ chosen: [Bool], id: Int32?) -> EncodedInput {
        guard let id else {
            let keep = x.ids.indices.filter { !chosen[$0] }
            return EncodedInput(ids: keep.map { x.ids[$0] }, segments: keep.map { x.segments[$0] })
        }
        var y = x
        for i in y.ids.indices where chosen[i] { y.ids[i] = id }
        return y
    }

    // MARK: the run

    /// The per-method sums that become the document: curves, the per-record
    /// AOPCs (for the bootstrap), ERASER's and the accuracy curve.
    struct Tally {
        var records = 0
        var comprehensiveness: [Double]   // [K+1], sums of p0 - p_k
        var sufficiency: [Double]         // [K+1]
        var comprehensivenessAOPC: [Double] = []  // one per record
        var sufficiencyAOPC: [Double] = []
        var eraserComprehensiveness = 0.0, eraserSufficiency = 0.0
        var labeled = 0
        var correct: [Double]             // [K+1], records right after deleting k
        init(k: Int) {
            comprehensiveness = [Double](repeating: 0, count: k + 1)
            sufficiency = comprehensiveness
            correct = comprehensiveness
        }
    }

    /// One record's perturbed inputs: per method and repeat, the input for
    /// each distinct deletion / keep-only count.
    struct Job {
        var index: Int
        var label: Int?
        var runPredicted: Int
        var n: Int
        var inputs: [EncodedInput]
        var evaluated: Bool
        /// [method][repeat] -> (count -> input index) for deletion and sufficiency.
        var deletion: [[[Int: Int]]] = []
        var sufficiency: [[[Int: Int]]] = []
    }

    public struct Result {
        public var document: JSONValue
        public var table: String
        public var notes: [String]
        public var skipped: Int
        public var passes: Int
    }

    /// Evaluates the run. `model`/`tokenizer` are the run's (the caller checked the hash).
    public static func run(_ run: FinishedRun, model: BertModel, tokenizer: BertTokenizer, modelHash: String,
                           options o: EvaluationOptions, report: (String) -> Void = { _ in }) throws -> Result {
        let identity = run.manifest.identity
        let labels = identity.model.labels.isEmpty ? model.config.labels : identity.model.labels
        let methods = try chooseMethods(run: run, asked: o.methods)
        guard o.k >= 1 else { throw AnalysisError("-k \(o.k): at least 1") }
        guard o.randomRepeats >= 1 else { throw AnalysisError("--random-repeats \(o.randomRepeats): at least 1") }
        let replacementID: Int32?
        switch o.replace {
        case .pad: replacementID = tokenizer.padID
        case .unk: replacementID = tokenizer.unkID
        case .delete: replacementID = nil
        case .mask:
            guard let m = tokenizer.vocabulary.id(of: tokenizer.options.maskToken) else {
                throw AnalysisError("--replace mask: the model's vocabulary has no \(tokenizer.options.maskToken)")
            }
            replacementID = Int32(m)
        }
        let slots = methods + ["random"]
        let repeats = slots.map { $0 == "random" ? o.randomRepeats : 1 }
        var tallies = slots.map { _ in Tally(k: o.k) }
        var truth: [Int] = [], predictions: [Int] = []
        var skipped = 0, unlabeled = 0, unknownLabels = 0, mismatches = 0, read = 0
        var notes: [String] = []

        let (workers, capNote) = Threads.capped(max(1, o.workers))
        if let capNote { notes.append(capNote) }
        Engine.setBLASThreads(forWorkers: workers)
        let longest = identity.maxSeqLength
        let budget = o.batchTokens ?? Engine.batchTokens(config: model.config, methods: [], targets: 1, longest: longest)
        let pool = ForwardPool(model: model, workers: workers, batchTokens: budget)
        // A `--long window` run: a document longer than the window (the
        // original and every perturbed one) is cut into windows as the run
        // cut it, its prediction from their mean logits (README "Long documents").
        let windowed = identity.long == "window"
        func documentProbabilities(_ documents: [EncodedInput]) throws -> [[Float]] {
            guard windowed else { return try pool.probabilities(documents) }
            var windows: [EncodedInput] = [], owner: [Range<Int>] = []
            for d in documents {
                let start = windows.count
                let cut: TokenWindows?
                do { cut = try TokenWindows.of(segments: d.segments, maxLength: longest, stride: identity.windowStride) } catch {
                    throw AnalysisError("\(run.directory.path): a perturbed document cannot be cut into windows: \(error)")
                }
                if let cut {
                    for w in cut.spans.indices { windows.append(EncodedInput(ids: cut.cut(d.ids, w), segments: cut.cut(d.segments, w))) }
                } else {
                    windows.append(d)
                }
                owner.append(start..<windows.count)
            }
            let out = try pool.forward(windows)
            return owner.map { r in
                r.count == 1 ? out[r.lowerBound].probs
                    : ModelConfig.prediction(logits: WindowAverage.logits(out[r].map(\.logits)), multiLabel: model.config.multiLabel).probs
            }
        }
        let progress = AnalysisProgress(passes: { pool.passes })
        progress.start()
        let workspace = TokenizerWorkspace()
        let runName = run.directory.path

        // --only-correct without any label in the run: ignored, with a note.
        var truthless = false
        func build(_ r: RunRecord) throws -> Job? {
            let e = tokenizer.encode(r.text, pair: r.textB, maxSequenceLength: windowed ? nil : identity.maxSeqLength, workspace: workspace)
            guard tokenizer.tokens(e.ids) == r.tokens, e.segments == r.segments else {
                report("\(runName): record \(r.index): re-encoding its text does not give the run's tokens; skipped")
                return nil
            }
            let original = EncodedInput(ids: e.ids, segments: e.segments)
            let n = r.isWord.reduce(0) { $0 + ($1 ? 1 : 0) }
            let label = r.label.flatMap { ModelConfig.classIndex(ofLabel: $0, labels: labels) }
            if r.label != nil && label == nil { unknownLabels += 1 }
            var job = Job(index: r.index, label: label, runPredicted: r.predicted, n: n, inputs: [original], evaluated: false)
            // --only-correct by the run's prediction (ours is checked against it after the forward pass).
            job.evaluated = n >= o.minTokens && (!o.onlyCorrect || truthless || label == r.predicted)
            guard job.evaluated else { return job }
            var counts = Set((1...o.k).map { min($0, n) })
            counts.formUnion(eraserCounts(n))
            counts.remove(0)
            for (s, method) in slots.enumerated() {
                var del: [[Int: Int]] = [], suf: [[Int: Int]] = []
                for rep in 0..<repeats[s] {
                    let order: [Int]
                    if method == "random" {
                        var g = SeededGenerator(seed: o.seed, UInt64(r.index), UInt64(rep))
                        order = r.isWord.indices.filter { r.isWord[$0] }.shuffled(using: &g)
                    } else {
                        let scores = try r.requireScores(method, target: o.target, run: runName)
                        order = ranking(scores, isWord: r.isWord, signed: signedMethods.contains(method))
                    }
                    var d: [Int: Int] = [:], u: [Int: Int] = [:]
                    for c in counts.sorted() {
                        var chosen = [Bool](repeating: false, count: r.tokens.count)
                        for p in order.prefix(c) { chosen[p] = true }
                        d[c] = job.inputs.count
                        job.inputs.append(perturb(original, chosen, id: replacementID))
                        if c < n {
                            // Keep only the top c: every other word token replaced.
                            let rest = r.isWord.indices.map { r.isWord[$0] && !chosen[$0] }
                            u[c] = job.inputs.count
                            job.inputs.append(perturb(original, rest, id: replacementID))
                        }
                    }
                    del.append(d)
                    suf.append(u)
                }
                job.deletion.append(del)
                job.sufficiency.append(suf)
            }
            return job
        }

        func finish(_ job: Job, _ probs: ArraySlice<[Float]>) {
            let base = probs.startIndex
            let p0v = probs[base]
            let predicted = argmax(p0v)
            if predicted != job.runPredicted { mismatches += 1 }
            if let label = job.label {
                truth.append(label)
                predictions.append(predicted)
            } else {
                unlabeled += 1
            }
            guard job.evaluated else { return }
            let p0 = Double(p0v[predicted])
            for s in slots.indices {
                var t = tallies[s]
                t.records += 1
                var comp = [Double](repeating: 0, count: o.k + 1), suff = comp, right = comp
                var eraserC = 0.0, eraserS = 0.0
                let reps = Double(repeats[s])
                for rep in 0..<repeats[s] {
                    func pDel(_ c: Int) -> [Float] { c == 0 ? p0v : probs[base + job.deletion[s][rep][c]!] }
                    func pSuf(_ c: Int) -> [Float] { c >= job.n ? p0v : probs[base + job.sufficiency[s][rep][c]!] }
                    if let label = job.label { right[0] += (predicted == label ? 1 : 0) / reps }
                    for k in 1...o.k {
                        let c = min(k, job.n)
                        let d = pDel(c)
                        comp[k] += (p0 - Double(d[predicted])) / reps
                        suff[k] += (p0 - Double(pSuf(c)[predicted])) / reps
                        if let label = job.label { right[k] += (argmax(d) == label ? 1 : 0) / reps }
                    }
                    let ec = eraserCounts(job.n)
                    eraserC += ec.reduce(0) { $0 + (p0 - Double(pDel($1)[predicted])) } / Double(ec.count) / reps
                    eraserS += ec.reduce(0) { $0 + (p0 - Double(pSuf($1)[predicted])) } / Double(ec.count) / reps
                }
                for k in 0...o.k {
                    t.comprehensiveness[k] += comp[k]
                    t.sufficiency[k] += suff[k]
                }
                t.comprehensivenessAOPC.append(comp.dropFirst().reduce(0, +) / Double(o.k))
                t.sufficiencyAOPC.append(suff.dropFirst().reduce(0, +) / Double(o.k))
                t.eraserComprehensiveness += eraserC
                t.eraserSufficiency += eraserS
                if job.label != nil {
                    t.labeled += 1
                    for k in 0...o.k { t.correct[k] += right[k] }
                }
                tallies[s] = t
            }
        }

        // Whether the run has labels at all decides --only-correct; a first
        // look at the records tells (the seed's filter needs them).
        if o.onlyCorrect {
            var any = false
            try run.forEachRecord { r in if r.label != nil { any = true } }
            if !any {
                truthless = true
                notes.append("the run's records have no labels: --only-correct ignored")
            }
        }

        var chunk: [Job] = []
        var chunkRecords = 0, chunkTokens = 0
        func flush() throws {
            guard !chunk.isEmpty else { return }
            let inputs = chunk.flatMap(\.inputs)
            let probs = try documentProbabilities(inputs)
            var at = 0
            for job in chunk {
                finish(job, probs[at..<(at + job.inputs.count)])
                at += job.inputs.count
            }
            progress.add(records: chunkRecords)
            chunk.removeAll(keepingCapacity: true)
            chunkRecords = 0
            chunkTokens = 0
        }
        do {
            try run.forEachRecord { r in
                read += 1
                chunkRecords += 1
                if let job = try build(r) {
                    chunk.append(job)
                    chunkTokens += job.inputs.reduce(0) { $0 + $1.ids.count }
                } else {
                    skipped += 1
                }
                // ~150 forward passes a record: a few hundred records keep every worker busy.
                // Long documents: their perturbed copies' tokens bound the chunk's memory.
                if chunk.count >= 64 * workers || chunkTokens >= 1 << 22 { try flush() }
            }
            try flush()
        } catch {
            progress.finish(" (stopped)")
            throw error
        }
        progress.finish(", \(skipped) skipped")

        // The document.
        if skipped > 0 { notes.append("\(skipped) record(s) skipped: their text does not re-encode to the run's tokens") }
        if unknownLabels > 0 { notes.append("\(unknownLabels) record(s) with a label that is not a class of the model: left out of the accuracy and the report") }
        if mismatches > 0 { notes.append("\(mismatches) record(s) where the model now predicts another class than the run recorded") }
        let haveLabels = !truth.isEmpty
        if !haveLabels { notes.append("the records have no labels: accuracy and the classification report left out") }
        var fields: [(String, JSONValue)] = [
            ("run", .string(run.directory.path)), ("model_sha256", .string(modelHash)),
            ("records", .int(tallies.first?.records ?? 0)), ("read", .int(read)), ("skipped", .int(skipped)),
            ("k", .int(o.k)), ("replace", .string(o.replace.rawValue)), ("min_tokens", .int(o.minTokens)),
            ("only_correct", .bool(o.onlyCorrect)), ("target", .string(targetName(o.target, identity: identity))),
            ("random_repeats", .int(o.randomRepeats)), ("seed", .int(Int(o.seed))),
        ]
        if haveLabels, let c = ClassificationReport(truth: truth, predicted: predictions) {
            fields.append(("classification", classificationJSON(c, labels: labels)))
        }
        var methodFields: [(String, JSONValue)] = []
        var rows: [TableRow] = []
        for (s, name) in slots.enumerated() {
            let t = tallies[s]
            let n = Double(max(1, t.records))
            let compCurve = t.comprehensiveness.map { $0 / n }, suffCurve = t.sufficiency.map { $0 / n }
            let compAOPC = Statistics.mean(t.comprehensivenessAOPC), suffAOPC = Statistics.mean(t.sufficiencyAOPC)
            let compCI = Statistics.bootstrapMeanCI(t.comprehensivenessAOPC, seed: o.seed &+ UInt64(2 * s))
            let suffCI = Statistics.bootstrapMeanCI(t.sufficiencyAOPC, seed: o.seed &+ UInt64(2 * s + 1))
            var m: [(String, JSONValue)] = [
                ("records", .int(t.records)),
                ("comprehensiveness", .object([("aopc", .number(compAOPC)), ("ci95", .numbers([compCI.0, compCI.1])), ("curve", .numbers(compCurve))])),
                ("sufficiency", .object([("aopc", .number(suffAOPC)), ("ci95", .numbers([suffCI.0, suffCI.1])), ("curve", .numbers(suffCurve))])),
                ("eraser", .object([("comprehensiveness", .number(t.eraserComprehensiveness / n)), ("sufficiency", .number(t.eraserSufficiency / n))])),
            ]
            var accuracy: [Double]?
            if t.labeled > 0 {
                accuracy = t.correct.map { $0 / Double(t.labeled) }
                m.append(("accuracy", .numbers(accuracy!)))
            }
            methodFields.append((name, .object(m)))
            rows.append(TableRow(method: name, records: t.records, comp: compAOPC, compCI: compCI, suff: suffAOPC, suffCI: suffCI,
                                 accuracy: accuracy))
        }
        fields.append(("methods", .object(methodFields)))
        if !notes.isEmpty { fields.append(("notes", .array(notes.map { .string($0) }))) }
        return Result(document: .object(fields), table: table(rows, k: o.k), notes: notes, skipped: skipped, passes: pool.passes)
    }

    static func argmax(_ p: [Float]) -> Int {
        var best = 0
        for i in p.indices where p[i] > p[best] { best = i }
        return best
    }

    static func chooseMethods(run: FinishedRun, asked: [String]?) throws -> [String] {
        let have = run.methods
        guard let asked else { return have }
        for m in asked where !have.contains(m) {
            throw AnalysisError("--methods \(m): not a method of the run \(run.directory.path) (it has \(have.joined(separator: ",")))")
        }
        return asked
    }

    static func targetName(_ t: ScoreTarget, identity: RunIdentity) -> String {
        if case .first = t { return identity.targets == "all" ? "first" : identity.targets }
        return t.description
    }

    static func classificationJSON(_ c: ClassificationReport, labels: [String]) -> JSONValue {
        func scores(_ s: ClassificationReport.Scores) -> JSONValue {
            .object([("precision", .number(s.precision)), ("recall", .number(s.recall)), ("f1", .number(s.f1)), ("support", .int(s.support))])
        }
        let names = c.classes.map { $0 < labels.count ? labels[$0] : String($0) }
        return .object([
            ("accuracy", .number(c.accuracy)),
            ("labels", .array(names.map { .string($0) })),
            ("per_class", .object(zip(names, c.perClass).map { ($0, scores($1)) })),
            ("macro", scores(c.macro)), ("weighted", scores(c.weighted)),
            ("confusion", .array(c.confusion.map { .array($0.map { .int($0) }) })),
        ])
    }

    struct TableRow {
        var method: String
        var records: Int
        var comp: Double, compCI: (Double, Double)
        var suff: Double, suffCI: (Double, Double)
        var accuracy: [Double]?
    }

    /// Methods as rows: comprehensiveness AOPC with its interval, sufficiency, accuracy at k = 1, 5, 10.
    static func table(_ rows: [TableRow], k: Int) -> String {
        let ks = [1, 5, 10].filter { $0 <= k }
        let showAccuracy = rows.contains { $0.accuracy != nil }
        func f(_ x: Double) -> String { x.isFinite ? String(format: "%.3f", x) : "-" }
        var header = ["method", "records", "comprehensiveness (95% CI)", "sufficiency (95% CI)"]
        if showAccuracy { header += ["acc@0"] + ks.map { "acc@\($0)" } }
        var lines = [header]
        for r in rows {
            var cells = [r.method, String(r.records), "\(f(r.comp)) [\(f(r.compCI.0)), \(f(r.compCI.1))]",
                         "\(f(r.suff)) [\(f(r.suffCI.0)), \(f(r.suffCI.1))]"]
            if showAccuracy { cells += ([0] + ks).map { k in r.accuracy.map { f($0[k]) } ?? "-" } }
            lines.append(cells)
        }
        let widths = header.indices.map { c in lines.map { $0[c].count }.max()! }
        return lines.map { cells in
            cells.enumerated().map { c, s in c == 0 ? s.padding(toLength: widths[c], withPad: " ", startingAt: 0)
                : String(repeating: " ", count: widths[c] - s.count) + s }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}
