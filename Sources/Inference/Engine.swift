import Foundation

/// Runs the model and the attribution methods on micro-batches. One engine per
/// worker: it owns every scratch buffer and reuses them from call to call;
/// the model is shared. Use an engine from one thread at a time (it may move
/// between threads, hence `@unchecked Sendable`).
///
/// A micro-batch is packed row-wise with no padding (`[ΣT, H]` through each
/// dense layer in one sgemm; attention per example and head), so an example's
/// results do not depend on what else is in its micro-batch.
public final class Engine: @unchecked Sendable {
    public let model: BertModel
    let blas = Linear()
    let shape: AttentionShape

    // Forward activations, kept for the backward passes. Rows: the examples packed.
    var hidden: [FloatBuffer]   // L+1 × [N, H]: hidden[0] = e, hidden[l+1] = output of layer l
    var qkv: [FloatBuffer]      // L × [N, 3H]
    var probs: [FloatBuffer]    // L × Σ [heads, T, T]
    var ctx: [FloatBuffer]      // L × [N, H]
    var xhat1: [FloatBuffer]    // L × [N, H]
    var rstd1: [FloatBuffer]    // L × [N]
    var attnOut: [FloatBuffer]  // L × [N, H]
    var inter: [FloatBuffer]    // L × [N, I] before GELU
    var gelu: [FloatBuffer]     // L × [N, I]
    var geluGrad: [FloatBuffer] // L × [N, I] gelu'(inter), when a backward pass follows
    var xhat2: [FloatBuffer]    // L × [N, H]
    var rstd2: [FloatBuffer]    // L × [N]
    // With LRP: each dense layer's alpha-beta denominators [zp | zn], from the forward's own product.
    var zQKV: [FloatBuffer]     // L × [N, 3 · 2H] query, key, value
    var zAttnOut: [FloatBuffer] // L × [N, 2H]
    var zInter: [FloatBuffer]   // L × [N, 2I]
    var zOutput: [FloatBuffer]  // L × [N, 2H]
    let embXhat = FloatBuffer(count: 0), embRstd = FloatBuffer(count: 0)
    let embSum = FloatBuffer(count: 0)  // [N, H] word + position + type embeddings
    let denseOut = FloatBuffer(count: 0)  // [N, H] a dense output before its residual LayerNorm (not kept)

    // Backward buffers. Rows: one block per (example, target) pair; gradient blocks, then LRP blocks.
    let dY = FloatBuffer(count: 0), dX = FloatBuffer(count: 0)     // [M, H]
    let dT2 = FloatBuffer(count: 0), dA = FloatBuffer(count: 0)    // [M, H]
    let dT1 = FloatBuffer(count: 0), dCtx = FloatBuffer(count: 0)  // [M, H]
    let dG = FloatBuffer(count: 0)                                 // [M, I]
    let dQKV = FloatBuffer(count: 0)                               // [M, 3H]
    // LRP scratch.
    let sBuf = FloatBuffer(count: 0)   // [Mr, 2·max(I, H)]
    let cBuf = FloatBuffer(count: 0)   // [Mr, max(I, H)]
    let rI = FloatBuffer(count: 0)     // [Mr, I]
    let rC = FloatBuffer(count: 0)     // [Mr, H]
    let rQKV = FloatBuffer(count: 0)   // [Mr, 3H]
    let attnScratch = FloatBuffer(count: 0)  // [T, T]

    /// Gauss-Legendre nodes of integrated gradients (`--ig-steps`).
    public var igSteps = 32 {
        didSet { precondition(igSteps >= 1, "at least one integrated-gradients step") }
    }

    public init(model: BertModel) {
        self.model = model
        let c = model.config
        shape = AttentionShape(hidden: c.hiddenSize, heads: c.numHeads)
        func make(_ n: Int) -> [FloatBuffer] { (0..<n).map { _ in FloatBuffer(count: 0) } }
        hidden = make(c.numLayers + 1)
        qkv = make(c.numLayers); probs = make(c.numLayers); ctx = make(c.numLayers)
        xhat1 = make(c.numLayers); rstd1 = make(c.numLayers); attnOut = make(c.numLayers)
        inter = make(c.numLayers); gelu = make(c.numLayers); geluGrad = make(c.numLayers)
        xhat2 = make(c.numLayers); rstd2 = make(c.numLayers)
        zQKV = make(c.numLayers); zAttnOut = make(c.numLayers); zInter = make(c.numLayers); zOutput = make(c.numLayers)
    }

    /// The micro-batch budget in tokens that keeps one worker's scratch near
    /// `bytesPerWorker`, by `scratchBytes` (linear in the tokens of a
    /// micro-batch), within 128...4096. MiniLM-L6-H384, all methods, one
    /// target: ~400 tokens; BERT-base: one 128-token example. Larger budgets
    /// buy nothing: on SST-2 dev with the bundled model 400 and 1200 tokens ran
    /// at the same speed (48.1 and 47.4 records/s) in 493 MB and 1014 MB of
    /// resident memory. The pipeline and evaluate both take theirs from here.
    public static func batchTokens(config: ModelConfig, methods: Methods, targets: Int, longest: Int,
                                   bytesPerWorker: Int = 128 << 20) -> Int {
        let fixed = scratchBytes(config: config, tokens: 0, longest: longest, targets: targets, methods: methods)
        let perToken = scratchBytes(config: config, tokens: 1, longest: longest, targets: targets, methods: methods) - fixed
        return min(4096, max(128, (bytesPerWorker - fixed) / max(1, perToken)))
    }

    /// Bytes of scratch space a micro-batch needs: `tokens` in all, the longest
    /// example `longest` tokens, `targets` target classes per example. The
    /// engine keeps its buffers at the largest size it has seen. Integrated
    /// gradients runs its interpolated inputs in chunks of at most
    /// `max(integratedGradientsChunkRows, longest)` forward rows, whatever the
    /// micro-batch, so its share is a fixed amount.
    public static func scratchBytes(config c: ModelConfig, tokens: Int, longest: Int, targets: Int, methods: Methods) -> Int {
        let h = c.hiddenSize, i = c.intermediateSize, layers = c.numLayers
        // Per token and layer: qkv, ctx, attention output, LayerNorm inputs, GELU in/out/derivative;
        // per token: embeddings, their LayerNorm, one dense output.
        func forwardFloats(_ tokens: Int) -> Int {
            tokens * (layers * (9 * h + 3 * i + 2) + 5 * h) + layers * c.numHeads * longest * tokens
        }
        var floats = forwardFloats(tokens)
        if methods.needsTargets {
            let gradient = methods.intersection([.gs, .gi, .ixg]).isEmpty ? 0 : 1
            let passes = gradient + [Methods.attnlrp, .cplrp, .lrp].filter { methods.contains($0) }.count
            let rows = tokens * max(targets, 1) * passes
            floats += rows * (9 * h + i) + longest * longest
            if methods.contains(.lrp) {
                let lrpRows = tokens * max(targets, 1)
                floats += tokens * layers * (12 * h + 2 * i) + lrpRows * (3 * max(i, h) + i + 4 * h)
            }
        }
        if methods.contains(.ig) {
            // The buffers grow to the larger of the two; counted as a sum, to stay on the safe side.
            let chunk = max(integratedGradientsChunkRows, longest)
            floats += forwardFloats(chunk) + chunk * max(targets, 1) * (9 * h + i)
        }
        return 4 * floats
    }

    /// Bytes this engine's buffers hold now.
    public var reservedBytes: Int {
        let perLayer = [hidden, qkv, probs, ctx, xhat1, rstd1, attnOut, inter, gelu, geluGrad, xhat2, rstd2,
                        zQKV, zAttnOut, zInter, zOutput]
        let single = [embXhat, embRstd, embSum, denseOut, dY, dX, dT2, dA, dT1, dCtx, dG, dQKV, sBuf, cBuf, rI, rC, rQKV, attnScratch]
        return 4 * (perLayer.joined().reduce(0) { $0 + $1.capacity } + single.reduce(0) { $0 + $1.capacity })
    }

    /// Sets the OpenBLAS thread count for the process (see `Linear.setThreads`).
    public static func setBLASThreads(_ n: Int) { Linear.setThreads(n) }

    /// One parallel layer (README): `workers` engines with one OpenBLAS
    /// thread each, or a single engine with OpenBLAS on every core, unless
    /// the user set OPENBLAS_NUM_THREADS (then OpenBLAS keeps their count).
    public static func setBLASThreads(forWorkers workers: Int) {
        if workers > 1 { return setBLASThreads(1) }
        if ProcessInfo.processInfo.environment["OPENBLAS_NUM_THREADS"] == nil {
            setBLASThreads(ProcessInfo.processInfo.activeProcessorCount)
        }
    }

    /// Time spent inside sgemm and its floating-point operations, when `timing` is on.
    public var timing: Bool { get { blas.timing } set { blas.timing = newValue } }
    public var gemmSeconds: Double { Double(blas.nanoseconds) * 1e-9 }
    public var gemmFlops: Double { blas.flops }
    public func resetCounters() { blas.resetCounters() }

    /// Runs the micro-batch: one forward pass, then the requested methods for
    /// each example's target classes. Results are in input order.
    public func run(_ inputs: [EncodedInput], methods: Methods, targets: TargetSelection) throws -> [ExampleResult] {
        try run(inputs, methods: methods, targets: [TargetSelection](repeating: targets, count: inputs.count))
    }

    /// The same with a target selection per example (e.g. each example's gold
    /// class): all examples' backward passes still run together.
    ///
    /// The steps: check and pack the examples; forward; the classifier head;
    /// the target-independent scores (lat, rollout); the (example, target)
    /// pairs; one backward block per (pair, pass), every pass's blocks stacked
    /// into the same sgemm calls (the gradient, which serves gs, gi and ixg;
    /// AttnLRP; CP-LRP; the seed's LRP); the scores at the embedding output
    /// (gs, gi, lrp) and at the embedding sum (ixg, attnlrp, cplrp);
    /// integrated gradients last, in chunks of interpolated inputs that reuse
    /// the same buffers.
    ///
    /// `chooseTargets`, when given, is asked after the forward pass (with
    /// every example's logits, probabilities and target-independent scores)
    /// for the selections the backward passes use instead of `targets`: the
    /// windows of a long document are explained for the class of the
    /// document's mean logits (README "Long documents").
    public func run(_ inputs: [EncodedInput], methods: Methods, targets: [TargetSelection],
                    chooseTargets: (([ExampleResult]) -> [TargetSelection])? = nil) throws -> [ExampleResult] {
        precondition(targets.count == inputs.count, "one target selection per example")
        precondition(model.relevance || !methods.contains(.lrp), "lrp asked of a model loaded without relevance weights")
        let c = model.config
        let h = c.hiddenSize
        guard !inputs.isEmpty else { return [] }
        let layout = try pack(inputs)
        let forwardRow = layout.forwardRow, probOffset = layout.probOffset
        let relevance = methods.contains(.lrp)
        reserveForward(rows: layout.rows, probCount: layout.probCount, maxT: layout.maxT, relevance: relevance)
        let gradientRules = !methods.intersection([.gs, .gi, .lrp, .ixg]).isEmpty
        forward(inputs, forwardRow: forwardRow, probOffset: probOffset, backward: gradientRules, relevance: relevance)

        let heads = classifierHead(examples: inputs.count)
        var results = heads.map { head in
            let (probs, predicted) = model.config.prediction(logits: head.logits)
            return ExampleResult(logits: head.logits.map { Float($0) }, probs: probs, predicted: predicted, lat: nil, attributions: [])
        }

        for b in inputs.indices {
            if methods.contains(.lat) { results[b].lat = lat(tokens: inputs[b].ids.count, probOffset: probOffset[b]) }
            if methods.contains(.rollout) { results[b].rollout = rollout(tokens: inputs[b].ids.count, probOffset: probOffset[b]) }
        }

        guard methods.needsTargets else { return results }
        let targets = chooseTargets?(results) ?? targets
        precondition(targets.count == inputs.count, "one chosen target selection per example")
        let pairs = try targetPairs(inputs, targets: targets, results: &results)
        guard !pairs.isEmpty else { return results }
        // Where each pair's scores go: results[example].attributions[slot].
        var slot = [Int](repeating: 0, count: inputs.count), attributionIndex: [Int] = []
        for p in pairs {
            attributionIndex.append(slot[p.example])
            slot[p.example] += 1
        }

        // Backward blocks, T rows each. Non-LRP blocks first (each with its seed's
        // scale), then the LRP blocks (the backward keeps those last).
        var blocks: [Segment] = [], scales: [Double] = [], lrpSegments: [Segment] = []
        var m = 0
        func block(_ pair: Int, _ rule: BackwardRule, scale: Double) -> Int {
            let p = pairs[pair], t = inputs[p.example].ids.count
            blocks.append(Segment(example: p.example, target: p.target, forwardRow: forwardRow[p.example],
                                  row: m, rows: t, probOffset: probOffset[p.example], rule: rule))
            scales.append(scale)
            m += t
            return blocks.count - 1
        }
        // The gradient serves gs and gi (seeded with f_c, as the seed does) and ixg
        // (seeded with 1, or the f_c-seeded block with f_c divided out; only a logit
        // of exactly zero needs a block of its own).
        let wantSquares = !methods.intersection([.gs, .gi]).isEmpty
        var gradientBlock = [Int](), ixgBlock = [Int](), attnBlock = [Int](), cpBlock = [Int]()
        if wantSquares || methods.contains(.ixg) {
            for (k, p) in pairs.enumerated() {
                gradientBlock.append(block(k, .gradient, scale: wantSquares ? Double(results[p.example].logits[p.target]) : 1))
            }
        }
        if methods.contains(.ixg) {
            for k in pairs.indices {
                ixgBlock.append(scales[gradientBlock[k]] != 0 ? gradientBlock[k] : block(k, .gradient, scale: 1))
            }
        }
        if methods.contains(.attnlrp) { attnBlock = pairs.indices.map { block($0, .attnLRP, scale: 1) } }
        if methods.contains(.cplrp) { cpBlock = pairs.indices.map { block($0, .cpLRP, scale: 1) } }
        let mGrad = m
        if methods.contains(.lrp) {
            for p in pairs {
                let t = inputs[p.example].ids.count
                lrpSegments.append(Segment(example: p.example, target: p.target, forwardRow: forwardRow[p.example],
                                           row: m, rows: t, probOffset: probOffset[p.example]))
                m += t
            }
        }
        reserveBackward(rows: m, lrpRows: m - mGrad)

        // Output gradients and relevances at the last hidden layer: only position 0 is
        // non-zero, so they start compact, one row per block.
        let dy = dY.p
        for (k, s) in blocks.enumerated() {
            headGradient(heads[s.example], target: s.target, scale: scales[k], rule: s.rule, into: dy + k * h)
        }
        for (p, s) in lrpSegments.enumerated() {
            let head = heads[s.example]
            var r = [Double](repeating: 0, count: c.numClasses)
            r[s.target] = Double(results[s.example].logits[s.target])
            r = DenseRelevance.propagate(model.classifier.rule, x: head.pooled, r: r)     // [H]
            r = DenseRelevance.propagate(model.pooler.rule, x: head.poolerInput, r: r)    // [H], tanh skipped
            for i in 0..<h { dy[(blocks.count + p) * h + i] = Float(r[i]) }
        }

        if !blocks.isEmpty || !lrpSegments.isEmpty {
            backward(gradSegments: blocks, lrpSegments: lrpSegments)
        }

        // After the backward, dY holds the gradient (or relevance) at the embedding output e.
        let e = hidden[0].p
        if wantSquares {
            for (k, b) in gradientBlock.enumerated() {
                let s = blocks[b]
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
                if methods.contains(.gs) { results[s.example].attributions[attributionIndex[k]].gs = gs }
                if methods.contains(.gi) { results[s.example].attributions[attributionIndex[k]].gi = gi }
            }
        }
        for (k, s) in lrpSegments.enumerated() {
            var lrp = [Float](repeating: 0, count: s.rows)
            for t in 0..<s.rows {
                let r = dy + (s.row + t) * h
                var a = 0.0
                for j in 0..<h { a += Double(abs(r[j])) }
                lrp[t] = Float(a)
            }
            results[s.example].attributions[attributionIndex[k]].lrp = lrp
        }
        // Section 5b's methods: back through the embedding LayerNorm (by each block's
        // rule) to the embedding sum, then Σ_h w_t,h · g_t,h with w the word embedding.
        let signed = Array(Set(ixgBlock + attnBlock + cpBlock)).sorted().map { blocks[$0] }
        if !signed.isEmpty {
            embeddingSumGradient(segments: signed, from: dY.p, into: dX.p)
            func scores(_ b: Int) -> [Float] {
                wordEmbeddingDot(inputs[blocks[b].example], gradient: dX.p + blocks[b].row * h, scale: 1 / scales[b])
                    .map { Float($0) }
            }
            for k in pairs.indices {
                let a = attributionIndex[k], example = pairs[k].example
                if methods.contains(.ixg) { results[example].attributions[a].ixg = scores(ixgBlock[k]) }
                if methods.contains(.attnlrp) { results[example].attributions[a].attnlrp = scores(attnBlock[k]) }
                if methods.contains(.cplrp) { results[example].attributions[a].cplrp = scores(cpBlock[k]) }
            }
        }

        if methods.contains(.ig) {
            integratedGradients(inputs, pairs: pairs, logits: heads.map(\.logits)) { k, ig, delta in
                results[pairs[k].example].attributions[attributionIndex[k]].ig = ig
                results[pairs[k].example].attributions[attributionIndex[k]].igDelta = delta
            }
        }
        return results
    }

    /// The packed layout of a micro-batch: each example's first forward row and
    /// attention-probability offset; checks each example against the model.
    struct Layout {
        var forwardRow: [Int] = [], probOffset: [Int] = []
        var rows = 0, probCount = 0, maxT = 0
    }

    func pack(_ inputs: [EncodedInput]) throws -> Layout {
        let c = model.config
        var layout = Layout()
        for (index, input) in inputs.enumerated() {
            let t = input.ids.count
            guard t > 0 else { throw EngineError.badInput(index: index, detail: "no tokens") }
            guard input.segments.count == t else {
                throw EngineError.badInput(index: index, detail: "\(t) ids but \(input.segments.count) segment ids")
            }
            guard t <= c.maxPositions else {
                throw EngineError.badInput(index: index, detail: "\(t) tokens, the model takes at most \(c.maxPositions)")
            }
            if let bad = input.ids.first(where: { $0 < 0 || Int($0) >= c.vocabSize }) {
                throw EngineError.badInput(index: index, detail: "token id \(bad) is not in 0..<\(c.vocabSize)")
            }
            if let bad = input.segments.first(where: { $0 < 0 || Int($0) >= c.typeVocabSize }) {
                throw EngineError.badInput(index: index, detail: "segment id \(bad) is not in 0..<\(c.typeVocabSize)")
            }
            layout.append(tokens: t, heads: c.numHeads)
        }
        return layout
    }

    /// The (example, target) pairs in example order; adds an empty attribution per pair.
    func targetPairs(_ inputs: [EncodedInput], targets: [TargetSelection],
                     results: inout [ExampleResult]) throws -> [(example: Int, target: Int)] {
        let c = model.config
        var pairs: [(example: Int, target: Int)] = []
        for b in inputs.indices {
            let classes: [Int]
            switch targets[b] {
            case .predicted: classes = [results[b].predicted]
            case .all: classes = Array(0..<c.numClasses)
            case .classes(let list): classes = list
            }
            for target in classes {
                guard target >= 0 && target < c.numClasses else {
                    throw EngineError.badTarget(index: b, target: target, classes: c.numClasses)
                }
                pairs.append((b, target))
                results[b].attributions.append(Attribution(target: target))
            }
        }
        return pairs
    }

    /// From the gradient at the embedding output e (`from`, block rows) back
    /// through the embedding LayerNorm to the embedding sum (`into`, block rows),
    /// by each block's rule.
    func embeddingSumGradient(segments: [Segment], from: UnsafePointer<Float>, into: UnsafeMutablePointer<Float>) {
        layerNormBackward(dy: from, dt: into, segments: segments, width: model.config.hiddenSize,
                          gamma: model.embeddingNorm.gamma.p, xhat: embXhat.p, rstd: embRstd.p)
    }

    /// Per token `scale · Σ_h w_t,h · g_t,h`, `w` the token's word-embedding row, `g` `[T, H]`.
    func wordEmbeddingDot(_ input: EncodedInput, gradient g: UnsafePointer<Float>, scale: Double) -> [Double] {
        let h = model.config.hiddenSize
        return (0..<input.ids.count).map { t in
            let w = model.wordEmbeddings.p + Int(input.ids[t]) * h, gr = g + t * h
            var a = 0.0
            for j in 0..<h { a += Double(w[j]) * Double(gr[j]) }
            return a * scale
        }
    }
}

extension Engine.Layout {
    mutating func append(tokens t: Int, heads: Int) {
        forwardRow.append(rows)
        probOffset.append(probCount)
        rows += t
        probCount += heads * t * t
        maxT = max(maxT, t)
    }
}
