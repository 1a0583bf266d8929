import Foundation
import XCTest
@testable import IO

/// Formats at the byte level, and checkpoints that must be refused with one
/// line naming the file, leaving no output behind.
final class BadCheckpointTests: XCTestCase {
    // MARK: building blocks

    func testCRCVectors() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.mask(0xE306_9283), 0xC78A_B0E5)
        XCTAssertEqual(CRC32C.unmask(0xC78A_B0E5), 0xE306_9283)
        XCTAssertEqual(CRC32C.mask(0), 0xA282_EAD8)
        XCTAssertEqual(CRC32C.checksum([0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0x40]), 0x28C0_C9B1)
        XCTAssertEqual(CRC32.checksum(Array("123456789".utf8)), 0xCBF4_3926)
        // Chained == one shot, across the 8-byte fast path and odd alignments.
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        bytes.withUnsafeBytes { raw in
            for cut in [0, 1, 3, 8, 13, 500, 999, 1000] {
                let a = CRC32C.extend(CRC32C.extend(0, UnsafeRawBufferPointer(rebasing: raw[0..<cut])), UnsafeRawBufferPointer(rebasing: raw[cut...]))
                XCTAssertEqual(a, CRC32C.checksum(raw))
            }
            XCTAssertEqual(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[3...])), CRC32C.checksum(Array(bytes[3...])))
        }
        // Large buffers in one call equal small steps.
        let big = (0..<200_003).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 7) }
        big.withUnsafeBytes { raw in
            for start in [0, 1, 5] {
                let r = UnsafeRawBufferPointer(rebasing: raw[start...])
                var small: UInt32 = 0, smallIEEE: UInt32 = 0
                var p = 0
                while p < r.count {
                    let k = min(999, r.count - p)
                    small = CRC32C.extend(small, UnsafeRawBufferPointer(rebasing: r[p..<(p + k)]))
                    smallIEEE = CRC32.extend(smallIEEE, UnsafeRawBufferPointer(rebasing: r[p..<(p + k)]))
                    p += k
                }
                XCTAssertEqual(CRC32C.checksum(r), small)
                XCTAssertEqual(CRC32.checksum(r), smallIEEE)
                XCTAssertEqual(CRC32C.extend(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: r[0..<77])), UnsafeRawBufferPointer(rebasing: r[77...])), small)
            }
        }
    }

    /// ISA-L's CRCs against the definition (bit by bit) on every length
    /// around its block sizes and every alignment, chained and in one go.
    func testCRCsMatchBitwiseDefinition() {
        func bitwise(_ poly: UInt32, _ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
            var c = ~crc
            for b in bytes {
                c ^= UInt32(b)
                for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ poly : c >> 1 }
            }
            return ~c
        }
        var rng = FuzzTests.RNG(state: 0xC5C)
        let bytes = (0..<70_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        bytes.withUnsafeBytes { raw in
            for start in 0..<9 {
                for count in [0, 1, 7, 8, 9, 15, 16, 17, 31, 63, 64, 65, 127, 128, 129, 255, 256, 257, 1023, 4095, 4096, 65_543] {
                    let r = UnsafeRawBufferPointer(rebasing: raw[start..<(start + count)])
                    XCTAssertEqual(CRC32C.extend(0x1234_5678, r), bitwise(0x82F6_3B78, 0x1234_5678, r), "crc32c start \(start) count \(count)")
                    XCTAssertEqual(CRC32.extend(0x1234_5678, r), bitwise(0xEDB8_8320, 0x1234_5678, r), "crc32 start \(start) count \(count)")
                }
            }
        }
    }

    /// The 121-byte bundle worked out in docs/formats.md 1.2: one tensor "w" = [1, 2].
    func testWorkedExampleBundle() throws {
        let hexIndex = """
        00 00 06 08 01 1a 02 08 01 00 01 0f 77 08 01 12 04 12 02 08 02 28 08 35 59 3c e5 35 00 00 00 00
        01 00 00 00 00 09 21 ad c3 00 00 00 00 01 00 00 00 00 c0 f2 a1 b0 00 01 02 78 00 24 00 00 00 00
        01 00 00 00 00 ab 30 70 7f 29 08 36 0e 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 57 fb 80 8b 24 75 47 db
        """
        let index = hexIndex.split(whereSeparator: { $0 == " " || $0 == "\n" }).map { UInt8($0, radix: 16)! }
        XCTAssertEqual(index.count, 121)
        let dir = try TestPaths.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let prefix = dir.appendingPathComponent("w.ckpt").path
        try Data(index).write(to: URL(fileURLWithPath: prefix + ".index"))
        try Data([0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0x40]).write(to: URL(fileURLWithPath: prefix + ".data-00000-of-00001"))
        let bundle = try TensorBundle(prefix: prefix)
        XCTAssertEqual(bundle.names, ["w"])
        let t = try bundle.tensor("w")
        XCTAssertEqual(t.shape, [2])
        XCTAssertEqual(t.dtype, .f32)
        try t.check?.verify()
    }

    /// The truth rebuilt as a Google TF checkpoint (kernels transposed back).
    func truthBundle(dropping: Set<String> = []) throws -> TFBundleBuilder {
        var b = TFBundleBuilder()
        for (hf, t) in try loadFloats(truthURL) {
            let name = CheckpointConverter.sourceName(hf, tensorFlow: true, torch: nil)
            if dropping.contains(name) { continue }
            var values = t.values, shape = t.shape
            if name.hasSuffix("kernel") {
                let (o, i) = (shape[0], shape[1])
                values = (0..<(o * i)).map { k in t.values[(k % o) * i + k / o] }
                shape = [i, o]
            }
            b.tensors.append(TFBundleBuilder.float32(name, shape, values))
        }
        b.tensors.append(TFBundleBuilder.Tensor(name: "global_step", dtype: 9, shape: [], bytes: [7, 0, 0, 0, 0, 0, 0, 0]))
        return b
    }

    func writeBundle(_ b: TFBundleBuilder, in dir: URL, config: String = "tf/bert_config.json") throws -> URL {
        let fm = FileManager.default
        try fm.copyItem(at: TestPaths.tiny.appendingPathComponent(config), to: dir.appendingPathComponent("bert_config.json"))
        try fm.copyItem(at: TestPaths.tiny.appendingPathComponent("hf/vocab.txt"), to: dir.appendingPathComponent("vocab.txt"))
        let prefix = dir.appendingPathComponent("model.ckpt")
        try b.write(prefix: prefix.path)
        return prefix
    }

    func testBundleVariants() throws {
        // Many small blocks, snappy blocks, big-endian data, bfloat16 and float16 tensors.
        for variant in 0..<4 {
            let dir = try TestPaths.scratch("variant\(variant)")
            defer { try? FileManager.default.removeItem(at: dir) }
            var b = try truthBundle()
            var rounded = false
            switch variant {
            case 0: b.blockSize = 200; b.restartInterval = 3
            case 1: b.snappy = true; b.blockSize = 500
            case 2:
                b.bigEndian = true
                for i in b.tensors.indices where b.tensors[i].dtype == 1 {
                    var bytes = b.tensors[i].bytes
                    for k in stride(from: 0, to: bytes.count, by: 4) { bytes[k..<(k + 4)].reverse() }
                    b.tensors[i].bytes = bytes
                }
            default:
                // float16 tensors: the result is the truth rounded to float16.
                rounded = true
                for i in b.tensors.indices where b.tensors[i].dtype == 1 {
                    let src = b.tensors[i].bytes
                    var bytes: [UInt8] = []
                    for k in stride(from: 0, to: src.count, by: 4) {
                        let f = Float(bitPattern: UInt32(src[k]) | UInt32(src[k + 1]) << 8 | UInt32(src[k + 2]) << 16 | UInt32(src[k + 3]) << 24)
                        let h = HalfFloat.fromFloat(f)
                        bytes += [UInt8(h & 0xFF), UInt8(h >> 8)]
                    }
                    b.tensors[i].bytes = bytes
                    b.tensors[i].dtype = 19
                }
            }
            let prefix = try writeBundle(b, in: dir)
            _ = try assertConvertsToTruth(prefix, rounded: rounded)
        }
    }

    func testZip64Archive() throws {
        let dir = try TestPaths.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        try copyTokenizerFiles(to: dir)
        let truth = try loadFloats(truthURL).map { ($0.key, $0.value.shape, $0.value.values) }
        let src = dir.appendingPathComponent("pytorch_model.bin")
        try Data(TorchZipBuilder.stateDict(truth, zip64: true)).write(to: src)
        _ = try assertConvertsToTruth(src)
    }

    // MARK: refusals

    /// Copies a fixture folder, lets `damage` change it, converts, and expects a clean failure.
    func assertDamagedFails(_ fixture: String, mentions: String, file: StaticString = #filePath, line: UInt = #line,
                            _ damage: (URL) throws -> Void) throws {
        let dir = try TestPaths.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("src")
        try FileManager.default.copyItem(at: TestPaths.tiny.appendingPathComponent(fixture), to: src)
        try damage(src)
        let out = dir.appendingPathComponent("out")
        assertFailsCleanly(try CheckpointConverter.convert(source: src, output: out), mentions: mentions, output: out,
                                  file: file, line: line)
    }

    func edit(_ url: URL, _ change: (inout [UInt8]) -> Void) throws {
        var bytes = [UInt8](try Data(contentsOf: url))
        change(&bytes)
        try Data(bytes).write(to: url)
    }

    func testTruncatedFiles() throws {
        try assertDamagedFails("tf", mentions: "bert_model.ckpt.index") { d in
            try edit(d.appendingPathComponent("bert_model.ckpt.index")) { $0.removeLast($0.count / 2) }
        }
        try assertDamagedFails("tf", mentions: "truncated") { d in
            try edit(d.appendingPathComponent("bert_model.ckpt.data-00000-of-00001")) { $0.removeLast($0.count / 2) }
        }
        try assertDamagedFails("tf", mentions: "too short to be an sstable") { d in
            try edit(d.appendingPathComponent("bert_model.ckpt.index")) { $0.removeLast($0.count - 20) }
        }
        try assertDamagedFails("torch-hf", mentions: "pytorch_model.bin") { d in
            try edit(d.appendingPathComponent("pytorch_model.bin")) { $0.removeLast(1000) }
        }
        try assertDamagedFails("torch-seed", mentions: "truncated") { d in
            try edit(d.appendingPathComponent("checkpoint.bin")) { $0.removeLast(100) }
        }
        try assertDamagedFails("torch-seed", mentions: "truncated") { d in
            try edit(d.appendingPathComponent("checkpoint.bin")) { $0.removeLast($0.count - 3000) }
        }
        try assertDamagedFails("tf", mentions: "No such file") { d in
            try FileManager.default.removeItem(at: d.appendingPathComponent("bert_model.ckpt.data-00000-of-00001"))
        }
    }

    func testWrongMagic() throws {
        try assertDamagedFails("tf", mentions: "bad magic number") { d in
            try edit(d.appendingPathComponent("bert_model.ckpt.index")) { $0[$0.count - 1] ^= 0xFF }
        }
        try assertDamagedFails("torch-seed", mentions: "bad magic number") { d in
            try edit(d.appendingPathComponent("checkpoint.bin")) { $0[5] ^= 0x01 }
        }
        try assertDamagedFails("torch-hf", mentions: "not a TF checkpoint, torch.save file or safetensors file") { d in
            try edit(d.appendingPathComponent("pytorch_model.bin")) { $0[0] = 0x7F }
        }
        try assertDamagedFails("torch-hf", mentions: "end-of-central-directory") { d in
            try edit(d.appendingPathComponent("pytorch_model.bin")) { bytes in
                for i in stride(from: bytes.count - 4, through: bytes.count - 200, by: -1)
                where bytes[i] == 0x50 && bytes[i + 1] == 0x4B && bytes[i + 2] == 0x05 && bytes[i + 3] == 0x06 { bytes[i] = 0 }
            }
        }
    }

    func testChecksumMismatches() throws {
        // Byte 10 of the data file lies in its first tensor, bert/embeddings/LayerNorm/beta.
        try assertDamagedFails("tf", mentions: "checksum does not match") { d in
            try edit(d.appendingPathComponent("bert_model.ckpt.data-00000-of-00001")) { $0[10] ^= 0x01 }
        }
        try assertDamagedFails("tf", mentions: "block checksum does not match") { d in
            try edit(d.appendingPathComponent("bert_model.ckpt.index")) { $0[100] ^= 0x01 }
        }
        try assertDamagedFails("torch-hf", mentions: "checksum does not match") { d in
            try edit(d.appendingPathComponent("pytorch_model.bin")) { $0[8000] ^= 0x01 }
        }
        try assertDamagedFails("torch-hf-fp16", mentions: "data.pkl: checksum does not match") { d in
            try edit(d.appendingPathComponent("pytorch_model.bin")) { $0[200] ^= 0x01 }
        }
    }

    func testSizesAndOffsetsPastTheEnd() throws {
        let dir = try TestPaths.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        var b = try truthBundle()
        let i = b.tensors.firstIndex { $0.name == "bert/pooler/dense/bias" }!
        b.tensors[i].offsetOverride = 1 << 40
        let prefix = try writeBundle(b, in: dir)
        assertFailsCleanly(try CheckpointConverter.convert(source: prefix, output: dir.appendingPathComponent("o")),
                                  mentions: "runs past the end of the file", output: dir.appendingPathComponent("o"))
        b.tensors[i].offsetOverride = nil
        b.tensors[i].sizeOverride = 12
        try b.write(prefix: prefix.path)
        assertFailsCleanly(try CheckpointConverter.convert(source: prefix, output: dir.appendingPathComponent("o")),
                                  mentions: "does not match shape", output: dir.appendingPathComponent("o"))
        b.tensors[i].sizeOverride = nil
        b.tensors[i].shape = [1 << 40, 1 << 40]
        try b.write(prefix: prefix.path)
        assertFailsCleanly(try CheckpointConverter.convert(source: prefix, output: dir.appendingPathComponent("o")),
                                  mentions: "absurd shape", output: dir.appendingPathComponent("o"))

        // A legacy storage claiming 2^40 elements; a zip directory past the end.
        try assertDamagedFails("torch-seed", mentions: "holds 1099511627776 elements") { d in
            try edit(d.appendingPathComponent("checkpoint.bin")) { bytes in
                // The first storage's int64 element count follows the fifth pickle.
                var pos = 0
                bytes.withUnsafeBytes { raw in
                    for _ in 0..<5 {
                        let r = PickleReader(bytes: raw, at: pos, file: "x", legacy: true)
                        _ = try? r.load()
                        pos = r.pos
                    }
                }
                bytes.replaceSubrange(pos..<(pos + 8), with: [0, 0, 0, 0, 0, 1, 0, 0])
            }
        }
        try assertDamagedFails("torch-hf", mentions: "past the end") { d in
            try edit(d.appendingPathComponent("pytorch_model.bin")) { bytes in
                // classic EOCD: central directory offset at +16
                let eocd = bytes.count - 22
                bytes[eocd + 16] = 0xFE; bytes[eocd + 17] = 0xFF; bytes[eocd + 18] = 0xFF; bytes[eocd + 19] = 0x7F
            }
        }
    }

    func testShapesThatDoNotFitTheConfig() throws {
        func config(_ change: @escaping (inout [String: Any]) -> Void) -> (URL) throws -> Void {
            return { d in
                let url = d.appendingPathComponent("bert_config.json")
                var c = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
                change(&c)
                try JSONSerialization.data(withJSONObject: c).write(to: url)
            }
        }
        try assertDamagedFails("tf", mentions: "the config needs", config { $0["hidden_size"] = 64; $0["num_attention_heads"] = 4 })
        try assertDamagedFails("tf", mentions: "missing tensors 'bert/encoder/layer_2", config { $0["num_hidden_layers"] = 3 })
        try assertDamagedFails("torch-seed", mentions: "does not fit the config", config { $0["num_hidden_layers"] = 1 })
        try assertDamagedFails("torch-seed", mentions: "the config needs", config { $0["vocab_size"] = 4000 })
        try assertDamagedFails("tf", mentions: "not a multiple of num_attention_heads", config { $0["num_attention_heads"] = 5 })
        try assertDamagedFails("tf", mentions: "no 'intermediate_size'", config { $0.removeValue(forKey: "intermediate_size") })
        try assertDamagedFails("tf", mentions: "no config.json or bert_config.json") { d in
            try FileManager.default.removeItem(at: d.appendingPathComponent("bert_config.json"))
        }
        try assertDamagedFails("tf", mentions: "no vocab.txt") { d in
            try FileManager.default.removeItem(at: d.appendingPathComponent("vocab.txt"))
        }
    }

    func testMissingTensors() throws {
        let dir = try TestPaths.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let prefix = try writeBundle(try truthBundle(dropping: ["bert/pooler/dense/kernel"]), in: dir)
        assertFailsCleanly(try CheckpointConverter.convert(source: prefix, output: dir.appendingPathComponent("o")),
                                  mentions: "missing tensor 'bert/pooler/dense/kernel'", output: dir.appendingPathComponent("o"))
        let dir2 = try TestPaths.scratch()
        defer { try? FileManager.default.removeItem(at: dir2) }
        let p2 = try writeBundle(try truthBundle(dropping: ["output_weights", "output_bias"]), in: dir2)
        assertFailsCleanly(try CheckpointConverter.convert(source: p2, output: dir2.appendingPathComponent("o")),
                                  mentions: "no classifier", output: dir2.appendingPathComponent("o"))
    }

    // MARK: pickles that call anything else

    func legacyFile(objectPickle: [UInt8]) -> [UInt8] {
        TorchLegacy.signature + [0x80, 0x02, 0x4D, 0xE9, 0x03, 0x2E] + [0x80, 0x02, 0x7D, 0x2E] + objectPickle + [0x80, 0x02, 0x5D, 0x2E]
    }

    func assertRefused(_ bytes: [UInt8], name: String, mentions: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = try TestPaths.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        try copyTokenizerFiles(to: dir)
        let src = dir.appendingPathComponent(name)
        try Data(bytes).write(to: src)
        assertFailsCleanly(try CheckpointConverter.convert(source: src, output: dir.appendingPathComponent("o")),
                                  mentions: mentions, output: dir.appendingPathComponent("o"), file: file, line: line)
    }

    func testPicklesCallingOtherGlobalsAreRefused() throws {
        for (module, name) in [("os", "system"), ("builtins", "eval"), ("posix", "system"), ("__builtin__", "eval"), ("subprocess", "Popen")] {
            let evil = PickleBytes.calling(module, name)
            try assertRefused(legacyFile(objectPickle: evil), name: "checkpoint.bin", mentions: "'\(module).\(name)'")
            var z = ZipBuilder()
            z.entries = [("archive/data.pkl", evil), ("archive/version", Array("3\n".utf8))]
            try assertRefused(z.build(), name: "pytorch_model.bin", mentions: "'\(module).\(name)'")
        }
        // STACK_GLOBAL (protocol 4) names the global through two strings.
        let stackGlobal: [UInt8] = [0x80, 0x04] + [0x8C, 2] + Array("os".utf8) + [0x8C, 6] + Array("system".utf8) + [0x93] + PickleBytes.unicode("id") + [0x85, 0x52, 0x2E]
        var z = ZipBuilder()
        z.entries = [("archive/data.pkl", stackGlobal)]
        try assertRefused(z.build(), name: "model.pt", mentions: "'os.system'")
        // Opcodes torch never writes: INST, OBJ, NEWOBJ, PERSID (text), EXT1.
        for (op, name) in [(0x69, "INST"), (0x6F, "OBJ"), (0x81, "NEWOBJ"), (0x50, "PERSID"), (0x82, "EXT1"), (0x49, "INT")] {
            var z = ZipBuilder()
            z.entries = [("archive/data.pkl", [0x80, 0x02, UInt8(op)] + Array("os\nsystem\n".utf8) + [0x2E])]
            try assertRefused(z.build(), name: "model.pt", mentions: name)
        }
        // A torch.* global that is not a storage class.
        try assertRefused(legacyFile(objectPickle: PickleBytes.calling("torch", "load")), name: "c.bin", mentions: "'torch.load'")
        try assertRefused(legacyFile(objectPickle: PickleBytes.calling("torch._utils", "_rebuild_from_type")), name: "c.bin", mentions: "_rebuild_from_type")
    }

    func testAbsurdDeclaredSizes() throws {
        // BINUNICODE claiming 4 GB.
        try assertRefused(legacyFile(objectPickle: [0x80, 0x02, 0x58, 0xF0, 0xFF, 0xFF, 0xFF, 0x41, 0x2E]), name: "c.bin", mentions: "runs past the end")
        // A storage of 2^50 elements.
        var p: [UInt8] = [0x80, 0x02, 0x7D, 0x28] + PickleBytes.unicode("w") + PickleBytes.global("torch._utils", "_rebuild_tensor_v2")
        p += [0x28, 0x28] + PickleBytes.unicode("storage") + PickleBytes.global("torch", "FloatStorage") + PickleBytes.unicode("0") + PickleBytes.unicode("cpu")
        p += [0x8A, 0x08, 0, 0, 0, 0, 0, 0, 0x04, 0, 0x74, 0x51]
        p += [0x4B, 0, 0x4B, 1, 0x85, 0x4B, 1, 0x85, 0x89, 0x29, 0x74, 0x52, 0x75, 0x2E]
        var z = ZipBuilder()
        z.entries = [("archive/data.pkl", p), ("archive/data/0", [0, 0, 0, 0])]
        try assertRefused(z.build(), name: "model.pt", mentions: "bad element count")
        // Nesting a thousand tuples deep.
        let deep: [UInt8] = [0x80, 0x02, 0x29] + [UInt8](repeating: 0x85, count: 1000) + [0x2E]
        try assertRefused(legacyFile(objectPickle: deep), name: "c.bin", mentions: "nest deeper")
        // A memo reference that was never set.
        try assertRefused(legacyFile(objectPickle: [0x80, 0x02, 0x68, 0x05, 0x2E]), name: "c.bin", mentions: "memo index 5")
    }
}
