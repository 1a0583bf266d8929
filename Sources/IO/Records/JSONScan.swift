import Foundation
import ModelFiles

/// The raw text of a JSON object's members, for what a parsed value loses:
/// JSONSerialization turns `1234567890123456789` into a Double (2^53 and
/// above are rounded), but an id must keep the digits it was read as.
enum JSONScan {
    /// The bytes of the value of top-level member `key` of the object on
    /// `line` (the last one when the key repeats), or nil. `line` must be
    /// valid JSON (it was parsed first); the scan only skips over it.
    static func rawValue(of key: String, in line: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        let keyBytes = Array(key.utf8)
        var i = line.startIndex
        let end = line.endIndex
        func skipSpace() { while i < end, [0x20, 0x09, 0x0A, 0x0D].contains(line[i]) { i += 1 } }
        /// Past a string starting at `i` (the opening quote); its bytes between the quotes.
        func skipString() -> ArraySlice<UInt8> {
            let start = i + 1
            i += 1
            while i < end, line[i] != 0x22 { i += line[i] == 0x5C ? 2 : 1 }
            defer { i += 1 }
            return line[start..<min(i, end)]
        }
        func skipValue() {
            if line[i] == 0x22 { _ = skipString(); return }
            var depth = 0
            while i < end {
                switch line[i] {
                case 0x22: _ = skipString(); continue
                case 0x7B, 0x5B: depth += 1
                case 0x7D, 0x5D:
                    if depth == 0 { return }
                    depth -= 1
                case 0x2C: if depth == 0 { return }
                case 0x20, 0x09, 0x0A, 0x0D: if depth == 0 { return }
                default: break
                }
                i += 1
            }
        }
        skipSpace()
        guard i < end, line[i] == 0x7B else { return nil }
        i += 1
        var found: ArraySlice<UInt8>?
        while true {
            skipSpace()
            guard i < end, line[i] == 0x22 else { return found }
            let name = skipString()
            skipSpace()
            guard i < end, line[i] == 0x3A else { return found }
            i += 1
            skipSpace()
            guard i < end else { return found }
            let valueStart = i
            skipValue()
            if Self.sameKey(name, keyBytes) { found = line[valueStart..<i] }
            skipSpace()
            guard i < end, line[i] == 0x2C else { return found }
            i += 1
        }
    }

    /// A member name as written (escapes possible) against a plain key.
    private static func sameKey(_ raw: ArraySlice<UInt8>, _ key: [UInt8]) -> Bool {
        if !raw.contains(0x5C) { return raw.elementsEqual(key) }
        let quoted = [0x22] + Array(raw) + [0x22]
        guard let s = try? JSONSerialization.jsonObject(with: Data(quoted), options: [.fragmentsAllowed]) as? String else { return false }
        return Array(s.utf8) == key
    }
}
