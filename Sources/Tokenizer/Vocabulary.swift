import Foundation

/// A WordPiece vocabulary: token -> id, keyed by UTF-8 bytes.
///
/// Not a `[String: Int]`: Swift `String` equality is canonical equivalence, so
/// "é" and "e\u{301}" would be the same key there but are different tokens for
/// the reference implementation (a Rust `HashMap<String, u32>`, byte equality).
/// An open-addressing table over one flat byte array, probed without building
/// any `String`; the continuation prefix "##" is hashed and compared in place.
public final class Vocabulary: @unchecked Sendable {  // immutable after init
    /// Number of distinct tokens.
    public let count: Int
    /// The token string of each id (empty for an id no line/entry has).
    public let tokens: [String]

    private let keyBytes: UnsafeMutablePointer<UInt8>  // all keys, concatenated
    private let keyStart: UnsafeMutablePointer<Int32>  // [count]
    private let keyLength: UnsafeMutablePointer<Int32>  // [count]
    private let keyID: UnsafeMutablePointer<Int32>  // [count]
    private let slots: UnsafeMutablePointer<UInt64>  // [mask + 1]: hash tag << 32 | entry + 1, 0 = empty
    private let mask: Int
    private let prefix: [UInt8]
    private let prefixHash: UInt64
    /// Longest key in bytes; a lookup of anything longer misses without hashing.
    let maxKeyLength: Int

    /// `entries` in file order; a later duplicate overwrites the id of an earlier one,
    /// as a `HashMap` insert does. `continuingSubwordPrefix` is WordPiece's "##".
    init(entries: [(token: [UInt8], id: Int)], continuingSubwordPrefix: String = "##") {
        prefix = Array(continuingSubwordPrefix.utf8)
        prefixHash = Self.fnv(prefix, seed: Self.fnvOffset)
        var capacity = 16
        while capacity < entries.count * 2 { capacity <<= 1 }
        mask = capacity - 1
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: 0, count: capacity)

        var bytes: [UInt8] = []
        var starts: [Int32] = []
        var lengths: [Int32] = []
        var ids: [Int32] = []
        var maxLength = 0
        var maxID = -1
        for (token, id) in entries {
            let h = Self.hash(token, seed: Self.fnvOffset)
            var slot = Int(truncatingIfNeeded: h) & mask
            var found = false
            while slots[slot] != 0 {
                let entry = Int(slots[slot] & 0xFFFF_FFFF) - 1
                if slots[slot] >> 32 == h >> 32, lengths[entry] == token.count,
                   bytes[Int(starts[entry])..<Int(starts[entry]) + token.count].elementsEqual(token) {
                    ids[entry] = Int32(id)
                    found = true
                    break
                }
                slot = (slot + 1) & mask
            }
            if !found {
                slots[slot] = (h >> 32) << 32 | UInt64(ids.count + 1)
                starts.append(Int32(bytes.count))
                lengths.append(Int32(token.count))
                ids.append(Int32(id))
                bytes.append(contentsOf: token)
                maxLength = max(maxLength, token.count)
            }
            maxID = max(maxID, id)
        }
        count = ids.count
        maxKeyLength = maxLength
        keyBytes = .allocate(capacity: max(bytes.count, 1))
        keyBytes.initialize(from: bytes, count: bytes.count)
        keyStart = .allocate(capacity: max(count, 1))
        keyStart.initialize(from: starts, count: count)
        keyLength = .allocate(capacity: max(count, 1))
        keyLength.initialize(from: lengths, count: count)
        keyID = .allocate(capacity: max(count, 1))
        keyID.initialize(from: ids, count: count)

        var names = [String](repeating: "", count: maxID + 1)
        for (token, id) in entries { names[id] = String(decoding: token, as: UTF8.self) }
        tokens = names
    }

    deinit {
        keyBytes.deallocate()
        keyStart.deallocate()
        keyLength.deallocate()
        keyID.deallocate()
        slots.deallocate()
    }

    /// The id of `token`, or nil.
    public func id(of token: String) -> Int? {
        let bytes = Array(token.utf8)
        let id = bytes.withUnsafeBufferPointer { lookup($0.baseAddress!, count: $0.count, continuation: false) }
        return id < 0 ? nil : Int(id)
    }

    /// The token of `id` ("" when out of range).
    public func token(of id: Int) -> String {
        id >= 0 && id < tokens.count ? tokens[id] : ""
    }

    private static let fnvOffset: UInt64 = 0xcbf2_9ce4_8422_2325
    private static let fnvPrime: UInt64 = 0x100_0000_01b3

    private static func fnv(_ bytes: [UInt8], seed: UInt64) -> UInt64 {
        var h = seed
        for b in bytes { h = (h ^ UInt64(b)) &* fnvPrime }
        return h
    }

    private static func hash(_ bytes: [UInt8], seed: UInt64) -> UInt64 {
        finish(fnv(bytes, seed: seed))
    }

    @inline(__always)
    private static func finish(_ h: UInt64) -> UInt64 {
        // FNV's low bits are weak for short keys; mix before taking the slot from them.
        var x = h ^ (h >> 29)
        x = x &* 0xbf58_476d_1ce4_e5b9
        return x ^ (x >> 32)
    }

    /// The id of `bytes[0..<count]`, with the continuation prefix in front when
    /// `continuation`; -1 when absent.
    @inline(__always)
    func lookup(_ bytes: UnsafePointer<UInt8>, count n: Int, continuation: Bool) -> Int32 {
        let total = continuation ? n + prefix.count : n
        if total > maxKeyLength { return -1 }
        var h = continuation ? prefixHash : Self.fnvOffset
        for k in 0..<n { h = (h ^ UInt64(bytes[k])) &* Self.fnvPrime }
        h = Self.finish(h)
        let tag = h >> 32
        var slot = Int(truncatingIfNeeded: h) & mask
        while true {
            let s = slots[slot]
            if s == 0 { return -1 }
            if s >> 32 == tag {
                let entry = Int(s & 0xFFFF_FFFF) - 1
                if Int(keyLength[entry]) == total {
                    var key = keyBytes + Int(keyStart[entry])
                    var same = true
                    if continuation {
                        for (k, p) in prefix.enumerated() where key[k] != p { same = false; break }
                        key += prefix.count
                    }
                    if same && memcmp(key, bytes, n) == 0 { return keyID[entry] }
                }
            }
            slot = (slot + 1) & mask
        }
    }
}
