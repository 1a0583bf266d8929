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
    private let shape: AttentionShape

    // Forward activations, kept for the backward passes. Rows: the examples packed.
    private var hidden: [FloatBuffer]   // L+1 × [N, H]: hidden[0] = e, hidden[l+1] = output of layer l
    private var qkv: [FloatBuffer]      // L × [N, 3H]
    private var probs: [FloatBuffer]    // L × Σ [heads, T, T]
    private var ctx: [FloatBuffer]      // L × [N, H]
    private var xhat1: [FloatBuffer]    // L × [N, H]
    private var rstd1: [FloatBuffer]    // L × [N]
    private var attnOut: [FloatBuffer]  // L × [N, H]
    private var inter: [FloatBuffer]    // L × [N, I] before GELU
    private var gelu: [FloatBuffer]     // L × [N, I]
    private var geluGrad: [FloatBuffer] // L × [N, I] gelu'(inter), when a backward pass follows
    private var aoZ: [FloatBuffer]      // L × [N, H] attention output dense, x·Wᵀ + b
    private var outZ: [FloatBuffer]     // L × [N, H] output dense, x·Wᵀ + b
    private var xhat2: [FloatBuffer]    // L × [N, H]
    private var rstd2: [FloatBuffer]    // L × [N]
    private let embXhat = FloatBuffer(count: 0), embRstd = FloatBuffer(count: 0)
    private let embSum = FloatBuffer(count: 0)  // [N, H] word + position + type embeddings

    // Backward buffers. Rows: one block per (example, target) pair; gradient blocks, then LRP blocks.
    private let dY = FloatBuffer(count: 0), dX = FloatBuffer(count: 0)     // [M, H]
    private let dT2 = FloatBuffer(count: 0), dA = FloatBuffer(count: 0)    // [M, H]
    private let dT1 = FloatBuffer(count: 0), dCtx = FloatBuffer(count: 0)  // [M, H]
    private let dG = FloatBuffer(count: 0)                                 // [M, I]
    private let dQKV = FloatBuffer(count: 0)                               // [M, 3H]
    // LRP scratch.
    private let zBuf = FloatBuffer(count: 0)   // [N, 2·max(I, H)] the alpha-beta denominators [zp | zn]
    private let sBuf = FloatBuffer(count: 0)   // [Mr, 2·max(I, H)]
    private let cBuf = FloatBuffer(count: 0)   // [Mr, max(I, H)]
    private let rI = FloatBuffer(count: 0)     // [Mr, I]
    private let rC = FloatBuffer(count: 0)     // [Mr, H]
    private let rQKV = FloatBuffer(count: 0)   // [Mr, 3H]
    private let attnScratch = FloatBuffer(count: 0)  // [T, T]

    public init(model: BertModel) {
        self.model = model
        let c = model.config
        shape = AttentionShape(hidden: c.hiddenSize, heads: c.numHeads)
        func make(_ n: Int) -> [FloatBuffer] { (0..<n).map { _ in FloatBuffer(count: 0) } }
        hidden = make(c.numLayers + 1)
        qkv = make(c.numLayers); probs = make(c.numLayers); ctx = make(c.numLayers)
        xhat1 = make(c.numLayers); rstd1 = make(c.numLayers); attnOut = make(c.numLayers)
        inter = make(c.numLayers); gelu = make(c.numLayers); geluGrad = make(c.numLayers)
        aoZ = make(c.numLayers); outZ = make(c.numLayers); xhat2 = make(c.numLayers); rstd2 = make(c.numLayers)
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
            results.append(ExampleResult(logits: logits.map { Float($0) }, probs: e.map { Float($0 / sum) },
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
            switch targets {
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
            r = DenseRelevance.propagate(model.classifier, x: pooledAll[b], r: r)   // [H]
            r = DenseRelevance.propagate(model.pooler, x: poolerInputs[b], r: r)    // [H], tanh skipped
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

    // MARK: forward

    private func reserveForward(rows n: Int, probCount: Int, maxT: Int) {
        let c = model.config, h = c.hiddenSize, i = c.intermediateSize
        for b in hidden { b.reserve(n * h) }
        for l in 0..<c.numLayers {
            qkv[l].reserve(n * 3 * h); probs[l].reserve(probCount); ctx[l].reserve(n * h)
            xhat1[l].reserve(n * h); rstd1[l].reserve(n); attnOut[l].reserve(n * h)
            inter[l].reserve(n * i); gelu[l].reserve(n * i); geluGrad[l].reserve(n * i)
            aoZ[l].reserve(n * h); outZ[l].reserve(n * h); xhat2[l].reserve(n * h); rstd2[l].reserve(n)
        }
        embXhat.reserve(n * h); embRstd.reserve(n); embSum.reserve(n * h)
        attnScratch.reserve(maxT * maxT)
    }

    private func forward(_ inputs: [EncodedInput], forwardRow: [Int], probOffset: [Int], backward: Bool) {
        let c = model.config, h = c.hiddenSize, inner = c.intermediateSize
        let n = forwardRow.last! + inputs.last!.ids.count
        // Embeddings: word + position + token type, then LayerNorm.
        let sum = embSum.p
        for (b, input) in inputs.enumerated() {
            for t in 0..<input.ids.count {
                let row = sum + (forwardRow[b] + t) * h
                let w = model.wordEmbeddings.p + Int(input.ids[t]) * h
                let p = model.positionEmbeddings.p + t * h
                let s = model.typeEmbeddings.p + Int(input.segments[t]) * h
                for j in 0..<h { row[j] = w[j] + p[j] + s[j] }
            }
        }
        layerNormForward(x: sum, residual: nil, rows: n, width: h, gamma: model.embeddingNorm.gamma.p,
                         beta: model.embeddingNorm.beta.p, eps: c.layerNormEps,
                         xhat: embXhat.p, rstd: embRstd.p, y: hidden[0].p)
        for l in 0..<c.numLayers - 1 {
            let layer = model.layers[l]
            let x = hidden[l].p
            blas.dense(x, rows: n, inFeatures: h, weight: layer.qkvWeight.p, bias: layer.qkvBias.p,
                       outFeatures: 3 * h, into: qkv[l].p)
            for (b, input) in inputs.enumerated() {
                let r = forwardRow[b]
                attentionForward(blas, shape, tokens: input.ids.count, qkv: qkv[l].p + r * 3 * h,
                                 probs: probs[l].p + probOffset[b], ctx: ctx[l].p + r * h)
            }
            denseBlock(l, rows: n, residual: x, backward: backward, output: hidden[l + 1].p)
        }
        // The last layer: the pooler reads position 0 only, so only its query row
        // is needed (keys and values of every position), and above attention
        // every activation is kept for position 0 only: one compact row per example.
        let l = c.numLayers - 1
        let x = hidden[l].p
        blas.dense(x, rows: n, inFeatures: h, weight: model.layers[l].qkvWeight.p, bias: model.layers[l].qkvBias.p,
                   outFeatures: 3 * h, into: qkv[l].p)
        let first = embSum.p   // [B, H] scratch: the layer input at position 0 (the residual)
        for (b, input) in inputs.enumerated() {
            let r = forwardRow[b]
            attentionForwardFirstRow(shape, tokens: input.ids.count, qkv: qkv[l].p + r * 3 * h,
                                     probs: probs[l].p + probOffset[b], ctx: ctx[l].p + b * h)
            (first + b * h).update(from: x + r * h, count: h)
        }
        denseBlock(l, rows: inputs.count, residual: first, backward: backward, output: hidden[l + 1].p)
    }

    /// Attention output dense + LayerNorm, feed-forward block + LayerNorm of layer `l`,
    /// on `rows` rows of `ctx[l]` (the residual: the layer input).
    private func denseBlock(_ l: Int, rows n: Int, residual x: UnsafePointer<Float>, backward: Bool,
                            output: UnsafeMutablePointer<Float>) {
        let c = model.config, h = c.hiddenSize, inner = c.intermediateSize
        let layer = model.layers[l]
        let ao = layer.attentionOutput
        blas.dense(ctx[l].p, rows: n, inFeatures: h, weight: ao.weight.p, bias: ao.bias.p, outFeatures: h, into: aoZ[l].p)
        layerNormForward(x: aoZ[l].p, residual: x, rows: n, width: h, gamma: layer.attentionNorm.gamma.p,
                         beta: layer.attentionNorm.beta.p, eps: c.layerNormEps,
                         xhat: xhat1[l].p, rstd: rstd1[l].p, y: attnOut[l].p)
        blas.dense(attnOut[l].p, rows: n, inFeatures: h, weight: layer.intermediate.weight.p,
                   bias: layer.intermediate.bias.p, outFeatures: inner, into: inter[l].p)
        geluForward(inter[l].p, gelu[l].p, derivative: backward ? geluGrad[l].p : nil, count: n * inner)
        blas.dense(gelu[l].p, rows: n, inFeatures: inner, weight: layer.output.weight.p,
                   bias: layer.output.bias.p, outFeatures: h, into: outZ[l].p)
        layerNormForward(x: outZ[l].p, residual: attnOut[l].p, rows: n, width: h, gamma: layer.outputNorm.gamma.p,
                         beta: layer.outputNorm.beta.p, eps: c.layerNormEps,
                         xhat: xhat2[l].p, rstd: rstd2[l].p, y: output)
    }

    /// LAT: per head, start from the one-hot of position 0 and multiply by that
    /// head's attention matrix from the last layer down to the first; sum over heads
    /// (the seed's `backward_lat`).
    private func lat(tokens t: Int, probOffset: Int) -> [Float] {
        let c = model.config
        var total = [Double](repeating: 0, count: t)
        var s = [Double](repeating: 0, count: t), next = s
        for head in 0..<c.numHeads {
            for j in 0..<t { s[j] = 0 }
            s[0] = 1
            for l in stride(from: c.numLayers - 1, through: 0, by: -1) {
                let a = probs[l].p + probOffset + head * t * t
                for j in 0..<t { next[j] = 0 }
                for i in 0..<t where s[i] != 0 {
                    let row = a + i * t, si = s[i]
                    for j in 0..<t { next[j] += si * Double(row[j]) }
                }
                swap(&s, &next)
            }
            for j in 0..<t { total[j] += s[j] }
        }
        return total.map { Float($0) }
    }

    // MARK: backward

    private func reserveBackward(rows m: Int, lrpRows mr: Int, forwardRows n: Int) {
        let c = model.config, h = c.hiddenSize, i = c.intermediateSize
        for b in [dY, dX, dT2, dA, dT1, dCtx] { b.reserve(m * h) }
        dG.reserve(m * i)
        dQKV.reserve(m * 3 * h)
        if mr > 0 {
            let wide = max(i, h)
            zBuf.reserve(n * 2 * max(i, h))
            sBuf.reserve(mr * 2 * wide)
            cBuf.reserve(mr * wide)
            rI.reserve(mr * i)
            rC.reserve(mr * h)
            rQKV.reserve(mr * 3 * h)
        }
    }

    /// From the last layer to the first, the gradient blocks and the LRP blocks
    /// together: every ordinary gradient the seed's LRP takes (LayerNorm
    /// vector-Jacobian products, the residual gradients through whole sub-layers)
    /// runs on the stacked rows in the same sgemm as the gs/gi gradient.
    /// On entry dY holds the gradient/relevance at position 0 of the last hidden
    /// layer, one compact row per pair; on exit, at the embedding output (full rows).
    private func backward(gradSegments: [Segment], lrpSegments: [Segment]) {
        let c = model.config, h = c.hiddenSize
        let all = gradSegments + lrpSegments
        let m = all.last!.row + all.last!.rows
        let mGrad = lrpSegments.first?.row ?? m
        let lrp = lrpSegments.map { $0.shifted(by: -mGrad) }   // rows within the LRP block
        let nRows = (all.map { $0.forwardRow + $0.rows }.max() ?? 0)
        var dy = dY, dx = dX

        // The last layer, above attention: one row per pair (forward rows: one per example).
        let l = c.numLayers - 1
        let layer = model.layers[l]
        let compact = all.enumerated().map { p, s in
            Segment(example: s.example, target: s.target, forwardRow: s.example, row: p, rows: 1, probOffset: s.probOffset)
        }
        let pGrad = gradSegments.count, pairs = compact.count
        let compactLRP = compact[pGrad...].map { $0.shifted(by: -pGrad) }
        let examples = (all.map(\.example).max() ?? 0) + 1
        feedForwardBackward(l, segments: compact, lrp: compactLRP, lrpStart: pGrad, forwardRows: examples, dy: dy)
        // dT1 (compact) -> gradient at ctx, position 0; Rc for LRP.
        blas.gemm(m: pairs, n: h, k: h, a: dT1.p, lda: h, b: layer.attentionOutput.weight.p, ldb: h, c: dCtx.p, ldc: h)
        if !lrp.isEmpty {
            DenseRelevance.denominators(blas, layer.attentionOutput, x: ctx[l].p, rows: examples, z: zBuf.p)
            DenseRelevance.propagate(blas, layer.attentionOutput, segments: compactLRP, x: ctx[l].p, z: zBuf.p,
                                     r: dT1.p + pGrad * h, ldr: h, rin: rC.p, accumulate: false,
                                     s: sBuf.p, c: cBuf.p)
        }
        // Back to full rows: the gradient at q (position 0), k and v (all positions).
        dQKV.p.update(repeating: 0, count: m * 3 * h)
        dx.p.update(repeating: 0, count: m * h)
        for (p, s) in all.enumerated() {
            attentionBackwardFirstRow(shape, tokens: s.rows, qkv: qkv[l].p + s.forwardRow * 3 * h,
                                      probs: probs[l].p + s.probOffset, dctx: dCtx.p + p * h,
                                      dqkv: dQKV.p + s.row * 3 * h, scratch: attnScratch.p)
            (dx.p + s.row * h).update(from: dT1.p + p * h, count: h)
        }
        blas.gemm(m: m, n: h, k: 3 * h, a: dQKV.p, lda: 3 * h, b: layer.qkvWeight.p, ldb: h, beta: 1, c: dx.p, ldc: h)
        if !lrp.isEmpty {
            let rows = m - mGrad
            rQKV.p.update(repeating: 0, count: rows * 3 * h)
            for (p, s) in lrp.enumerated() {
                attentionBackwardFirstRow(shape, tokens: s.rows, qkv: qkv[l].p + s.forwardRow * 3 * h,
                                          probs: probs[l].p + s.probOffset, dctx: rC.p + p * h,
                                          dqkv: rQKV.p + s.row * 3 * h, scratch: attnScratch.p)
            }
            queryKeyValueRelevance(l, lrp: lrp, forwardRows: nRows, into: dx.p + mGrad * h)
        }
        swap(&dy, &dx)

        for l in stride(from: c.numLayers - 2, through: 0, by: -1) {
            let layer = model.layers[l]
            feedForwardBackward(l, segments: all, lrp: lrp, lrpStart: mGrad, forwardRows: nRows, dy: dy)
            // Through the attention block to the layer input: dX = dT1 + dQKV·Wqkv (for LRP: g1).
            blas.gemm(m: m, n: h, k: h, a: dT1.p, lda: h, b: layer.attentionOutput.weight.p, ldb: h, c: dCtx.p, ldc: h)
            for s in all {
                attentionBackward(blas, shape, tokens: s.rows, qkv: qkv[l].p + s.forwardRow * 3 * h,
                                  probs: probs[l].p + s.probOffset, dctx: dCtx.p + s.row * h,
                                  dqkv: dQKV.p + s.row * 3 * h, scratch: attnScratch.p)
            }
            dx.p.update(from: dT1.p, count: m * h)
            blas.gemm(m: m, n: h, k: 3 * h, a: dQKV.p, lda: 3 * h, b: layer.qkvWeight.p, ldb: h,
                      beta: 1, c: dx.p, ldc: h)
            if !lrp.isEmpty {
                // Rc = fc(Wao, ctx, u); the "quick" detour: gradients of ctx at q, k, v with Rc,
                // then fc(Wq, x, Rq) + fc(Wk, x, Rk) + fc(Wv, x, Rv), added to g1.
                DenseRelevance.denominators(blas, layer.attentionOutput, x: ctx[l].p, rows: nRows, z: zBuf.p)
                DenseRelevance.propagate(blas, layer.attentionOutput, segments: lrp, x: ctx[l].p, z: zBuf.p,
                                         r: dT1.p + mGrad * h, ldr: h, rin: rC.p,
                                         accumulate: false, s: sBuf.p, c: cBuf.p)
                for s in lrp {
                    attentionBackward(blas, shape, tokens: s.rows, qkv: qkv[l].p + s.forwardRow * 3 * h,
                                      probs: probs[l].p + s.probOffset, dctx: rC.p + s.row * h,
                                      dqkv: rQKV.p + s.row * 3 * h, scratch: attnScratch.p)
                }
                queryKeyValueRelevance(l, lrp: lrp, forwardRows: nRows, into: dx.p + mGrad * h)
            }
            swap(&dy, &dx)
        }
        if dy !== dY {
            dY.p.update(from: dy.p, count: m * h)
        }
    }

    /// The output LayerNorm and the feed-forward block of layer `l`, backwards:
    /// from `dy` at the layer output to `dT1` at the attention-output LayerNorm's input.
    /// Gradient rows: dT2 = vjp_LN2(dy), dA = dT2 + ((dT2·Wout) ⊙ gelu')·Wint, dT1 = vjp_LN1(dA).
    /// LRP rows (from `lrpStart`): v = vjp_LN2(R), g2 as above (skip + whole block),
    /// Ri = fc(Wout, gelu_out, v), Ra = fc(Wint, attn_out, Ri) + g2 (GELU skipped), u = vjp_LN1(Ra).
    private func feedForwardBackward(_ l: Int, segments all: [Segment], lrp: [Segment], lrpStart mGrad: Int,
                                     forwardRows: Int, dy: FloatBuffer) {
        let c = model.config, h = c.hiddenSize, inner = c.intermediateSize
        let layer = model.layers[l]
        let m = all.last!.row + all.last!.rows
        layerNormBackward(dy: dy.p, dt: dT2.p, segments: all, width: h, gamma: layer.outputNorm.gamma.p,
                          xhat: xhat2[l].p, rstd: rstd2[l].p)
        blas.gemm(m: m, n: inner, k: h, a: dT2.p, lda: h, b: layer.output.weight.p, ldb: inner, c: dG.p, ldc: inner)
        geluBackward(dG.p, derivative: geluGrad[l].p, segments: all, width: inner)
        dA.p.update(from: dT2.p, count: m * h)
        blas.gemm(m: m, n: h, k: inner, a: dG.p, lda: inner, b: layer.intermediate.weight.p, ldb: h,
                  beta: 1, c: dA.p, ldc: h)
        if !lrp.isEmpty {
            DenseRelevance.denominators(blas, layer.output, x: gelu[l].p, rows: forwardRows, z: zBuf.p)
            DenseRelevance.propagate(blas, layer.output, segments: lrp, x: gelu[l].p, z: zBuf.p,
                                     r: dT2.p + mGrad * h, ldr: h, rin: rI.p,
                                     accumulate: false, s: sBuf.p, c: cBuf.p)
            DenseRelevance.denominators(blas, layer.intermediate, x: attnOut[l].p, rows: forwardRows, z: zBuf.p)
            DenseRelevance.propagate(blas, layer.intermediate, segments: lrp, x: attnOut[l].p, z: zBuf.p,
                                     r: rI.p, ldr: inner, rin: dA.p + mGrad * h,
                                     accumulate: true, s: sBuf.p, c: cBuf.p)
        }
        layerNormBackward(dy: dA.p, dt: dT1.p, segments: all, width: h, gamma: layer.attentionNorm.gamma.p,
                          xhat: xhat1[l].p, rstd: rstd1[l].p)
    }

    /// fc(Wq, x, Rq) + fc(Wk, x, Rk) + fc(Wv, x, Rv) from `rQKV`, added into `into` (which holds g1).
    private func queryKeyValueRelevance(_ l: Int, lrp: [Segment], forwardRows: Int, into: UnsafeMutablePointer<Float>) {
        let h = model.config.hiddenSize
        let layer = model.layers[l]
        let x = hidden[l].p
        for (k, dense) in [layer.query, layer.key, layer.value].enumerated() {
            DenseRelevance.denominators(blas, dense, x: x, rows: forwardRows, z: zBuf.p)
            DenseRelevance.propagate(blas, dense, segments: lrp, x: x, z: zBuf.p, r: rQKV.p + k * h, ldr: 3 * h,
                                     rin: into, accumulate: true, s: sBuf.p, c: cBuf.p)
        }
    }
}
