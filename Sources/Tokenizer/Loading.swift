import Foundation

extension Vocabulary {
    /// Reads a `vocab.txt`: one token a line, id = 0-based line number, each
    /// line trimmed at the end as the Rust `WordPiece::read_file` does
    /// (`BufRead::lines`, then `trim_end`).
    public static func load(vocabFile url: URL, continuingSubwordPrefix: String = "##") throws -> Vocabulary {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw TokenizerError.unreadable(file: url.path, reason: Self.reason(error))
        }
        let entries = try parseVocabText([UInt8](data), file: url.path)
        guard !entries.isEmpty else { throw TokenizerError.emptyVocabulary(file: url.path) }
        return Vocabulary(entries: entries, continuingSubwordPrefix: continuingSubwordPrefix)
    }

    static func parseVocabText(_ bytes: [UInt8], file: String) throws -> [(token: [UInt8], id: Int)] {
        var entries: [(token: [UInt8], id: Int)] = []
        var lineStart = 0
        let tables = UnicodeTables.shared
        while lineStart < bytes.count {
            var lineEnd = lineStart
            while lineEnd < bytes.count && bytes[lineEnd] != 0x0A { lineEnd += 1 }
            let next = lineEnd + 1
            let line = Array(bytes[lineStart..<lineEnd])
            guard let string = String(validating: line, as: UTF8.self) else {
                throw TokenizerError.malformed(file: file, detail: "line \(entries.count + 1) is not valid UTF-8")
            }
            // trim_end: Rust's char::is_whitespace (includes the "\r" of a CRLF file).
            var scalars = string.unicodeScalars
            while let last = scalars.last, tables.flags(last.value) & UnicodeTables.whitespace != 0 { scalars.removeLast() }
            let token = Array(String(scalars).utf8)
            entries.append((token, entries.count))
            lineStart = next
        }
        return entries
    }

    static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if ns.domain == NSCocoaErrorDomain, ns.code == NSFileReadNoSuchFileError || ns.code == 4 {
            return "no such file"
        }
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        return ns.localizedDescription
    }
}

extension BertTokenizer {
    /// The tokenizer of a model directory (docs/CONTRACT.md section 1): its
    /// `tokenizer.json` when present (vocabulary, added tokens, special
    /// tokens), else `vocab.txt`; normalized as transformers 5 loads the
    /// directory (below).
    ///
    /// transformers' BERT tokenizer (`tokenizer_class` BertTokenizer or
    /// BertTokenizerFast, or none: `model_type` bert picks it) rebuilds the
    /// normalizer from its own arguments, which come from
    /// `tokenizer_config.json` with its defaults (`do_lower_case` true,
    /// `strip_accents` none, `tokenize_chinese_chars` true, `clean_text`
    /// always): transformers 5 `BertTokenizer.__init__` builds a
    /// `BertNormalizer` from them whatever tokenizer.json says (4.x
    /// `BertTokenizerFast.__init__` did the same for the three settings when
    /// they differed from the file's). Only another class (PreTrainedTokenizerFast,
    /// TokenizersBackend) takes tokenizer.json's normalizer as it is.
    public static func load(modelDirectory dir: URL) throws -> BertTokenizer {
        let json = dir.appendingPathComponent("tokenizer.json")
        let vocab = dir.appendingPathComponent("vocab.txt")
        let fm = FileManager.default
        var options = BertTokenizerOptions()
        var bertClass = true
        let config = dir.appendingPathComponent("tokenizer_config.json")
        if fm.fileExists(atPath: config.path) {
            (options, bertClass) = try tokenizerConfigAndClass(config)
        }
        if fm.fileExists(atPath: json.path) {
            return try load(tokenizerJSON: json, normalizer: bertClass ? options : nil)
        }
        guard fm.fileExists(atPath: vocab.path) else { throw TokenizerError.noVocabulary(directory: dir.path) }
        return try load(vocabFile: vocab, options: options)
    }

    /// The `tokenizer_class` values that make transformers build the BERT
    /// tokenizer (which sets the normalizer from tokenizer_config.json).
    static let bertClasses: Set<String> = ["BertTokenizer", "BertTokenizerFast"]

    /// A tokenizer from a `vocab.txt` with the given options; the added tokens
    /// are the five BERT special tokens the vocabulary has.
    public static func load(vocabFile: URL, options: BertTokenizerOptions = BertTokenizerOptions()) throws -> BertTokenizer {
        let vocabulary = try Vocabulary.load(vocabFile: vocabFile, continuingSubwordPrefix: options.continuingSubwordPrefix)
        return try BertTokenizer(vocabulary: vocabulary, options: options, source: vocabFile.path)
    }

    /// Options from a `tokenizer_config.json` (transformers' BertTokenizer arguments).
    public static func readTokenizerConfig(_ url: URL) throws -> BertTokenizerOptions {
        try tokenizerConfigAndClass(url).options
    }

    /// The options, and whether `tokenizer_class` is transformers' BERT tokenizer (or absent).
    static func tokenizerConfigAndClass(_ url: URL) throws -> (options: BertTokenizerOptions, bertClass: Bool) {
        let root = try readJSON(url)
        guard case .object = root else { throw TokenizerError.malformed(file: url.path, detail: "not a JSON object") }
        var options = BertTokenizerOptions()
        if let v = root["do_lower_case"], !v.isNull {
            guard let b = v.bool else { throw TokenizerError.malformed(file: url.path, detail: "do_lower_case is not true/false") }
            options.lowercase = b
        }
        if let v = root["strip_accents"], !v.isNull {
            guard let b = v.bool else { throw TokenizerError.malformed(file: url.path, detail: "strip_accents is not true/false/null") }
            options.stripAccents = b
        }
        if let v = root["tokenize_chinese_chars"], !v.isNull {
            guard let b = v.bool else { throw TokenizerError.malformed(file: url.path, detail: "tokenize_chinese_chars is not true/false") }
            options.handleChineseChars = b
        }
        // Special tokens are strings or {"content": ...} objects.
        func token(_ key: String) -> String? {
            guard let v = root[key] else { return nil }
            return v.string ?? v["content"]?.string
        }
        if let t = token("unk_token") { options.unkToken = t }
        if let t = token("cls_token") { options.clsToken = t }
        if let t = token("sep_token") { options.sepToken = t }
        if let t = token("pad_token") { options.padToken = t }
        if let t = token("mask_token") { options.maskToken = t }
        let className = root["tokenizer_class"]?.string
        return (options, className.map { bertClasses.contains($0) } ?? true)
    }

    /// A tokenizer from a Hugging Face `tokenizer.json` whose model is WordPiece
    /// and whose normalizer is a BertNormalizer (or none). `normalizer`: the
    /// settings transformers' BERT tokenizer replaces the file's normalizer
    /// with (lowercase, strip_accents, Chinese characters; clean_text on).
    public static func load(tokenizerJSON url: URL, normalizer settings: BertTokenizerOptions? = nil) throws -> BertTokenizer {
        let root = try readJSON(url)
        let file = url.path
        guard let model = root["model"], case .object = model else {
            throw TokenizerError.malformed(file: file, detail: "no \"model\" object")
        }
        if let type = model["type"]?.string, type != "WordPiece" {
            throw TokenizerError.unsupported(file: file, detail: "model type \(type) (only WordPiece)")
        }
        var options = BertTokenizerOptions()
        if let settings {
            options.cleanText = true
            options.lowercase = settings.lowercase
            options.stripAccents = settings.stripAccents
            options.handleChineseChars = settings.handleChineseChars
        } else if let normalizer = root["normalizer"], !normalizer.isNull {
            guard normalizer["type"]?.string == "BertNormalizer" else {
                throw TokenizerError.unsupported(file: file, detail: "normalizer type \(normalizer["type"]?.string ?? "?") (only BertNormalizer)")
            }
            options.cleanText = normalizer["clean_text"]?.bool ?? true
            options.handleChineseChars = normalizer["handle_chinese_chars"]?.bool ?? true
            options.stripAccents = normalizer["strip_accents"]?.bool
            options.lowercase = normalizer["lowercase"]?.bool ?? true
        } else {
            options.cleanText = false
            options.handleChineseChars = false
            options.stripAccents = false
            options.lowercase = false
        }
        // transformers' BERT tokenizer sets BertPreTokenizer whatever the file says.
        if settings == nil, let pre = root["pre_tokenizer"], !pre.isNull, let type = pre["type"]?.string, type != "BertPreTokenizer" {
            throw TokenizerError.unsupported(file: file, detail: "pre_tokenizer type \(type) (only BertPreTokenizer)")
        }
        if let t = model["unk_token"]?.string { options.unkToken = t }
        if let t = model["continuing_subword_prefix"]?.string { options.continuingSubwordPrefix = t }
        if let n = model["max_input_chars_per_word"]?.int { options.maxInputCharsPerWord = n }
        // [CLS]/[SEP] as the post-processor's template names them.
        if let special = root["post_processor"]?["special_tokens"], case let .object(members) = special {
            let names = members.map { String(decoding: $0.key, as: UTF8.self) }
            if let cls = names.first(where: { $0.uppercased().contains("CLS") }) { options.clsToken = cls }
            if let sep = names.first(where: { $0.uppercased().contains("SEP") }) { options.sepToken = sep }
        }
        guard let vocab = model["vocab"], case let .object(members) = vocab else {
            throw TokenizerError.malformed(file: file, detail: "no \"model.vocab\" object")
        }
        var entries: [(token: [UInt8], id: Int)] = []
        entries.reserveCapacity(members.count)
        for (key, value) in members {
            // Ids index arrays: refuse absurd ones rather than allocating for them.
            guard let id = value.int, id >= 0, id < 1 << 24 else {
                throw TokenizerError.malformed(file: file, detail: "vocabulary id of '\(String(decoding: key, as: UTF8.self))' is not an integer in 0..<16777216")
            }
            entries.append((key, id))
        }
        guard !entries.isEmpty else { throw TokenizerError.emptyVocabulary(file: file) }
        var added: [(token: String, id: Int)] = []
        if case let .array(items)? = root["added_tokens"] {
            for item in items {
                if let content = item["content"]?.string, let id = item["id"]?.int { added.append((content, id)) }
            }
        }
        let vocabulary = Vocabulary(entries: entries, continuingSubwordPrefix: options.continuingSubwordPrefix)
        return try BertTokenizer(vocabulary: vocabulary, options: options, addedTokens: added, source: file)
    }

    static func readJSON(_ url: URL) throws -> JSONValue {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw TokenizerError.unreadable(file: url.path, reason: Vocabulary.reason(error))
        }
        do {
            return try JSONParser.parse([UInt8](data))
        } catch {
            throw TokenizerError.malformed(file: url.path, detail: "invalid JSON: \(error)")
        }
    }
}
