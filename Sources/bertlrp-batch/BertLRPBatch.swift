import ArgumentParser
import Foundation

@main
struct BertLRPBatch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bertlrp-batch",
        abstract: "Token-level explanations (gs, gi, lrp, lat) of a BERT classifier over whole datasets.",
        subcommands: [Attribute.self, Tokenize.self, Convert.self, Merge.self, Benchmark.self],
        defaultSubcommand: Attribute.self
    )

    /// As ArgumentParser's, except that usage errors exit with 2 (CONTRACT.md
    /// section 6) instead of EX_USAGE (64).
    static func main() {
        restartWithSingleThreadedBLAS()
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

    /// OpenBLAS starts its thread pool when the binary loads, before `main`,
    /// and the idle threads spin for a while: on a 2-core machine that takes a
    /// core from a short command (it made `convert` up to twice as slow). Our
    /// parallelism is one BLAS thread per worker (`Engine.setBLASThreads` grows
    /// the pool where a benchmark asks for more), so unless the user chose a
    /// count, start again with a pool of one. The process id stays the same.
    private static func restartWithSingleThreadedBLAS() {
        #if os(Linux)
        guard getenv("OPENBLAS_NUM_THREADS") == nil else { return }
        setenv("OPENBLAS_NUM_THREADS", "1", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // execv returns only when it failed: carry on with the pool as it is.
        #endif
    }
}
