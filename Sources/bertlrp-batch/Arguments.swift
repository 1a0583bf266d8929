import Analysis
import ArgumentParser
import Inference
import IO
import Pipeline

// The option types of the command line, parsed by ArgumentParser: a bad value
// is a usage error (one line, exit 2, docs/CONTRACT.md section 6) before
// anything is read or written. The enums list their values in the message.
// (RecordFormat and Replacement conform here without @retroactive: the
// compiler refuses it for types of the same package.)

/// `--format tsv|jsonl`, in any case.
extension RecordFormat: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument.lowercased()) }
}

/// evaluate's `--replace pad|mask|unk|delete`.
extension Replacement: ExpressibleByArgument {}

/// attribute's `--long truncate|window` (the stride is `--window-stride`).
enum LongOption: String, CaseIterable, ExpressibleByArgument {
    case truncate, window
}

/// convert's `--dtype f32|f16` (also float32, float16, half; any case).
enum OutputDType: String, CaseIterable, ExpressibleByArgument {
    case f32, f16

    init?(argument: String) {
        switch argument.lowercased() {
        case "f32", "float32": self = .f32
        case "f16", "float16", "half": self = .f16
        default: return nil
        }
    }

    var tensorType: TensorDType { self == .f32 ? .f32 : .f16 }
}

/// `--methods gs,gi,...`: the unknown name, or that none was named, as the reason.
func parseMethods(_ text: String) throws -> Methods {
    try Methods.parse(text).get()
}

/// `--partition I/N`.
func parsePartition(_ text: String) throws -> Partition {
    guard let p = Partition.parse(text) else { throw ValidationError("expected I/N with 0 <= I < N") }
    return p
}

/// `--target` as written: predicted, all, gold, a class number or a class
/// name. A number or a name can only be checked against the model's classes,
/// so it is resolved once the model is loaded (`TargetOption.parse`,
/// `ScoreTarget.parse`, which see a class name before a number).
struct TargetArgument: ExpressibleByArgument, CustomStringConvertible {
    /// The option's text, as the messages and the resolution see it.
    let text: String

    init(argument: String) { text = argument }

    var description: String { text }
    var defaultValueDescription: String { text }

    /// attribute's target against the model's classes.
    func resolve(labels: [String]) throws -> TargetOption {
        try TargetOption.parse(text, labels: labels).get()
    }
}
