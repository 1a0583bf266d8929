import Foundation

/// The backward passes: the gradient for gs/gi/ixg/ig, the modified gradients
/// of AttnLRP and CP-LRP (each block by its `Segment.rule`) and the seed's LRP,
/// from the pooler down to the embedding output.
extension Engine {
    func reserveBackward(rows m: Int, lrpRows mr: Int) {
        let c = model.config, h = c.hiddenSize, i = c.intermediateSize
        for b in [dY, dX, dT2, dA, dT1, dCtx] { b.reserve(m * h) }
        dG.reserve(m * i)
        dQKV.reserve(m * 3 * h)
        if mr > 0 {
            let wide = max(i, h)
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
    func backward(gradSegments: [Segment], lrpSegments: [Segment]) {
        let c = model.config, h = c.hiddenSize
        let all = gradSegments + lrpSegments
        let m = all.last!.row + all.last!.rows
        let mGrad = lrpSegments.first?.row ?? m
        let lrp = lrpSegments.map { $0.shifted(by: -mGrad) }   // rows within the LRP block
        var dy = dY, dx = dX

        // The last layer, above attention: one row per pair (forward rows: one per example).
        let l = c.numLayers - 1
        let layer = model.layers[l]
        let compact = all.enumerated().map { p, s in
            Segment(example: s.example, target: s.target, forwardRow: s.example, row: p, rows: 1, probOffset: s.probOffset,
                    rule: s.rule)
        }
        let pGrad = gradSegments.count, pairs = compact.count
        let compactLRP = compact[pGrad...].map { $0.shifted(by: -pGrad) }
        feedForwardBackward(l, segments: compact, lrp: compactLRP, lrpStart: pGrad, dy: dy)
        // dT1 (compact) -> gradient at ctx, position 0; Rc for LRP.
        blas.gemm(m: pairs, n: h, k: h, a: dT1.p, lda: h, b: layer.attentionOutput.weight.p, ldb: h, c: dCtx.p, ldc: h)
        if !lrp.isEmpty {
            denseRelevance(layer.attentionOutput.rule, x: ctx[l].p, z: zAttnOut[l].p, segments: compactLRP,
                           r: dT1.p + pGrad * h, ldr: h, into: rC.p, accumulate: false)
        }
        // Back to full rows: the gradient at q (position 0), k and v (all positions).
        dQKV.p.update(repeating: 0, count: m * 3 * h)
        dx.p.update(repeating: 0, count: m * h)
        for (p, s) in all.enumerated() {
            attentionBackwardFirstRow(shape, tokens: s.rows, qkv: qkv[l].p + s.forwardRow * 3 * h,
                                      probs: probs[l].p + s.probOffset, dctx: dCtx.p + p * h,
                                      dqkv: dQKV.p + s.row * 3 * h, scratch: attnScratch.p, rule: s.rule)
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
            queryKeyValueRelevance(l, lrp: lrp, into: dx.p + mGrad * h)
        }
        swap(&dy, &dx)

        for l in stride(from: c.numLayers - 2, through: 0, by: -1) {
            let layer = model.layers[l]
            feedForwardBackward(l, segments: all, lrp: lrp, lrpStart: mGrad, dy: dy)
            // Through the attention block to the layer input: dX = dT1 + dQKV·Wqkv (for LRP: g1).
            blas.gemm(m: m, n: h, k: h, a: dT1.p, lda: h, b: layer.attentionOutput.weight.p, ldb: h, c: dCtx.p, ldc: h)
            for s in all {
                attentionBackward(blas, shape, tokens: s.rows, qkv: qkv[l].p + s.forwardRow * 3 * h,
                                  probs: probs[l].p + s.probOffset, dctx: dCtx.p + s.row * h,
                                  dqkv: dQKV.p + s.row * 3 * h, scratch: attnScratch.p, rule: s.rule)
            }
            dx.p.update(from: dT1.p, count: m * h)
            blas.gemm(m: m, n: h, k: 3 * h, a: dQKV.p, lda: 3 * h, b: layer.qkvWeight.p, ldb: h,
                      beta: 1, c: dx.p, ldc: h)
            if !lrp.isEmpty {
                // Rc = fc(Wao, ctx, u); the "quick" detour: gradients of ctx at q, k, v with Rc,
                // then fc(Wq, x, Rq) + fc(Wk, x, Rk) + fc(Wv, x, Rv), added to g1.
                denseRelevance(layer.attentionOutput.rule, x: ctx[l].p, z: zAttnOut[l].p, segments: lrp,
                               r: dT1.p + mGrad * h, ldr: h, into: rC.p, accumulate: false)
                for s in lrp {
                    attentionBackward(blas, shape, tokens: s.rows, qkv: qkv[l].p + s.forwardRow * 3 * h,
                                      probs: probs[l].p + s.probOffset, dctx: rC.p + s.row * h,
                                      dqkv: rQKV.p + s.row * 3 * h, scratch: attnScratch.p)
                }
                queryKeyValueRelevance(l, lrp: lrp, into: dx.p + mGrad * h)
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
    func feedForwardBackward(_ l: Int, segments all: [Segment], lrp: [Segment], lrpStart mGrad: Int, dy: FloatBuffer) {
        let c = model.config, h = c.hiddenSize, inner = c.intermediateSize
        let layer = model.layers[l]
        let m = all.last!.row + all.last!.rows
        layerNormBackward(dy: dy.p, dt: dT2.p, segments: all, width: h, gamma: layer.outputNorm.gamma.p,
                          xhat: xhat2[l].p, rstd: rstd2[l].p)
        blas.gemm(m: m, n: inner, k: h, a: dT2.p, lda: h, b: layer.output.weight.p, ldb: inner, c: dG.p, ldc: inner)
        geluBackward(dG.p, derivative: geluGrad[l].p, input: inter[l].p, output: gelu[l].p, segments: all, width: inner)
        dA.p.update(from: dT2.p, count: m * h)
        blas.gemm(m: m, n: h, k: inner, a: dG.p, lda: inner, b: layer.intermediate.weight.p, ldb: h,
                  beta: 1, c: dA.p, ldc: h)
        if !lrp.isEmpty {
            denseRelevance(layer.output.rule, x: gelu[l].p, z: zOutput[l].p, segments: lrp,
                           r: dT2.p + mGrad * h, ldr: h, into: rI.p, accumulate: false)
            denseRelevance(layer.intermediate.rule, x: attnOut[l].p, z: zInter[l].p, segments: lrp,
                           r: rI.p, ldr: inner, into: dA.p + mGrad * h, accumulate: true)
        }
        layerNormBackward(dy: dA.p, dt: dT1.p, segments: all, width: h, gamma: layer.attentionNorm.gamma.p,
                          xhat: xhat1[l].p, rstd: rstd1[l].p)
    }

    /// fc(Wq, x, Rq) + fc(Wk, x, Rk) + fc(Wv, x, Rv) from `rQKV`, added into `into` (which holds g1).
    func queryKeyValueRelevance(_ l: Int, lrp: [Segment], into: UnsafeMutablePointer<Float>) {
        let h = model.config.hiddenSize
        guard let rules = model.layers[l].queryKeyValueRule else { preconditionFailure("LRP asked of a model loaded without its alpha-beta weights") }
        for k in 0..<3 {
            denseRelevance(rules.part(k), x: hidden[l].p, z: zQKV[l].p + k * 2 * h, ldz: 6 * h, segments: lrp,
                           r: rQKV.p + k * h, ldr: 3 * h, into: into, accumulate: true)
        }
    }

    /// The alpha-beta rule through `dense` for the LRP rows, with the
    /// denominators `z` its forward product kept (shared by every target).
    private func denseRelevance(_ dense: AlphaBetaWeights, x: UnsafePointer<Float>, z: UnsafePointer<Float>, ldz: Int? = nil,
                                segments: [Segment], r: UnsafePointer<Float>, ldr: Int,
                                into rin: UnsafeMutablePointer<Float>, accumulate: Bool) {
        DenseRelevance.propagate(blas, dense, segments: segments, x: x, z: z, ldz: ldz ?? 2 * dense.outFeatures, r: r, ldr: ldr,
                                 rin: rin, accumulate: accumulate, s: sBuf.p, c: cBuf.p)
    }
}
