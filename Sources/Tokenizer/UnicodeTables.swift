/// Per-code-point rules of the Hugging Face fast BERT tokenizer, built once
/// from the generated text tables (GeneratedTables.swift, produced by
/// tools/gen_tokenizer_tables.py from the `tokenizers` library itself).
///
/// Lookups are a two-stage table (256 code points a block, identical blocks
/// shared), so a flag test is two array reads.
final class UnicodeTables: @unchecked Sendable {  // immutable after init
    static let shared = UnicodeTables()

    // Flag bits. The first six come from the generated runs.
    static let removed: UInt16 = 1          // dropped by clean_text (control, format, private use, NUL, U+FFFD)
    static let cleanWhitespace: UInt16 = 2  // turned into U+0020 by clean_text
    static let chinese: UInt16 = 4          // isolated by handle_chinese_chars
    static let nonspacingMark: UInt16 = 8   // dropped by strip_accents after NFD
    static let punctuation: UInt16 = 16     // isolated by BertPreTokenizer
    static let whitespace: UInt16 = 32      // a word separator for BertPreTokenizer
    static let hasLowercase: UInt16 = 64    // `lowercase` maps it to something else
    static let decomposes: UInt16 = 128     // NFD maps it to something else (Hangul syllables included)
    static let nonStarter: UInt16 = 256     // canonical combining class > 0

    // Allocated once for the life of the process (the shared instance is never freed).
    private let stage1: UnsafeMutablePointer<UInt16>  // [0x1100] block number of each 256-code-point block
    private let stage2: UnsafeMutablePointer<UInt16>  // [blocks * 256] flags
    private let lowercaseMap: [UInt32: UInt32]  // code point -> (pool start << 8 | count)
    private let decompositionMap: [UInt32: UInt32]  // same packing
    private let combiningClass: [UInt32: UInt8]
    let pool: [UInt32]  // mapping targets

    private init() {
        var flags = [UInt16](repeating: 0, count: 0x110000)
        let runs = Self.parse(GeneratedTables.flagRuns)
        for (n, run) in runs.enumerated() {
            let end = n + 1 < runs.count ? Int(runs[n + 1].key) : 0x110000
            for cp in Int(run.key)..<end { flags[cp] = UInt16(run.values[0]) }
        }
        var pool: [UInt32] = []
        var lower: [UInt32: UInt32] = [:]
        for entry in Self.parse(GeneratedTables.lowercase) {
            lower[entry.key] = UInt32(pool.count) << 8 | UInt32(entry.values.count)
            pool.append(contentsOf: entry.values)
            flags[Int(entry.key)] |= Self.hasLowercase
        }
        var decomposition: [UInt32: UInt32] = [:]
        for entry in Self.parse(GeneratedTables.decompositions) {
            decomposition[entry.key] = UInt32(pool.count) << 8 | UInt32(entry.values.count)
            pool.append(contentsOf: entry.values)
            flags[Int(entry.key)] |= Self.decomposes
        }
        for cp in Self.hangulFirst...Self.hangulLast { flags[Int(cp)] |= Self.decomposes }
        var ccc: [UInt32: UInt8] = [:]
        let cccRuns = Self.parse(GeneratedTables.combiningClassRuns)
        for (n, run) in cccRuns.enumerated() where run.values[0] != 0 {
            let end = n + 1 < cccRuns.count ? cccRuns[n + 1].key : 0x110000
            for cp in run.key..<end {
                ccc[cp] = UInt8(run.values[0])
                flags[Int(cp)] |= Self.nonStarter
            }
        }
        // Two-stage compression: identical 256-entry blocks are stored once.
        var blockIndex: [[UInt16]: UInt16] = [:]
        var s1 = [UInt16](repeating: 0, count: 0x1100)
        var s2: [UInt16] = []
        for block in 0..<0x1100 {
            let slice = Array(flags[block * 256..<(block + 1) * 256])
            if let b = blockIndex[slice] {
                s1[block] = b
            } else {
                let b = UInt16(s2.count / 256)
                blockIndex[slice] = b
                s1[block] = b
                s2.append(contentsOf: slice)
            }
        }
        stage1 = .allocate(capacity: s1.count)
        stage1.initialize(from: s1, count: s1.count)
        stage2 = .allocate(capacity: s2.count)
        stage2.initialize(from: s2, count: s2.count)
        lowercaseMap = lower
        decompositionMap = decomposition
        combiningClass = ccc
        self.pool = pool
    }

    @inline(__always)
    func flags(_ cp: UInt32) -> UInt16 {
        // Callers pass scalars (< 0x110000), so both reads are in bounds.
        stage2[Int(stage1[Int(cp &>> 8)]) &<< 8 | Int(cp & 0xFF)]
    }

    /// The lowercase mapping of a character flagged `hasLowercase`, as (pool start, count).
    @inline(__always)
    func lowercase(_ cp: UInt32) -> (start: Int, count: Int) {
        let packed = lowercaseMap[cp] ?? 0
        return (Int(packed >> 8), Int(packed & 0xFF))
    }

    /// The canonical decomposition of a character flagged `decomposes`, other than a Hangul syllable.
    @inline(__always)
    func decomposition(_ cp: UInt32) -> (start: Int, count: Int) {
        let packed = decompositionMap[cp] ?? 0
        return (Int(packed >> 8), Int(packed & 0xFF))
    }

    @inline(__always)
    func combiningClass(_ cp: UInt32) -> UInt8 { combiningClass[cp] ?? 0 }

    // Hangul syllables decompose algorithmically (Unicode 3.12).
    static let hangulFirst: UInt32 = 0xAC00
    static let hangulLast: UInt32 = 0xD7A3

    /// Parses `hex:hex[,hex...]` entries separated by `;` (newlines and spaces ignored).
    private static func parse(_ text: String) -> [(key: UInt32, values: [UInt32])] {
        var out: [(key: UInt32, values: [UInt32])] = []
        var key: UInt32 = 0
        var values: [UInt32] = []
        var current: UInt32 = 0
        var haveDigits = false
        var inValues = false
        func finishNumber() {
            guard haveDigits else { return }
            if inValues { values.append(current) } else { key = current }
            current = 0
            haveDigits = false
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                current = current << 4 | UInt32(byte - UInt8(ascii: "0")); haveDigits = true
            case UInt8(ascii: "a")...UInt8(ascii: "f"):
                current = current << 4 | UInt32(byte - UInt8(ascii: "a") + 10); haveDigits = true
            case UInt8(ascii: ":"):
                finishNumber(); inValues = true
            case UInt8(ascii: ","):
                finishNumber()
            case UInt8(ascii: ";"):
                finishNumber()
                out.append((key, values))
                values = []
                inValues = false
            default:
                break  // line breaks of the literal
            }
        }
        finishNumber()
        if inValues { out.append((key, values)) }
        return out
    }
}
