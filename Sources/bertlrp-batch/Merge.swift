import ArgumentParser

struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "merge", abstract: "Not built yet.")

    func run() throws {
        throw ValidationError("'merge' is not built yet")
    }
}
