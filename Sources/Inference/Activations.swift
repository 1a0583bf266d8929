import CKernels
import Foundation

// The non-linearities: GELU (forward, its backward by rule) and the attention softmax.

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
