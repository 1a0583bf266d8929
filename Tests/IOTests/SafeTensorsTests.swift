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
