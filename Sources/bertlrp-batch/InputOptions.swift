import ArgumentParser
import Foundation
import IO

/// The reader's options (docs/CONTRACT.md section 2), shared by the commands that
/// read records.
struct InputOptions: ParsableArguments {
    @Option(help: "Input format (default: by extension; standard input is sniffed).")
    var format: RecordFormat?

    @Option(name: .customLong("text-field"), help: "Field (or, with --no-header, 1-based TSV column) holding the text (default: text or sentence).")
    var textField: String?

    @Option(name: .customLong("text-b-field"), help: "Field holding the second segment of a pair (default: text_b).")
    var textBField: String?

    @Option(name: .customLong("id-field"), help: "Field holding the record id (default: id).")
    var idField: String?

    @Option(name: .customLong("label-field"), help: "Field holding the label (default: label).")
    var labelField: String?

    @Flag(name: .customLong("no-header"), help: "TSV inputs have no header line; name fields by column number.")
    var noHeader = false

    @Option(name: .customLong("max-line-bytes"), help: ArgumentHelp("Longest record line, in bytes (default 67108864, 64 MiB). A longer line is a bad record (errors.jsonl, with its line number), read past without being held in memory.", valueName: "n"))
    var maxLineBytes: Int?

    @Argument(help: "Input files (.tsv, .jsonl, optionally .zst); standard input when none, or '-'.")
    var inputs: [String] = []

    func validate() throws {
        if let n = maxLineBytes, n < 1 { throw ValidationError("--max-line-bytes must be at least 1") }
    }

    /// What the reader is told.
    var readerOptions: RecordReaderOptions {
        RecordReaderOptions(format: format, textField: textField, textBField: textBField,
                            idField: idField, labelField: labelField, header: !noHeader,
                            maxLineBytes: maxLineBytes ?? RecordReaderOptions.defaultMaxLineBytes)
    }

    /// As recorded in the manifest (what must match on --resume).
    var manifestDescription: [String: String] {
        var d: [String: String] = ["header": noHeader ? "false" : "true"]
        if let format { d["format"] = format.rawValue }
        if let textField { d["text_field"] = textField }
        if let textBField { d["text_b_field"] = textBField }
        if let idField { d["id_field"] = idField }
        if let labelField { d["label_field"] = labelField }
        if let maxLineBytes { d["max_line_bytes"] = String(maxLineBytes) }
        return d
    }
}
