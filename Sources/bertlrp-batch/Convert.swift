import ArgumentParser
import Foundation
import IO

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Turn a TF checkpoint or a torch.save file into a model directory.",
        discussion: """
        SRC is a TF checkpoint prefix (bert_model.ckpt, with its .index and .data-* files), \
        a torch.save file (zip or legacy format; Hugging Face or BERT-LRP names, with or \
        without module./bert. prefixes), a safetensors file, or a directory holding one. \
        A config.json or bert_config.json and a vocab.txt lying beside SRC are used. \
        Optimizer slots and pre-training heads are skipped and listed. Nothing is left \
        behind on error (exit code 2).
        """)

    @Argument(help: "Checkpoint prefix, file or directory.")
    var source: String

    @Option(name: .shortAndLong, help: "The model directory to create (required).")
    var output: String?

    @Option(help: "config.json or bert_config.json (default: the one beside SRC).")
    var config: String?

    @Option(help: "vocab.txt (default: the one beside SRC).")
    var vocab: String?

    @Option(help: "Class names in classifier order, comma-separated (e.g. negative,positive).")
    var labels: String?

    @Option(help: "Number of classes, checked against the classifier.")
    var numLabels: Int?

    @Option(help: "Element type of model.safetensors.")
    var dtype = OutputDType.f32

    @Flag(help: "Replace OUTPUT if it exists and is not empty.")
    var force = false

    /// The checks that need no file. A missing -o is checked here rather than
    /// by the parser so that the message says what to do.
    func validate() throws {
        if output == nil { throw ValidationError("\(source): no output directory; give -o DIR") }
        if labelNames?.contains(where: \.isEmpty) == true {
            throw ValidationError("\(source): --labels has an empty name")
        }
        if let numLabels, numLabels < 1 {
            throw ValidationError("\(source): --num-labels must be at least 1")
        }
    }

    func run() throws {
        let summary = try CheckpointConverter.convert(
            source: URL(fileURLWithPath: source), output: URL(fileURLWithPath: output!),
            options: ConversionOptions(config: config.map { URL(fileURLWithPath: $0) }, vocab: vocab.map { URL(fileURLWithPath: $0) },
                                       labels: labelNames, numLabels: numLabels, dtype: dtype.tensorType, overwrite: force))
        print(Self.describe(summary))
    }

    /// `--labels`, split at the commas.
    private var labelNames: [String]? {
        labels?.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    }

    static func describe(_ s: ConversionSummary) -> String {
        var lines: [String] = []
        lines.append("converted \(s.source) (\(s.format)) -> \(s.output.path)")
        lines.append("  tensors: \(s.tensorsWritten) read (\(s.sourceDTypes.joined(separator: ", "))), \(s.skipped.count) skipped, of \(s.tensorsInCheckpoint)")
        for reason in NameMapping.SkipReason.allCases {
            let names = s.skipped.filter { $0.reason == reason }.map(\.name)
            guard !names.isEmpty else { continue }
            lines.append("  skipped, \(reason.rawValue) (\(names.count)): \(compact(names))")
        }
        lines.append("  classes: \(s.labels.count) (\(s.labels.joined(separator: ", ")))")
        lines.append("  model.safetensors: \(s.dtype.rawValue), \(formatBytes(s.modelBytes))")
        for note in s.notes { lines.append("  note: \(note)") }
        lines.append("  time: \(String(format: "%.2f", s.seconds)) s")
        return lines.joined(separator: "\n")
    }

    /// Optimizer slots come in hundreds: group `x/adam_m` style names by their last part.
    static func compact(_ names: [String]) -> String {
        if names.count <= 12 { return names.joined(separator: ", ") }
        var groups: [String: Int] = [:]
        var order: [String] = []
        for n in names {
            let sep: Character = n.contains("/") ? "/" : "."
            let key = n.contains(sep) ? "*\(sep)" + (n.split(separator: sep).last.map(String.init) ?? n) : n
            if groups[key] == nil { order.append(key) }
            groups[key, default: 0] += 1
        }
        if order.count <= 12 {
            return order.map { groups[$0]! > 1 ? "\($0) x\(groups[$0]!)" : $0 }.joined(separator: ", ")
        }
        return names.prefix(10).joined(separator: ", ") + ", ... (\(names.count - 10) more)"
    }

    static func formatBytes(_ n: Int) -> String {
        if n >= 1 << 20 { return String(format: "%.1f MB", Double(n) / 1e6) }
        if n >= 1 << 10 { return String(format: "%.1f KB", Double(n) / 1e3) }
        return "\(n) bytes"
    }
}
