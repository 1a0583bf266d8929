/// Checkpoint tensor names to Hugging Face `BertForSequenceClassification`
/// names (docs/formats.md 1.8, 1.9, 2.5).
public enum NameMapping {
    /// What becomes of one checkpoint tensor.
    public enum Target: Equatable, Sendable {
        /// Written under this name; `transpose` for TF kernels ([in, out] -> [out, in]).
        case tensor(String, transpose: Bool)
        case skip(SkipReason)
    }

    public enum SkipReason: String, Sendable, CaseIterable {
        case optimizer = "optimizer state"
        case pretrainingHead = "pre-training head"
        case buffer = "buffer"
        case notBERT = "not part of a BERT classifier"
        case notFloat = "not floating-point"
    }

    /// HF's skip list (`load_tf_weights_in_bert`) plus the slots of tf.train's own optimizers.
    static let optimizerParts: Set<String> = [
        "adam_m", "adam_v", "AdamWeightDecayOptimizer", "AdamWeightDecayOptimizer_1", "global_step",
        "Adam", "Adam_1", "beta1_power", "beta2_power", "Momentum", "LAMB", "LAMB_1",
    ]

    /// A Google BERT TF name: `bert/encoder/layer_3/attention/self/query/kernel`
    /// -> `bert.encoder.layer.3.attention.self.query.weight` (transposed);
    /// run_classifier's top-level `output_weights`/`output_bias` -> `classifier.*`
    /// (not transposed: they are used with transpose_b=True).
    public static func tensorFlow(_ name: String) -> Target {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if parts.contains(where: { optimizerParts.contains($0) }) { return .skip(.optimizer) }
        if parts.first == "cls" { return .skip(.pretrainingHead) }
        if name == "output_weights" { return .tensor("classifier.weight", transpose: false) }
        if name == "output_bias" { return .tensor("classifier.bias", transpose: false) }
        guard parts.count >= 3, parts[0] == "bert", ["embeddings", "encoder", "pooler"].contains(parts[1]) else {
            return .skip(.notBERT)
        }
        var out: [String] = []
        var transpose = false
        for (i, p) in parts.enumerated() {
            let last = i == parts.count - 1
            if p.hasPrefix("layer_"), let n = Int(p.dropFirst(6)), n >= 0 {
                out.append("layer"); out.append(String(n))
            } else if last && p == "kernel" {
                out.append("weight"); transpose = true
            } else if last && p == "gamma" {
                out.append("weight")
            } else if last && p == "beta" {
                out.append("bias")
            } else if last && p.hasSuffix("_embeddings") {
                out.append(p); out.append("weight")
            } else {
                out.append(p)
            }
        }
        return .tensor(out.joined(separator: "."), transpose: transpose)
    }

    /// Maps torch (and safetensors) names. The BERT body's prefix is found from
    /// the word embeddings' name, so `module.` (DataParallel), a missing
    /// `bert.` (BERT-LRP's pretrained BertModel) or a wrapper dict key
    /// (`model.`, `state_dict.`) all work; `LayerNorm.gamma/beta` (BERT-LRP,
    /// old pytorch-pretrained-BERT) become `LayerNorm.weight/bias`.
    public struct Torch: Sendable {
        /// What stands before `embeddings.word_embeddings.weight`, e.g. `module.bert.`.
        public let bodyPrefix: String
        /// `bodyPrefix` without its trailing `bert.`: where `classifier.` and `cls.` live.
        public let outerPrefix: String

        public init(names: [String]) {
            let suffix = "embeddings.word_embeddings.weight"
            let candidates = names.filter { $0.hasSuffix(suffix) && ($0 == suffix || $0.dropLast(suffix.count).hasSuffix(".")) }
            // Prefer the shortest (a pre-training head never holds word embeddings, but be safe).
            let word = candidates.min { $0.count < $1.count } ?? suffix
            bodyPrefix = String(word.dropLast(suffix.count))
            outerPrefix = bodyPrefix.hasSuffix("bert.") && (bodyPrefix == "bert." || bodyPrefix.dropLast(5).hasSuffix("."))
                ? String(bodyPrefix.dropLast(5)) : bodyPrefix
        }

        public func target(_ name: String) -> Target {
            if name.hasSuffix("position_ids") || name.hasSuffix("token_type_ids") { return .skip(.buffer) }
            if name.hasPrefix(bodyPrefix) {
                let rest = name.dropFirst(bodyPrefix.count)
                if rest.hasPrefix("embeddings.") || rest.hasPrefix("encoder.") || rest.hasPrefix("pooler.") {
                    var s = String(rest)
                    if s.hasSuffix("LayerNorm.gamma") { s = String(s.dropLast(5)) + "weight" }
                    if s.hasSuffix("LayerNorm.beta") { s = String(s.dropLast(4)) + "bias" }
                    return .tensor("bert." + s, transpose: false)
                }
            }
            if name.hasPrefix(outerPrefix) {
                let rest = name.dropFirst(outerPrefix.count)
                if rest == "classifier.weight" || rest == "classifier.bias" { return .tensor(String(rest), transpose: false) }
                if rest.hasPrefix("cls.") { return .skip(.pretrainingHead) }
            }
            let first = name.split(separator: ".").first.map(String.init) ?? ""
            if ["optimizer", "optimizer_state_dict", "scheduler", "lr_scheduler", "amp", "scaler"].contains(first) {
                return .skip(.optimizer)
            }
            return .skip(.notBERT)
        }
    }
}
