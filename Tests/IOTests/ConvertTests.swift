import Foundation
import XCTest
@testable import IO

/// `bertlrp-batch convert`: every fixture layout becomes the Hugging Face
/// model directory, value for value; bad checkpoints fail with one line
/// naming the file and leave nothing behind.
final class ConvertTests: XCTestCase {
    // MARK: the four fixture layouts

    func testTensorFlowCheckpoint() throws {
        let s = try assertConvertsToTruth(TestPaths.tiny.appendingPathComponent("tf/bert_model.ckpt"))
        XCTAssertEqual(s.format, "TensorFlow checkpoint")
        XCTAssertEqual(s.tensorsWritten, 41)
        XCTAssertTrue(s.skipped.contains { $0.name == "global_step" && $0.reason == .optimizer })
        XCTAssertTrue(s.skipped.contains { $0.name.hasSuffix("/adam_m") })
        XCTAssertEqual(s.labels, ["LABEL_0", "LABEL_1", "LABEL_2"])
        // The directory and the .index file name the same checkpoint.
        _ = try assertConvertsToTruth(TestPaths.tiny.appendingPathComponent("tf"))
        _ = try assertConvertsToTruth(TestPaths.tiny.appendingPathComponent("tf/bert_model.ckpt.index"))
    }

    func testTorchZip() throws {
        let s = try assertConvertsToTruth(TestPaths.tiny.appendingPathComponent("torch-hf/pytorch_model.bin"))
        XCTAssertEqual(s.format, "torch.save zip")
        XCTAssertEqual(s.labels, ["negative", "neutral", "positive"])
        XCTAssertEqual(s.skipped, [])
    }

    func testTorchZipFloat16() throws {
        let s = try assertConvertsToTruth(TestPaths.tiny.appendingPathComponent("torch-hf-fp16"), rounded: true)
        XCTAssertEqual(s.sourceDTypes, ["F16"])
    }

    func testBertLRPLegacyCheckpoint() throws {
        let s = try assertConvertsToTruth(TestPaths.tiny.appendingPathComponent("torch-seed/checkpoint.bin"),
                                          options: ConversionOptions(labels: ["negative", "neutral", "positive"]))
        XCTAssertEqual(s.format, "torch.save legacy")
        XCTAssertEqual(s.labels, ["negative", "neutral", "positive"])
    }

    func testSafetensorsSourceAndFloat16Output() throws {
        let dir = try TestPaths.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("m16")
        _ = try CheckpointConverter.convert(source: TestPaths.tiny.appendingPathComponent("tf"), output: out,
                                            options: ConversionOptions(dtype: .f16))
        let st = try SafeTensorsFile(url: out.appendingPathComponent("model.safetensors"))
        let truth = try loadFloats(truthURL)
        for (name, info) in st.tensors {
            XCTAssertEqual(info.dtype, .f16)
            let bits: [UInt16] = st.withBytes(of: info) { raw in (0..<info.count).map { raw.u16(2 * $0) } }
            XCTAssertEqual(bits, truth[name]!.values.map(HalfFloat.fromFloat), name)
        }
        // And back: the f16 model directory is itself a source.
        _ = try assertConvertsToTruth(out.appendingPathComponent("model.safetensors"), rounded: true)
    }

    /// The blocked transpose against the definition, whole and by bands of
    /// output rows, on sizes that leave remainders in every loop.
    func testTransposeWholeAndByBands() {
        for (rows, cols) in [(37, 150), (8, 64), (3, 5), (130, 67)] {
            let src = (0..<rows * cols).map { Float($0) * 0.5 - 7 }
            var expected = [Float](repeating: 0, count: rows * cols)
            for i in 0..<rows { for j in 0..<cols { expected[j * rows + i] = src[i * cols + j] } }
            var whole = [Float](repeating: .nan, count: rows * cols)
            var banded = whole
            src.withUnsafeBytes { s in
                whole.withUnsafeMutableBufferPointer { TensorCopy.transposeF32(s.baseAddress!, rows: rows, cols: cols, into: $0.baseAddress!) }
                for j0 in stride(from: 0, to: cols, by: 23) {
                    let j1 = min(j0 + 23, cols)
                    banded.withUnsafeMutableBufferPointer {
                        TensorCopy.transposeF32(s.baseAddress!, rows: rows, cols: cols, columns: j0..<j1, into: $0.baseAddress! + j0 * rows)
                    }
                }
            }
            XCTAssertEqual(whole, expected, "\(rows)x\(cols)")
            XCTAssertEqual(banded, expected, "\(rows)x\(cols) by bands")
        }
    }

    // MARK: names and prefixes

    func testTensorFlowNames() {
        XCTAssertEqual(NameMapping.tensorFlow("bert/encoder/layer_11/attention/self/query/kernel"),
                       .tensor("bert.encoder.layer.11.attention.self.query.weight", transpose: true))
        XCTAssertEqual(NameMapping.tensorFlow("bert/embeddings/LayerNorm/gamma"), .tensor("bert.embeddings.LayerNorm.weight", transpose: false))
        XCTAssertEqual(NameMapping.tensorFlow("bert/encoder/layer_0/output/LayerNorm/beta"),
                       .tensor("bert.encoder.layer.0.output.LayerNorm.bias", transpose: false))
        XCTAssertEqual(NameMapping.tensorFlow("bert/embeddings/word_embeddings"), .tensor("bert.embeddings.word_embeddings.weight", transpose: false))
        XCTAssertEqual(NameMapping.tensorFlow("bert/pooler/dense/kernel"), .tensor("bert.pooler.dense.weight", transpose: true))
        XCTAssertEqual(NameMapping.tensorFlow("output_weights"), .tensor("classifier.weight", transpose: false))
        XCTAssertEqual(NameMapping.tensorFlow("output_bias"), .tensor("classifier.bias", transpose: false))
        XCTAssertEqual(NameMapping.tensorFlow("output_weights/adam_v"), .skip(.optimizer))
        XCTAssertEqual(NameMapping.tensorFlow("global_step"), .skip(.optimizer))
        XCTAssertEqual(NameMapping.tensorFlow("cls/predictions/output_bias"), .skip(.pretrainingHead))
        XCTAssertEqual(NameMapping.tensorFlow("cls/seq_relationship/output_weights"), .skip(.pretrainingHead))
    }

    func testTorchPrefixes() {
        let lrp = NameMapping.Torch(names: ["module.embeddings.word_embeddings.weight", "module.classifier.weight"])
        XCTAssertEqual(lrp.target("module.encoder.layer.0.output.LayerNorm.gamma"), .tensor("bert.encoder.layer.0.output.LayerNorm.weight", transpose: false))
        XCTAssertEqual(lrp.target("module.embeddings.LayerNorm.beta"), .tensor("bert.embeddings.LayerNorm.bias", transpose: false))
        XCTAssertEqual(lrp.target("module.classifier.weight"), .tensor("classifier.weight", transpose: false))
        let hf = NameMapping.Torch(names: ["module.bert.embeddings.word_embeddings.weight"])
        XCTAssertEqual(hf.target("module.bert.pooler.dense.bias"), .tensor("bert.pooler.dense.bias", transpose: false))
        XCTAssertEqual(hf.target("module.classifier.bias"), .tensor("classifier.bias", transpose: false))
        XCTAssertEqual(hf.target("module.cls.predictions.bias"), .skip(.pretrainingHead))
        XCTAssertEqual(hf.target("module.bert.embeddings.position_ids"), .skip(.buffer))
        let wrapped = NameMapping.Torch(names: ["model.bert.embeddings.word_embeddings.weight"])
        XCTAssertEqual(wrapped.target("model.classifier.weight"), .tensor("classifier.weight", transpose: false))
        XCTAssertEqual(wrapped.target("optimizer.state.0.exp_avg"), .skip(.optimizer))
    }

    /// DataParallel's `module.` in front of BERT-LRP's pretrained-style names
    /// (no `bert.`, `LayerNorm.gamma/beta`), in a zip whose folder is not `archive/`.
    func testModulePrefixAndMissingBertPrefix() throws {
        let dir = try TestPaths.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        try copyTokenizerFiles(to: dir)
        let truth = try loadFloats(truthURL)
        let renamed = truth.map { (name, t) -> (String, [Int], [Float]) in
            var n = name.hasPrefix("bert.") ? String(name.dropFirst(5)) : name
            n = n.replacingOccurrences(of: "LayerNorm.weight", with: "LayerNorm.gamma").replacingOccurrences(of: "LayerNorm.bias", with: "LayerNorm.beta")
            return ("module." + n, t.shape, t.values)
        }
        let src = dir.appendingPathComponent("best_checkpoint.bin")
        try Data(TorchZipBuilder.stateDict(renamed, archive: "best_checkpoint")).write(to: src)
        _ = try assertConvertsToTruth(src)
    }

    /// The fixtures in Fixtures/convert (made with torch 2.13 from tiny-bert/hf)
    /// use tiny-bert/hf's config and vocabulary through the options.
    static let hfTokenizer = ConversionOptions(config: TestPaths.tiny.appendingPathComponent("hf/config.json"),
                                               vocab: TestPaths.tiny.appendingPathComponent("hf/vocab.txt"))

    /// torch 2.x zip with `module.bert.` names, the tied pre-training decoder
    /// (the same tensor object twice: a pickle memo reference; its bias shares
    /// a storage), a position_ids buffer, and a classifier weight stored as a
    /// transposed view (strides (1, 3)).
    func testTiedStridedModuleZip() throws {
        let s = try assertConvertsToTruth(TestPaths.fixtures.appendingPathComponent("convert/tied-strided-module.bin"), options: Self.hfTokenizer)
        XCTAssertEqual(Set(s.skipped.map(\.name)), ["module.bert.embeddings.position_ids", "module.cls.predictions.bias",
                                                    "module.cls.predictions.decoder.weight", "module.cls.predictions.decoder.bias"])
        XCTAssertEqual(s.labels, ["negative", "neutral", "positive"])
    }

    /// The legacy format in bfloat16 with BERT-LRP's names (no `bert.`,
    /// `LayerNorm.gamma/beta`) inside `{'state_dict': ..., 'epoch': 3}`.
    func testLegacyBFloat16InATrainingDict() throws {
        let s = try assertConvertsToTruth(TestPaths.fixtures.appendingPathComponent("convert/legacy-bf16-wrapped.bin"), bfloat16: true,
                                          options: Self.hfTokenizer)
        XCTAssertEqual(s.sourceDTypes, ["BF16"])
        XCTAssertEqual(s.format, "torch.save legacy")
    }

    func testFloat16OverflowIsRefused() throws {
        let dir = try TestPaths.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        try copyTokenizerFiles(to: dir)
        var truth = try loadFloats(truthURL).map { ($0.key, $0.value.shape, $0.value.values) }
        let i = truth.firstIndex { $0.0 == "classifier.bias" }!
        truth[i].2[0] = 1e6
        let src = dir.appendingPathComponent("pytorch_model.bin")
        try Data(TorchZipBuilder.stateDict(truth)).write(to: src)
        let out = dir.appendingPathComponent("m")
        assertFailsCleanly(try CheckpointConverter.convert(source: src, output: out, options: ConversionOptions(dtype: .f16)),
                           mentions: "beyond the float16 range", output: out)
        _ = try CheckpointConverter.convert(source: src, output: out)
    }

    // MARK: labels

    /// A conversion killed before it could clean up leaves its hidden folder;
    /// the next conversion to that output removes it (its process is gone),
    /// and leaves a live one's alone.
    func testAbandonedPartialFoldersAreRemoved() throws {
        let dir = try TestPaths.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let dead = dir.appendingPathComponent(".m.partial-2147483646-7")  // beyond any pid_max
        let live = dir.appendingPathComponent(".m.partial-\(getpid())-8")
        for d in [dead, live] { try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true) }
        _ = try CheckpointConverter.convert(source: TestPaths.tiny.appendingPathComponent("tf"), output: dir.appendingPathComponent("m"),
                                            options: ConversionOptions())
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), [live.lastPathComponent, "m"])
    }

    func testLabelOptions() throws {
        let src = TestPaths.tiny.appendingPathComponent("torch-seed")
        let dir = try TestPaths.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("m")
        assertFailsCleanly(try CheckpointConverter.convert(source: src, output: out, options: ConversionOptions(labels: ["a", "b"])),
                           mentions: "--labels names 2 classes", output: out)
        assertFailsCleanly(try CheckpointConverter.convert(source: src, output: out, options: ConversionOptions(numLabels: 2)),
                           mentions: "--num-labels 2", output: out)
        let s = try CheckpointConverter.convert(source: src, output: out, options: ConversionOptions(labels: ["x", "y", "z"], numLabels: 3))
        XCTAssertEqual(s.labels, ["x", "y", "z"])
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("config.json"))) as? [String: Any]
        XCTAssertEqual(config?["id2label"] as? [String: String], ["0": "x", "1": "y", "2": "z"])
        XCTAssertEqual(config?["label2id"] as? [String: Int], ["x": 0, "y": 1, "z": 2])
        // An existing non-empty output is refused unless overwriting.
        assertFailsCleanly(try CheckpointConverter.convert(source: src, output: out), mentions: "not empty", output: nil)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("config.json").path))
        _ = try CheckpointConverter.convert(source: src, output: out, options: ConversionOptions(overwrite: true))
        XCTAssertEqual(try leftovers(in: dir), ["m"])
    }
}

/// Assertions shared by the conversion tests.
extension XCTestCase {
    var truthURL: URL { TestPaths.tiny.appendingPathComponent("hf/model.safetensors") }

    /// Converts and compares every tensor with tiny-bert/hf (rounded to float16 when `rounded`).
    func assertConvertsToTruth(_ source: URL, rounded: Bool = false, bfloat16: Bool = false, options: ConversionOptions = ConversionOptions(),
                               file: StaticString = #filePath, line: UInt = #line) throws -> ConversionSummary {
        let dir = try TestPaths.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("model")
        let summary = try CheckpointConverter.convert(source: source, output: out, options: options)
        let truth = try loadFloats(truthURL)
        let got = try loadFloats(out.appendingPathComponent("model.safetensors"))
        XCTAssertEqual(Set(got.keys), Set(truth.keys), file: file, line: line)
        var worst: (String, Float) = ("", 0)
        for (name, t) in truth {
            guard let g = got[name] else { continue }
            XCTAssertEqual(g.shape, t.shape, name, file: file, line: line)
            var expected = rounded ? t.values.map { HalfFloat.toFloat(HalfFloat.fromFloat($0)) } : t.values
            if bfloat16 { expected = t.values.map { Float(bitPattern: UInt32(TensorCopy.Encoder.bfloat16($0)) << 16) } }
            for (a, b) in zip(g.values, expected) where a != b {
                let d = abs(a - b)
                if d > worst.1 { worst = (name, d) }
            }
            if g.values.count != expected.count { worst = (name, .infinity) }
        }
        XCTAssertEqual(worst.1, 0, "worst difference in \(worst.0)", file: file, line: line)
        let st = try SafeTensorsFile(url: out.appendingPathComponent("model.safetensors"))
        XCTAssertEqual(st.metadata, ["format": "pt"], file: file, line: line)
        let vocab = try Data(contentsOf: out.appendingPathComponent("vocab.txt"))
        XCTAssertEqual(vocab, try Data(contentsOf: TestPaths.tiny.appendingPathComponent("hf/vocab.txt")), file: file, line: line)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("config.json"))) as? [String: Any]
        XCTAssertEqual((config?["id2label"] as? [String: String])?.count, 3, file: file, line: line)
        XCTAssertEqual(config?["hidden_size"] as? Int, 32, file: file, line: line)
        XCTAssertEqual(config?["layer_norm_eps"] as? Double, 1e-12, file: file, line: line)
        XCTAssertEqual(config?["hidden_act"] as? String, "gelu", file: file, line: line)
        XCTAssertEqual(try leftovers(in: dir), ["model"], "only the model directory is left", file: file, line: line)
        return summary
    }

    func leftovers(in dir: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
    }

    func copyTokenizerFiles(to dir: URL, config: String = "hf/config.json") throws {
        let fm = FileManager.default
        try fm.copyItem(at: TestPaths.tiny.appendingPathComponent(config), to: dir.appendingPathComponent((config as NSString).lastPathComponent))
        try fm.copyItem(at: TestPaths.tiny.appendingPathComponent("hf/vocab.txt"), to: dir.appendingPathComponent("vocab.txt"))
    }

    /// The call throws one line that names a file and contains `mentions`,
    /// and `output` (when given) does not exist afterwards, nor any partial folder beside it.
    func assertFailsCleanly<T>(_ body: @autoclosure () throws -> T, mentions: String, output: URL?,
                               file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try body()
            XCTFail("expected an error mentioning '\(mentions)'", file: file, line: line)
        } catch {
            let text = "\(error)"
            XCTAssertTrue(text.contains(mentions), "error '\(text)' should mention '\(mentions)'", file: file, line: line)
            XCTAssertFalse(text.contains("\n"), "one line: \(text)", file: file, line: line)
            XCTAssertTrue(text.hasPrefix("/"), "names a file: \(text)", file: file, line: line)
        }
        if let output {
            XCTAssertFalse(FileManager.default.fileExists(atPath: output.path), "no output left behind", file: file, line: line)
            let parent = output.deletingLastPathComponent()
            let partial = (try? FileManager.default.contentsOfDirectory(atPath: parent.path))?.filter { $0.contains(".partial-") } ?? []
            XCTAssertEqual(partial, [], "no partial folder left behind", file: file, line: line)
        }
    }
}

/// torch.save-shaped zip files written by the tests (float32 tensors only).
enum TorchZipBuilder {
    /// `OrderedDict([(name, tensor), ...])` pickled as torch does, one storage per tensor.
    static func statePickle(_ tensors: [(String, [Int], [Float])]) -> [UInt8] {
        var p: [UInt8] = [0x80, 0x02] + PickleBytes.global("collections", "OrderedDict") + [0x29, 0x52, 0x28]
        for (i, (name, shape, values)) in tensors.enumerated() {
            p += PickleBytes.unicode(name)
            p += PickleBytes.global("torch._utils", "_rebuild_tensor_v2")
            p += [0x28, 0x28] + PickleBytes.unicode("storage") + PickleBytes.global("torch", "FloatStorage")
            p += PickleBytes.unicode(String(i)) + PickleBytes.unicode("cpu") + int(values.count) + [0x74, 0x51]
            p += int(0) + [0x28] + shape.flatMap(int) + [0x74]
            var strides: [Int] = []
            var acc = 1
            for d in shape.reversed() { strides.insert(acc, at: 0); acc *= d }
            p += [0x28] + strides.flatMap(int) + [0x74]
            p += [0x89] + PickleBytes.global("collections", "OrderedDict") + [0x29, 0x52, 0x74, 0x52]
        }
        return p + [0x75, 0x2E]
    }

    static func int(_ v: Int) -> [UInt8] {
        var out: [UInt8] = [0x4A]
        withUnsafeBytes(of: Int32(v).littleEndian) { out += $0 }
        return out
    }

    static func stateDict(_ tensors: [(String, [Int], [Float])], archive: String = "archive", zip64: Bool = false) -> [UInt8] {
        var z = ZipBuilder(zip64: zip64)
        z.entries.append(("\(archive)/data.pkl", statePickle(tensors)))
        z.entries.append(("\(archive)/byteorder", Array("little".utf8)))
        for (i, (_, _, values)) in tensors.enumerated() {
            var bytes: [UInt8] = []
            for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
            z.entries.append(("\(archive)/data/\(i)", bytes))
        }
        z.entries.append(("\(archive)/version", Array("3\n".utf8)))
        return z.build()
    }
}
