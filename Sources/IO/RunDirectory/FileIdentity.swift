import Foundation
import ModelFiles

/// Which file a path names, links followed: its device and inode. Two paths
/// name one file exactly when these agree, however they are spelled
/// (symbolic links, `..`, hard links). Used wherever the tool must prove an
/// output cannot reach a file it reads (run inputs, merged runs, convert's
/// sources).
public struct FileID: Hashable, Sendable {
    public let device: UInt64
    public let inode: UInt64

    public init?(path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
    }

    /// The file behind an open descriptor (standard input redirected from a file).
    public init?(descriptor: Int32) {
        var st = stat()
        guard fstat(descriptor, &st) == 0 else { return nil }
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
    }
}

/// "3 entries (a.txt, part-00000.jsonl.zst, sub/)": what a directory holds,
/// for a one-line refusal naming it (the first six, sorted).
public func describeEntries(_ names: [String], in dir: URL) -> String {
    let sorted = names.sorted()
    let shown = sorted.prefix(6).map { name -> String in
        var isDir: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).path, isDirectory: &isDir)
        return isDir.boolValue ? name + "/" : name
    }
    let more = sorted.count > shown.count ? ", ... \(sorted.count - shown.count) more" : ""
    return "\(sorted.count) \(sorted.count == 1 ? "entry" : "entries") (\(shown.joined(separator: ", "))\(more))"
}
