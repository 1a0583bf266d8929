import Foundation

/// Target-independent scores read from the attention probabilities the forward
/// pass keeps: the seed's LAT and attention rollout. The last layer holds row 0
/// of its probabilities only (the pooler reads position 0), which is all either needs.
extension Engine {
    /// LAT: per head, start from the one-hot of position 0 and multiply by that
    /// head's attention matrix from the last layer down to the first; sum over heads
    /// (the seed's `backward_lat`).
    func lat(tokens t: Int, probOffset: Int) -> [Float] {
        let c = model.config
        var total = [Double](repeating: 0, count: t)
        var s = [Double](repeating: 0, count: t), next = s
        for head in 0..<c.numHeads {
            for j in 0..<t { s[j] = 0 }
            s[0] = 1
            for l in stride(from: c.numLayers - 1, through: 0, by: -1) {
                let a = probs[l].p + probOffset + head * t * t
                for j in 0..<t { next[j] = 0 }
                for i in 0..<t where s[i] != 0 {
                    let row = a + i * t, si = s[i]
                    for j in 0..<t { next[j] += si * Double(row[j]) }
                }
                swap(&s, &next)
            }
            for j in 0..<t { total[j] += s[j] }
        }
        return total.map { Float($0) }
    }

    /// Attention rollout (Abnar & Zuidema 2020; docs/CONTRACT.md 5b): per layer
    /// `Â = 0.5·mean_heads(A) + 0.5·I`, `R = Â_L · ... · Â_1`, scores = row 0
    /// of R, i.e. `e₀ᵀ·Â_L` multiplied on the right by each lower layer's `Â`.
    func rollout(tokens t: Int, probOffset: Int) -> [Float] {
        let c = model.config
        let meanWeight = 0.5 / Double(c.numHeads)
        var s = [Double](repeating: 0, count: t), next = s
        s[0] = 1
        for l in stride(from: c.numLayers - 1, through: 0, by: -1) {
            for j in 0..<t { next[j] = 0.5 * s[j] }
            for head in 0..<c.numHeads {
                let a = probs[l].p + probOffset + head * t * t
                for i in 0..<t where s[i] != 0 {
                    let row = a + i * t, si = meanWeight * s[i]
                    for j in 0..<t { next[j] += si * Double(row[j]) }
                }
            }
            swap(&s, &next)
        }
        return s.map { Float($0) }
    }
}
