import Foundation
import XCTest
@testable import Inference

/// The backward rules of section 5b's methods, kernel by kernel, against
/// independent computations: finite differences of the LayerNorm with its
/// standard deviation frozen, and the attention rules as the ordinary
/// gradient's parts (the uniform rule halves the gradient at `A·v` and again
/// at `q·kᵀ`: v gets 1/2, q and k 1/4; CP-LRP: v whole, q and k nothing).
final class RuleKernelTests: XCTestCase {
    private var rng = SplitMix(seed: 11)
    private func random(_ n: Int) -> FloatBuffer {
        let b = FloatBuffer(count: n)
        for i in 0..<n { b.p[i] = rng.nextGaussian() }
        return b
    }

    func testLayerNormWithConstantStdMatchesFiniteDifferences() {
        let h = 16, rows = 3
        let x = random(rows * h), gamma = random(h), beta = random(h), dy = random(rows * h)
        let xhat = FloatBuffer(count: rows * h), rstd = FloatBuffer(count: rows), y = FloatBuffer(count: rows * h)
        layerNormForward(x: x.p, residual: nil, rows: rows, width: h, gamma: gamma.p, beta: beta.p, eps: 1e-12,
                         xhat: xhat.p, rstd: rstd.p, y: y.p)
        for rule in [BackwardRule.gradient, .attnLRP] {
            let dt = FloatBuffer(count: rows * h)
            let segments = [Segment(example: 0, target: 0, forwardRow: 0, row: 0, rows: rows, probOffset: 0, rule: rule)]
            layerNormBackward(dy: dy.p, dt: dt.p, segments: segments, width: h, gamma: gamma.p, xhat: xhat.p, rstd: rstd.p)
            // Σ dy · y(x + ε e_j), y in Double, with std frozen at the forward's for the LRP rules.
            for r in 0..<rows {
                let frozen = Double(rstd.p[r])
                func loss(_ xr: [Double]) -> Double {
                    let mean = xr.reduce(0, +) / Double(h)
                    let variance = xr.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(h)
                    let inv = rule.constantStd ? frozen : 1 / (variance + 1e-12).squareRoot()
                    return (0..<h).reduce(0) { $0 + Double(dy.p[r * h + $1]) * (Double(gamma.p[$1]) * (xr[$1] - mean) * inv + Double(beta.p[$1])) }
                }
                let base = (0..<h).map { Double(x.p[r * h + $0]) }
                for j in 0..<h {
                    var plus = base, minus = base
                    plus[j] += 1e-5
                    minus[j] -= 1e-5
                    let fd = (loss(plus) - loss(minus)) / 2e-5
                    XCTAssertEqual(Double(dt.p[r * h + j]), fd, accuracy: 1e-4 * max(1, abs(fd)), "\(rule) row \(r) unit \(j)")
                }
            }
        }
    }

    func testAttentionRulesAreScaledPartsOfTheGradient() {
        let shape = AttentionShape(hidden: 8, heads: 2), t = 5, h = 8
        let blas = Linear()
        let qkv = random(t * 3 * h), dctx = random(t * h)
        let probs = FloatBuffer(count: 2 * t * t), ctx = FloatBuffer(count: t * h), scratch = FloatBuffer(count: t * t)
        attentionForward(blas, shape, tokens: t, qkv: qkv.p, probs: probs.p, ctx: ctx.p)
        func grad(_ rule: BackwardRule) -> [Float] {
            let d = FloatBuffer(count: t * 3 * h)
            attentionBackward(blas, shape, tokens: t, qkv: qkv.p, probs: probs.p, dctx: dctx.p, dqkv: d.p, scratch: scratch.p, rule: rule)
            return Array(UnsafeBufferPointer(start: d.p, count: t * 3 * h))
        }
        let ordinary = grad(.gradient), attn = grad(.attnLRP), cp = grad(.cpLRP)
        for i in 0..<(t * 3 * h) {
            let isValue = (i % (3 * h)) >= 2 * h
            XCTAssertEqual(attn[i], ordinary[i] * (isValue ? 0.5 : 0.25), accuracy: 1e-6)
            XCTAssertEqual(cp[i], isValue ? ordinary[i] : 0, accuracy: 1e-6)
        }
        // The last layer's kernel (position 0 only) agrees with the full one fed dctx's row 0.
        let first = FloatBuffer(count: t * h)
        first.p.update(from: dctx.p, count: h)
        for rule in [BackwardRule.gradient, .attnLRP, .cpLRP] {
            let full = FloatBuffer(count: t * 3 * h), row = FloatBuffer(count: t * 3 * h)
            attentionBackward(blas, shape, tokens: t, qkv: qkv.p, probs: probs.p, dctx: first.p, dqkv: full.p, scratch: scratch.p, rule: rule)
            attentionBackwardFirstRow(shape, tokens: t, qkv: qkv.p, probs: probs.p, dctx: first.p, dqkv: row.p, scratch: scratch.p, rule: rule)
            for i in 0..<(t * 3 * h) { XCTAssertEqual(row.p[i], full.p[i], accuracy: 1e-5, "\(rule) \(i)") }
        }
    }

    func testIdentityRule() {
        // gelu(x)/(x + 1e-10) = Φ(x): the factor is the normal CDF.
        for x: Float in [-3, -0.5, 0.25, 2] {
            let y = x * 0.5 * (1 + erf(x / Float(2).squareRoot()))
            XCTAssertEqual(identityRuleFactor(input: x, output: y), 0.5 * (1 + erf(x / Float(2).squareRoot())), accuracy: 1e-6)
        }
        XCTAssertTrue(identityRuleFactor(input: 0, output: 0).isFinite)
    }
}

/// The seed's alpha-beta rule and the GELU's derivative on examples small
/// enough to check by hand.
final class AlphaBetaAndGELUKernelTests: XCTestCase {
    /// W = [[1, −2], [3, ½]], b = [½, −1], x = [2, 1], R = [1, 3]:
    /// zp = [2.5, 6.5], zn = [−2, −1] (eps aside); s⁺ = ½R/zp = [1/5, 3/13],
    /// s⁻ = ½R/zn = [−1/4, −3/2]; c = s⁺·W⁺ + s⁻·W⁻ = [11.6/13, 8/13];
    /// |c ⊙ x| = [23.2/13, 8/13], scaled to sum ΣR = 4: [23.2/7.8, 8/7.8].
    /// The forward through the stacked weights gives x·Wᵀ + b = [½, 5.5].
    func testAlphaBetaByHand() {
        let w = FloatBuffer(count: 4), b = FloatBuffer(count: 2)
        for (i, v) in [Float(1), -2, 3, 0.5].enumerated() { w.p[i] = v }
        b.p[0] = 0.5; b.p[1] = -1
        let dense = AlphaBetaWeights(weight: w.p, bias: b.p, inFeatures: 2, outFeatures: 2)
        let rin = DenseRelevance.propagate(dense, x: [2, 1], r: [1, 3])
        XCTAssertEqual(rin[0], 23.2 / 7.8, accuracy: 1e-6)
        XCTAssertEqual(rin[1], 8 / 7.8, accuracy: 1e-6)
        let x = FloatBuffer(count: 2), z = FloatBuffer(count: 4), y = FloatBuffer(count: 2)
        x.p[0] = 2; x.p[1] = 1
        DenseRelevance.forward(Linear(), dense, x: x.p, rows: 1, z: z.p, y: y.p)
        XCTAssertEqual(y.p[0], 0.5, accuracy: 1e-6)
        XCTAssertEqual(y.p[1], 5.5, accuracy: 1e-6)
        // The stored denominators: [zp | zn] with their eps.
        XCTAssertEqual(z.p[0], 2.5, accuracy: 1e-6); XCTAssertEqual(z.p[1], 6.5, accuracy: 1e-6)
        XCTAssertEqual(z.p[2], -2, accuracy: 1e-6); XCTAssertEqual(z.p[3], -1, accuracy: 1e-6)
    }

    /// gelu'(x) as the kernel computes it against central differences of
    /// BERT's GELU in Double (libm's erf), x in [−6, 6]: within 1e-6.
    func testGELUDerivativeMatchesFiniteDifferences() {
        let n = 1_201
        let x = FloatBuffer(count: n), y = FloatBuffer(count: n), d = FloatBuffer(count: n)
        for i in 0..<n { x.p[i] = -6 + 12 * Float(i) / Float(n - 1) }
        geluForward(x.p, y.p, derivative: d.p, count: n)
        func gelu(_ v: Double) -> Double { v * 0.5 * (1 + Foundation.erf(v / 2.0.squareRoot())) }
        var worst = 0.0
        for i in 0..<n {
            let v = Double(x.p[i]), h = 1e-5
            let fd = (gelu(v + h) - gelu(v - h)) / (2 * h)
            worst = max(worst, abs(Double(d.p[i]) - fd))
        }
        print("GELU derivative against finite differences: worst \(worst)")
        XCTAssertLessThan(worst, 1e-6)
    }
}

final class FastGELUTests: XCTestCase {
    /// The vectorised GELU against libm's `erf` and `exp` (BERT's formula in
    /// float32), over the range activations take and beyond: absolute error
    /// within a few float32 ulps of max(1, |x|); without the derivative, the same values.
    func testFastGELUAgreesWithLibm() {
        let n = 24_001
        let x = FloatBuffer(count: n), y = FloatBuffer(count: n), d = FloatBuffer(count: n), y1 = FloatBuffer(count: n)
        for i in 0..<n { x.p[i] = -12 + 24 * Float(i) / Float(n - 1) }
        geluForward(x.p, y.p, derivative: d.p, count: n)
        geluForward(x.p, y1.p, derivative: nil, count: n)
        var worstY: Float = 0, worstD: Float = 0
        for i in 0..<n {
            let v = x.p[i], scale = max(1, abs(v))
            let cdf = 0.5 * (1 + erf(v * 0.70710678118654752))
            worstY = max(worstY, abs(y.p[i] - v * cdf) / scale)
            worstD = max(worstD, abs(d.p[i] - (cdf + v * 0.39894228040143268 * exp(-0.5 * v * v))) / scale)
            XCTAssertEqual(y1.p[i], y.p[i])
        }
        print("fast GELU: worst error \(worstY), derivative \(worstD)")
        XCTAssertLessThan(worstY, 5e-7)   // a few float32 ulps
        XCTAssertLessThan(worstD, 5e-7)
    }

    /// The vectorised softmax against libm's `exp` in Double, rows of 1 to 40
    /// (whole and partial lanes), scores up to ±30: within 4e-7 relative of each probability
    /// (the scores less their maximum rounded to float32 as the kernel rounds them).
    func testSoftmaxRowAgreesWithLibm() {
        var rng = SplitMix(seed: 7)
        var worst = 0.0
        for t in 1...40 {
            let row = FloatBuffer(count: t)
            for j in 0..<t { row.p[j] = Float(60 * rng.nextUniform() - 30) }
            let scores = (0..<t).map { row.p[$0] }
            softmaxRow(row.p, count: t)
            // x − max is rounded to float32 in any float32 softmax (the libm loop's too).
            let m = scores.max()!, e = scores.map { Foundation.exp(Double($0 - m)) }, sum = e.reduce(0, +)
            for j in 0..<t {
                let p = e[j] / sum
                worst = max(worst, abs(Double(row.p[j]) - p) / max(p, 1e-30))
            }
        }
        print("softmax: worst relative error \(worst)")
        XCTAssertLessThan(worst, 4e-7)
    }
}
