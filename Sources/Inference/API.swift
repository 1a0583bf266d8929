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

/// Attribution methods of CONTRACT.md section 5.
public struct Methods: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public static let gs = Methods(rawValue: 1)
    public static let gi = Methods(rawValue: 2)
    public static let lrp = Methods(rawValue: 4)
    public static let lat = Methods(rawValue: 8)
    public static let all: Methods = [.gs, .gi, .lrp, .lat]
    /// Methods that need a backward pass per target class.
    public var needsTargets: Bool { !intersection([.gs, .gi, .lrp]).isEmpty }
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
    public var gs: [Float]?   // [T]
    public var gi: [Float]?   // [T]
    public var lrp: [Float]?  // [T]
    public init(target: Int, gs: [Float]? = nil, gi: [Float]? = nil, lrp: [Float]? = nil) {
        self.target = target
        self.gs = gs
        self.gi = gi
        self.lrp = lrp
    }
}

/// Everything the engine computes for one example.
public struct ExampleResult: Sendable, Equatable {
    public var logits: [Float]      // [C]
    public var probs: [Float]       // [C]
    public var predicted: Int
    public var lat: [Float]?        // [T]
    public var attributions: [Attribution]
    public init(logits: [Float], probs: [Float], predicted: Int, lat: [Float]?, attributions: [Attribution]) {
        self.logits = logits
        self.probs = probs
        self.predicted = predicted
        self.lat = lat
        self.attributions = attributions
    }
}
