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
/// Eight lanes at a time (libm's scalar `erff` and `expf` were a fifth of the
/// bundled model's forward pass): erf by the rational approximation of Eigen/XLA
/// (`generic_fast_erf_float`, x clamped to ±4; GELU within 2.4e-7·max(1, |x|),
/// checked against `erf` in the tests) and exp by Cephes' `expf` polynomial.
func geluForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                 derivative: UnsafeMutablePointer<Float>?, count: Int) {
    var i = 0
    while i < count {
        var v = SIMD8<Float>(repeating: 0)
        let lanes = min(8, count - i)
        if lanes == 8 {
            v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
        } else {
            for k in 0..<lanes { v[k] = x[i + k] }
        }
        let cdf = 0.5 * (1 + erf8(v * 0.70710678118654752))
        let g = v * cdf
        if lanes == 8 {
            UnsafeMutableRawPointer(y + i).storeBytes(of: g, as: SIMD8<Float>.self)
        } else {
            for k in 0..<lanes { y[i + k] = g[k] }
        }
        if let derivative {
            let d = cdf + v * (0.39894228040143268 * exp8(-0.5 * v * v))
            if lanes == 8 {
                UnsafeMutableRawPointer(derivative + i).storeBytes(of: d, as: SIMD8<Float>.self)
            } else {
                for k in 0..<lanes { derivative[i + k] = d[k] }
            }
        }
        i += 8
    }
}

/// A softmax row in place: `row[j] = exp(row[j] − max) / Σ`, exp eight lanes at a time.
func softmaxRow(_ row: UnsafeMutablePointer<Float>, count t: Int) {
    var m = row[0]
    for j in 1..<t { m = max(m, row[j]) }
    var sum: Float = 0, j = 0
    let mv = SIMD8<Float>(repeating: m)
    while j + 8 <= t {
        let e = exp8(UnsafeRawPointer(row + j).loadUnaligned(as: SIMD8<Float>.self) - mv)
        UnsafeMutableRawPointer(row + j).storeBytes(of: e, as: SIMD8<Float>.self)
        sum += e.sum()
        j += 8
    }
    if j < t {
        var v = SIMD8<Float>(repeating: -.infinity)
        for k in j..<t { v[k - j] = row[k] }
        let e = exp8(v - mv)
        for k in j..<t { row[k] = e[k - j]; sum += e[k - j] }
    }
    let inv = 1 / sum
    for j in 0..<t { row[j] *= inv }
}

/// `x` clamped to `[lo, hi]` lane by lane, as selects the compiler turns into
/// vector min/max (the generic `pointwiseMin/Max` stayed calls).
@inline(__always)
func clamp8(_ x: SIMD8<Float>, _ lo: Float, _ hi: Float) -> SIMD8<Float> {
    var r = x
    for i in 0..<8 {
        let v = x[i]
        r[i] = v > hi ? hi : (v < lo ? lo : v)
    }
    return r
}

@inline(__always)
func erf8(_ x0: SIMD8<Float>) -> SIMD8<Float> {
    let x = clamp8(x0, -4, 4)
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
    let x = clamp8(x0, -87, 88)
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
