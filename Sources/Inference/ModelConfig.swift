import Foundation

/// The fields of `config.json` the engine uses (CONTRACT.md section 1).
public struct ModelConfig: Sendable, Equatable {
    public var hiddenSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var intermediateSize: Int
    public var maxPositions: Int
    public var typeVocabSize: Int
    public var vocabSize: Int
    public var layerNormEps: Float
    /// Class names in id order; their count is the number of classes.
    public var labels: [String]
    /// The `[PAD]` token (`pad_token_id`, default 0): integrated gradients' baseline.
    public var padTokenId = 0

    public var numClasses: Int { labels.count }
    public var headSize: Int { hiddenSize / numHeads }

    public init(hiddenSize: Int, numLayers: Int, numHeads: Int, intermediateSize: Int,
                maxPositions: Int, typeVocabSize: Int, vocabSize: Int,
                layerNormEps: Float = 1e-12, labels: [String]) {
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.intermediateSize = intermediateSize
        self.maxPositions = maxPositions
        self.typeVocabSize = typeVocabSize
        self.vocabSize = vocabSize
        self.layerNormEps = layerNormEps
        self.labels = labels
    }

    /// Reads a Hugging Face `config.json`.
    public static func load(_ url: URL) throws -> ModelConfig {
        let file = url.path
        guard FileManager.default.fileExists(atPath: file) else { throw ModelError.missingFile(file: file) }
        let object: [String: Any]
        do {
            guard let o = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any] else {
                throw ModelError.badConfig(file: file, detail: "not a JSON object")
            }
            object = o
        } catch let error as ModelError {
            throw error
        } catch {
            throw ModelError.badConfig(file: file, detail: "not valid JSON")
        }
        func int(_ key: String) throws -> Int {
            guard let n = (object[key] as? NSNumber)?.intValue, n > 0 else {
                throw ModelError.badConfig(file: file, detail: "'\(key)' is missing or not a positive integer")
            }
            return n
        }
        let act = object["hidden_act"] as? String ?? "gelu"
        guard act == "gelu" else {
            throw ModelError.badConfig(file: file, detail: "hidden_act '\(act)' is not supported (only 'gelu', with erf)")
        }
        // Relative position embeddings (some BERT variants) change attention itself.
        if let positions = object["position_embedding_type"] as? String, positions != "absolute" {
            throw ModelError.badConfig(file: file, detail: "position_embedding_type '\(positions)' is not supported (only 'absolute')")
        }
        let eps = (object["layer_norm_eps"] as? NSNumber)?.floatValue ?? 1e-12
        var labels: [String]
        if let id2label = object["id2label"] as? [String: Any], !id2label.isEmpty {
            labels = Array(repeating: "", count: id2label.count)
            for (key, value) in id2label {
                guard let i = Int(key), i >= 0, i < id2label.count else {
                    throw ModelError.badConfig(file: file, detail: "id2label keys must be 0..<\(id2label.count), found '\(key)'")
                }
                labels[i] = (value as? String) ?? "\(value)"
            }
        } else if let n = (object["num_labels"] as? NSNumber)?.intValue, n > 0 {
            labels = (0..<n).map { "LABEL_\($0)" }
        } else {
            throw ModelError.badConfig(file: file, detail: "no id2label (the classes of the classifier)")
        }
        var config = ModelConfig(
            hiddenSize: try int("hidden_size"), numLayers: try int("num_hidden_layers"),
            numHeads: try int("num_attention_heads"), intermediateSize: try int("intermediate_size"),
            maxPositions: try int("max_position_embeddings"), typeVocabSize: try int("type_vocab_size"),
            vocabSize: try int("vocab_size"), layerNormEps: eps, labels: labels)
        if let pad = (object["pad_token_id"] as? NSNumber)?.intValue {
            guard pad >= 0 && pad < config.vocabSize else {
                throw ModelError.badConfig(file: file, detail: "pad_token_id \(pad) is not in 0..<\(config.vocabSize)")
            }
            config.padTokenId = pad
        }
        guard config.hiddenSize % config.numHeads == 0 else {
            throw ModelError.badConfig(file: file, detail: "hidden_size \(config.hiddenSize) is not a multiple of num_attention_heads \(config.numHeads)")
        }
        return config
    }
}
