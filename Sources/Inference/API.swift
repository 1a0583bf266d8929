// The engine's public surface, agreed between Inference and Pipeline.
// Tensor convention (README): row-major, weights [out, in] as in the
// checkpoints, y = x · Wᵀ + b.

/// One tokenized example as the model sees it: `[CLS] A [SEP] (B [SEP])`.
public struct EncodedInput: Sendable, Equatable {
    public var ids: [Int32]       // [T]
    public var segments: [Int32]  // [T]
    public init(ids: [Int32], segments: [Int32]) {
        self.ids = ids
        self.segments = segments
    }
}

/// Attribution methods of docs/CONTRACT.md sections 5 and 5b.
public struct Methods: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public static let gs = Methods(rawValue: 1)
    public static let gi = Methods(rawValue: 2)
    public static let lrp = Methods(rawValue: 4)
    public static let lat = Methods(rawValue: 8)
    public static let ixg = Methods(rawValue: 16)
    public static let attnlrp = Methods(rawValue: 32)
    public static let cplrp = Methods(rawValue: 64)
    public static let ig = Methods(rawValue: 128)
    public static let rollout = Methods(rawValue: 256)
    /// The seed's four (section 5), the default.
    public static let all: Methods = [.gs, .gi, .lrp, .lat]
    /// Every method, the seed's and section 5b's.
    public static let every: Methods = [.gs, .gi, .lrp, .lat, .ixg, .attnlrp, .cplrp, .ig, .rollout]
    /// Methods that need a backward pass per target class.
    public var needsTargets: Bool { !intersection([.gs, .gi, .lrp, .ixg, .attnlrp, .cplrp, .ig]).isEmpty }
}

/// Which classes an example is explained for. `gold` and class names are
/// resolved to `.classes` by the caller.
public enum TargetSelection: Sendable, Equatable {
    case predicted
    case all
    case classes([Int])
}

/// Per-token scores for one target class; nil where the method was not asked for.
public struct Attribution: Sendable, Equatable {
    public var target: Int
    public var gs: [Float]?       // [T]
    public var gi: [Float]?       // [T]
    public var lrp: [Float]?      // [T]
    public var ixg: [Float]?      // [T] signed
    public var attnlrp: [Float]?  // [T] signed
    public var cplrp: [Float]?    // [T] signed
    public var ig: [Float]?       // [T] signed
    /// IG's convergence delta: Σ_t ig_t − (f_c(input) − f_c(baseline)).
    public var igDelta: Float?
    public init(target: Int, gs: [Float]? = nil, gi: [Float]? = nil, lrp: [Float]? = nil,
                ixg: [Float]? = nil, attnlrp: [Float]? = nil, cplrp: [Float]? = nil, ig: [Float]? = nil, igDelta: Float? = nil) {
        self.target = target
        self.gs = gs
        self.gi = gi
        self.lrp = lrp
        self.ixg = ixg
        self.attnlrp = attnlrp
        self.cplrp = cplrp
        self.ig = ig
        self.igDelta = igDelta
    }
}

/// Everything the engine computes for one example.
public struct ExampleResult: Sendable, Equatable {
    public var logits: [Float]      // [C]
    public var probs: [Float]       // [C]
    public var predicted: Int
    public var lat: [Float]?        // [T]
    public var rollout: [Float]?    // [T]
    public var attributions: [Attribution]
    public init(logits: [Float], probs: [Float], predicted: Int, lat: [Float]?, attributions: [Attribution],
                rollout: [Float]? = nil) {
        self.logits = logits
        self.probs = probs
        self.predicted = predicted
        self.lat = lat
        self.rollout = rollout
        self.attributions = attributions
    }
}
