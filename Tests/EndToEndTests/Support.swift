import Foundation
import IO
import XCTest

/// The checkout these tests belong to.
let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The built binary: beside the test bundle (same configuration), else release, else debug.
let binary: URL = {
    let fm = FileManager.default
    var candidates: [URL] = []
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<3 {
        candidates.append(dir.appendingPathComponent("bertlrp-batch"))
        dir = dir.deletingLastPathComponent()
    }
    for config in ["release", "debug"] {
        candidates.append(checkout.appendingPathComponent(".build/\(config)/bertlrp-batch"))
    }
    return candidates.first { fm.isExecutableFile(atPath: $0.path) && !$0.hasDirectoryPath } ?? candidates.last!
}()

struct RunResult {
    var status: Int32
    var stdout: Data
    var stderr: String
    var killed: Bool
}

/// Runs the binary; `stdin` a file or nil (empty input); `killAfter` sends SIGKILL after that many seconds.
@discardableResult
func runBinary(_ args: [String], stdin: URL? = nil, environment: [String: String] = [:], killAfter: Double? = nil,
               directory: URL? = nil) throws -> RunResult {
    let p = Process()
    p.executableURL = binary
    p.arguments = args
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    p.environment = env
    if let directory { p.currentDirectoryURL = directory }
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("bertlrp-e2e-io-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: scratch) }
    let out = scratch.appendingPathComponent("out"), err = scratch.appendingPathComponent("err")
    _ = FileManager.default.createFile(atPath: out.path, contents: nil)
    _ = FileManager.default.createFile(atPath: err.path, contents: nil)
    p.standardOutput = try FileHandle(forWritingTo: out)
    p.standardError = try FileHandle(forWritingTo: err)
    p.standardInput = stdin.map { FileHandle(forReadingAtPath: $0.path)! } ?? FileHandle(forReadingAtPath: "/dev/null")!
    try p.run()
    var killed = false
    if let killAfter {
        let deadline = Date().addingTimeInterval(killAfter)
        while p.isRunning && Date() < deadline { usleep(5_000) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            killed = true
        }
    }
    p.waitUntilExit()
    return RunResult(status: p.terminationStatus, stdout: try Data(contentsOf: out),
                     stderr: String(decoding: try Data(contentsOf: err), as: UTF8.self), killed: killed)
}

func temporaryDirectory(_ test: XCTestCase) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bertlrp-e2e-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
    return dir
}

/// Shard lines of a run directory, decompressed in name order.
func shardLines(_ dir: URL) throws -> [String] {
    let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        .filter { $0.hasPrefix("part-") && $0.hasSuffix(".jsonl.zst") }.sorted()
    var out: [String] = []
    for n in names {
        let bytes = try Zstd.decompress(Array(try Data(contentsOf: dir.appendingPathComponent(n))))
        out += String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }
    return out
}

func jsonObjects(_ lines: [String]) throws -> [[String: Any]] {
    try lines.map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any], $0) }
}

/// Records equal except for float32 rounding: everything but the score
/// vectors exact; each score vector within `tolerance(key)` of the largest
/// absolute value (batching may change the order of float32 sums; the seed's
/// LRP amplifies such differences, docs/CONTRACT.md section 5).
func assertSameRecords(_ a: [String], _ b: [String], file: StaticString = #filePath, line: UInt = #line) throws {
    XCTAssertEqual(a.count, b.count, "record counts", file: file, line: line)
    if a == b { return }
    let oa = try jsonObjects(a), ob = try jsonObjects(b)
    var worst: [String: Double] = [:]
    func compare(_ x: Any, _ y: Any, key: String, path: String) {
        if let xs = x as? [Any], let ys = y as? [Any], xs.allSatisfy({ $0 is NSNumber && !($0 is Bool) }), ["logits", "probs", "lat", "gs", "gi", "lrp", "ixg", "attnlrp", "cplrp", "ig", "rollout"].contains(key) {
            guard xs.count == ys.count else { return XCTFail("\(path): lengths \(xs.count) vs \(ys.count)", file: file, line: line) }
            let xv = xs.map { ($0 as! NSNumber).doubleValue }, yv = ys.map { ($0 as! NSNumber).doubleValue }
            let scale = max(1e-30, yv.map(abs).max() ?? 0)
            let err = zip(xv, yv).map { abs($0 - $1) }.max() ?? 0
            worst[key] = max(worst[key] ?? 0, err / scale)
            let tol = key == "lrp" ? 1e-1 : key == "logits" ? 1e-4 : 1e-3
            if err / scale > tol { XCTFail("\(path): relative error \(err / scale) > \(tol)", file: file, line: line) }
            return
        }
        if let xd = x as? [String: Any], let yd = y as? [String: Any] {
            XCTAssertEqual(xd.keys.sorted(), yd.keys.sorted(), path, file: file, line: line)
            for (k, v) in xd { if let w = yd[k] { compare(v, w, key: k, path: path + "." + k) } }
            return
        }
        if let xs = x as? [Any], let ys = y as? [Any] {
            guard xs.count == ys.count else { return XCTFail("\(path): lengths \(xs.count) vs \(ys.count)", file: file, line: line) }
            for (i, (u, v)) in zip(xs, ys).enumerated() { compare(u, v, key: key, path: path + "[\(i)]") }
            return
        }
        XCTAssertEqual("\(x)", "\(y)", path, file: file, line: line)
    }
    for (i, (x, y)) in zip(oa, ob).enumerated() { compare(x, y, key: "", path: "record \(i)") }
    print("records equal within tolerance; worst relative differences: \(worst)")
}

/// The first `n` lines of the SST-2 dev TSV (header included) as a file.
func sst2Subset(_ dir: URL, records n: Int) throws -> URL {
    let all = try String(contentsOf: checkout.appendingPathComponent("data/sst2/dev.tsv"), encoding: .utf8)
    let lines = all.split(separator: "\n", omittingEmptySubsequences: false)
    let url = dir.appendingPathComponent("sst2-\(n).tsv")
    try (lines.prefix(n + 1).joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
    return url
}
