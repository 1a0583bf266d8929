import Foundation
import XCTest
@testable import Inference

/// Section 5b's methods against LXT 2.1 (AttnLRP), Captum 0.7
/// (LayerIntegratedGradients) and PyTorch (rollout, CP-LRP, input x gradient)
/// on each example alone (Tests/Fixtures/reference/README.md): every example
/// and class within max(1e-4, 3 x the reference's own float32 error) of its
/// float64, by docs/CONTRACT.md section 5's error.
final class RulesReferenceTests: XCTestCase {
    override class func setUp() { Engine.setBLASThreads(1) }

    static let methods: Methods = [.ixg, .attnlrp, .cplrp, .ig, .rollout]

    func testTinyBertEveryClass() throws {
        try check(model: Fixtures.tinyBert, rules: "tiny-bert.rules.jsonl", inputs: "tiny-bert.jsonl", targets: .all)
    }

    func testMiniLMSST2PredictedClass() throws {
        try check(model: Fixtures.miniLM, rules: "minilm-sst2.rules.jsonl", inputs: "minilm-sst2.jsonl", targets: .predicted,
                  methods: [.ixg, .attnlrp, .cplrp, .rollout])
    }

    /// Integrated gradients apart: 32 forward and backward passes of 190
    /// examples, up to 128 tokens, take minutes on one core.
    func testMiniLMSST2IntegratedGradients() throws {
        Engine.setBLASThreads(ProcessInfo.processInfo.activeProcessorCount)
        defer { Engine.setBLASThreads(1) }
        try check(model: Fixtures.miniLM, rules: "minilm-sst2.rules.jsonl", inputs: "minilm-sst2.jsonl", targets: .predicted,
                  methods: [.ig])
    }

    /// One record of a `*.rules.jsonl` file; its inputs come from the seed's
    /// reference of the same id (the same texts, the same tokens).
    struct RulesRecord {
        struct Scores {
            var logits: [Double]
            var rollout: [Double]
            var perClass: [String: [Int: [Double]]]   // method -> class -> [T]
            var igDelta: [Int: Double]
        }
        var id: String
        var tokens: [String]
        var f64: Scores
        var f32: Scores

        static func load(_ name: String) throws -> [RulesRecord] {
            let text = try String(contentsOf: Fixtures.reference.appendingPathComponent(name), encoding: .utf8)
            return text.split(separator: "\n").map { line in
                let o = try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                func scores(_ key: String) -> Scores {
                    let d = o[key] as! [String: Any]
                    var s = Scores(logits: d["logits"] as! [Double], rollout: d["rollout"] as! [Double], perClass: [:], igDelta: [:])
                    for (k, v) in d {
                        guard let us = k.lastIndex(of: "_"), let c = Int(k[k.index(after: us)...]) else { continue }
                        let method = String(k[..<us])
                        if method == "ig_delta" { s.igDelta[c] = v as? Double } else { s.perClass[method, default: [:]][c] = v as? [Double] }
                    }
                    return s
                }
                return RulesRecord(id: o["id"] as! String, tokens: o["tokens"] as! [String], f64: scores("f64"), f32: scores("f32"))
            }
        }
    }

    private func check(model directory: URL, rules: String, inputs inputFile: String, targets: TargetSelection,
                       methods: Methods = RulesReferenceTests.methods) throws {
        let records = try RulesRecord.load(rules)
        let byId = Dictionary(uniqueKeysWithValues: try ReferenceRecord.load(inputFile).map { ($0.id, $0) })
        let inputs = try records.map { r -> EncodedInput in
            let seed = try XCTUnwrap(byId[r.id], "\(r.id): not in \(inputFile)")
            XCTAssertEqual(seed.input.ids.count, r.tokens.count, "\(r.id): tokens differ")
            return seed.input
        }
        let engine = Engine(model: try BertModel(directory: directory, relevance: false))
        var results: [ExampleResult] = []
        var start = 0
        while start < inputs.count {
            results += try engine.run(Array(inputs[start..<min(start + 8, inputs.count)]), methods: methods, targets: targets)
            start += 8
        }
        var worst = [String: (error: Double, limit: Double, id: String, target: Int)]()
        var failures: [String] = []
        var worstLogit = 0.0
        func compare(_ method: String, _ got: [Float]?, _ ref: [Double]?, _ ref32: [Double]?, id: String, target: Int) {
            guard let got, let ref, let ref32 else { failures.append("\(id) \(method) \(target): missing"); return }
            let error = relativeError(got, ref)
            let limit = max(1e-4, 3 * relativeError(ref32, ref))
            guard error.isFinite, got.allSatisfy(\.isFinite) else { failures.append("\(id) \(method) \(target): non-finite"); return }
            if error > limit { failures.append("\(id) \(method) \(target): \(error) > \(limit)") }
            if error / limit > (worst[method].map { $0.error / $0.limit } ?? -1) { worst[method] = (error, limit, id, target) }
        }
        var pairs = 0
        for (r, result) in zip(records, results) {
            for (g, e) in zip(result.logits, r.f64.logits) { worstLogit = max(worstLogit, abs(Double(g) - e)) }
            if methods.contains(.rollout) {
                compare("rollout", result.rollout, r.f64.rollout, r.f32.rollout, id: r.id, target: -1)
            }
            let classes = Set(r.f64.perClass["attnlrp"]!.keys)
            XCTAssertEqual(Set(result.attributions.map(\.target)), classes, "\(r.id): the reference's classes")
            for a in result.attributions {
                let c = a.target
                pairs += 1
                for (name, method, got) in [("ixg", Methods.ixg, a.ixg), ("attnlrp", .attnlrp, a.attnlrp),
                                            ("cplrp", .cplrp, a.cplrp), ("ig", .ig, a.ig)] where methods.contains(method) {
                    compare(name, got, r.f64.perClass[name]?[c], r.f32.perClass[name]?[c], id: r.id, target: c)
                }
                // The delta is a sum of scores: measured against the scale of the scores.
                guard methods.contains(.ig) else { continue }
                if let delta = a.igDelta, let ref = r.f64.igDelta[c], let ref32 = r.f32.igDelta[c], let ig = r.f64.perClass["ig"]?[c] {
                    // [delta, ±scale]: the error's denominator is the scores' largest magnitude.
                    let scale = ig.map(abs).max() ?? 0
                    compare("ig_delta", [delta, Float(scale)], [ref, scale], [ref32, scale], id: r.id, target: c)
                } else {
                    failures.append("\(r.id) ig_delta \(c): missing")
                }
            }
        }
        let summary = ["ixg", "attnlrp", "cplrp", "ig", "ig_delta", "rollout"].map { m in
            worst[m].map { String(format: "%@ %.3g (limit %.3g, %@ class %d)", m, $0.error, $0.limit, $0.id, $0.target) } ?? "\(m) -"
        }.joined(separator: "; ")
        print("\(rules): \(records.count) examples, \(pairs) pairs; logits max abs diff \(String(format: "%.3g", worstLogit)); worst \(summary)")
        XCTAssertLessThanOrEqual(worstLogit, 1e-4, "logits")
        XCTAssertEqual(failures, [], summary)
    }
}
