import ArgumentParser

struct Benchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "benchmark", abstract: "Not built yet.")

    func run() throws {
        throw ValidationError("'benchmark' is not built yet")
    }
}
