import Foundation

/// Errors of the file formats in IO. Each description is one line naming the
/// file and what is wrong.
public enum IOFormatError: Error, CustomStringConvertible, Equatable {
    case unreadable(file: String, reason: String)
    case unwritable(file: String, reason: String)
    case truncated(file: String, detail: String)
    case corrupt(file: String, detail: String)
    case unsupported(file: String, detail: String)
    case missingTensor(file: String, name: String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason): return "\(file): cannot read: \(reason)"
        case let .unwritable(file, reason): return "\(file): cannot write: \(reason)"
        case let .truncated(file, detail): return "\(file): truncated: \(detail)"
        case let .corrupt(file, detail): return "\(file): corrupt: \(detail)"
        case let .unsupported(file, detail): return "\(file): unsupported: \(detail)"
        case let .missingTensor(file, name): return "\(file): missing tensor '\(name)'"
        }
    }
}

/// The reason of a failed Foundation file operation as the system states it
/// ("No such file or directory", "Permission denied"), not Foundation's
/// sentence ("The operation could not be completed. ..."), for one-line errors
/// that already name the file. (Tokenizer, which uses nothing of ours, keeps
/// its own copy: `TokenizerError.reason`.)
public func systemReason(_ error: Error) -> String {
    let ns = error as NSError
    if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(underlying.code)))
    }
    if ns.domain == NSCocoaErrorDomain, ns.code == NSFileReadNoSuchFileError || ns.code == NSFileNoSuchFileError {
        return String(cString: strerror(ENOENT))
    }
    return ns.localizedDescription
}
