import ArgumentParser
import Foundation
import Pipeline

/// `bertlrp-batch merge DIR... -o DIR` (docs/CONTRACT.md section 4).
struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Combine the shards of several complete runs (partitions or reruns) into one ordered run.",
        discussion: """
        Accepts exactly the runs of one job: the same model, methods, options and inputs by content \
        (whatever their paths); checks every shard and errors.jsonl against its manifest; refuses \
        anything else, leaving no output. A record present in several runs is kept once.
        """
    )

    @Argument(help: "Run directories (each with a manifest.json).")
    var runs: [String]

    @Option(name: [.short, .customLong("output")], help: "The merged run's directory (new).")
    var output: String

    @Option(name: .customLong("shard-size"), help: "Records a shard (default: the first run's).")
    var shardSize: Int?

    func validate() throws {
        if let shardSize, shardSize < 1 { throw ValidationError("--shard-size \(shardSize): at least 1") }
    }

    func run() throws {
        let started = Date()
        let s = try RunMerger.merge(runs.map { URL(fileURLWithPath: $0) }, into: URL(fileURLWithPath: output), shardSize: shardSize)
        let dup = s.duplicates > 0 ? ", \(s.duplicates) duplicates dropped" : ""
        let seconds = String(format: "%.1f", Date().timeIntervalSince(started))
        FileHandle.standardError.write(Data("bertlrp-batch: merged \(runs.count) runs: \(s.records) records, \(s.errors) errors in \(s.shards) shards\(dup) in \(seconds) s -> \(output)\n".utf8))
        // As for a run (docs/CONTRACT.md section 6): 3 when the merged run holds bad records.
        if s.errors > 0 { throw CommandFailure.recordsFailed }
    }
}
