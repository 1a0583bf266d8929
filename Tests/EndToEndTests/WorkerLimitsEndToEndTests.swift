import Foundation
import XCTest

/// Issue 9's worker bullet through the binary: an absurd `--workers` is
/// capped with a note, and a process limit that stops thread creation is a
/// one-line error (exit 2) that leaves no output, never a hang.
final class WorkerLimitsEndToEndTests: XCTestCase {
    func testAbsurdWorkerCountIsCappedWithANote() throws {
        let dir = try temporaryDirectory(self)
        let out = dir.appendingPathComponent("out")
        let r = try runBinary(["--workers", "100000", "--methods", "lat", "-o", out.path, try sst2Subset(dir, records: 3).path],
                              killAfter: 120)
        XCTAssertFalse(r.killed, "hung: \(r.stderr)")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("100000 workers asked"), r.stderr)
        XCTAssertEqual(try shardLines(out).count, 3)
    }

    /// Under a process limit (`prlimit --nproc`, as an unprivileged user: the limit does not bind
    /// root) the threads cannot all start: one line, exit 2, no directory.
    func testThreadLimitIsAnErrorNotAHang() throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"),
              FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit") else {
            throw XCTSkip("needs root, setpriv and prlimit to run the binary as an unprivileged user under a process limit")
        }
        let dir = URL(fileURLWithPath: "/tmp/bertlrp-threads-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = try sst2Subset(dir, records: 3)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: input.path)
        let out = dir.appendingPathComponent("out")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        p.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/prlimit", "--nproc=4", binary.path,
                       "--workers", "8", "--methods", "lat", "-o", out.path, input.path]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(60)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        let hung = p.isRunning
        if hung { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        if stderr.contains("Permission denied") { throw XCTSkip("the unprivileged user cannot read the checkout: \(stderr)") }
        XCTAssertFalse(hung, "hung under the process limit")
        XCTAssertEqual(p.terminationStatus, 2, stderr)
        XCTAssertEqual(stderr.split(separator: "\n").count, 1, stderr)
        XCTAssertTrue(stderr.contains("cannot start"), stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "a refused run leaves no output directory")
    }
}
