import Analysis
import ArgumentParser
import Foundation
import IO

/// `bertlrp-batch report RUN_DIR`: one self-contained HTML page of a
/// finished run (docs/CONTRACT.md section 7).
struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write one self-contained HTML page of a finished run: heatmaps, errors, top words, faithfulness curves.",
        discussion: """
        The page holds a sample of --records records (the misclassified first, then the least confident, then a \
        seeded random sample, each group labelled) with every method's heatmap, and tables over all records: the \
        classification report and the words ranking. With an evaluation (RUN_DIR/evaluation.json or --evaluation) \
        also the deletion and keep-only curves and the AOPC table. Nothing is fetched when it opens.
        """
    )

    @Argument(help: ArgumentHelp("A finished run directory (attribute -o DIR, or merge).", valueName: "run-dir"))
    var directory: String

    @Option(name: [.short, .customLong("output")], help: "The HTML file (default RUN_DIR/report.html).")
    var output: String?

    @Option(help: "An evaluation of the run (default RUN_DIR/evaluation.json when it exists).")
    var evaluation: String?

    @Option(help: "Records embedded in the page.")
    var records = 500

    @Option(help: "Seed of the random group of the sample.")
    var seed: UInt64 = 1

    @Option(help: "Words shown at the top and at the bottom per method and class.")
    var top = 15

    @Option(name: .customLong("min-count"), help: "Only tokens seen more than N times in the words tables (the seed's min_freq; 0 is the seed's, words' default).")
    var minCount = 2

    func validate() throws {
        guard records >= 1 else { throw ValidationError("--records \(records): at least 1") }
        guard top >= 1 else { throw ValidationError("--top \(top): at least 1") }
        guard minCount >= 0 else { throw ValidationError("--min-count \(minCount): at least 0") }
    }

    func run() throws {
        let dir = URL(fileURLWithPath: directory)
        let finished = try FinishedRun(dir)
        let out = output.map { URL(fileURLWithPath: $0) } ?? dir.appendingPathComponent("report.html")
        try checkWritable(out)
        let evaluationURL = evaluation.map { URL(fileURLWithPath: $0) } ?? {
            let url = dir.appendingPathComponent("evaluation.json")
            return FileManager.default.fileExists(atPath: url.path) ? url : nil
        }()
        let evaluationText = try evaluationURL.map { try ReportData.evaluation($0, run: finished) }
        var o = ReportOptions()
        o.records = records
        o.seed = seed
        o.top = top
        o.minCount = minCount
        o.tool = "bertlrp-batch \(BertLRPBatch.version)"
        let data = try ReportData.build(finished, options: o)
        let page = ReportPage.html(data: data, evaluation: evaluationText)
        do { try AtomicFile.write(Data(page.utf8), to: out) } catch { throw CommandFailure("\(out.path): cannot write the report: \(error)") }
        print("-> \(out.path) (\(page.utf8.count / 1024) KiB)")
    }

    /// -o must name a file in an existing, writable directory: checked before the run is read.
    func checkWritable(_ url: URL) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw CommandFailure("\(url.path): -o names a directory; name the HTML file")
        }
        let parent = url.deletingLastPathComponent()
        guard FileManager.default.fileExists(atPath: parent.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CommandFailure("\(url.path): cannot write the report: \(parent.path) is not a directory")
        }
        guard access(parent.path, W_OK) == 0 else {
            throw CommandFailure("\(url.path): cannot write the report: \(parent.path) is not writable")
        }
    }
}
