import Analysis
import ArgumentParser
import Foundation
import IO

/// `bertlrp-batch evaluate RUN_DIR`: word deletion and keep-only of every
/// method of a finished run against random, and the classification report
/// (docs/CONTRACT.md section 7).
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Word deletion (comprehensiveness), keep-only (sufficiency), accuracy curves and the classification report of a finished run.",
        discussion: """
        Deletes each method's k highest-ranked tokens (k = 1..K and ERASER's 1, 5, 10, 20, 50%), never [CLS]/[SEP], \
        re-running the run's model, and prints methods as rows: AOPCs with 95% bootstrap intervals and accuracy after \
        deletion. Writes the JSON document (default RUN_DIR/evaluation.json); the run is not changed.
        """
    )

    @Argument(help: ArgumentHelp("A finished run directory (attribute -o DIR, or merge).", valueName: "run-dir"))
    var directory: String

    @Option(name: [.short, .customLong("output")], help: "The JSON document (default RUN_DIR/evaluation.json).")
    var output: String?

    @Option(help: "Where the run's model lies now (default: the path in its manifest); it must have the same hash.")
    var model: String?

    @Option(name: .short, help: "Deletion curves for k = 1..K tokens.")
    var k = 10

    @Option(help: "What a deleted token becomes: pad, mask, unk or delete (removed).")
    var replace = Replacement.pad

    @Flag(name: .customLong("only-correct"), help: "Curves over the records the model got right before deletion (the seed's original_correct=True).")
    var onlyCorrect = false

    @Option(name: .customLong("min-tokens"), help: "Only records with at least N tokens besides [CLS]/[SEP] (the seed used 10).")
    var minTokens = 0

    @Option(name: .customLong("random-repeats"), help: "Random rankings per record (their mean is 'random').")
    var randomRepeats = 1

    @Option(help: "Seed of the random rankings and the bootstrap.")
    var seed: UInt64 = 1

    @Option(help: "Whose scores rank the tokens: the run's first attributions entry (default), predicted, a class number or name.")
    var target: TargetArgument?

    @Option(help: "Methods to evaluate, comma-separated (default: every method of the run).")
    var methods: String?

    @Option(help: "Worker threads (default: the active cores).")
    var workers: Int?

    @Option(name: .customLong("batch-tokens"), help: .hidden)
    var batchTokens: Int?

    func validate() throws {
        guard k >= 1 else { throw ValidationError("-k \(k): at least 1") }
        guard minTokens >= 0 else { throw ValidationError("--min-tokens \(minTokens): at least 0") }
        guard randomRepeats >= 1 else { throw ValidationError("--random-repeats \(randomRepeats): at least 1") }
        if let workers, workers < 1 { throw ValidationError("--workers \(workers): at least 1") }
        if let batchTokens, batchTokens < 1 { throw ValidationError("--batch-tokens \(batchTokens): at least 1") }
    }

    func run() throws {
        let dir = URL(fileURLWithPath: directory)
        let finished = try FinishedRun(dir)
        let loaded = try RunModel(run: finished, override: model.map { URL(fileURLWithPath: $0) })
        var o = EvaluationOptions()
        o.k = k
        o.replace = replace
        o.onlyCorrect = onlyCorrect
        o.minTokens = minTokens
        o.randomRepeats = randomRepeats
        o.seed = seed
        let labels = finished.manifest.identity.model.labels.isEmpty ? loaded.model.config.labels : finished.manifest.identity.model.labels
        o.target = try ScoreTarget.parse(target?.text, labels: labels)
        o.methods = methods.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
        if let workers { o.workers = workers }
        o.batchTokens = batchTokens
        let out = output.map { URL(fileURLWithPath: $0) } ?? dir.appendingPathComponent("evaluation.json")
        let result = try Evaluation.run(finished, model: loaded.model, tokenizer: loaded.tokenizer, modelHash: loaded.hash, options: o,
                                        report: { FileHandle.standardError.write(Data("bertlrp-batch: \($0)\n".utf8)) })
        do { try AtomicFile.write(Data(result.document.text().utf8), to: out) } catch { throw CommandFailure("\(out.path): \(error)") }
        print(result.table, terminator: "")
        for n in result.notes { print("note: \(n)") }
        print("-> \(out.path)")
    }
}
