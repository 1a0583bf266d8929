import Foundation

/// The model's shape from a Hugging Face `config.json` or a Google
/// `bert_config.json` (same field names), and the `config.json` written
/// into the model directory (CONTRACT.md section 1).
struct BertConfig {
    let file: String
    /// Every field of the source file, carried over to the output.
    let fields: [String: Any]
    let hiddenSize: Int
    let layers: Int
    let heads: Int
    let intermediateSize: Int
    let maxPositions: Int
    let typeVocabSize: Int
    let vocabSize: Int
    /// Class names in id order, when the file has `id2label`.
    let id2label: [String]?

    var summary: String {
        "hidden_size \(hiddenSize), num_hidden_layers \(layers), intermediate_size \(intermediateSize), vocab_size \(vocabSize)"
    }

    static func load(_ explicit: URL?, beside dir: String) throws -> BertConfig {
        let fm = FileManager.default
        let path: String
        if let explicit {
            path = explicit.path
            guard fm.fileExists(atPath: path) else { throw ConversionError.badConfig(file: path, reason: "no such config file") }
        } else {
            let candidates = ["config.json", "bert_config.json"].map { (dir as NSString).appendingPathComponent($0) }
            guard let found = candidates.first(where: { fm.fileExists(atPath: $0) }) else {
                throw ConversionError.badConfig(file: dir, reason: "no config.json or bert_config.json beside the checkpoint; give --config")
            }
            path = found
        }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ConversionError.badConfig(file: path, reason: "cannot read: \(systemReason(error))")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data), let fields = object as? [String: Any] else {
            throw ConversionError.badConfig(file: path, reason: "not a JSON object")
        }
        func int(_ key: String, min: Int = 1) throws -> Int {
            guard let v = fields[key] else { throw ConversionError.badConfig(file: path, reason: "no '\(key)'") }
            guard let n = v as? NSNumber, n.doubleValue == n.doubleValue.rounded(),
                  n.doubleValue >= Double(min), n.doubleValue <= 1e9 else {
                throw ConversionError.badConfig(file: path, reason: "'\(key)' is not a whole number >= \(min)")
            }
            return n.intValue
        }
        let hidden = try int("hidden_size"), heads = try int("num_attention_heads")
        guard hidden % heads == 0 else {
            throw ConversionError.badConfig(file: path, reason: "hidden_size \(hidden) is not a multiple of num_attention_heads \(heads)")
        }
        var id2label: [String]?
        if let map = fields["id2label"] as? [String: Any], !map.isEmpty {
            var names = [String?](repeating: nil, count: map.count)
            for (k, v) in map {
                guard let i = Int(k), i >= 0, i < map.count, let name = v as? String, names[i] == nil else {
                    throw ConversionError.badConfig(file: path, reason: "id2label is not a map of 0..<\(map.count) to names")
                }
                names[i] = name
            }
            id2label = names.map { $0! }
        }
        return BertConfig(file: path, fields: fields, hiddenSize: hidden, layers: try int("num_hidden_layers"), heads: heads,
                          intermediateSize: try int("intermediate_size"), maxPositions: try int("max_position_embeddings"),
                          typeVocabSize: try int("type_vocab_size"), vocabSize: try int("vocab_size"), id2label: id2label)
    }

    /// Hugging Face names and shapes of every tensor of the classifier.
    func expectedShapes(numClasses: Int) -> [String: [Int]] {
        let h = hiddenSize, i = intermediateSize
        var s: [String: [Int]] = [
            "bert.embeddings.word_embeddings.weight": [vocabSize, h],
            "bert.embeddings.position_embeddings.weight": [maxPositions, h],
            "bert.embeddings.token_type_embeddings.weight": [typeVocabSize, h],
            "bert.embeddings.LayerNorm.weight": [h],
            "bert.embeddings.LayerNorm.bias": [h],
            "bert.pooler.dense.weight": [h, h],
            "bert.pooler.dense.bias": [h],
            "classifier.weight": [numClasses, h],
            "classifier.bias": [numClasses],
        ]
        for l in 0..<layers {
            let p = "bert.encoder.layer.\(l)."
            for m in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"] {
                s[p + m + ".weight"] = [h, h]
                s[p + m + ".bias"] = [h]
            }
            for ln in ["attention.output.LayerNorm", "output.LayerNorm"] {
                s[p + ln + ".weight"] = [h]
                s[p + ln + ".bias"] = [h]
            }
            s[p + "intermediate.dense.weight"] = [i, h]
            s[p + "intermediate.dense.bias"] = [i]
            s[p + "output.dense.weight"] = [h, i]
            s[p + "output.dense.bias"] = [h]
        }
        return s
    }

    /// The source's fields plus what the contract requires, with the class names.
    func write(to path: String, labels: [String]) throws {
        var out = fields
        out["model_type"] = "bert"
        out["architectures"] = ["BertForSequenceClassification"]
        if out["layer_norm_eps"] == nil { out["layer_norm_eps"] = 1e-12 }
        if out["hidden_act"] == nil { out["hidden_act"] = "gelu" }
        var id2label: [String: String] = [:]
        var label2id: [String: Int] = [:]
        for (i, name) in labels.enumerated() {
            id2label[String(i)] = name
            label2id[name] = i
        }
        out["id2label"] = id2label
        out["label2id"] = label2id
        out.removeValue(forKey: "num_labels")
        do {
            var data = try JSONSerialization.data(withJSONObject: out, options: [.prettyPrinted, .sortedKeys])
            data.append(0x0A)
            try CheckpointConverter.writeFile(data, to: path)
        } catch let error as ConversionError {
            throw error
        } catch {
            throw ConversionError.output(path: path, reason: "cannot write: \(systemReason(error))")
        }
    }
}
