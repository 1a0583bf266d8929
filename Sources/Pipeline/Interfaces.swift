import Inference
import IO
import Tokenizer

// What the pipeline needs from the tokenizer and the engine, as small
// protocols: the command line plugs the real ones in, the tests plug
// stand-ins (the PipelineTestSupport target).

/// One record's text as the model sees it: the tokenizer's `Encoding` and
/// the strings of its tokens (the record's `tokens`).
public struct TokenizedInput: Sendable, Equatable {
    public var encoding: Encoding
    public var tokens: [String]     // [T]

    public init(encoding: Encoding, tokens: [String]) {
        self.encoding = encoding
        self.tokens = tokens
    }

    public var ids: [Int32] { encoding.ids }                  // [T]
    public var segments: [Int32] { encoding.segments }        // [T]
    public var offsets: [TokenOffset?] { encoding.offsets }   // [T], nil for [CLS]/[SEP]
    public var truncated: Bool { encoding.truncated }
}

/// Turns text (and an optional second segment) into model input, at most
/// `maxLength` tokens with the special ones (nil: the whole text, for
/// `--long window`). A thrown error makes the record a bad record with the
/// error's description as the reason.
public protocol TextEncoder: Sendable {
    func encode(text: String, textB: String?, maxLength: Int?) throws -> TokenizedInput
}

/// One worker's engine: its own scratch space, the shared model. `run` gets a
/// micro-batch of examples of different lengths and returns one result each,
/// in order; each result must not depend on the rest of the batch.
/// `chooseTargets`, when given, replaces `targets` once the logits are known
/// (as `Engine.run`'s, whose argument order this follows).
public protocol ExampleRunner: AnyObject {
    func run(_ inputs: [EncodedInput], methods: Methods, targets: [TargetSelection],
             chooseTargets: (([ExampleResult]) -> [TargetSelection])?) throws -> [ExampleResult]
}

extension ExampleRunner {
    public func run(_ inputs: [EncodedInput], methods: Methods, targets: [TargetSelection]) throws -> [ExampleResult] {
        try run(inputs, methods: methods, targets: targets, chooseTargets: nil)
    }
}
