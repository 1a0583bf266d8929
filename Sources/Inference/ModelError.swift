/// Why a model directory cannot be used. Each description is one line naming
/// the file and what is wrong (docs/CONTRACT.md section 6).
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case missingFile(file: String)
    case badConfig(file: String, detail: String)
    case missingTensor(file: String, name: String)
    case badShape(file: String, name: String, expected: [Int], found: [Int], why: String = "")
    case unreadable(file: String, detail: String)

    public var description: String {
        switch self {
        case let .missingFile(file): return "\(file): no such file"
        case let .badConfig(file, detail): return "\(file): \(detail)"
        case let .missingTensor(file, name): return "\(file): missing tensor '\(name)'"
        case let .badShape(file, name, expected, found, why):
            return "\(file): tensor '\(name)' has shape \(found), the config asks for \(expected)\(why.isEmpty ? "" : ": " + why)"
        case let .unreadable(file, detail): return "\(file): \(detail)"
        }
    }
}

/// Why a run cannot process its input (a bug of the caller, not of the data:
/// the tokenizer guarantees ids in range and lengths within the model's).
public enum EngineError: Error, CustomStringConvertible, Equatable {
    case badInput(index: Int, detail: String)
    case badTarget(index: Int, target: Int, classes: Int)

    public var description: String {
        switch self {
        case let .badInput(index, detail): return "example \(index) of the micro-batch: \(detail)"
        case let .badTarget(index, target, classes):
            return "example \(index) of the micro-batch: target class \(target) is not in 0..<\(classes)"
        }
    }
}
