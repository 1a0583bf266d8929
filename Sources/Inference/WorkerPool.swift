#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Foundation

/// N workers, each with a state of its own (its `Engine`: the scratch
/// buffers it reuses from micro-batch to micro-batch), pulling items (micro-
/// batches) from one FIFO hand-off. Each worker is a serial Dispatch queue
/// (Dispatch gives such a queue a thread of its own).
///
/// The hand-off itself is unbounded: the caller bounds what it submits (the
/// pipeline holds a gate on the records in flight).
public final class WorkerPool<State, Item>: @unchecked Sendable {
    /// A state is used by its own worker only while the pool runs.
    private final class Slots: @unchecked Sendable {
        var states: [State?]
        var failure: Error?
        let lock = NSLock()
        init(_ n: Int) { states = Array(repeating: nil, count: n) }
    }

    /// The workers' states, in worker order.
    public let states: [State]
    private let items = HandOff<Item>()
    private let stopped = DispatchGroup()

    /// Starts `count` workers; each first makes its state with
    /// `makeState(w)` on its own thread (its scratch is then allocated where
    /// it is used, as with the threads before), then calls
    /// `body(state, item)` for the items it takes, one at a time, until
    /// `finish`. Returns once every state is made; rethrows the first error
    /// a `makeState` threw, after the workers have stopped. `extraThreads`:
    /// the threads the caller starts beside the workers, checked with them.
    /// Throws `ThreadError` when the process cannot start that many threads
    /// (a process limit): Dispatch would wait for a thread for ever.
    public init(count: Int, label: String, extraThreads: Int = 0,
                makeState: @escaping @Sendable (Int) throws -> State,
                body: @escaping @Sendable (State, Item) -> Void) throws {
        precondition(count > 0, "a pool of no workers")
        try Threads.check(count + extraThreads)
        let slots = Slots(count)
        let ready = DispatchGroup()
        for w in 0..<count {
            ready.enter()
            stopped.enter()
            DispatchQueue(label: "\(label)-\(w)").async { [items, stopped] in
                let made = Result { try makeState(w) }
                slots.lock.lock()
                switch made {
                case let .success(state): slots.states[w] = state
                case let .failure(error): if slots.failure == nil { slots.failure = error }
                }
                slots.lock.unlock()
                ready.leave()
                if case let .success(state) = made {
                    while let item = items.pop() { body(state, item) }
                }
                stopped.leave()
            }
        }
        ready.wait()
        if let failure = slots.failure {
            items.close()
            stopped.wait()
            throw failure
        }
        states = slots.states.map { $0! }
    }

    /// A pool over states made beforehand (`states[w]` for worker `w`).
    public convenience init(states: [State], label: String, extraThreads: Int = 0,
                            body: @escaping @Sendable (State, Item) -> Void) throws {
        let given = Given(states)
        try self.init(count: states.count, label: label, extraThreads: extraThreads,
                      makeState: { given.states[$0] }, body: body)
    }

    private final class Given: @unchecked Sendable {
        let states: [State]
        init(_ states: [State]) { self.states = states }
    }

    /// Queues an item for the next free worker.
    public func submit(_ item: Item) { items.push(item) }

    /// No more items: waits until the workers have done every one and stopped.
    /// Called once.
    public func finish() {
        items.close()
        stopped.wait()
    }
}

/// The worker count's bound and the check that threads can be started.
public enum Threads {
    /// More workers than this buy nothing and only multiply engine memory;
    /// Dispatch also keeps at most 255 threads for queues like ours.
    public static var maxWorkers: Int { min(64, 4 * ProcessInfo.processInfo.activeProcessorCount) }

    /// `requested`, or `maxWorkers` when it is more; one with a BLAS that
    /// is not safe from several threads (`OpenBLAS.threadSafe`). Opens
    /// OpenBLAS: call it before starting threads of your own.
    public static func capped(_ requested: Int) -> (workers: Int, note: String?) {
        if requested > 1 && !OpenBLAS.threadSafe {
            return (1, "1 worker, not \(requested): \(OpenBLAS.soname) is OpenBLAS's sequential build, "
                + "which is not safe from several threads (install libopenblas0-pthread, or select it with update-alternatives)")
        }
        let limit = maxWorkers
        guard requested > limit else { return (requested, nil) }
        return (limit, "\(requested) workers asked, \(limit) used (at most 4 per processor, 64 in all)")
    }

    /// Throws unless `n` more threads can run at once now: starts `n` small
    /// threads that wait until all exist, then ends them. libdispatch retries
    /// a failed thread creation for ever, so a process limit (`ulimit -u`, a
    /// container's pids limit) would otherwise hang the run with no word.
    public static func check(_ n: Int) throws(ThreadError) {
        guard n > 0 else { return }
        let release = DispatchSemaphore(value: 0)
        let context = Unmanaged.passRetained(release)
        defer { context.release() }
        var threads: [pthread_t] = []
        threads.reserveCapacity(n)
        var failure: Int32 = 0
        for _ in 0..<n {
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { arg in
                Unmanaged<DispatchSemaphore>.fromOpaque(arg!).takeUnretainedValue().wait()
                return nil
            }, context.toOpaque())
            if rc != 0 {
                failure = rc
                break
            }
            threads.append(thread)
        }
        for _ in threads { release.signal() }
        for t in threads { pthread_join(t, nil) }
        if failure != 0 { throw ThreadError(wanted: n, started: threads.count, code: failure) }
    }
}

public struct ThreadError: Error, CustomStringConvertible {
    public var wanted: Int, started: Int, code: Int32
    public var description: String {
        "cannot start \(wanted) threads (started \(started), then: \(String(cString: strerror(code)))); "
            + "fewer --workers, or a higher process limit (ulimit -u, the container's pids limit)"
    }
}

/// A blocking FIFO between threads; `pop` returns nil once closed and empty.
final class HandOff<Element>: @unchecked Sendable {
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
