import ArgumentParser

/// `bertlrp-batch benchmark ...`: throughput figures, each run side by side
/// with its baseline in the same process.
struct Benchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "benchmark",
        abstract: "Measure throughput on this machine.",
        subcommands: [TokenizerBenchmark.self, EngineBenchmark.self]
    )
}
