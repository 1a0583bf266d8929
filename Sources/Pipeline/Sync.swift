import Foundation

/// A blocking FIFO between threads; `pop` returns nil once closed and empty.
final class BlockingQueue<Element>: @unchecked Sendable {
    private let cond = NSCondition()
    private var items: [Element] = []
    private var head = 0
    private var closed = false

    func push(_ item: Element) {
        cond.lock()
        items.append(item)
        cond.signal()
        cond.unlock()
    }

    func pop() -> Element? {
        cond.lock()
        defer { cond.unlock() }
        while head == items.count && !closed { cond.wait() }
        guard head < items.count else { return nil }
        let item = items[head]
        head += 1
        if head > 64 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        return item
    }

    func close() {
        cond.lock()
        closed = true
        cond.broadcast()
        cond.unlock()
    }
}

/// A counting gate bounding the records in flight (read but not yet written),
/// which bounds memory; `cancel` wakes everyone when the run fails.
final class Gate: @unchecked Sendable {
    private let cond = NSCondition()
    private var available: Int
    private var cancelled = false

    init(capacity: Int) { available = capacity }

    /// False when the run was cancelled.
    func acquire() -> Bool {
        cond.lock()
        defer { cond.unlock() }
        while available == 0 && !cancelled { cond.wait() }
        if cancelled { return false }
        available -= 1
        return true
    }

    func release() {
        cond.lock()
        available += 1
        cond.signal()
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

/// Runs `body` on a new thread with a roomy stack; `join` waits for it.
final class Worker: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)

    init(name: String, body: @escaping @Sendable () -> Void) {
        let done = self.done
        let t = Thread {
            body()
            done.signal()
        }
        t.name = name
        t.stackSize = 16 << 20
        t.start()
    }

    func join() { done.wait() }
}

/// Runs `body(0)`, ..., `body(n - 1)` each on a thread of its own and waits
/// for all. The parallel loop for compute: not
/// `DispatchQueue.concurrentPerform`, because libdispatch counts the
/// processors in its initializer, while the process is still held to one
/// (Sources/CStartup), and would then run the iterations one after another.
public enum Parallel {
    public static func run(_ n: Int, name: String, _ body: @escaping @Sendable (Int) -> Void) {
        if n == 1 { return body(0) }
        let workers = (0..<n).map { w in Worker(name: "\(name)-\(w)") { body(w) } }
        for w in workers { w.join() }
    }
}

/// A value computed on a thread of its own while the caller goes on;
/// `value()` waits for it, once, and rethrows what the computation threw.
public final class Background<T>: @unchecked Sendable {
    private final class Box: @unchecked Sendable { var result: Result<T, Error>? }
    private let box = Box()
    private let worker: Worker

    public init(name: String, _ body: @escaping @Sendable () throws -> T) {
        let box = self.box
        worker = Worker(name: name) { box.result = Result(catching: body) }
    }

    public func value() throws -> T {
        worker.join()
        return try box.result!.get()
    }
}

/// Hands out the indices 0..<limit, each once, to whichever worker asks next.
public final class WorkCounter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()

    public init() {}

    public func take(below limit: Int) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard value < limit else { return nil }
        value += 1
        return value - 1
    }
}
