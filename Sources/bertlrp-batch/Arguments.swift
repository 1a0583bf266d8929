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
/// name. Its syntax is read here; a number or a name is checked against the
/// model's classes once the model is loaded (`TargetOption.parse`,
/// `ScoreTarget.parse`, which see a class name before a number).
struct TargetArgument: ExpressibleByArgument, CustomStringConvertible {
    enum Kind: Equatable {
        case predicted, all, gold
        case number(Int)
        case name
    }

    /// The option's text, as the messages and the resolution see it.
    let text: String
    let kind: Kind

    init(argument: String) {
        text = argument
        switch argument {
        case "predicted": kind = .predicted
        case "all": kind = .all
        case "gold": kind = .gold
        default: kind = Int(argument).map(Kind.number) ?? .name
        }
    }

    var description: String { text }
    var defaultValueDescription: String { text }

    /// attribute's target against the model's classes.
    func resolve(labels: [String]) throws -> TargetOption {
        switch kind {
        case .predicted: return .predicted
        case .all: return .all
        case .gold: return .gold
        case .number, .name: return try TargetOption.parse(text, labels: labels).get()
        }
    }
}
