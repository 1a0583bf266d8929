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

    /// The micro-batch budget in tokens for this model (`Engine.batchTokens`).
    public func batchTokens(methods: Methods, targetsPerExample: Int, longest: Int, bytesPerWorker: Int = 128 << 20) -> Int {
        Engine.batchTokens(config: config, methods: methods, targets: targetsPerExample, longest: longest, bytesPerWorker: bytesPerWorker)
    }
}
