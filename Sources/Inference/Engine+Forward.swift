import Foundation

/// The forward pass: embeddings and encoder layers.
extension Engine {
    func reserveForward(rows n: Int, probCount: Int, maxT: Int, relevance: Bool = false) {
        let c = model.config, h = c.hiddenSize, i = c.intermediateSize
        for b in hidden { b.reserve(n * h) }
        for l in 0..<c.numLayers {
            qkv[l].reserve(n * 3 * h); probs[l].reserve(probCount); ctx[l].reserve(n * h)
            xhat1[l].reserve(n * h); rstd1[l].reserve(n); attnOut[l].reserve(n * h)
            inter[l].reserve(n * i); gelu[l].reserve(n * i); geluGrad[l].reserve(n * i)
            xhat2[l].reserve(n * h); rstd2[l].reserve(n)
            if relevance {
                zQKV[l].reserve(n * 6 * h); zAttnOut[l].reserve(n * 2 * h); zInter[l].reserve(n * 2 * i); zOutput[l].reserve(n * 2 * h)
            }
        }
        embXhat.reserve(n * h); embRstd.reserve(n); embSum.reserve(n * h); denseOut.reserve(n * h)
        attnScratch.reserve(maxT * maxT)
    }

    /// `alphas`: for integrated gradients, example b's word embeddings are
    /// `w' + alphas[b]·(w − w')` (`w'` the baseline of `integratedGradientsBaseline`);
    /// nil: the word embeddings themselves. `relevance`: LRP follows, so every
    /// dense layer's product is the alpha-beta one (`dense`), its denominators kept.
    func forward(_ inputs: [EncodedInput], alphas: [Float]? = nil, forwardRow: [Int], probOffset: [Int], backward: Bool,
                 relevance: Bool = false) {
        let c = model.config, h = c.hiddenSize
        let n = forwardRow.last! + inputs.last!.ids.count
        // Embeddings: word + position + token type, then LayerNorm.
        let sum = embSum.p
        for (b, input) in inputs.enumerated() {
            for t in 0..<input.ids.count {
                let row = sum + (forwardRow[b] + t) * h
                let w = model.wordEmbeddings.p + Int(input.ids[t]) * h
                let p = model.positionEmbeddings.p + t * h
                let s = model.typeEmbeddings.p + Int(input.segments[t]) * h
                if let alphas {
                    let base = model.wordEmbeddings.p + Int(integratedGradientsBaseline(input, position: t)) * h
                    let a = alphas[b]
                    for j in 0..<h { row[j] = (base[j] + a * (w[j] - base[j])) + p[j] + s[j] }
                } else {
                    for j in 0..<h { row[j] = w[j] + p[j] + s[j] }
                }
            }
        }
        layerNormForward(x: sum, residual: nil, rows: n, width: h, gamma: model.embeddingNorm.gamma.p,
                         beta: model.embeddingNorm.beta.p, eps: c.layerNormEps,
                         xhat: embXhat.p, rstd: embRstd.p, y: hidden[0].p)
        for l in 0..<c.numLayers - 1 {
            let x = hidden[l].p
            queryKeyValue(l, x, rows: n, relevance: relevance)
            for (b, input) in inputs.enumerated() {
                let r = forwardRow[b]
                attentionForward(blas, shape, tokens: input.ids.count, qkv: qkv[l].p + r * 3 * h,
                                 probs: probs[l].p + probOffset[b], ctx: ctx[l].p + r * h)
            }
            denseBlock(l, rows: n, residual: x, backward: backward, relevance: relevance,
                       output: hidden[l + 1].p)
        }
        // The last layer: the pooler reads position 0 only, so only its query row
        // is needed (keys and values of every position), and above attention
        // every activation is kept for position 0 only: one compact row per example.
        let l = c.numLayers - 1
        let x = hidden[l].p
        queryKeyValue(l, x, rows: n, relevance: relevance)
        let first = embSum.p   // [B, H] scratch: the layer input at position 0 (the residual)
        for (b, input) in inputs.enumerated() {
            let r = forwardRow[b]
            attentionForwardFirstRow(shape, tokens: input.ids.count, qkv: qkv[l].p + r * 3 * h,
                                     probs: probs[l].p + probOffset[b], ctx: ctx[l].p + b * h)
            (first + b * h).update(from: x + r * h, count: h)
        }
        denseBlock(l, rows: inputs.count, residual: first, backward: backward, relevance: relevance,
                   output: hidden[l + 1].p)
    }

    /// The query, key and value dense layers of layer `l` in one product, into `qkv[l]`.
    private func queryKeyValue(_ l: Int, _ x: UnsafePointer<Float>, rows n: Int, relevance: Bool) {
        let layer = model.layers[l], h = model.config.hiddenSize
        if relevance, let rule = layer.queryKeyValueRule {
            DenseRelevance.forward(blas, rule, x: x, rows: n, z: zQKV[l].p, y: qkv[l].p)
        } else {
            blas.dense(x, rows: n, inFeatures: h, weight: layer.qkvWeight.p, bias: layer.qkvBias.p, outFeatures: 3 * h, into: qkv[l].p)
        }
    }

    /// `y = x·Wᵀ + b` of `dense`; with `z` (LRP follows), by the alpha-beta product, its denominators kept in `z`.
    private func dense(_ dense: Dense, _ x: UnsafePointer<Float>, rows n: Int, z: FloatBuffer?, into y: UnsafeMutablePointer<Float>) {
        if let z {
            DenseRelevance.forward(blas, dense.rule, x: x, rows: n, z: z.p, y: y)
        } else {
            blas.dense(x, rows: n, inFeatures: dense.inFeatures, weight: dense.weight.p, bias: dense.bias.p,
                       outFeatures: dense.outFeatures, into: y)
        }
    }

    /// Attention output dense + LayerNorm, feed-forward block + LayerNorm of layer `l`,
    /// on `rows` rows of `ctx[l]` (the residual: the layer input).
    func denseBlock(_ l: Int, rows n: Int, residual x: UnsafePointer<Float>, backward: Bool,
                    relevance: Bool = false, output: UnsafeMutablePointer<Float>) {
        let c = model.config, h = c.hiddenSize, inner = c.intermediateSize
        let layer = model.layers[l]
        dense(layer.attentionOutput, ctx[l].p, rows: n, z: relevance ? zAttnOut[l] : nil, into: denseOut.p)
        layerNormForward(x: denseOut.p, residual: x, rows: n, width: h, gamma: layer.attentionNorm.gamma.p,
                         beta: layer.attentionNorm.beta.p, eps: c.layerNormEps,
                         xhat: xhat1[l].p, rstd: rstd1[l].p, y: attnOut[l].p)
        dense(layer.intermediate, attnOut[l].p, rows: n, z: relevance ? zInter[l] : nil, into: inter[l].p)
        geluForward(inter[l].p, gelu[l].p, derivative: backward ? geluGrad[l].p : nil, count: n * inner)
        dense(layer.output, gelu[l].p, rows: n, z: relevance ? zOutput[l] : nil, into: denseOut.p)
        layerNormForward(x: denseOut.p, residual: attnOut[l].p, rows: n, width: h, gamma: layer.outputNorm.gamma.p,
                         beta: layer.outputNorm.beta.p, eps: c.layerNormEps,
                         xhat: xhat2[l].p, rstd: rstd2[l].p, y: output)
    }
}
