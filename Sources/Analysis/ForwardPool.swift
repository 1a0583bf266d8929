import Foundation
import Inference

/// Forward passes only, packed into micro-batches and spread over workers
/// (Inference's `WorkerPool`, as the pipeline's), each with its own `Engine`
/// (scratch) over the one shared model.
final class ForwardPool: @unchecked Sendable {
    let engines: [Engine]
    let batchTokens: Int
    let maxBatch: Int
    /// Forward passes done so far (read by the progress line).
    private let lock = NSLock()
    private var passesDone = 0

    init(model: BertModel, workers: Int, batchTokens: Int, maxBatch: Int = 256) {
        engines = (0..<max(1, workers)).map { _ in Engine(model: model) }
        self.batchTokens = batchTokens
        self.maxBatch = maxBatch
    }

    var passes: Int { lock.lock(); defer { lock.unlock() }; return passesDone }

    /// The class probabilities of every input, in order.
    func probabilities(_ inputs: [EncodedInput]) throws -> [[Float]] {
        try forward(inputs).map(\.probs)
    }

    /// The logits and class probabilities of every input, in order.
    func forward(_ inputs: [EncodedInput]) throws -> [(logits: [Float], probs: [Float])] {
        // Micro-batches: consecutive inputs up to the token budget (the
        // engine packs rows without padding, so order costs nothing).
        var batches: [Range<Int>] = []
        var start = 0, tokens = 0
        for (i, x) in inputs.enumerated() {
            if i > start && (tokens + x.ids.count > batchTokens || i - start >= maxBatch) {
                batches.append(start..<i)
                start = i
                tokens = 0
            }
            tokens += x.ids.count
        }
        if start < inputs.count { batches.append(start..<inputs.count) }

        final class Shared: @unchecked Sendable {
            var out: [(logits: [Float], probs: [Float])]
            var failure: Error?
            init(_ n: Int) { out = [(logits: [Float], probs: [Float])](repeating: ([], []), count: n) }
        }
        let shared = Shared(inputs.count)
        let lock = self.lock
        let pool = try WorkerPool<Engine, Range<Int>>(states: Array(engines.prefix(max(1, min(engines.count, batches.count)))),
                                                     label: "bertlrp-evaluate") { [self] engine, range in
            lock.lock()
            let skip = shared.failure != nil
            lock.unlock()
            guard !skip else { return }
            do {
                let results = try engine.run(Array(inputs[range]), methods: [], targets: .predicted)
                lock.lock()
                for (i, r) in zip(range, results) { shared.out[i] = (r.logits, r.probs) }
                passesDone += range.count
                lock.unlock()
            } catch {
                lock.lock()
                if shared.failure == nil { shared.failure = error }
                lock.unlock()
            }
        }
        for b in batches { pool.submit(b) }
        pool.finish()
        if let e = shared.failure { throw AnalysisError("forward pass: \(e)") }
        return shared.out
    }
}

/// The live line on standard error while it is a terminal (records, forward
/// passes and their rate), and the one-line summary at the end, always.
final class AnalysisProgress: @unchecked Sendable {
    private let started = Date()
    private let interactive = isatty(2) != 0
    private var timer: DispatchSourceTimer?
    private let lock = NSLock()
    private var records = 0
    private let passes: () -> Int

    init(passes: @escaping () -> Int) { self.passes = passes }

    func start() {
        guard interactive else { return }
        let t = DispatchSource.makeTimerSource(queue: DispatchQueue.global(qos: .utility))
        t.schedule(deadline: .now() + 1, repeating: 1)
        t.setEventHandler { [weak self] in
            guard let self else { return }
            FileHandle.standardError.write(Data("\r\u{1B}[K\(self.line())".utf8))
        }
        t.resume()
        timer = t
    }

    func add(records n: Int) { lock.lock(); records += n; lock.unlock() }

    private func line() -> String {
        lock.lock(); let r = records; lock.unlock()
        let p = passes(), elapsed = max(1e-3, Date().timeIntervalSince(started))
        return "\(r) records, \(p) forward passes, " + String(format: "%.1f records/s, %.0f passes/s", Double(r) / elapsed, Double(p) / elapsed)
    }

    func finish(_ summary: String) {
        timer?.cancel()
        timer = nil
        let elapsed = Date().timeIntervalSince(started)
        FileHandle.standardError.write(Data(((interactive ? "\r\u{1B}[K" : "") + "bertlrp-batch: " + line()
            + String(format: " in %.1f s", elapsed) + summary + "\n").utf8))
    }
}
