/// Micro-batches by token budget: sort a window of records by length (ties in
/// input order, so the plan is a function of the window alone) and cut runs
/// whose padded size `count × longest` stays within `budget`. Sorting within
/// a bounded window keeps padding small while memory stays bounded.
public enum Batching {
    /// Positions into `lengths`, grouped into micro-batches.
    public static func plan(lengths: [Int], budget: Int, maxBatch: Int) -> [[Int]] {
        let order = lengths.indices.sorted { (lengths[$0], $0) < (lengths[$1], $1) }
        var batches: [[Int]] = []
        var current: [Int] = []
        for i in order {
            // Sorted ascending: the newcomer is the longest of the batch.
            if !current.isEmpty && ((current.count + 1) * lengths[i] > budget || current.count >= maxBatch) {
                batches.append(current)
                current = []
            }
            current.append(i)
        }
        if !current.isEmpty { batches.append(current) }
        return batches
    }
}
