/// A growable buffer of trivial values, for the scratch space of one thread.
/// Plain pointers so that the hot loops carry no copy-on-write or
/// exclusivity checks; freed by the owning `TokenizerWorkspace`.
struct ScratchBuffer<Element: BitwiseCopyable> {
    private(set) var base: UnsafeMutablePointer<Element>
    private(set) var capacity: Int
    var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    @inline(__always)
    mutating func append(_ value: Element) {
        if count == capacity { grow(to: capacity * 2) }
        base[count] = value
        count += 1
    }

    @inline(__always)
    mutating func reserve(_ n: Int) {
        if n > capacity { grow(to: max(n, capacity * 2)) }
    }

    @inline(never)
    private mutating func grow(to newCapacity: Int) {
        let fresh = UnsafeMutablePointer<Element>.allocate(capacity: newCapacity)
        fresh.update(from: base, count: count)
        base.deallocate()
        base = fresh
        capacity = newCapacity
    }

    @inline(__always)
    subscript(i: Int) -> Element {
        get { base[i] }
        nonmutating set { base[i] = newValue }
    }

    func free() { base.deallocate() }
}

/// The buffers of one tokenization pass. A plain struct: the pass works on
/// a local copy (static exclusivity, no runtime access checks) and hands it
/// back to the workspace, which owns the memory.
struct PassBuffers {
    // The current segment (text between added tokens) after normalization.
    var scalars = ScratchBuffer<UInt32>(capacity: 1024)  // normalized code points
    var flags = ScratchBuffer<UInt16>(capacity: 1024)  // their UnicodeTables flags
    var origins = ScratchBuffer<Int32>(capacity: 1024)  // original scalar index of each
    // NFD: original positions not yet claimed, and the pending run of non-starters.
    var originQueue = ScratchBuffer<Int32>(capacity: 64)
    var originQueueHead = 0
    var lastOrigin: Int32 = 0
    var pendingScalars = ScratchBuffer<UInt32>(capacity: 16)
    var pendingClasses = ScratchBuffer<UInt8>(capacity: 16)
    var pendingFirst = ScratchBuffer<Bool>(capacity: 16)
    // One word as UTF-8, and where each of its characters starts.
    var wordBytes = ScratchBuffer<UInt8>(capacity: 512)
    var charStarts = ScratchBuffer<Int32>(capacity: 512)
    var hashStates = ScratchBuffer<UInt64>(capacity: 512)  // vocabulary hash state of each candidate piece
    // Output pieces of the text being tokenized.
    var ids = ScratchBuffer<Int32>(capacity: 256)
    var starts = ScratchBuffer<Int32>(capacity: 256)
    var ends = ScratchBuffer<Int32>(capacity: 256)

    func free() {
        scalars.free(); flags.free(); origins.free()
        originQueue.free(); pendingScalars.free(); pendingClasses.free(); pendingFirst.free()
        wordBytes.free(); charStarts.free(); hashStates.free()
        ids.free(); starts.free(); ends.free()
    }
}

/// Scratch space for tokenizing on one thread: create one per worker and pass
/// it to every call; it grows to the longest text seen and is reused. Not
/// shareable between threads (the tokenizer itself is).
public final class TokenizerWorkspace {
    var buffers = PassBuffers()

    public init() {}

    deinit { buffers.free() }
}
