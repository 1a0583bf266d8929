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

    func shifted(by delta: Int) -> Segment {
        Segment(example: example, target: target, forwardRow: forwardRow, row: row + delta, rows: rows, probOffset: probOffset)
    }
}
