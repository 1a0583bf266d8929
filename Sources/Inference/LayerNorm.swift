import CKernels
import Foundation

/// `y = γ · (t − mean) / √(var + eps) + β` with `t = x + residual`, per row.
/// Keeps `xhat` and `1/√(var + eps)` for the backward pass. Mean and variance
/// are accumulated in Double. In C (CKernels): eight lanes, AVX2 where the
/// processor has it.
@inline(__always)
func layerNormForward(x: UnsafePointer<Float>, residual: UnsafePointer<Float>?, rows: Int, width h: Int,
                      gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, eps: Float,
                      xhat: UnsafeMutablePointer<Float>,   // [rows, h]
                      rstd: UnsafeMutablePointer<Float>,   // [rows]
                      y: UnsafeMutablePointer<Float>) {    // [rows, h]
    bertlrp_layer_norm(x, residual, rows, h, gamma, beta, eps, xhat, rstd, y)
}

/// The vector-Jacobian product of the LayerNorm: the gradient at its input `t`
/// given `dy` at its output, through mean and variance:
/// `dt = rstd · (dxhat − mean(dxhat) − xhat · mean(dxhat ⊙ xhat))`, `dxhat = dy ⊙ γ`.
/// Blocks whose rule holds the standard deviation constant (AttnLRP, CP-LRP:
/// LXT 2.1's LayerNorm rule, Ali et al. 2022) drop the variance term:
/// `dt = rstd · (dxhat − mean(dxhat))`.
/// `dy`/`dt` rows follow the segments; `xhat`/`rstd` rows are forward rows.
func layerNormBackward(dy: UnsafePointer<Float>, dt: UnsafeMutablePointer<Float>, segments: [Segment], width h: Int,
                       gamma: UnsafePointer<Float>, xhat: UnsafePointer<Float>, rstd: UnsafePointer<Float>) {
    for s in segments {
        let variance = s.rule.constantStd ? 0.0 : 1.0
        for i in 0..<s.rows {
            let fr = s.forwardRow + i
            let dyr = dy + (s.row + i) * h, dtr = dt + (s.row + i) * h, xr = xhat + fr * h
            var m1 = 0.0, m2 = 0.0
            for j in 0..<h {
                let g = Double(dyr[j] * gamma[j])
                m1 += g
                m2 += g * Double(xr[j])
            }
            m1 /= Double(h)
            m2 = m2 / Double(h) * variance
            let inv = Double(rstd[fr])
            for j in 0..<h {
                let g = Double(dyr[j] * gamma[j])
                dtr[j] = Float(inv * (g - m1 - Double(xr[j]) * m2))
            }
        }
    }
}

/// `d ⊙= gelu'(x)` in place, rows by segment; `derivative` rows are forward rows.
/// Blocks of AttnLRP and CP-LRP take the identity rule instead (LXT 2.1's
/// `identity` for non-linearities): `d ⊙= gelu(x) / (x + 1e-10)`.
func geluBackward(_ d: UnsafeMutablePointer<Float>, derivative: UnsafePointer<Float>,
                  input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,   // [N, width] forward rows
                  segments: [Segment], width: Int) {
    for s in segments {
        for i in 0..<s.rows {
            let dr = d + (s.row + i) * width, f = (s.forwardRow + i) * width
            if s.rule == .gradient {
                let gr = derivative + f
                for j in 0..<width { dr[j] *= gr[j] }
            } else {
                let xr = x + f, yr = y + f
                for j in 0..<width { dr[j] *= identityRuleFactor(input: xr[j], output: yr[j]) }
            }
        }
    }
}

/// The identity rule's factor `f(x) / (x + 1e-10)` (LXT 2.1, `epsilon = 1e-10`).
@inline(__always)
func identityRuleFactor(input x: Float, output y: Float) -> Float { y / (x + 1e-10) }

/// GELU with erf (BERT's `gelu`): `x · ½ · (1 + erf(x/√2))`; with `derivative`,
/// also `gelu'(x) = ½ · (1 + erf(x/√2)) + x · φ(x)` for the backward passes
/// (computed once per token here rather than once per target class).
/// In C (CKernels), eight lanes at a time (libm's scalar `erff` and `expf` were
/// a fifth of the bundled model's forward pass): erf by the rational
/// approximation of Eigen/XLA (`generic_fast_erf_float`, x clamped to ±4; GELU
/// within 2.4e-7·max(1, |x|), checked against `erf` in the tests) and exp by
/// Cephes' `expf` polynomial.
@inline(__always)
func geluForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                 derivative: UnsafeMutablePointer<Float>?, count: Int) {
    bertlrp_gelu(x, y, derivative, count)
}

/// A softmax row in place: `row[j] = exp(row[j] − max) / Σ`, exp eight lanes at a time (CKernels).
@inline(__always)
func softmaxRow(_ row: UnsafeMutablePointer<Float>, count t: Int) {
    bertlrp_softmax_row(row, t)
}
