import ArgumentParser

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenize", abstract: "Not built yet.")

    func run() throws {
        throw ValidationError("'tokenize' is not built yet")
    }
}
