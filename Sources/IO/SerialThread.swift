#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// One background thread that runs submitted jobs in order: the safetensors
/// writer's writes, so that they overlap the reading, checksumming and
/// transposing the converter does on the caller's thread.
///
/// `submit` returns a ticket; `wait(for:)` blocks until that job has run, so a
/// caller can reuse the buffer the job was reading. The first job to throw is
/// kept: later jobs are skipped, and `drain()` throws it.
final class SerialThread: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [() throws -> Void] = []
    private var head = 0
    private var submitted = 0
    private var completed = 0
    private var closed = false
    private var cancelled = false
    private var failure: Error?
    private var thread = pthread_t()

    init() {
        // A plain pthread: Foundation's Thread spun in sched_yield here
        // (thousands of calls, ~0.07 s of a 0.5 s conversion).
        let me = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&thread, nil, { arg in
            let worker = Unmanaged<SerialThread>.fromOpaque(arg!).takeRetainedValue()
            worker.run()
            return nil
        }, me)
        precondition(rc == 0, "cannot start a background thread")
    }

    /// Queues a job; returns its ticket.
    @discardableResult
    func submit(_ job: @escaping () throws -> Void) -> Int {
        condition.lock()
        defer { condition.unlock() }
        precondition(!closed, "job submitted after stop()")
        jobs.append(job)
        submitted += 1
        condition.broadcast()
        return submitted
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

    /// Skips the jobs not yet started, waits for the running one and ends the
    /// thread. Called once, by the owner, before it frees what jobs point into.
    func stop() {
        condition.lock()
        if closed {
            condition.unlock()
            return
        }
        closed = true
        cancelled = true
        condition.broadcast()
        condition.unlock()
        pthread_join(thread, nil)
    }

    private func run() {
        while true {
            condition.lock()
            while head == jobs.count && !closed { condition.wait() }
            if head == jobs.count {
                condition.unlock()
                return
            }
            let job = jobs[head]
            head += 1
            if head > 64 {
                jobs.removeFirst(head)
                head = 0
            }
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
    }
}
