import Dispatch
import Foundation
import Inference

/// A counting gate bounding the records in flight (read but not yet written),
/// which bounds memory; `cancel` wakes everyone when the run fails.
final class Gate: @unchecked Sendable {
    private let cond = NSCondition()
    private var available: Int
    private var cancelled = false

    init(capacity: Int) { available = capacity }

    /// `n` places; false when the run was cancelled.
    func acquire(_ n: Int = 1) -> Bool {
        cond.lock()
        defer { cond.unlock() }
        while available < n && !cancelled { cond.wait() }
        if cancelled { return false }
        available -= n
        return true
    }

    func release(_ n: Int = 1) {
        guard n > 0 else { return }
        cond.lock()
        available += n
        cond.broadcast()
        cond.unlock()
    }

    func cancel() {
        cond.lock()
        cancelled = true
        cond.broadcast()
        cond.unlock()
    }
}

/// The first fatal error of any thread.
final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var error: Error?

    func set(_ e: Error) {
        lock.lock()
        if error == nil { error = e }
        lock.unlock()
    }

    var value: Error? {
        lock.lock()
        defer { lock.unlock() }
        return error
    }
}

/// A value computed on a Dispatch queue while the caller goes on; `value()`
/// waits for it, once, and rethrows what the computation threw. Where no
/// thread can be started now (a process limit), `value()` computes it.
public final class Background<T>: @unchecked Sendable {
    private final class Box: @unchecked Sendable { var result: Result<T, Error>? }
    private let box = Box()
    private let done = DispatchGroup()
    private let body: @Sendable () throws -> T

    public init(name: String, _ body: @escaping @Sendable () throws -> T) {
        self.body = body
        guard (try? Threads.check(1)) != nil else { return }
        let box = self.box
        DispatchQueue(label: name).async(group: done) { box.result = Result(catching: body) }
    }

    public func value() throws -> T {
        done.wait()
        return try (box.result ?? Result(catching: body)).get()
    }
}
