import Foundation
import XCTest
@testable import IO

final class ZstdTests: XCTestCase {
    func testRoundTripAcrossManyWritesAndFrames() throws {
        var rng = SystemRandomNumberGenerator()
        var expected: [UInt8] = []
        var compressed: [UInt8] = []
        for frame in 0..<3 {
            let c = try ZstdCompressor(name: "t", level: 3) { compressed.append(contentsOf: $0) }
            for i in 0..<200 {
                let line = "{\"frame\": \(frame), \"i\": \(i), \"x\": \(Float.random(in: -1...1, using: &rng))}\n"
                expected.append(contentsOf: line.utf8)
                try c.write(line)
            }
            try c.finish()
            XCTAssertGreaterThan(c.bytesOut, 0)
        }
        XCTAssertEqual(try Zstd.decompress(compressed), expected)
    }

    func testZstdCommandLineReadsOurFrames() throws {
        let zstd = ["/usr/bin/zstd", "/bin/zstd"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let zstd else { throw XCTSkip("zstd command not installed") }
        let text = Array(String(repeating: "bertlrp ", count: 10000).utf8)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("z-\(UUID().uuidString).zst")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data(try Zstd.compress(text)).write(to: url)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: zstd)
        p.arguments = ["-dc", url.path]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        XCTAssertEqual(Array(out), text)
    }

    func testCorruptInputIsAnError() throws {
        var bytes = try Zstd.compress(Array(String(repeating: "abc", count: 1000).utf8))
        bytes[bytes.count / 2] ^= 0xFF
        XCTAssertThrowsError(try Zstd.decompress(bytes, name: "broken.zst")) { XCTAssertTrue("\($0)".contains("broken.zst")) }
    }
}
