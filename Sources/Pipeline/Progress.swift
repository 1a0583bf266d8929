import Foundation

/// Progress on standard error while it is a terminal (records, records/s,
/// tokens/s, errors, ETA from the input bytes behind the records written,
/// when the inputs' total size is known),
/// and the one-line summary at the end, always.
public final class ProgressReporter: @unchecked Sendable {
    private let stats: PipelineStats
    private let totalBytes: Int64?
    private var timer: DispatchSourceTimer?
    private let interactive: Bool

    public init(stats: PipelineStats, totalBytes: Int64?) {
        self.stats = stats
        self.totalBytes = totalBytes
        self.interactive = isatty(2) != 0
    }

    public func start() {
        guard interactive else { return }
        let t = DispatchSource.makeTimerSource(queue: DispatchQueue.global(qos: .utility))
        t.schedule(deadline: .now() + 1, repeating: 1)
        t.setEventHandler { [weak self] in self?.draw() }
        t.resume()
        timer = t
    }

    private func draw() {
        FileHandle.standardError.write(Data("\r\u{1B}[K\(Self.line(stats.snapshot, elapsed: Date().timeIntervalSince(stats.started), totalBytes: totalBytes))".utf8))
    }

    /// The live line: records done by the workers (written ones follow in
    /// input order), their rates, and with a known input size the share of
    /// the input done and an ETA from this run's own pace.
    static func line(_ s: PipelineStats.Snapshot, elapsed: Double, totalBytes: Int64?) -> String {
        let elapsed = max(1e-3, elapsed)
        var line = "\(s.doneRecords) records, \(String(format: "%.1f", Double(s.doneRecords) / elapsed)) records/s, "
            + "\(String(format: "%.0f", Double(s.doneTokens) / elapsed)) tokens/s, \(s.doneErrors) errors"
        if let total = totalBytes, total > 0, s.doneBytes > 0 {
            let fraction = min(1, Double(s.resumedBytes + s.doneBytes) / Double(total))
            let left = max(0, Double(total - s.resumedBytes - s.doneBytes))
            line += String(format: ", %.0f%%", fraction * 100) + ", ETA " + duration(elapsed * left / Double(s.doneBytes))
        }
        return line
    }

    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        if t >= 3600 { return String(format: "%dh%02dm", t / 3600, (t % 3600) / 60) }
        if t >= 60 { return String(format: "%dm%02ds", t / 60, t % 60) }
        return "\(t)s"
    }

    /// Stops the live line (and clears it), printing nothing.
    public func stop() {
        timer?.cancel()
        timer = nil
        if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }

    /// Stops the live line and prints the summary.
    public func finish(destination: String, note: String = "") {
        timer?.cancel()
        timer = nil
        let s = stats.snapshot
        let elapsed = max(1e-3, Date().timeIntervalSince(stats.started))
        // Long records' windows (`--long window`), and those run again for their document's class.
        let windows = s.windows == 0 ? "" : " in \(s.windows) windows (\(s.windowsRedone) run twice)"
        let summary = "bertlrp-batch: \(s.records) records, \(s.errors) errors, \(s.tokens) tokens\(windows) in "
            + String(format: "%.1f s (%.1f records/s, %.0f tokens/s)", elapsed, Double(s.records) / elapsed, Double(s.tokens) / elapsed)
            + " -> \(destination)\(note)"
        FileHandle.standardError.write(Data(((interactive ? "\r\u{1B}[K" : "") + summary + "\n").utf8))
    }
}
