@testable import Analysis
import Foundation
import Inference
import IO
import Tokenizer
import XCTest

/// `evaluate` against an independent computation: the test ranks each
/// record's tokens itself, builds every perturbed input, runs the engine on
/// each one alone and computes the curves, AOPCs, ERASER values and
/// accuracies; tolerance 1e-6 (the evaluation packs inputs into
/// micro-batches, which changes float32 sums in the last bits only).
final class EvaluationTests: XCTestCase {
    static let texts = [
        "the film was not good but the actors were fine", "he is as good as it gets", "this is one which you had",
        "she was with her mother at the house", "an old man from the city", "they were not", "it", "",
        "my one and only time in the city was good", "for that he had to be at work by one",
    ]

    func makeRun(_ dir: URL, broken: Bool = false) throws {
        try writeRun(dir, model: tinyModel, methods: ["gs", "ixg", "lat"]) { tokenizer, _ in
            var g = SeededGenerator(seed: 11)
            return Self.texts.enumerated().map { i, text in
                let t = tokenizer.encode(text, maxSequenceLength: 64).ids.count
                // Small integers: many ties, which must break by position.
                func scores(signed: Bool) -> [Float] {
                    (0..<t).map { _ in Float(Int.random(in: signed ? -3...3 : 0...4, using: &g)) }
                }
                let labels = ["negative", "neutral", "positive", "2", nil, "0", "positive", "1", "nonsense", "negative"]
                var r = FixtureRecord(text: text, label: labels[i])
                r.entry = ["gs": scores(signed: false), "ixg": scores(signed: true)]
                r.topLevel = ["lat": scores(signed: false)]
                if broken && i == 2 {
                    // The same length, another word: the shard is well-formed, the text just does not give these tokens.
                    var tokens = tokenizer.tokens(tokenizer.encode(text, maxSequenceLength: 64).ids)
                    tokens[1] = tokens[1] == "x" ? "y" : "x"
                    r.tokens = tokens
                }
                return r
            }
        }
    }

    struct Expected {
        var comp: [Double], suff: [Double], compAOPC: Double, suffAOPC: Double
        var eraserComp: Double, eraserSuff: Double, accuracy: [Double]?, records: Int
    }

    /// The reference: one engine call per perturbed input.
    func expected(run: FinishedRun, method: String, k: Int, replace: Int32?, minTokens: Int = 0, skip: Set<Int> = [],
                  onlyCorrect: Bool = false) throws -> Expected {
        let tokenizer = try BertTokenizer.load(modelDirectory: tinyModel)
        let engine = Engine(model: try BertModel(directory: tinyModel, relevance: false))
        let labels = run.manifest.identity.model.labels
        func probs(_ ids: [Int32], _ segs: [Int32]) throws -> [Float] {
            try engine.run([EncodedInput(ids: ids, segments: segs)], methods: [], targets: .predicted)[0].probs
        }
        func argmax(_ p: [Float]) -> Int { p.indices.max { p[$0] < p[$1] || (p[$0] == p[$1] && $0 > $1) }! }
        var comp = [Double](repeating: 0, count: k + 1), suff = comp, correct = comp
        var compAOPC = 0.0, suffAOPC = 0.0, eC = 0.0, eS = 0.0, records = 0, labeled = 0
        try run.forEachRecord { r in
            guard !skip.contains(r.index) else { return }
            let e = tokenizer.encode(r.text, maxSequenceLength: 64)
            let words = r.tokens.indices.filter { r.tokens[$0] != "[CLS]" && r.tokens[$0] != "[SEP]" }
            guard words.count >= minTokens else { return }
            let label: Int? = r.label.flatMap { l in labels.firstIndex(of: l) ?? Int(l).flatMap { $0 < labels.count ? $0 : nil } }
            if onlyCorrect && label != r.predicted { return }
            let p0v = try probs(e.ids, e.segments)
            let c0 = argmax(p0v)
            let p0 = Double(p0v[c0])
            records += 1
            // Ranking, independently: (key desc, position asc) by a stable sort on the key alone.
            var order: [Int]
            if method == "random" {
                var g = SeededGenerator(seed: 1, UInt64(r.index), 0)
                order = words.shuffled(using: &g)
            } else {
                let s = r.scores(method, target: nil)!
                let key = { (i: Int) -> Float in method == "ixg" ? s[i] : abs(s[i]) }
                order = words
                // insertion sort: stable
                for i in 1..<max(1, order.count) {
                    var j = i
                    while j > 0 && key(order[j]) > key(order[j - 1]) { order.swapAt(j, j - 1); j -= 1 }
                }
            }
            func apply(_ chosen: Set<Int>) -> ([Int32], [Int32]) {
                if let id = replace {
                    return (e.ids.indices.map { chosen.contains($0) ? id : e.ids[$0] }, e.segments)
                }
                let keep = e.ids.indices.filter { !chosen.contains($0) }
                return (keep.map { e.ids[$0] }, keep.map { e.segments[$0] })
            }
            func deleted(_ c: Int) throws -> [Float] { try probs(apply(Set(order.prefix(c))).0, apply(Set(order.prefix(c))).1) }
            func kept(_ c: Int) throws -> [Float] {
                let rest = Set(words).subtracting(order.prefix(c))
                return try probs(apply(rest).0, apply(rest).1)
            }
            var rc = 0.0, rs = 0.0
            if let label { labeled += 1; correct[0] += c0 == label ? 1 : 0 }
            for kk in 1...k {
                let c = min(kk, words.count)
                let d = try deleted(c)
                comp[kk] += p0 - Double(d[c0]); rc += p0 - Double(d[c0])
                let u = try kept(c)
                suff[kk] += p0 - Double(u[c0]); rs += p0 - Double(u[c0])
                if let label { correct[kk] += argmax(d) == label ? 1 : 0 }
            }
            compAOPC += rc / Double(k); suffAOPC += rs / Double(k)
            let fr = [1, 5, 10, 20, 50].map { Int((Double(words.count * $0) / 100).rounded(.up)) }
            eC += try fr.map { p0 - Double(try deleted($0)[c0]) }.reduce(0, +) / 5
            eS += try fr.map { p0 - Double(try kept($0)[c0]) }.reduce(0, +) / 5
        }
        let n = Double(records)
        return Expected(comp: comp.map { $0 / n }, suff: suff.map { $0 / n }, compAOPC: compAOPC / n, suffAOPC: suffAOPC / n,
                        eraserComp: eC / n, eraserSuff: eS / n, accuracy: labeled > 0 ? correct.map { $0 / Double(labeled) } : nil,
                        records: records)
    }

    func check(_ doc: JSONValue, _ method: String, _ x: Expected, file: StaticString = #filePath, line: UInt = #line) {
        let m = object(object(doc, "methods"), method)
        XCTAssertNotNil(m, method, file: file, line: line)
        XCTAssertEqual(number(object(m, "records")), Double(x.records), method, file: file, line: line)
        func close(_ a: [Double]?, _ b: [Double], _ what: String) {
            guard let a, a.count == b.count else { return XCTFail("\(method) \(what): \(String(describing: a)) vs \(b)", file: file, line: line) }
            for (u, v) in zip(a, b) { XCTAssertEqual(u, v, accuracy: 1e-6, "\(method) \(what)", file: file, line: line) }
        }
        close(numbers(object(object(m, "comprehensiveness"), "curve")), x.comp, "comprehensiveness curve")
        close(numbers(object(object(m, "sufficiency"), "curve")), x.suff, "sufficiency curve")
        close([number(object(object(m, "comprehensiveness"), "aopc")) ?? .nan], [x.compAOPC], "comprehensiveness AOPC")
        close([number(object(object(m, "sufficiency"), "aopc")) ?? .nan], [x.suffAOPC], "sufficiency AOPC")
        close([number(object(object(m, "eraser"), "comprehensiveness")) ?? .nan, number(object(object(m, "eraser"), "sufficiency")) ?? .nan],
              [x.eraserComp, x.eraserSuff], "eraser")
        if let acc = x.accuracy { close(numbers(object(m, "accuracy")), acc, "accuracy") } else {
            XCTAssertNil(object(m, "accuracy"), file: file, line: line)
        }
        // The interval brackets its mean.
        let ci = numbers(object(object(m, "comprehensiveness"), "ci95")) ?? []
        XCTAssertEqual(ci.count, 2, file: file, line: line)
        if ci.count == 2 { XCTAssertTrue(ci[0] <= x.compAOPC + 1e-12 && x.compAOPC <= ci[1] + 1e-12, "\(method) ci \(ci)", file: file, line: line) }
    }

    func evaluate(_ dir: URL, _ configure: (inout EvaluationOptions) -> Void = { _ in }) throws -> Evaluation.Result {
        let run = try FinishedRun(dir)
        let model = try RunModel(run: run, override: tinyModel)
        var o = EvaluationOptions()
        o.workers = 2
        o.batchTokens = 64   // many micro-batches, on both workers
        configure(&o)
        return try Evaluation.run(run, model: model.model, tokenizer: model.tokenizer, modelHash: model.hash, options: o)
    }

    func testCurvesMatchOneByOneForwardPasses() throws {
        let dir = try temporaryDirectory(self)
        try makeRun(dir)
        let run = try FinishedRun(dir)
        let result = try evaluate(dir) { $0.k = 4 }
        for m in ["gs", "ixg", "lat", "random"] { check(result.document, m, try expected(run: run, method: m, k: 4, replace: 0)) }
        XCTAssertEqual(number(object(result.document, "records")), 10)
        XCTAssertEqual(result.skipped, 0)
        // (1 + methods × distinct counts × 2) forward passes at most: 4 slots, k = 4 + 5 fractions.
        XCTAssertLessThanOrEqual(result.passes, 10 * (1 + 4 * 9 * 2))
    }

    func testDeleteReplacementMinTokensAndOnlyCorrect() throws {
        let dir = try temporaryDirectory(self)
        try makeRun(dir)
        let run = try FinishedRun(dir)
        let result = try evaluate(dir) { $0.k = 3; $0.replace = .delete; $0.minTokens = 3 }
        for m in ["gs", "ixg"] { check(result.document, m, try expected(run: run, method: m, k: 3, replace: nil, minTokens: 3)) }
        let unk = try evaluate(dir) { $0.k = 2; $0.replace = .unk; $0.onlyCorrect = true; $0.methods = ["ixg"] }
        check(unk.document, "ixg", try expected(run: run, method: "ixg", k: 2, replace: 100, onlyCorrect: true))
        XCTAssertNil(object(object(unk.document, "methods"), "gs"))
    }

    /// A record whose tokens the model's tokenizer does not give back is reported, skipped and counted.
    func testRecordThatDoesNotReencodeIsSkipped() throws {
        let dir = try temporaryDirectory(self)
        try makeRun(dir, broken: true)
        let run = try FinishedRun(dir)
        var reported: [String] = []
        let model = try RunModel(run: run, override: tinyModel)
        var o = EvaluationOptions()
        o.k = 2
        let result = try Evaluation.run(run, model: model.model, tokenizer: model.tokenizer, modelHash: model.hash, options: o,
                                        report: { reported.append($0) })
        XCTAssertEqual(result.skipped, 1)
        XCTAssertEqual(reported.count, 1)
        XCTAssertTrue(reported.first?.contains("record 2") ?? false, "\(reported)")
        XCTAssertEqual(number(object(result.document, "skipped")), 1)
        check(result.document, "gs", try expected(run: run, method: "gs", k: 2, replace: 0, skip: [2]))
    }

    /// The classification report of the records with labels, by hand from the
    /// predictions (the report's own arithmetic is checked against sklearn in ClassificationTests).
    func testClassificationReportOfTheRun() throws {
        let dir = try temporaryDirectory(self)
        try makeRun(dir)
        let run = try FinishedRun(dir)
        var truth: [Int] = [], predicted: [Int] = []
        let labels = run.manifest.identity.model.labels
        try run.forEachRecord { r in
            if let l = r.label, let c = labels.firstIndex(of: l) ?? Int(l).flatMap({ $0 < labels.count ? $0 : nil }) {
                truth.append(c); predicted.append(r.predicted)
            }
        }
        let report = try XCTUnwrap(ClassificationReport(truth: truth, predicted: predicted))
        let doc = try evaluate(dir) { $0.k = 1 }.document
        let c = object(doc, "classification")
        XCTAssertEqual(number(object(c, "accuracy")) ?? -1, report.accuracy, accuracy: 1e-12)
        XCTAssertEqual(number(object(c, "accuracy")) ?? -1, Double(zip(truth, predicted).filter { $0 == $1 }.count) / Double(truth.count), accuracy: 1e-12)
        guard case let .array(rows)? = object(c, "confusion") else { return XCTFail("no confusion matrix") }
        XCTAssertEqual(rows.count, report.classes.count)
        XCTAssertEqual(truth.count, 8, "labels: 8 of 10 records name a class")
    }

    func testBadInput() throws {
        let dir = try temporaryDirectory(self)
        try makeRun(dir)
        XCTAssertThrowsError(try evaluate(dir) { $0.methods = ["lrp"] }) { XCTAssertTrue("\($0)".contains("--methods lrp"), "\($0)") }
        // Another model: the hash differs.
        let run = try FinishedRun(dir)
        XCTAssertThrowsError(try RunModel(run: run, override: checkout.appendingPathComponent("models/minilm-sst2"))) {
            XCTAssertTrue("\($0)".contains("not the run's model"), "\($0)")
        }
        // A run still running.
        var m = run.manifest
        m.status = "running"
        try m.write(directory: dir)
        XCTAssertThrowsError(try FinishedRun(dir)) { XCTAssertTrue("\($0)".contains("not complete"), "\($0)") }
    }
}
