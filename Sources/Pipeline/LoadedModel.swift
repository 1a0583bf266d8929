import Foundation
import Inference
import Tokenizer

/// What the pipeline needs from a model directory: class names, the
/// tokenizer, and a factory of per-worker engines sharing one immutable model.
public struct LoadedModel: Sendable {
    public var labels: [String]
    public var maxPositions: Int
    public var config: ModelConfig
    public var encoder: TextEncoder
    public var makeRunner: @Sendable () throws -> ExampleRunner

    /// Loads `dir` (docs/CONTRACT.md section 1). `fake`: the whitespace tokenizer and
    /// the fake engine with the model's classes (tests of the pipeline; the
    /// fake's delay per token comes from BERTLRP_FAKE_DELAY_US). `relevance`:
    /// the run asks for LRP (without it the model is held in a third of the
    /// memory: no alpha-beta weights). `workers`: how many engines will run
    /// at once, which sets OpenBLAS's threads. `igSteps`: integrated gradients' steps.
    public static func load(_ dir: URL, fake: Bool, relevance: Bool = true,
                            workers: Int = ProcessInfo.processInfo.activeProcessorCount, igSteps: Int = 32) throws -> LoadedModel {
        let config = try ModelConfig.load(dir.appendingPathComponent("config.json"))
        if fake {
            let n = config.labels.count
            let delay = Int(ProcessInfo.processInfo.environment["BERTLRP_FAKE_DELAY_US"] ?? "") ?? 0
            return LoadedModel(labels: config.labels, maxPositions: config.maxPositions, config: config,
                               encoder: WhitespaceEncoder(), makeRunner: { FakeRunner(numClasses: n, microsecondsPerToken: delay) })
        }
        let model = try BertModel(directory: dir, relevance: relevance)
        let tokenizer = try BertTokenizer.load(modelDirectory: dir)
        Engine.setBLASThreads(forWorkers: workers)
        return LoadedModel(labels: config.labels, maxPositions: config.maxPositions, config: config,
                           encoder: BertTextEncoder(tokenizer: tokenizer), makeRunner: { EngineRunner(model: model, igSteps: igSteps) })
    }

    /// The micro-batch budget in tokens that keeps one worker's engine
    /// scratch near `bytesPerWorker`, by the engine's own accounting (which is
    /// linear in the tokens of a micro-batch). MiniLM-L6-H384, all methods, one
    /// target: ~400 tokens; BERT-base: one 128-token example. Larger budgets
    /// buy nothing: on SST-2 dev with the bundled model 400 and 1200 tokens ran
    /// at the same speed (48.1 and 47.4 records/s) in 493 MB and 1014 MB of
    /// resident memory.
    public func batchTokens(methods: Methods, targetsPerExample: Int, longest: Int, bytesPerWorker: Int = 128 << 20) -> Int {
        func bytes(_ tokens: Int) -> Int {
            Engine.scratchBytes(config: config, tokens: tokens, longest: longest, targets: targetsPerExample, methods: methods)
        }
        let fixed = bytes(0), perToken = bytes(1) - fixed
        return min(4096, max(128, (bytesPerWorker - fixed) / max(1, perToken)))
    }
}
