import Foundation
import Inference

/// `--target predicted|all|N|NAME|gold` (docs/CONTRACT.md section 4).
public enum TargetOption: Sendable, Equatable, CustomStringConvertible {
    case predicted
    case all
    case classIndex(Int)
    case gold

    /// Parses the option against the model's class names; nil with a reason
    /// when it names no class.
    public static func parse(_ text: String, labels: [String]) -> Result<TargetOption, TargetError> {
        switch text {
        case "predicted": return .success(.predicted)
        case "all": return .success(.all)
        case "gold": return .success(.gold)
        default:
            if let i = labels.firstIndex(of: text) { return .success(.classIndex(i)) }
            if let n = Int(text) {
                guard n >= 0 && n < labels.count else {
                    return .failure(TargetError("--target \(text): the model has \(labels.count) classes (0..<\(labels.count))"))
                }
                return .success(.classIndex(n))
            }
            let names = labels.map { "'\($0)'" }.joined(separator: ", ")
            return .failure(TargetError("--target \(text): expected predicted, all, gold, a class number or a class name (\(names))"))
        }
    }

    /// How the manifest records it (class names resolved to numbers).
    public var description: String {
        switch self {
        case .predicted: return "predicted"
        case .all: return "all"
        case .gold: return "gold"
        case let .classIndex(i): return String(i)
        }
    }

    /// The engine's selection for one record, or the reason it has none.
    public func selection(label: String?, labels: [String]) -> Result<TargetSelection, TargetError> {
        switch self {
        case .predicted: return .success(.predicted)
        case .all: return .success(.all)
        case let .classIndex(i): return .success(.classes([i]))
        case .gold:
            guard let label else { return .failure(TargetError("--target gold: the record has no label")) }
            if let c = ModelConfig.classIndex(ofLabel: label, labels: labels) { return .success(.classes([c])) }
            return .failure(TargetError("--target gold: label '\(label)' is not a class of the model (\(labels.joined(separator: ", ")) or 0..<\(labels.count))"))
        }
    }

}

public struct TargetError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension Methods {
    /// Each method's name, in CONTRACT order (sections 5, 5b).
    static let named: [(name: String, method: Methods)] = [
        ("gs", .gs), ("gi", .gi), ("lrp", .lrp), ("lat", .lat),
        ("ixg", .ixg), ("attnlrp", .attnlrp), ("cplrp", .cplrp), ("ig", .ig), ("rollout", .rollout),
    ]

    /// Method names, comma-separated, in any order (`all`: the seed's four); the unknown name otherwise.
    public static func parse(_ text: String) -> Result<Methods, TargetError> {
        var m: Methods = []
        let known = named.map(\.name).joined(separator: ", ")
        for part in text.split(separator: ",", omittingEmptySubsequences: true) {
            let name = part.trimmingCharacters(in: .whitespaces)
            if name == "all" {
                m.formUnion(.all)
            } else if let entry = named.first(where: { $0.name == name }) {
                m.formUnion(entry.method)
            } else {
                return .failure(TargetError("unknown method '\(part)' (expected \(known))"))
            }
        }
        if m.isEmpty { return .failure(TargetError("name at least one of \(known)")) }
        return .success(m)
    }

    /// Canonical names, in CONTRACT order.
    public var names: [String] { Methods.named.filter { contains($0.method) }.map(\.name) }
}
