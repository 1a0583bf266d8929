import Foundation
import Inference
import Tokenizer

/// The model's own WordPiece tokenizer as the pipeline's `TextEncoder`.
/// Holds one workspace: the pipeline calls `encode` from its reading thread only.
public final class BertTextEncoder: TextEncoder, @unchecked Sendable {
    public let tokenizer: BertTokenizer
    private let workspace = TokenizerWorkspace()

    public init(tokenizer: BertTokenizer) { self.tokenizer = tokenizer }

    public func encode(text: String, textB: String?, maxLength: Int?) throws -> TokenizedInput {
        let e = tokenizer.encode(text, pair: textB, maxSequenceLength: maxLength, workspace: workspace)
        return TokenizedInput(encoding: e, tokens: tokenizer.tokens(e.ids))
    }
}

/// One worker's `Engine`. A batch with several target selections (`--target
/// gold`) runs as one call per selection (targets chosen after the forward
/// pass, for long documents' windows: one call); an example's results do not depend on its batch (the engine
/// packs rows without padding). If a call fails, its examples are retried one
/// by one so that only the failing example becomes a bad record.
public final class EngineRunner: ExampleRunner {
    public let engine: Engine

    /// `igSteps`: integrated gradients' Gauss-Legendre nodes (`--ig-steps`).
    public init(model: BertModel, igSteps: Int = 32) {
        engine = Engine(model: model)
        engine.igSteps = igSteps
    }

    public func run(_ inputs: [EncodedInput], methods: Methods, targets: [TargetSelection],
                    chooseTargets: (([ExampleResult]) -> [TargetSelection])?) throws -> [ExampleResult] {
        if let chooseTargets { return try engine.run(inputs, methods: methods, targets: targets, chooseTargets: chooseTargets) }
        var groups: [(selection: TargetSelection, positions: [Int])] = []
        for (i, t) in targets.enumerated() {
            if let g = groups.firstIndex(where: { $0.selection == t }) { groups[g].positions.append(i) } else { groups.append((t, [i])) }
        }
        var results = [ExampleResult?](repeating: nil, count: inputs.count)
        for g in groups {
            let out = try engine.run(g.positions.map { inputs[$0] }, methods: methods, targets: g.selection)
            for (p, r) in zip(g.positions, out) { results[p] = r }
        }
        return results.map { $0! }
    }
}
