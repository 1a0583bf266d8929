import Foundation
import XCTest

/// `bertlrp-batch convert` as a user runs it: each checkpoint layout of the
/// tiny model becomes a model directory the attribute command explains with
/// the original's numbers; a damaged checkpoint gives one line, exit 2, and
/// leaves no output directory behind (docs/CONTRACT.md sections 4 and 6).
final class ConvertEndToEndTests: XCTestCase {
    let tiny = checkout.appendingPathComponent("Tests/Fixtures/tiny-bert")

    /// The records of `input` explained by `model` (all classes), as JSONL lines.
    func explain(_ model: URL, _ input: URL) throws -> [String] {
        let r = try runBinary(["--model", model.path, "--max-seq-length", "64", "--target", "all", "-o", "-", input.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        return String(decoding: r.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    func testEveryLayoutConvertsToAModelWithTheOriginalsOutputs() throws {
        let base = try temporaryDirectory(self)
        let texts = try String(contentsOf: checkout.appendingPathComponent("Tests/Fixtures/reference/tiny-bert.texts.jsonl"), encoding: .utf8)
        let input = base.appendingPathComponent("texts.jsonl")
        try (texts.split(separator: "\n").prefix(12).joined(separator: "\n") + "\n").write(to: input, atomically: true, encoding: .utf8)
        let originalLines = try explain(tiny.appendingPathComponent("hf"), input)
        let original = try jsonObjects(originalLines)
        XCTAssertEqual(original.count, 12)

        // (layout, what the summary names, logits tolerance: float16 weights round)
        let layouts: [(String, String, Double)] = [
            ("tf", "TensorFlow checkpoint", 0), ("torch-hf", "torch.save", 0),
            ("torch-seed", "torch.save", 0), ("torch-hf-fp16", "torch.save", 2e-3),
        ]
        for (layout, kind, tolerance) in layouts {
            let out = base.appendingPathComponent("model-\(layout)")
            let r = try runBinary(["convert", tiny.appendingPathComponent(layout).path, "-o", out.path,
                                   "--labels", "negative,neutral,positive"])
            XCTAssertEqual(r.status, 0, "\(layout): \(r.stderr)")
            let summary = String(decoding: r.stdout, as: UTF8.self) + r.stderr
            XCTAssertTrue(summary.contains(kind) && summary.contains("tensors:") && summary.contains("classes: 3"), summary)
            for file in ["config.json", "model.safetensors", "vocab.txt"] {
                XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(file).path), "\(layout): \(file)")
            }
            let convertedLines = try explain(out, input)
            let converted = try jsonObjects(convertedLines)
            XCTAssertEqual(converted.count, original.count)
            var worst = 0.0
            for (a, b) in zip(converted, original) {
                XCTAssertEqual(a["tokens"] as? [String], b["tokens"] as? [String], layout)
                XCTAssertEqual(a["predicted"] as? Int, b["predicted"] as? Int, layout)
                let la = try XCTUnwrap(a["logits"] as? [Double]), lb = try XCTUnwrap(b["logits"] as? [Double])
                worst = max(worst, zip(la, lb).map { abs($0 - $1) }.max() ?? 0)
            }
            print("convert \(layout): worst logit difference from the original \(worst)")
            XCTAssertLessThanOrEqual(worst, tolerance, layout)
            if tolerance == 0 {
                // Float32 sources: the same weights, so every record is the same, byte for byte.
                XCTAssertTrue(convertedLines == originalLines, "\(layout): records differ from the original model's")
            }
        }
    }

    func testDamagedCheckpointIsOneLineExitTwoAndNothingLeft() throws {
        let base = try temporaryDirectory(self)
        let fm = FileManager.default
        // (layout, file, damage, words the message holds)
        let cases: [(String, String, (inout [UInt8]) -> Void, String)] = [
            ("torch-hf", "pytorch_model.bin", { $0[8000] ^= 0x01 }, "checksum does not match"),
            ("tf", "bert_model.ckpt.data-00000-of-00001", { $0.removeLast($0.count / 2) }, "truncated"),
            ("torch-seed", "checkpoint.bin", { $0[5] ^= 0x01 }, "bad magic number"),
        ]
        for (layout, file, damage, words) in cases {
            let src = base.appendingPathComponent("src-\(layout)")
            try fm.copyItem(at: tiny.appendingPathComponent(layout), to: src)
            let target = src.appendingPathComponent(file)
            var bytes = [UInt8](try Data(contentsOf: target))
            damage(&bytes)
            try Data(bytes).write(to: target)
            let out = base.appendingPathComponent("out-\(layout)")
            let r = try runBinary(["convert", src.path, "-o", out.path])
            XCTAssertEqual(r.status, 2, "\(layout): \(r.stderr)")
            let lines = r.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains(target.path) && r.stderr.contains(words), r.stderr)
            XCTAssertFalse(fm.fileExists(atPath: out.path), "\(layout): output directory left behind")
            // Nor any temporary folder beside it.
            XCTAssertEqual(try fm.contentsOfDirectory(atPath: base.path).filter { $0.contains("out-\(layout)") }, [], layout)
        }
    }
}
