import ArgumentParser

struct TokenizerBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenizer", abstract: "Not built yet.")

    func run() throws {
        throw ValidationError("'benchmark tokenizer' is not built yet")
    }
}
