import Foundation
import ModelFiles

/// One input record (docs/CONTRACT.md section 2).
public struct InputRecord: Sendable, Equatable {
    /// 0-based position across all inputs (bad records take an index too).
    public var index: Int
    public var input: String
    public var line: Int
    public var id: String?
    public var text: String
    public var textB: String?
    public var label: String?

    public init(index: Int, input: String, line: Int, id: String? = nil, text: String, textB: String? = nil, label: String? = nil) {
        self.index = index
        self.input = input
        self.line = line
        self.id = id
        self.text = text
        self.textB = textB
        self.label = label
    }
}

/// A record that could not be read; it goes to errors.jsonl.
public struct BadRecord: Error, Sendable, Equatable, CustomStringConvertible {
    public var index: Int
    public var input: String
    public var line: Int
    public var reason: String

    public init(index: Int, input: String, line: Int, reason: String) {
        self.index = index
        self.input = input
        self.line = line
        self.reason = reason
    }

    public var description: String { "\(input):\(line): record \(index): \(reason)" }

    /// The errors.jsonl line (without the newline).
    public var jsonLine: String {
        var out: [UInt8] = []
        out.append(contentsOf: "{\"index\": \(index), \"input\": ".utf8)
        JSONText.appendString(input, to: &out)
        out.append(contentsOf: ", \"line\": \(line), \"reason\": ".utf8)
        JSONText.appendString(reason, to: &out)
        out.append(0x7D)
        return String(decoding: out, as: UTF8.self)
    }
}

public enum RecordFormat: String, Sendable, CaseIterable {
    case tsv, jsonl
}

/// Field names (or, for TSV, 1-based column numbers written as digits).
public struct RecordReaderOptions: Sendable {
    public var format: RecordFormat?
    public var textField: String?
    public var textBField: String?
    public var idField: String?
    public var labelField: String?
    public var header: Bool
    /// A longer record line is a bad record, read past without being held.
    public var maxLineBytes: Int

    /// `--max-line-bytes`'s default: 64 MiB.
    public static let defaultMaxLineBytes = 64 << 20

    public init(format: RecordFormat? = nil, textField: String? = nil, textBField: String? = nil,
                idField: String? = nil, labelField: String? = nil, header: Bool = true,
                maxLineBytes: Int = RecordReaderOptions.defaultMaxLineBytes) {
        self.format = format
        self.textField = textField
        self.textBField = textBField
        self.idField = idField
        self.labelField = labelField
        self.header = header
        self.maxLineBytes = maxLineBytes
    }
}

/// An input-level problem that stops the run (exit 2): an unreadable file, a
/// TSV header without the text column, a corrupt `.zst`.
public struct InputError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public enum ReadItem: Sendable {
    case record(InputRecord)
    case bad(BadRecord)

    public var index: Int {
        switch self {
        case let .record(r): return r.index
        case let .bad(b): return b.index
        }
    }
}

/// Streams records from INPUT files in order (standard input when the list is
/// empty or names `-`), never holding a whole input. Empty lines are not records.
public final class RecordReader {
    public let inputs: [String]
    public let options: RecordReaderOptions
    private var inputPosition = 0
    private var current: OpenInput?
    private var nextIndex = 0
    private var finishedBytes: Int64 = 0
    /// The inputs read to their end so far: length and SHA-256 of their raw bytes.
    public private(set) var finished: [InputContent] = []
    /// Set before the first `next()` by a resumed run: the content its
    /// manifest vouches for, checked while streaming (InputContent.swift).
    public var expectation: InputExpectation?

    private struct OpenInput {
        let name: String
        let file: FileSource
        let hashing: HashingSource
        let lines: LineReader
        let format: RecordFormat
        var columns: TSVColumns?
        var pending: ArraySlice<UInt8>?   // a sniffed first line, not yet parsed
        var pendingOverlong: Int64?       // its length, when it was too long
    }

    private struct TSVColumns {
        var count: Int?      // expected column count (nil: headerless, unknown)
        var text: Int
        var textB: Int?
        var id: Int?
        var label: Int?
    }

    public init(inputs: [String], options: RecordReaderOptions = RecordReaderOptions()) {
        self.inputs = inputs.isEmpty ? ["-"] : inputs
        self.options = options
    }

    /// Total size of the inputs when all are regular files (for an ETA).
    public var totalBytes: Int64? {
        var total: Int64 = 0
        for name in inputs {
            guard name != "-", let attrs = try? FileManager.default.attributesOfItem(atPath: name),
                  let size = attrs[.size] as? NSNumber else { return nil }
            total += size.int64Value
        }
        return total
    }

    /// Bytes of the input files behind the records returned so far: exact
    /// for plain files (not the reader's 1 MiB chunks, so that progress moves
    /// record by record); for `.zst` inputs the compressed bytes read, in
    /// proportion to the decompressed bytes returned.
    public var bytesRead: Int64 {
        guard let c = current, c.lines.bytesProduced > 0 else { return finishedBytes }
        let consumed = c.file.bytesConsumed, produced = c.lines.bytesProduced, returned = c.lines.bytesReturned
        if consumed == produced { return finishedBytes + returned }
        return finishedBytes + Int64((Double(consumed) * Double(returned) / Double(produced)).rounded())
    }

    /// The next record or bad record; nil after the last input. Throws
    /// `InputError` for problems that concern a whole input.
    public func next() throws -> ReadItem? {
        while true {
            if current == nil {
                guard inputPosition < inputs.count else { return nil }
                current = try open(inputs[inputPosition])
                inputPosition += 1
            }
            let line: ArraySlice<UInt8>?
            let lineNumber: Int
            let overlong: Int64?
            do {
                if let p = current!.pending {
                    line = p
                    overlong = current!.pendingOverlong
                    current!.pending = nil
                } else {
                    line = try current!.lines.nextLine()
                    overlong = current!.lines.overlong
                }
                lineNumber = current!.lines.lineNumber
            } catch let e as InputError {
                throw e
            } catch {
                throw InputError("\(current!.name): \(error)")
            }
            guard let line else {
                finishedBytes += current!.file.bytesConsumed
                finished.append(InputContent(name: inputs[inputPosition - 1], bytes: current!.file.bytesConsumed,
                                             sha256: current!.hashing.prefixDigest()))
                current = nil
                continue
            }
            if let overlong {
                if current!.format == .tsv && current!.columns == nil && options.header {
                    throw InputError("\(current!.name):\(lineNumber): the TSV header is \(overlong) bytes, longer than --max-line-bytes \(options.maxLineBytes)")
                }
                let index = nextIndex
                nextIndex += 1
                return .bad(BadRecord(index: index, input: current!.name, line: lineNumber,
                                      reason: "line of \(overlong) bytes is longer than --max-line-bytes \(options.maxLineBytes); read past"))
            }
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            if current!.format == .tsv && current!.columns == nil {
                current!.columns = try tsvColumns(header: line, name: current!.name)
                if options.header { continue }
            }
            let index = nextIndex
            nextIndex += 1
            return parse(line, index: index, lineNumber: lineNumber)
        }
    }

    /// Where the reader is: the input being read, the raw bytes taken from
    /// it and their SHA-256 (nil before the first input is opened).
    public func mark() -> InputMark? {
        guard let c = current else { return nil }
        return InputMark(input: c.hashing.input, bytes: c.file.bytesConsumed, sha256: c.hashing.prefixDigest())
    }

    private func open(_ path: String) throws -> OpenInput {
        let file: FileSource
        do { file = try FileSource(path: path) } catch { throw InputError("\(error)") }
        let name = file.name
        var lower = path.lowercased()
        let number = inputPosition
        var expected: (bytes: Int64, sha256: String, whole: Bool)?
        if let e = expectation {
            if number < e.mark.input, number < e.before.count {
                expected = (e.before[number].bytes, e.before[number].sha256, true)
            } else if number == e.mark.input {
                expected = (e.mark.bytes, e.mark.sha256, false)
            }
        }
        let hashing = HashingSource(file, input: number, expected: expected)
        if let e = expectation {
            hashing.describeMismatch = { "\(name): changed since the run in \(e.run) read it: \($0); resume with the input the run read, or start a new run in another directory" }
        }
        var source: ByteSource = hashing
        let compressed = lower.hasSuffix(".zst")
        if compressed {
            lower.removeLast(4)
            source = try ZstdDecompressor(name: name, source: hashing)
        }
        let lines = LineReader(source: source, maxLineBytes: options.maxLineBytes)
        var format = options.format
        if format == nil {
            if lower.hasSuffix(".tsv") { format = .tsv }
            else if lower.hasSuffix(".jsonl") || lower.hasSuffix(".json") || lower.hasSuffix(".ndjson") { format = .jsonl }
        }
        var pending: ArraySlice<UInt8>?
        var pendingOverlong: Int64?
        if format == nil {
            // Sniff: the first non-blank line starting with `{` means JSONL.
            var first: ArraySlice<UInt8>?
            do {
                while let l = try lines.nextLine() {
                    if lines.overlong == nil && l.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
                    first = Array(l)[...]
                    pendingOverlong = lines.overlong
                    break
                }
            } catch let e as InputError { throw e } catch { throw InputError("\(name): \(error)") }
            let firstByte = first?.first(where: { $0 != 0x20 && $0 != 0x09 })
            format = firstByte == UInt8(ascii: "{") ? .jsonl : .tsv
            pending = first
        }
        return OpenInput(name: name, file: file, hashing: hashing, lines: lines, format: format!, columns: nil, pending: pending,
                         pendingOverlong: pendingOverlong)
    }

    // MARK: TSV

    private func tsvColumns(header line: ArraySlice<UInt8>, name: String) throws -> TSVColumns {
        let fields = line.split(separator: 0x09, omittingEmptySubsequences: false)
        if !options.header {
            func column(_ field: String?, _ what: String) throws -> Int? {
                guard let field else { return nil }
                guard let n = Int(field), n >= 1 else {
                    throw InputError("\(name): --no-header needs 1-based column numbers, got \(what) '\(field)'")
                }
                return n - 1
            }
            return TSVColumns(count: nil,
                              text: try column(options.textField, "--text-field") ?? 0,
                              textB: try column(options.textBField, "--text-b-field"),
                              id: try column(options.idField, "--id-field"),
                              label: try column(options.labelField, "--label-field"))
        }
        guard let names = String(validating: line, as: UTF8.self)?.split(separator: "\t", omittingEmptySubsequences: false).map({ String($0).trimmingCharacters(in: .whitespaces) }) else {
            throw InputError("\(name):1: the TSV header is not valid UTF-8")
        }
        func find(_ field: String?, defaults: [String], required: Bool, option: String) throws -> Int? {
            if let field {
                if let i = names.firstIndex(of: field) { return i }
                if let n = Int(field), n >= 1, n <= names.count { return n - 1 }
                throw InputError("\(name):1: the TSV header (\(names.joined(separator: ", "))) has no column '\(field)' (\(option))")
            }
            for d in defaults { if let i = names.firstIndex(of: d) { return i } }
            if required {
                throw InputError("\(name):1: the TSV header (\(names.joined(separator: ", "))) has no text column; name it with --text-field")
            }
            return nil
        }
        return TSVColumns(count: fields.count,
                          text: try find(options.textField, defaults: ["text", "sentence"], required: true, option: "--text-field")!,
                          textB: try find(options.textBField, defaults: ["text_b"], required: false, option: "--text-b-field"),
                          id: try find(options.idField, defaults: ["id"], required: false, option: "--id-field"),
                          label: try find(options.labelField, defaults: ["label"], required: false, option: "--label-field"))
    }

    private func parse(_ line: ArraySlice<UInt8>, index: Int, lineNumber: Int) -> ReadItem {
        let name = current!.name
        func bad(_ reason: String) -> ReadItem {
            .bad(BadRecord(index: index, input: name, line: lineNumber, reason: reason))
        }
        guard let text = String(validating: line, as: UTF8.self) else {
            return bad("invalid UTF-8")
        }
        switch current!.format {
        case .tsv:
            let c = current!.columns!
            let fields = text.split(separator: "\t", omittingEmptySubsequences: false)
            if let expected = c.count, fields.count != expected {
                return bad("expected \(expected) tab-separated columns, found \(fields.count)")
            }
            let needed = [c.text, c.textB, c.id, c.label].compactMap { $0 }.max()!
            guard fields.count > needed else {
                return bad("expected at least \(needed + 1) tab-separated columns, found \(fields.count)")
            }
            return .record(InputRecord(index: index, input: name, line: lineNumber,
                                       id: c.id.map { String(fields[$0]) },
                                       text: String(fields[c.text]),
                                       textB: c.textB.map { String(fields[$0]) },
                                       label: c.label.map { String(fields[$0]) }))
        case .jsonl:
            let object: Any
            do {
                object = try JSONSerialization.jsonObject(with: Data(line), options: [.fragmentsAllowed])
            } catch {
                return bad("malformed JSON")
            }
            guard let dict = object as? [String: Any] else { return bad("malformed JSON: not an object") }
            let textKey = options.textField ?? (dict["text"] == nil && dict["sentence"] != nil ? "sentence" : "text")
            guard let rawText = dict[textKey], !(rawText is NSNull) else {
                return bad("missing text field '\(textKey)'")
            }
            guard let text = rawText as? String else { return bad("field '\(textKey)' is not a string") }
            var textB: String?
            let textBKey = options.textBField ?? "text_b"
            if let v = dict[textBKey], !(v is NSNull) {
                guard let s = v as? String else { return bad("field '\(textBKey)' is not a string") }
                textB = s
            }
            return .record(InputRecord(index: index, input: name, line: lineNumber,
                                       id: Self.idString(dict, key: options.idField ?? "id", line: line),
                                       text: text, textB: textB,
                                       label: Self.scalarString(dict[options.labelField ?? "label"])))
        }
    }

    /// An id as text, a number as the digits it was read as
    /// (`1234567890123456789` stays that, not a rounded double).
    static func idString(_ dict: [String: Any], key: String, line: ArraySlice<UInt8>) -> String? {
        if let n = dict[key] as? NSNumber, String(cString: n.objCType) != "c",
           let raw = JSONScan.rawValue(of: key, in: line), let text = String(validating: raw, as: UTF8.self) {
            return text
        }
        return scalarString(dict[key])
    }

    /// A JSON string, number or boolean as text (`1` and `"1"` both give "1").
    static func scalarString(_ value: Any?) -> String? {
        switch value {
        case nil, is NSNull: return nil
        case let s as String: return s
        case let n as NSNumber:
            if String(cString: n.objCType) == "c" { return n.boolValue ? "true" : "false" }
            let d = n.doubleValue
            if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
            return "\(d)"
        default: return nil
        }
    }
}
