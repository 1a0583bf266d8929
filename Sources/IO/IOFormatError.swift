import Foundation

/// Errors of the file formats in IO. Each description is one line naming the
/// file and what is wrong.
public enum IOFormatError: Error, CustomStringConvertible, Equatable {
    case unreadable(file: String, reason: String)
    case truncated(file: String, detail: String)
    case corrupt(file: String, detail: String)
    case unsupported(file: String, detail: String)
    case missingTensor(file: String, name: String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason): return "\(file): cannot read: \(reason)"
        case let .truncated(file, detail): return "\(file): truncated: \(detail)"
        case let .corrupt(file, detail): return "\(file): corrupt: \(detail)"
        case let .unsupported(file, detail): return "\(file): unsupported: \(detail)"
        case let .missingTensor(file, name): return "\(file): missing tensor '\(name)'"
        }
    }
}
