import Foundation
import ModelFiles

/// Options of `bertlrp-batch convert` (docs/CONTRACT.md section 4).
public struct ConversionOptions: Sendable {
    /// `config.json` or Google `bert_config.json`; default: the one beside the source.
    public var config: URL?
    /// `vocab.txt`; default: the one beside the source.
    public var vocab: URL?
    /// Class names, in classifier row order.
    public var labels: [String]?
    /// Number of classes, checked against the classifier.
    public var numLabels: Int?
    /// Element type of `model.safetensors`: F32 (default), F16 or BF16.
    public var dtype: TensorDType
    /// Replace an existing non-empty output directory.
    public var overwrite: Bool

    public init(config: URL? = nil, vocab: URL? = nil, labels: [String]? = nil, numLabels: Int? = nil,
                dtype: TensorDType = .f32, overwrite: Bool = false) {
        self.config = config
        self.vocab = vocab
        self.labels = labels
        self.numLabels = numLabels
        self.dtype = dtype
        self.overwrite = overwrite
    }
}

/// What a conversion did.
public struct ConversionSummary: Sendable {
    public struct Skipped: Sendable, Equatable {
        public let name: String
        public let reason: NameMapping.SkipReason
    }
    /// The checkpoint file read (the `.index` file for TF).
    public let source: String
    /// "TensorFlow checkpoint", "torch.save zip", "torch.save legacy" or "safetensors".
    public let format: String
    public let output: URL
    /// Tensors in the checkpoint.
    public let tensorsInCheckpoint: Int
    /// Tensors read and written to `model.safetensors`.
    public let tensorsWritten: Int
    public let skipped: [Skipped]
    /// Element types of the tensors read (e.g. ["F32"]).
    public let sourceDTypes: [String]
    public let dtype: TensorDType
    public let labels: [String]
    /// Size of `model.safetensors` in bytes.
    public let modelBytes: Int
    public let seconds: Double
    /// Things worth knowing (e.g. a cased vocabulary detected).
    public let notes: [String]
}

/// Errors of the conversion itself (the checkpoint formats throw `IOFormatError`).
public enum ConversionError: Error, CustomStringConvertible, Equatable {
    case badSource(path: String, reason: String)
    case badConfig(file: String, reason: String)
    case shapeMismatch(file: String, tensor: String, shape: [Int], expected: [Int], hint: String)
    case missingTensors(file: String, names: [String])
    case labels(file: String, reason: String)
    case output(path: String, reason: String)

    public var description: String {
        switch self {
        case let .badSource(path, reason): return "\(path): \(reason)"
        case let .badConfig(file, reason): return "\(file): \(reason)"
        case let .shapeMismatch(file, tensor, shape, expected, hint):
            return "\(file): tensor '\(tensor)' has shape \(shape), the config needs \(expected)\(hint.isEmpty ? "" : " (\(hint))")"
        case let .missingTensors(file, names):
            let shown = names.prefix(3).map { "'\($0)'" }.joined(separator: ", ")
            return "\(file): missing tensor\(names.count > 1 ? "s" : "") \(shown)\(names.count > 3 ? " and \(names.count - 3) more" : "")"
        case let .labels(file, reason): return "\(file): \(reason)"
        case let .output(path, reason): return "\(path): \(reason)"
        }
    }
}

/// Turns a TF checkpoint, a torch.save file (zip or legacy) or a safetensors
/// file into the model directory of docs/CONTRACT.md section 1.
///
/// The output is built in a hidden sibling folder and renamed into place only
/// when complete; on any error nothing is left behind.
public enum CheckpointConverter {
    public static func convert(source: URL, output: URL, options: ConversionOptions = ConversionOptions()) throws -> ConversionSummary {
        let clock = ContinuousClock()
        let started = clock.now
        guard [.f32, .f16, .bf16].contains(options.dtype) else {
            throw ConversionError.output(path: output.path, reason: "output dtype must be F32, F16 or BF16, not \(options.dtype.rawValue)")
        }
        let outputPath = output.standardizedFileURL.path
        try checkSourcesOutside(outputPath, sources: [source.path])
        try checkOutput(outputPath, overwrite: options.overwrite)

        // 1. Read the checkpoint's table of contents.
        let ckpt = try SourceCheckpoint.open(source)
        let config = try BertConfig.load(options.config, beside: ckpt.directory)

        // 2. Map names, check every tensor against the config.
        var plan: [String: (source: String, transpose: Bool)] = [:]
        var skipped: [ConversionSummary.Skipped] = []
        let torchNames = ckpt.isTensorFlow ? nil : NameMapping.Torch(names: ckpt.names)
        for name in ckpt.names {
            let target = torchNames?.target(name) ?? NameMapping.tensorFlow(name)
            switch target {
            case let .skip(reason):
                skipped.append(.init(name: name, reason: reason))
            case let .tensor(hf, transpose):
                if let other = plan[hf] {
                    throw ConversionError.badSource(path: ckpt.file, reason: "both '\(other.source)' and '\(name)' would become '\(hf)'")
                }
                plan[hf] = (name, transpose)
            }
        }
        if ckpt.isTensorFlow && plan.isEmpty && ckpt.names.contains(where: { $0.hasSuffix("/.ATTRIBUTES/VARIABLE_VALUE") }) {
            throw IOFormatError.unsupported(file: ckpt.file, detail: "a TF2 object-based checkpoint (tf.train.Checkpoint names); convert it to Google BERT's names or to a torch/safetensors file first")
        }
        guard let classifier = plan["classifier.weight"] else {
            let hint = ckpt.isTensorFlow ? "output_weights" : "classifier.weight"
            throw ConversionError.badSource(path: ckpt.file, reason: "no classifier ('\(hint)'): this is a pre-trained model, not a fine-tuned classifier")
        }
        let classifierShape = try ckpt.tensor(classifier.source).shape
        guard classifierShape.count == 2, classifierShape[0] >= 1, classifierShape[0] <= 100_000 else {
            throw ConversionError.badSource(path: ckpt.file, reason: "classifier '\(classifier.source)' has shape \(classifierShape)")
        }
        let numClasses = classifierShape[0]
        let labels = try resolveLabels(numClasses: numClasses, options: options, config: config, file: ckpt.file)
        let expected = config.expectedShapes(numClasses: numClasses)

        var tensors: [(hf: String, tensor: CheckpointTensor, transpose: Bool)] = []
        var missing: [String] = []
        for (hf, shape) in expected.sorted(by: { $0.key < $1.key }) {
            guard let p = plan[hf] else { missing.append(hf); continue }
            let t = try ckpt.tensor(p.source)
            var outShape = t.shape
            if p.transpose {
                guard t.shape.count == 2 else {
                    throw ConversionError.shapeMismatch(file: ckpt.file, tensor: p.source, shape: t.shape, expected: shape.reversed(), hint: "a kernel must have 2 dimensions")
                }
                outShape = [t.shape[1], t.shape[0]]
            }
            guard outShape == shape else {
                throw ConversionError.shapeMismatch(file: ckpt.file, tensor: p.source, shape: t.shape,
                                                    expected: p.transpose ? shape.reversed() : shape, hint: "config \(config.file)")
            }
            guard let dt = t.dtype, [.f32, .f16, .bf16, .f64].contains(dt) else {
                throw IOFormatError.unsupported(file: ckpt.file, detail: "tensor '\(p.source)' is \(t.typeName), expected a floating-point type")
            }
            tensors.append((hf, t, p.transpose))
        }
        if !missing.isEmpty {
            let names = missing.map { hf in Self.sourceName(hf, tensorFlow: ckpt.isTensorFlow, torch: torchNames) }
            throw ConversionError.missingTensors(file: ckpt.file, names: names)
        }
        let unexpected = plan.keys.filter { expected[$0] == nil }.sorted()
        if let first = unexpected.first {
            throw ConversionError.badSource(path: ckpt.file, reason: "tensor '\(plan[first]!.source)' does not fit the config \(config.file) (\(config.summary))")
        }

        // 3. Tokenizer files.
        let vocab = try findVocab(options.vocab, beside: ckpt.directory, config: config)
        // Every file read must stay outside what the output replaces.
        try checkSourcesOutside(outputPath, sources: [ckpt.file, config.file] + vocab.files.map(\.0) + [vocab.tokenizerConfig].compactMap { $0 })

        // 4. Write into a hidden sibling, then rename into place.
        let parent = (outputPath as NSString).deletingLastPathComponent
        let partialPrefix = ".\((outputPath as NSString).lastPathComponent).partial-"
        let temp = (parent as NSString).appendingPathComponent("\(partialPrefix)\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let fm = FileManager.default
        removeAbandoned(in: parent, prefix: partialPrefix)
        do {
            try fm.createDirectory(atPath: temp, withIntermediateDirectories: false)
        } catch {
            throw ConversionError.output(path: outputPath, reason: "cannot create a folder beside it: \(systemReason(error))")
        }
        var committed = false
        defer { if !committed { try? fm.removeItem(atPath: temp) } }

        let entries = tensors.map { SafeTensorsWriter.Entry(name: $0.hf, dtype: options.dtype, shape: expected[$0.hf]!) }
        let writer = try SafeTensorsWriter(path: (temp as NSString).appendingPathComponent("model.safetensors"), entries: entries)
        let scratch = TensorScratch()
        for t in tensors {
            try TensorCopy.write(t.tensor, transpose: t.transpose, as: options.dtype, into: writer, scratch: scratch, file: ckpt.file)
        }
        try writer.finish()

        var notes: [String] = []
        try config.write(to: (temp as NSString).appendingPathComponent("config.json"), labels: labels)
        for (src, name) in vocab.files {
            try copyFile(src, to: (temp as NSString).appendingPathComponent(name))
        }
        if vocab.tokenizerConfig == nil, let cased = vocab.looksCased, cased {
            let json = "{\"do_lower_case\": false}\n"
            try writeFile(Data(json.utf8), to: (temp as NSString).appendingPathComponent("tokenizer_config.json"))
            notes.append("vocab.txt has upper-case tokens: wrote tokenizer_config.json with do_lower_case false")
        }
        if let c = vocab.tokenizerConfig {
            try copyFile(c, to: (temp as NSString).appendingPathComponent("tokenizer_config.json"))
        }
        try place(temp, at: outputPath, overwrite: options.overwrite)
        committed = true

        let dtypes = Set(tensors.compactMap { $0.tensor.dtype?.rawValue }).sorted()
        let elapsed = clock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return ConversionSummary(
            source: ckpt.file, format: ckpt.format, output: URL(fileURLWithPath: outputPath),
            tensorsInCheckpoint: ckpt.names.count, tensorsWritten: tensors.count, skipped: skipped,
            sourceDTypes: dtypes, dtype: options.dtype, labels: labels, modelBytes: writer.fileSize,
            seconds: seconds, notes: notes)
    }

    /// The name a missing HF tensor would have had in the checkpoint, for the error message.
    static func sourceName(_ hf: String, tensorFlow: Bool, torch: NameMapping.Torch?) -> String {
        if tensorFlow {
            if hf == "classifier.weight" { return "output_weights" }
            if hf == "classifier.bias" { return "output_bias" }
            var parts = hf.split(separator: ".").map(String.init)
            var out: [String] = []
            var i = 0
            while i < parts.count {
                if parts[i] == "layer", i + 1 < parts.count, Int(parts[i + 1]) != nil {
                    out.append("layer_" + parts[i + 1]); i += 2; continue
                }
                out.append(parts[i]); i += 1
            }
            parts = out
            if parts.last == "weight" {
                parts.removeLast()
                if parts.last?.hasSuffix("_embeddings") != true {
                    parts.append(parts.last == "LayerNorm" ? "gamma" : "kernel")
                }
            } else if parts.last == "bias", parts.dropLast().last == "LayerNorm" {
                parts[parts.count - 1] = "beta"
            }
            return parts.joined(separator: "/")
        }
        guard let torch else { return hf }
        if hf.hasPrefix("bert.") { return torch.bodyPrefix + hf.dropFirst(5) }
        return torch.outerPrefix + hf
    }

    static func resolveLabels(numClasses: Int, options: ConversionOptions, config: BertConfig, file: String) throws -> [String] {
        if let n = options.numLabels, n != numClasses {
            throw ConversionError.labels(file: file, reason: "--num-labels \(n), but the classifier has \(numClasses) rows")
        }
        if let labels = options.labels {
            guard labels.count == numClasses else {
                throw ConversionError.labels(file: file, reason: "--labels names \(labels.count) classes, but the classifier has \(numClasses) rows")
            }
            guard Set(labels).count == labels.count else {
                throw ConversionError.labels(file: file, reason: "--labels names a class twice")
            }
            return labels
        }
        if config.id2label == nil, let n = config.numLabels, n != numClasses {
            throw ConversionError.labels(file: config.file, reason: "num_labels \(n), but the classifier in \(file) has \(numClasses) rows; give --labels")
        }
        if let names = config.id2label {
            guard names.count == numClasses else {
                throw ConversionError.labels(file: config.file, reason: "id2label names \(names.count) classes, but the classifier in \(file) has \(numClasses) rows; give --labels")
            }
            return names
        }
        return (0..<numClasses).map { "LABEL_\($0)" }
    }

    // MARK: files

    struct TokenizerFiles {
        var files: [(String, String)] = [] // (source path, name in the model directory)
        var tokenizerConfig: String?
        var looksCased: Bool?
    }

    static func findVocab(_ explicit: URL?, beside dir: String, config: BertConfig) throws -> TokenizerFiles {
        let fm = FileManager.default
        var out = TokenizerFiles()
        let vocabPath: String?
        if let explicit {
            guard fm.fileExists(atPath: explicit.path) else {
                throw ConversionError.badSource(path: explicit.path, reason: "no such vocabulary file")
            }
            vocabPath = explicit.path
        } else {
            let p = (dir as NSString).appendingPathComponent("vocab.txt")
            vocabPath = fm.fileExists(atPath: p) ? p : nil
        }
        let tokenizerJSON = (dir as NSString).appendingPathComponent("tokenizer.json")
        if explicit == nil, fm.fileExists(atPath: tokenizerJSON) { out.files.append((tokenizerJSON, "tokenizer.json")) }
        let tc = (dir as NSString).appendingPathComponent("tokenizer_config.json")
        if fm.fileExists(atPath: tc) { out.tokenizerConfig = tc }
        guard let vocabPath else {
            if !out.files.isEmpty { return out }
            throw ConversionError.badSource(path: dir, reason: "no vocab.txt (or tokenizer.json) beside the checkpoint; give --vocab")
        }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: vocabPath)) } catch {
            throw ConversionError.badSource(path: vocabPath, reason: "cannot read: \(systemReason(error))")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConversionError.badSource(path: vocabPath, reason: "vocabulary is not valid UTF-8")
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        guard !lines.isEmpty else { throw ConversionError.badSource(path: vocabPath, reason: "vocabulary is empty") }
        guard lines.count <= config.vocabSize else {
            throw ConversionError.badSource(path: vocabPath, reason: "vocabulary has \(lines.count) tokens, more than vocab_size \(config.vocabSize) in \(config.file)")
        }
        var cased = 0
        for l in lines where !l.hasPrefix("[") {
            if l.unicodeScalars.contains(where: { $0.isASCII ? ($0.value >= 65 && $0.value <= 90) : $0.properties.isUppercase }) { cased += 1 }
        }
        out.looksCased = cased * 100 > lines.count
        out.files.append((vocabPath, "vocab.txt"))
        return out
    }

    static func copyFile(_ src: String, to dst: String) throws {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: src)) } catch {
            throw ConversionError.output(path: dst, reason: "cannot copy \(src): \(systemReason(error))")
        }
        try writeFile(data, to: dst)
    }

    /// Plain open/write/close. FileManager.copyItem and Data.write fsync, and
    /// on ext4 that commits the journal with the just-written
    /// model.safetensors in it: the conversion then waited for the disk.
    static func writeFile(_ data: Data, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ConversionError.output(path: path, reason: "cannot create: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        if let code = data.withUnsafeBytes({ writeAll(fd, $0) }) {
            throw ConversionError.output(path: path, reason: "cannot write: \(errorText(code))")
        }
    }

    /// Fails early, before any work, if the output cannot be placed.
    static func checkOutput(_ path: String, overwrite: Bool) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        let parent = (path as NSString).deletingLastPathComponent
        guard fm.fileExists(atPath: parent.isEmpty ? "." : parent, isDirectory: &isDir), isDir.boolValue else {
            throw ConversionError.output(path: path, reason: "its parent folder does not exist")
        }
        if fm.fileExists(atPath: path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw ConversionError.output(path: path, reason: "exists and is not a folder") }
            let contents = (try? fm.contentsOfDirectory(atPath: path)) ?? []
            if !contents.isEmpty && !overwrite {
                throw ConversionError.output(path: path, reason: "exists and is not empty (remove it, or pass --force)")
            }
            // --force replaces only what a conversion writes: a model directory, never other files.
            let foreign = contents.filter { !modelFileNames.contains($0) }
            if !foreign.isEmpty {
                throw ConversionError.output(path: path, reason: "holds \(describeEntries(foreign, in: URL(fileURLWithPath: path))) that convert does not write; --force replaces only a model directory (\(modelFileNames.joined(separator: ", "))): choose another -o")
            }
        }
    }

    /// The files a conversion writes (docs/CONTRACT.md section 1).
    static let modelFileNames = ["config.json", "model.safetensors", "vocab.txt", "tokenizer.json", "tokenizer_config.json"]

    /// Refuses an output directory that holds (at any depth, through any
    /// link) a file the conversion reads: `--force` would delete it.
    static func checkSourcesOutside(_ output: String, sources: [String]) throws {
        guard let out = FileID(path: output) else { return }
        for source in sources {
            // The source and each folder above it, links resolved.
            guard let real = realpath(source, nil) else { continue }
            var path = String(cString: real)
            free(real)
            let resolved = path
            while true {
                if FileID(path: path) == out {
                    let what = path == resolved ? "is" : "holds"
                    throw ConversionError.output(path: output, reason: "\(what) \(source), which this conversion reads; the output must be outside its sources (--force would delete it): choose another -o")
                }
                let parent = (path as NSString).deletingLastPathComponent
                if parent == path || parent.isEmpty { break }
                path = parent
            }
        }
    }

    static func place(_ temp: String, at path: String, overwrite: Bool) throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: path) {
            let contents = (try? fm.contentsOfDirectory(atPath: path)) ?? []
            if contents.isEmpty {
                try? fm.removeItem(atPath: path)
            } else {
                guard overwrite else { throw ConversionError.output(path: path, reason: "exists and is not empty (remove it, or pass --force)") }
                let old = temp + ".old"
                guard rename(path, old) == 0 else {
                    throw ConversionError.output(path: path, reason: "cannot move the old folder aside: \(String(cString: strerror(errno)))")
                }
                guard rename(temp, path) == 0 else {
                    let reason = String(cString: strerror(errno))
                    _ = rename(old, path)
                    throw ConversionError.output(path: path, reason: "cannot rename the new folder into place: \(reason)")
                }
                try? fm.removeItem(atPath: old)
                return
            }
        }
        guard rename(temp, path) == 0 else {
            throw ConversionError.output(path: path, reason: "cannot rename the new folder into place: \(String(cString: strerror(errno)))")
        }
    }
}

/// The checkpoint being converted, whatever its format.
struct SourceCheckpoint {
    let format: String
    /// The file named in messages (the `.index` for TF).
    let file: String
    /// Where config.json / vocab.txt are looked for.
    let directory: String
    let names: [String]
    let isTensorFlow: Bool
    private let lookup: (String) throws -> CheckpointTensor

    func tensor(_ name: String) throws -> CheckpointTensor { try lookup(name) }

    static func open(_ url: URL) throws -> SourceCheckpoint {
        let fm = FileManager.default
        let path = url.standardizedFileURL.path
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            return try open(try pick(in: path))
        }
        if path.hasSuffix(".index") { return try tensorFlow(prefix: String(path.dropLast(6))) }
        if let r = path.range(of: ".data-", options: .backwards), path[r.upperBound...].contains("-of-") {
            return try tensorFlow(prefix: String(path[..<r.lowerBound]))
        }
        if !fm.fileExists(atPath: path) {
            if fm.fileExists(atPath: path + ".index") { return try tensorFlow(prefix: path) }
            throw ConversionError.badSource(path: path, reason: "no such file or checkpoint prefix")
        }
        let file = try MappedFile(path: path)
        let head = Array(file.whole.prefix(16))
        let dir = (path as NSString).deletingLastPathComponent
        if head.starts(with: [0x50, 0x4B, 0x03, 0x04]) {
            let tensors = try TorchZip.load(file)
            return try torch(tensors, format: "torch.save zip", file: path, dir: dir)
        }
        if head.starts(with: TorchLegacy.signature) {
            let tensors = try TorchLegacy.load(file)
            return try torch(tensors, format: "torch.save legacy", file: path, dir: dir)
        }
        if head.starts(with: Array("PYTORCH1".utf8)) {
            throw IOFormatError.unsupported(file: path, detail: "archive format of the torch 1.0 preview release")
        }
        if file.count > 262, Array(file.whole[257..<262]) == Array("ustar".utf8) {
            throw IOFormatError.unsupported(file: path, detail: "tar-based torch.save format (torch < 0.4); load and re-save it with a newer torch")
        }
        if path.hasSuffix(".safetensors") {
            return try safetensors(file, dir: dir)
        }
        if head.first == 0x80 {
            throw IOFormatError.corrupt(file: path, detail: "a pickle, but not a torch.save file (bad magic number)")
        }
        throw IOFormatError.unsupported(file: path, detail: "not a TF checkpoint, torch.save file or safetensors file")
    }

    /// The one checkpoint in a directory.
    static func pick(in dir: String) throws -> URL {
        let fm = FileManager.default
        let files = ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).sorted()
        let indexes = files.filter { $0.hasSuffix(".index") }
        if !indexes.isEmpty {
            if indexes.count == 1 { return URL(fileURLWithPath: (dir as NSString).appendingPathComponent(indexes[0])) }
            // tf.train.Saver's `checkpoint` file names the newest prefix.
            let state = (dir as NSString).appendingPathComponent("checkpoint")
            if let text = try? String(contentsOfFile: state, encoding: .utf8) {
                for line in text.split(separator: "\n") where line.hasPrefix("model_checkpoint_path:") {
                    let value = line.dropFirst("model_checkpoint_path:".count).trimmingCharacters(in: .whitespaces)
                        .trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                    let p = value.hasPrefix("/") ? value : (dir as NSString).appendingPathComponent(value)
                    return URL(fileURLWithPath: p + ".index")
                }
            }
            throw ConversionError.badSource(path: dir, reason: "holds several TF checkpoints (\(indexes.joined(separator: ", "))); name one prefix")
        }
        for preferred in ["pytorch_model.bin", "model.safetensors"] where files.contains(preferred) {
            return URL(fileURLWithPath: (dir as NSString).appendingPathComponent(preferred))
        }
        let torchFiles = files.filter { [".bin", ".pt", ".pth", ".ckpt"].contains(where: $0.hasSuffix) }
        if torchFiles.count == 1 { return URL(fileURLWithPath: (dir as NSString).appendingPathComponent(torchFiles[0])) }
        if torchFiles.isEmpty {
            throw ConversionError.badSource(path: dir, reason: "holds no checkpoint (*.index, *.bin, *.pt, *.pth, *.ckpt, model.safetensors)")
        }
        throw ConversionError.badSource(path: dir, reason: "holds several checkpoints (\(torchFiles.joined(separator: ", "))); name one")
    }

    static func tensorFlow(prefix: String) throws -> SourceCheckpoint {
        let bundle = try TensorBundle(prefix: prefix)
        return SourceCheckpoint(format: "TensorFlow checkpoint", file: bundle.indexPath,
                                directory: (prefix as NSString).deletingLastPathComponent,
                                names: bundle.names, isTensorFlow: true, lookup: bundle.tensor)
    }

    static func torch(_ tensors: [CheckpointTensor], format: String, file: String, dir: String) throws -> SourceCheckpoint {
        var byName: [String: CheckpointTensor] = [:]
        var names: [String] = []
        for t in tensors {
            if byName[t.name] == nil { names.append(t.name) }
            byName[t.name] = t
        }
        return SourceCheckpoint(format: format, file: file, directory: dir, names: names, isTensorFlow: false) { name in
            guard let t = byName[name] else { throw IOFormatError.missingTensor(file: file, name: name) }
            return t
        }
    }

    static func safetensors(_ file: MappedFile, dir: String) throws -> SourceCheckpoint {
        let st = try SafeTensorsFile(url: URL(fileURLWithPath: file.path))
        let dataStart = 8 + Int(file.whole.u64(0))
        var tensors: [CheckpointTensor] = []
        for info in st.tensors.values.sorted(by: { $0.begin < $1.begin }) {
            tensors.append(CheckpointTensor(name: info.name, dtype: info.dtype, typeName: info.dtype.rawValue, shape: info.shape,
                                            file: file, byteOffset: dataStart + info.begin, strides: nil, bigEndian: false, check: nil))
        }
        return try torch(tensors, format: "safetensors", file: file.path, dir: dir)
    }
}

/// Removes the hidden folders `prefix` + PID + ... that a conversion killed
/// before it could clean up (kill -9, a power cut) left beside its output:
/// those whose process is gone. A live conversion's folder is left alone.
func removeAbandoned(in parent: String, prefix: String) {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: parent) else { return }
    for name in names where name.hasPrefix(prefix) {
        guard let pid = Int32(name.dropFirst(prefix.count).prefix { $0 != "-" }), pid > 0 else { continue }
        if kill(pid, 0) != 0 && errno == ESRCH {
            try? FileManager.default.removeItem(atPath: (parent as NSString).appendingPathComponent(name))
        }
    }
}
