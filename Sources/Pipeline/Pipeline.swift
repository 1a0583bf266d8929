import Dispatch
import Foundation
import Inference
import IO
import Tokenizer

/// `--partition I/N`: only records with `index % N == I`.
public struct Partition: Sendable, Equatable, CustomStringConvertible {
    public var i: Int
    public var n: Int
    public init(i: Int, n: Int) {
        self.i = i
        self.n = n
    }

    public static func parse(_ text: String) -> Partition? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, i >= 0, i < n else { return nil }
        return Partition(i: i, n: n)
    }

    public func contains(_ index: Int) -> Bool { index % n == i }
    public var description: String { "\(i)/\(n)" }
}

public struct PipelineOptions: Sendable {
    public var methods: Methods
    public var target: TargetOption
    /// The model's class names (id2label order).
    public var labels: [String]
    public var maxSeqLength: Int
    public var workers: Int
    /// Records a shard; windows never straddle a shard boundary, so a resumed
    /// run forms exactly the micro-batches of an uninterrupted one.
    public var shardSize: Int
    public var partition: Partition?
    /// Records with a smaller index are skipped (they are in committed shards).
    public var startIndex: Int
    /// Micro-batch budget in padded tokens (count × longest) and cap in examples.
    public var batchTokens: Int
    public var maxBatch: Int
    /// Engine examples (records, or windows of long ones) sorted together by length.
    public var window: Int
    /// `--long`: texts longer than `maxSeqLength` cut off, or cut into windows.
    public var long: LongMode
    /// The model's `probs` are sigmoids (a long document's come from its mean logits).
    public var multiLabel: Bool

    public init(methods: Methods = .all, target: TargetOption = .predicted, labels: [String], maxSeqLength: Int = 128,
                workers: Int = ProcessInfo.processInfo.activeProcessorCount, shardSize: Int = 10_000,
                partition: Partition? = nil, startIndex: Int = 0, batchTokens: Int = 2048, maxBatch: Int = 64, window: Int = 512,
                long: LongMode = .truncate, multiLabel: Bool = false) {
        self.methods = methods
        self.target = target
        self.labels = labels
        self.maxSeqLength = maxSeqLength
        self.workers = workers
        self.shardSize = shardSize
        self.partition = partition
        self.startIndex = startIndex
        self.batchTokens = batchTokens
        self.maxBatch = maxBatch
        self.window = window
        self.long = long
        self.multiLabel = multiLabel
    }
}

/// Where the ordered output goes: shards in a directory, or standard output.
/// Called from one thread, in input order.
public protocol RecordSink: AnyObject, Sendable {
    func write(line: [UInt8], index: Int) throws
    func write(error: BadRecord) throws
    /// All records are written.
    func finish() throws
}

/// Live counters: records written (the summary), and records done by the
/// workers with the input bytes behind them (the progress display: output is
/// written in input order, so it advances in bursts of a window).
public final class PipelineStats: @unchecked Sendable {
    public struct Snapshot {
        public var records = 0, errors = 0, tokens = 0
        /// Done by the workers (or found bad), not yet necessarily written.
        public var doneRecords = 0, doneErrors = 0, doneTokens = 0
        /// Input bytes behind the done records (with the records of other
        /// partitions read past before each).
        public var doneBytes: Int64 = 0
        /// Input bytes of the records a resumed run skips (done before).
        public var resumedBytes: Int64 = 0
        /// Windows of long records (`--long window`), and those run a second
        /// time for their document's class (see `LongDocument`).
        public var windows = 0, windowsRedone = 0
    }

    private let lock = NSLock()
    private var counts = Snapshot()
    public let started = Date()

    func add(records: Int = 0, errors: Int = 0, tokens: Int = 0) {
        lock.lock()
        counts.records += records
        counts.errors += errors
        counts.tokens += tokens
        lock.unlock()
    }

    func done(records: Int = 0, errors: Int = 0, tokens: Int = 0, bytes: Int64) {
        lock.lock()
        counts.doneRecords += records
        counts.doneErrors += errors
        counts.doneTokens += tokens
        counts.doneBytes += bytes
        lock.unlock()
    }

    func windows(count: Int = 0, redone: Int = 0) {
        lock.lock()
        counts.windows += count
        counts.windowsRedone += redone
        lock.unlock()
    }

    func resumed(bytes: Int64) {
        lock.lock()
        counts.resumedBytes = bytes
        lock.unlock()
    }

    public var snapshot: Snapshot {
        lock.lock()
        defer { lock.unlock() }
        return counts
    }
}

/// The batch pipeline: the caller's thread reads and tokenizes (overlapping
/// compute), forms micro-batches per window, N workers (a `WorkerPool` on
/// Dispatch) run the engine and format the records, one serial queue puts
/// them back in input order and writes them.
public final class Pipeline: @unchecked Sendable {
    public let options: PipelineOptions
    public let stats = PipelineStats()
    private let encoder: TextEncoder
    private let makeRunner: @Sendable () throws -> ExampleRunner

    /// One good record on its way through.
    struct Pending {
        var seq: Int
        var record: InputRecord
        var tokenized: TokenizedInput
        var selection: TargetSelection
        /// Input bytes behind this record (for progress).
        var bytes: Int64
        /// Its share of the records-in-flight gate: 1, or its windows' count.
        var weight = 1
    }

    /// One engine example: a record, or window `window` of a long record's `document`.
    struct Unit {
        var pending: Pending
        var input: EncodedInput
        var document: LongDocument?
        var window = 0
    }

    enum Output {
        case line([UInt8], index: Int, tokens: Int, weight: Int)
        case bad(BadRecord, weight: Int)

        /// The record's share of the gate (`Pending.weight`).
        var weight: Int {
            switch self {
            case let .line(_, _, _, w), let .bad(_, w): return w
            }
        }
    }

    public init(options: PipelineOptions, encoder: TextEncoder, makeRunner: @escaping @Sendable () throws -> ExampleRunner) {
        self.options = options
        self.encoder = encoder
        self.makeRunner = makeRunner
    }

    /// Runs to the end of `next` (which returns nil at the end of the input;
    /// a thrown error stops the run and is rethrown here after the threads end).
    /// `position`, when given, tells how far into the input `next` has read.
    public func run(next: @escaping () throws -> ReadItem?, position: (() -> Int64)? = nil, sink: RecordSink) throws {
        let options = self.options
        let capacity = max(4 * options.window, 2 * options.window + options.workers * options.maxBatch)
        // The gate counts engine examples (a long record weighs its windows,
        // at most half the gate, so that it always gets in: fewer than
        // `window` examples wait unsubmitted while it waits).
        let gate = Gate(capacity: capacity)
        let failure = FailureBox()
        let reorder = Reorder()
        let stats = self.stats

        // Workers: run the engine, format records; each owns its runner.
        let workers = try WorkerPool<ExampleRunner, [Unit]>(
            count: max(1, options.workers), label: "bertlrp-worker", extraThreads: 1,
            makeState: { [makeRunner] _ in try makeRunner() }) { runner, batch in
            if failure.value != nil { return }
            Pipeline.process(batch, runner: runner, options: options, reorder: reorder, stats: stats)
        }

        // Writer: input order, one serial queue.
        let written = DispatchGroup()
        DispatchQueue(label: "bertlrp-writer").async(group: written) {
            var seq = 0
            while let item = reorder.take(seq) {
                do {
                    switch item {
                    case let .line(bytes, index, tokens, _):
                        try sink.write(line: bytes, index: index)
                        stats.add(records: 1, tokens: tokens)
                    case let .bad(b, _):
                        try sink.write(error: b)
                        stats.add(errors: 1)
                    }
                } catch {
                    failure.set(error)
                    gate.cancel()
                    reorder.cancel()
                    return
                }
                gate.release(item.weight)
                seq += 1
            }
        }

        // Reader and tokenizer: this thread.
        var seq = 0
        var lastPosition: Int64 = 0
        var window: [Unit] = []
        // Gate weight taken since the last flush, bad records included: the
        // window is flushed once it reaches `window`, so that records held
        // unsubmitted never fill the gate (a good record followed by a run of
        // bad ones would otherwise wait for ever: the bad ones cannot be
        // written before it, nor release their places).
        var takenSinceFlush = 0
        var goodInShard = 0
        func flush() {
            takenSinceFlush = 0
            guard !window.isEmpty else { return }
            let plan = Batching.plan(lengths: window.map { $0.input.ids.count }, budget: options.batchTokens, maxBatch: options.maxBatch)
            for b in plan { workers.submit(b.map { window[$0] }) }
            window.removeAll(keepingCapacity: true)
        }
        do {
            reading: while let item = try next() {
                let index = item.index
                if index < options.startIndex {
                    lastPosition = position?() ?? 0
                    stats.resumed(bytes: lastPosition)
                    continue
                }
                if let p = options.partition, !p.contains(index) { continue }
                guard gate.acquire() else { break reading }
                // The bytes since the last record taken: this record's, and
                // those of other partitions' records read past before it.
                let at = position?() ?? 0
                let bytes = at - lastPosition
                lastPosition = at
                switch item {
                case let .bad(b):
                    stats.done(errors: 1, bytes: bytes)
                    reorder.put(seq, .bad(b, weight: 1))
                    takenSinceFlush += 1
                case let .record(r):
                    switch prepare(r) {
                    case let .success(p):
                        var pending = Pending(seq: seq, record: r, tokenized: p.tokenized, selection: p.selection, bytes: bytes)
                        if let w = p.windows {
                            let count = w.spans.count
                            pending.weight = min(count, capacity / 2)
                            guard gate.acquire(pending.weight - 1) else { break reading }
                            let document = LongDocument(windows: w)
                            stats.windows(count: count)
                            for k in 0..<count {
                                window.append(Unit(pending: pending, input: document.input(k, of: p.tokenized), document: document, window: k))
                            }
                        } else {
                            window.append(Unit(pending: pending, input: EncodedInput(ids: p.tokenized.ids, segments: p.tokenized.segments)))
                        }
                        goodInShard += 1
                        takenSinceFlush += pending.weight
                    case let .failure(reason):
                        stats.done(errors: 1, bytes: bytes)
                        reorder.put(seq, .bad(BadRecord(index: r.index, input: r.input, line: r.line, reason: reason.description), weight: 1))
                        takenSinceFlush += 1
                    }
                }
                seq += 1
                if goodInShard == options.shardSize {
                    flush()
                    goodInShard = 0
                } else if window.count >= options.window || takenSinceFlush >= options.window {
                    flush()
                }
            }
            flush()
        } catch {
            failure.set(error)
            gate.cancel()
            reorder.cancel()
        }
        reorder.setTotal(seq)
        workers.finish()
        written.wait()
        if let e = failure.value { throw e }
        try sink.finish()
    }

    private func prepare(_ r: InputRecord) -> Result<(tokenized: TokenizedInput, selection: TargetSelection, windows: TokenWindows?), TargetError> {
        let tokenized: TokenizedInput
        var windows: TokenWindows?
        do {
            if case let .window(stride) = options.long {
                tokenized = try encoder.encode(text: r.text, textB: r.textB, maxLength: nil)
                // nil when the text fits one window: then it is exactly the record `--long truncate` makes.
                do { windows = try TokenWindows.of(segments: tokenized.segments, maxLength: options.maxSeqLength, stride: stride) } catch {
                    return .failure(TargetError("--long window: \(error)"))
                }
            } else {
                tokenized = try encoder.encode(text: r.text, textB: r.textB, maxLength: options.maxSeqLength)
            }
        } catch {
            return .failure(TargetError("tokenizer: \(error)"))
        }
        switch options.target.selection(label: r.label, labels: options.labels) {
        case let .success(s): return .success((tokenized, s, windows))
        case let .failure(e): return .failure(e)
        }
    }

    private static func process(_ batch: [Unit], runner: ExampleRunner, options: PipelineOptions, reorder: Reorder, stats: PipelineStats) {
        let methods = options.methods
        // Windows explained for their document's predicted class: chosen after the forward pass.
        func choose(_ units: [Unit]) -> (([ExampleResult]) -> [TargetSelection])? {
            units.contains { $0.document != nil && $0.pending.selection == .predicted } ? chooseTargets(units) : nil
        }
        var results: [Result<ExampleResult, Error>]
        do {
            let out = try runner.run(batch.map(\.input), methods: methods, targets: batch.map(\.pending.selection), chooseTargets: choose(batch))
            precondition(out.count == batch.count, "engine returned \(out.count) results for \(batch.count) inputs")
            results = out.map { .success($0) }
        } catch {
            // One bad example must not fail its neighbours: retry one by one.
            results = batch.map { u in
                Result { try runner.run([u.input], methods: methods, targets: [u.pending.selection], chooseTargets: choose([u]))[0] }
            }
        }
        for (u, r) in zip(batch, results) {
            let p = u.pending
            var result = r
            var windows: [Range<Int>]?
            if let d = u.document {
                // The record is made when its last window is done, by that window's worker.
                guard d.finish(u.window, r) else { continue }
                result = Result { try d.combine(selection: p.selection, tokenized: p.tokenized, runner: runner, options: options, stats: stats) }
                windows = d.windows.spans
            }
            switch result {
            case let .success(result):
                let line = RecordJSON.line(record: p.record, tokenized: p.tokenized, result: result, methods: methods, windows: windows)
                stats.done(records: 1, tokens: p.tokenized.ids.count, bytes: p.bytes)
                reorder.put(p.seq, .line(line, index: p.record.index, tokens: p.tokenized.ids.count, weight: p.weight))
            case let .failure(error):
                stats.done(errors: 1, bytes: p.bytes)
                reorder.put(p.seq, .bad(BadRecord(index: p.record.index, input: p.record.input, line: p.record.line, reason: "engine: \(error)"), weight: p.weight))
            }
        }
    }
}

/// Finished records by sequence number until the writer takes them in order.
final class Reorder: @unchecked Sendable {
    private let cond = NSCondition()
    private var done: [Int: Pipeline.Output] = [:]
    private var total: Int?
    private var cancelled = false

    func put(_ seq: Int, _ item: Pipeline.Output) {
        cond.lock()
        done[seq] = item
        cond.broadcast()
        cond.unlock()
    }

    /// The item `seq`, waiting for it; nil after the last one or on cancel.
    func take(_ seq: Int) -> Pipeline.Output? {
        cond.lock()
        defer { cond.unlock() }
        while true {
            if cancelled { return nil }
            if let item = done.removeValue(forKey: seq) { return item }
            if let total, seq >= total { return nil }
            cond.wait()
        }
    }

    func setTotal(_ n: Int) {
        cond.lock()
        total = n
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
