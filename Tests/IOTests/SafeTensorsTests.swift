import Foundation
import XCTest
@testable import IO

final class SafeTensorsTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")

    func testReadsTinyBertAndBundledModel() throws {
        let tiny = try SafeTensorsFile(url: Self.fixtures.appendingPathComponent("tiny-bert/hf/model.safetensors"))
        let emb = try XCTUnwrap(tiny.tensors["bert.embeddings.word_embeddings.weight"])
        XCTAssertEqual(emb.shape.count, 2)
        let values = try tiny.floats(emb)
        XCTAssertEqual(values.count, emb.count)
        XCTAssertTrue(values.allSatisfy { $0.isFinite })
        XCTAssertGreaterThan(values.map(abs).max() ?? 0, 0)

        let repo = Self.fixtures.deletingLastPathComponent().deletingLastPathComponent()
        let mini = try SafeTensorsFile(url: repo.appendingPathComponent("models/minilm-sst2/model.safetensors"))
        let cls = try XCTUnwrap(mini.tensors["classifier.weight"])
        XCTAssertEqual(cls.dtype, .f16)
        XCTAssertEqual(cls.shape, [2, 384])
    }

    func testHalfFloatRoundTripsEveryHalf() {
        for bits in UInt16.min...UInt16.max {
            let f = HalfFloat.toFloat(bits)
            if f.isNaN { continue }
            XCTAssertEqual(HalfFloat.fromFloat(f), bits, "half 0x\(String(bits, radix: 16))")
        }
        XCTAssertEqual(HalfFloat.toFloat(0x3C00), 1.0)
        XCTAssertEqual(HalfFloat.toFloat(0x0001), Float(bitPattern: 0x3380_0000))
        // Ties round to even: 1 + 2^-11 lies halfway between 1 and the next half.
        XCTAssertEqual(HalfFloat.fromFloat(1 + 0x1p-11), 0x3C00)
        XCTAssertEqual(HalfFloat.fromFloat(1 + 0x1p-11 + 0x1p-20), 0x3C01)
    }

    /// The eight-at-a-time converter against the scalar one on every half,
    /// at an odd byte offset and with a tail shorter than eight.
    func testBulkHalfToFloatMatchesScalarOnEveryHalf() {
        let halves = (0...Int(UInt16.max)).map { UInt16($0) } + [0x3C00, 0x8001, 0x7E00]
        var bytes = [UInt8](repeating: 0, count: 1 + 2 * halves.count)
        for (i, h) in halves.enumerated() {
            bytes[1 + 2 * i] = UInt8(h & 0xFF)
            bytes[2 + 2 * i] = UInt8(h >> 8)
        }
        var out = [Float](repeating: 0, count: halves.count)
        bytes.withUnsafeBytes { raw in
            out.withUnsafeMutableBufferPointer { HalfFloat.toFloat(raw.baseAddress! + 1, count: halves.count, into: $0.baseAddress!) }
        }
        var mismatches = 0
        for (i, h) in halves.enumerated() where out[i].bitPattern != HalfFloat.toFloat(h).bitPattern {
            mismatches += 1
            if mismatches < 5 { XCTFail("half 0x\(String(h, radix: 16)): \(out[i]) vs \(HalfFloat.toFloat(h))") }
        }
        XCTAssertEqual(mismatches, 0)
    }

    /// The eight-at-a-time float -> half against the scalar one: every
    /// sign/exponent/upper-mantissa pattern with the 13 dropped bits at the
    /// rounding edges (0, just below, at and just above half, all ones),
    /// plus random floats; and the overflow flag.
    func testBulkFloatToHalfMatchesScalar() {
        var floats: [Float] = []
        for upper in 0..<UInt32(1 << 19) {
            for low: UInt32 in [0, 0xFFF, 0x1000, 0x1001, 0x1FFF] { floats.append(Float(bitPattern: upper << 13 | low)) }
        }
        var rng = FuzzTests.RNG(state: 0xF16)
        for _ in 0..<200_000 { floats.append(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))) }
        floats.append(1) // a tail shorter than eight
        var out = [UInt8](repeating: 0, count: 1 + 2 * floats.count)
        _ = out.withUnsafeMutableBytes { raw in floats.withUnsafeBufferPointer { HalfFloat.fromFloat($0.baseAddress!, count: floats.count, into: raw.baseAddress! + 1) } }
        var mismatches = 0
        for (i, f) in floats.enumerated() {
            let got = UInt16(out[1 + 2 * i]) | UInt16(out[2 + 2 * i]) << 8
            if got != HalfFloat.fromFloat(f) {
                mismatches += 1
                if mismatches < 5 { XCTFail("float 0x\(String(f.bitPattern, radix: 16)): 0x\(String(got, radix: 16)) vs 0x\(String(HalfFloat.fromFloat(f), radix: 16))") }
            }
        }
        XCTAssertEqual(mismatches, 0)
        var scratch = [UInt8](repeating: 0, count: 64)
        func overflows(_ v: [Float]) -> Bool { scratch.withUnsafeMutableBytes { raw in v.withUnsafeBufferPointer { HalfFloat.fromFloat($0.baseAddress!, count: v.count, into: raw.baseAddress!) } } }
        XCTAssertFalse(overflows([Float](repeating: 65504, count: 9) + [.infinity, -.infinity, .nan]))
        XCTAssertTrue(overflows([Float](repeating: 0, count: 7) + [65520]), "in the SIMD part")
        XCTAssertTrue(overflows([Float](repeating: 0, count: 8) + [-1e6]), "in the tail")
    }

    func testRejectsTruncatedFile() throws {
        let src = Self.fixtures.appendingPathComponent("tiny-bert/hf/model.safetensors")
        let bytes = try Data(contentsOf: src)
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("trunc-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: tmp) }
        try bytes.prefix(bytes.count - 10).write(to: tmp)
        XCTAssertThrowsError(try SafeTensorsFile(url: tmp)) { error in
            XCTAssertTrue("\(error)".contains(tmp.path), "error names the file: \(error)")
        }
    }
}
