import Foundation
import XCTest
import IO
@testable import Inference

/// Issue 3: a checkpoint converted by `CheckpointConverter` gives the engine the
/// same logits as the original Hugging Face model directory.
final class ConvertedModelTests: XCTestCase {
    override class func setUp() { Engine.setBLASThreads(1) }

    func testEveryCheckpointLayoutGivesTheOriginalLogits() throws {
        let records = try ReferenceRecord.load("tiny-bert.jsonl")
        let inputs = records.map(\.input)
        let original = try Engine(model: BertModel(directory: Fixtures.tinyBert))
            .run(inputs, methods: .lat, targets: .predicted)
        let layouts = Fixtures.checkout.appendingPathComponent("Tests/Fixtures/tiny-bert")
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("converted-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }

        // float32 sources hold the same values: logits agree to float32 rounding.
        // The float16 source holds them rounded to float16 (relative 2^-11):
        // logits then move by up to ~1e-3 on this model.
        for (layout, tolerance) in [("tf", 1e-6), ("torch-hf", 1e-6), ("torch-seed", 1e-6), ("torch-hf-fp16", 1e-2)] {
            let out = scratch.appendingPathComponent(layout)
            _ = try CheckpointConverter.convert(source: layouts.appendingPathComponent(layout), output: out)
            let converted = try Engine(model: BertModel(directory: out)).run(inputs, methods: .lat, targets: .predicted)
            var worst = 0.0
            for (a, b) in zip(converted, original) {
                for (x, y) in zip(a.logits, b.logits) { worst = max(worst, abs(Double(x) - Double(y))) }
                XCTAssertEqual(a.predicted, b.predicted, layout)
            }
            XCTAssertLessThanOrEqual(worst, tolerance, "\(layout): worst logit difference \(worst)")
            print("converted \(layout): worst logit difference \(worst) over \(inputs.count) examples")
        }
    }
}
