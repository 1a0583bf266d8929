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
        for i in 0..<t {
            let row = p + i * t
            var m = row[0]
            for j in 1..<t { m = max(m, row[j]) }
            var sum: Float = 0
            for j in 0..<t { let e = exp(row[j] - m); row[j] = e; sum += e }
            let inv = 1 / sum
            for j in 0..<t { row[j] *= inv }
        }
        blas.gemm(m: t, n: d, k: t, a: p, lda: t, b: v, ldb: ld, c: ctx + head * d, ldc: h)
    }
}

/// Gradients at `q, k, v` (`[T, 3H]`) of the attention output given `dctx`
/// (`[T, H]`) at it. Used for the gradient of every method and for the seed's
/// "quick" LRP detour through attention (`BERTSelfAttention.backward_lrp`).
func attentionBackward(_ blas: Linear, _ shape: AttentionShape, tokens t: Int,
                       qkv: UnsafePointer<Float>,            // [T, 3H]
                       probs: UnsafePointer<Float>,          // [heads, T, T]
                       dctx: UnsafePointer<Float>,           // [T, H]
                       dqkv: UnsafeMutablePointer<Float>,    // [T, 3H]
                       scratch: UnsafeMutablePointer<Float>) { // [T, T]
    let h = shape.hidden, d = shape.headSize, ld = 3 * h
    for head in 0..<shape.heads {
        let q = qkv + head * d, k = q + h, v = q + 2 * h
        let p = probs + head * t * t
        let dc = dctx + head * d
        let ds = scratch
        // dP = dctx_h · v_hᵀ, then the softmax backward: dS = P ⊙ (dP − rowsum(dP ⊙ P)).
        blas.gemm(transB: true, m: t, n: t, k: d, a: dc, lda: h, b: v, ldb: ld, c: ds, ldc: t)
        for i in 0..<t {
            let pr = p + i * t, dr = ds + i * t
            var dot: Float = 0
            for j in 0..<t { dot += pr[j] * dr[j] }
            for j in 0..<t { dr[j] = pr[j] * (dr[j] - dot) }
        }
        let dq = dqkv + head * d, dk = dq + h, dv = dq + 2 * h
        blas.gemm(m: t, n: d, k: t, alpha: shape.scale, a: ds, lda: t, b: k, ldb: ld, c: dq, ldc: ld)
        blas.gemm(transA: true, m: t, n: d, k: t, alpha: shape.scale, a: ds, lda: t, b: q, ldb: ld, c: dk, ldc: ld)
        blas.gemm(transA: true, m: t, n: d, k: t, a: p, lda: t, b: dc, ldb: h, c: dv, ldc: ld)
    }
}
