import Foundation
import ModelFiles

/// The fields of `config.json` the engine uses (docs/CONTRACT.md section 1).
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
    /// `problem_type: multi_label_classification`: `probs` are independent
    /// sigmoids of the logits, not a softmax (docs/CONTRACT.md section 1).
    public var multiLabel: Bool
    /// Where `labels` came from (`id2label`, `num_labels`, the default), for messages.
    public var labelOrigin: String
    /// The `[PAD]` token (`pad_token_id`, default 0): integrated gradients' baseline.
    public var padTokenId: Int

    public var numClasses: Int { labels.count }
    public var headSize: Int { hiddenSize / numHeads }

    public init(hiddenSize: Int, numLayers: Int, numHeads: Int, intermediateSize: Int,
                maxPositions: Int, typeVocabSize: Int, vocabSize: Int,
                layerNormEps: Float = 1e-12, labels: [String], multiLabel: Bool = false, labelOrigin: String = "id2label",
                padTokenId: Int = 0) {
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.intermediateSize = intermediateSize
        self.maxPositions = maxPositions
        self.typeVocabSize = typeVocabSize
        self.vocabSize = vocabSize
        self.layerNormEps = layerNormEps
        self.labels = labels
        self.multiLabel = multiLabel
        self.labelOrigin = labelOrigin
        self.padTokenId = padTokenId
    }

    /// The class a record's label names: by name (as in id2label, then
    /// ignoring case), else by number ("1", "1.0"); nil when it names none.
    /// `--target gold` and `evaluate`'s accuracy read labels this way.
    public static func classIndex(ofLabel label: String, labels: [String]) -> Int? {
        let trimmed = label.trimmingCharacters(in: .whitespaces)
        if let i = labels.firstIndex(of: trimmed) { return i }
        if let i = labels.firstIndex(where: { $0.lowercased() == trimmed.lowercased() }) { return i }
        if let n = Int(trimmed), n >= 0, n < labels.count { return n }
        if let d = Double(trimmed), d == d.rounded(), d >= 0, Int(d) < labels.count { return Int(d) }
        return nil
    }

    /// Reads a Hugging Face `config.json` through IO's one reader of model
    /// configs (`BertConfig`: bounds, classes, problem type), shared with
    /// the converter.
    public static func load(_ url: URL) throws -> ModelConfig {
        let file = url.path
        guard FileManager.default.fileExists(atPath: file) else { throw ModelError.missingFile(file: file) }
        let c: BertConfig
        do { c = try BertConfig.read(file: file) } catch let e as BertConfig.Invalid {
            throw ModelError.badConfig(file: e.file, detail: e.reason)
        }
        return ModelConfig(hiddenSize: c.hiddenSize, numLayers: c.layers, numHeads: c.heads,
                           intermediateSize: c.intermediateSize, maxPositions: c.maxPositions,
                           typeVocabSize: c.typeVocabSize, vocabSize: c.vocabSize, layerNormEps: Float(c.layerNormEps),
                           labels: c.labels, multiLabel: c.multiLabel, labelOrigin: c.labelOrigin, padTokenId: c.padTokenId)
    }

    /// Every tensor the model reads, Hugging Face names and shapes (IO's one table).
    public var tensorShapes: [(name: String, shape: [Int])] {
        BertConfig.tensorShapes(hidden: hiddenSize, layers: numLayers, intermediate: intermediateSize, vocab: vocabSize,
                                maxPositions: maxPositions, typeVocab: typeVocabSize, numClasses: numClasses)
    }
}
