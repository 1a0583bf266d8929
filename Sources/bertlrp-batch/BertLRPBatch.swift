import ArgumentParser

@main
struct BertLRPBatch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bertlrp-batch",
        abstract: "Token-level explanations (gs, gi, lrp, lat) of a BERT classifier over whole datasets.",
        subcommands: [Attribute.self, Tokenize.self, Convert.self, Merge.self, Benchmark.self],
        defaultSubcommand: Attribute.self
    )
}
