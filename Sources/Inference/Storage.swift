/// Float storage owned by one object: model weights (shared read-only by all
/// workers) and an engine's scratch buffers (one engine per worker).
/// A class rather than `[Float]` so that hot loops work on raw pointers and no
/// copy-on-write can ever happen.
final class FloatBuffer: @unchecked Sendable {
    private(set) var pointer: UnsafeMutablePointer<Float>
    private(set) var capacity: Int

    init(count: Int) {
        capacity = max(count, 1)
        pointer = .allocate(capacity: capacity)
        pointer.initialize(repeating: 0, count: capacity)
    }

    /// Storage its owner fills at once (model weights): not written first,
    /// so that each page is touched once.
    init(uninitializedCount count: Int) {
        capacity = max(count, 1)
        pointer = .allocate(capacity: capacity)
    }

    convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { pointer.deallocate() }

    /// Grows (never shrinks) to hold `count` floats; contents are not kept.
    func reserve(_ count: Int) {
        guard count > capacity else { return }
        pointer.deallocate()
        capacity = count + count / 4
        pointer = .allocate(capacity: capacity)
        pointer.initialize(repeating: 0, count: capacity)
    }

    var p: UnsafeMutablePointer<Float> { pointer }
}
