import Foundation
import Inference
import Tokenizer

/// `--long truncate|window` (README "Long documents").
public enum LongMode: Sendable, Equatable, CustomStringConvertible {
    /// Cut a text to `--max-seq-length` (the seed's behaviour).
    case truncate
    /// Overlapping windows `stride` content tokens apart (nil: half a window).
    case window(stride: Int?)

    public var description: String {
        switch self {
        case .truncate: return "truncate"
        case .window: return "window"
        }
    }

    public var stride: Int? {
        if case let .window(s) = self { return s }
        return nil
    }
}

/// The windows of one long record on their way through the workers: each
/// window's result as it arrives, until the last makes the record.
///
/// The windows are explained for the class of the document's mean logits.
/// With `--target predicted` that class is known only when every window has
/// been through the forward pass, and a document may span many micro-batches
/// (bounded memory), so each window is explained for the class of the mean
/// of the windows seen so far (`chooseTargets`, after its forward pass,
/// before its backward passes); when the last window is done, the windows
/// explained for another class than the document's final one are run again
/// for it (`redo`). The output therefore does not depend on the order in
/// which the windows ran, only the work does.
final class LongDocument: @unchecked Sendable {
    let windows: TokenWindows
    private let lock = NSLock()
    private var logits: [[Float]?]
    private var results: [ExampleResult?]
    private var failure: (window: Int, error: Error)?
    private var remaining: Int

    init(windows: TokenWindows) {
        self.windows = windows
        logits = [[Float]?](repeating: nil, count: windows.spans.count)
        results = [ExampleResult?](repeating: nil, count: windows.spans.count)
        remaining = windows.spans.count
    }

    /// The model input of window `w`.
    func input(_ w: Int, of tokenized: TokenizedInput) -> EncodedInput {
        EncodedInput(ids: windows.cut(tokenized.ids, w), segments: windows.cut(tokenized.segments, w))
    }

    /// Window `w`'s logits, after its forward pass.
    func record(_ w: Int, logits l: [Float]) {
        lock.lock()
        logits[w] = l
        lock.unlock()
    }

    /// The class to explain windows for now: the highest of the mean logits
    /// of every window through the forward pass so far.
    func provisionalTarget() -> Int {
        lock.lock()
        defer { lock.unlock() }
        return Self.argmax(WindowAverage.logits(logits.compactMap { $0 }))
    }

    /// Stores window `w`'s result (or failure); true when it was the last.
    func finish(_ w: Int, _ result: Result<ExampleResult, Error>) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        switch result {
        case let .success(r): results[w] = r
        case let .failure(e): if failure == nil { failure = (w, e) }
        }
        remaining -= 1
        return remaining == 0
    }

    /// The record's result from all its windows', re-running those explained
    /// for another class than the document's (only with `.predicted`). Called
    /// once, by the worker that finished the last window.
    func combine(selection: TargetSelection, tokenized: TokenizedInput, runner: ExampleRunner,
                 options: PipelineOptions, stats: PipelineStats) throws -> ExampleResult {
        if let failure { throw WindowFailure(window: failure.window, count: windows.spans.count, error: failure.error) }
        var done = results.map { $0! }
        if selection == .predicted && options.methods.needsTargets {
            let target = Self.argmax(WindowAverage.logits(done.map(\.logits)))
            let redo = done.indices.filter { done[$0].attributions.first?.target != target }
            let plan = Batching.plan(lengths: redo.map { input($0, of: tokenized).ids.count },
                                     budget: options.batchTokens, maxBatch: options.maxBatch)
            for batch in plan {
                let ws = batch.map { redo[$0] }
                do {
                    let out = try runner.run(ws.map { input($0, of: tokenized) }, methods: options.methods,
                                             targets: ws.map { _ in .classes([target]) })
                    for (w, r) in zip(ws, out) { done[w] = r }
                } catch {
                    throw WindowFailure(window: ws[0], count: windows.spans.count, error: error)
                }
            }
            stats.windows(redone: redo.count)
        }
        return WindowAverage.combine(done, positions: done.indices.map(windows.positions), count: windows.wholeLength,
                                     multiLabel: options.multiLabel)
    }

    static func argmax(_ v: [Double]) -> Int { v.indices.max { (v[$0], $1) < (v[$1], $0) }! }
}

struct WindowFailure: Error, CustomStringConvertible {
    var window: Int, count: Int, error: Error
    var description: String { "window \(window + 1) of \(count): \(error)" }
}

extension Pipeline {
    /// The targets of a micro-batch holding windows explained for their
    /// document's predicted class (see `LongDocument`).
    static func chooseTargets(_ batch: [Unit]) -> ([ExampleResult]) -> [TargetSelection] {
        { heads in
            for (u, head) in zip(batch, heads) { u.document?.record(u.window, logits: head.logits) }
            return batch.map { u in
                guard let d = u.document, u.pending.selection == .predicted else { return u.pending.selection }
                return .classes([d.provisionalTarget()])
            }
        }
    }
}
