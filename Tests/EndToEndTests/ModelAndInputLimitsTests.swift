import Foundation
import XCTest

/// Models as transformers 5 saves them, hostile configs, ids and record lines
/// (issue 9), through the built binary.
final class ModelAndInputLimitsTests: XCTestCase {
    let fixture = checkout.appendingPathComponent("Tests/Fixtures/hf5-tiny")

    /// transformers' own results for the fixture (tools/make_hf5_model.py).
    func expected() throws -> [[String: Any]] {
        let root = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: fixture.appendingPathComponent("expected.json"))) as? [String: Any])
        return try XCTUnwrap(root["records"] as? [[String: Any]])
    }

    /// A copy of the fixture's model directory with `edit` applied to one of its JSON files.
    func model(_ base: URL, _ name: String = "model", file: String = "config.json", edit: (inout [String: Any]) -> Void = { _ in }) throws -> URL {
        let dir = base.appendingPathComponent(name)
        try FileManager.default.copyItem(at: fixture.appendingPathComponent("model"), to: dir)
        let url = dir.appendingPathComponent(file)
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        edit(&object)
        try JSONSerialization.data(withJSONObject: object).write(to: url)
        return dir
    }

    func textsFile(_ base: URL) throws -> URL {
        let url = base.appendingPathComponent("texts.jsonl")
        let lines = try expected().map { r -> String in
            String(decoding: try JSONSerialization.data(withJSONObject: ["text": r["text"]!]), as: UTF8.self)
        }
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    func records(_ r: RunResult) throws -> [[String: Any]] {
        try jsonObjects(String(decoding: r.stdout, as: UTF8.self).split(separator: "\n").map(String.init))
    }

    func assertOneLineError(_ r: RunResult, contains parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 2, r.stderr, file: file, line: line)
        let lines = r.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, r.stderr, file: file, line: line)
        for p in parts { XCTAssertTrue(r.stderr.contains(p), "'\(p)' not in: \(r.stderr)", file: file, line: line) }
        XCTAssertFalse(r.stderr.contains("Fatal error") || r.stderr.contains("Stack dump"), r.stderr, file: file, line: line)
    }

    /// `BertForSequenceClassification(BertConfig(num_labels=2)).save_pretrained`
    /// plus `BertTokenizerFast(vocab).save_pretrained`: no id2label, no
    /// vocab.txt; runs unedited with transformers' tokens and logits.
    func testTransformers5ModelRunsUnedited() throws {
        let base = try temporaryDirectory(self)
        let config = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: fixture.appendingPathComponent("model/config.json"))) as? [String: Any])
        XCTAssertNil(config["id2label"], "the fixture is what transformers 5 writes: no id2label")
        let r = try runBinary(["-o", "-", "--model", fixture.appendingPathComponent("model").path, "--target", "LABEL_1",
                               try textsFile(base).path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = try records(r), want = try expected()
        XCTAssertEqual(out.count, want.count)
        var worst = 0.0
        for (o, w) in zip(out, want) {
            XCTAssertEqual(o["tokens"] as? [String], w["tokens"] as? [String])
            let logits = try XCTUnwrap(o["logits"] as? [Double]), ref = try XCTUnwrap(w["logits"] as? [Double])
            XCTAssertEqual(logits.count, 2)
            for (a, b) in zip(logits, ref) { worst = max(worst, abs(a - b)) }
            // Softmax of transformers' logits (two classes, single-label).
            let probs = try XCTUnwrap(o["probs"] as? [Double])
            XCTAssertEqual(probs[1], 1 / (1 + exp(ref[0] - ref[1])), accuracy: 1e-4)
            XCTAssertEqual((o["attributions"] as? [[String: Any]])?.map { $0["target"] as? Int }, [1], "LABEL_1 is class 1")
        }
        XCTAssertLessThan(worst, 1e-4, "logits against transformers 5.24 (float32)")
        print("hf5-tiny logits: worst absolute difference from transformers \(worst)")
    }

    /// num_labels (or id2label) that disagrees with the classifier's rows is
    /// refused naming both numbers; the default of 2 agrees.
    func testClassCountMustMatchTheClassifier() throws {
        let base = try temporaryDirectory(self)
        let input = try textsFile(base)
        let three = try model(base, "three") { $0["num_labels"] = 3 }
        assertOneLineError(try runBinary(["-o", "-", "--model", three.path, input.path]),
                           contains: ["classifier", "2 classes", "config.json 3", "num_labels 3"])
        let named = try model(base, "named") { $0["id2label"] = ["0": "a", "1": "b", "2": "c"] }
        assertOneLineError(try runBinary(["-o", "-", "--model", named.path, input.path]),
                           contains: ["classifier", "2 classes", "config.json 3", "id2label"])
        let two = try model(base, "two") { $0["num_labels"] = 2 }
        XCTAssertEqual(try runBinary(["-o", "-", "--model", two.path, "--methods", "lat", input.path]).status, 0)
    }

    /// Sizes near 1e12 or 2^62 are refused by the config's bounds, one line
    /// naming the field, before anything is allocated; a size within bounds
    /// that the weights do not have is refused by the tensor's shape.
    func testAbsurdConfigSizesAreOneLineErrors() throws {
        let base = try temporaryDirectory(self)
        let input = try textsFile(base)
        let cases: [(String, Any)] = [("intermediate_size", 1e12), ("vocab_size", 1e12), ("hidden_size", 1e12),
                                      ("max_position_embeddings", 1e12), ("type_vocab_size", 1 << 62),
                                      ("num_hidden_layers", 1e12), ("num_labels", 1e12), ("hidden_size", 1e300)]
        for (i, (key, value)) in cases.enumerated() {
            let dir = try model(base, "m\(i)") { $0[key] = value }
            let r = try runBinary(["-o", base.appendingPathComponent("out\(i)").path, "--model", dir.path, input.path])
            assertOneLineError(r, contains: ["config.json", "'\(key)'", "above the limit"])
            XCTAssertLessThan(r.stderr.count, 300, "a short line: \(r.stderr)")
        }
        let small = try model(base, "small") { $0["hidden_size"] = 32 }
        assertOneLineError(try runBinary(["-o", "-", "--model", small.path, input.path]),
                           contains: ["model.safetensors", "word_embeddings", "[5000, 16]", "[5000, 32]"])
        // convert reads the same config the same way.
        let converted = base.appendingPathComponent("converted")
        let dir = try model(base, "conv") { $0["intermediate_size"] = 1e12 }
        assertOneLineError(try runBinary(["convert", dir.appendingPathComponent("model.safetensors").path, "-o", converted.path]),
                           contains: ["'intermediate_size'", "above the limit"])
    }

    /// problem_type multi_label_classification: probs are independent sigmoids.
    func testMultiLabelProbabilitiesAreSigmoids() throws {
        let base = try temporaryDirectory(self)
        let dir = try model(base) { $0["problem_type"] = "multi_label_classification" }
        let r = try runBinary(["-o", "-", "--model", dir.path, "--methods", "lat", try textsFile(base).path])
        XCTAssertEqual(r.status, 0, r.stderr)
        for o in try records(r) {
            let logits = try XCTUnwrap(o["logits"] as? [Double]), probs = try XCTUnwrap(o["probs"] as? [Double])
            for (l, p) in zip(logits, probs) { XCTAssertEqual(p, 1 / (1 + exp(-l)), accuracy: 1e-6) }
            XCTAssertGreaterThan(abs(probs.reduce(0, +) - 1), 1e-3, "not a softmax")
            XCTAssertEqual(o["predicted"] as? Int, logits.firstIndex(of: logits.max()!))
        }
        let bad = try model(base, "bad") { $0["problem_type"] = "regression" }
        assertOneLineError(try runBinary(["-o", "-", "--model", bad.path, try textsFile(base).path]), contains: ["problem_type"])
    }

    /// tokenizer_config.json's do_lower_case false wins over a tokenizer.json
    /// that lowercases, as in transformers (tokens as transformers gives them).
    func testTokenizerConfigOverridesTokenizerJSONNormalizer() throws {
        let base = try temporaryDirectory(self)
        let dir = try model(base, file: "tokenizer_config.json") { $0["do_lower_case"] = false }
        let want = try expected()
        let input = try textsFile(base)
        let tokens = try runBinary(["tokenize", "--model", dir.path, input.path])
        XCTAssertEqual(tokens.status, 0, tokens.stderr)
        let attributed = try runBinary(["-o", "-", "--model", dir.path, "--methods", "lat", input.path])
        XCTAssertEqual(attributed.status, 0, attributed.stderr)
        for run in [tokens, attributed] {
            let got = try records(run).map { $0["tokens"] as? [String] }
            XCTAssertEqual(got, want.map { $0["cased_tokens"] as? [String] })
        }
        XCTAssertNotEqual(want.map { $0["cased_tokens"] as? [String] }, want.map { $0["tokens"] as? [String] }, "the case matters for these texts")
    }

    /// Numeric ids are written as the digits they were read as.
    func testNumericIdsKeepTheirText() throws {
        let base = try temporaryDirectory(self)
        let ids = ["1234567890123456789", "12345678901234567890123", "9007199254740993", "-17", "1.50", "1e3", "0"]
        var lines = ids.map { "{\"id\": \($0), \"text\": \"a good film\"}" }
        lines.append("{\"text\": \"a good film\", \"id\" : \"dev-1\"}")
        lines.append("{\"\\u0069d\": 18446744073709551617, \"text\": \"x\", \"nested\": {\"id\": 5}}")
        let input = base.appendingPathComponent("ids.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: input, atomically: true, encoding: .utf8)
        let want = ids + ["dev-1", "18446744073709551617"]
        for command in [["-o", "-", "--model", fixture.appendingPathComponent("model").path, "--methods", "lat"],
                        ["tokenize", "--model", fixture.appendingPathComponent("model").path]] {
            let r = try runBinary(command + [input.path])
            XCTAssertEqual(r.status, 0, r.stderr)
            let text = String(decoding: r.stdout, as: UTF8.self).split(separator: "\n")
            XCTAssertEqual(text.count, want.count)
            for (l, id) in zip(text, want) { XCTAssertTrue(l.contains("\"id\": \"\(id)\""), "\(id) in \(l)") }
        }
    }

    /// A line longer than --max-line-bytes is a bad record with its line
    /// number; the run goes on and exits 3.
    func testOverlongLineIsABadRecord() throws {
        let base = try temporaryDirectory(self)
        let input = base.appendingPathComponent("long.jsonl")
        var data = Data("{\"text\": \"a good film\"}\n{\"text\": \"".utf8)
        data.append(Data(repeating: 0x61, count: 3_000_000))
        data.append(Data("\"}\n{\"text\": \"a bad film\"}\n".utf8))
        data.append(Data(repeating: 0x7B, count: 2_000_000))   // the last line, no newline
        try data.write(to: input)
        let out = base.appendingPathComponent("out")
        let r = try runBinary(["-o", out.path, "--max-line-bytes", "1000000", "--model", fixture.appendingPathComponent("model").path,
                               "--methods", "lat", input.path])
        XCTAssertEqual(r.status, 3, r.stderr)
        XCTAssertEqual(try shardLines(out).compactMap { try jsonObjects([$0]).first?["index"] as? Int }, [0, 2])
        let errors = try jsonObjects(String(contentsOf: out.appendingPathComponent("errors.jsonl"), encoding: .utf8).split(separator: "\n").map(String.init))
        XCTAssertEqual(errors.map { $0["line"] as? Int }, [2, 4])
        XCTAssertEqual(errors.map { $0["index"] as? Int }, [1, 3])
        let length = "{\"text\": \"".utf8.count + 3_000_000 + 2
        XCTAssertTrue((errors.first?["reason"] as? String ?? "").contains("\(length) bytes is longer than --max-line-bytes 1000000"), "\(errors)")
        // Under the default (64 MiB) the same file is read whole.
        let t = try runBinary(["tokenize", "--model", fixture.appendingPathComponent("model").path, input.path])
        XCTAssertEqual(t.status, 3, "the last line is not JSON: \(t.stderr)")
        XCTAssertEqual(String(decoding: t.stdout, as: UTF8.self).split(separator: "\n").count, 3)
        let help = try runBinary(["attribute", "--help"])
        XCTAssertTrue(String(decoding: help.stdout, as: UTF8.self).contains("--max-line-bytes"))
        let zero = try runBinary(["-o", "-", "--max-line-bytes", "0", input.path])
        XCTAssertEqual(zero.status, 2, zero.stderr)
        XCTAssertTrue(zero.stderr.contains("--max-line-bytes must be at least 1"), zero.stderr)
    }

    /// A stream with no newline (/dev/zero) is read in bounded memory.
    func testStreamWithoutNewlinesStaysInBoundedMemory() throws {
        let base = try temporaryDirectory(self)
        let p = Process()
        p.executableURL = binary
        p.arguments = ["-o", base.appendingPathComponent("out").path, "--model", fixture.appendingPathComponent("model").path,
                       "--format", "jsonl", "/dev/zero"]
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        var peakKB = 0
        for _ in 0..<40 {
            usleep(100_000)
            guard let status = try? String(contentsOfFile: "/proc/\(p.processIdentifier)/status", encoding: .utf8),
                  let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { continue }
            peakKB = Int(line.split(separator: " ").dropFirst().first ?? "") ?? peakKB
        }
        XCTAssertTrue(p.isRunning, "still reading the endless line")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        // The line buffer stops at 64 MiB (twice that while it grows); 4 s of
        // /dev/zero held whole would be gigabytes.
        XCTAssertGreaterThan(peakKB, 0)
        XCTAssertLessThan(peakKB, 400_000, "peak resident memory \(peakKB) kB")
        print("/dev/zero for 4 s: peak resident memory \(peakKB) kB")
    }
}
