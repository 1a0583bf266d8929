import Analysis
import ArgumentParser
import Foundation

/// `bertlrp-batch words RUN_DIR...`: the seed's corpus word ranking per
/// method and, over several runs, the correlation of the word scores
/// (docs/CONTRACT.md section 7).
struct Words: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "words",
        abstract: "Rank words by each method's normalised scores over finished runs; correlate the runs' word scores.",
        discussion: """
        Each record's |scores| are divided by their largest, then each token's mean over the corpus is ranked \
        (the seed's load_attribution_scores with normalized=True). With two or more runs, also the Pearson and \
        Spearman correlations of the per-token means over the tokens common to all runs.
        """
    )

    @Argument(help: "Finished run directories.")
    var runs: [String]

    @Option(help: "Methods, comma-separated (default: every method the runs have).")
    var method: String?

    @Option(help: "Words shown at the top and at the bottom.")
    var top = 30

    @Option(name: .customLong("min-count"), help: "Only tokens seen more than N times (the seed's min_freq).")
    var minCount = 0

    @Flag(name: .customLong("merge-subwords"), help: "Join ## pieces to their word (the sum of their normalised scores).")
    var mergeSubwords = false

    @Flag(help: "Keep [CLS]/[SEP] in the ranking and in each record's largest value (exactly the seed).")
    var specials = false

    @Option(help: "Whose scores: the run's first attributions entry (default), predicted, a class number or name.")
    var target: TargetArgument?

    @Flag(help: "One JSON document on standard output instead of the table.")
    var json = false

    func validate() throws {
        guard !runs.isEmpty else { throw ValidationError("name at least one run directory") }
        guard top >= 1 else { throw ValidationError("--top \(top): at least 1") }
        guard minCount >= 0 else { throw ValidationError("--min-count \(minCount): at least 0") }
    }

    func run() throws {
        let finished = try runs.map { try FinishedRun(URL(fileURLWithPath: $0)) }
        var o = WordOptions()
        o.methods = method.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
        o.top = top
        o.minCount = minCount
        o.mergeSubwords = mergeSubwords
        o.specials = specials
        o.target = try ScoreTarget.parse(target?.text, labels: finished[0].manifest.identity.model.labels)
        let result = try WordRanking.run(finished, options: o)
        print(json ? result.document.text() : result.table, terminator: "")
        if result.skipped > 0 && !json {
            print("note: \(result.skipped) record scorings were all zero and are left out")
        }
    }
}
