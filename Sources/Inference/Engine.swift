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
    let zBuf = FloatBuffer(count: 0)   // [N, 2·max(I, H)] the alpha-beta denominators [zp | zn]
    let sBuf = FloatBuffer(count: 0)   // [Mr, 2·max(I, H)]
    let cBuf = FloatBuffer(count: 0)   // [Mr, max(I, H)]
    let rI = FloatBuffer(count: 0)     // [Mr, I]
    let rC = FloatBuffer(count: 0)     // [Mr, H]
    let rQKV = FloatBuffer(count: 0)   // [Mr, 3H]
    let attnScratch = FloatBuffer(count: 0)  // [T, T]

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
    }

    /// Bytes of scratch space a micro-batch needs: `tokens` in all, the longest
    /// example `longest` tokens, `targets` target classes per example. The
    /// engine keeps its buffers at the largest size it has seen.
    public static func scratchBytes(config c: ModelConfig, tokens: Int, longest: Int, targets: Int, methods: Methods) -> Int {
        let h = c.hiddenSize, i = c.intermediateSize, layers = c.numLayers
        // Per token and layer: qkv, ctx, attention output, LayerNorm inputs, GELU in/out/derivative;
        // per token: embeddings, their LayerNorm, one dense output.
        var floats = tokens * (layers * (9 * h + 3 * i + 2) + 5 * h) + layers * c.numHeads * longest * tokens
        if methods.needsTargets {
            let passes = (methods.intersection([.gs, .gi]).isEmpty ? 0 : 1) + (methods.contains(.lrp) ? 1 : 0)
            let rows = tokens * max(targets, 1) * passes
            floats += rows * (9 * h + i) + longest * longest
            if methods.contains(.lrp) {
                let lrpRows = tokens * max(targets, 1)
                floats += tokens * 2 * max(i, h) + lrpRows * (3 * max(i, h) + i + 4 * h)
            }
        }
        return 4 * floats
    }

    /// Bytes this engine's buffers hold now.
    public var reservedBytes: Int {
        let perLayer = [hidden, qkv, probs, ctx, xhat1, rstd1, attnOut, inter, gelu, geluGrad, xhat2, rstd2]
        let single = [embXhat, embRstd, embSum, denseOut, dY, dX, dT2, dA, dT1, dCtx, dG, dQKV, zBuf, sBuf, cBuf, rI, rC, rQKV, attnScratch]
        return 4 * (perLayer.joined().reduce(0) { $0 + $1.capacity } + single.reduce(0) { $0 + $1.capacity })
    }

    /// Sets the OpenBLAS thread count for the process (see `Linear.setThreads`).
    public static func setBLASThreads(_ n: Int) { Linear.setThreads(n) }

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
    public func run(_ inputs: [EncodedInput], methods: Methods, targets: [TargetSelection]) throws -> [ExampleResult] {
        precondition(targets.count == inputs.count, "one target selection per example")
        precondition(model.relevance || !methods.contains(.lrp), "lrp asked of a model loaded without relevance weights")
        let c = model.config
        let h = c.hiddenSize
        guard !inputs.isEmpty else { return [] }
        var forwardRow = [Int](), probOffset = [Int]()
        var n = 0, probCount = 0, maxT = 0
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
            forwardRow.append(n)
            probOffset.append(probCount)
            n += t
            probCount += c.numHeads * t * t
            maxT = max(maxT, t)
        }
        reserveForward(rows: n, probCount: probCount, maxT: maxT)
        forward(inputs, forwardRow: forwardRow, probOffset: probOffset, backward: methods.needsTargets)

        // Pooler (tanh on position 0) and classifier, per example, in Double.
        let top = hidden[c.numLayers].p
        var results: [ExampleResult] = []
        var poolerInputs: [[Double]] = [], pooledAll: [[Double]] = []
        for b in inputs.indices {
            let x = (0..<h).map { Double(top[b * h + $0]) }   // the last layer keeps position 0 only
            let pooled = Engine.denseForward(model.pooler, x).map { tanh($0) }
            let logits = Engine.denseForward(model.classifier, pooled)
            let m = logits.max()!
            let e = logits.map { exp($0 - m) }
            let sum = e.reduce(0, +)
            let predicted = logits.firstIndex(of: m)!
            poolerInputs.append(x)
            pooledAll.append(pooled)
            // Multi-label classifiers score each class alone (transformers'
            // BCEWithLogitsLoss for problem_type multi_label_classification).
            let probs = c.multiLabel ? logits.map { Float(1 / (1 + exp(-$0))) } : e.map { Float($0 / sum) }
            results.append(ExampleResult(logits: logits.map { Float($0) }, probs: probs,
                                         predicted: predicted, lat: nil, attributions: []))
        }

        if methods.contains(.lat) {
            for b in inputs.indices {
                results[b].lat = lat(tokens: inputs[b].ids.count, probOffset: probOffset[b])
            }
        }

        guard methods.needsTargets else { return results }
        // (example, target) pairs.
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
        guard !pairs.isEmpty else { return results }
        var gradSegments: [Segment] = [], lrpSegments: [Segment] = []
        var m = 0
        let wantGradient = !methods.intersection([.gs, .gi]).isEmpty
        if wantGradient {
            for p in pairs {
                let t = inputs[p.example].ids.count
                gradSegments.append(Segment(example: p.example, target: p.target, forwardRow: forwardRow[p.example],
                                            row: m, rows: t, probOffset: probOffset[p.example]))
                m += t
            }
        }
        let mGrad = m
        if methods.contains(.lrp) {
            for p in pairs {
                let t = inputs[p.example].ids.count
                lrpSegments.append(Segment(example: p.example, target: p.target, forwardRow: forwardRow[p.example],
                                           row: m, rows: t, probOffset: probOffset[p.example]))
                m += t
            }
        }
        reserveBackward(rows: m, lrpRows: m - mGrad, forwardRows: n)

        // Output gradients and relevances at the last hidden layer: only position 0 is
        // non-zero, so they start compact, one row per (example, target) pair.
        let dy = dY.p
        for (p, s) in gradSegments.enumerated() {
            let b = s.example
            // f_c · ∂f_c/∂(pooler input): through the classifier row c and tanh'.
            let fc = Double(results[b].logits[s.target])
            let wc = model.classifier.weight.p + s.target * h, wp = model.pooler.weight.p
            var g = [Double](repeating: 0, count: h)
            for j in 0..<h {
                let dpre = fc * Double(wc[j]) * (1 - pooledAll[b][j] * pooledAll[b][j])
                let wr = wp + j * h
                for i in 0..<h { g[i] += dpre * Double(wr[i]) }
            }
            for i in 0..<h { dy[p * h + i] = Float(g[i]) }
        }
        for (p, s) in lrpSegments.enumerated() {
            let b = s.example
            var r = [Double](repeating: 0, count: c.numClasses)
            r[s.target] = Double(results[b].logits[s.target])
            r = DenseRelevance.propagate(model.classifier.rule, x: pooledAll[b], r: r)   // [H]
            r = DenseRelevance.propagate(model.pooler.rule, x: poolerInputs[b], r: r)    // [H], tanh skipped
            for i in 0..<h { dy[(gradSegments.count + p) * h + i] = Float(r[i]) }
        }

        backward(gradSegments: gradSegments, lrpSegments: lrpSegments)

        // After the backward, dY holds the gradient (or relevance) at the embedding output e.
        let e = hidden[0].p
        var slot = [Int](repeating: 0, count: inputs.count)
        var attributionIndex: [Int] = []
        for p in pairs {
            attributionIndex.append(slot[p.example])
            slot[p.example] += 1
        }
        for (k, s) in gradSegments.enumerated() {
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
        return results
    }

    static func denseForward(_ d: Dense, _ x: [Double]) -> [Double] {
        let w = d.weight.p, b = d.bias.p
        return (0..<d.outFeatures).map { j in
            var acc = Double(b[j])
            let wr = w + j * d.inFeatures
            for i in 0..<d.inFeatures { acc += Double(wr[i]) * x[i] }
            return acc
        }
    }
}
