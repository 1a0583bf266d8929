/// A run of rows in a packed buffer that belongs to one example.
/// Forward activations are packed example after example (`[ΣT, H]`, no
/// padding); backward buffers hold one block of `T` rows per (example, target)
/// pair, so several targets of one example map to the same forward rows.
struct Segment {
    let example: Int
    let target: Int
    /// First row of the example in the forward buffers.
    let forwardRow: Int
    /// First row of this block in the backward buffer it indexes.
    let row: Int
    let rows: Int
    /// Offset of the example's attention probabilities in a layer's `[heads, T, T]` blocks.
    let probOffset: Int
    /// The backward rules this block follows (LRP blocks take the gradient's).
    var rule: BackwardRule = .gradient

    func shifted(by delta: Int) -> Segment {
        Segment(example: example, target: target, forwardRow: forwardRow, row: row + delta, rows: rows,
                probOffset: probOffset, rule: rule)
    }
}

/// How a backward block treats LayerNorm, GELU/tanh and attention (docs/CONTRACT.md 5b).
enum BackwardRule {
    /// Ordinary gradients (gs, gi, ixg, ig, and the gradient parts of the seed's LRP).
    case gradient
    /// AttnLRP (LXT 2.1 `lxt.efficient`): LayerNorm std constant, identity rule for
    /// GELU and tanh, the uniform rule (halving) at `q·kᵀ` and at `A·v`.
    case attnLRP
    /// CP-LRP: as AttnLRP, but the attention probabilities are constants and `A·v` is not halved.
    case cpLRP

    /// LayerNorm with its standard deviation held constant.
    var constantStd: Bool { self != .gradient }
    /// Factor on the gradient arriving at the context `A·v` (on its way to A and v).
    var contextScale: Float { self == .attnLRP ? 0.5 : 1 }
    /// Factor on the gradient arriving at the raw scores `q·kᵀ`; 0: no gradient reaches q, k.
    var scoreScale: Float {
        switch self {
        case .gradient: return 1
        case .attnLRP: return 0.5
        case .cpLRP: return 0
        }
    }
}
