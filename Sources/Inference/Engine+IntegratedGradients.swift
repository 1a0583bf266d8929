import Foundation

/// Integrated gradients (Sundararajan et al. 2017) as Captum 0.7's
/// `LayerIntegratedGradients` on the word embeddings computes it with
/// `method="gausslegendre"` (docs/CONTRACT.md 5b). Every step of every example is
/// an input of its own: the interpolated word embeddings go through the same
/// packed forward and backward as the other methods, many (example, step)
/// inputs per chunk, so each sgemm sees hundreds of rows.
extension Engine {
    /// Forward rows of one chunk of interpolated inputs (at least one example's
    /// tokens); bounds integrated gradients' share of the scratch (`scratchBytes`).
    public static let integratedGradientsChunkRows = 512

    /// The baseline's token at `position`: `[PAD]`, except the special tokens
    /// the tokenizer added, which keep their own: `[CLS]` (position 0) and each
    /// `[SEP]` (the last token of each segment). By position, not by id: a
    /// text may hold "[CLS]" itself, which is an ordinary token here, as in
    /// Hugging Face's special-tokens mask.
    func integratedGradientsBaseline(_ input: EncodedInput, position t: Int) -> Int32 {
        let last = input.ids.count - 1
        let special = t == 0 || t == last || input.segments[t] != input.segments[t + 1]
        return special ? input.ids[t] : Int32(model.config.padTokenId)
    }

    /// IG for every pair; `write(pair, scores, delta)`. `logits`: the examples'
    /// own logits (f_c(w) of the convergence delta).
    func integratedGradients(_ inputs: [EncodedInput], pairs: [(example: Int, target: Int)], logits: [[Double]],
                             write: (Int, [Float], Float) -> Void) {
        let c = model.config, h = c.hiddenSize
        let steps = igSteps
        let (nodes, weights) = gaussLegendre(steps)
        var pairsOf = [[Int]](repeating: [], count: inputs.count)
        for (k, p) in pairs.enumerated() { pairsOf[p.example].append(k) }
        var sums = pairs.map { [Double](repeating: 0, count: inputs[$0.example].ids.count) }   // [pair][T]
        var baselineLogit = [Double](repeating: 0, count: pairs.count)
        // Inputs to run: (example, step), step == steps being the baseline itself (for the delta).
        var items: [(example: Int, step: Int)] = []
        for b in inputs.indices where !pairsOf[b].isEmpty {
            for k in 0...steps { items.append((b, k)) }
        }
        let cap = Engine.integratedGradientsChunkRows
        var start = 0
        while start < items.count {
            var end = start, rows = 0
            while end < items.count {
                let t = inputs[items[end].example].ids.count
                if end > start && rows + t > cap { break }
                rows += t
                end += 1
            }
            let chunk = Array(items[start..<end])
            start = end
            var layout = Layout()
            for item in chunk { layout.append(tokens: inputs[item.example].ids.count, heads: c.numHeads) }
            reserveForward(rows: layout.rows, probCount: layout.probCount, maxT: layout.maxT)
            forward(chunk.map { inputs[$0.example] }, alphas: chunk.map { $0.step < steps ? Float(nodes[$0.step]) : 0 },
                    forwardRow: layout.forwardRow, probOffset: layout.probOffset, backward: true)
            let heads = classifierHead(examples: chunk.count)
            // One backward block per (step input, target); `example` indexes the chunk.
            var blocks: [Segment] = [], blockPair: [Int] = [], blockWeight: [Double] = []
            var m = 0
            for (i, item) in chunk.enumerated() {
                let t = inputs[item.example].ids.count
                if item.step == steps {
                    for k in pairsOf[item.example] { baselineLogit[k] = heads[i].logits[pairs[k].target] }
                    continue
                }
                for k in pairsOf[item.example] {
                    blocks.append(Segment(example: i, target: pairs[k].target, forwardRow: layout.forwardRow[i],
                                          row: m, rows: t, probOffset: layout.probOffset[i]))
                    blockPair.append(k)
                    blockWeight.append(weights[item.step])
                    m += t
                }
            }
            guard !blocks.isEmpty else { continue }
            reserveBackward(rows: m, lrpRows: 0)
            for (k, s) in blocks.enumerated() {
                headGradient(heads[s.example], target: s.target, scale: 1, rule: .gradient, into: dY.p + k * h)
            }
            backward(gradSegments: blocks, lrpSegments: [])
            embeddingSumGradient(segments: blocks, from: dY.p, into: dX.p)
            // Σ_k ω_k (w − w')_t · g_k,t, steps added in step order whatever the chunking.
            for (k, s) in blocks.enumerated() {
                let input = inputs[chunk[s.example].example]
                let weight = blockWeight[k]
                for t in 0..<s.rows {
                    let w = model.wordEmbeddings.p + Int(input.ids[t]) * h
                    let base = model.wordEmbeddings.p + Int(integratedGradientsBaseline(input, position: t)) * h
                    let g = dX.p + (s.row + t) * h
                    var a = 0.0
                    for j in 0..<h { a += (Double(w[j]) - Double(base[j])) * Double(g[j]) }
                    sums[blockPair[k]][t] += weight * a
                }
            }
        }
        for (k, p) in pairs.enumerated() {
            let total = sums[k].reduce(0, +)
            write(k, sums[k].map { Float($0) }, Float(total - (logits[p.example][p.target] - baselineLogit[k])))
        }
    }
}

/// Gauss-Legendre quadrature on [0, 1]: nodes `α_k = (1 + x_k)/2` and weights
/// `ω_k = v_k/2` of the `n`-point rule on [-1, 1] (numpy's `leggauss(n)`,
/// nodes ascending), by Newton's method on the Legendre polynomial in Double.
func gaussLegendre(_ n: Int) -> (nodes: [Double], weights: [Double]) {
    var nodes = [Double](repeating: 0, count: n), weights = nodes
    for i in 0..<n {
        // Root i+1 (descending from near 1); the Chebyshev-like guess converges in a few steps.
        var x = cos(Double.pi * (Double(i) + 0.75) / (Double(n) + 0.5))
        var derivative = 0.0
        for _ in 0..<100 {
            var p0 = 1.0, p1 = x
            for k in stride(from: 2, through: n, by: 1) {
                let p2 = ((2 * Double(k) - 1) * x * p1 - (Double(k) - 1) * p0) / Double(k)
                p0 = p1
                p1 = p2
            }
            // p1 = P_n(x), p0 = P_{n-1}(x) (P_0 = 1 when n = 1).
            derivative = Double(n) * (x * p1 - p0) / (x * x - 1)
            let dx = p1 / derivative
            x -= dx
            if abs(dx) < 1e-16 { break }
        }
        // Ascending order, as numpy gives them.
        nodes[n - 1 - i] = (1 + x) / 2
        weights[n - 1 - i] = 1 / ((1 - x * x) * derivative * derivative)   // v/2 with v = 2/((1−x²)P'ₙ(x)²)
    }
    return (nodes, weights)
}
