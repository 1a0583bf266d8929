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

    /// The one place where errors become exit codes (docs/CONTRACT.md section 6).
    /// `--help` and `--version` print as ArgumentParser does (exit 0). Every
    /// other error is one line starting `bertlrp-batch: `: a `CommandFailure`
    /// exits with its code; ArgumentParser's usage errors (its message without
    /// "Error: " and the usage text) and any other error exit 2.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let failure as CommandFailure {
            fail(failure.message, exitCode: failure.exitCode)
        } catch {
            switch exitCode(for: error) {
            case .success: exit(withError: error)
            case .validationFailure: fail(message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)", exitCode: 2)
            default: fail("\(error)", exitCode: 2)
            }
        }
    }

    private static func fail(_ message: String?, exitCode: Int32) -> Never {
        if let message { FileHandle.standardError.write(Data("bertlrp-batch: \(message)\n".utf8)) }
        Foundation.exit(exitCode)
    }
}

/// The commands' one error type: `BertLRPBatch.main` writes `message`, when
/// there is one, as the line `bertlrp-batch: message` and exits with `exitCode`.
struct CommandFailure: Error, CustomStringConvertible {
    var message: String?
    var exitCode: Int32

    /// A usage or configuration error: its line, exit 2.
    init(_ message: String) {
        self.message = message
        exitCode = 2
    }

    private init(silentExit exitCode: Int32) {
        message = nil
        self.exitCode = exitCode
    }

    /// Stop with exit 2: the command has written why already.
    static let reported = CommandFailure(silentExit: 2)
    /// Some records failed (the command's summary says how many): exit 3.
    static let recordsFailed = CommandFailure(silentExit: 3)

    var description: String { message ?? "exit code \(exitCode)" }
}
