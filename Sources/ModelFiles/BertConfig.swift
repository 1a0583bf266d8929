import Foundation

/// The model's shape from a Hugging Face `config.json` or a Google
/// `bert_config.json` (same field names), and the `config.json` written
/// into the model directory (docs/CONTRACT.md section 1; written by IO's converter). The one reader of these
/// files: the engine (Inference's `ModelConfig`) and the converter both take
/// their shape, bounds and classes from here, and the tensor table below is
/// the one list of names and shapes both check a checkpoint against.
public struct BertConfig {
    public let file: String
    /// Every field of the source file, carried over to the output.
    package let fields: [String: Any]
    public let hiddenSize: Int
    public let layers: Int
    public let heads: Int
    public let intermediateSize: Int
    public let maxPositions: Int
    public let typeVocabSize: Int
    public let vocabSize: Int
    public let layerNormEps: Double
    /// Class names in id order, when the file has `id2label`.
    public let id2label: [String]?
    /// `num_labels`, when the file has it (save_pretrained writes `id2label`
    /// instead; hand-written and older files have this).
    public let numLabels: Int?
    /// `problem_type: multi_label_classification`: independent sigmoids.
    public let multiLabel: Bool
    /// `pad_token_id` (default 0): the `[PAD]` token, integrated gradients' baseline.
    public let padTokenId: Int

    /// The limits a config is held to before anything is sized from it: well
    /// above every released BERT (BERT-large: hidden 1024, 24 layers,
    /// intermediate 4096, 512 positions, 30522 tokens; ALBERT-xxlarge hidden
    /// 4096), far below what would overflow a product of two of them. The
    /// vocabulary limit is the tokenizer's id limit.
    public static let limits: [(key: String, max: Int)] = [
        ("hidden_size", 1 << 16), ("num_hidden_layers", 1 << 10), ("num_attention_heads", 1 << 10),
        ("intermediate_size", 1 << 20), ("max_position_embeddings", 1 << 20), ("type_vocab_size", 1 << 16),
        ("vocab_size", 1 << 24), ("num_labels", 1 << 16),
    ]

    /// The classes the engine uses: `id2label`, else `num_labels` (default 2,
    /// as transformers' `PretrainedConfig`) classes named `LABEL_0`, ...
    public var labels: [String] {
        id2label ?? (0..<(numLabels ?? 2)).map { "LABEL_\($0)" }
    }

    /// Where `labels` came from, for messages.
    public var labelOrigin: String {
        if let id2label { return "id2label names \(id2label.count)" }
        if let numLabels { return "num_labels \(numLabels), no id2label" }
        return "no id2label or num_labels: 2, LABEL_0 and LABEL_1"
    }

    package var summary: String {
        "hidden_size \(hiddenSize), num_hidden_layers \(layers), intermediate_size \(intermediateSize), vocab_size \(vocabSize)"
    }

    /// Why a config cannot be used: the file and one line.
    public struct Invalid: Error, CustomStringConvertible, Equatable {
        public let file: String
        public let reason: String
        public var description: String { "\(file): \(reason)" }
    }

    /// Reads and validates `path`.
    public static func read(file path: String) throws -> BertConfig {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw Invalid(file: path, reason: "cannot read: \(systemReason(error))")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data), let fields = object as? [String: Any] else {
            throw Invalid(file: path, reason: "not a JSON object")
        }
        return try BertConfig(file: path, fields: fields)
    }

    package init(file path: String, fields: [String: Any]) throws {
        func bad(_ reason: String) -> Invalid { Invalid(file: path, reason: reason) }
        // A whole number within the limits (JSON numbers arrive as doubles:
        // 1e12 and 2^62 are checked as such, never converted unchecked).
        func whole(_ key: String, _ v: Any) throws -> Int {
            let limit = Self.limits.first { $0.key == key }!.max
            guard let n = v as? NSNumber, n.doubleValue == n.doubleValue.rounded(), n.doubleValue >= 1 else {
                throw bad("'\(key)' is not a whole number >= 1")
            }
            guard n.doubleValue <= Double(limit) else {
                // Digits up to 1e21, beyond that an exponent (1e300 is not 301 digits).
                let shown = String(format: n.doubleValue < 1e21 ? "%.0f" : "%g", n.doubleValue)
                throw bad("'\(key)' is \(shown), above the limit \(limit)")
            }
            return n.intValue
        }
        func int(_ key: String) throws -> Int {
            guard let v = fields[key], !(v is NSNull) else { throw bad("no '\(key)'") }
            return try whole(key, v)
        }
        let act = fields["hidden_act"] as? String ?? "gelu"
        guard act == "gelu" else {
            throw bad("hidden_act '\(act)' is not supported (only 'gelu', with erf)")
        }
        // Relative position embeddings (some BERT variants) change attention itself.
        if let positions = fields["position_embedding_type"] as? String, positions != "absolute" {
            throw bad("position_embedding_type '\(positions)' is not supported (only 'absolute')")
        }
        var eps = 1e-12
        if let v = fields["layer_norm_eps"], !(v is NSNull) {
            guard let n = v as? NSNumber, n.doubleValue > 0, n.doubleValue < 1 else {
                throw bad("'layer_norm_eps' is not a number in (0, 1)")
            }
            eps = n.doubleValue
        }
        let hidden = try int("hidden_size"), heads = try int("num_attention_heads")
        guard hidden % heads == 0 else {
            throw bad("hidden_size \(hidden) is not a multiple of num_attention_heads \(heads)")
        }
        var id2label: [String]?
        if let raw = fields["id2label"], !(raw is NSNull) {
            guard let map = raw as? [String: Any] else { throw bad("id2label is not an object") }
            if !map.isEmpty {
                guard map.count <= Self.limits.first(where: { $0.key == "num_labels" })!.max else {
                    throw bad("id2label names \(map.count) classes, above the limit")
                }
                var names = [String?](repeating: nil, count: map.count)
                for (k, v) in map {
                    guard let i = Int(k), i >= 0, i < map.count, names[i] == nil else {
                        throw bad("id2label is not a map of 0..<\(map.count) to names (key '\(k)')")
                    }
                    guard let name = v as? String ?? (v as? NSNumber).map({ "\($0)" }) else {
                        throw bad("id2label['\(k)'] is not a name")
                    }
                    names[i] = name
                }
                id2label = names.map { $0! }
            }
        }
        var numLabels: Int?
        if let v = fields["num_labels"], !(v is NSNull) { numLabels = try whole("num_labels", v) }
        // As transformers' PretrainedConfig: both given and disagreeing is an error.
        if let id2label, let numLabels, id2label.count != numLabels {
            throw bad("num_labels \(numLabels) but id2label names \(id2label.count) classes")
        }
        var multiLabel = false
        if let v = fields["problem_type"], !(v is NSNull) {
            let kinds = ["single_label_classification", "multi_label_classification"]
            guard let kind = v as? String, kinds.contains(kind) else {
                throw bad("problem_type \(v) is not supported (only \(kinds.joined(separator: " or ")))")
            }
            multiLabel = kind == "multi_label_classification"
        }
        // pad_token_id may be 0 (BERT's [PAD]), so it is read beside `whole`, which wants >= 1.
        var padTokenId = 0
        if let v = fields["pad_token_id"], !(v is NSNull) {
            guard let n = v as? NSNumber, n.doubleValue == n.doubleValue.rounded(), n.doubleValue >= 0,
                  n.doubleValue < Double(try int("vocab_size")) else {
                throw bad("pad_token_id \(v) is not a token id (0..<vocab_size)")
            }
            padTokenId = n.intValue
        }
        self.file = path
        self.fields = fields
        self.hiddenSize = hidden
        self.layers = try int("num_hidden_layers")
        self.heads = heads
        self.intermediateSize = try int("intermediate_size")
        self.maxPositions = try int("max_position_embeddings")
        self.typeVocabSize = try int("type_vocab_size")
        self.vocabSize = try int("vocab_size")
        self.layerNormEps = eps
        self.id2label = id2label
        self.numLabels = numLabels
        self.multiLabel = multiLabel
        self.padTokenId = padTokenId
    }

    /// Hugging Face names and shapes of every tensor of the classifier, in
    /// the model's order (embeddings, layers, pooler, classifier).
    public static func tensorShapes(hidden h: Int, layers: Int, intermediate i: Int, vocab: Int, maxPositions: Int,
                                    typeVocab: Int, numClasses: Int) -> [(name: String, shape: [Int])] {
        var s: [(name: String, shape: [Int])] = [
            ("bert.embeddings.word_embeddings.weight", [vocab, h]),
            ("bert.embeddings.position_embeddings.weight", [maxPositions, h]),
            ("bert.embeddings.token_type_embeddings.weight", [typeVocab, h]),
            ("bert.embeddings.LayerNorm.weight", [h]),
            ("bert.embeddings.LayerNorm.bias", [h]),
        ]
        for l in 0..<layers {
            let p = "bert.encoder.layer.\(l)."
            for m in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"] {
                s.append((p + m + ".weight", [h, h]))
                s.append((p + m + ".bias", [h]))
            }
            s.append((p + "attention.output.LayerNorm.weight", [h]))
            s.append((p + "attention.output.LayerNorm.bias", [h]))
            s.append((p + "intermediate.dense.weight", [i, h]))
            s.append((p + "intermediate.dense.bias", [i]))
            s.append((p + "output.dense.weight", [h, i]))
            s.append((p + "output.dense.bias", [h]))
            s.append((p + "output.LayerNorm.weight", [h]))
            s.append((p + "output.LayerNorm.bias", [h]))
        }
        s += [("bert.pooler.dense.weight", [h, h]), ("bert.pooler.dense.bias", [h]),
              ("classifier.weight", [numClasses, h]), ("classifier.bias", [numClasses])]
        return s
    }

    /// The older names a tensor of `tensorShapes` may have in a checkpoint
    /// (LayerNorm's `gamma`/`beta`, before transformers renamed them).
    public static func legacyNames(of name: String) -> [String] {
        if name.hasSuffix("LayerNorm.weight") { return [String(name.dropLast(6)) + "gamma"] }
        if name.hasSuffix("LayerNorm.bias") { return [String(name.dropLast(4)) + "beta"] }
        return []
    }

    /// The element count of every tensor of `shapes` and their sum, or nil
    /// when a product overflows (checked multiplication: never a trap).
    public static func elementCount(_ shapes: [(name: String, shape: [Int])]) -> Int? {
        var total = 0
        for (_, shape) in shapes {
            var n = 1
            for d in shape {
                let (p, o) = n.multipliedReportingOverflow(by: d)
                guard !o else { return nil }
                n = p
            }
            let (t, o) = total.addingReportingOverflow(n)
            guard !o else { return nil }
            total = t
        }
        return total
    }

    /// `tensorShapes` of this config, by name (the converter's lookup).
    package func expectedShapes(numClasses: Int) -> [String: [Int]] {
        let list = Self.tensorShapes(hidden: hiddenSize, layers: layers, intermediate: intermediateSize, vocab: vocabSize,
                                     maxPositions: maxPositions, typeVocab: typeVocabSize, numClasses: numClasses)
        return Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0.shape) })
    }

}
