import Foundation
import ModelFiles

/// What the seed's alpha-beta rule (`backprop_lrp_fc` in code/util/lrp.py)
/// needs of `parts` dense layers of one shape that read the same input
/// (query, key and value: 3; any other layer: 1), precomputed once at load
/// time, and only when the run asks for LRP: it is twice the size of the weights.
/// `part(k)` is the rule of one of them, a view into the same storage.
struct AlphaBetaWeights: @unchecked Sendable {
    let inFeatures: Int
    let outFeatures: Int
    let parts: Int
    /// parts × `[W⁺; W⁻]` `[parts·2·out, in]`: the clamped weights stacked, so that
    /// `x·W⁺ᵀ` and `x·W⁻ᵀ` of every part (and each part's `s⁺·W⁺ + s⁻·W⁻`) take one sgemm.
    let plusMinus: UnsafePointer<Float>
    /// parts × `[b⁺ + eps | b⁻ − eps]` `[parts·2·out]`: the denominators' constant terms.
    let zBias: UnsafePointer<Float>
    let biasPlus: UnsafePointer<Float>    // [parts·out]
    let biasMinus: UnsafePointer<Float>   // [parts·out]
    private let storage: FloatBuffer

    /// `weight [parts·out, in]`, `bias [parts·out]`: the parts' weights and biases stacked.
    init(weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, inFeatures: Int, outFeatures: Int, parts: Int = 1) {
        let count = inFeatures * outFeatures, o = outFeatures
        let storage = FloatBuffer(uninitializedCount: parts * (2 * count + 4 * o))
        let pm = storage.p, zb = pm + parts * 2 * count, bp = zb + parts * 2 * o, bn = bp + parts * o
        for k in 0..<parts {
            clampSplit(weight + k * count, plus: pm + 2 * k * count, minus: pm + (2 * k + 1) * count, count: count)
            for j in 0..<o {
                let b = bias[k * o + j]
                bp[k * o + j] = max(b, 0)
                bn[k * o + j] = min(b, 0)
                zb[2 * k * o + j] = max(b, 0) + DenseRelevance.eps
                zb[2 * k * o + o + j] = min(b, 0) - DenseRelevance.eps
            }
        }
        self.init(inFeatures: inFeatures, outFeatures: outFeatures, parts: parts, plusMinus: pm, zBias: zb,
                  biasPlus: bp, biasMinus: bn, storage: storage)
    }

    private init(inFeatures: Int, outFeatures: Int, parts: Int, plusMinus: UnsafePointer<Float>, zBias: UnsafePointer<Float>,
                 biasPlus: UnsafePointer<Float>, biasMinus: UnsafePointer<Float>, storage: FloatBuffer) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.parts = parts
        self.plusMinus = plusMinus
        self.zBias = zBias
        self.biasPlus = biasPlus
        self.biasMinus = biasMinus
        self.storage = storage
    }

    /// The rule of part `k` alone (its denominators sit at columns `k·2·out` of the stacked ones).
    func part(_ k: Int) -> AlphaBetaWeights {
        precondition(k >= 0 && k < parts)
        let o = outFeatures
        return AlphaBetaWeights(inFeatures: inFeatures, outFeatures: o, parts: 1, plusMinus: plusMinus + 2 * k * o * inFeatures,
                                zBias: zBias + 2 * k * o, biasPlus: biasPlus + k * o, biasMinus: biasMinus + k * o,
                                storage: storage)
    }
}

/// `plus = max(w, 0)`, `minus = min(w, 0)`, as selects the compiler vectorises.
private func clampSplit(_ w: UnsafePointer<Float>, plus: UnsafeMutablePointer<Float>, minus: UnsafeMutablePointer<Float>, count: Int) {
    for k in 0..<count {
        let v = w[k]
        plus[k] = v > 0 ? v : 0
        minus[k] = v < 0 ? v : 0
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

    init(weight: FloatBuffer, bias: FloatBuffer, inFeatures: Int, outFeatures: Int, relevance: Bool) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.weight = weight
        self.bias = bias
        alphaBeta = relevance ? AlphaBetaWeights(weight: weight.p, bias: bias.p, inFeatures: inFeatures, outFeatures: outFeatures) : nil
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
    /// The alpha-beta weights of query, key and value stacked (parts 3; nil
    /// when the model was loaded without LRP).
    let queryKeyValueRule: AlphaBetaWeights?
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
    /// (docs/CONTRACT.md section 1). `relevance`: also the alpha-beta weights LRP
    /// needs (twice the dense layers' size); without them the model serves
    /// every method but `lrp`. Each tensor is decoded straight into its
    /// buffer and its mapped pages dropped, so that loading holds the weights
    /// once.
    public convenience init(directory: URL, relevance: Bool = true) throws {
        try OpenBLAS.load()
        let config = try ModelConfig.load(directory.appendingPathComponent("config.json"))
        let url = directory.appendingPathComponent("model.safetensors")
        let path = url.path
        guard FileManager.default.fileExists(atPath: path) else { throw ModelError.missingFile(file: path) }
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(url: url) } catch {
            throw ModelError.unreadable(file: path, detail: Self.withoutFile("\(error)", path))
        }
        try Self.checkShapes(config, file, path: path)
        try self.init(config: config, source: directory.path, relevance: relevance) { names, shape, into in
            guard let info = names.lazy.compactMap({ file.tensors[$0] }).first else {
                throw ModelError.missingTensor(file: path, name: names[0])
            }
            guard info.shape == shape else {
                throw ModelError.badShape(file: path, name: info.name, expected: shape, found: info.shape)
            }
            do { try file.read(info, into: into) } catch {
                throw ModelError.unreadable(file: path, detail: Self.withoutFile("\(error)", path))
            }
            // A damaged or diverged model: every score would be NaN.
            var finite = true
            for k in 0..<info.count { finite = finite && into[k].isFinite }
            guard finite else {
                throw ModelError.unreadable(file: path, detail: "tensor '\(info.name)' holds NaN or infinite values")
            }
        }
    }

    /// A model of the given shape with random weights (normal, std 0.02, as
    /// BERT initializes; LayerNorm scales 1), for benchmarks.
    public convenience init(randomWithConfig config: ModelConfig, seed: UInt64 = 42, relevance: Bool = true) {
        var rng = SplitMix(seed: seed)
        self.init(config: config, source: "random", relevance: relevance) { names, shape, into in
            let n = shape.reduce(1, *)
            let isScale = names.contains { $0.hasSuffix("LayerNorm.weight") }
            for k in 0..<n { into[k] = isScale ? 1 : 0.02 * rng.nextGaussian() }
        }
    }

    /// Every tensor the config asks for, checked against the file's header
    /// before anything is allocated: a config with absurd sizes (1e12) is
    /// refused here, by the shapes the file really holds, not by an
    /// allocation that fails. The classifier's rows are the classes.
    private static func checkShapes(_ config: ModelConfig, _ file: SafeTensorsFile, path: String) throws {
        let shapes = config.tensorShapes
        // The config's bounds make overflow impossible; checked all the same.
        guard BertConfig.elementCount(shapes) != nil else {
            throw ModelError.badConfig(file: path, detail: "the config's tensor sizes overflow")
        }
        for (name, shape) in shapes {
            let names = [name] + BertConfig.legacyNames(of: name)
            guard let info = names.lazy.compactMap({ file.tensors[$0] }).first else {
                throw ModelError.missingTensor(file: path, name: name)
            }
            if name == "classifier.weight", info.shape.count == 2, info.shape[1] == config.hiddenSize,
               info.shape[0] != config.numClasses {
                throw ModelError.badShape(file: path, name: info.name, expected: shape, found: info.shape,
                                          why: "the classifier has \(info.shape[0]) classes, config.json \(config.numClasses) (\(config.labelOrigin))")
            }
            guard info.shape == shape else {
                throw ModelError.badShape(file: path, name: info.name, expected: shape, found: info.shape)
            }
        }
    }

    /// IO's errors already start with the file name; ModelError adds it once.
    private static func withoutFile(_ text: String, _ path: String) -> String {
        text.hasPrefix(path + ": ") ? String(text.dropFirst(path.count + 2)) : text
    }

    /// Builds the model from `read(names, shape, into)`, which fills `into`
    /// with the tensor of the first of `names` the source has (Hugging Face
    /// names; LayerNorm's older `gamma`/`beta` second) after checking its shape.
    private init(config: ModelConfig, source: String, relevance: Bool,
                 read: (_ names: [String], _ shape: [Int], _ into: UnsafeMutablePointer<Float>) throws -> Void) rethrows {
        let h = config.hiddenSize, i = config.intermediateSize
        func buffer(_ names: [String], _ shape: [Int]) throws -> FloatBuffer {
            let b = FloatBuffer(uninitializedCount: shape.reduce(1, *))
            try read(names, shape, b.p)
            return b
        }
        func norm(_ prefix: String) throws -> LayerNormWeights {
            LayerNormWeights(gamma: try buffer([prefix + ".weight", prefix + ".gamma"], [h]),
                             beta: try buffer([prefix + ".bias", prefix + ".beta"], [h]))
        }
        func dense(_ prefix: String, _ inF: Int, _ outF: Int) throws -> Dense {
            Dense(weight: try buffer([prefix + ".weight"], [outF, inF]), bias: try buffer([prefix + ".bias"], [outF]),
                  inFeatures: inF, outFeatures: outF, relevance: relevance)
        }
        self.config = config
        self.source = source
        self.relevance = relevance
        wordEmbeddings = try buffer(["bert.embeddings.word_embeddings.weight"], [config.vocabSize, h])
        positionEmbeddings = try buffer(["bert.embeddings.position_embeddings.weight"], [config.maxPositions, h])
        typeEmbeddings = try buffer(["bert.embeddings.token_type_embeddings.weight"], [config.typeVocabSize, h])
        embeddingNorm = try norm("bert.embeddings.LayerNorm")
        var layers: [EncoderLayer] = []
        for l in 0..<config.numLayers {
            let p = "bert.encoder.layer.\(l)."
            // Query, key and value read straight into their stacked place.
            let qkvWeight = FloatBuffer(uninitializedCount: 3 * h * h), qkvBias = FloatBuffer(uninitializedCount: 3 * h)
            for (k, part) in ["query", "key", "value"].enumerated() {
                let w = qkvWeight.p + k * h * h, b = qkvBias.p + k * h
                try read([p + "attention.self.\(part).weight"], [h, h], w)
                try read([p + "attention.self.\(part).bias"], [h], b)
            }
            let rule = relevance ? AlphaBetaWeights(weight: qkvWeight.p, bias: qkvBias.p, inFeatures: h, outFeatures: h, parts: 3) : nil
            layers.append(EncoderLayer(
                qkvWeight: qkvWeight, qkvBias: qkvBias, queryKeyValueRule: rule,
                attentionOutput: try dense(p + "attention.output.dense", h, h),
                attentionNorm: try norm(p + "attention.output.LayerNorm"),
                intermediate: try dense(p + "intermediate.dense", h, i),
                output: try dense(p + "output.dense", i, h),
                outputNorm: try norm(p + "output.LayerNorm")))
        }
        self.layers = layers
        pooler = try dense("bert.pooler.dense", h, h)
        classifier = try dense("classifier", h, config.numClasses)
    }
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
