#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import ModelFiles

/// `write(2)` until every byte is out, through interrupted and partial
/// writes: the one write loop of the tool (shards, checkpoints, standard
/// output). Returns nil when done, else the error number of the failure.
public func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32? {
    var done = 0
    while done < bytes.count {
        let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { return n < 0 ? errno : EIO }
        done += n
    }
    return nil
}

/// The system's sentence for an error number (`strerror`).
public func errorText(_ code: Int32) -> String { String(cString: strerror(code)) }

/// `mkdir -p`: creates `path` and its missing parents. Returns nil, or the
/// system's reason for the first component that could not be made ("Not a
/// directory" where a file stands in the way, which Foundation reports only
/// as an unknown error).
public func makeDirectories(_ path: String) -> String? {
    var prefix = path.hasPrefix("/") ? "/" : ""
    for component in path.split(separator: "/") {
        prefix += component
        if mkdir(prefix, 0o777) != 0 && errno != EEXIST { return String(cString: strerror(errno)) }
        var st = stat()
        if stat(prefix, &st) != 0 { return String(cString: strerror(errno)) }
        if (st.st_mode & S_IFMT) != S_IFDIR { return "\(prefix) is not a directory" }
        prefix += "/"
    }
    return nil
}
