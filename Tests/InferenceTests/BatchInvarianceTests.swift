import Foundation
import XCTest
@testable import Inference

/// CONTRACT.md section 5: an example's values do not depend on its micro-batch
/// beyond float32 rounding (no padding, nothing shared between examples).
final class BatchInvarianceTests: XCTestCase {
    func testAloneEqualsMixedBatches() throws {
        let records = try ReferenceRecord.load("tiny-bert.jsonl")
        let engine = Engine(model: try BertModel(directory: Fixtures.tinyBert))
        let inputs = records.prefix(24).map(\.input)
        XCTAssertGreaterThan(Set(inputs.map(\.ids.count)).count, 5, "the batch should mix lengths")
        let alone = try inputs.map { try engine.run([$0], methods: .all, targets: .all)[0] }
        // Mixed: shortest and longest together, in an odd order and odd batch sizes.
        let order = inputs.indices.sorted { (inputs[$0].ids.count, $0) < (inputs[$1].ids.count, $1) }
        let shuffled = zip(order.prefix(12), order.suffix(12).reversed()).flatMap { [$0, $1] }
        var mixed = [ExampleResult?](repeating: nil, count: inputs.count)
        var start = 0
        for size in [1, 5, 7, 3, 8] where start < shuffled.count {
            let idx = Array(shuffled[start..<min(start + size, shuffled.count)])
            let out = try engine.run(idx.map { inputs[$0] }, methods: .all, targets: .all)
            for (i, r) in zip(idx, out) { mixed[i] = r }
            start += size
        }
        var worst = 0.0, worstLRP = 0.0, parts = [String: Double]()
        for (a, m) in zip(alone, mixed) {
            let m = try XCTUnwrap(m)
            XCTAssertEqual(a.predicted, m.predicted)
            parts["logits", default: 0] = max(parts["logits", default: 0], relativeError(m.logits, a.logits.map(Double.init)))
            parts["lat", default: 0] = max(parts["lat", default: 0], relativeError(m.lat!, a.lat!.map(Double.init)))
            for (x, y) in zip(a.attributions, m.attributions) {
                XCTAssertEqual(x.target, y.target)
                parts["gs", default: 0] = max(parts["gs", default: 0], relativeError(y.gs!, x.gs!.map(Double.init)))
                parts["gi", default: 0] = max(parts["gi", default: 0], relativeError(y.gi!, x.gi!.map(Double.init)))
                worstLRP = max(worstLRP, relativeError(y.lrp!, x.lrp!.map(Double.init)))
            }
        }
        worst = max(parts["gs"]!, parts["gi"]!)
        print("batch invariance: worst relative difference \(parts) lrp: \(worstLRP)")
        // OpenBLAS picks other kernels for other matrix sizes (on AVX-512 machines a
        // "small matrix" kernel below ~10⁶ multiply-adds), so a row's products can
        // round differently in another micro-batch: 1-2 ulp in the forward pass.
        // The backward passes amplify that (gs/gi are squared norms of gradients
        // through LayerNorms; on these examples the seed's own float32 and ours
        // differ from float64 by up to ~2e-4), so the bound is set well below the
        // contract's 1e-3 rather than at single-rounding level.
        XCTAssertLessThanOrEqual(parts["logits"]!, 1e-6)
        XCTAssertLessThanOrEqual(parts["lat"]!, 1e-6)
        XCTAssertLessThanOrEqual(worst, 5e-4)
        XCTAssertLessThanOrEqual(worstLRP, 1e-3)
    }

    func testTargetsAndMethodsSelection() throws {
        let records = try ReferenceRecord.load("tiny-bert.jsonl")
        let engine = Engine(model: try BertModel(directory: Fixtures.tinyBert))
        let inputs = records.prefix(4).map(\.input)
        let full = try engine.run(inputs, methods: .all, targets: .all)
        let predicted = try engine.run(inputs, methods: [.lrp], targets: .predicted)
        for (f, p) in zip(full, predicted) {
            XCTAssertNil(p.lat)
            XCTAssertEqual(p.attributions.map(\.target), [f.predicted])
            XCTAssertNil(p.attributions[0].gs)
            // Other rows in the backward sgemms: equal up to rounding (see above).
            XCTAssertLessThanOrEqual(relativeError(p.attributions[0].lrp!, f.attributions[f.predicted].lrp!.map(Double.init)), 1e-3)
        }
        let chosen = try engine.run(inputs, methods: [.gs, .lat], targets: .classes([2, 0]))
        for (f, c) in zip(full, chosen) {
            XCTAssertEqual(c.attributions.map(\.target), [2, 0])
            XCTAssertLessThanOrEqual(relativeError(c.attributions[0].gs!, f.attributions[2].gs!.map(Double.init)), 5e-4)
            XCTAssertNil(c.attributions[0].lrp)
            XCTAssertEqual(c.lat!, f.lat!)
        }
        let forward = try engine.run(inputs, methods: [], targets: .all)
        XCTAssertEqual(forward.map(\.logits), full.map(\.logits))
        XCTAssertTrue(forward.allSatisfy { $0.attributions.isEmpty || $0.attributions.allSatisfy { $0.gs == nil && $0.lrp == nil } })
        XCTAssertThrowsError(try engine.run(inputs, methods: .all, targets: .classes([3])))
        XCTAssertThrowsError(try engine.run([EncodedInput(ids: [101, 99999, 102], segments: [0, 0, 0])], methods: .all, targets: .all))
    }

    func testModelErrorsNameTheFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bertlrp-engine-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertThrowsError(try BertModel(directory: dir)) { error in
            XCTAssertEqual(error as? ModelError, .missingFile(file: dir.appendingPathComponent("config.json").path))
        }
        // A config that does not fit the weights: the shape error names the tensor.
        var config = try String(contentsOf: Fixtures.tinyBert.appendingPathComponent("config.json"), encoding: .utf8)
        config = config.replacingOccurrences(of: "\"intermediate_size\": 64", with: "\"intermediate_size\": 65")
        try config.write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(at: Fixtures.tinyBert.appendingPathComponent("model.safetensors"),
                                         to: dir.appendingPathComponent("model.safetensors"))
        XCTAssertThrowsError(try BertModel(directory: dir)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("model.safetensors") && text.contains("intermediate.dense.weight"), text)
        }
    }
}
