/// The seed's alpha-beta rule for a dense layer (`backprop_lrp_fc`,
/// code/util/lrp.py; docs/CONTRACT.md appendix), alpha = beta = 0.5, eps = 1e-7:
///
///     zp = x·W⁺ᵀ + b⁺ + eps    zn = x·W⁻ᵀ + b⁻ − eps
///     Rin = x ⊙ (0.5·(R/zp)·W⁺ + 0.5·(R/zn)·W⁻)
///     Rin = |Rin| · (ΣR + 1e-7) / (Σ|Rin| + 1e-7)     sums over the whole example
///
/// Both denominators come from one sgemm on the stacked `[W⁺; W⁻]` weights,
/// once per example and shared by all target classes; the two products of the
/// relevance with `W⁺` and `W⁻` are one sgemm too. `zn` is computed directly,
/// never as `zf − zp` from the forward output: that difference cancels to an
/// exact zero where `x·W⁻ᵀ + b⁻` is small, and the division then gives inf/NaN.
enum DenseRelevance {
    static let eps: Float = 1e-7

    /// `z[rows, parts·2·out]` = for every part `[x·W⁺ᵀ + b⁺ + eps | x·W⁻ᵀ + b⁻ − eps]`,
    /// one sgemm on the stacked `plusMinus [parts·2·out, in]`.
    static func denominators(_ blas: Linear, _ dense: AlphaBetaWeights, x: UnsafePointer<Float>, rows: Int,
                             z: UnsafeMutablePointer<Float>) {
        let width = dense.parts * 2 * dense.outFeatures
        for r in 0..<rows { (z + r * width).update(from: dense.zBias, count: width) }
        blas.gemm(transB: true, m: rows, n: width, k: dense.inFeatures, a: x, lda: dense.inFeatures,
                  b: dense.plusMinus, ldb: dense.inFeatures, beta: 1, c: z, ldc: width)
    }

    /// The dense layers' forward when LRP follows: the denominators `z`
    /// (kept for `propagate`), and the output `y[rows, parts·out] = zp + zn`,
    /// which is `x·Wᵀ + b` (`W⁺ + W⁻ = W`, `b⁺ + b⁻ = b`, the eps terms cancel)
    /// to float32 rounding: one product on the stacked weights serves both.
    static func forward(_ blas: Linear, _ dense: AlphaBetaWeights, x: UnsafePointer<Float>, rows: Int,
                        z: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>) {
        denominators(blas, dense, x: x, rows: rows, z: z)
        let o = dense.outFeatures, parts = dense.parts
        for r in 0..<rows {
            for k in 0..<parts {
                let zr = z + (r * parts + k) * 2 * o, yr = y + (r * parts + k) * o
                for j in 0..<o { yr[j] = zr[j] + zr[o + j] }
            }
        }
    }

    /// Relevance at the input of `dense` for the relevance `r` at its output,
    /// for every segment (rows of `r` and `rin` by segment; of `x` and `z` by forward row;
    /// `z`'s rows `ldz` apart: a part of stacked denominators).
    /// With `accumulate`, the result is added to `rin` (the residual's share is already there).
    static func propagate(_ blas: Linear, _ dense: AlphaBetaWeights, segments: [Segment],
                          x: UnsafePointer<Float>,                // [N, in] forward rows
                          z: UnsafePointer<Float>, ldz: Int,      // [N, 2·out] from `denominators`
                          r: UnsafePointer<Float>, ldr: Int,      // [M, out]
                          rin: UnsafeMutablePointer<Float>,       // [M, in]
                          accumulate: Bool,
                          s: UnsafeMutablePointer<Float>,         // scratch [M, 2·out]
                          c: UnsafeMutablePointer<Float>) {       // scratch [M, in]
        let o = dense.outFeatures, n = dense.inFeatures
        guard let last = segments.last else { return }
        let rows = last.row + last.rows
        for seg in segments {
            for i in 0..<seg.rows {
                let rr = r + (seg.row + i) * ldr, sr = s + (seg.row + i) * 2 * o
                let zr = z + (seg.forwardRow + i) * ldz
                for j in 0..<o {
                    // A sum can still round to exactly zero; the eps it was meant to carry keeps it finite.
                    let zp = zr[j], zn = zr[o + j]
                    sr[j] = rr[j] / (zp == 0 ? eps : zp)
                    sr[o + j] = rr[j] / (zn == 0 ? -eps : zn)
                }
            }
        }
        // c = 0.5·sp·W⁺ + 0.5·sn·W⁻ in one product over the stacked weights.
        blas.gemm(m: rows, n: n, k: 2 * o, alpha: 0.5, a: s, lda: 2 * o, b: dense.plusMinus, ldb: n, c: c, ldc: n)
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
    static func propagate(_ dense: AlphaBetaWeights, x: [Double], r: [Double]) -> [Double] {
        let o = dense.outFeatures, n = dense.inFeatures
        precondition(dense.parts == 1)
        let wp = dense.plusMinus, wn = dense.plusMinus + o * n
        var sp = [Double](repeating: 0, count: o), sn = sp
        for j in 0..<o {
            var zp = Double(dense.biasPlus[j]) + Double(eps), zn = Double(dense.biasMinus[j]) - Double(eps)
            let pr = wp + j * n, nr = wn + j * n
            for i in 0..<n { zp += Double(pr[i]) * x[i]; zn += Double(nr[i]) * x[i] }
            sp[j] = 0.5 * r[j] / zp
            sn[j] = 0.5 * r[j] / zn
        }
        var rin = [Double](repeating: 0, count: n)
        for j in 0..<o {
            let pr = wp + j * n, nr = wn + j * n, a = sp[j], b = sn[j]
            for i in 0..<n { rin[i] += a * Double(pr[i]) + b * Double(nr[i]) }
        }
        var sumAbs = 0.0
        for i in 0..<n { rin[i] = abs(rin[i] * x[i]); sumAbs += rin[i] }
        let scale = (r.reduce(0, +) + 1e-7) / (sumAbs + 1e-7)
        return rin.map { $0 * scale }
    }
}
