import ArgumentParser
import Foundation

@main
struct BertLRPBatch: ParsableCommand {
    /// Printed by `--version` and kept in each run's manifest: a run is
    /// resumed or merged only by the version that began it.
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "bertlrp-batch",
        abstract: "Token-level explanations (gs, gi, lrp, lat) of a BERT classifier over whole datasets.",
        version: version,
        subcommands: [Attribute.self, Tokenize.self, Convert.self, Merge.self, Evaluate.self, Words.self, Report.self, Benchmark.self],
        defaultSubcommand: Attribute.self
    )

    /// As ArgumentParser's, except that usage errors exit with 2 (docs/CONTRACT.md
    /// section 6) instead of EX_USAGE (64).
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            if exitCode(for: error) == .validationFailure {
                // One line: the message, without the usage text.
                let line = fullMessage(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
                FileHandle.standardError.write(Data((line + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }

}
