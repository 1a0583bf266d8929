import Foundation
import XCTest
@testable import Inference

/// The engine against the seed's own PyTorch outputs (Tests/Fixtures/reference),
/// every example and every class, with the tolerances of docs/CONTRACT.md section 5.
final class ReferenceTests: XCTestCase {
    // Small matrices: one OpenBLAS thread is faster, and the machine is shared.
    override class func setUp() { Engine.setBLASThreads(1) }

    func testTinyBert() throws {
        try check(model: Fixtures.tinyBert, reference: "tiny-bert.jsonl")
    }

    func testMiniLMSST2() throws {
        try check(model: Fixtures.miniLM, reference: "minilm-sst2.jsonl")
    }

    /// Further examples made the same way, not in shared/ (Tests/Fixtures/reference-extra/README.md).
    func testTinyBertExtra() throws {
        try check(model: Fixtures.tinyBert, reference: "../reference-extra/tiny-bert-extra.jsonl")
    }

    func testMiniLMSST2Extra() throws {
        try check(model: Fixtures.miniLM, reference: "../reference-extra/minilm-sst2-extra.jsonl")
    }

    private struct Worst {
        var error = 0.0, limit = 0.0, id = "", target = -1
        var ratio: Double { limit == 0 ? 0 : error / limit }
        mutating func note(_ error: Double, limit: Double, id: String, target: Int) {
            if error / limit > ratio || (ratio == 0 && error > self.error) {
                self = Worst(error: error, limit: limit, id: id, target: target)
            }
        }
        var text: String { String(format: "%.3g (limit %.3g, %@ class %d)", error, limit, id, target) }
    }

    private func check(model directory: URL, reference: String) throws {
        let records = try ReferenceRecord.load(reference)
        let model = try BertModel(directory: directory)
        let engine = Engine(model: model)
        // Micro-batches of 8 examples of different lengths, in file order.
        var results: [ExampleResult] = []
        var start = 0
        while start < records.count {
            let batch = records[start..<min(start + 8, records.count)].map(\.input)
            results += try engine.run(batch, methods: .all, targets: .all)
            start += 8
        }
        var worstLogit = 0.0, wrongPredictions: [String] = []
        var worst = [String: Worst]()
        var failures: [String] = []
        var lrpOver = 0, lrpPairs = 0, maxLrpRatio = 0.0
        for (record, result) in zip(records, results) {
            let f64 = record.f64, f32 = record.f32
            for (g, r) in zip(result.logits, f64.logits) { worstLogit = max(worstLogit, abs(Double(g) - r)) }
            let predicted = f64.logits.indices.max { f64.logits[$0] < f64.logits[$1] }!
            if result.predicted != predicted { wrongPredictions.append(record.id) }
            func compare(_ method: String, _ got: [Float]?, _ ref: [Double], _ seed: [Double], floor: Double, target: Int) -> Double {
                guard let got else { failures.append("\(record.id) \(method): missing"); return .infinity }
                let error = relativeError(got, ref)
                // NaN compares false with every limit: count it as a failure explicitly.
                guard error.isFinite, got.allSatisfy(\.isFinite) else {
                    failures.append("\(record.id) \(method) \(target): non-finite values")
                    return .infinity
                }
                let limit = max(floor, 3 * relativeError(seed, ref))
                worst[method, default: Worst()].note(error, limit: limit, id: record.id, target: target)
                return error / limit
            }
            if compare("lat", result.lat, f64.lat, f32.lat, floor: 1e-3, target: -1) > 1 {
                failures.append("\(record.id) lat")
            }
            XCTAssertEqual(result.attributions.map(\.target), Array(f64.logits.indices))
            for a in result.attributions {
                let c = a.target
                if compare("gs", a.gs, f64.gs[c], f32.gs[c], floor: 1e-3, target: c) > 1 { failures.append("\(record.id) gs \(c)") }
                if compare("gi", a.gi, f64.gi[c], f32.gi[c], floor: 1e-3, target: c) > 1 { failures.append("\(record.id) gi \(c)") }
                let ratio = compare("lrp", a.lrp, f64.lrp[c], f32.lrp[c], floor: 1e-2, target: c)
                lrpPairs += 1
                if ratio > 1 { lrpOver += 1 }
                if let lrp = a.lrp { maxLrpRatio = max(maxLrpRatio, relativeError(lrp, f64.lrp[c])) }
            }
        }
        let summary = ["lat", "gs", "gi", "lrp"].map { "\($0): \(worst[$0]?.text ?? "-")" }.joined(separator: "; ")
        print("\(reference): \(records.count) examples; logits max abs diff \(String(format: "%.3g", worstLogit)); worst \(summary); lrp over its limit: \(lrpOver)/\(lrpPairs), max lrp error \(String(format: "%.3g", maxLrpRatio))")
        XCTAssertLessThanOrEqual(worstLogit, 1e-4, "logits")
        XCTAssertEqual(wrongPredictions, [], "predicted class differs")
        XCTAssertEqual(failures, [], "non-finite values, or gs/gi/lat beyond max(1e-3, 3 x seed f32 error): \(summary)")
        XCTAssertLessThanOrEqual(Double(lrpOver), 0.01 * Double(lrpPairs), "lrp: more than 1% of pairs beyond their limit; \(summary)")
        XCTAssertLessThanOrEqual(maxLrpRatio, 1e-1, "lrp: some pair beyond 1e-1")
    }
}
