import Foundation
import Inference
import Tokenizer

/// What the pipeline needs from a model directory: class names, the
/// tokenizer, and a factory of per-worker engines sharing one immutable model.
public struct LoadedModel: Sendable {
    public init(labels: [String], maxPositions: Int, config: ModelConfig, encoder: TextEncoder,
                makeRunner: @escaping @Sendable () throws -> ExampleRunner) {
        self.labels = labels
        self.maxPositions = maxPositions
        self.config = config
        self.encoder = encoder
        self.makeRunner = makeRunner
    }

    public var labels: [String]
    public var maxPositions: Int
    public var config: ModelConfig
    public var encoder: TextEncoder
    public var makeRunner: @Sendable () throws -> ExampleRunner

    /// Loads `dir` (docs/CONTRACT.md section 1). `relevance`:
    /// the run asks for LRP (without it the model is held in a third of the
    /// memory: no alpha-beta weights). `workers`: how many engines will run
    /// at once, which sets OpenBLAS's threads. `igSteps`: integrated gradients' steps.
    public static func load(_ dir: URL, relevance: Bool = true,
                            workers: Int = ProcessInfo.processInfo.activeProcessorCount, igSteps: Int = 32) throws -> LoadedModel {
        let config = try ModelConfig.load(dir.appendingPathComponent("config.json"))
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
