import Foundation
import XCTest
@testable import IO

/// What makes a run another job (`--resume` refuses, `merge` refuses).
final class RunIdentityTests: XCTestCase {
    func identity(tool: String = "bertlrp-batch 0.1.0", methods: [String] = ["gs", "lat"], partition: String? = "0/3") -> RunIdentity {
        RunIdentity(tool: tool, model: ModelIdentity(path: "m", hash: "abc", files: [:], labels: ["a", "b"]),
                    methods: methods, targets: "predicted", maxSeqLength: 128, shardSize: 100, partition: partition, reader: [:])
    }

    func testDifferences() {
        XCTAssertNil(identity().difference(from: identity()))
        XCTAssertEqual(identity(tool: "bertlrp-batch 0.2.0").difference(from: identity()),
                       "tool version differs (the run was made by bertlrp-batch 0.1.0; this is bertlrp-batch 0.2.0)")
        XCTAssertEqual(identity(methods: ["lat"]).difference(from: identity()), "methods differ (the run used gs,lat; now lat)")
        XCTAssertNotNil(identity(partition: "1/3").difference(from: identity()))
        XCTAssertNil(identity(partition: "1/3").difference(from: identity(), ignoringPartition: true))
    }
}
