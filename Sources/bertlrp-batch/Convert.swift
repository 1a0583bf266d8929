import ArgumentParser

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "convert", abstract: "Not built yet.")

    func run() throws {
        throw ValidationError("'convert' is not built yet")
    }
}
