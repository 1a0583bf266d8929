import Foundation
import IO
import XCTest
@testable import Inference

/// docs/CONTRACT.md section 5: an example's values do not depend on its micro-batch
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
        // The backward passes amplify that: gs/gi of class 0 of tiny-bert's s16 and
        // s19 are badly conditioned (their gradient nearly cancels), and move by
        // up to ~5e-4 with any change of rounding (the seed's own float32 is 1.2e-4
        // off its float64 there; ours moved from 8e-5 to 3e-4 when only the
        // GELU's last bits changed); every other value agrees to ~1e-6. So gs/gi are held to the
        // contract's 1e-3, logits and LAT to 1e-6.
        XCTAssertLessThanOrEqual(parts["logits"]!, 1e-6)
        XCTAssertLessThanOrEqual(parts["lat"]!, 1e-6)
        XCTAssertLessThanOrEqual(worst, 1e-3)
        XCTAssertLessThanOrEqual(worstLRP, 1e-3)
    }

    /// Section 5b's methods (with the seed's, in one call, so that their
    /// blocks share the backward's sgemm calls): each example alone equals it
    /// in mixed micro-batches, pairs and singles together, every class; and
    /// each method asked alone equals it asked with the others (ixg alone is
    /// seeded with 1, beside gs/gi it reuses their f_c-seeded gradient).
    func testSection5bMethodsDoNotDependOnBatchOrCompany() throws {
        let records = try ReferenceRecord.load("tiny-bert.jsonl")
        let engine = Engine(model: try BertModel(directory: Fixtures.tinyBert))
        engine.igSteps = 8
        let inputs = records.prefix(24).map(\.input) + records.filter { $0.id.hasPrefix("p") }.prefix(6).map(\.input)
        XCTAssertTrue(inputs.contains { Set($0.segments).count == 2 }, "pairs among the inputs")
        let methods: Methods = .every
        let alone = try inputs.map { try engine.run([$0], methods: methods, targets: .all)[0] }
        let order = inputs.indices.sorted { (inputs[$0].ids.count, $0) < (inputs[$1].ids.count, $1) }
        let shuffled = zip(order.prefix(15), order.suffix(15).reversed()).flatMap { [$0, $1] }
        var mixed = [ExampleResult?](repeating: nil, count: inputs.count)
        var start = 0
        for size in [1, 5, 7, 3, 8, 6] where start < shuffled.count {
            let idx = Array(shuffled[start..<min(start + size, shuffled.count)])
            for (i, r) in zip(idx, try engine.run(idx.map { inputs[$0] }, methods: methods, targets: .all)) { mixed[i] = r }
            start += size
        }
        var worst = [String: Double]()
        func note(_ name: String, _ got: [Float]?, _ want: [Float]?) {
            guard let got, let want else { XCTFail("\(name) missing"); return }
            worst[name] = max(worst[name] ?? 0, relativeError(got, want.map(Double.init)))
        }
        for (a, m) in zip(alone, mixed) {
            let m = try XCTUnwrap(m)
            note("rollout", m.rollout, a.rollout)
            for (x, y) in zip(a.attributions, m.attributions) {
                note("ixg", y.ixg, x.ixg); note("attnlrp", y.attnlrp, x.attnlrp); note("cplrp", y.cplrp, x.cplrp)
                note("ig", y.ig, x.ig)
                note("ig_delta", y.igDelta.map { [$0, 1] }, x.igDelta.map { [$0, 1] })
            }
        }
        // Each method on its own, all examples in one batch.
        var company = [String: Double]()
        for (name, method) in [("ixg", Methods.ixg), ("attnlrp", .attnlrp), ("cplrp", .cplrp), ("ig", .ig), ("rollout", .rollout)] {
            let own = try engine.run(inputs, methods: method, targets: .all)
            for (a, o) in zip(alone, own) {
                XCTAssertEqual(o.lat, nil)
                if method == .rollout {
                    company[name] = max(company[name] ?? 0, relativeError(o.rollout!, a.rollout!.map(Double.init)))
                    continue
                }
                for (x, y) in zip(a.attributions, o.attributions) {
                    XCTAssertNil(y.gs)
                    let pick: (Attribution) -> [Float]? = { [$0.ixg, $0.attnlrp, $0.cplrp, $0.ig][[Methods.ixg, .attnlrp, .cplrp, .ig].firstIndex(of: method)!] }
                    company[name] = max(company[name] ?? 0, relativeError(try XCTUnwrap(pick(y)), pick(x)!.map(Double.init)))
                }
            }
        }
        print("section 5b batch invariance: worst relative difference \(worst); alone vs with the others \(company)")
        // Float32 rounding only (other sgemm kernels for other matrix sizes); the contract's tolerance is 1e-4.
        for (name, value) in worst.merging(company, uniquingKeysWith: max) { XCTAssertLessThanOrEqual(value, 1e-5, name) }
        // The scratch estimate covers what the engine reserved, integrated gradients' chunks included.
        let tokens = inputs.reduce(0) { $0 + $1.ids.count }, longest = inputs.map(\.ids.count).max()!
        let fresh = Engine(model: engine.model)
        _ = try fresh.run(inputs, methods: methods, targets: .all)
        XCTAssertLessThanOrEqual(fresh.reservedBytes,
                                 Int(1.3 * Double(Engine.scratchBytes(config: engine.model.config, tokens: tokens, longest: longest,
                                                                      targets: 3, methods: methods))) + 4096)
    }

    /// Integrated gradients converges: with many steps the delta (completeness)
    /// falls towards zero, and the quadrature's weights sum to one.
    func testIntegratedGradientsCompleteness() throws {
        for n in [1, 2, 5, 32, 100] {
            let (x, w) = gaussLegendre(n)
            XCTAssertEqual(w.reduce(0, +), 1, accuracy: 1e-13)
            XCTAssertEqual(zip(x, w).reduce(0) { $0 + $1.0 * $1.1 }, 0.5, accuracy: 1e-13)
            XCTAssertEqual(x, x.sorted())
            // Exact for polynomials of degree 2n − 1: ∫₀¹ α^(2n−1) dα = 1/(2n).
            XCTAssertEqual(zip(x, w).reduce(0) { $0 + pow($1.0, Double(2 * n - 1)) * $1.1 }, 1 / Double(2 * n), accuracy: 1e-12)
        }
        let inputs = try ReferenceRecord.load("tiny-bert.jsonl").prefix(6).map(\.input)
        let engine = Engine(model: try BertModel(directory: Fixtures.tinyBert, relevance: false))
        var deltas: [Double] = []
        for steps in [2, 64] {
            engine.igSteps = steps
            let r = try engine.run(inputs, methods: .ig, targets: .all)
            deltas.append(r.flatMap(\.attributions).map { Double(abs($0.igDelta!)) }.max()!)
        }
        print("ig: largest |delta| with 2 steps \(deltas[0]), with 64 steps \(deltas[1])")
        XCTAssertLessThan(deltas[1], 1e-3)
        XCTAssertLessThan(deltas[1], deltas[0])
    }

    /// A model loaded without the alpha-beta weights (a run without `lrp`)
    /// gives the same numbers, to the bit, for every other method.
    func testModelWithoutRelevanceWeightsGivesTheSameValues() throws {
        let inputs = try ReferenceRecord.load("tiny-bert.jsonl").prefix(8).map(\.input)
        let full = try BertModel(directory: Fixtures.tinyBert)
        let lean = try BertModel(directory: Fixtures.tinyBert, relevance: false)
        XCTAssertTrue(full.relevance)
        XCTAssertFalse(lean.relevance)
        let methods: Methods = [.gs, .gi, .lat]
        let a = try Engine(model: full).run(inputs, methods: methods, targets: .all)
        let b = try Engine(model: lean).run(inputs, methods: methods, targets: .all)
        for (x, y) in zip(a, b) {
            XCTAssertEqual(x.logits, y.logits)
            XCTAssertEqual(x.lat, y.lat)
            XCTAssertEqual(x.attributions.map(\.gs), y.attributions.map(\.gs))
            XCTAssertEqual(x.attributions.map(\.gi), y.attributions.map(\.gi))
            XCTAssertTrue(y.attributions.allSatisfy { $0.lrp == nil })
        }
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
            // With lrp the forward's dense outputs are the sums zp + zn: the same values to float32 rounding.
            XCTAssertLessThanOrEqual(relativeError(c.lat!, f.lat!.map(Double.init)), 1e-5)
        }
        // One selection per example: the same as running each selection on its own.
        let perExample = try engine.run(inputs, methods: [.gs], targets: [.classes([1]), .predicted, .all, .classes([])])
        XCTAssertEqual(perExample.map { $0.attributions.map(\.target) }, [[1], [full[1].predicted], [0, 1, 2], []])
        XCTAssertLessThanOrEqual(relativeError(perExample[2].attributions[2].gs!, full[2].attributions[2].gs!.map(Double.init)), 5e-4)
        // The scratch estimate covers what the engine reserved.
        let tokens = inputs.reduce(0) { $0 + $1.ids.count }, longest = inputs.map(\.ids.count).max()!
        let fresh = Engine(model: engine.model)
        _ = try fresh.run(inputs, methods: .all, targets: .all)
        XCTAssertLessThanOrEqual(fresh.reservedBytes,
                                 Int(1.3 * Double(Engine.scratchBytes(config: engine.model.config, tokens: tokens, longest: longest,
                                                                      targets: 3, methods: .all))) + 4096)
        let forward = try engine.run(inputs, methods: [], targets: .all)
        // Without lrp the forward is the same to the bit whatever else is asked; with it, to float32 rounding.
        XCTAssertEqual(forward.map(\.logits), chosen.map(\.logits))
        XCTAssertEqual(chosen.map(\.lat), try engine.run(inputs, methods: [.lat], targets: .all).map(\.lat))
        for (a, b) in zip(forward, full) {
            XCTAssertLessThanOrEqual(zip(a.logits, b.logits).map { abs($0 - $1) }.max()!, 1e-5)
        }
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
        // A NaN in the weights (a damaged file, a diverged training run) is refused, naming the tensor.
        try FileManager.default.removeItem(at: dir.appendingPathComponent("config.json"))
        try FileManager.default.copyItem(at: Fixtures.tinyBert.appendingPathComponent("config.json"), to: dir.appendingPathComponent("config.json"))
        let weights = dir.appendingPathComponent("model.safetensors")
        let name = "bert.encoder.layer.1.output.dense.weight"
        let info = try XCTUnwrap(try SafeTensorsFile(url: weights).tensors[name])
        var bytes = [UInt8](try Data(contentsOf: weights))
        let at = 8 + Int(UInt64(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })) + info.begin + 40
        withUnsafeBytes(of: Float.nan.bitPattern.littleEndian) { for k in 0..<4 { bytes[at + k] = $0[k] } }
        try Data(bytes).write(to: weights)
        XCTAssertThrowsError(try BertModel(directory: dir)) { error in
            XCTAssertEqual("\(error)", "\(weights.path): tensor '\(name)' holds NaN or infinite values")
        }
        // Architectures this engine does not compute are refused by name, not run wrongly.
        for (key, value) in [("hidden_act", "gelu_new"), ("position_embedding_type", "relative_key")] {
            let original = try String(contentsOf: Fixtures.tinyBert.appendingPathComponent("config.json"), encoding: .utf8)
            try original.replacingOccurrences(of: "\"hidden_act\": \"gelu\",", with: "\"\(key)\": \"\(value)\",")
                .write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try BertModel(directory: dir)) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains("config.json") && text.contains("\(key) '\(value)' is not supported"), text)
            }
        }
    }
}

final class ShapeTests: XCTestCase {
    /// A one-layer model (its last layer is also its first) and one-token
    /// inputs run and give finite values of the right lengths.
    func testOneLayerAndOneToken() throws {
        let config = ModelConfig(hiddenSize: 16, numLayers: 1, numHeads: 2, intermediateSize: 32, maxPositions: 8,
                                 typeVocabSize: 2, vocabSize: 50, labels: ["a", "b", "c"])
        let engine = Engine(model: BertModel(randomWithConfig: config, seed: 7))
        let inputs = [EncodedInput(ids: [1], segments: [0]), EncodedInput(ids: [1, 5, 9, 2, 3], segments: [0, 0, 1, 1, 1])]
        let results = try engine.run(inputs, methods: .all, targets: .all)
        for (input, r) in zip(inputs, results) {
            XCTAssertEqual(r.lat?.count, input.ids.count)
            XCTAssertEqual(r.attributions.count, 3)
            for a in r.attributions {
                for v in [a.gs!, a.gi!, a.lrp!] {
                    XCTAssertEqual(v.count, input.ids.count)
                    XCTAssertTrue(v.allSatisfy(\.isFinite))
                }
            }
        }
        // LAT of one token through one layer: the sum over heads of A[0, 0] = 1.
        XCTAssertEqual(results[0].lat![0], 2, accuracy: 1e-6)
        XCTAssertThrowsError(try engine.run([EncodedInput(ids: [Int32](repeating: 1, count: 9), segments: [Int32](repeating: 0, count: 9))],
                                            methods: .all, targets: .predicted))
    }
}
