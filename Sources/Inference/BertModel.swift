import Foundation
import IO

/// What the seed's alpha-beta rule (`backprop_lrp_fc` in code/util/lrp.py)
/// needs of a dense layer, precomputed once at load time, and only when the
/// run asks for LRP: it is twice the size of the weights.
struct AlphaBetaWeights: Sendable {
    let inFeatures: Int
    let outFeatures: Int
    /// `[W⁺; W⁻]`: the clamped weights stacked, so that `x·W⁺ᵀ` and `x·W⁻ᵀ`
    /// (and `s⁺·W⁺ + s⁻·W⁻`) each take one sgemm.
    let plusMinus: FloatBuffer   // [2·out, in]
    let biasPlus: FloatBuffer    // [out]
    let biasMinus: FloatBuffer   // [out]

    init(weight: [Float], bias: [Float], inFeatures: Int, outFeatures: Int) {
        precondition(weight.count == inFeatures * outFeatures && bias.count == outFeatures)
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        let plusMinus = FloatBuffer(count: 2 * weight.count)
        for (k, w) in weight.enumerated() {
            plusMinus.p[k] = max(w, 0)
            plusMinus.p[weight.count + k] = min(w, 0)
        }
        self.plusMinus = plusMinus
        self.biasPlus = FloatBuffer(bias.map { max($0, 0) })
        self.biasMinus = FloatBuffer(bias.map { min($0, 0) })
    }
}

/// A dense layer `y = x · Wᵀ + b`.
struct Dense: Sendable {
    let inFeatures: Int
    let outFeatures: Int
    let weight: FloatBuffer      // [out, in]
    let bias: FloatBuffer        // [out]
    /// nil when the model was loaded without LRP.
    let alphaBeta: AlphaBetaWeights?

    init(weight: [Float], bias: [Float], inFeatures: Int, outFeatures: Int, relevance: Bool) {
        precondition(weight.count == inFeatures * outFeatures && bias.count == outFeatures)
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.weight = FloatBuffer(weight)
        self.bias = FloatBuffer(bias)
        alphaBeta = relevance ? AlphaBetaWeights(weight: weight, bias: bias, inFeatures: inFeatures, outFeatures: outFeatures) : nil
    }

    /// The alpha-beta weights; asking for them of a model loaded without LRP is a bug of ours.
    var rule: AlphaBetaWeights {
        guard let alphaBeta else { preconditionFailure("LRP asked of a model loaded without its alpha-beta weights") }
        return alphaBeta
    }
}

struct LayerNormWeights: Sendable {
    let gamma: FloatBuffer  // [H]
    let beta: FloatBuffer   // [H]
}

/// One encoder layer, names as in the Hugging Face checkpoints.
struct EncoderLayer: Sendable {
    /// Query, key and value weights stacked for the forward pass: one sgemm.
    let qkvWeight: FloatBuffer   // [3H, H]
    let qkvBias: FloatBuffer     // [3H]
    /// The alpha-beta weights of query, key and value, in that order (empty
    /// when the model was loaded without LRP).
    let queryKeyValueRules: [AlphaBetaWeights]
    let attentionOutput: Dense   // attention.output.dense
    let attentionNorm: LayerNormWeights
    let intermediate: Dense      // [I, H]
    let output: Dense            // [H, I]
    let outputNorm: LayerNormWeights
}

/// A BERT sequence classifier, immutable once loaded and shared by all engines.
public final class BertModel: Sendable {
    public let config: ModelConfig
    /// Where the weights came from (a directory, or "random").
    public let source: String
    let wordEmbeddings: FloatBuffer      // [V, H]
    let positionEmbeddings: FloatBuffer  // [P, H]
    let typeEmbeddings: FloatBuffer      // [types, H]
    let embeddingNorm: LayerNormWeights
    let layers: [EncoderLayer]
    let pooler: Dense                    // [H, H]
    let classifier: Dense                // [C, H]
    /// Whether the alpha-beta weights LRP needs were built (`init(directory:relevance:)`).
    public let relevance: Bool

    /// Loads `config.json` and `model.safetensors` of a model directory
    /// (CONTRACT.md section 1). `relevance`: also the alpha-beta weights LRP
    /// needs (twice the dense layers' size); without them the model serves
    /// every method but `lrp`.
    public convenience init(directory: URL, relevance: Bool = true) throws {
        let config = try ModelConfig.load(directory.appendingPathComponent("config.json"))
        let url = directory.appendingPathComponent("model.safetensors")
        let path = url.path
        guard FileManager.default.fileExists(atPath: path) else { throw ModelError.missingFile(file: path) }
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(url: url) } catch {
            throw ModelError.unreadable(file: path, detail: Self.withoutFile("\(error)", path))
        }
        func tensor(_ names: [String], _ shape: [Int]) throws -> [Float] {
            guard let info = names.lazy.compactMap({ file.tensors[$0] }).first else {
                throw ModelError.missingTensor(file: path, name: names[0])
            }
            guard info.shape == shape else {
                throw ModelError.badShape(file: path, name: info.name, expected: shape, found: info.shape)
            }
            do { return try file.floats(info) } catch {
                throw ModelError.unreadable(file: path, detail: Self.withoutFile("\(error)", path))
            }
        }
        // LayerNorm parameters: `weight`/`bias`, or the older `gamma`/`beta`.
        func norm(_ prefix: String) throws -> LayerNormWeights {
            let h = config.hiddenSize
            return LayerNormWeights(gamma: FloatBuffer(try tensor([prefix + ".weight", prefix + ".gamma"], [h])),
                                    beta: FloatBuffer(try tensor([prefix + ".bias", prefix + ".beta"], [h])))
        }
        func dense(_ prefix: String, _ inF: Int, _ outF: Int) throws -> (w: [Float], b: [Float]) {
            (try tensor([prefix + ".weight"], [outF, inF]), try tensor([prefix + ".bias"], [outF]))
        }
        let h = config.hiddenSize, i = config.intermediateSize
        var weights = RawWeights(
            word: try tensor(["bert.embeddings.word_embeddings.weight"], [config.vocabSize, h]),
            position: try tensor(["bert.embeddings.position_embeddings.weight"], [config.maxPositions, h]),
            type: try tensor(["bert.embeddings.token_type_embeddings.weight"], [config.typeVocabSize, h]),
            embeddingNorm: try norm("bert.embeddings.LayerNorm"), layers: [],
            pooler: try dense("bert.pooler.dense", h, h),
            classifier: try dense("classifier", h, config.numClasses))
        for l in 0..<config.numLayers {
            let p = "bert.encoder.layer.\(l)."
            weights.layers.append(RawLayer(
                query: try dense(p + "attention.self.query", h, h),
                key: try dense(p + "attention.self.key", h, h),
                value: try dense(p + "attention.self.value", h, h),
                attentionOutput: try dense(p + "attention.output.dense", h, h),
                attentionNorm: try norm(p + "attention.output.LayerNorm"),
                intermediate: try dense(p + "intermediate.dense", h, i),
                output: try dense(p + "output.dense", i, h),
                outputNorm: try norm(p + "output.LayerNorm")))
        }
        self.init(config: config, source: directory.path, weights: weights, relevance: relevance)
    }

    /// A model of the given shape with random weights (normal, std 0.02, as
    /// BERT initializes), for benchmarks.
    public convenience init(randomWithConfig config: ModelConfig, seed: UInt64 = 42, relevance: Bool = true) {
        var rng = SplitMix(seed: seed)
        func normal(_ n: Int) -> [Float] { (0..<n).map { _ in 0.02 * rng.nextGaussian() } }
        func dense(_ inF: Int, _ outF: Int) -> (w: [Float], b: [Float]) { (normal(inF * outF), normal(outF)) }
        let h = config.hiddenSize, i = config.intermediateSize
        func norm() -> LayerNormWeights {
            LayerNormWeights(gamma: FloatBuffer([Float](repeating: 1, count: h)), beta: FloatBuffer(normal(h)))
        }
        var weights = RawWeights(word: normal(config.vocabSize * h), position: normal(config.maxPositions * h),
                                 type: normal(config.typeVocabSize * h), embeddingNorm: norm(), layers: [],
                                 pooler: dense(h, h), classifier: dense(h, config.numClasses))
        for _ in 0..<config.numLayers {
            weights.layers.append(RawLayer(query: dense(h, h), key: dense(h, h), value: dense(h, h),
                                           attentionOutput: dense(h, h), attentionNorm: norm(),
                                           intermediate: dense(h, i), output: dense(i, h), outputNorm: norm()))
        }
        self.init(config: config, source: "random", weights: weights, relevance: relevance)
    }

    /// IO's errors already start with the file name; ModelError adds it once.
    private static func withoutFile(_ text: String, _ path: String) -> String {
        text.hasPrefix(path + ": ") ? String(text.dropFirst(path.count + 2)) : text
    }

    private init(config: ModelConfig, source: String, weights: RawWeights, relevance: Bool) {
        let h = config.hiddenSize, i = config.intermediateSize
        self.config = config
        self.source = source
        wordEmbeddings = FloatBuffer(weights.word)
        positionEmbeddings = FloatBuffer(weights.position)
        typeEmbeddings = FloatBuffer(weights.type)
        embeddingNorm = weights.embeddingNorm
        layers = weights.layers.map { raw in
            EncoderLayer(
                qkvWeight: FloatBuffer(raw.query.w + raw.key.w + raw.value.w),
                qkvBias: FloatBuffer(raw.query.b + raw.key.b + raw.value.b),
                queryKeyValueRules: relevance ? [raw.query, raw.key, raw.value].map {
                    AlphaBetaWeights(weight: $0.w, bias: $0.b, inFeatures: h, outFeatures: h)
                } : [],
                attentionOutput: Dense(weight: raw.attentionOutput.w, bias: raw.attentionOutput.b, inFeatures: h, outFeatures: h, relevance: relevance),
                attentionNorm: raw.attentionNorm,
                intermediate: Dense(weight: raw.intermediate.w, bias: raw.intermediate.b, inFeatures: h, outFeatures: i, relevance: relevance),
                output: Dense(weight: raw.output.w, bias: raw.output.b, inFeatures: i, outFeatures: h, relevance: relevance),
                outputNorm: raw.outputNorm)
        }
        pooler = Dense(weight: weights.pooler.w, bias: weights.pooler.b, inFeatures: h, outFeatures: h, relevance: relevance)
        classifier = Dense(weight: weights.classifier.w, bias: weights.classifier.b, inFeatures: h, outFeatures: config.numClasses, relevance: relevance)
        self.relevance = relevance
    }
}

private struct RawLayer {
    var query, key, value, attentionOutput: (w: [Float], b: [Float])
    var attentionNorm: LayerNormWeights
    var intermediate, output: (w: [Float], b: [Float])
    var outputNorm: LayerNormWeights
}

private struct RawWeights {
    var word, position, type: [Float]
    var embeddingNorm: LayerNormWeights
    var layers: [RawLayer]
    var pooler, classifier: (w: [Float], b: [Float])
}

/// Deterministic random numbers for the benchmark's random model.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func nextUniform() -> Double { Double(next() >> 11) * 0x1p-53 }
    mutating func nextGaussian() -> Float {
        let u = max(nextUniform(), 1e-300), v = nextUniform()
        return Float((-2 * log(u)).squareRoot() * cos(2 * Double.pi * v))
    }
}
