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
