import Foundation

/// `y = γ · (t − mean) / √(var + eps) + β` with `t = x + residual`, per row.
/// Keeps `xhat` and `1/√(var + eps)` for the backward pass. Mean and variance
/// are accumulated in Double.
func layerNormForward(x: UnsafePointer<Float>, residual: UnsafePointer<Float>?, rows: Int, width h: Int,
                      gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, eps: Float,
                      xhat: UnsafeMutablePointer<Float>,   // [rows, h]
                      rstd: UnsafeMutablePointer<Float>,   // [rows]
                      y: UnsafeMutablePointer<Float>) {    // [rows, h]
    for r in 0..<rows {
        let xr = x + r * h, tr = xhat + r * h
        if let residual {
            let rr = residual + r * h
            for j in 0..<h { tr[j] = xr[j] + rr[j] }
        } else {
            for j in 0..<h { tr[j] = xr[j] }
        }
        var sum = 0.0
        for j in 0..<h { sum += Double(tr[j]) }
        let mean = sum / Double(h)
        var sq = 0.0
        for j in 0..<h { let d = Double(tr[j]) - mean; sq += d * d }
        let inv = 1 / (sq / Double(h) + Double(eps)).squareRoot()
        rstd[r] = Float(inv)
        let yr = y + r * h
        for j in 0..<h {
            let n = Float((Double(tr[j]) - mean) * inv)
            tr[j] = n
            yr[j] = gamma[j] * n + beta[j]
        }
    }
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

/// GELU with erf (BERT's `gelu`): `x · ½ · (1 + erf(x/√2))`; with `derivative`,
/// also `gelu'(x) = ½ · (1 + erf(x/√2)) + x · φ(x)` for the backward passes
/// (computed once per token here rather than once per target class).
func geluForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                 derivative: UnsafeMutablePointer<Float>?, count: Int) {
    let invSqrt2: Float = 0.70710678118654752
    let invSqrt2Pi: Float = 0.39894228040143268
    if let derivative {
        for i in 0..<count {
            let v = x[i]
            let cdf = 0.5 * (1 + erf(v * invSqrt2))
            y[i] = v * cdf
            derivative[i] = cdf + v * invSqrt2Pi * exp(-0.5 * v * v)
        }
    } else {
        for i in 0..<count {
            let v = x[i]
            y[i] = v * 0.5 * (1 + erf(v * invSqrt2))
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

/// `geluForward` eight lanes at a time, for integrated gradients' many
/// interpolated inputs (where libm's scalar `erff` and `expf` took a sixth of
/// the time): erf by the rational approximation of Eigen/XLA
/// (`generic_fast_erf_float`, x clamped to ±4; GELU within 2.4e-7·max(1, |x|),
/// checked against `erf` in the tests) and exp by Cephes' `expf` polynomial.
/// The examples' own forward pass keeps `geluForward`, whose values the
/// seed's methods are checked against.
func geluForwardFast(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                     derivative: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i < count {
        var v = SIMD8<Float>(repeating: 0)
        let lanes = min(8, count - i)
        if lanes == 8 {
            v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
        } else {
            for k in 0..<lanes { v[k] = x[i + k] }
        }
        let (g, d) = gelu8(v)
        if lanes == 8 {
            UnsafeMutableRawPointer(y + i).storeBytes(of: g, as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(derivative + i).storeBytes(of: d, as: SIMD8<Float>.self)
        } else {
            for k in 0..<lanes { y[i + k] = g[k]; derivative[i + k] = d[k] }
        }
        i += 8
    }
}

/// GELU `x·Φ(x)` and its derivative `Φ(x) + x·φ(x)`, eight lanes.
@inline(__always)
func gelu8(_ v: SIMD8<Float>) -> (SIMD8<Float>, SIMD8<Float>) {
    let cdf = 0.5 * (1 + erf8(v * 0.70710678118654752))
    let pdf = 0.39894228040143268 * exp8(-0.5 * v * v)
    return (v * cdf, cdf + v * pdf)
}

@inline(__always)
func erf8(_ x0: SIMD8<Float>) -> SIMD8<Float> {
    let x = pointwiseMax(pointwiseMin(x0, SIMD8(repeating: 4)), SIMD8(repeating: -4))
    let x2 = x * x
    var p = SIMD8<Float>(repeating: -2.72614225801306e-10)
    p = p * x2 + 2.77068142495902e-08
    p = p * x2 - 2.10102402082508e-06
    p = p * x2 - 5.69250639462346e-05
    p = p * x2 - 7.34990630326855e-04
    p = p * x2 - 2.95459980854025e-03
    p = p * x2 - 1.60960333262415e-02
    p = p * x
    var q = SIMD8<Float>(repeating: -1.45660718464996e-05)
    q = q * x2 - 2.13374055278905e-04
    q = q * x2 - 1.68282697438203e-03
    q = q * x2 - 7.37332916720468e-03
    q = q * x2 - 1.42647390514189e-02
    return p / q
}

@inline(__always)
func exp8(_ x0: SIMD8<Float>) -> SIMD8<Float> {
    let x = pointwiseMax(pointwiseMin(x0, SIMD8(repeating: 88)), SIMD8(repeating: -87))
    // Round to nearest by the 1.5·2²³ shift (SIMD's generic rounding and Int32
    // conversion go lane by lane); m's low mantissa bits then hold n itself.
    let m = x * 1.44269504088896341 + 12582912
    let n = m - 12582912
    let r = x - n * 0.693359375 + n * 2.12194440e-4
    var p = SIMD8<Float>(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    let e = p * r * r + r + 1
    let bits = (unsafeBitCast(m, to: SIMD8<Int32>.self) &- 0x4B40_0000 &+ 127) &<< 23
    return e * unsafeBitCast(bits, to: SIMD8<Float>.self)
}
