import Foundation
import Inference
import Tokenizer

/// What the pipeline needs from a model directory: class names, the
/// tokenizer, and a factory of per-worker engines sharing one immutable model.
public struct LoadedModel: Sendable {
    public var labels: [String]
    public var maxPositions: Int
    /// Micro-batch budget in tokens: the engine keeps every layer's
    /// activations for the backward passes, about L·(7H + 2I) + H floats a
    /// token; ~320 MB of them a worker (2048 tokens for MiniLM-L6-H384, ~570
    /// for BERT-base).
    public var defaultBatchTokens: Int
    public var encoder: TextEncoder
    public var makeRunner: @Sendable () throws -> ExampleRunner

    /// Loads `dir` (CONTRACT.md section 1). `fake`: the whitespace tokenizer and
    /// the fake engine with the model's classes (tests of the pipeline; the
    /// fake's delay per token comes from BERTLRP_FAKE_DELAY_US).
    public static func load(_ dir: URL, fake: Bool) throws -> LoadedModel {
        let config = try ModelConfig.load(dir.appendingPathComponent("config.json"))
        let budget = batchBudget(config)
        if fake {
            let n = config.labels.count
            let delay = Int(ProcessInfo.processInfo.environment["BERTLRP_FAKE_DELAY_US"] ?? "") ?? 0
            return LoadedModel(labels: config.labels, maxPositions: config.maxPositions, defaultBatchTokens: budget,
                               encoder: WhitespaceEncoder(), makeRunner: { FakeRunner(numClasses: n, microsecondsPerToken: delay) })
        }
        let model = try BertModel(directory: dir)
        let tokenizer = try BertTokenizer.load(modelDirectory: dir)
        // One OpenBLAS thread per worker: the workers are the parallel layer.
        Engine.setBLASThreads(1)
        return LoadedModel(labels: config.labels, maxPositions: config.maxPositions, defaultBatchTokens: budget,
                           encoder: BertTextEncoder(tokenizer: tokenizer), makeRunner: { EngineRunner(model: model) })
    }

    static func batchBudget(_ c: ModelConfig) -> Int {
        let floatsPerToken = c.numLayers * (7 * c.hiddenSize + 2 * c.intermediateSize) + c.hiddenSize
        return min(2048, max(128, (320 << 20) / (4 * max(1, floatsPerToken))))
    }
}
