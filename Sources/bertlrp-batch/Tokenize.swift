import ArgumentParser
import Foundation
import IO
import Tokenizer
#if canImport(Glibc)
import Glibc
#endif

/// `bertlrp-batch tokenize`: each record's tokens as the model sees them
/// (docs/CONTRACT.md section 4), one JSON object a line on standard output.
struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print each record's WordPiece tokens, ids, offsets and segments as JSONL.",
        discussion: """
        Reads the INPUT files (TSV with a header, JSONL, optionally .zst) or standard input. \
        Output per record: index, id (when the input has one), tokens, ids, offsets \
        ([start, end) in Unicode scalars of the record's text, or of text_b for the second \
        segment; null for [CLS]/[SEP]) and segments, plus truncated with --max-seq-length. \
        A record that cannot be read is reported on standard error (and in --errors FILE) \
        and the exit code is 3.
        """)

    @Option(help: ArgumentHelp("Model directory whose tokenizer.json, or vocab.txt and tokenizer_config.json, to use (default: the bundled model).", valueName: "dir"))
    var model: String?

    @Option(help: ArgumentHelp("A vocab.txt to use instead of a model directory.", valueName: "file"))
    var vocab: String?

    @Option(help: ArgumentHelp("With --vocab: lower-case and strip accents, for an uncased model (default true).", valueName: "true|false"))
    var doLowerCase: Bool?

    @Option(help: "Truncate as the model input would be: a single text to N-2 tokens, a pair to N-3 (no truncation by default).")
    var maxSeqLength: Int?

    @Option(help: ArgumentHelp("Also write the records that could not be read to this JSONL file.", valueName: "file"))
    var errors: String?

    @OptionGroup var input: InputOptions

    func validate() throws {
        if model != nil && vocab != nil { throw ValidationError("give either --model or --vocab, not both") }
        if doLowerCase != nil && vocab == nil {
            throw ValidationError("--do-lower-case goes with --vocab (a model directory's tokenizer files say it)")
        }
        if let n = maxSeqLength, n < 3 { throw ValidationError("--max-seq-length must be at least 3 (room for [CLS], [SEP], [SEP])") }
    }

    /// A configuration error: one line on standard error, exit code 2
    /// (docs/CONTRACT.md section 6). tokenize's lines say `error:` after the
    /// tool's name (TokenizeCommandTests).
    static func failure(_ message: String) -> CommandFailure {
        CommandFailure("error: \(message)")
    }

    func run() throws {
        let tokenizer: BertTokenizer
        do {
            tokenizer = try loadTokenizer()
        } catch let error as TokenizerError {
            throw Self.failure(error.description)
        }
        var errorLog: FileHandle?
        if let errors {
            guard FileManager.default.createFile(atPath: errors, contents: nil),
                  let handle = FileHandle(forWritingAtPath: errors) else {
                throw Self.failure("\(errors): cannot write the errors file")
            }
            errorLog = handle
        }
        defer { try? errorLog?.close() }

        let reader = RecordReader(inputs: input.inputs, options: input.readerOptions)
        let workspace = TokenizerWorkspace()
        var out: [UInt8] = []
        out.reserveCapacity(1 << 17)
        var failed = 0
        do {
            while let item = try reader.next() {
                switch item {
                case let .record(record):
                    let encoding = tokenizer.encode(record.text, pair: record.textB, maxSequenceLength: maxSeqLength, workspace: workspace)
                    Self.appendRecord(record, encoding, tokenizer, truncation: maxSeqLength != nil, to: &out)
                case let .bad(bad):
                    failed += 1
                    Self.writeStandardError("bertlrp-batch: skipped \(bad.description)\n")
                    errorLog?.write(Data((bad.jsonLine + "\n").utf8))
                }
                if out.count >= 1 << 16 { Self.flush(&out) }
            }
        } catch let error as InputError {
            Self.flush(&out)
            throw Self.failure(error.description)
        }
        Self.flush(&out)
        if failed > 0 {
            Self.writeStandardError("bertlrp-batch: \(failed) record(s) could not be read\(errors.map { " (see \($0))" } ?? "")\n")
            throw CommandFailure.recordsFailed
        }
    }

    private func loadTokenizer() throws -> BertTokenizer {
        if let vocab {
            return try BertTokenizer.load(vocabFile: URL(fileURLWithPath: vocab),
                                          options: BertTokenizerOptions(lowercase: doLowerCase ?? true))
        }
        guard let dir = model.map({ URL(fileURLWithPath: $0) }) ?? BundledModel.locate() else {
            throw Self.failure("no model: the bundled model (\(BundledModel.relativePath)) was not found; give --model DIR or --vocab FILE")
        }
        return try BertTokenizer.load(modelDirectory: dir)
    }

    static func appendRecord(_ record: InputRecord, _ e: Encoding, _ tokenizer: BertTokenizer, truncation: Bool, to out: inout [UInt8]) {
        out.append(contentsOf: "{\"index\": ".utf8)
        JSONText.appendInt(record.index, to: &out)
        if let id = record.id {
            out.append(contentsOf: ", \"id\": ".utf8)
            JSONText.appendString(id, to: &out)
        }
        out.append(contentsOf: ", \"tokens\": ".utf8)
        JSONText.appendStrings(e.ids.lazy.map { tokenizer.vocabulary.token(of: Int($0)) }, to: &out)
        out.append(contentsOf: ", \"ids\": ".utf8)
        JSONText.appendInts(e.ids.lazy.map { Int($0) }, to: &out)
        out.append(contentsOf: ", \"offsets\": ".utf8)
        JSONText.appendSpans(e.offsets.lazy.map { $0.map { (Int($0.start), Int($0.end)) } }, to: &out)
        out.append(contentsOf: ", \"segments\": ".utf8)
        JSONText.appendInts(e.segments.lazy.map { Int($0) }, to: &out)
        if truncation {
            out.append(contentsOf: (e.truncated ? ", \"truncated\": true" : ", \"truncated\": false").utf8)
        }
        out.append(contentsOf: "}\n".utf8)
    }

    static func flush(_ out: inout [UInt8]) {
        writeAll(1, out)
        out.removeAll(keepingCapacity: true)
    }

    static func writeStandardError(_ text: String) {
        writeAll(2, Array(text.utf8))
    }

    /// write(2) until done (a closed pipe ends the process by SIGPIPE, as for any filter).
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { IO.writeAll(fd, $0) }
    }
}
