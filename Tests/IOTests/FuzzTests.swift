import Foundation
import XCTest
@testable import IO

/// Mutates each fixture checkpoint many times (bit flips, byte overwrites,
/// truncations, insertions, deletions; seeded, so every run tries the same
/// inputs) and requires a clean one-line error or a correct result: never a
/// crash, a hang or a half-written output.
///
/// "Correct" is exact for the checksummed formats (TF bundles, torch zip
/// files): a damaged byte is either caught or was not used. The legacy torch
/// format has no checksums, so there a flipped data byte may change the
/// element it belongs to, and no more than that.
final class FuzzTests: XCTestCase {
    /// SplitMix64: small, seeded, good enough to pick bytes.
    struct RNG {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
    }

    static var iterations: Int {
        ProcessInfo.processInfo.environment["BERTLRP_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 150
    }

    func testFuzzTensorFlowIndex() throws { try fuzz("tf", file: "bert_model.ckpt.index", seed: 1) }
    func testFuzzTensorFlowData() throws { try fuzz("tf", file: "bert_model.ckpt.data-00000-of-00001", seed: 2, focusFront: 0) }
    func testFuzzTorchZip() throws { try fuzz("torch-hf", file: "pytorch_model.bin", seed: 3) }
    func testFuzzTorchZipFloat16() throws { try fuzz("torch-hf-fp16", file: "pytorch_model.bin", seed: 4, rounded: true) }
    func testFuzzTorchLegacy() throws { try fuzz("torch-seed", file: "checkpoint.bin", seed: 5, checksummed: false) }

    /// `focusFront`: how many leading bytes get half of the mutations (the
    /// structure lives there: pickles, zip headers); 0 spreads them evenly.
    func fuzz(_ fixture: String, file name: String, seed: UInt64, rounded: Bool = false, checksummed: Bool = true,
              focusFront: Int = 6000) throws {
        let dir = try TestPaths.scratch("fuzz-\(fixture)-\(seed)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("src")
        try FileManager.default.copyItem(at: TestPaths.tiny.appendingPathComponent(fixture), to: src)
        let target = src.appendingPathComponent(name)
        let original = [UInt8](try Data(contentsOf: target))
        var truth: [String: [Float]] = [:]
        for (k, v) in try loadFloats(truthURL) {
            truth[k] = rounded ? v.values.map { HalfFloat.toFloat(HalfFloat.fromFloat($0)) } : v.values
        }
        var rng = RNG(state: seed &* 0x1234_5678_9ABC_DEF1)
        var outcomes = (errors: 0, correct: 0, damagedElements: 0)
        let out = dir.appendingPathComponent("out")
        let started = Date()
        for iteration in 0..<Self.iterations {
            var bytes = original
            var flipsOnly = true
            var touched = 0
            let kind = rng.below(6)
            func position() -> Int {
                if focusFront > 0 && rng.below(2) == 0 { return rng.below(min(focusFront, bytes.count)) }
                return rng.below(bytes.count)
            }
            switch kind {
            case 0, 1: // flip 1-4 bits
                for _ in 0...rng.below(4) { bytes[position()] ^= UInt8(1 << rng.below(8)); touched += 1 }
            case 2: // overwrite 1-8 bytes
                let p = position()
                for k in p..<min(bytes.count, p + 1 + rng.below(8)) { bytes[k] = UInt8(truncatingIfNeeded: rng.next()); touched += 1 }
            case 3: // truncate
                bytes.removeLast(1 + rng.below(bytes.count))
                flipsOnly = false
            case 4: // insert bytes
                let p = position()
                bytes.insert(contentsOf: (0...rng.below(4)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: p)
                flipsOnly = false
            default: // delete bytes
                let p = position()
                bytes.removeSubrange(p..<min(bytes.count, p + 1 + rng.below(4)))
                flipsOnly = false
            }
            try Data(bytes).write(to: target)
            let label = "\(fixture)/\(name) iteration \(iteration) (kind \(kind))"
            do {
                _ = try CheckpointConverter.convert(source: src, output: out)
            } catch {
                let text = "\(error)"
                XCTAssertFalse(text.contains("\n"), "\(label): one line: \(text)")
                XCTAssertTrue(text.hasPrefix("/"), "\(label): names a file: \(text)")
                XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "\(label): no output after an error")
                outcomes.errors += 1
                continue
            }
            // Converted: every tensor present with the right shape, values correct.
            let got = try loadFloats(out.appendingPathComponent("model.safetensors"))
            XCTAssertEqual(Set(got.keys), Set(truth.keys), label)
            var differing = 0
            for (k, values) in truth {
                guard let g = got[k], g.values.count == values.count else { differing += values.count; continue }
                for (a, b) in zip(g.values, values) where a.bitPattern != b.bitPattern { differing += 1 }
            }
            let allowed = checksummed ? 0 : (flipsOnly ? touched : 0)
            XCTAssertLessThanOrEqual(differing, allowed, "\(label): \(differing) elements differ from the truth")
            if differing == 0 { outcomes.correct += 1 } else { outcomes.damagedElements += 1 }
            try FileManager.default.removeItem(at: out)
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0 != "src" }
        XCTAssertEqual(leftovers, [], "nothing but the source is left")
        print("fuzz \(fixture)/\(name): \(Self.iterations) mutations, \(outcomes.errors) errors, \(outcomes.correct) correct results, "
              + "\(outcomes.damagedElements) with damaged data elements (legacy only), \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
    }
}
