import CKernels
import Foundation

/// The classifier head: the pooler (dense + tanh on position 0) and the
/// classifier, per example in Double, and the output gradients the backward
/// passes start from (one compact row per block at the last hidden layer).
extension Engine {
    struct Head {
        var poolerInput: [Double]   // [H] the last hidden layer at position 0
        var preActivation: [Double] // [H] before tanh
        var pooled: [Double]        // [H]
        var logits: [Double]        // [C]
    }

    /// The head for the first `examples` rows of the last hidden layer (compact: one row per example).
    func classifierHead(examples: Int) -> [Head] {
        let h = model.config.hiddenSize
        let top = hidden[model.config.numLayers].p
        return (0..<examples).map { b in
            let x = (0..<h).map { Double(top[b * h + $0]) }
            let pre = Engine.denseForward(model.pooler, x)
            let pooled = pre.map { tanh($0) }
            return Head(poolerInput: x, preActivation: pre, pooled: pooled, logits: Engine.denseForward(model.classifier, pooled))
        }
    }

    /// `scale · ∂f_c/∂(pooler input)` into `into` `[H]`: through the classifier
    /// row c, then tanh' (ordinary gradient) or the identity rule
    /// `tanh(x)/(x + 1e-10)` (AttnLRP, CP-LRP), then the pooler weights.
    func headGradient(_ head: Head, target c: Int, scale: Double, rule: BackwardRule, into: UnsafeMutablePointer<Float>) {
        let h = model.config.hiddenSize
        let wc = model.classifier.weight.p + c * h, wp = model.pooler.weight.p
        var g = [Double](repeating: 0, count: h)
        for j in 0..<h {
            let dpre: Double
            if rule == .gradient {
                dpre = scale * Double(wc[j]) * (1 - head.pooled[j] * head.pooled[j])
            } else {
                dpre = scale * Double(wc[j]) * head.pooled[j] / (head.preActivation[j] + 1e-10)
            }
            let wr = wp + j * h
            for i in 0..<h { g[i] += dpre * Double(wr[i]) }
        }
        for i in 0..<h { into[i] = Float(g[i]) }
    }

    /// `W·x + b` in Double (CKernels: eight lanes at a time).
    static func denseForward(_ d: Dense, _ x: [Double]) -> [Double] {
        [Double](unsafeUninitializedCapacity: d.outFeatures) { y, count in
            x.withUnsafeBufferPointer { bertlrp_dense_f64(d.weight.p, d.bias.p, $0.baseAddress!, d.inFeatures, d.outFeatures, y.baseAddress!) }
            count = d.outFeatures
        }
    }
}
