import ArgumentParser

struct EngineBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "engine", abstract: "Not built yet.")

    func run() throws {
        throw ValidationError("'benchmark engine' is not built yet")
    }
}
