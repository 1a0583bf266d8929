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
        guard !inputs.isEmpty else { return [] }
        let layout = try pack(inputs)
        let relevance = methods.contains(.lrp)
        reserveForward(rows: layout.rows, probCount: layout.probCount, maxT: layout.maxT, relevance: relevance)
        forward(inputs, forwardRow: layout.forwardRow, probOffset: layout.probOffset,
                backward: !methods.intersection([.gs, .gi, .lrp, .ixg]).isEmpty, relevance: relevance)
        let heads = classifierHead(examples: inputs.count)
        var results = predictions(heads)
        attentionScores(inputs, layout: layout, methods: methods, into: &results)

        guard methods.needsTargets else { return results }
        let targets = chooseTargets?(results) ?? targets
        precondition(targets.count == inputs.count, "one chosen target selection per example")
        let pairs = try targetPairs(inputs, targets: targets, results: &results)
        guard !pairs.isEmpty else { return results }
        let plan = planBackward(inputs, layout: layout, pairs: pairs, methods: methods, results: results)
        reserveBackward(rows: plan.rows, lrpRows: plan.rows - plan.gradientRows)
        seedOutputGradients(plan, heads: heads, results: results)
        if !plan.blocks.isEmpty || !plan.lrpSegments.isEmpty {
            backward(gradSegments: plan.blocks, lrpSegments: plan.lrpSegments)
        }
        embeddingOutputScores(plan, methods: methods, into: &results)
        embeddingSumScores(inputs, plan: plan, methods: methods, into: &results)
        if methods.contains(.ig) {
            integratedGradients(inputs, pairs: pairs, logits: heads.map(\.logits)) { k, ig, delta in
                results[pairs[k].example].attributions[plan.attributionIndex[k]].ig = ig
                results[pairs[k].example].attributions[plan.attributionIndex[k]].igDelta = delta
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
