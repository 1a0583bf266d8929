import Foundation

/// Errors while loading a tokenizer. Each description is one line naming the
/// file and what is wrong.
public enum TokenizerError: Error, CustomStringConvertible, Equatable, Sendable {
    case unreadable(file: String, reason: String)
    case emptyVocabulary(file: String)
    case missingToken(file: String, token: String)
    case malformed(file: String, detail: String)
    case unsupported(file: String, detail: String)
    case noVocabulary(directory: String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason):
            return "\(file): cannot read: \(reason)"
        case let .emptyVocabulary(file):
            return "\(file): the vocabulary is empty (expected one WordPiece token a line)"
        case let .missingToken(file, token):
            return "\(file): the vocabulary has no '\(token)' token"
        case let .malformed(file, detail):
            return "\(file): malformed: \(detail)"
        case let .unsupported(file, detail):
            return "\(file): unsupported: \(detail)"
        case let .noVocabulary(directory):
            return "\(directory): no tokenizer.json or vocab.txt in this model directory"
        }
    }
}
