import Foundation

/// The steps of `Engine.run` after the forward pass: the predictions, the
/// attention scores, the plan of backward blocks, their seeds, and the scores
/// read off the backward's results.
extension Engine {
    /// Where the backward blocks of one micro-batch go: one block of T rows per
    /// (example, target) pair and pass, the passes' blocks stacked so that they
    /// share sgemm calls. Non-LRP blocks first (each with its seed's scale),
    /// then the seed's LRP blocks (the backward keeps those last).
    struct BackwardPlan {
        var pairs: [(example: Int, target: Int)]
        /// Pair k's scores go to results[pairs[k].example].attributions[attributionIndex[k]].
        var attributionIndex: [Int] = []
        var blocks: [Segment] = []
        var scales: [Double] = []
        var lrpSegments: [Segment] = []
        /// Block index per pair: the gradient (gs, gi), ixg, AttnLRP, CP-LRP.
        var gradientBlock: [Int] = [], ixgBlock: [Int] = [], attnBlock: [Int] = [], cpBlock: [Int] = []
        /// gs or gi asked: the gradient blocks are seeded with f_c and their squares read.
        var wantSquares = false
        /// Rows of the non-LRP blocks, and of all blocks.
        var gradientRows = 0
        var rows = 0
    }

    /// Logits, probabilities and predicted class of each example.
    func predictions(_ heads: [Head]) -> [ExampleResult] {
        heads.map { head in
            let (probs, predicted) = model.config.prediction(logits: head.logits)
            return ExampleResult(logits: head.logits.map { Float($0) }, probs: probs, predicted: predicted, lat: nil, attributions: [])
        }
    }

    /// The target-independent scores: lat and rollout.
    func attentionScores(_ inputs: [EncodedInput], layout: Layout, methods: Methods, into results: inout [ExampleResult]) {
        for b in inputs.indices {
            if methods.contains(.lat) { results[b].lat = lat(tokens: inputs[b].ids.count, probOffset: layout.probOffset[b]) }
            if methods.contains(.rollout) { results[b].rollout = rollout(tokens: inputs[b].ids.count, probOffset: layout.probOffset[b]) }
        }
    }

    func planBackward(_ inputs: [EncodedInput], layout: Layout, pairs: [(example: Int, target: Int)],
                      methods: Methods, results: [ExampleResult]) -> BackwardPlan {
        var plan = BackwardPlan(pairs: pairs)
        var slot = [Int](repeating: 0, count: inputs.count)
        for p in pairs {
            plan.attributionIndex.append(slot[p.example])
            slot[p.example] += 1
        }
        func segment(_ pair: Int, _ rule: BackwardRule) -> Segment {
            let p = pairs[pair]
            return Segment(example: p.example, target: p.target, forwardRow: layout.forwardRow[p.example],
                           row: plan.rows, rows: inputs[p.example].ids.count, probOffset: layout.probOffset[p.example], rule: rule)
        }
        func block(_ pair: Int, _ rule: BackwardRule, scale: Double) -> Int {
            let s = segment(pair, rule)
            plan.blocks.append(s)
            plan.scales.append(scale)
            plan.rows += s.rows
            return plan.blocks.count - 1
        }
        // The gradient serves gs and gi (seeded with f_c, as the seed does) and ixg
        // (seeded with 1, or the f_c-seeded block with f_c divided out; only a logit
        // of exactly zero needs a block of its own).
        plan.wantSquares = !methods.intersection([.gs, .gi]).isEmpty
        if plan.wantSquares || methods.contains(.ixg) {
            for (k, p) in pairs.enumerated() {
                plan.gradientBlock.append(block(k, .gradient, scale: plan.wantSquares ? Double(results[p.example].logits[p.target]) : 1))
            }
        }
        if methods.contains(.ixg) {
            for k in pairs.indices {
                plan.ixgBlock.append(plan.scales[plan.gradientBlock[k]] != 0 ? plan.gradientBlock[k] : block(k, .gradient, scale: 1))
            }
        }
        if methods.contains(.attnlrp) { plan.attnBlock = pairs.indices.map { block($0, .attnLRP, scale: 1) } }
        if methods.contains(.cplrp) { plan.cpBlock = pairs.indices.map { block($0, .cpLRP, scale: 1) } }
        plan.gradientRows = plan.rows
        if methods.contains(.lrp) {
            for k in pairs.indices {
                let s = segment(k, .gradient)   // LRP blocks take the gradient's rules
                plan.lrpSegments.append(s)
                plan.rows += s.rows
            }
        }
        return plan
    }

    /// The output gradients and relevances at the last hidden layer, into dY:
    /// only position 0 is non-zero, so they start compact, one row per block.
    func seedOutputGradients(_ plan: BackwardPlan, heads: [Head], results: [ExampleResult]) {
        let c = model.config, h = c.hiddenSize, dy = dY.p
        for (k, s) in plan.blocks.enumerated() {
            headGradient(heads[s.example], target: s.target, scale: plan.scales[k], rule: s.rule, into: dy + k * h)
        }
        for (p, s) in plan.lrpSegments.enumerated() {
            let head = heads[s.example]
            var r = [Double](repeating: 0, count: c.numClasses)
            r[s.target] = Double(results[s.example].logits[s.target])
            r = DenseRelevance.propagate(model.classifier.rule, x: head.pooled, r: r)     // [H]
            r = DenseRelevance.propagate(model.pooler.rule, x: head.poolerInput, r: r)    // [H], tanh skipped
            for i in 0..<h { dy[(plan.blocks.count + p) * h + i] = Float(r[i]) }
        }
    }

    /// gs, gi and lrp from the gradient (relevance) at the embedding output e, which dY holds after the backward.
    func embeddingOutputScores(_ plan: BackwardPlan, methods: Methods, into results: inout [ExampleResult]) {
        let h = model.config.hiddenSize, dy = dY.p, e = hidden[0].p
        if plan.wantSquares {
            for (k, b) in plan.gradientBlock.enumerated() {
                let s = plan.blocks[b]
                var gs = [Float](repeating: 0, count: s.rows), gi = gs
                for t in 0..<s.rows {
                    let g = dy + (s.row + t) * h, x = e + (s.forwardRow + t) * h
                    var a = 0.0, b = 0.0
                    for j in 0..<h {
                        let v = Double(g[j])
                        a += v * v
                        let w = v * Double(x[j])
                        b += w * w
                    }
                    gs[t] = Float(a)
                    gi[t] = Float(b)
                }
                if methods.contains(.gs) { results[s.example].attributions[plan.attributionIndex[k]].gs = gs }
                if methods.contains(.gi) { results[s.example].attributions[plan.attributionIndex[k]].gi = gi }
            }
        }
        for (k, s) in plan.lrpSegments.enumerated() {
            var lrp = [Float](repeating: 0, count: s.rows)
            for t in 0..<s.rows {
                let r = dy + (s.row + t) * h
                var a = 0.0
                for j in 0..<h { a += Double(abs(r[j])) }
                lrp[t] = Float(a)
            }
            results[s.example].attributions[plan.attributionIndex[k]].lrp = lrp
        }
    }

    /// Section 5b's methods: back through the embedding LayerNorm (by each block's
    /// rule) to the embedding sum, then Σ_h w_t,h · g_t,h with w the word embedding.
    func embeddingSumScores(_ inputs: [EncodedInput], plan: BackwardPlan, methods: Methods, into results: inout [ExampleResult]) {
        let h = model.config.hiddenSize
        let signed = Array(Set(plan.ixgBlock + plan.attnBlock + plan.cpBlock)).sorted().map { plan.blocks[$0] }
        guard !signed.isEmpty else { return }
        embeddingSumGradient(segments: signed, from: dY.p, into: dX.p)
        func scores(_ b: Int) -> [Float] {
            wordEmbeddingDot(inputs[plan.blocks[b].example], gradient: dX.p + plan.blocks[b].row * h, scale: 1 / plan.scales[b])
                .map { Float($0) }
        }
        for k in plan.pairs.indices {
            let a = plan.attributionIndex[k], example = plan.pairs[k].example
            if methods.contains(.ixg) { results[example].attributions[a].ixg = scores(plan.ixgBlock[k]) }
            if methods.contains(.attnlrp) { results[example].attributions[a].attnlrp = scores(plan.attnBlock[k]) }
            if methods.contains(.cplrp) { results[example].attributions[a].cplrp = scores(plan.cpBlock[k]) }
        }
    }
}
