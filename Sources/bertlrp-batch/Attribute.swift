import ArgumentParser

struct Attribute: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "attribute", abstract: "Not built yet.")

    func run() throws {
        throw ValidationError("'attribute' is not built yet")
    }
}
