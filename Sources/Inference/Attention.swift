import Foundation

/// Scaled dot-product self-attention of one example, all heads, reading
/// `q, k, v` from the packed `[T, 3H]` rows of the query/key/value dense layers
/// (bias included). Examples are never padded, so no mask is needed.
struct AttentionShape {
    let hidden: Int
    let heads: Int
    var headSize: Int { hidden / heads }
    var scale: Float { 1 / Float(headSize).squareRoot() }
}

/// probs `[heads, T, T]` = softmax(q_h·k_hᵀ/√d) (rows are queries); ctx `[T, H]` = probs·v_h per head.
func attentionForward(_ blas: Linear, _ shape: AttentionShape, tokens t: Int,
                      qkv: UnsafePointer<Float>,             // [T, 3H]
                      probs: UnsafeMutablePointer<Float>,    // [heads, T, T]
                      ctx: UnsafeMutablePointer<Float>) {    // [T, H]
    let h = shape.hidden, d = shape.headSize, ld = 3 * h
    for head in 0..<shape.heads {
        let q = qkv + head * d, k = q + h, v = q + 2 * h
        let p = probs + head * t * t
        blas.gemm(transB: true, m: t, n: t, k: d, alpha: shape.scale, a: q, lda: ld, b: k, ldb: ld, c: p, ldc: t)
        for i in 0..<t { softmaxRow(p + i * t, count: t) }
        blas.gemm(m: t, n: d, k: t, a: p, lda: t, b: v, ldb: ld, c: ctx + head * d, ldc: h)
    }
}

/// Gradients at `q, k, v` (`[T, 3H]`) of the attention output given `dctx`
/// (`[T, H]`) at it. Used for the gradient of every method and for the seed's
/// "quick" LRP detour through attention (`BERTSelfAttention.backward_lrp`).
/// `rule` scales the gradient at the context `A·v` (before it reaches A and v)
/// and at the raw scores `q·kᵀ` (AttnLRP's uniform rule halves both, LXT 2.1
/// `lxt.efficient`); CP-LRP holds A constant: dq = dk = 0. The factors are
/// exact powers of two, so the ordinary gradient is unchanged to the bit.
func attentionBackward(_ blas: Linear, _ shape: AttentionShape, tokens t: Int,
                       qkv: UnsafePointer<Float>,            // [T, 3H]
                       probs: UnsafePointer<Float>,          // [heads, T, T]
                       dctx: UnsafePointer<Float>,           // [T, H]
                       dqkv: UnsafeMutablePointer<Float>,    // [T, 3H]
                       scratch: UnsafeMutablePointer<Float>, // [T, T]
                       rule: BackwardRule = .gradient) {
    let h = shape.hidden, d = shape.headSize, ld = 3 * h
    let contextScale = rule.contextScale, scoreScale = rule.scoreScale
    if scoreScale == 0 {
        for i in 0..<t { (dqkv + i * ld).update(repeating: 0, count: 2 * h) }
    }
    for head in 0..<shape.heads {
        let q = qkv + head * d, k = q + h, v = q + 2 * h
        let p = probs + head * t * t
        let dc = dctx + head * d
        let dq = dqkv + head * d, dk = dq + h, dv = dq + 2 * h
        blas.gemm(transA: true, m: t, n: d, k: t, alpha: contextScale, a: p, lda: t, b: dc, ldb: h, c: dv, ldc: ld)
        if scoreScale == 0 { continue }
        let ds = scratch
        // dP = dctx_h · v_hᵀ, then the softmax backward: dS = P ⊙ (dP − rowsum(dP ⊙ P)).
        blas.gemm(transB: true, m: t, n: t, k: d, alpha: contextScale, a: dc, lda: h, b: v, ldb: ld, c: ds, ldc: t)
        for i in 0..<t {
            let pr = p + i * t, dr = ds + i * t
            var dot: Float = 0
            for j in 0..<t { dot += pr[j] * dr[j] }
            for j in 0..<t { dr[j] = pr[j] * (dr[j] - dot) }
        }
        let alpha = shape.scale * scoreScale
        blas.gemm(m: t, n: d, k: t, alpha: alpha, a: ds, lda: t, b: k, ldb: ld, c: dq, ldc: ld)
        blas.gemm(transA: true, m: t, n: d, k: t, alpha: alpha, a: ds, lda: t, b: q, ldb: ld, c: dk, ldc: ld)
    }
}

/// `attentionForward` for the query at position 0 only (the last layer, whose
/// output the pooler reads at position 0): probs row 0 `[heads, 1, T]` of the
/// `[heads, T, T]` block, ctx `[1, H]`.
func attentionForwardFirstRow(_ shape: AttentionShape, tokens t: Int,
                              qkv: UnsafePointer<Float>,            // [T, 3H]
                              probs: UnsafeMutablePointer<Float>,   // [heads, T, T], row 0 written
                              ctx: UnsafeMutablePointer<Float>) {   // [1, H]
    let h = shape.hidden, d = shape.headSize, ld = 3 * h, scale = shape.scale
    for head in 0..<shape.heads {
        let q = qkv + head * d
        let p = probs + head * t * t
        for j in 0..<t {
            let k = qkv + j * ld + h + head * d
            var dot: Float = 0
            for e in 0..<d { dot += q[e] * k[e] }
            p[j] = dot * scale
        }
        softmaxRow(p, count: t)
        let out = ctx + head * d
        for e in 0..<d { out[e] = 0 }
        for j in 0..<t {
            let v = qkv + j * ld + 2 * h + head * d, pj = p[j]
            for e in 0..<d { out[e] += pj * v[e] }
        }
    }
}

/// `attentionBackward` when only position 0 of `dctx` is non-zero (the last
/// layer): dq at position 0, dk and dv at every position. `dqkv` must be zero.
func attentionBackwardFirstRow(_ shape: AttentionShape, tokens t: Int,
                               qkv: UnsafePointer<Float>,            // [T, 3H]
                               probs: UnsafePointer<Float>,          // [heads, T, T], row 0 read
                               dctx: UnsafePointer<Float>,           // [1, H]
                               dqkv: UnsafeMutablePointer<Float>,    // [T, 3H]
                               scratch ds: UnsafeMutablePointer<Float>, // [T]
                               rule: BackwardRule = .gradient) {
    let h = shape.hidden, d = shape.headSize, ld = 3 * h
    let contextScale = rule.contextScale, scale = shape.scale * rule.scoreScale
    for head in 0..<shape.heads {
        let q = qkv + head * d, p = probs + head * t * t, dc = dctx + head * d
        // dP_j = dctx · v_j; dS_j = P_j (dP_j − Σ_k P_k dP_k).
        var dot: Float = 0
        for j in 0..<t {
            let v = qkv + j * ld + 2 * h + head * d
            var a: Float = 0
            for e in 0..<d { a += dc[e] * v[e] }
            a *= contextScale
            ds[j] = a
            dot += p[j] * a
        }
        let dq = dqkv + head * d
        for j in 0..<t {
            let g = p[j] * (ds[j] - dot) * scale
            let k = qkv + j * ld + h + head * d
            let dk = dqkv + j * ld + h + head * d, dv = dqkv + j * ld + 2 * h + head * d
            let pv = p[j] * contextScale
            for e in 0..<d {
                dq[e] += g * k[e]
                dk[e] = g * q[e]
                dv[e] = pv * dc[e]
            }
        }
    }
}
