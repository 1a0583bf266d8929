import Foundation

/// Finds the model used when `--model` is not given (docs/CONTRACT.md section 4):
/// `BERTLRP_MODEL`, else `models/minilm-sst2` of the checkout this binary was
/// built from, found next to the executable or above it.
enum BundledModel {
    static let relativePath = "models/minilm-sst2"

    static func locate() -> URL? {
        if let env = ProcessInfo.processInfo.environment["BERTLRP_MODEL"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        var candidates: [URL] = []
        // Next to or above the executable (.build/release/bertlrp-batch sits three levels below the checkout).
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<6 {
            candidates.append(dir.appendingPathComponent(relativePath))
            candidates.append(dir.appendingPathComponent("share/bertlrp-batch/minilm-sst2"))
            dir = dir.deletingLastPathComponent()
        }
        // The checkout this source file was compiled from.
        let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(checkout.appendingPathComponent(relativePath))
        return candidates.first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("config.json").path) }
    }
}
