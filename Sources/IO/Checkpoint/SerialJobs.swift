import Dispatch
import Foundation
import ModelFiles

/// One serial Dispatch queue that runs submitted jobs in order: the safetensors
/// writer's writes, so that they overlap the reading, checksumming and
/// transposing the converter does on the caller's thread.
///
/// `submit` returns a ticket; `wait(for:)` blocks until that job has run, so a
/// caller can reuse the buffer the job was reading. The first job to throw is
/// kept: later jobs are skipped, and `drain()` throws it.
final class SerialJobs: @unchecked Sendable {
    private let condition = NSCondition()
    private let queue = DispatchQueue(label: "bertlrp-serial")
    private var submitted = 0
    private var completed = 0
    private var cancelled = false
    private var failure: Error?

    /// Queues a job; returns its ticket.
    @discardableResult
    func submit(_ job: @escaping () throws -> Void) -> Int {
        condition.lock()
        precondition(!cancelled, "job submitted after stop()")
        submitted += 1
        let ticket = submitted
        condition.unlock()
        // The job runs on the queue alone; the caller waits for its ticket
        // before touching what it uses.
        nonisolated(unsafe) let job = job
        queue.async { [self] in
            condition.lock()
            let skip = failure != nil || cancelled
            condition.unlock()
            var error: Error?
            if !skip {
                do { try job() } catch let e { error = e }
            }
            condition.lock()
            if let error, failure == nil { failure = error }
            completed += 1
            condition.broadcast()
            condition.unlock()
        }
        return ticket
    }

    /// Blocks until the job with this ticket (and every one before it) is done.
    func wait(for ticket: Int) {
        condition.lock()
        while completed < ticket { condition.wait() }
        condition.unlock()
    }

    /// The first error a job threw, if any (without waiting).
    var error: Error? {
        condition.lock()
        defer { condition.unlock() }
        return failure
    }

    /// Waits for every submitted job and throws the first error.
    func drain() throws {
        condition.lock()
        while completed < submitted { condition.wait() }
        let failure = self.failure
        condition.unlock()
        if let failure { throw failure }
    }

    /// Skips the jobs not yet started and waits for the running one. Called
    /// once, by the owner, before it frees what jobs point into.
    func stop() {
        condition.lock()
        cancelled = true
        while completed < submitted { condition.wait() }
        condition.unlock()
    }
}
