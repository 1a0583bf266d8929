/// The seed's alpha-beta rule for a dense layer (`backprop_lrp_fc`,
/// code/util/lrp.py; CONTRACT.md appendix), alpha = beta = 0.5, eps = 1e-7:
///
///     zp = x·W⁺ᵀ + b⁺ + eps    zn = x·W⁻ᵀ + b⁻ − eps
///     Rin = x ⊙ (0.5·(R/zp)·W⁺ + 0.5·(R/zn)·W⁻)
///     Rin = |Rin| · (ΣR + 1e-7) / (Σ|Rin| + 1e-7)     sums over the whole example
///
/// `zp` and `zn` depend on the forward activations only, so they are computed
/// once per example (`denominators`) and shared by all target classes.
enum DenseRelevance {
    static let eps: Float = 1e-7

    /// `z[rows, 2·out] = [x·W⁺ᵀ + b⁺ + eps, x·W⁻ᵀ + b⁻ − eps]`: one sgemm on the stacked `[W⁺; W⁻]`.
    static func denominators(_ blas: Linear, _ dense: Dense, x: UnsafePointer<Float>, rows: Int,
                             z: UnsafeMutablePointer<Float>) {
        let o = dense.outFeatures, bp = dense.biasPlus.p, bn = dense.biasMinus.p
        for r in 0..<rows {
            let zr = z + r * 2 * o
            for j in 0..<o { zr[j] = bp[j] + eps; zr[o + j] = bn[j] - eps }
        }
        blas.gemm(transB: true, m: rows, n: 2 * o, k: dense.inFeatures, a: x, lda: dense.inFeatures,
                  b: dense.plusMinus.p, ldb: dense.inFeatures, beta: 1, c: z, ldc: 2 * o)
    }

    /// Relevance at the input of `dense` for the relevance `r` at its output,
    /// for every segment (rows of `r` and `rin` by segment, of `x` and `z` by forward row).
    /// With `accumulate`, the result is added to `rin` (the residual's share is already there).
    static func propagate(_ blas: Linear, _ dense: Dense, segments: [Segment],
                          x: UnsafePointer<Float>,            // [N, in] forward rows
                          z: UnsafePointer<Float>,            // [N, 2·out] from `denominators`
                          r: UnsafePointer<Float>, ldr: Int,  // [M, out] with row stride ldr
                          rin: UnsafeMutablePointer<Float>,   // [M, in]
                          accumulate: Bool,
                          s: UnsafeMutablePointer<Float>,     // scratch [M, 2·out]
                          c: UnsafeMutablePointer<Float>) {   // scratch [M, in]
        let o = dense.outFeatures, n = dense.inFeatures
        guard let last = segments.last else { return }
        let rows = last.row + last.rows
        for seg in segments {
            for i in 0..<seg.rows {
                let rr = r + (seg.row + i) * ldr, sr = s + (seg.row + i) * 2 * o
                let zr = z + (seg.forwardRow + i) * 2 * o
                for j in 0..<o { sr[j] = rr[j] / zr[j]; sr[o + j] = rr[j] / zr[o + j] }
            }
        }
        // c = 0.5·sp·W⁺ + 0.5·sn·W⁻ in one product over the stacked weights.
        blas.gemm(m: rows, n: n, k: 2 * o, alpha: 0.5, a: s, lda: 2 * o, b: dense.plusMinus.p, ldb: n, c: c, ldc: n)
        for seg in segments {
            var sumR = 0.0, sumAbs = 0.0
            for i in 0..<seg.rows {
                let rr = r + (seg.row + i) * ldr
                for j in 0..<o { sumR += Double(rr[j]) }
                let cr = c + (seg.row + i) * n, xr = x + (seg.forwardRow + i) * n
                for j in 0..<n {
                    let v = abs(xr[j] * cr[j])
                    cr[j] = v
                    sumAbs += Double(v)
                }
            }
            let scale = Float((sumR + 1e-7) / (sumAbs + 1e-7))
            for i in 0..<seg.rows {
                let cr = c + (seg.row + i) * n, out = rin + (seg.row + i) * n
                if accumulate {
                    for j in 0..<n { out[j] += cr[j] * scale }
                } else {
                    for j in 0..<n { out[j] = cr[j] * scale }
                }
            }
        }
    }

    /// The same rule for one vector (classifier and pooler, sums over `[H]`), in Double.
    static func propagate(_ dense: Dense, x: [Double], r: [Double]) -> [Double] {
        let o = dense.outFeatures, n = dense.inFeatures
        let w = dense.weight.p, b = dense.bias.p
        var sp = [Double](repeating: 0, count: o), sn = sp
        for j in 0..<o {
            var zp = Double(max(b[j], 0)) + Double(eps), zn = Double(min(b[j], 0)) - Double(eps)
            let wr = w + j * n
            for i in 0..<n {
                let v = Double(wr[i]) * x[i]
                if wr[i] > 0 { zp += v } else { zn += v }
            }
            sp[j] = r[j] / zp
            sn[j] = r[j] / zn
        }
        var rin = [Double](repeating: 0, count: n)
        for j in 0..<o {
            let wr = w + j * n
            for i in 0..<n {
                let wi = Double(wr[i])
                rin[i] += wi > 0 ? 0.5 * sp[j] * wi : 0.5 * sn[j] * wi
            }
        }
        var sumAbs = 0.0
        for i in 0..<n { rin[i] = abs(rin[i] * x[i]); sumAbs += rin[i] }
        let scale = (r.reduce(0, +) + 1e-7) / (sumAbs + 1e-7)
        return rin.map { $0 * scale }
    }
}
