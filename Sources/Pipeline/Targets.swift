import Foundation
import Inference

/// `--target predicted|all|N|NAME|gold` (CONTRACT.md section 4).
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
            if let c = TargetOption.goldClass(label, labels: labels) { return .success(.classes([c])) }
            return .failure(TargetError("--target gold: label '\(label)' is not a class of the model (\(labels.joined(separator: ", ")) or 0..<\(labels.count))"))
        }
    }

    /// A label value as a class: by name (as in id2label), else by number.
    static func goldClass(_ label: String, labels: [String]) -> Int? {
        let trimmed = label.trimmingCharacters(in: .whitespaces)
        if let i = labels.firstIndex(of: trimmed) { return i }
        if let i = labels.firstIndex(where: { $0.lowercased() == trimmed.lowercased() }) { return i }
        if let n = Int(trimmed), n >= 0, n < labels.count { return n }
        if let d = Double(trimmed), d == d.rounded(), d >= 0, Int(d) < labels.count { return Int(d) }
        return nil
    }
}

public struct TargetError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension Methods {
    /// `gs,gi,lrp,lat` in any order; nil with the unknown name.
    public static func parse(_ text: String) -> Result<Methods, TargetError> {
        var m: Methods = []
        for part in text.split(separator: ",", omittingEmptySubsequences: true) {
            switch part.trimmingCharacters(in: .whitespaces) {
            case "gs": m.insert(.gs)
            case "gi": m.insert(.gi)
            case "lrp": m.insert(.lrp)
            case "lat": m.insert(.lat)
            case "all": m.formUnion(.all)
            default: return .failure(TargetError("--methods: unknown method '\(part)' (expected gs, gi, lrp, lat)"))
            }
        }
        if m.isEmpty { return .failure(TargetError("--methods: name at least one of gs, gi, lrp, lat")) }
        return .success(m)
    }

    /// Canonical names, in CONTRACT order.
    public var names: [String] {
        var out: [String] = []
        if contains(.gs) { out.append("gs") }
        if contains(.gi) { out.append("gi") }
        if contains(.lrp) { out.append("lrp") }
        if contains(.lat) { out.append("lat") }
        return out
    }
}
