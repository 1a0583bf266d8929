import Foundation

/// A WordPiece vocabulary: token -> id, keyed by UTF-8 bytes.
///
/// Not a `[String: Int]`: Swift `String` equality is canonical equivalence, so
/// "é" and "e\u{301}" would be the same key there but are different tokens for
/// the reference implementation (a Rust `HashMap<String, u32>`, byte equality).
///
/// Layout, for few cache misses per lookup (greedy WordPiece mostly asks for
/// pieces that are not there):
/// - `filter`: one bit per hash value (about 32 bits per token, fits in L2);
///   a clear bit is a miss without touching the table;
/// - `slots`: open addressing, each `hash tag << 32 | record offset + 1`;
/// - `records`: per token `[id: 4 bytes][length: 2 bytes][UTF-8 bytes]`, so a
///   hit reads one more cache line.
/// The continuation prefix "##" is hashed and compared in place.
public final class Vocabulary: @unchecked Sendable {  // immutable after init
    /// Number of distinct tokens.
    public let count: Int
    /// The token string of each id (empty for an id no line/entry has).
    public let tokens: [String]

    private let records: UnsafeMutableRawPointer
    private let slots: UnsafeMutablePointer<UInt64>  // [mask + 1]
    private let mask: Int
    private let filter: UnsafeMutablePointer<UInt64>  // [(filterMask + 1) / 64]
    private let filterMask: Int
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
        var filterBits = 1 << 12
        while filterBits < entries.count * 32 { filterBits <<= 1 }
        filterMask = filterBits - 1
        filter = .allocate(capacity: filterBits / 64)
        filter.initialize(repeating: 0, count: filterBits / 64)

        var pool: [UInt8] = []
        var offsets: [Int] = []  // record offset of each distinct token
        var maxLength = 0
        var maxID = -1
        for (token, id) in entries {
            let h = Self.hash(token, seed: Self.fnvOffset)
            var slot = Int(truncatingIfNeeded: h) & mask
            var existing: Int?
            while slots[slot] != 0 {
                let offset = Int(slots[slot] & 0xFFFF_FFFF) - 1
                let length = Int(pool[offset + 4]) | Int(pool[offset + 5]) << 8
                if slots[slot] >> 32 == h >> 32, length == token.count,
                   pool[offset + 6..<offset + 6 + length].elementsEqual(token) {
                    existing = offset
                    break
                }
                slot = (slot + 1) & mask
            }
            let id32 = UInt32(truncatingIfNeeded: id)
            let idBytes = [UInt8(id32 & 0xFF), UInt8(id32 >> 8 & 0xFF), UInt8(id32 >> 16 & 0xFF), UInt8(id32 >> 24)]
            if let existing {
                pool.replaceSubrange(existing..<existing + 4, with: idBytes)
            } else if token.count <= 0xFFFF {  // (a longer line could never match a word: 100 characters at most)
                slots[slot] = (h >> 32) << 32 | UInt64(pool.count + 1)
                offsets.append(pool.count)
                pool.append(contentsOf: idBytes)
                pool.append(UInt8(token.count & 0xFF))
                pool.append(UInt8(token.count >> 8))
                pool.append(contentsOf: token)
                maxLength = max(maxLength, token.count)
                let bit = Int(truncatingIfNeeded: h >> 20) & filterMask
                filter[bit >> 6] |= 1 << UInt64(bit & 63)
            }
            maxID = max(maxID, id)
        }
        count = offsets.count
        maxKeyLength = maxLength
        let storage = UnsafeMutableRawPointer.allocate(byteCount: max(pool.count, 1), alignment: 8)
        pool.withUnsafeBytes { if let base = $0.baseAddress { storage.copyMemory(from: base, byteCount: $0.count) } }
        records = storage

        var names = [String](repeating: "", count: maxID + 1)
        for (token, id) in entries { names[id] = String(decoding: token, as: UTF8.self) }
        tokens = names
    }

    deinit {
        records.deallocate()
        slots.deallocate()
        filter.deallocate()
    }

    /// The id of `token`, or nil.
    public func id(of token: String) -> Int? {
        let bytes = Array(token.utf8)
        if bytes.isEmpty { return nil }
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
        // FNV's low bits are weak for short keys; mix before taking bits from them.
        var x = h ^ (h >> 29)
        x = x &* 0xbf58_476d_1ce4_e5b9
        return x ^ (x >> 32)
    }

    /// The FNV state after the continuation prefix (when `continuation`) or of nothing.
    @inline(__always)
    func initialState(continuation: Bool) -> UInt64 { continuation ? prefixHash : Self.fnvOffset }

    /// The FNV state after one more byte. Lookups of every prefix of a word
    /// share the work by carrying this state along.
    @inline(__always)
    static func step(_ state: UInt64, _ byte: UInt8) -> UInt64 { (state ^ UInt64(byte)) &* fnvPrime }

    /// The id of `bytes[0..<count]`, with the continuation prefix in front when
    /// `continuation`; -1 when absent.
    @inline(__always)
    func lookup(_ bytes: UnsafePointer<UInt8>, count n: Int, continuation: Bool) -> Int32 {
        var h = initialState(continuation: continuation)
        for k in 0..<n { h = Self.step(h, bytes[k]) }
        return lookup(state: h, bytes, count: n, continuation: continuation)
    }

    /// As `lookup(_:count:continuation:)`, with `state` the FNV state over the
    /// (prefix and) bytes, from `initialState` and `step`.
    @inline(__always)
    func lookup(state: UInt64, _ bytes: UnsafePointer<UInt8>, count n: Int, continuation: Bool) -> Int32 {
        let prefixCount = continuation ? prefix.count : 0
        let total = n + prefixCount
        if total > maxKeyLength { return -1 }
        let h = Self.finish(state)
        let bit = Int(truncatingIfNeeded: h >> 20) & filterMask
        if filter[bit >> 6] & (1 << UInt64(bit & 63)) == 0 { return -1 }
        let tag = h >> 32
        var slot = Int(truncatingIfNeeded: h) & mask
        while true {
            let s = slots[slot]
            if s == 0 { return -1 }
            if s >> 32 == tag {
                let record = records + Int(s & 0xFFFF_FFFF) - 1
                let length = Int(record.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
                if length == total {
                    let key = record.assumingMemoryBound(to: UInt8.self) + 6
                    var same = true
                    for k in 0..<prefixCount where key[k] != prefix[k] { same = false; break }
                    if same {
                        // Tokens are short: compare in place rather than calling memcmp.
                        let body = key + prefixCount
                        if n <= 16 {
                            for k in 0..<n where body[k] != bytes[k] { same = false; break }
                        } else {
                            same = memcmp(body, bytes, n) == 0
                        }
                        if same { return record.loadUnaligned(as: Int32.self) }
                    }
                }
            }
            slot = (slot + 1) & mask
        }
    }
}
