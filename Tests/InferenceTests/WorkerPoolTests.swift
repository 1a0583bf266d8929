import Foundation
import XCTest
@testable import Inference

/// The Dispatch worker pool: every item is done once, by one worker's own
/// state; the worker count is capped with a note; the thread check passes
/// for a plain count.
final class WorkerPoolTests: XCTestCase {
    final class Tally: @unchecked Sendable {
        var items: [Int] = []   // touched by its own worker only
    }

    func testEveryItemIsDoneOnceByOneWorker() throws {
        let tallies = (0..<3).map { _ in Tally() }
        let pool = try WorkerPool<Tally, Int>(states: tallies, label: "test-pool") { tally, item in
            tally.items.append(item)
        }
        for i in 0..<1000 { pool.submit(i) }
        pool.finish()
        let done = tallies.flatMap(\.items).sorted()
        XCTAssertEqual(done, Array(0..<1000))
        // Each worker takes items in the order submitted.
        for t in tallies { XCTAssertEqual(t.items, t.items.sorted()) }
    }

    func testWorkerCountIsCappedWithANote() throws {
        let limit = Threads.maxWorkers
        XCTAssertEqual(Threads.capped(1).workers, 1)
        XCTAssertNil(Threads.capped(limit).note)
        let capped = Threads.capped(100_000)
        XCTAssertEqual(capped.workers, limit)
        XCTAssertTrue(capped.note?.contains("100000 workers asked, \(limit) used") ?? false, capped.note ?? "no note")
        XCTAssertNoThrow(try Threads.check(limit + 2))
    }
}
