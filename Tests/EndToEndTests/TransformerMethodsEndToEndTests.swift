import Foundation
import XCTest

/// Section 5b's methods through the binary: the record layout (docs/CONTRACT.md 5b:
/// `ixg`, `attnlrp`, `cplrp`, `ig`, `ig_delta` in each attribution, `rollout`
/// beside `lat`), and one-line usage errors.
final class TransformerMethodsEndToEndTests: XCTestCase {
    func testRecordLayoutWithEveryMethod() throws {
        let base = try temporaryDirectory(self)
        let input = try sst2Subset(base, records: 6)
        let r = try runBinary(["--methods", "gs,ixg,attnlrp,cplrp,ig,rollout,lat", "--ig-steps", "4", "--target", "all",
                               "-o", "-", input.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let records = try jsonObjects(String(decoding: r.stdout, as: UTF8.self).split(separator: "\n").map(String.init))
        XCTAssertEqual(records.count, 6)
        for record in records {
            let t = (record["tokens"] as! [String]).count
            XCTAssertEqual((record["rollout"] as? [Double])?.count, t)
            XCTAssertEqual((record["lat"] as? [Double])?.count, t)
            let attributions = try XCTUnwrap(record["attributions"] as? [[String: Any]])
            XCTAssertEqual(attributions.map { $0["target"] as! Int }, [0, 1])
            for a in attributions {
                XCTAssertEqual(Set(a.keys), ["target", "gs", "ixg", "attnlrp", "cplrp", "ig", "ig_delta"])
                for key in ["gs", "ixg", "attnlrp", "cplrp", "ig"] { XCTAssertEqual((a[key] as? [Double])?.count, t, key) }
                XCTAssertNotNil(a["ig_delta"] as? Double)
                // [CLS] and [SEP] are their own baseline: no IG.
                XCTAssertEqual((a["ig"] as! [Double]).first, 0)
                XCTAssertEqual((a["ig"] as! [Double]).last, 0)
            }
            // Signed scores, one set per class.
            XCTAssertNotEqual(attributions[0]["attnlrp"] as! [Double], attributions[1]["attnlrp"] as! [Double])
        }
        // rollout alone: no attributions, only the top-level scores.
        let only = try runBinary(["--methods", "rollout", "-o", "-", input.path])
        XCTAssertEqual(only.status, 0, only.stderr)
        let first = try jsonObjects([String(decoding: only.stdout, as: UTF8.self).split(separator: "\n").map(String.init)[0]])[0]
        XCTAssertNil(first["attributions"])
        XCTAssertNil(first["lat"])
        XCTAssertEqual(first["rollout"] as? [Double], records[0]["rollout"] as? [Double])
    }

    func testBadMethodsAndStepsExitTwo() throws {
        let base = try temporaryDirectory(self)
        let input = try sst2Subset(base, records: 3)
        let out = base.appendingPathComponent("out").path
        let cases: [([String], String)] = [
            (["--methods", "attnlrp,shapley"], "unknown method 'shapley'"),
            (["--methods", "ig", "--ig-steps", "0"], "--ig-steps 0"),
            (["--methods", "ig", "--ig-steps", "-3"], "--ig-steps"),
            (["--methods", "ig", "--ig-steps", "100000000"], "--ig-steps 100000000"),
            (["--methods", "ig", "--ig-steps", "many"], "--ig-steps"),
        ]
        for (args, needle) in cases {
            let r = try runBinary(["-o", out] + args + [input.path])
            XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(needle), "\(args): \(r.stderr)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "\(args): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(args): no run left behind")
        }
    }
}
